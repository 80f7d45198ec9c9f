"""The result catalog an evaluation reads: its columns, checked, from a file or a table.

Shared by :mod:`~astroml_pipe.evaluate.photoz` and
:mod:`~astroml_pipe.evaluate.classify`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import InputError

__all__ = ["AUTO", "Result", "check_numeric", "float_column", "jsonable", "open_result", "pick", "require"]

#: Argument value that picks a column by its usual name when present.
AUTO = "auto"

#: Column name -> (dtype, per-row shape).
Available = Mapping[str, tuple[np.dtype, tuple[int, ...]]]


@dataclass
class Result:
    """The columns of an opened result catalog.

    Attributes
    ----------
    source : str
        How to name the catalog in error messages (``'file.fits'`` or
        "the catalog").
    available : dict
        Column name -> (dtype, per-row shape).
    n_rows : int
        Number of rows.
    read : callable
        ``read(columns, start=0, stop=None)``: an astropy table with (at least)
        ``columns`` of rows ``start:stop`` and the table metadata.
    """

    source: str
    available: Available
    n_rows: int
    read: Callable[..., Table]


@contextlib.contextmanager
def open_result(
    result: Table | str | os.PathLike[str],
    *,
    hdu: int | str | None = None,
    source: str | None = None,
) -> Iterator[Result]:
    """Open a result catalog, in memory or as a file, for reading columns.

    Parameters
    ----------
    result : astropy.table.Table or path
        The catalog.  Of a file only the columns asked for are read.
    hdu : int or str, optional
        FITS HDU or HDF5 dataset of a file (see
        :func:`~astroml_pipe.io.catalogs.open_catalog`).
    source : str, optional
        How to name the catalog in error messages (default the quoted file
        name, or "the catalog" for a table).

    Yields
    ------
    Result
        The catalog's columns; a file stays open until the block ends.
    """
    if isinstance(result, Table):
        table = result
        yield Result(
            source or "the catalog",
            {name: (np.asarray(table[name]).dtype, tuple(table[name].shape[1:])) for name in table.colnames},
            len(table),
            lambda columns, start=0, stop=None: table[start:stop],  # row slices are views
        )
        return
    from astroml_pipe.io.catalogs import open_catalog

    with open_catalog(result, hdu=hdu) as reader:
        yield Result(
            source or f"'{os.fspath(result)}'",
            {name: (info.dtype, tuple(info.shape)) for name, info in reader.columns.items()},
            reader.n_rows,
            lambda columns, start=0, stop=None: reader.read(start, stop, columns=list(columns)),
        )


def require(available: Available, column: str, source: str, what: str = "") -> None:
    """Raise :class:`InputError` (with a "did you mean") if ``column`` is not available.

    ``what`` names the kind of column in the message (e.g. ``"magnitude "``).
    """
    from astroml_pipe.core.params import did_you_mean

    if column not in available:
        raise InputError(f"{source} has no {what}column {column!r}{did_you_mean(column, list(available))}")


def check_numeric(
    name: str, dtype: np.dtype, shape: tuple[int, ...], source: str, expected: str = "one number per row"
) -> None:
    """Raise :class:`InputError` unless the column holds one number (or boolean) per row.

    ``expected`` says what the column should hold, in the message.
    """
    if np.dtype(dtype).kind not in "biuf" or tuple(shape) != ():
        kind = f"{dtype} values" if tuple(shape) == () else f"arrays of shape {tuple(shape)}"
        raise InputError(f"column {name!r} in {source} holds {kind}; expected {expected}")


def pick(value: str | None, candidates: Sequence[str], available: Available) -> str | None:
    """Resolve :data:`AUTO` to the first of ``candidates`` that is available (else None)."""
    if value != AUTO:
        return value
    return next((name for name in candidates if name in available), None)


def float_column(table: Table, name: str) -> np.ndarray:
    """A column as float64, masked entries as NaN."""
    return np.ma.filled(np.ma.asarray(table[name]).astype(np.float64), np.nan)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars as Python numbers and NaN/inf as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value
