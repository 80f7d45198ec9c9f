"""Tests of astroml_pipe.io.fits: the memory-mapped FITS reader and streaming writer."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table, vstack

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import CatalogWriter, open_catalog, read_catalog, write_catalog
from astroml_pipe.io.fits import FitsCatalogWriter


def test_fits_multidimensional_and_fallback_encoding(
    tmp_path, monkeypatch, write_in_chunks, assert_same_values
):
    table = Table()
    table["cube"] = Column(np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3), unit="adu")
    table["small"] = np.array([-3, 0, 5, 127], dtype=np.int8)
    table["big"] = np.array([0, 1, 2**32 - 1, 7], dtype=np.uint32)
    path = tmp_path / "direct.fits"
    write_in_chunks(table, path, chunk=3)
    back = read_catalog(path)
    assert back["cube"].shape == (4, 2, 3)
    assert back["small"].dtype == np.int16  # FITS has no signed byte: widened
    assert_same_values(back, table)

    # If the direct record encoding ever disagrees with astropy's, the
    # writer falls back to astropy's encoder and the file is still right.
    def wrong(self, arrays, n, out=None):
        return np.zeros(n * self._rec_dtype.itemsize, np.uint8)

    monkeypatch.setattr(FitsCatalogWriter, "_encode", wrong)
    fallback = tmp_path / "fallback.fits"
    write_in_chunks(table, fallback, chunk=3)
    assert_same_values(read_catalog(fallback), table)


def test_fits_memmap_slice(tmp_path, make_table, assert_same_values):
    table = make_table(1000)
    path = tmp_path / "big.fits"
    table.write(path)  # a file written by astropy, not by us
    with open_catalog(path) as reader:
        assert reader._mmap is not None  # really memory-mapped
        part = reader.read(400, 430, columns=["flux", "sed", "name"])
        assert len(part) == 30
        for name in part.colnames:
            arr = np.asarray(part[name])
            assert arr.dtype.isnative
            assert arr.flags.owndata or arr.base is None or not isinstance(arr.base, np.memmap)
            assert arr.flags.writeable
        assert_same_values(part, table[400:430]["flux", "sed", "name"])
        assert part["flux"].unit == u.Unit("erg / (s cm2)")
        # astropy serialized the descriptions in COMMENT cards; they come back
        assert part["sed"].description == "five values"
        assert "comments" not in reader.meta
        chunks = list(reader.iter_chunks(333, columns=["mag_r"]))
        assert [len(c) for c in chunks] == [333, 333, 333, 1]
        assert_same_values(vstack(chunks), table["mag_r",])


def test_fits_gzip_and_hdu_selection(tmp_path, make_table, assert_same_values):
    table = make_table()
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(np.zeros((3, 3))),
            fits.ImageHDU(np.zeros((2, 2)), name="IMG"),
            fits.table_to_hdu(table[:5]),
            fits.table_to_hdu(table),
        ]
    )
    hdul[3].name = "SOURCES"
    path = tmp_path / "multi.fits"
    hdul.writeto(path)
    with open_catalog(path) as reader:  # first table HDU
        assert reader.n_rows == 5
    assert len(read_catalog(path, hdu="SOURCES")) == len(table)
    assert len(read_catalog(path, hdu=3)) == len(table)
    with pytest.raises(InputError, match="HDU 'IMG' of .* is not a table"):
        open_catalog(path, hdu="IMG")
    gz = tmp_path / "multi.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert_same_values(read_catalog(gz, hdu="SOURCES"), table)


def test_fits_tnull_is_masked(tmp_path):
    col = fits.Column(name="n", format="J", null=-1, array=np.array([1, -1, 3], dtype=np.int32))
    path = tmp_path / "null.fits"
    fits.BinTableHDU.from_columns([col]).writeto(path)
    back = read_catalog(path)
    assert isinstance(back["n"], MaskedColumn)
    assert back["n"].mask.tolist() == [False, True, False]


def test_provenance_in_fits_primary_header(tmp_path, make_table, write_in_chunks):
    meta = {
        "ASTROMLV": ("0.1.dev0", "astroml-pipe version"),
        "PIPEHASH": "3f2a9c",
        "MODELID": "photoz.catboost@abc123",
        "INPUTSHA": ("e3b0c44298fc1c149afbf4c8996fb924", "sha256 of the input"),
        "DATE": "2024-01-01T00:00:00",
        "pipeline_name": "survey-demo",
        "HISTORY": ["made by a test"],
    }
    path = tmp_path / "result.fits"
    write_in_chunks(make_table(), path, meta=meta)
    with fits.open(path) as hdul:
        header = hdul[0].header
        assert header["ASTROMLV"] == "0.1.dev0"
        assert header.comments["ASTROMLV"] == "astroml-pipe version"
        assert header["INPUTSHA"] == "e3b0c44298fc1c149afbf4c8996fb924"
        assert header["PIPELINE_NAME"] == "survey-demo"  # HIERARCH card
        assert "made by a test" in str(header["HISTORY"])
    reader_meta = read_catalog(path).meta
    assert reader_meta["MODELID"] == "photoz.catboost@abc123"
    assert reader_meta["PIPELINE_NAME"] == "survey-demo"
    assert reader_meta["history"] == ["made by a test"]

    with pytest.raises(InputError, match="reserved FITS keyword"):
        CatalogWriter(tmp_path / "x.fits", meta={"NAXIS": 2})
    with pytest.raises(InputError, match="metadata 'BAD' .* FITS header"):
        CatalogWriter(tmp_path / "x.fits", meta={"BAD": {"a": 1}})
    assert os.listdir(tmp_path) == ["result.fits"]


def test_fits_bad_inputs(tmp_path, make_table, check_error):
    good = tmp_path / "good.fits"
    write_catalog(make_table(200), good)

    text = tmp_path / "text.fits"
    text.write_text("ra,dec\n1,2\n")
    with pytest.raises(InputError) as e:
        open_catalog(text)
    check_error(e, "text.fits", "is not a FITS file")

    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(image)
    with pytest.raises(InputError) as e:
        open_catalog(image)
    check_error(e, f"no table HDU in '{image}'")

    raw = good.read_bytes()
    half = tmp_path / "half.fits"
    half.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError) as e:
        open_catalog(half)
    check_error(e, "half.fits", "truncated")
    stub = tmp_path / "stub.fits"
    stub.write_bytes(raw[: 2880 + 800])  # cut inside the table header
    with pytest.raises(InputError) as e:
        open_catalog(stub)
    check_error(e, "stub.fits", "truncated")
    half_gz = tmp_path / "half.fits.gz"
    half_gz.write_bytes(gzip.compress(raw)[:1000])
    with pytest.raises(InputError) as e:
        open_catalog(half_gz)
    check_error(e, "half.fits.gz")
