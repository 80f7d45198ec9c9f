"""Tests of astroml_pipe.io.parquet: record-batch reading, one row group per chunk."""

from __future__ import annotations

import pytest

from astroml_pipe.core.errors import InputError
from astroml_pipe.io.catalogs import open_catalog


def test_parquet_from_astropy_and_row_groups(
    tmp_path, make_table, write_in_chunks, assert_same_table, assert_same_values
):
    table = make_table()
    path = tmp_path / "astropy.parquet"
    table.write(path)
    with open_catalog(path) as reader:
        assert reader.columns["sed"].shape == (5,)
        assert_same_table(reader.read(), table)
    ours = tmp_path / "ours.parquet"
    write_in_chunks(table, ours, chunk=4)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(ours).metadata.num_row_groups == 6  # one per chunk
    with open_catalog(ours) as reader:
        # out-of-order reads restart in the right row group
        assert_same_values(reader.read(17, 20), table[17:20])
        assert_same_values(reader.read(2, 9), table[2:9])
        assert_same_values(reader.read(21, 23), table[21:23])


def test_parquet_bad_inputs(tmp_path, check_error):
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet")
    with pytest.raises(InputError) as e:
        open_catalog(fake)
    check_error(e, "fake.parquet", "not a readable Parquet file")
