"""Tests of astroml_pipe.io.text: streamed CSV and whole-file ECSV reading."""

from __future__ import annotations

import numpy as np
from astropy.table import vstack

from astroml_pipe.io.catalogs import open_catalog
from astroml_pipe.io.text import CsvCatalogReader


def test_csv_streaming(tmp_path, monkeypatch, assert_same_values):
    path = tmp_path / "cat.csv"
    lines = ["id,mag,name,flag"]
    for i in range(11):
        mag = "" if i == 9 else f"{20 + i / 10}"
        name = "x" * (i + 1) if i == 10 else f"s{i}"
        lines.append(f"{i},{mag},{name},{i % 2 == 0}")
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(CsvCatalogReader, "_SCAN_ROWS", 4)  # several pandas chunks
    with open_catalog(path) as reader:
        assert isinstance(reader, CsvCatalogReader)
        assert reader.n_rows == 11
        assert reader.columns["id"].dtype == np.int64
        assert reader.columns["mag"].dtype == np.float64
        assert reader.columns["name"].dtype == np.dtype("U11")
        assert reader.columns["flag"].dtype == np.dtype(bool)
        whole = reader.read()
        chunks = list(reader.iter_chunks(3))
    assert [len(c) for c in chunks] == [3, 3, 3, 2]
    assert_same_values(vstack(chunks), whole)
    assert np.isnan(whole["mag"][9])
    assert whole["name"][10] == "x" * 11


def test_ecsv(tmp_path, make_table, assert_same_table):
    ecsv = tmp_path / "cat.ecsv"
    small = make_table(6)
    small.meta["survey"] = "demo"
    small.write(ecsv)
    with open_catalog(ecsv) as reader:
        assert reader.meta["survey"] == "demo"
        assert_same_table(vstack(list(reader.iter_chunks(4))), small)
