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
