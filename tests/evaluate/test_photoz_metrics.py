import json

import numpy as np
import pytest
from astropy.table import Table

from astroml_pipe.core.errors import InputError
from astroml_pipe.evaluate.photoz import evaluate_photoz, photoz_metrics


def test_metrics_by_hand():
    z_true = np.array([0.0, 1.0, 1.0, 2.0, 0.5])
    z_phot = np.array([0.01, 1.02, 0.96, 2.03, 1.0])  # last one an outlier
    dz = (z_phot - z_true) / (1 + z_true)
    m = photoz_metrics(z_phot, z_true)
    assert m["n"] == 5
    assert m["bias"] == pytest.approx(np.median(dz))
    assert m["sigma_nmad"] == pytest.approx(1.4826 * np.median(np.abs(dz - np.median(dz))))
    assert m["outlier_fraction"] == pytest.approx(0.2)


def test_nonfinite_pairs_ignored_and_all_bad_refused():
    assert photoz_metrics([1.0, np.nan], [1.0, 1.0])["n"] == 1
    with pytest.raises(InputError):
        photoz_metrics([np.nan], [1.0])


def test_report_folder(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 2, 200)
    table = Table({"redshift": z, "z_phot": z + rng.normal(0, 0.02, 200)})
    metrics = evaluate_photoz(table, "redshift", report_dir=tmp_path / "report")
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == metrics
    png = (tmp_path / "report" / "zphot_vs_ztrue.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    with pytest.raises(InputError, match="has no column 'z_spec'"):
        evaluate_photoz(table, "z_spec")


# -- sigma_IQR, bins, PDFs, report ---------------------------------------------------

from astroml_pipe.evaluate.photoz import binned_metrics  # noqa: E402
from astroml_pipe.stages.photoz.pdf import PdfGrid, grid_meta, quantize  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
REPORT_PNGS = ["metrics_vs_magnitude.png", "metrics_vs_redshift.png", "nz.png", "pit.png", "zphot_vs_ztrue.png"]


def result_table(n=600, seed=0, prefixes=("z_phot",)):
    """A result catalog like a photo-z run writes: point estimates, int16 PDFs, grid keywords, mag_i."""
    rng = np.random.default_rng(seed)
    grid = PdfGrid(0, 3, 301)
    z = rng.uniform(0.05, 2.5, n)
    table = Table({"redshift": z.astype("f4"), "mag_i": rng.uniform(19, 25.4, n).astype("f4")})
    for k, prefix in enumerate(prefixes):
        sigma = 0.03 * (1 + z) * (1 + k)
        centre = z + rng.normal(0, sigma)
        table[prefix] = centre
        table[f"{prefix}_pdf"] = quantize(np.exp(-0.5 * ((grid.z - centre[:, None]) / sigma[:, None]) ** 2))
        table.meta.update(grid_meta(f"{prefix}_pdf", grid, k + 1))
    return table


def test_sigma_iqr_by_hand():
    dz = np.array([-0.1, -0.02, 0.0, 0.01, 0.03, 0.2, 0.05, -0.04])
    m = photoz_metrics(dz, np.zeros_like(dz))
    q25, q75 = np.percentile(dz, [25, 75])
    assert m["sigma_iqr"] == pytest.approx((q75 - q25) / 1.349)
    gauss = np.random.default_rng(1).normal(0, 0.02, 20000)
    m = photoz_metrics(gauss, np.zeros_like(gauss))
    assert m["sigma_iqr"] == pytest.approx(0.02, rel=0.03) and m["sigma_nmad"] == pytest.approx(0.02, rel=0.03)


def test_binned_metrics_structure():
    z_true = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 2.9, np.nan])
    z_phot = z_true + 0.01
    rows = binned_metrics(z_true, [0.0, 0.5, 1.0, 1.5], z_phot, z_true)
    assert [(r["lo"], r["hi"], r["n"]) for r in rows] == [(0.0, 0.5, 2), (0.5, 1.0, 3), (1.0, 1.5, 0)]
    assert set(rows[0]) == {"lo", "hi", "n", "sigma_nmad", "sigma_iqr", "outlier_fraction", "bias"}
    assert np.isnan(rows[2]["sigma_nmad"])
    assert rows[1]["bias"] == pytest.approx(np.median(0.01 / (1 + z_true[2:5])))
    assert binned_metrics([1.5], [0.0, 1.0, 1.5], [1.0], [1.0])[1]["n"] == 1  # the last edge is in the last bin
    with pytest.raises(InputError, match="increasing"):
        binned_metrics(z_true, [1.0, 0.5], z_phot, z_true)


def test_evaluate_with_pdfs_overall_and_per_bin():
    table = result_table()
    m = evaluate_photoz(table, "redshift")
    assert m["pdf"] == "z_phot_pdf" and m["magnitude"] == "mag_i" and m["n_pdf"] == 600
    assert m["pit_ks"] < 0.08 and m["crps_mean"] > 0 and m["cde_loss"] < 0  # calibrated PDFs
    mag, red = m["bins"]["magnitude"], m["bins"]["redshift"]
    assert mag["column"] == "mag_i" and len(mag["rows"]) == len(mag["edges"]) - 1 == 15
    assert red["column"] == "redshift" and red["edges"][0] == 0 and red["edges"][-1] == 3
    assert sum(r["n"] for r in red["rows"]) == 600 and sum(r["n_pdf"] for r in mag["rows"]) == 600
    empty = mag["rows"][0]  # 18 - 18.5: nobody
    assert empty["n"] == 0 and empty["sigma_nmad"] is None and empty["pit_ks"] is None
    point_only = evaluate_photoz(table, "redshift", pdf=None, magnitude=None, redshift_bins=[0, 1, 3])
    assert "pit_ks" not in point_only and list(point_only["bins"]) == ["redshift"]
    assert len(point_only["bins"]["redshift"]["rows"]) == 2


def test_streaming_a_file_in_blocks_equals_the_table_in_memory(tmp_path):
    table = result_table(n=500)
    table.write(tmp_path / "result.fits")
    in_memory = evaluate_photoz(table, "redshift", source="'x'")
    streamed = evaluate_photoz(tmp_path / "result.fits", "redshift", block_size=37)
    assert_close(streamed, in_memory)


def assert_close(a, b):
    """Equal nested dicts and lists, floats to 1e-9."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def test_report_folder_with_pdfs_and_members(tmp_path):
    table = result_table(prefixes=("z_phot_a", "z_phot_b"))
    m = evaluate_photoz(table, "redshift", prediction=["z_phot_a", "z_phot_b"], report_dir=tmp_path / "r")
    assert m["pdf"] == "z_phot_a_pdf" and list(m["members"]) == ["z_phot_a", "z_phot_b"]
    assert m["members"]["z_phot_b"]["sigma_nmad"] > m["members"]["z_phot_a"]["sigma_nmad"]
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert files == sorted(["metrics.json", "report.html", "members.png", *REPORT_PNGS])
    html = (tmp_path / "r" / "report.html").read_text()
    for name in files:
        if name.endswith(".png"):
            assert (tmp_path / "r" / name).read_bytes()[:8] == PNG
            assert f'<img src="{name}"' in html
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == m
    assert "<h2>Per magnitude bin</h2>" in html and "PIT KS" in html and "z_phot_b" in html


def test_committee_members_column_is_compared(tmp_path):
    table = result_table(n=300)
    z = np.asarray(table["redshift"], dtype=float)
    table["z_phot_members"] = np.stack([z + 0.01 * (1 + z), z + 0.3 * (1 + z)], axis=1).astype("f4")
    table.write(tmp_path / "committee.fits")
    m = evaluate_photoz(tmp_path / "committee.fits", "redshift", magnitude=None)
    assert list(m["members"]) == ["z_phot", "z_phot_members[0]", "z_phot_members[1]"]
    assert m["members"]["z_phot_members[0]"]["bias"] == pytest.approx(0.01, rel=1e-4)
    assert m["members"]["z_phot_members[1]"]["outlier_fraction"] == 1.0
