"""Parquet catalogs: record batches in, one row group per chunk out.

:class:`ParquetCatalogReader` streams record batches through the row groups;
:class:`ParquetCatalogWriter` writes one row group per chunk with astropy's
``table_meta_yaml`` schema metadata.  Use them through
:func:`~astroml_pipe.io.catalogs.open_catalog` and
:class:`~astroml_pipe.io.catalogs.CatalogWriter`; ``pyarrow`` is imported only
when a file is opened.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from astropy.table import meta as _table_yaml

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import (
    CatalogReader,
    CatalogWriter,
    ColumnInfo,
    _Cursor,
    _native,
    _reason,
    _specs_yaml,
)

__all__ = ["ParquetCatalogReader", "ParquetCatalogWriter"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------


def _arrow_is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def _arrow_to_numpy(chunks: Sequence[Any], info: ColumnInfo) -> np.ndarray:
    """Convert arrow array chunks of one column to a NumPy (masked) array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for arr in chunks:
        t = arr.type
        if isinstance(t, pa.FixedSizeListType):
            n = len(arr)
            values = arr.flatten()
            np_values = _arrow_to_numpy([values], ColumnInfo(info.name, info.dtype, ()))
            size = int(t.list_size)
            shape = info.shape if int(np.prod(info.shape)) == size else (size,)
            parts.append(np.asarray(np_values).reshape((n,) + tuple(shape)))
            continue
        if _arrow_is_text(t):
            is_bytes = pa.types.is_binary(t) or pa.types.is_large_binary(t)
            vals = arr.fill_null(b"" if is_bytes else "")
            obj = vals.to_numpy(zero_copy_only=False)
            if obj.size and isinstance(obj.flat[0], bytes):
                obj = np.array([x.decode("utf-8", "replace") for x in obj], dtype=object)
            width = info.dtype.itemsize // 4 if info.dtype.kind == "U" else 0
            parts.append(obj.astype(f"U{width}") if width else obj.astype(str))
            continue
        if arr.null_count:
            mask = pc.is_null(arr).to_numpy(zero_copy_only=False)
            if pa.types.is_floating(t):
                vals = arr.fill_null(float("nan")).to_numpy(zero_copy_only=False)
                parts.append(np.array(vals, copy=True))
            else:
                fill = False if pa.types.is_boolean(t) else 0
                try:
                    vals = arr.fill_null(fill).to_numpy(zero_copy_only=False)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
                    vals = arr.to_numpy(zero_copy_only=False)
                parts.append(np.ma.MaskedArray(np.array(vals, copy=True), mask=mask))
            continue
        parts.append(np.array(arr.to_numpy(zero_copy_only=False), copy=True))
    if not parts:
        dtype = info.dtype if info.dtype.itemsize else np.dtype("U1")
        return np.zeros((0,) + info.shape, dtype=dtype)
    if len(parts) == 1:
        return parts[0]
    if any(isinstance(x, np.ma.MaskedArray) for x in parts):
        return np.ma.concatenate(parts)
    return np.concatenate(parts)


class ParquetCatalogReader(CatalogReader):
    """Reader of a Parquet file, one record batch at a time.

    Consecutive reads (as by :meth:`iter_chunks`) stream through the row
    groups once; a read that jumps backwards restarts at the row group that
    holds its first row.  Units, descriptions, per-row shapes and table
    metadata come from astropy's ``table_meta_yaml`` schema metadata when
    present.  Fixed-size-list columns come back as 2-D (or N-D) arrays; nulls
    become NaN in floating-point columns and masked entries otherwise.
    """

    format = "parquet"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pf: Any = None
        p = self.path
        try:
            try:
                # no pre-buffering: it would hold whole row groups in memory
                self._pf = pq.ParquetFile(p, pre_buffer=False, buffer_size=1 << 20)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(
                    f"'{p}' is not a readable Parquet file: {_reason(exc)}"
                ) from exc
            md = self._pf.metadata
            self.n_rows = int(md.num_rows)
            sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
            self._rg_starts = np.cumsum([0] + sizes)
            self._describe()
        except BaseException:
            self.close()
            raise
        self._cursor_cols: tuple[str, ...] | None = None
        self._cursor: _Cursor | None = None
        self._batch = 65536

    def _describe(self) -> None:
        import pyarrow as pa

        schema = self._pf.schema_arrow
        raw = schema.metadata or {}
        md = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
        datatypes: dict[str, dict] = {}
        if "table_meta_yaml" in md:
            try:
                header = _table_yaml.get_header_from_yaml(md["table_meta_yaml"].split("\n"))
                self.meta = dict(header.get("meta", {}))
                self.meta.pop("__serialized_columns__", None)
                datatypes = {d["name"]: d for d in header.get("datatype", [])}
            except Exception:
                log.debug("unreadable table_meta_yaml in %s", self.path, exc_info=True)
        infos = []
        for field in schema:
            t = field.type
            shape: tuple[int, ...] = ()
            if isinstance(t, pa.FixedSizeListType):
                shape = (int(t.list_size),)
                sub = datatypes.get(field.name, {}).get("subtype")
                m = re.search(r"\[([\d,\s]+)\]", str(sub or ""))
                if m:
                    dims = tuple(int(x) for x in m.group(1).split(",") if x.strip())
                    if int(np.prod(dims)) == shape[0]:
                        shape = dims
                t = t.value_type
            if _arrow_is_text(t):
                length = md.get(f"table::len::{field.name}")
                known = length is not None and length.isdigit()
                dtype = np.dtype(f"U{int(length)}") if known else np.dtype("U")
            else:
                try:
                    dtype = np.dtype(t.to_pandas_dtype())
                except (NotImplementedError, TypeError):
                    dtype = np.dtype(object)
            d = datatypes.get(field.name, {})
            infos.append(
                ColumnInfo(
                    name=field.name,
                    dtype=_native(dtype),
                    shape=shape,
                    unit=str(d["unit"]) if d.get("unit") is not None else None,
                    description=str(d["description"]) if d.get("description") else None,
                )
            )
        self._set_columns(infos)

    def _open_at(self, start: int, names: tuple[str, ...]) -> tuple[Iterator[Any], int]:
        rg = int(np.searchsorted(self._rg_starts, start, side="right") - 1)
        rg = max(0, min(rg, self._pf.metadata.num_row_groups - 1))
        it = self._pf.iter_batches(
            batch_size=self._batch,
            row_groups=list(range(rg, self._pf.metadata.num_row_groups)),
            columns=list(names),
            use_threads=True,
        )
        return it, int(self._rg_starts[rg])

    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        if stop <= start or not names:
            return {n: _arrow_to_numpy([], self.columns[n]) for n in names}
        key = tuple(names)
        if self._cursor is None or key != self._cursor_cols:
            self._batch = _Cursor.block_rows(start, stop)
            self._cursor = _Cursor(
                lambda s: self._open_at(s, key),
                lambda b: b.num_rows,
                lambda b, i, j: b.slice(i, j - i),
            )
            self._cursor_cols = key
        cur = self._cursor
        pos = cur.position
        if pos is not None and start >= pos:
            here = np.searchsorted(self._rg_starts, pos, side="right")
            there = np.searchsorted(self._rg_starts, start, side="right")
            if there > here:  # jump ahead to the row group instead of decoding up to it
                cur.reset()
        batches = cur.read(start, stop, self.path)
        out = {}
        for k, name in enumerate(names):
            out[name] = _arrow_to_numpy([b.column(k) for b in batches], self.columns[name])
        return out

    def _close(self) -> None:
        self._cursor = None
        if self._pf is not None:
            try:
                self._pf.close()
            except Exception:
                pass
            self._pf = None


# --------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------


class ParquetCatalogWriter(CatalogWriter):
    """Parquet writer: one row group per chunk, astropy-compatible metadata.

    Array columns are fixed-size lists (their per-row shape is kept in the
    metadata); ``Table.read`` on the result restores units, descriptions and
    ``meta``.
    """

    format = "parquet"

    def _check_meta(self) -> None:
        self._meta = self._convert_meta(self.meta, self.path)

    def _open(self) -> None:
        self._writer: Any = None

    def _begin(self, arrays: list[np.ndarray]) -> None:
        self._meta = self._convert_meta({**self._table_meta, **self.meta}, self.path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._specs is not None
        fields = []
        metadata: dict[str, str] = {}
        for spec in self._specs:
            dt = spec.dtype
            if dt.kind == "U":
                t = pa.string()
                metadata[f"table::len::{spec.name}"] = str(dt.itemsize // 4)
            elif dt.kind == "S":
                t = pa.binary()
                metadata[f"table::len::{spec.name}"] = str(dt.itemsize)
            else:
                try:
                    t = pa.from_numpy_dtype(dt)
                except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError):
                    raise InputError(
                        f"column '{spec.name}' written to '{self.path}' has dtype {dt}, "
                        "which Parquet cannot hold"
                    ) from None
            if spec.shape:
                t = pa.list_(t, int(np.prod(spec.shape)))
            fields.append(pa.field(spec.name, t))
        metadata["table_meta_yaml"] = "\n".join(_specs_yaml(self._specs, self._meta))
        self._schema = pa.schema(
            fields, metadata={k.encode(): v.encode() for k, v in metadata.items()}
        )
        # Dictionary encoding only pays for text; for numbers (and long
        # array columns) it costs time for nothing.
        text = [s.name for s in self._specs if s.dtype.kind in "SU"]
        self._writer = pq.ParquetWriter(
            str(self._tmp),
            self._schema,
            version="2.6",
            compression="zstd",
            use_dictionary=text or False,
        )
        self._handles.append(self._writer)

    def _write_arrays(self, arrays: list[np.ndarray], n: int) -> None:
        import pyarrow as pa

        if n == 0:
            return
        assert self._specs is not None
        columns = []
        for spec, field, arr in zip(self._specs, self._schema, arrays):
            if spec.shape:
                flat = np.ascontiguousarray(arr).reshape(-1)
                values = pa.array(flat, type=field.type.value_type)
                size = int(np.prod(spec.shape))
                columns.append(pa.FixedSizeListArray.from_arrays(values, size))
            else:
                columns.append(pa.array(arr, type=field.type))
        chunk = pa.Table.from_arrays(columns, schema=self._schema)
        self._writer.write_table(chunk, row_group_size=n)

    def _finish(self) -> None:
        self._writer.close()
        self._writer = None

    def _discard(self) -> None:
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
            self._writer = None
