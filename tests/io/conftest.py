"""Shared fixtures of the catalog I/O tests: a small table and comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Column, Table

from astroml_pipe.io.catalogs import CatalogWriter

N_ROWS = 23  # not a multiple of any chunk size used in the tests


def _make_table(n: int = N_ROWS) -> Table:
    """Small table with every kind of column the pipeline uses."""
    rng = np.random.default_rng(42)
    t = Table()
    mag = rng.normal(20, 2, n).astype(np.float32)
    mag[3 % n], mag[4 % n], mag[5 % n] = np.nan, np.inf, -np.inf
    t["mag_r"] = Column(mag, unit="mag", description="r-band magnitude")
    t["flux"] = Column(rng.random(n), unit="erg / (s cm2)", description="flux in a band")
    t["sed"] = Column(
        np.arange(n * 5, dtype=np.int16).reshape(n, 5), unit="adu", description="five values"
    )
    t["star"] = Column(np.arange(n) % 3 == 0, description="is a star")
    t["name"] = Column(np.array([f"src{i}" for i in range(n)]), description="source name")
    t["count"] = np.arange(n, dtype=np.uint16) * 1000
    t["id"] = np.arange(n, dtype=np.int64) + 10**12
    return t


def _assert_same_values(got: Table, want: Table) -> None:
    assert got.colnames == want.colnames
    for name in want.colnames:
        g, w = np.asarray(got[name]), np.asarray(want[name])
        assert g.shape == w.shape, name
        if w.dtype.kind == "f":
            np.testing.assert_array_equal(g, w, err_msg=name)  # NaN == NaN here
        else:
            assert np.array_equal(g, w), name


def _assert_same_table(got: Table, want: Table) -> None:
    _assert_same_values(got, want)
    for name in want.colnames:
        assert got[name].unit == want[name].unit, name
        assert got[name].description == want[name].description, name
        assert got[name].dtype.isnative, name


def _write_in_chunks(table: Table, path, chunk: int = 7, **kwargs) -> None:
    with CatalogWriter(path, **kwargs) as writer:
        for start in range(0, len(table), chunk):
            writer.write(table[start : start + chunk])
    assert writer.n_written == len(table)


def _check_error(excinfo, *fragments) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture
def make_table():
    """``make_table(n=23)``: a table with float, array, bool, text and int columns."""
    return _make_table


@pytest.fixture
def assert_same_values():
    """``assert_same_values(got, want)``: same column names, shapes and values."""
    return _assert_same_values


@pytest.fixture
def assert_same_table():
    """``assert_same_table(got, want)``: same values, units, descriptions; native order."""
    return _assert_same_table


@pytest.fixture
def write_in_chunks():
    """``write_in_chunks(table, path, chunk=7, **writer_kwargs)`` with a CatalogWriter."""
    return _write_in_chunks


@pytest.fixture
def check_error():
    """``check_error(excinfo, *fragments)``: a one-line message holding each fragment."""
    return _check_error
