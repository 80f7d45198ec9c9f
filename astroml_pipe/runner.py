"""Running and training pipelines on catalog files, streaming in chunks of rows.

:func:`run_catalog` reads a catalog chunk by chunk, passes each chunk through
every stage, appends it to the output and forgets it, so peak memory depends
on the chunk size and not on the catalog size.  Before any heavy work it
checks the pipeline's wiring against the file's columns and that every
input column holds usable values.  The output is written to a temporary file
renamed into place at the end: a failed run leaves nothing behind, and the
input file is never opened for writing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from astroml_pipe._version import __version__
from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import InputError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.io.catalogs import CatalogReader, CatalogWriter, open_catalog, output_format

__all__ = ["RunSummary", "run_catalog", "train_catalog", "file_sha256", "default_output_path"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 100_000


@dataclass
class RunSummary:
    """What a run did: rows, columns added, time and where the output is.

    Attributes
    ----------
    input, output : pathlib.Path
        The catalog read and the catalog written.
    n_rows : int
        Rows processed.
    columns_added : list of str
        Names of the columns the pipeline added.
    seconds : float
        Wall-clock time of the whole run (checks, hashing, reading, stages, writing).
    model_id : str or None
        Id of the trained pipeline (from its ``manifest.json``).
    """

    input: Path
    output: Path
    n_rows: int
    columns_added: list[str]
    seconds: float
    model_id: str | None = None

    def format(self) -> str:
        """A short human-readable summary, one fact a line."""
        rate = self.n_rows / self.seconds if self.seconds > 0 else float("inf")
        lines = [
            f"input:    {self.input} ({self.n_rows:,} rows)",
            f"added:    {len(self.columns_added)} columns: {', '.join(self.columns_added)}",
            f"time:     {self.seconds:.1f} s ({rate:,.0f} rows/s)",
            f"output:   {self.output}",
        ]
        if self.model_id:
            lines.insert(1, f"model:    {self.model_id}")
        return "\n".join(lines)


def file_sha256(path: str | os.PathLike, block: int = 8 << 20) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_output_path(catalog: str | os.PathLike) -> Path:
    """``<stem>.astroml.fits`` in the current directory, for the catalog file ``catalog``."""
    name = Path(catalog).name
    for suffix in (".gz", ".fits", ".fit", ".hdf5", ".h5", ".parquet", ".pq", ".csv", ".ecsv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return Path.cwd() / f"{name}.astroml.fits"


def check_usable(reader: CatalogReader, columns: list[str], column_map: ColumnMap, chunk_size: int) -> None:
    """Raise `InputError` for an input column with no finite, non-sentinel value.

    Streams over only those columns, so it costs one cheap pass.
    """
    columns = [c for c in columns if c in reader.columns]
    if not columns:
        return
    usable = dict.fromkeys(columns, 0)
    for chunk in reader.iter_chunks(chunk_size, columns=columns):
        for name in columns:
            if usable[name] == 0:
                values = np.asarray(chunk[name])
                if values.dtype.kind in "biuf":
                    usable[name] += int(column_map.usable(values.astype(np.float64, copy=False)).sum())
        if all(usable.values()):
            return
    for name, count in usable.items():
        if count == 0:
            sentinels = ", ".join(str(v) for v in (*column_map.nondetection, *column_map.unobserved))
            raise InputError(
                f"column {name!r} in '{reader.path}' has no usable values: every entry is NaN, infinite "
                f"or a sentinel ({sentinels})"
            )


def _prepare(pipeline: Pipeline, reader: CatalogReader, *, training: bool, chunk_size: int) -> None:
    source = f"'{reader.path}'"
    if reader.n_rows == 0:
        raise InputError(f"catalog '{reader.path}' has no rows")
    pipeline.validate({c.name: c.dtype for c in reader.columns.values()}, training=training, source=source)
    check_usable(reader, pipeline.input_columns(training=training), pipeline.columns, chunk_size)


def run_catalog(
    pipeline: Pipeline,
    catalog: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    hdu: int | str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Apply a trained pipeline to a catalog file, streaming in chunks.

    Parameters
    ----------
    pipeline : Pipeline
        A trained (or training-free) pipeline.
    catalog : path
        Input catalog (FITS, HDF5 ``file.h5:path``, Parquet, CSV, ECSV).
    output : path, optional
        Output catalog; FITS unless the extension says Parquet or HDF5.
        Defaults to :func:`default_output_path`.
    hdu : int or str, optional
        FITS HDU index or name (or HDF5 path) of the input table.
    chunk_size : int
        Rows per chunk; peak memory is proportional to it.
    overwrite : bool
        Replace an existing output file.
    progress : bool
        Show a progress bar.

    Returns
    -------
    RunSummary
    """
    if chunk_size < 1:
        raise InputError(f"chunk size must be a positive number of rows, got {chunk_size}")
    start = time.perf_counter()
    with open_catalog(catalog, hdu=hdu) as reader:
        # reader.path is the catalog file itself (without an HDF5 ':dataset' part).
        output = Path(output) if output is not None else default_output_path(reader.path)
        output_format(output)
        same = output.resolve() == Path(reader.path).resolve()
        if not same and output.exists():
            same = os.path.samefile(output, reader.path)
        if same:
            raise InputError(f"output '{output}' is the input catalog; choose another output path")
        if output.exists() and not overwrite:
            raise InputError(f"output '{output}' already exists; choose another path or pass --overwrite")
        _prepare(pipeline, reader, training=False, chunk_size=chunk_size)
        if not pipeline.is_fitted:
            pipeline.run(Table())  # raises the clear "not trained" error
        # The first row goes through once on its own, so that problems only the stages can see
        # (stamps of another shape than the model's, say) are reported before any output exists.
        pipeline.run(reader.read(0, 1))
        meta = _provenance(pipeline, reader.path)
        with CatalogWriter(output, meta=meta, overwrite=overwrite) as writer:
            with tqdm(total=reader.n_rows, unit="rows", disable=not progress, desc="astroml-pipe") as bar:
                for chunk in reader.iter_chunks(chunk_size):
                    writer.write(pipeline.run(chunk))
                    bar.update(len(chunk))
        n_rows = reader.n_rows
    seconds = time.perf_counter() - start
    log.info("wrote %s (%d rows) in %.1f s", output, n_rows, seconds)
    return RunSummary(
        input=Path(str(catalog)),
        output=output,
        n_rows=n_rows,
        columns_added=pipeline.output_columns(),
        seconds=seconds,
        model_id=pipeline.manifest.get("id"),
    )


def train_catalog(
    pipeline: Pipeline,
    catalog: str | os.PathLike,
    model_dir: str | os.PathLike,
    *,
    hdu: int | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Train a pipeline on a catalog file and write the trained-pipeline folder.

    The training catalog is read whole (training sets fit in memory); the
    manifest records its name, SHA-256 and row count.

    Parameters
    ----------
    pipeline : Pipeline
        The pipeline to train (modified in place).
    catalog : path
        Training catalog with every column the stages need to learn
        (e.g. the true redshift).
    model_dir : path
        Folder for the trained pipeline; it must not exist unless ``overwrite``.
    hdu : int or str, optional
        FITS HDU (index or name) or HDF5 path of the training table.
    overwrite : bool
        Replace an existing model folder.

    Returns
    -------
    pathlib.Path
        The model folder.
    """
    model_dir = Path(model_dir)
    if model_dir.exists() and not overwrite:
        raise InputError(f"model folder '{model_dir}' already exists; choose another or pass --overwrite")
    with open_catalog(catalog, hdu=hdu) as reader:
        _prepare(pipeline, reader, training=True, chunk_size=DEFAULT_CHUNK_SIZE)
        table = reader.read(0, reader.n_rows)
        path = reader.path
    pipeline.fit(table)
    training = {"path": Path(path).name, "sha256": file_sha256(path), "n_rows": len(table)}
    return pipeline.save(model_dir, training=training, overwrite=overwrite)


def _provenance(pipeline: Pipeline, path: Path) -> dict[str, Any]:
    name = Path(path).name
    if len(name) > 60:
        name = "..." + name[-57:]
    return {
        "ASTMLVER": (__version__, "astroml-pipe version"),
        "PIPENAME": (pipeline.name[:60], "pipeline name"),
        "PIPEHASH": (pipeline.config_hash(), "SHA-256 of the resolved pipeline configuration"),
        "MODELID": (pipeline.manifest.get("id", "untrained"), "id of the trained pipeline (manifest.json)"),
        "INPUT": (name, "input catalog"),
        "INSHA256": (file_sha256(path), "SHA-256 of the input catalog"),
        "DATE": (datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "UTC time of the run"),
    }
