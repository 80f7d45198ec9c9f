"""The Stage contract: one step of a pipeline that reads columns and adds new ones.

A stage is configured by keyword parameters declared once as
:class:`~astroml_pipe.core.params.Param` objects, in the style of
scikit-learn estimators: parameters are stored verbatim as attributes, and
anything learnt by :meth:`Stage.fit` lives in attributes whose names end with
an underscore.

Writing a stage means declaring ``name``, ``params`` and implementing
:meth:`Stage.requires`, :meth:`Stage.provides` and :meth:`Stage.compute`
(plus :meth:`Stage.fit` and the state hooks for trainable stages)::

    class Flux(Stage):
        '''Convert magnitudes to fluxes.'''

        name = "example.flux"
        params = (Param("zeropoint", float, 31.4, "AB zero point of the fluxes."),)

        def requires(self):
            return [self.columns.mag_column(b) for b in self.columns.bands]

        def provides(self):
            return [Col(f"flux_{b}", "nJy", "float32", f"flux in {b}") for b in self.columns.bands]

        def compute(self, table):
            return {f"flux_{b}": 10 ** (-0.4 * (table[self.columns.mag_column(b)] - self.zeropoint))
                    for b in self.columns.bands}
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
from astropy.table import Column, Table

from astroml_pipe.core.columns import Col, ColumnMap
from astroml_pipe.core.errors import ConfigError, InputError, ModelError
from astroml_pipe.core.params import Param, did_you_mean, validate_params

__all__ = ["Stage"]

log = logging.getLogger(__name__)

STATE_FILE = "stage.json"


class Stage(ABC):
    """Base class of all pipeline stages.

    Parameters
    ----------
    columns : ColumnMap, optional
        Where the catalog keeps the quantities this stage uses; a pipeline
        sets it from its ``columns:`` section.
    label : str, optional
        Name of this step inside a pipeline (defaults to the registry name).
    **params
        The stage's declared parameters (see the class's ``params``).
    """

    #: Registry key, e.g. ``"photoz.catboost"``.
    name: ClassVar[str] = ""
    #: Declared parameters.
    params: ClassVar[tuple[Param, ...]] = ()
    #: Whether the stage learns from training data in :meth:`fit`.
    trainable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.params and cls.__doc__ and "Parameters\n" not in cls.__doc__:
            cls.__doc__ = _with_param_section(cls.__doc__, cls.params)

    def __init__(self, *, columns: ColumnMap | None = None, label: str | None = None, **params: Any):
        self.columns = columns if columns is not None else ColumnMap()
        self.label = label or self.name
        for key, value in validate_params(self.params, params, self.where).items():
            setattr(self, key, value)
        self.validate()

    # -- description ------------------------------------------------------------
    @property
    def where(self) -> str:
        """How error messages name this stage."""
        label = getattr(self, "label", None) or self.name
        return f"stage {label!r} ({self.name})" if label != self.name else f"stage {self.name!r}"

    def get_params(self) -> dict[str, Any]:
        """The declared parameters and their current values."""
        return {p.name: getattr(self, p.name) for p in self.params}

    def __repr__(self) -> str:
        changed = {p.name: getattr(self, p.name) for p in self.params if getattr(self, p.name) != p.default}
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"

    def validate(self) -> None:
        """Check combinations of parameters; raise `ConfigError` if they conflict.

        Called at the end of ``__init__``; override in stages whose parameters
        constrain each other.
        """

    # -- columns ---------------------------------------------------------------
    def requires(self) -> list[str]:
        """Columns that :meth:`run` reads."""
        return []

    def fit_requires(self) -> list[str]:
        """Columns that :meth:`fit` reads (by default those of :meth:`run`)."""
        return self.requires()

    def provides(self) -> list[Col]:
        """Columns that :meth:`run` writes."""
        return []

    def check_columns(self, table: Table, needed: list[str] | None = None) -> None:
        """Raise `InputError` naming every needed column missing from ``table``."""
        needed = self.requires() if needed is None else needed
        missing = [c for c in needed if c not in table.colnames]
        if missing:
            hint = did_you_mean(missing[0], table.colnames)
            raise InputError(
                f"{self.where} needs column(s) {', '.join(repr(m) for m in missing)} "
                f"that the table does not have{hint}"
            )

    # -- learning and applying ------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether the stage can run (always true for stages that do not learn)."""
        if not self.trainable:
            return True
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def fit(self, table: Table) -> "Stage":
        """Learn from a training table (stages that do not learn return ``self``)."""
        return self

    def pretraining_catalog(self) -> Table | None:
        """Rows to pre-train on before :meth:`fit`, in the pipeline's input columns, or None (the default).

        :meth:`Pipeline.fit <astroml_pipe.core.pipeline.Pipeline.fit>` runs
        them through the (already trained) stages before this one and calls
        ``fit(table, pretraining=rows)``; a stage that returns rows here must
        accept that keyword.
        """
        return None

    @abstractmethod
    def compute(self, table: Table) -> Mapping[str, np.ndarray]:
        """Return the new columns, keyed by the names in :meth:`provides`."""

    def run(self, table: Table) -> Table:
        """Apply the stage: a table with the input columns plus :meth:`provides`.

        The input table is not modified; its columns are shared, not copied.
        """
        if not self.is_fitted:
            raise ModelError(f"{self.where} is not trained: call fit() or load a trained model first")
        self.check_columns(table)
        values = self.compute(table)
        out = Table(table, copy=False)
        out.meta = dict(table.meta)  # never mutate the caller's metadata
        for col in self.provides():
            if col.name not in values:
                raise RuntimeError(f"{self.where} did not compute its declared column {col.name!r}")
            data = np.asarray(values[col.name], dtype=col.dtype)
            expected = (len(table), *col.shape)
            if data.shape != expected:
                raise RuntimeError(f"{self.where}: column {col.name!r} has shape {data.shape}, expected {expected}")
            out[col.name] = Column(
                data, name=col.name, unit=col.unit or None, description=col.description, meta=dict(col.meta)
            )
        return out

    # -- persistence -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (small values only; models go to :meth:`save_artifacts`)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def save_artifacts(self, folder: Path) -> None:
        """Write model files (safe formats only) into ``folder``."""

    def load_artifacts(self, folder: Path) -> None:
        """Read the files written by :meth:`save_artifacts`."""

    def save(self, folder: str | Path) -> Path:
        """Save parameters, fitted state and model files into ``folder``."""
        if not self.is_fitted:
            raise ModelError(f"{self.where} is not trained; nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        document = {"uses": self.name, "params": self.get_params(), "state": self.state_dict()}
        (folder / STATE_FILE).write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
        self.save_artifacts(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, columns: ColumnMap | None = None, label: str | None = None) -> "Stage":
        """Rebuild a stage saved with :meth:`save`."""
        folder = Path(folder)
        path = folder / STATE_FILE
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"model folder '{folder}' has no {STATE_FILE}") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"'{path}' is not valid JSON: {exc}") from None
        if document.get("uses") != cls.name:
            raise ModelError(f"'{path}' holds a {document.get('uses')!r} stage, not {cls.name!r}")
        stage = cls(columns=columns, label=label, **document.get("params", {}))
        stage.load_state_dict(document.get("state", {}))
        stage.load_artifacts(folder)
        return stage


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def _with_param_section(doc: str, params: tuple[Param, ...]) -> str:
    """Append a NumPy-style ``Parameters`` section generated from ``params``."""
    lines = [line.rstrip() for line in doc.strip("\n").splitlines()]
    # Normalise indentation so numpydoc sees one consistent block.
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    cut = min(indents) if indents else 0
    body = [lines[0].strip()] + [line[cut:] for line in lines[1:]]
    body += ["", "Parameters", "----------"]
    for p in params:
        body.append(f"{p.name} : {p.type_name}, default {p.default!r}")
        body.append(f"    {p.doc}")
    return "\n".join(body) + "\n"


def check_unique_outputs(stage: Stage) -> None:
    """Raise `ConfigError` if a stage declares the same output twice."""
    names = [c.name for c in stage.provides()]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{stage.where} declares column(s) {sorted(dup)} twice")
