"""FITS catalogs: the memory-mapped table reader and the streaming table writer.

:class:`FitsCatalogReader` reads a binary (or ASCII) table HDU through a
memory map, a chunk of rows at a time; :class:`FitsCatalogWriter` writes a
primary HDU carrying the metadata and one binary table whose rows are encoded
straight to big-endian FITS records.  Use them through
:func:`~astroml_pipe.io.catalogs.open_catalog` and
:class:`~astroml_pipe.io.catalogs.CatalogWriter`.
"""

from __future__ import annotations

import gzip
import io
import logging
import mmap
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, Table
from astropy.table import meta as _table_yaml

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import (
    _FITS_SIGNATURE,
    _GZIP_MAGIC,
    CatalogReader,
    CatalogWriter,
    ColumnInfo,
    _decode_text,
    _meta_value,
    _name_list,
    _native,
    _reason,
    _Spec,
)

__all__ = ["FitsCatalogReader", "FitsCatalogWriter"]

log = logging.getLogger(__name__)

_FITS_BLOCK = 2880
_ASTROPY_YAML_BEGIN = "--BEGIN-ASTROPY-SERIALIZED-COLUMNS--"
_ASTROPY_YAML_END = "--END-ASTROPY-SERIALIZED-COLUMNS--"

_FITS_STRUCTURAL = frozenset(
    {
        "SIMPLE",
        "BITPIX",
        "NAXIS",
        "EXTEND",
        "XTENSION",
        "PCOUNT",
        "GCOUNT",
        "TFIELDS",
        "THEAP",
        "GROUPS",
        "END",
        "CHECKSUM",
        "DATASUM",
    }
)
_FITS_COLUMN_KEY = re.compile(
    r"^(TTYPE|TFORM|TUNIT|TDIM|TZERO|TSCAL|TNULL|TDISP|TCOMM|TUCD|TDMIN|TDMAX"
    r"|TLMIN|TLMAX|TBCOL)\d+$|^NAXIS\d*$"
)
_FITS_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")
_GENERIC_TTYPE_COMMENT = re.compile(
    r"^\s*(label|name) for (field|column)\s*\d*\s*$", re.IGNORECASE
)


# --------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _fits_meta(header: fits.Header, into: dict[str, Any]) -> None:
    """Copy the non-structural cards of ``header`` into ``into``."""
    for card in header.cards:
        key = card.keyword
        if not key:
            continue
        if key == "COMMENT":
            into.setdefault("comments", []).append(str(card.value))
            continue
        if key == "HISTORY":
            into.setdefault("history", []).append(str(card.value))
            continue
        if key in _FITS_STRUCTURAL or _FITS_COLUMN_KEY.match(key):
            continue
        value = card.value
        if isinstance(value, fits.card.Undefined):
            value = None
        into[key] = value


def _pop_astropy_yaml(meta: dict[str, Any]) -> dict[str, str]:
    """Remove astropy's serialized-columns COMMENT block; return descriptions."""
    comments = meta.get("comments")
    if not comments or _ASTROPY_YAML_BEGIN not in comments:
        return {}
    i0 = comments.index(_ASTROPY_YAML_BEGIN)
    try:
        i1 = comments.index(_ASTROPY_YAML_END, i0)
    except ValueError:
        return {}
    lines: list[str] = []
    continuation = False
    for line in comments[i0 + 1 : i1]:
        if continuation:
            lines[-1] = lines[-1] + line[:70]
        else:
            lines.append(line[:70])
        continuation = len(line) == 71
    del comments[i0 : i1 + 1]
    if not comments:
        del meta["comments"]
    try:
        header = _table_yaml.get_header_from_yaml(lines)
        return {
            d["name"]: d["description"]
            for d in header.get("datatype", [])
            if d.get("description")
        }
    except Exception:  # malformed block: descriptions are a nicety
        log.debug("could not parse astropy column metadata", exc_info=True)
        return {}


class FitsCatalogReader(CatalogReader):
    """Reader of a FITS binary (or ASCII) table HDU, through a memory map.

    A chunk slices only its rows out of the memory-mapped table and copies
    them to native byte order; pages of the map already consumed are given
    back to the operating system, so the resident memory stays bounded by the
    chunk.  Gzip-compressed files (``.fits.gz``) are decompressed whole.

    ``unit`` comes from ``TUNITn``; ``description`` from ``TCOMMn``, else from
    astropy's serialized column metadata, else from the comment of the
    ``TTYPEn`` card.  ``meta`` holds the non-structural keywords of the
    primary header and then of the table header (the table's win), with
    ``COMMENT``/``HISTORY`` cards as lists under ``comments``/``history``.
    Integer columns with ``TNULLn`` come back masked.

    Parameters
    ----------
    path : path-like
        The FITS file.
    hdu : int or str, optional
        HDU index or EXTNAME; default the first table HDU.
    """

    format = "fits"

    def __init__(self, path: str | os.PathLike[str], hdu: int | str | None = None) -> None:
        super().__init__(path)
        self._hdul: fits.HDUList | None = None
        self._data: Any = None
        self._fields: dict[str, int] = {}
        self._nulls: dict[str, int] = {}
        self._mmap: mmap.mmap | None = None
        self._dat_loc = 0
        self._row_bytes = 0
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._open(hdu)
            for w in caught:
                log.debug("while opening %s: %s", self.path, w.message)
        except BaseException:
            self.close()
            raise

    def _open(self, hdu: int | str | None) -> None:
        p = self.path
        gz = _is_gzip(p)
        if gz:
            try:
                with gzip.open(p, "rb") as fh:
                    head = fh.read(80)
                    size = fh.seek(0, io.SEEK_END)
            except (OSError, EOFError) as exc:
                raise InputError(
                    f"'{p}' is not a readable gzip-compressed FITS file ({_reason(exc)})"
                ) from exc
        else:
            size = p.stat().st_size
            with open(p, "rb") as fh:
                head = fh.read(80)
        if not head.startswith(_FITS_SIGNATURE):
            raise InputError(
                f"'{p}' is not a FITS file (expected it to begin with a SIMPLE card)"
            )
        try:
            self._hdul = fits.open(p, memmap=not gz, lazy_load_hdus=True)
        except Exception as exc:
            raise InputError(f"'{p}' is not a readable FITS file: {_reason(exc)}") from exc
        index, table_hdu = self._select(hdu, size)
        header = table_hdu.header
        naxis1 = int(header.get("NAXIS1", 0))
        naxis2 = int(header.get("NAXIS2", 0))
        pcount = int(header.get("PCOUNT", 0))
        dat_loc = int(self._hdul.fileinfo(index)["datLoc"])
        need = naxis1 * naxis2 + pcount
        if dat_loc + need > size:
            raise InputError(
                f"'{p}' is truncated: HDU {index} needs {need} bytes of table data "
                f"from byte {dat_loc}, but the file has {size} bytes"
            )
        self.n_rows = naxis2
        self._dat_loc, self._row_bytes = dat_loc, naxis1

        # metadata: primary header first, the table header wins
        meta: dict[str, Any] = {}
        if index != 0:
            _fits_meta(self._hdul[0].header, meta)
            meta.pop("EXTNAME", None)
        _fits_meta(header, meta)
        yaml_descriptions = _pop_astropy_yaml(meta)
        self.meta = meta

        try:
            data = table_hdu.data
        except Exception as exc:
            raise InputError(
                f"cannot read the table in HDU {index} of '{p}': {_reason(exc)}"
            ) from exc
        if data is None or not len(table_hdu.columns):
            self._set_columns([])
            return
        self._data = data
        self._mmap = getattr(getattr(self._hdul, "_file", None), "_mmap", None)

        infos = []
        empty = data[:0]
        for i, col in enumerate(table_hdu.columns):
            name = col.name
            if name in self._fields:
                raise InputError(f"'{p}' has two columns named '{name}' in HDU {index}")
            self._fields[name] = i
            sample = self._convert(empty, i, name)
            description = header.get(f"TCOMM{i + 1}") or yaml_descriptions.get(name)
            if not description:
                try:
                    description = header.comments[f"TTYPE{i + 1}"] or None
                except KeyError:
                    description = None
                if description and _GENERIC_TTYPE_COMMENT.match(description):
                    description = None  # cfitsio's "label for field 1"
            if col.null is not None and sample.dtype.kind in "iu":
                try:
                    self._nulls[name] = int(col.null)
                except (TypeError, ValueError):
                    pass
            infos.append(
                ColumnInfo(
                    name=name,
                    dtype=sample.dtype,
                    shape=tuple(sample.shape[1:]),
                    unit=col.unit or None,
                    description=str(description) if description else None,
                )
            )
        self._set_columns(infos)

    def _select(self, hdu: int | str | None, size: int) -> tuple[int, Any]:
        hdul = self._hdul
        assert hdul is not None
        p = self.path
        if hdu is None:
            kinds = []
            i = 0
            while True:
                try:
                    h = hdul[i]
                except IndexError:
                    break
                except Exception as exc:
                    raise InputError(
                        f"'{p}' is not a readable FITS file: HDU {i}: {_reason(exc)}"
                    ) from exc
                if _is_table_hdu(h):
                    return i, h
                kinds.append(f"{i}: {type(h).__name__}")
                i += 1
            if i:
                info = hdul.fileinfo(i - 1)
                end = int(info["datLoc"]) + int(info["datSpan"])
                if size > end:
                    with open(p, "rb") as fh:
                        fh.seek(end)
                        nxt = fh.read(8)
                    if nxt.startswith(b"XTENSION"):
                        raise InputError(
                            f"'{p}' is truncated or corrupt: the extension header at byte "
                            f"{end} cannot be read"
                        )
            raise InputError(f"no table HDU in '{p}' (HDUs: {'; '.join(kinds)})")
        try:
            h = hdul[hdu]
        except (IndexError, KeyError):
            n = len(hdul)
            if isinstance(hdu, str):
                names = [x.name for x in hdul if x.name]
                raise InputError(
                    f"'{p}' has no HDU named '{hdu}' (EXTNAMEs: {_name_list(names)})"
                ) from None
            raise InputError(f"'{p}' has no HDU {hdu} (it has {n} HDUs)") from None
        except Exception as exc:
            raise InputError(f"cannot read HDU {hdu!r} of '{p}': {_reason(exc)}") from exc
        if not _is_table_hdu(h):
            raise InputError(
                f"HDU {hdu!r} of '{p}' is not a table (it is a {type(h).__name__}); "
                "expected a binary or ASCII table HDU"
            )
        return hdul.index(h), h

    def _convert(self, rows: Any, i: int, name: str) -> np.ndarray:
        arr = np.asarray(rows.field(i))
        kind = arr.dtype.kind
        if kind == "S":
            return _decode_text(arr, strip=True)
        if kind == "U":
            return np.char.rstrip(arr) if arr.size else arr.copy()
        if kind == "O":
            return np.array(arr, dtype=object, copy=True)
        return np.array(arr, dtype=_native(arr.dtype), copy=True)

    def _read(self, start: int, stop: int, names: list[str]) -> dict[str, np.ndarray]:
        if self._data is None:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = self._data[start:stop]
            out: dict[str, np.ndarray] = {}
            for name in names:
                arr = self._convert(rows, self._fields[name], name)
                null = self._nulls.get(name)
                if null is not None:
                    arr = np.ma.MaskedArray(arr, mask=arr == null)
                out[name] = arr
        del rows
        self._release(start, stop)
        return out

    def _release(self, start: int, stop: int) -> None:
        """Drop the mapped pages of rows start:stop from this process."""
        mm = self._mmap
        if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        lo = (self._dat_loc + start * self._row_bytes) // page * page
        hi = (self._dat_loc + stop * self._row_bytes) // page * page
        if hi > lo:
            try:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            except (OSError, ValueError):
                pass

    def _close(self) -> None:
        data, self._data = self._data, None
        self._mmap = None
        if data is not None:
            # astropy's FITS_rec, when deleted, copies every column still
            # referenced by the HDU's column definitions into memory (the
            # whole table); detach them first.
            for col in list(getattr(data, "_col_weakrefs", ())):
                try:
                    del col.array
                except Exception:
                    pass
            del data
        if self._hdul is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._hdul.close()
            finally:
                self._hdul = None


def _is_table_hdu(h: Any) -> bool:
    comp = getattr(fits, "CompImageHDU", None)
    if comp is not None and isinstance(h, comp):
        return False
    return isinstance(h, (fits.BinTableHDU, fits.TableHDU))


# --------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))


def _fits_unit(unit: u.UnitBase | None) -> str | None:
    if unit is None:
        return None
    try:
        return _ascii(unit.to_string(format="fits"))
    except (ValueError, TypeError):
        return _ascii(unit.to_string())


def _fits_meta_cards(meta: Mapping[str, Any], path: Path) -> list[fits.Card]:
    """FITS cards for writer metadata; InputError for what FITS cannot hold."""
    cards: list[fits.Card] = []
    for key, raw in meta.items():
        key = str(key)
        upper = key.upper()
        if upper in ("COMMENT", "COMMENTS", "HISTORY"):
            kind = "HISTORY" if upper == "HISTORY" else "COMMENT"
            lines = [raw] if isinstance(raw, str) else list(raw or [])
            for line in lines:
                cards.append(fits.Card(kind, _ascii(line)))
            continue
        if upper in _FITS_STRUCTURAL or _FITS_COLUMN_KEY.match(upper) or upper == "EXTEND":
            raise InputError(
                f"metadata key '{key}' for '{path}' is a reserved FITS keyword"
            )
        value, comment = _meta_value(raw)
        if value is not None and not isinstance(value, (str, bool, int, float)):
            raise InputError(
                f"metadata '{key}' for '{path}' is a {type(value).__name__}; FITS headers "
                "hold strings, numbers and booleans"
            )
        keyword = upper if _FITS_KEYWORD.match(upper) else f"HIERARCH {upper}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. an over-long comment is truncated
                card = fits.Card(keyword, value, _ascii(comment) if comment else None)
                card.verify("exception")
                str(card)  # formats the image; raises for NaN, non-ASCII, too long
        except Exception as exc:
            raise InputError(
                f"metadata '{key}' for '{path}' cannot be a FITS header card: {_reason(exc)}"
            ) from exc
        cards.append(card)
    return cards


_BOOL_TF = np.array([ord("F"), ord("T")], dtype=np.uint8)


class FitsCatalogWriter(CatalogWriter):
    """Streaming FITS writer: a primary HDU carrying ``meta``, then one binary table.

    The table header (TFORM/TDIM/TZERO from astropy for the first chunk, plus
    ``TUNITn``, ``TCOMMn``, a ``TTYPEn`` card comment and astropy's
    serialized column metadata so that ``Table.read`` restores descriptions)
    is written with ``NAXIS2 = 0``; each chunk's rows are encoded straight to
    big-endian FITS records and appended; :meth:`close` pads the data to a
    multiple of 2880 bytes and rewrites ``NAXIS2`` in place.
    """

    format = "fits"
    _CHECK_ROWS = 1000
    _BLOCK_BYTES = 4 << 20

    @staticmethod
    def _convert_meta(meta: Mapping[str, Any], path: Path) -> list[fits.Card]:
        """``meta`` as header cards; InputError for what FITS cannot hold."""
        return _fits_meta_cards(meta, path)

    def _check_meta(self) -> None:
        self._meta_cards = self._convert_meta(self.meta, self.path)

    def _open(self) -> None:
        assert self._tmp is not None
        self._fh = open(self._tmp, "r+b")
        self._handles.append(self._fh)
        header = fits.PrimaryHDU().header
        for card in self._meta_cards:
            header.append(card, end=True)
        self._fh.write(header.tostring().encode("ascii"))
        self._table_start = self._fh.tell()
        self._naxis2_offset = -1
        self._row_bytes = 0
        self._use_astropy = False

    def _convert_dtype(self, spec: _Spec, data: np.ndarray) -> np.ndarray:
        kind = data.dtype.kind
        if kind == "i" and data.dtype.itemsize == 1:
            return data.astype(np.int16)
        if kind == "f" and data.dtype.itemsize == 2:
            return data.astype(np.float32)
        if kind == "U":
            try:
                return data.astype(f"S{max(data.dtype.itemsize // 4, 1)}")
            except UnicodeEncodeError:
                raise InputError(
                    f"column '{spec.name}' written to '{self.path}' has non-ASCII text, "
                    "which FITS tables cannot hold"
                ) from None
        return data

    def _raw_dtype(
        self, arrays: list[np.ndarray]
    ) -> tuple[np.dtype, list[Callable[[np.ndarray], np.ndarray]]]:
        fields = []
        encoders: list[Callable[[np.ndarray], np.ndarray]] = []
        for k, arr in enumerate(arrays):
            dt = arr.dtype
            shape = arr.shape[1:]
            if dt.kind == "b":
                raw, enc = np.dtype("u1"), (lambda a: _BOOL_TF[a.view(np.uint8)])
            elif dt.kind == "u" and dt.itemsize > 1:
                signed = np.dtype(f">i{dt.itemsize}")
                offset = dt.type(1 << (8 * dt.itemsize - 1))
                raw = signed
                enc = (lambda a, o=offset, s=signed.newbyteorder("="): (a ^ o).view(s))
            elif dt.kind == "S":
                raw, enc = dt, (lambda a: a)
            elif dt.kind in "iufc":
                raw, enc = dt.newbyteorder(">"), (lambda a: a)
            else:  # pragma: no cover - _prepare filters dtypes
                raise InputError(f"column {k} written to '{self.path}' has unsupported dtype {dt}")
            fields.append((f"f{k}", raw, shape))
            encoders.append(enc)
        return np.dtype(fields), encoders

    def _encode(
        self, arrays: list[np.ndarray], n: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Big-endian FITS records of rows ``0:n`` of ``arrays`` (into ``out``)."""
        rec = np.empty(n, dtype=self._rec_dtype) if out is None else out[:n]
        for k, (arr, enc) in enumerate(zip(arrays, self._encoders)):
            rec[f"f{k}"] = enc(arr)
        return rec.view(np.uint8) if n else np.zeros(0, np.uint8)

    def _astropy_hdu(self, arrays: list[np.ndarray], n: int) -> fits.BinTableHDU:
        assert self._specs is not None
        struct = np.empty(
            n, dtype=[(s.name, a.dtype, a.shape[1:]) for s, a in zip(self._specs, arrays)]
        )
        for s, a in zip(self._specs, arrays):
            struct[s.name] = a[:n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.BinTableHDU.from_columns(struct)

    @staticmethod
    def _astropy_bytes(hdu: fits.BinTableHDU) -> bytes:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
        start = _FITS_BLOCK + len(hdu.header.tostring())
        size = hdu.header["NAXIS1"] * hdu.header["NAXIS2"]
        return buf.getvalue()[start : start + size]

    def _begin(self, arrays: list[np.ndarray]) -> None:
        assert self._specs is not None
        n_check = min(len(arrays[0]) if arrays else 0, self._CHECK_ROWS)
        hdu = self._astropy_hdu(arrays, n_check)
        header = hdu.header.copy()
        self._rec_dtype, self._encoders = self._raw_dtype(arrays)
        self._block_rows = max(1, self._BLOCK_BYTES // max(self._rec_dtype.itemsize, 1))
        self._buffer: np.ndarray | None = None
        self._row_bytes = int(header["NAXIS1"])
        # Check that our direct encoding gives astropy's bytes; if not, every
        # chunk goes through astropy (slower, but right).
        mine = self._encode([a[:n_check] for a in arrays], n_check).tobytes()
        if self._rec_dtype.itemsize != self._row_bytes or mine != self._astropy_bytes(hdu):
            log.warning(
                "FITS rows for '%s' are encoded through astropy (slower): direct encoding "
                "differs for dtypes %s",
                self.path,
                [str(a.dtype) for a in arrays],
            )
            self._use_astropy = True

        header["NAXIS2"] = 0
        for card in self._convert_meta(self._table_meta, self.path):
            header.append(card, end=True)
        yaml_specs = []
        for i, spec in enumerate(self._specs, start=1):
            unit = _fits_unit(spec.unit)
            if unit:
                header.set(f"TUNIT{i}", unit, after=f"TFORM{i}")
            if spec.description:
                text = _ascii(spec.description)
                key = f"TTYPE{i}"
                prefix = len(fits.Card(key, header[key], "x").image.rstrip()) - 1
                room = 80 - prefix
                if room > 0:
                    header.comments[key] = text[:room]
                header.set(f"TCOMM{i}", text, after=key)
            yaml_specs.append(spec)
        if any(s.description for s in yaml_specs):
            for line in self._astropy_yaml_comments(yaml_specs):
                header.add_comment(line)
        image = header.tostring().encode("ascii")
        idx = -1
        for pos in range(0, len(image), 80):
            if image[pos : pos + 8] == b"NAXIS2  ":
                idx = pos
                break
        if idx < 0:  # pragma: no cover - astropy always writes NAXIS2
            raise InputError(f"cannot write output '{self.path}': no NAXIS2 card")
        self._naxis2_offset = self._table_start + idx
        self._naxis2_comment = header.comments["NAXIS2"]
        self._fh.seek(self._table_start)
        self._fh.write(image)
        self._data_start = self._fh.tell()

    @staticmethod
    def _astropy_yaml_comments(specs: list[_Spec]) -> list[str]:
        """COMMENT lines of astropy's serialized column block (descriptions)."""
        cols = [
            Column(
                np.zeros((0,) + s.shape, dtype=s.dtype),
                name=s.name,
                description=s.description,
            )
            for s in specs
        ]
        table = Table(cols, copy=False)
        table.meta["__serialized_columns__"] = {}
        lines = [_ASTROPY_YAML_BEGIN]
        for line in _table_yaml.get_yaml_from_table(table):
            line = _ascii(line)
            if not line:
                lines.append("")
                continue
            pieces = [line[i : i + 70] for i in range(0, len(line), 70)]
            lines.extend(p + "\\" for p in pieces[:-1])
            lines.append(pieces[-1])
        lines.append(_ASTROPY_YAML_END)
        return lines

    def _write_arrays(self, arrays: list[np.ndarray], n: int) -> None:
        if n == 0:
            return
        if self._use_astropy:
            self._fh.write(self._astropy_bytes(self._astropy_hdu(arrays, n)))
            return
        # Encode a few MiB of rows at a time into a reused buffer: the bytes
        # are still in cache when they are copied to the file.
        block = self._block_rows
        if self._buffer is None:
            self._buffer = np.empty(block, dtype=self._rec_dtype)
        for i in range(0, n, block):
            j = min(i + block, n)
            self._fh.write(self._encode([a[i:j] for a in arrays], j - i, self._buffer))

    def _finish(self) -> None:
        fh = self._fh
        size = self.n_written * self._row_bytes
        fh.seek(self._data_start + size)
        fh.write(b"\0" * ((-size) % _FITS_BLOCK))
        fh.truncate()
        fh.seek(self._naxis2_offset)
        card = fits.Card("NAXIS2", self.n_written, self._naxis2_comment).image
        assert len(card) == 80
        fh.write(card.encode("ascii"))
        fh.close()

    def _discard(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()
