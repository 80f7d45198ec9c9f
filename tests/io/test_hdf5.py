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
