"""HDF5 catalogs: tables stored as 1-D compound datasets, or as a group of column datasets.

:class:`Hdf5CatalogReader` reads row slices of a compound dataset, or of
a group whose datasets are the columns (all of the same length, as written
by LSST-DESC's ``tables_io`` and RAIL, e.g. ``photometry/mag_u_lsst``);
:class:`Hdf5CatalogWriter` appends chunks to a resizable one.  Units,
descriptions and table metadata travel in astropy's YAML dataset
``<dataset>.__table_column_meta__``.  Use them through
:func:`~astroml_pipe.io.catalogs.open_catalog` and
:class:`~astroml_pipe.io.catalogs.CatalogWriter`; ``h5py`` is imported only
when a file is opened.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from astropy.table import meta as _table_yaml

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import (
    CatalogReader,
    CatalogWriter,
    ColumnInfo,
    _decode_text,
    _name_list,
    _native,
    _reason,
    _Spec,
    _specs_yaml,
    _text_width,
    _unreadable_rows,
)

__all__ = ["Hdf5CatalogReader", "Hdf5CatalogWriter"]

log = logging.getLogger(__name__)

#: Suffix of astropy's YAML dataset of column metadata, beside the table.
_HDF5_META_SUFFIX = ".__table_column_meta__"


# --------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------


class Hdf5CatalogReader(CatalogReader):
    """Reader of a table stored as a 1-D compound HDF5 dataset or as a group of column datasets.

    Rows are read as h5py slices of the chosen fields.  A *column group* is
    a group whose members are all datasets with the same first dimension
    (the rows); each dataset is a column (a ``unit`` or ``description``
    attribute is used when present), and ``meta`` holds the group's
    attributes.  Units, descriptions
    and table metadata come from astropy's ``<dataset>.__table_column_meta__``
    YAML dataset when present (as written by ``Table.write(...,
    serialize_meta=True)`` and by :class:`Hdf5CatalogWriter`); otherwise
    ``meta`` holds the dataset's attributes.  Byte-string fields come back as
    ``str`` (decoded as UTF-8).

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    dataset : str, optional
        Path of the dataset, of a group holding exactly one table, or of a
        column group inside the file; default the only table in the file.
    """

    format = "hdf5"

    def __init__(self, path: str | os.PathLike[str], dataset: str | None = None) -> None:
        super().__init__(path)
        import h5py

        self._file: Any = None
        self._ds: Any = None
        self._columns: dict[str, Any] | None = None  # column name -> dataset, for a column group
        self._text: set[str] = set()
        p = self.path
        try:
            if not h5py.is_hdf5(p):
                raise InputError(f"'{p}' is not an HDF5 file")
            try:
                self._file = h5py.File(p, "r")
            except OSError as exc:
                raise InputError(f"cannot open HDF5 file '{p}': {_reason(exc)}") from exc
            self._ds = self._select(dataset)
            self._describe()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _tables_in(group: Any) -> list[str]:
        import h5py

        found: list[str] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.dtype.names and obj.ndim == 1:
                found.append(name)

        group.visititems(visit)
        return found

    @staticmethod
    def _is_column_group(group: Any) -> bool:
        """Whether ``group`` holds only datasets (no compound ones), all with the same number of rows."""
        import h5py

        members = list(group.values())
        if not members or not all(isinstance(m, h5py.Dataset) for m in members):
            return False
        lengths = {m.shape[0] if m.ndim else None for m in members}
        return None not in lengths and len(lengths) == 1 and not any(m.dtype.names for m in members)

    @classmethod
    def _column_groups_in(cls, group: Any) -> list[str]:
        import h5py

        found = ["/"] if cls._is_column_group(group) else []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group) and cls._is_column_group(obj):
                found.append(name)

        group.visititems(visit)
        return found

    def _select(self, dataset: str | None) -> Any:
        import h5py

        p = self.path
        f = self._file
        if dataset is not None:
            dataset = dataset.strip("/") or "/"
            if dataset not in f:
                tables = self._tables_in(f)
                raise InputError(
                    f"no dataset '{dataset}' in HDF5 file '{p}' "
                    f"(table datasets: {_name_list(tables)})"
                )
            obj = f[dataset]
            if isinstance(obj, h5py.Group):
                tables = self._tables_in(obj)
                if not tables and self._is_column_group(obj):
                    return obj
                if len(tables) != 1:
                    raise InputError(
                        f"group '{dataset}' of '{p}' holds {len(tables)} table datasets "
                        f"({_name_list(tables)}); name one as '{p}:{dataset}/<name>'"
                    )
                return obj[tables[0]]
            if not (obj.dtype.names and obj.ndim == 1):
                raise InputError(
                    f"dataset '{dataset}' of '{p}' is not a table (expected a 1-D compound "
                    f"dataset; it has shape {obj.shape} and dtype {obj.dtype})"
                )
            return obj
        tables = self._tables_in(f) + self._column_groups_in(f)
        if not tables:
            raise InputError(
                f"no table in HDF5 file '{p}' (expected a 1-D compound dataset, or a group of "
                f"column datasets with the same number of rows)"
            )
        if len(tables) > 1:
            raise InputError(
                f"HDF5 file '{p}' holds several table datasets ({_name_list(tables)}); "
                f"choose one as '{p}:<dataset>' or with hdu='<dataset>'"
            )
        return f[tables[0]]

    def _describe(self) -> None:
        import h5py

        ds = self._ds
        if isinstance(ds, h5py.Group):
            self._describe_column_group(ds)
            return
        self.n_rows = int(ds.shape[0])
        units: dict[str, str] = {}
        descriptions: dict[str, str] = {}
        meta_name = ds.name + _HDF5_META_SUFFIX
        header = None
        if meta_name in self._file:
            try:
                lines = [
                    x.decode("utf-8") if isinstance(x, bytes) else str(x)
                    for x in self._file[meta_name][()]
                ]
                header = _table_yaml.get_header_from_yaml(lines)
            except Exception:
                log.debug("unreadable column metadata in %s", self.path, exc_info=True)
        if header is not None:
            self.meta = dict(header.get("meta", {}))
            self.meta.pop("__serialized_columns__", None)
            for d in header.get("datatype", []):
                if d.get("unit") is not None:
                    units[d["name"]] = str(d["unit"])
                if d.get("description"):
                    descriptions[d["name"]] = str(d["description"])
        else:
            self.meta = {
                k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
                for k, v in ds.attrs.items()
            }
        infos = []
        for name in ds.dtype.names:
            fdt = ds.dtype.fields[name][0]
            base, shape = (fdt.subdtype if fdt.subdtype else (fdt, ()))
            infos.append(self._column_info(name, base, tuple(shape), units.get(name), descriptions.get(name)))
        self._set_columns(infos)

    def _column_info(self, name: str, base: np.dtype, shape: tuple[int, ...], unit: str | None,
                     description: str | None) -> ColumnInfo:
        """Column ``name`` of HDF5 type ``base``; text columns (byte or variable-length strings) become ``str``."""
        import h5py

        if base.kind == "S":
            dtype = np.dtype(f"U{max(base.itemsize, 1)}")
            self._text.add(name)
        elif base.kind == "O" and h5py.check_string_dtype(base) is not None:
            dtype = np.dtype("U")
            self._text.add(name)
        else:
            dtype = _native(base)
        return ColumnInfo(name=name, dtype=dtype, shape=shape, unit=unit, description=description)

    def _describe_column_group(self, group: Any) -> None:
        def text(value: Any) -> Any:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

        self._columns = dict(group.items())
        self.n_rows = int(next(iter(self._columns.values())).shape[0])
        self.meta = {k: text(v) for k, v in group.attrs.items()}
        infos = []
        for name, ds in self._columns.items():
            unit, description = (ds.attrs.get(key) for key in ("unit", "description"))
            infos.append(self._column_info(name, ds.dtype, tuple(ds.shape[1:]),
                                           None if unit is None else str(text(unit)),
                                           None if description is None else str(text(description))))
        self._set_columns(infos)

    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        if not names:
            return {}
        try:
            if self._columns is not None:
                raw = {name: self._columns[name][start:stop] for name in names}
            else:
                rec = self._ds.fields(list(names))[start:stop]
                raw = {name: rec[name] if rec.dtype.names else rec for name in names}
        except Exception as exc:
            raise _unreadable_rows(self.path, start, stop, exc) from exc
        out = {}
        for name, arr in raw.items():
            if name in self._text:
                if arr.dtype.kind == "O":
                    flat = [
                        x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                        for x in arr.ravel()
                    ]
                    arr = np.array(flat, dtype=str).reshape(arr.shape)
                else:
                    arr = _decode_text(arr, strip=False)
                    want = self.columns[name].dtype
                    if want.itemsize and arr.dtype != want:
                        arr = arr.astype(want)
            else:
                arr = np.array(arr, dtype=_native(arr.dtype), copy=True)
            out[name] = arr
        return out

    def _close(self) -> None:
        self._ds = None
        self._columns = None
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


# --------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------


class Hdf5CatalogWriter(CatalogWriter):
    """HDF5 writer: a resizable, chunked compound dataset ``data``.

    Units, descriptions and ``meta`` are stored in astropy's format, the YAML
    dataset ``data.__table_column_meta__``, so both
    ``Table.read(path, path='data')`` and :class:`Hdf5CatalogReader` restore
    them.  Text is stored as UTF-8 byte strings (astropy returns them as
    bytes; this module's reader decodes them to ``str``).
    """

    format = "hdf5"
    dataset = "data"

    def _check_meta(self) -> None:
        self._meta = self._convert_meta(self.meta, self.path)

    def _open(self) -> None:
        import h5py

        self._h5: Any = h5py.File(self._tmp, "w")
        self._handles.append(self._h5)
        self._ds: Any = None

    def _convert_dtype(self, spec: _Spec, data: np.ndarray) -> np.ndarray:
        if data.dtype.kind == "U":
            try:
                return data.astype(f"S{max(data.dtype.itemsize // 4, 1)}")
            except UnicodeEncodeError:
                enc = np.char.encode(data, "utf-8")
                return enc if enc.dtype.itemsize else enc.astype("S1")
        return data

    def _begin(self, arrays: list[np.ndarray]) -> None:
        assert self._specs is not None
        self._meta = self._convert_meta({**self._table_meta, **self.meta}, self.path)
        fields = []
        for spec, arr in zip(self._specs, arrays):
            dt = arr.dtype
            if spec.dtype.kind == "U":  # room for the first chunk's width in ASCII
                dt = np.dtype(f"S{max(dt.itemsize, spec.dtype.itemsize // 4, 1)}")
            fields.append((spec.name, dt, spec.shape))
        self._rec_dtype = np.dtype(fields)
        rows = max(1, min(65536, (1 << 20) // max(self._rec_dtype.itemsize, 1)))
        self._ds = self._h5.create_dataset(
            self.dataset, shape=(0,), maxshape=(None,), dtype=self._rec_dtype, chunks=(rows,)
        )
        lines = _specs_yaml(self._specs, self._meta)
        self._h5.create_dataset(
            self.dataset + _HDF5_META_SUFFIX, data=[line.encode("utf-8") for line in lines]
        )

    def _write_arrays(self, arrays: list[np.ndarray], n: int) -> None:
        if n == 0:
            return
        rec = np.empty(n, dtype=self._rec_dtype)
        for name, arr in zip(self._rec_dtype.names, arrays):
            want = self._rec_dtype.fields[name][0]
            base = want.base if want.subdtype else want
            if base.kind == "S" and arr.dtype.itemsize > base.itemsize:
                longest = _text_width(arr)
                if longest > base.itemsize:
                    raise InputError(
                        f"column '{name}' written to '{self.path}' has text of {longest} "
                        f"bytes, longer than the {base.itemsize} fixed by the first chunk"
                    )
            rec[name] = arr
        n0 = self._ds.shape[0]
        self._ds.resize((n0 + n,))
        self._ds[n0 : n0 + n] = rec

    def _finish(self) -> None:
        self._h5.close()
        self._h5 = None

    def _discard(self) -> None:
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None
