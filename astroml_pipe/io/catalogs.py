"""Read and write source catalogs in chunks of rows.

Everything that flows through a pipeline is an :class:`astropy.table.Table`
with one row per source.  This module moves such tables between memory and
files, a chunk of rows at a time, so that memory is bounded by the chunk and
not by the catalog.

Reading
-------
:func:`open_catalog` returns a :class:`CatalogReader` for one of these
formats, chosen by the file name's extension (FITS files are also recognised
by their content):

========== =========================== ============================================
format     extensions                  how rows are read
========== =========================== ============================================
FITS       ``.fits .fit .fts`` (+.gz)  memory map of the table HDU; a chunk copies
                                       only its rows (``.gz``: decompressed whole)
HDF5       ``.hdf5 .h5``               row slices of a compound dataset, or of
                                       the column datasets of a group (RAIL)
Parquet    ``.parquet .pq``            record batches of the row groups
CSV        ``.csv``                    ``pandas.read_csv(chunksize=...)``
ECSV       ``.ecsv``                   read whole with astropy (**not streamed**)
========== =========================== ============================================

Tables returned by a reader have native-byte-order NumPy columns, with
``unit`` and ``description`` set when the file records them.  Text columns
always come back as ``str`` (NumPy ``U``) columns.

Writing
-------
:class:`CatalogWriter` appends chunks of rows to a FITS (default), Parquet or
HDF5 file, chosen by the output extension.  It writes to a temporary file in
the output's folder and renames it onto the output only in
:meth:`CatalogWriter.close`, so a failed or interrupted run leaves neither a
partial output nor a temporary file behind.  The first chunk fixes the
columns: their names, dtypes, per-row shapes, string widths, units and
descriptions.

Every error meant for a user is an :class:`~astroml_pipe.core.errors.InputError`
whose message is one line naming the file (and column).

Modules
-------
This module holds the entry points and the shared base classes; each format
lives in its own module, imported only when a file of that format is opened
or written (so importing this one imports neither h5py nor pyarrow):

============================== ==================================================
:mod:`astroml_pipe.io.fits`    ``FitsCatalogReader``, ``FitsCatalogWriter``
:mod:`astroml_pipe.io.hdf5`    ``Hdf5CatalogReader``, ``Hdf5CatalogWriter``
:mod:`astroml_pipe.io.parquet` ``ParquetCatalogReader``, ``ParquetCatalogWriter``
:mod:`astroml_pipe.io.text`    ``CsvCatalogReader``, ``EcsvCatalogReader``
============================== ==================================================

The concrete classes can also be imported from here, as before.
"""

from __future__ import annotations

import abc
import copy
import difflib
import gzip
import importlib
import logging
import operator
import os
import re
import secrets
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table
from astropy.table import meta as _table_yaml

from astroml_pipe.core.errors import InputError

if TYPE_CHECKING:  # at run time, __getattr__ below imports them on first use
    from astroml_pipe.io.fits import FitsCatalogReader, FitsCatalogWriter
    from astroml_pipe.io.hdf5 import Hdf5CatalogReader, Hdf5CatalogWriter
    from astroml_pipe.io.parquet import ParquetCatalogReader, ParquetCatalogWriter
    from astroml_pipe.io.text import CsvCatalogReader, EcsvCatalogReader

__all__ = [
    "ColumnInfo",
    "CatalogReader",
    "FitsCatalogReader",
    "Hdf5CatalogReader",
    "ParquetCatalogReader",
    "CsvCatalogReader",
    "EcsvCatalogReader",
    "CatalogWriter",
    "FitsCatalogWriter",
    "ParquetCatalogWriter",
    "Hdf5CatalogWriter",
    "open_catalog",
    "read_catalog",
    "write_catalog",
    "output_format",
    "READ_EXTENSIONS",
    "WRITE_EXTENSIONS",
]

log = logging.getLogger(__name__)

#: File-name endings recognised when reading, and the format each one means.
READ_EXTENSIONS: dict[str, str] = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".fts.gz": "fits",
    ".hdf5": "hdf5",
    ".h5": "hdf5",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".ecsv": "ecsv",
}

#: File-name endings accepted for output, and the format each one means.
WRITE_EXTENSIONS: dict[str, str] = {
    ".fits": "fits",
    ".fit": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".hdf5": "hdf5",
    ".h5": "hdf5",
}

#: Where each format's reader and writer live, as ``"module:Class"``.  The
#: format modules import this one, so this one imports them only when a class
#: is first needed (:func:`_load`); importing it imports neither h5py nor pyarrow.
_READERS: dict[str, str] = {
    "fits": "astroml_pipe.io.fits:FitsCatalogReader",
    "hdf5": "astroml_pipe.io.hdf5:Hdf5CatalogReader",
    "parquet": "astroml_pipe.io.parquet:ParquetCatalogReader",
    "csv": "astroml_pipe.io.text:CsvCatalogReader",
    "ecsv": "astroml_pipe.io.text:EcsvCatalogReader",
}
_WRITERS: dict[str, str] = {
    "fits": "astroml_pipe.io.fits:FitsCatalogWriter",
    "parquet": "astroml_pipe.io.parquet:ParquetCatalogWriter",
    "hdf5": "astroml_pipe.io.hdf5:Hdf5CatalogWriter",
}

#: The concrete classes by name, still importable from this module.
_CONCRETE: dict[str, str] = {
    target.partition(":")[2]: target for target in (*_READERS.values(), *_WRITERS.values())
}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PARQUET_MAGIC = b"PAR1"
_FITS_SIGNATURE = b"SIMPLE  ="
_GZIP_MAGIC = b"\x1f\x8b"


def _load(target: str) -> type:
    """The class named by a ``"module:Class"`` entry of ``_READERS`` or ``_WRITERS``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    """Import a concrete reader or writer class on first access (PEP 562)."""
    target = _CONCRETE.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _load(target)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CONCRETE))


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def _one_line(text: object) -> str:
    """Collapse an exception text or a value onto a single line."""
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    """Short one-line reason for an OS or library error."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _one_line(exc) or type(exc).__name__


def _name_list(names: Sequence[str], limit: int = 25) -> str:
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} in all)"
    return shown or "none"


def _suffix_format(path: Path, table: Mapping[str, str]) -> str | None:
    name = path.name.lower()
    for ext in sorted(table, key=len, reverse=True):
        if name.endswith(ext):
            return table[ext]
    return None


def _native(dtype: np.dtype) -> np.dtype:
    """The same dtype in native byte order (structured and sub-array safe)."""
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def _parse_unit(text: str | None) -> u.UnitBase | None:
    """Parse a unit string as FITS does, then generically; never raises."""
    if not text or not str(text).strip():
        return None
    text = str(text).strip()
    for fmt in ("fits", None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return u.Unit(text, format=fmt)
        except (ValueError, TypeError):
            continue
    return u.Unit(text, parse_strict="silent")


def _decode_text(arr: np.ndarray, strip: bool) -> np.ndarray:
    """Bytes array -> str array (ASCII fast path, UTF-8 fallback)."""
    try:
        out = arr.astype(f"U{max(arr.dtype.itemsize, 1)}")
    except UnicodeDecodeError:
        out = np.char.decode(arr, "utf-8", errors="replace")
    if strip and out.size:
        out = np.char.rstrip(out)
    return out


def _did_you_mean(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unreadable_rows(path: Path, start: int, stop: int, exc: BaseException) -> InputError:
    """The error for rows ``start:stop`` of ``path`` that a library failed to read."""
    return InputError(f"cannot read rows {start}:{stop} of '{path}': {_reason(exc)}")


def _column_parts(col: Any) -> tuple[Any, u.UnitBase | None, str | None] | None:
    """Data, unit and description of a plain column or quantity; None for other mixins."""
    if isinstance(col, u.Quantity):
        return np.asarray(col.value), col.unit, col.info.description
    if isinstance(col, Column):
        return col, col.unit, col.description
    return None


@dataclass(frozen=True)
class ColumnInfo:
    """Description of one column of a catalog file.

    Attributes
    ----------
    name : str
        Column name as stored in the file.
    dtype : numpy.dtype
        Element type in native byte order, as the column is returned by
        :meth:`CatalogReader.read`.  Text columns are ``U`` (str); ``U0``
        means the width is only known chunk by chunk (Parquet/CSV without
        length metadata).
    shape : tuple of int
        Per-row shape: ``()`` for a scalar column, ``(301,)`` for a spectrum,
        ``(bands, H, W)`` for cutouts.
    unit : str or None
        Unit string as recorded in the file.
    description : str or None
        Column description as recorded in the file.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    unit: str | None = None
    description: str | None = None


# --------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------


class CatalogReader(abc.ABC):
    """Abstract reader of one table in one catalog file.

    Use :func:`open_catalog` to get the right subclass for a file.  A reader
    is a context manager; :meth:`close` releases the file.

    Attributes
    ----------
    path : pathlib.Path
        The catalog file.
    n_rows : int
        Number of rows (may be 0).
    columns : dict of str to ColumnInfo
        The columns, in file order.
    meta : dict
        Table-level metadata (e.g. non-structural FITS header keywords).
    """

    #: Format name, as used by :func:`output_format`.
    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.n_rows: int = 0
        self.columns: dict[str, ColumnInfo] = {}
        self.meta: dict[str, Any] = {}
        self._units: dict[str, u.UnitBase | None] = {}
        self._closed = False

    # -- public API --------------------------------------------------------

    def read(
        self, start: int = 0, stop: int | None = None, columns: Sequence[str] | None = None
    ) -> Table:
        """Read rows ``start:stop`` (slice semantics, clipped to the table).

        Parameters
        ----------
        start, stop : int
            First row and one past the last row; ``stop=None`` reads to the end.
        columns : list of str, optional
            Columns to read, in the order wanted; default all, in file order.

        Returns
        -------
        astropy.table.Table
            Native-byte-order columns with units and descriptions.

        Raises
        ------
        InputError
            If a requested column is not in the file.
        """
        self._check_open()
        names = self._resolve_columns(columns)
        start, stop = self._resolve_range(start, stop)
        return self._table(self._read(start, stop, names), names)

    def iter_chunks(
        self, chunk_size: int, columns: Sequence[str] | None = None
    ) -> Iterator[Table]:
        """Yield consecutive tables of at most ``chunk_size`` rows.

        Only the rows of the current chunk are held in memory (except for
        ECSV and gzip-compressed FITS files, which are read whole).  Nothing
        is yielded for a catalog with no rows.

        Parameters
        ----------
        chunk_size : int
            Rows per chunk (> 0).
        columns : list of str, optional
            Columns to read; default all.
        """
        chunk_size = operator.index(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, not {chunk_size}")
        self._check_open()
        # validate now, not at the first next()
        return self._iter_chunks(chunk_size, self._resolve_columns(columns))

    def _iter_chunks(self, chunk_size: int, names: list[str]) -> Iterator[Table]:
        for start in range(0, self.n_rows, chunk_size):
            self._check_open()
            stop = min(start + chunk_size, self.n_rows)
            yield self._table(self._read(start, stop, names), names)

    def close(self) -> None:
        """Release the file; further reads raise ``ValueError``."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> CatalogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.n_rows} rows, {len(self.columns)} columns"
        return f"<{type(self).__name__} '{self.path}' ({state})>"

    # -- for subclasses ----------------------------------------------------

    @abc.abstractmethod
    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        """Return native-order arrays (or masked arrays) for rows start:stop."""

    def _close(self) -> None:
        """Release resources (subclasses)."""

    def _set_columns(self, infos: Sequence[ColumnInfo]) -> None:
        self.columns = {info.name: info for info in infos}
        self._units = {info.name: _parse_unit(info.unit) for info in infos}

    # -- internals ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the reader of '{self.path}' is closed")

    def _resolve_columns(self, columns: Sequence[str] | None) -> list[str]:
        if columns is None:
            return list(self.columns)
        if isinstance(columns, str):
            columns = [columns]
        names: list[str] = []
        for name in columns:
            if name not in self.columns:
                available = list(self.columns)
                raise InputError(
                    f"catalog '{self.path}' has no column '{name}'"
                    f"{_did_you_mean(str(name), available)} "
                    f"(columns: {_name_list(available)})"
                )
            if name not in names:
                names.append(name)
        return names

    def _resolve_range(self, start: int, stop: int | None) -> tuple[int, int]:
        start = operator.index(start)
        stop = self.n_rows if stop is None else operator.index(stop)
        if start < 0 or stop < 0:
            raise ValueError(f"row range {start}:{stop} must not be negative")
        start = min(start, self.n_rows)
        stop = max(start, min(stop, self.n_rows))
        return start, stop

    def _table(self, arrays: Mapping[str, np.ndarray], names: list[str]) -> Table:
        cols = []
        for name in names:
            data = arrays[name]
            info = self.columns[name]
            cls = MaskedColumn if isinstance(data, np.ma.MaskedArray) else Column
            cols.append(
                cls(
                    data,
                    name=name,
                    unit=self._units.get(name),
                    description=info.description,
                    copy=False,
                )
            )
        return Table(cols, meta=copy.deepcopy(self.meta), copy=False)


class _Cursor:
    """Sequential position in a stream of row blocks, with restart.

    Formats that can only be read forwards (CSV) or whose natural unit is a
    block of rows (Parquet record batches) keep one cursor, so that reading
    consecutive ranges costs one pass over the file.

    Parameters
    ----------
    open_at : callable
        ``open_at(start) -> (iterator of blocks, first_row_of_iterator)``;
        the first row must be ``<= start``.
    length, take : callable
        ``length(block)`` and ``take(block, i, j)`` (rows ``i:j`` of a block).
    """

    def __init__(
        self,
        open_at: Callable[[int], tuple[Iterator[Any], int]],
        length: Callable[[Any], int],
        take: Callable[[Any, int, int], Any],
    ) -> None:
        self._open_at = open_at
        self._length = length
        self._take = take
        self._it: Iterator[Any] | None = None
        self._pos = 0  # row index of self._block[0]
        self._block: Any = None

    @staticmethod
    def block_rows(start: int, stop: int) -> int:
        """Rows per block for reads like ``start:stop``: as many, within 1024 to 2**20."""
        return int(min(max(stop - start, 1024), 1 << 20))

    @property
    def position(self) -> int | None:
        """Row index of the current block; None before the first read or after a reset."""
        return None if self._it is None else self._pos

    def read(self, start: int, stop: int, path: Path) -> list[Any]:
        """:meth:`blocks`; on failure, reset and raise InputError naming ``path``."""
        try:
            return self.blocks(start, stop)
        except Exception as exc:
            self.reset()
            raise _unreadable_rows(path, start, stop, exc) from exc

    def blocks(self, start: int, stop: int) -> list[Any]:
        """Blocks covering rows start:stop exactly (stop > start)."""
        if self._it is None or start < self._pos:
            self._it, self._pos = self._open_at(start)
            self._block = None
        out = []
        while True:
            if self._block is None:
                self._block = next(self._it, None)
                if self._block is None:
                    break
            n = self._length(self._block)
            end = self._pos + n
            if end <= start:  # wholly before the range: skip
                self._pos, self._block = end, None
                continue
            i = max(start - self._pos, 0)
            j = min(stop - self._pos, n)
            out.append(self._take(self._block, i, j))
            if end <= stop:
                self._pos, self._block = end, None
                if end == stop:
                    break
            else:
                break
        return out

    def reset(self) -> None:
        self._it, self._block, self._pos = None, None, 0


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------

_HDF5_INNER = re.compile(r"^(.*\.(?:hdf5|h5)):([^:\\]*)$", re.IGNORECASE)


def _sniff_format(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head.startswith(_FITS_SIGNATURE):
        return "fits"
    if head.startswith(_HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as fh:
                if fh.read(9) == _FITS_SIGNATURE:
                    return "fits"
        except (OSError, EOFError):
            return None
    return None


def open_catalog(path: str | os.PathLike[str], *, hdu: int | str | None = None) -> CatalogReader:
    """Open a catalog file for reading.

    Parameters
    ----------
    path : path-like
        The catalog.  The format follows from the extension (see
        :data:`READ_EXTENSIONS`); FITS, HDF5 and Parquet files with another
        name are recognised by their content.  An HDF5 dataset may be named
        as ``file.hdf5:group/dataset``.
    hdu : int or str, optional
        FITS: HDU index or EXTNAME (default the first table HDU).  HDF5: the
        dataset path (default the only table dataset in the file).

    Returns
    -------
    CatalogReader
        A reader; use it as a context manager, or call ``close()``.

    Raises
    ------
    InputError
        If the file does not exist, is not a catalog in a supported format,
        is truncated, or has no such HDU/dataset.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    inner: str | None = None
    if not os.path.exists(text):
        m = _HDF5_INNER.match(text)
        if m and os.path.exists(m.group(1)):
            text, inner = m.group(1), m.group(2)
    p = Path(text)
    if not p.exists():
        raise InputError(f"catalog '{text}' does not exist")
    if p.is_dir():
        raise InputError(f"catalog '{text}' is a directory, expected a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read catalog '{text}': permission denied")
    fmt = _suffix_format(p, READ_EXTENSIONS) or _sniff_format(p)
    if fmt is None:
        exts = " ".join(sorted(READ_EXTENSIONS))
        raise InputError(
            f"cannot tell the format of catalog '{text}' (expected one of the extensions {exts})"
        )
    if inner is not None:
        if fmt != "hdf5":
            raise InputError(f"catalog '{text}' is not HDF5, so ':{inner}' cannot name a dataset")
        if hdu is not None and str(hdu) != inner:
            raise InputError(
                f"catalog '{text}': dataset given twice ('{inner}' in the path, '{hdu}' as hdu=)"
            )
        hdu = inner
    try:
        if fmt == "fits":
            return _load(_READERS["fits"])(p, hdu=hdu)
        if fmt == "hdf5":
            if hdu is not None and not isinstance(hdu, str):
                raise InputError(
                    f"hdu= for HDF5 catalog '{text}' must be a dataset path, not {hdu!r}"
                )
            return _load(_READERS["hdf5"])(p, dataset=hdu)
        if hdu is not None:
            raise InputError(
                f"hdu= applies only to FITS and HDF5 catalogs, not to the {fmt} file '{text}'"
            )
        if fmt == "parquet":
            return _load(_READERS["parquet"])(p)
        if fmt == "csv":
            return _load(_READERS["csv"])(p)
        return _load(_READERS["ecsv"])(p)
    except PermissionError as exc:
        raise InputError(f"cannot read catalog '{text}': {_reason(exc)}") from exc


def read_catalog(
    path: str | os.PathLike[str],
    *,
    hdu: int | str | None = None,
    columns: Sequence[str] | None = None,
) -> Table:
    """Read a whole catalog (or some of its columns) into memory.

    Parameters are those of :func:`open_catalog` and :meth:`CatalogReader.read`.
    The table's ``meta`` is the reader's ``meta``.
    """
    with open_catalog(path, hdu=hdu) as reader:
        return reader.read(0, reader.n_rows, columns)


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------


def output_format(path: str | os.PathLike[str]) -> str:
    """Output format for a file name: ``'fits'``, ``'parquet'`` or ``'hdf5'``.

    Raises
    ------
    InputError
        If the extension is not one of :data:`WRITE_EXTENSIONS`.
    """
    fmt = _suffix_format(Path(os.fspath(path)), WRITE_EXTENSIONS)
    if fmt is None:
        exts = " ".join(WRITE_EXTENSIONS)
        raise InputError(
            f"cannot write output '{os.fspath(path)}': unsupported extension "
            f"(expected one of {exts})"
        )
    return fmt


@dataclass
class _Spec:
    """One output column, as fixed by the first chunk."""

    name: str
    dtype: np.dtype  # element dtype (native); U/S width in characters/bytes
    shape: tuple[int, ...]
    unit: u.UnitBase | None
    description: str | None


def _remove_quietly(path: str, handles: Sequence[Any] = ()) -> None:
    """Close ``handles`` and delete ``path``, ignoring errors (finalizer)."""
    for handle in handles:
        try:
            handle.close()
        except Exception:
            pass
    try:
        os.unlink(path)
    except OSError:
        pass


def _meta_value(value: Any) -> tuple[Any, str | None]:
    """Split a ``(value, comment)`` metadata entry; NumPy scalars -> Python."""
    comment = None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (str, type(None))):
        value, comment = value
    if isinstance(value, np.generic):
        value = value.item()
    return value, comment


def _yaml_meta(meta: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Writer metadata as astropy YAML-able values (comments dropped)."""
    from astropy.io.misc import yaml as astropy_yaml

    out = {}
    for key, raw in meta.items():
        value, _ = _meta_value(raw)
        try:
            astropy_yaml.dump({str(key): value})
        except Exception as exc:
            raise InputError(
                f"metadata '{key}' for '{path}' cannot be stored: {_reason(exc)}"
            ) from exc
        out[str(key)] = value
    return out


def _specs_yaml(specs: list[_Spec], meta: Mapping[str, Any]) -> list[str]:
    cols = [
        Column(
            np.zeros((0,) + s.shape, dtype=s.dtype),
            name=s.name,
            unit=s.unit,
            description=s.description,
        )
        for s in specs
    ]
    return _table_yaml.get_yaml_from_table(Table(cols, meta=dict(meta), copy=False))


class CatalogWriter(metaclass=abc.ABCMeta):
    """Write a catalog chunk by chunk, atomically.

    ``CatalogWriter(path)`` returns the writer for the output's extension:
    :class:`~astroml_pipe.io.fits.FitsCatalogWriter` (``.fits``, ``.fit``),
    :class:`~astroml_pipe.io.parquet.ParquetCatalogWriter` (``.parquet``, ``.pq``)
    or :class:`~astroml_pipe.io.hdf5.Hdf5CatalogWriter` (``.hdf5``, ``.h5``).

    The rows go to a temporary file ``.<name>.<random>.tmp`` in the output's
    folder, created here (so an unwritable folder fails at once).
    :meth:`close` finishes it and renames it onto ``path``; :meth:`abort`
    deletes it.  As a context manager the writer closes on normal exit and
    aborts when an exception escapes the block; a writer that is garbage
    collected (or still open at interpreter exit) without ``close()`` removes
    its temporary file too.  Only a killed process (SIGKILL) can leave a
    ``.tmp`` file behind, never a partial output.

    The first chunk fixes the columns (names, dtypes, per-row shapes, units,
    descriptions, and the width of text columns); later chunks must have the
    same columns and are cast to those dtypes (a text value longer than the
    first chunk's width is an error, never truncated).  ``int8`` and
    ``float16`` columns are widened to ``int16`` and ``float32`` in FITS.
    Masked floating-point values are written as NaN; other masked values are
    an error.

    Parameters
    ----------
    path : path-like
        Output file.
    meta : dict, optional
        Table-level metadata: ``KEY -> value`` or ``KEY -> (value, comment)``.
        FITS: cards of the primary header, keys in upper case (keys longer
        than 8 characters become HIERARCH cards; ``comments``/``history``
        lists become COMMENT/HISTORY cards).  Parquet/HDF5: the table ``meta`` of astropy's
        serialized metadata (comments are dropped).  The ``meta`` of the
        first chunk written goes to the table itself (FITS: the table HDU's
        header), so that ``Table.read`` returns it; ``meta`` wins on clashes.
    overwrite : bool
        Replace an existing ``path`` (only when :meth:`close` succeeds).

    Attributes
    ----------
    n_written : int
        Rows written so far.

    Raises
    ------
    InputError
        Unsupported extension, existing output without ``overwrite``, a folder
        that cannot be written, or metadata the format cannot hold.
    """

    format: ClassVar[str] = ""

    def __new__(cls, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> CatalogWriter:
        if cls is CatalogWriter:
            cls = _load(_WRITERS[output_format(path)])
        return super().__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        meta: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(os.fspath(path))
        self.n_written = 0
        self.meta: dict[str, Any] = dict(meta or {})
        self._table_meta: dict[str, Any] = {}
        self._overwrite = bool(overwrite)
        self._specs: list[_Spec] | None = None
        self._state = "new"
        self._tmp: Path | None = None
        self._finalizer: weakref.finalize | None = None
        fmt = output_format(self.path)
        if fmt != self.format:
            raise InputError(
                f"cannot write output '{self.path}' as {self.format}: its extension means {fmt}"
            )
        if self.path.is_dir():
            raise InputError(f"cannot write output '{self.path}': it is a directory")
        if self.path.exists() and not self._overwrite:
            raise InputError(
                f"output '{self.path}' already exists (pass overwrite=True to replace it)"
            )
        self._check_meta()
        self._tmp = self._reserve_temp()
        # open handles on the temporary file, closed by the finalizer
        self._handles: list[Any] = []
        self._finalizer = weakref.finalize(self, _remove_quietly, str(self._tmp), self._handles)
        self._state = "open"
        try:
            self._open()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise InputError(f"cannot write output '{self.path}': {_reason(exc)}") from exc
            raise

    # -- public API --------------------------------------------------------

    def write(self, table: Table) -> None:
        """Append the rows of ``table`` (a chunk).

        Raises
        ------
        InputError
            If the chunk's columns do not match the first chunk's, a value
            cannot be stored, or the file cannot be written (the writer is
            then aborted).
        """
        if self._state != "open":
            raise ValueError(f"the writer of '{self.path}' is {self._state}")
        if not isinstance(table, Table):
            raise TypeError(f"expected an astropy Table, not {type(table).__name__}")
        first = self._specs is None
        arrays = self._prepare(table)
        try:
            if first:
                self._table_meta = {k: v for k, v in table.meta.items() if k not in self.meta}
                self._begin(arrays)
            self._write_arrays(arrays, len(table))
        except InputError:
            if first:
                self._specs = None
            raise
        except OSError as exc:
            self.abort()
            raise InputError(f"cannot write output '{self.path}': {_reason(exc)}") from exc
        except BaseException:
            self.abort()
            raise
        self.n_written += len(table)

    def close(self) -> None:
        """Finish the file and rename it onto ``path``.

        Raises
        ------
        InputError
            If nothing was ever written (write at least one, possibly empty,
            chunk to define the columns), or if finishing or renaming fails;
            the temporary file is removed in every case.
        """
        if self._state != "open":
            return
        if self._specs is None:
            self.abort()
            raise InputError(
                f"nothing was written to output '{self.path}' (write at least one, "
                "possibly empty, table to define its columns)"
            )
        try:
            self._finish()
            if self.path.exists() and not self._overwrite:
                raise InputError(
                    f"output '{self.path}' already exists (pass overwrite=True to replace it)"
                )
            assert self._tmp is not None
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise InputError(f"cannot write output '{self.path}': {_reason(exc)}") from exc
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        if self._finalizer is not None:
            self._finalizer.detach()
        log.debug("wrote %d rows to %s", self.n_written, self.path)

    def abort(self) -> None:
        """Discard everything written; ``path`` is left untouched."""
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        try:
            self._discard()
        except Exception:
            log.debug("while aborting %s", self.path, exc_info=True)
        if self._finalizer is not None:
            self._finalizer()
        elif self._tmp is not None:  # pragma: no cover - finalizer always set
            _remove_quietly(str(self._tmp))

    def __enter__(self) -> CatalogWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.path}' ({self._state}, {self.n_written} rows)>"

    # -- for subclasses ----------------------------------------------------

    def _check_meta(self) -> None:
        """Validate ``self.meta`` for the format (before any file exists)."""

    @staticmethod
    def _convert_meta(meta: Mapping[str, Any], path: Path) -> Any:
        """Hook: ``meta`` as the format stores it; InputError for what it cannot hold.

        The default is astropy's serialized table metadata (Parquet, HDF5).
        """
        return _yaml_meta(meta, path)

    def _open(self) -> None:
        """Open the temporary file ``self._tmp``."""

    @abc.abstractmethod
    def _begin(self, arrays: list[np.ndarray]) -> None:
        """Set up the file from ``self._specs`` and the first chunk."""

    @abc.abstractmethod
    def _write_arrays(self, arrays: list[np.ndarray], n: int) -> None:
        """Append one chunk (arrays in ``self._specs`` order)."""

    @abc.abstractmethod
    def _finish(self) -> None:
        """Complete and close the temporary file."""

    def _discard(self) -> None:
        """Close the temporary file without completing it."""

    # -- internals ---------------------------------------------------------

    def _reserve_temp(self) -> Path:
        parent = self.path.parent
        for _ in range(100):
            tmp = parent / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                if not parent.exists():
                    why = f"folder '{parent}' does not exist"
                elif not parent.is_dir():
                    why = f"'{parent}' is not a folder"
                else:
                    why = _reason(exc)
                raise InputError(f"cannot write output '{self.path}': {why}") from exc
            os.close(fd)
            return tmp
        raise InputError(f"cannot write output '{self.path}': no free temporary file name")

    def _convert_dtype(self, spec: _Spec, data: np.ndarray) -> np.ndarray:
        """Hook: format-specific element conversion of a column (first chunk too)."""
        return data

    def _prepare(self, table: Table) -> list[np.ndarray]:
        """Plain native arrays in spec order; fixes the specs on the first chunk."""
        p = self.path
        cols: dict[str, tuple[np.ndarray, u.UnitBase | None, str | None]] = {}
        for name in table.colnames:
            col = table[name]
            parts = _column_parts(col)
            if parts is None:
                raise InputError(
                    f"column '{name}' written to '{p}' is a {type(col).__name__}; "
                    "only plain columns and quantities can be written"
                )
            data, unit, desc = parts
            if isinstance(data, np.ma.MaskedArray):
                mask = np.ma.getmaskarray(data)
                if data.dtype.kind in "fc":
                    data = data.filled(np.nan)
                elif mask.any():
                    raise InputError(
                        f"column '{name}' written to '{p}' has masked (missing) values; "
                        "only floating-point columns can hold missing values (as NaN)"
                    )
                else:
                    data = data.data
            data = np.asarray(data)
            if data.dtype.kind not in "biufcSU":
                raise InputError(
                    f"column '{name}' written to '{p}' has dtype {data.dtype}; expected "
                    "numbers, booleans or fixed-width text"
                )
            if data.dtype.byteorder not in ("=", "|"):
                data = data.astype(_native(data.dtype))
            cols[str(name)] = (data, unit, desc)

        if self._specs is None:
            if not cols:
                raise InputError(f"table written to '{p}' has no columns")
            specs = []
            for name, (data, unit, desc) in cols.items():
                specs.append(
                    _Spec(
                        name=name,
                        dtype=_native(data.dtype),
                        shape=tuple(data.shape[1:]),
                        unit=unit,
                        description=str(desc) if desc else None,
                    )
                )
            self._specs = specs
            try:
                return [self._convert_dtype(s, cols[s.name][0]) for s in specs]
            except InputError:
                self._specs = None
                raise

        expected = [s.name for s in self._specs]
        if sorted(cols) != sorted(expected):
            missing = [n for n in expected if n not in cols]
            extra = [n for n in cols if n not in expected]
            raise InputError(
                f"chunk written to '{p}' does not have the columns of the first chunk "
                f"(missing: {_name_list(missing)}; unexpected: {_name_list(extra)})"
            )
        out = []
        for spec in self._specs:
            data = cols[spec.name][0]
            if tuple(data.shape[1:]) != spec.shape:
                raise InputError(
                    f"column '{spec.name}' written to '{p}' has per-row shape "
                    f"{tuple(data.shape[1:])}, expected {spec.shape} as in the first chunk"
                )
            out.append(self._convert_dtype(spec, _match_dtype(spec, data, p)))
        return out


def _text_width(arr: np.ndarray) -> int:
    """Longest value of a U or S array, in characters/bytes."""
    if not arr.size:
        return 0
    return int(np.char.str_len(arr).max())


def _match_dtype(spec: _Spec, data: np.ndarray, path: Path) -> np.ndarray:
    """Cast a later chunk's column to the first chunk's dtype."""
    want = spec.dtype
    have = data.dtype
    if have == want:
        return data
    if want.kind in "SU" or have.kind in "SU":
        if want.kind not in "SU" or have.kind not in "SU":
            raise InputError(
                f"column '{spec.name}' written to '{path}' has dtype {have}, but the "
                f"output column (fixed by the first chunk) is {want}"
            )
        if have.kind == "S" and want.kind == "U":
            data = _decode_text(data, strip=False)
        elif have.kind == "U" and want.kind == "S":
            try:
                data = data.astype(f"S{max(data.dtype.itemsize // 4, 1)}")
            except UnicodeEncodeError:
                data = np.char.encode(data, "utf-8")
        width = want.itemsize // (4 if want.kind == "U" else 1)
        have_width = data.dtype.itemsize // (4 if data.dtype.kind == "U" else 1)
        if have_width > width:
            longest = _text_width(data)
            if longest > width:
                raise InputError(
                    f"column '{spec.name}' written to '{path}' has text of {longest} "
                    f"characters, longer than the {width} fixed by the first chunk"
                )
        return data.astype(want)
    if not np.can_cast(have, want, casting="same_kind"):
        raise InputError(
            f"column '{spec.name}' written to '{path}' has dtype {have}, but the output "
            f"column (fixed by the first chunk) is {want}"
        )
    return data.astype(want)


def write_catalog(
    table: Table,
    path: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Write a whole table at once (atomically), format by extension.

    Parameters
    ----------
    table : astropy.table.Table
        The table.
    path : path-like
        Output file (``.fits``/``.fit``, ``.parquet``/``.pq``, ``.hdf5``/``.h5``).
    meta : dict, optional
        Table-level metadata (see :class:`CatalogWriter`).  Default: the
        entries of ``table.meta`` that the format can hold (others are
        skipped, with a log message).
    overwrite : bool
        Replace an existing file.
    """
    if meta is None:
        writer_class = _load(_WRITERS[output_format(path)])
        meta = {}
        for key, value in table.meta.items():
            try:
                writer_class._convert_meta({key: value}, Path(os.fspath(path)))
            except InputError as exc:
                log.info("table metadata not written: %s", exc)
                continue
            meta[key] = value
        # the first chunk's own meta also goes to the file: give it only what the format holds
        table = Table(table, copy=False)
        table.meta = dict(meta)
    with CatalogWriter(path, meta=meta, overwrite=overwrite) as writer:
        writer.write(table)
