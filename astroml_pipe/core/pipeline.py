"""Pipelines: an ordered list of stages wired by column names.

A pipeline is built from a YAML file, a dict, or stage objects, and written
back with :meth:`Pipeline.to_yaml`::

    name: survey-demo
    version: 1
    columns:
      mag: "mag_{band}_lsst"
      mag_err: "mag_err_{band}_lsst"
      bands: [u, g, r, i, z, y]
      nondetection: [99.0, inf]
      unobserved: [nan, -99.0]
    stages:
      - name: colors
        uses: features.colors
      - name: photoz
        uses: photoz.catboost
        with: {target: redshift}

A trained pipeline is a folder: ``pipeline.yaml`` (the resolved
configuration), one sub-folder per stage, and ``manifest.json`` (versions,
hashes of the configuration and the training data, training metrics).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version as dist_version
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import yaml
from astropy.table import Table

from astroml_pipe._version import __version__
from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import AstromlPipeError, ConfigError, InputError, ModelError
from astroml_pipe.core.folders import staged_folder
from astroml_pipe.core.params import close_matches, did_you_mean
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.core.stage import Stage, check_unique_outputs

__all__ = ["Pipeline", "MODEL_FORMAT"]

log = logging.getLogger(__name__)

#: Version of the trained-pipeline folder layout; bumped on incompatible changes.
MODEL_FORMAT = 1
MANIFEST = "manifest.json"
PIPELINE_FILE = "pipeline.yaml"
_TOP_KEYS = ("name", "version", "columns", "stages")
_STAGE_KEYS = ("name", "uses", "with")
_LIBRARIES = ("numpy", "astropy", "scikit-learn", "catboost", "pandas", "pyarrow", "h5py", "skops", "keras",
              "tensorflow", "tensorflow-cpu")


def _problems_error(source: str, problems: list[str]) -> ConfigError:
    if len(problems) == 1:
        return ConfigError(f"{source}: {problems[0]}")
    return ConfigError(f"{source}: {len(problems)} problems\n" + "\n".join(f"  - {p}" for p in problems))


class Pipeline:
    """An ordered list of stages that share a column map.

    Parameters
    ----------
    stages : sequence of Stage or (label, Stage)
        The steps, in order.  Labels must be unique; a bare stage keeps its
        own ``label``.
    columns : ColumnMap or dict, optional
        Roles of the catalog's columns (the ``columns:`` section).
    name : str
        Name of the pipeline.
    version : int
        Version of the pipeline file format (currently 1).
    """

    def __init__(
        self,
        stages: Sequence[Stage | tuple[str, Stage]],
        *,
        columns: ColumnMap | Mapping[str, Any] | None = None,
        name: str = "pipeline",
        version: int = 1,
    ):
        self.name = name
        self.version = version
        self.stages: list[Stage] = []
        for item in stages:
            if isinstance(item, tuple):
                label, stage = item
                stage.label = label
            else:
                stage = item
            if not isinstance(stage, Stage):
                raise ConfigError(f"pipeline {name!r}: {stage!r} is not a Stage")
            self.stages.append(stage)
        labels = [s.label for s in self.stages]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ConfigError(f"pipeline {name!r}: stage name(s) {dup} used twice; give each stage its own name")
        self.columns = columns if isinstance(columns, ColumnMap) else ColumnMap.from_dict(columns)
        self.manifest: dict[str, Any] = {}

    # -- configuration ---------------------------------------------------------
    @property
    def columns(self) -> ColumnMap:
        """The column map shared by every stage."""
        return self._columns

    @columns.setter
    def columns(self, value: ColumnMap) -> None:
        self._columns = value
        for stage in self.stages:
            stage.columns = value

    def __getitem__(self, label: str) -> Stage:
        for stage in self.stages:
            if stage.label == label:
                return stage
        raise KeyError(f"no stage named {label!r}{did_you_mean(label, [s.label for s in self.stages])}")

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, stages=[{', '.join(f'{s.label}:{s.name}' for s in self.stages)}])"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "pipeline") -> "Pipeline":
        """Build a pipeline from a configuration dict; report every problem at once."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping with keys {', '.join(_TOP_KEYS)}, got {type(data).__name__}")
        problems: list[str] = []
        for key in data:
            if key not in _TOP_KEYS:
                problems.append(f"unknown key {key!r}{did_you_mean(key, _TOP_KEYS)} (keys: {', '.join(_TOP_KEYS)})")
        version = data.get("version", 1)
        if version != 1:
            problems.append(f"'version' must be 1, got {version!r}")
        columns = ColumnMap()
        try:
            columns = ColumnMap.from_dict(data.get("columns"))
        except ConfigError as exc:
            problems.append(str(exc))
        entries = data.get("stages")
        stages: list[Stage] = []
        if not isinstance(entries, list) or not entries:
            problems.append("'stages' must be a non-empty list of {name, uses, with} entries")
            entries = []
        for index, entry in enumerate(entries, start=1):
            stage = _stage_from_entry(entry, index, columns, problems)
            if stage is not None:
                stages.append(stage)
        labels = [s.label for s in stages]
        for label in sorted({x for x in labels if labels.count(x) > 1}):
            problems.append(f"stage name {label!r} is used twice; give each stage its own name")
        if problems:
            raise _problems_error(source, problems)
        return cls(stages, columns=columns, name=str(data.get("name", "pipeline")), version=1)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike) -> "Pipeline":
        """Read a pipeline file (a path) or YAML text."""
        text, where = _read_text(source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{where}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
        return cls.from_dict(data, source=where)

    def to_dict(self) -> dict[str, Any]:
        """The configuration, with every parameter resolved."""
        return {
            "name": self.name,
            "version": self.version,
            "columns": self.columns.to_dict(),
            "stages": [{"name": s.label, "uses": s.name, "with": s.get_params()} for s in self.stages],
        }

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """Return the configuration as YAML text, and write it to ``path`` if given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    def config_hash(self) -> str:
        """SHA-256 of the resolved configuration."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    # -- checking ------------------------------------------------------------------
    def validate(
        self,
        available: Mapping[str, Any] | Iterable[str] | None = None,
        *,
        training: bool = False,
        source: str = "input",
    ) -> None:
        """Check the wiring before any heavy work; report every problem at once.

        Parameters
        ----------
        available : mapping or iterable of str, optional
            Columns of the input: names, or a mapping of name to an object
            with a ``dtype`` attribute (or a dtype), so that non-numeric
            columns are caught too.  Without it, only the columns written
            by earlier stages are checked against later stages' needs.
        training : bool
            Check the columns :meth:`fit` needs (e.g. the target) too.
        source : str
            How to name the input in messages (usually its file name).

        Raises
        ------
        ConfigError
            Listing every missing column (with close matches), every column
            written twice, and every non-numeric input column a stage reads.
        """
        check_input = available is not None
        dtypes: dict[str, Any] = {}
        if isinstance(available, Mapping):
            dtypes = {k: getattr(v, "dtype", v) for k, v in available.items()}
            have = list(available)
        else:
            have = list(available or [])
        written: dict[str, str] = {}
        problems: list[str] = []
        for stage in self.stages:
            try:
                check_unique_outputs(stage)
            except ConfigError as exc:
                problems.append(str(exc))
            needed = stage.fit_requires() if training and stage.trainable else stage.requires()
            for column in needed:
                if column in written:
                    continue
                if column not in have:
                    if check_input:
                        near = close_matches(column, have + list(written))
                        hint = f"; close matches: {', '.join(near)}" if near else ""
                        problems.append(
                            f"{stage.where} needs column {column!r}, which neither {source} "
                            f"nor an earlier stage provides{hint}"
                        )
                    continue
                dtype = dtypes.get(column)
                if dtype is not None and np.dtype(dtype).kind not in "biuf":
                    problems.append(
                        f"column {column!r} in {source} holds {np.dtype(dtype)} values; {stage.where} needs numbers"
                    )
            for col in stage.provides():
                if col.name in written:
                    problems.append(f"{stage.where} writes column {col.name!r}, already written by {written[col.name]}")
                elif check_input and col.name in have:
                    problems.append(
                        f"{stage.where} writes column {col.name!r}, which {source} already has; "
                        "rename it in the input"
                    )
                written[col.name] = stage.where
        if problems:
            raise _problems_error(f"pipeline {self.name!r}", problems)

    def input_columns(self, *, training: bool = False) -> list[str]:
        """Columns the pipeline reads from its input (not written by an earlier stage)."""
        written: set[str] = set()
        needed: list[str] = []
        for stage in self.stages:
            cols = stage.fit_requires() if training and stage.trainable else stage.requires()
            needed += [c for c in cols if c not in written and c not in needed]
            written |= {c.name for c in stage.provides()}
        return needed

    def output_columns(self) -> list[str]:
        """Names of every column the pipeline adds."""
        return [c.name for s in self.stages for c in s.provides()]

    @property
    def is_fitted(self) -> bool:
        """Whether every stage is ready to run."""
        return all(s.is_fitted for s in self.stages)

    # -- learning and applying ---------------------------------------------------------
    def fit(self, table: Table) -> "Pipeline":
        """Train every trainable stage in order on ``table``.

        Each stage is fitted on the table as extended by the stages before
        it.  A stage whose :meth:`~astroml_pipe.core.stage.Stage.pretraining_catalog`
        gives rows (for example simulated galaxies) also gets them, extended
        in the same way.  Training metrics reported by stages go to
        ``self.manifest``.
        """
        self.validate({n: table[n].dtype for n in table.colnames}, training=True, source="the training table")
        current = table
        metrics: dict[str, Any] = {}
        for index, stage in enumerate(self.stages):
            if stage.trainable:
                pretraining = self._pretraining_rows(index)
                log.info("training %s on %d rows", stage.where, len(current))
                if pretraining is None:
                    stage.fit(current)
                else:
                    stage.fit(current, pretraining=pretraining)
                metrics[stage.label] = dict(getattr(stage, "training_metrics_", {}))
            if index < len(self.stages) - 1:
                current = stage.run(current)
        self.manifest = {"metrics": metrics}
        return self

    def _pretraining_rows(self, index: int) -> Table | None:
        """The pretraining rows of stage ``index``, run through the stages before it (None if it has none)."""
        stage = self.stages[index]
        rows = stage.pretraining_catalog()
        if rows is None:
            return None
        for earlier in self.stages[:index]:
            missing = [name for name in earlier.requires() if name not in rows.colnames]
            if missing:
                raise ConfigError(
                    f"{stage.where}: its pretraining rows cannot pass through {earlier.where}, which needs "
                    f"column(s) {missing} that they do not have"
                )
            rows = earlier.run(rows)
        return rows

    def run(self, table: Table) -> Table:
        """Apply every stage to an in-memory table; returns the extended table."""
        if not self.is_fitted:
            untrained = [s.where for s in self.stages if not s.is_fitted]
            raise ModelError(f"pipeline {self.name!r} is not trained ({', '.join(untrained)}): fit it or load a model")
        for stage in self.stages:
            table = stage.run(table)
        return table

    # -- persistence ---------------------------------------------------------------
    def save(
        self,
        folder: str | os.PathLike,
        *,
        training: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the trained pipeline folder atomically.

        Parameters
        ----------
        folder : path
            Destination; it must not exist unless ``overwrite``.
        training : dict, optional
            Description of the training data (``path``, ``sha256``, ``n_rows``).
        overwrite : bool
            Replace an existing folder.
        """
        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise InputError(f"model folder '{folder}' already exists; choose another or pass --overwrite")
        if not self.is_fitted:
            raise ModelError(f"pipeline {self.name!r} is not trained; nothing to save")
        with staged_folder(folder, what="model folder") as tmp:
            self.to_yaml(tmp / PIPELINE_FILE)
            for stage in self.stages:
                stage.save(tmp / stage.label)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            config_hash = self.config_hash()
            training = dict(training or {})
            ident = hashlib.sha256(f"{config_hash}{training.get('sha256', '')}{created}".encode()).hexdigest()[:16]
            manifest = {
                "format": MODEL_FORMAT,
                "id": ident,
                "astroml_pipe": __version__,
                "created": created,
                "pipeline": self.name,
                "config_sha256": config_hash,
                "stages": {s.label: s.name for s in self.stages},
                "libraries": _library_versions(),
                "training_data": training,
                "metrics": self.manifest.get("metrics", {}),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        self.manifest = manifest
        log.info("saved trained pipeline %s to %s", ident, folder)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Pipeline":
        """Load a trained pipeline folder written by :meth:`save`.

        Raises
        ------
        ModelError
            The folder is missing, incomplete, or was written in a model
            format this version cannot read.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"model folder '{folder}' does not exist")
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise ModelError(f"'{folder}' is not a trained pipeline: it has no {MANIFEST}") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"'{folder / MANIFEST}' is not valid JSON: {exc}") from None
        fmt = manifest.get("format")
        if fmt != MODEL_FORMAT:
            raise ModelError(
                f"model folder '{folder}' was written by astroml-pipe {manifest.get('astroml_pipe', '?')} "
                f"in model format {fmt!r}; astroml-pipe {__version__} reads format {MODEL_FORMAT}: "
                "retrain it with 'astroml-pipe train'"
            )
        text = (folder / PIPELINE_FILE).read_text()
        try:
            config = yaml.safe_load(text)
            pipeline = cls.from_dict(config, source=str(folder / PIPELINE_FILE))
        except AstromlPipeError as exc:
            raise ModelError(f"model folder '{folder}' cannot be loaded: {exc}") from None
        stages = [
            get_stage_class(s.name).load(folder / s.label, columns=pipeline.columns, label=s.label)
            for s in pipeline.stages
        ]
        loaded = cls(stages, columns=pipeline.columns, name=pipeline.name)
        loaded.manifest = manifest
        return loaded


def _stage_from_entry(entry: Any, index: int, columns: ColumnMap, problems: list[str]) -> Stage | None:
    if not isinstance(entry, Mapping):
        problems.append(f"stage #{index} must be a mapping with keys name, uses, with; got {entry!r}")
        return None
    for key in entry:
        if key not in _STAGE_KEYS:
            problems.append(f"stage #{index}: unknown key {key!r}{did_you_mean(key, _STAGE_KEYS)} (keys: name, uses, with)")
    uses = entry.get("uses")
    if not isinstance(uses, str):
        problems.append(f"stage #{index}: 'uses' must name a registered stage (see 'astroml-pipe stages')")
        return None
    label = str(entry.get("name") or uses)
    params = entry.get("with") or {}
    if not isinstance(params, Mapping):
        problems.append(f"stage {label!r}: 'with' must be a mapping of parameters, got {params!r}")
        return None
    try:
        cls = get_stage_class(uses)
        return cls(columns=columns, label=label, **params)
    except ConfigError as exc:
        problems.extend(f"stage {label!r}: {line}" if not line.startswith("stage") else line for line in str(exc).splitlines())
        return None


def _read_text(source: str | os.PathLike) -> tuple[str, str]:
    if isinstance(source, os.PathLike) or ("\n" not in str(source) and str(source).endswith((".yaml", ".yml"))):
        path = Path(source)
        try:
            return path.read_text(), f"'{path}'"
        except FileNotFoundError:
            raise ConfigError(f"pipeline file '{path}' does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read pipeline file '{path}': {exc}") from None
    return str(source), "pipeline"


def _library_versions() -> dict[str, str]:
    versions = {"python": ".".join(map(str, __import__("sys").version_info[:3]))}
    for name in _LIBRARIES:
        try:
            versions[name] = dist_version(name)
        except PackageNotFoundError:
            pass
    return versions
