"""Text catalogs: CSV (streamed with pandas) and ECSV (read whole with astropy).

Both are read-only formats here: :class:`CsvCatalogReader` and
:class:`EcsvCatalogReader`.  Use them through
:func:`~astroml_pipe.io.catalogs.open_catalog`; ``pandas`` is imported only
when a CSV file is opened.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import (
    CatalogReader,
    ColumnInfo,
    _column_parts,
    _Cursor,
    _native,
    _reason,
)

__all__ = ["CsvCatalogReader", "EcsvCatalogReader"]

log = logging.getLogger(__name__)


class CsvCatalogReader(CatalogReader):
    """Reader of a CSV file with a header line, through ``pandas.read_csv``.

    Opening the file makes one streaming pass over it (with pandas chunks) to
    count the rows and settle one dtype per column (integers become floats if
    some chunk needs it; anything non-numeric is text).  Reads then stream
    forwards with ``read_csv(chunksize=...)``; a read that jumps backwards
    restarts from the top.  CSV files carry no units or descriptions.
    """

    format = "csv"
    _SCAN_ROWS = 100_000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._cursor: _Cursor | None = None
        self._pd_reader: Any = None
        self._dtypes: dict[str, Any] = {}
        self._scan()

    def _reader(self, chunksize: int, dtype: Mapping[str, Any] | None = None) -> Any:
        import pandas as pd

        return pd.read_csv(self.path, chunksize=chunksize, dtype=dtype, comment=None)

    def _scan(self) -> None:
        import pandas as pd

        p = self.path
        kinds: dict[str, str] = {}
        n = 0
        try:
            with self._reader(self._SCAN_ROWS) as reader:
                for df in reader:
                    n += len(df)
                    for name in df.columns:
                        kind = df[name].dtype.kind
                        k = {"i": "i", "u": "i", "f": "f", "b": "b"}.get(kind, "O")
                        old = kinds.get(name, k)
                        if old != k:
                            k = "f" if {old, k} <= {"i", "f"} else "O"
                        kinds[name] = k
            if not kinds:  # header line only
                kinds = {c: "O" for c in pd.read_csv(p, nrows=0).columns}
            text = [c for c, k in kinds.items() if k == "O"]
            widths = self._text_widths(text) if text and n else {}
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise InputError(f"'{p}' is not a readable CSV catalog: {_reason(exc)}") from exc
        self.n_rows = n
        self._dtypes = {
            c: {"i": "int64", "f": "float64", "O": str}[k] for c, k in kinds.items() if k != "b"
        }
        infos = []
        for name, k in kinds.items():
            dtype = {"i": np.dtype("int64"), "f": np.dtype("float64"), "b": np.dtype(bool)}.get(k)
            if dtype is None:
                dtype = np.dtype(f"U{widths.get(name, 1)}")
            infos.append(ColumnInfo(name=str(name), dtype=dtype, shape=()))
        self._set_columns(infos)

    def _text_widths(self, names: list[str]) -> dict[str, int]:
        import pandas as pd

        widths = {n: 1 for n in names}
        for df in pd.read_csv(self.path, chunksize=self._SCAN_ROWS, usecols=names, dtype=str):
            for name in names:
                s = df[name].dropna()
                if len(s):
                    widths[name] = max(widths[name], int(s.str.len().max()))
        return widths

    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        if stop <= start:
            return {n: np.zeros(0, dtype=self.columns[n].dtype) for n in names}
        if self._cursor is None:
            size = _Cursor.block_rows(start, stop)

            def open_at(_start: int) -> tuple[Iterator[Any], int]:
                if self._pd_reader is not None:
                    self._pd_reader.close()
                self._pd_reader = self._reader(size, self._dtypes)
                return iter(self._pd_reader), 0

            self._cursor = _Cursor(open_at, len, lambda df, i, j: df.iloc[i:j])
        frames = self._cursor.read(start, stop, self.path)
        out = {}
        for name in names:
            info = self.columns[name]
            parts = []
            for df in frames:
                s = df[name]
                if info.dtype.kind == "U":
                    parts.append(s.fillna("").to_numpy(dtype=str).astype(info.dtype))
                elif info.dtype.kind == "b":
                    parts.append(s.to_numpy(dtype=bool))
                else:
                    parts.append(s.to_numpy(dtype=info.dtype))
            out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return out

    def _close(self) -> None:
        self._cursor = None
        if self._pd_reader is not None:
            self._pd_reader.close()
            self._pd_reader = None


class EcsvCatalogReader(CatalogReader):
    """Reader of an ECSV file.

    ECSV is **not streamed**: the whole table is read with astropy when the
    file is opened, and chunks are slices of it.  Use it for small tables.
    """

    format = "ecsv"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = Table.read(self.path, format="ascii.ecsv")
        except Exception as exc:
            raise InputError(f"'{self.path}' is not a readable ECSV file: {_reason(exc)}") from exc
        self._arrays: dict[str, np.ndarray] = {}
        infos = []
        for name in table.colnames:
            col = table[name]
            parts = _column_parts(col)
            if parts is None:
                raise InputError(
                    f"column '{name}' of '{self.path}' is a {type(col).__name__}; "
                    "expected plain columns"
                )
            data, unit, description = parts
            if isinstance(data, np.ma.MaskedArray) and not np.ma.getmaskarray(data).any():
                data = data.data
            self._arrays[name] = data if isinstance(data, np.ma.MaskedArray) else np.asarray(data)
            arr = self._arrays[name]
            infos.append(
                ColumnInfo(
                    name=name,
                    dtype=_native(arr.dtype),
                    shape=tuple(arr.shape[1:]),
                    unit=unit.to_string() if unit is not None else None,
                    description=description or None,
                )
            )
        self.n_rows = len(table)
        self.meta = dict(table.meta)
        self._set_columns(infos)

    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            arr = self._arrays[name][start:stop]
            out[name] = arr.astype(_native(arr.dtype), copy=True)
        return out

    def _close(self) -> None:
        self._arrays = {}

