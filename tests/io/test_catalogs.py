"""Tests of astroml_pipe.io.catalogs: the shared entry points, for every format.

Chunked reading and atomic writing through :func:`open_catalog`,
:func:`read_catalog`, :func:`write_catalog` and :class:`CatalogWriter`; the
format-specific behaviour is tested in test_fits.py, test_hdf5.py,
test_parquet.py and test_text.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import MaskedColumn, Table, vstack

from astroml_pipe.core.errors import InputError
from astroml_pipe.io import catalogs
from astroml_pipe.io.catalogs import (
    CatalogReader,
    CatalogWriter,
    ColumnInfo,
    open_catalog,
    output_format,
    read_catalog,
    write_catalog,
)

FORMATS = ["fits", "parquet", "hdf5"]
EXT = {"fits": ".fits", "parquet": ".parquet", "hdf5": ".h5"}


def leftovers(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.endswith(".tmp"))


# -- round trips ------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt, make_table, write_in_chunks, assert_same_table):
    table = make_table()
    path = tmp_path / f"cat{EXT[fmt]}"
    write_in_chunks(table, path, meta={"PIPEVER": ("0.1", "pipeline version"), "NCHUNK": 4})
    assert leftovers(tmp_path) == []

    with open_catalog(path) as reader:
        assert isinstance(reader, CatalogReader)
        assert reader.format == fmt
        assert reader.n_rows == len(table)
        assert list(reader.columns) == table.colnames
        assert reader.meta["PIPEVER"] == "0.1"
        assert reader.meta["NCHUNK"] == 4
        info = reader.columns["sed"]
        assert info == ColumnInfo("sed", np.dtype(np.int16), (5,), info.unit, "five values")
        assert u.Unit(info.unit) == u.adu
        assert reader.columns["star"].dtype == np.dtype(bool)
        assert reader.columns["name"].dtype.kind == "U"

        whole = reader.read(0, reader.n_rows)
        assert_same_table(whole, table)
        chunks = list(reader.iter_chunks(5))
        assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
        assert_same_table(vstack(chunks), whole)
        part = reader.read(4, 17, columns=["sed", "mag_r"])
        assert_same_table(part, table[4:17]["sed", "mag_r"])
    with pytest.raises(ValueError, match="closed"):
        reader.read(0, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_astropy_reads_our_output(tmp_path, fmt, make_table):
    table = make_table()
    path = tmp_path / f"cat{EXT[fmt]}"
    write_catalog(table, path, meta={"ORIGIN": "test"})
    kwargs = {"path": "data"} if fmt == "hdf5" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = Table.read(path, **kwargs)
    for name in ("mag_r", "flux", "star", "count", "id"):
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(table[name]))
        assert back[name].unit == table[name].unit
        assert back[name].description == table[name].description
    assert np.asarray(back["sed"]).reshape(len(table), 5).tolist() == table["sed"].tolist()
    if fmt == "fits":
        with fits.open(path) as hdul:
            hdul.verify("exception")
            assert hdul[0].header["ORIGIN"] == "test"
            assert hdul[1].header["TCOMM1"] == "r-band magnitude"
            assert hdul[1].header.comments["TTYPE1"] == "r-band magnitude"
            assert hdul[1].header["NAXIS2"] == len(table)
        assert os.path.getsize(path) % 2880 == 0


def test_zero_rows(tmp_path, make_table):
    empty = make_table()[:0]
    for fmt in FORMATS:
        path = tmp_path / f"empty{EXT[fmt]}"
        write_catalog(empty, path)
        with open_catalog(path) as reader:
            assert reader.n_rows == 0
            assert list(reader.columns) == empty.colnames
            assert list(reader.iter_chunks(10)) == []
            assert len(reader.read()) == 0


# -- the writer's atomicity -------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_exception_in_with_block_leaves_nothing(tmp_path, fmt, make_table):
    path = tmp_path / f"out{EXT[fmt]}"
    with pytest.raises(RuntimeError, match="boom"):
        with CatalogWriter(path, meta={"RUN": 1}) as writer:
            writer.write(make_table())
            assert len(leftovers(tmp_path)) == 1  # the temporary file
            raise RuntimeError("boom")
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_abort_keeps_existing_output_and_gc_cleans_up(tmp_path, make_table):
    path = tmp_path / "out.fits"
    write_catalog(make_table(), path)
    before = path.read_bytes()
    writer = CatalogWriter(path, overwrite=True)
    writer.write(make_table(3))
    writer.abort()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="aborted"):
        writer.write(make_table(3))

    forgotten = CatalogWriter(tmp_path / "forgotten.fits")
    forgotten.write(make_table(3))
    del forgotten
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]


def test_overwrite(tmp_path, make_table):
    path = tmp_path / "out.parquet"
    write_catalog(make_table(), path)
    with pytest.raises(InputError, match=r"output '.*out.parquet' already exists .*overwrite"):
        CatalogWriter(path)
    write_catalog(make_table(4), path, overwrite=True)
    assert read_catalog(path).__len__() == 4
    assert leftovers(tmp_path) == []


def test_unwritable_directory(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(InputError, match=r"^cannot write output '.*file.txt/out.fits': .*folder"):
        CatalogWriter(not_a_folder / "out.fits")
    with pytest.raises(InputError, match="folder '.*missing' does not exist"):
        CatalogWriter(tmp_path / "missing" / "out.h5")


def test_inconsistent_chunks(tmp_path):
    path = tmp_path / "out.fits"
    with CatalogWriter(path) as writer:
        writer.write(Table({"s": ["ab", "cd"], "x": [1.0, 2.0]}))
        with pytest.raises(InputError, match=r"column 's' .* text of 3 characters, longer than"):
            writer.write(Table({"s": ["abc"], "x": [1.0]}))
        with pytest.raises(InputError, match=r"missing: x"):
            writer.write(Table({"s": ["a"]}))
        with pytest.raises(InputError, match=r"has masked \(missing\) values"):
            writer.write(Table({"s": MaskedColumn(["a"], mask=[True]), "x": [1.0]}))
        writer.write(Table({"s": ["e"], "x": np.array([3], dtype=np.int32)}))  # cast
        writer.write(Table({"x": MaskedColumn([4.0], mask=[True]), "s": ["f"]}))  # reordered
    back = read_catalog(path)
    assert back["s"].tolist() == ["ab", "cd", "e", "f"]
    np.testing.assert_array_equal(back["x"], [1.0, 2.0, 3.0, np.nan])


def test_nothing_written_is_an_error(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(InputError, match="nothing was written"):
        with CatalogWriter(path):
            pass
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", [".fits", ".parquet", ".hdf5"])
def test_first_chunk_meta_goes_to_the_table(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    chunk = Table({"x": np.arange(3.0)}, meta={"PDFCOL1": "x", "PDFNUM1": 3})
    with CatalogWriter(path, meta={"ASTMLVER": "1.0"}) as writer:
        writer.write(chunk)
        writer.write(Table({"x": np.arange(2.0)}))
    back = Table.read(path, **({"path": "data"} if ext == ".hdf5" else {}))
    assert back.meta["PDFCOL1"] == "x" and back.meta["PDFNUM1"] == 3
    if ext == ".fits":
        assert fits.getheader(path, 0)["ASTMLVER"] == "1.0"


# -- bad input ---------------------------------------------------------------------


def test_bad_inputs(tmp_path, make_table, check_error):
    with pytest.raises(InputError) as e:
        open_catalog(tmp_path / "x.fits")
    check_error(e, f"catalog '{tmp_path / 'x.fits'}' does not exist")

    other = tmp_path / "cat.txt"
    other.write_text("hello\n")
    with pytest.raises(InputError) as e:
        open_catalog(other)
    check_error(e, "cat.txt", ".fits", ".parquet")
    with pytest.raises(InputError) as e:
        CatalogWriter(tmp_path / "out.csv")
    check_error(e, "out.csv", ".fits .fit .parquet .pq .hdf5 .h5")

    good = tmp_path / "good.fits"
    write_catalog(make_table(200), good)
    with pytest.raises(InputError) as e, open_catalog(good) as reader:
        reader.read(0, 5, columns=["mag_R"])
    check_error(e, "good.fits", "no column 'mag_R'", "did you mean 'mag_r'")


def test_output_format():
    assert output_format("a.fits") == "fits"
    assert output_format("a.FIT") == "fits"
    assert output_format("dir.v1/a.pq") == "parquet"
    assert output_format("a.hdf5") == "hdf5"
    with pytest.raises(InputError, match="a.fits.gz"):
        output_format("a.fits.gz")
    assert isinstance(CatalogWriter.__new__(CatalogWriter, "x.h5"), catalogs.Hdf5CatalogWriter)


# -- the module split ----------------------------------------------------------------


@pytest.mark.parametrize(
    "module, names",
    [
        ("fits", ["FitsCatalogReader", "FitsCatalogWriter"]),
        ("hdf5", ["Hdf5CatalogReader", "Hdf5CatalogWriter"]),
        ("parquet", ["ParquetCatalogReader", "ParquetCatalogWriter"]),
        ("text", ["CsvCatalogReader", "EcsvCatalogReader"]),
    ],
)
def test_format_classes_are_importable_from_catalogs(module, names):
    import importlib

    home = importlib.import_module(f"astroml_pipe.io.{module}")
    for name in names:
        assert name in catalogs.__all__
        assert name in dir(catalogs)
        assert getattr(catalogs, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="NoSuchCatalogReader"):
        catalogs.NoSuchCatalogReader  # noqa: B018


def test_importing_catalogs_imports_no_format_library():
    code = (
        "import sys, astroml_pipe.io.catalogs; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'h5py', 'pyarrow'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
