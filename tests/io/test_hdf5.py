"""Tests of astroml_pipe.io.hdf5: tables as 1-D compound HDF5 datasets."""

from __future__ import annotations

import warnings

import pytest
from astropy import units as u

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import open_catalog, read_catalog, write_catalog


def test_hdf5_dataset_selection(tmp_path, make_table):
    table = make_table()
    path = tmp_path / "cat.h5"
    write_catalog(table, path)
    assert len(read_catalog(f"{path}:data")) == len(table)
    assert len(read_catalog(path, hdu="data")) == len(table)
    with pytest.raises(InputError, match=r"no dataset 'nothere' in HDF5 .*table datasets: data"):
        open_catalog(f"{path}:nothere")

    two = tmp_path / "two.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.write(two, path="a/first", serialize_meta=True)
        table[:3].write(two, path="b/second", append=True, serialize_meta=True)
    with pytest.raises(InputError, match=r"several table datasets \(a/first, b/second\)"):
        open_catalog(two)
    back = read_catalog(two, hdu="b/second")
    assert len(back) == 3
    assert back["mag_r"].unit == u.mag  # astropy's serialized metadata
    assert back["name"].dtype.kind == "U"


def test_hdf5_bad_inputs(tmp_path, make_table, check_error):
    with pytest.raises(InputError) as e:
        open_catalog(f"{tmp_path / 'good.h5'}:data")
    check_error(e, "good.h5", "does not exist")
    h5 = tmp_path / "good.h5"
    write_catalog(make_table(), h5)
    with pytest.raises(InputError) as e:
        open_catalog(h5, hdu="group/missing")
    check_error(e, "no dataset 'group/missing'", "good.h5")


def test_hdf5_column_group_as_written_by_tables_io(tmp_path):
    """RAIL / tables_io layout: a group ``photometry`` of equal-length 1-D column datasets."""
    import h5py
    import numpy as np

    path = tmp_path / "rail.hdf5"
    rng = np.random.default_rng(1)
    mag = rng.uniform(20, 25, 50).astype("f4")
    with h5py.File(path, "w") as f:
        g = f.create_group("photometry")
        g["mag_i_lsst"] = mag
        g["mag_i_lsst"].attrs["unit"] = "mag"
        g["redshift"] = np.linspace(0, 3, 50)
        g["id"] = np.arange(50)
        g["name"] = np.array([f"gal{i}".encode() for i in range(50)])
    back = read_catalog(path)
    assert back.colnames == ["id", "mag_i_lsst", "name", "redshift"]
    assert back["name"][7] == "gal7" and back["name"].dtype.kind == "U"
    assert back["mag_i_lsst"].unit == u.mag and back["mag_i_lsst"].dtype == np.float32
    np.testing.assert_array_equal(back["mag_i_lsst"], mag)
    with open_catalog(f"{path}:photometry") as reader:
        assert reader.n_rows == 50
        part = reader.read(10, 20, columns=["redshift"])
    np.testing.assert_allclose(part["redshift"], np.linspace(0, 3, 50)[10:20])

    with h5py.File(path, "a") as f:
        f["photometry/short"] = np.arange(3)  # no longer a table: lengths differ
    with pytest.raises(InputError, match="no table in HDF5 file"):
        open_catalog(path)
