"""Classification metrics on hand-made cases."""

import numpy as np
import pytest

from astroml_pipe.evaluate.classify import classification_metrics, plot_reliability, plot_roc


def test_perfect_classifier():
    y = np.array([0, 0, 1, 1, 1], bool)
    m = classification_metrics(y.astype(float), y)
    assert m["roc_auc"] == 1.0 and m["ece"] == 0.0
    assert m["galaxy_purity_at_completeness"] == 1.0 and m["star_completeness_at_purity"] == 1.0
    assert (m["n"], m["n_galaxies"], m["n_stars"]) == (5, 3, 2)


def test_random_classifier():
    rng = np.random.default_rng(1)
    y = rng.random(20000) < 0.5
    m = classification_metrics(rng.random(20000), y)
    assert m["roc_auc"] == pytest.approx(0.5, abs=0.02)
    assert m["galaxy_purity_at_completeness"] == pytest.approx(0.5, abs=0.03)
    # constant p: AUC 0.5 exactly (ties count half), ECE = |0.5 - fraction|
    m = classification_metrics(np.full(4, 0.5), [1, 0, 0, 0])
    assert m["roc_auc"] == 0.5 and m["ece"] == pytest.approx(0.25)


def test_operating_points_constructed():
    # 100 galaxies with p = 0.01, 0.02, ..., 1.00; 100 stars with p = 0.00025, 0.00075, ..., 0.04975
    gal = np.arange(1, 101) / 100.0
    star = np.arange(1, 101) * 0.0005 - 0.00025
    p = np.r_[gal, star]
    y = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    m = classification_metrics(p, y)
    # c_g >= 0.96 needs t <= 0.05; at t = 0.05 the 96 galaxies above are alone: purity 1
    assert m["galaxy_purity_at_completeness"] == pytest.approx(1.0)
    # stars are p < t.  t = 0.02: 40 stars + 1 galaxy (0.01) -> p_s = 40/41 = 0.976 >= 0.97;
    # any t > 0.02 lets in 2 galaxies with <= 60 stars -> p_s <= 60/62 = 0.968 < 0.97
    assert m["star_completeness_at_purity"] == pytest.approx(0.40)
    # AUC: 1 - fraction of (galaxy, star) pairs in the wrong order (no ties here)
    wrong = np.mean(gal[:, None] < star[None, :])
    assert m["roc_auc"] == pytest.approx(1 - wrong)
    # purity 0.97 out of reach: no threshold, completeness 0
    m = classification_metrics([0.1, 0.2, 0.3, 0.4], [False, True, False, True])
    assert m["star_completeness_at_purity"] == 1 / 2
    m = classification_metrics([0.9, 0.2, 0.3], [False, True, True])
    assert m["star_completeness_at_purity"] == 0.0 and m["roc_auc"] == 0.0


def test_ece_bins():
    # 15 bins: p = 0.1 for 10 objects with 5 galaxies -> |0.5 - 0.1| = 0.4
    m = classification_metrics(np.full(10, 0.1), np.arange(10) < 5)
    assert m["ece"] == pytest.approx(0.4)


def test_magnitude_bins():
    rng = np.random.default_rng(2)
    y = rng.random(1000) < 0.5
    mag = rng.uniform(18, 22, 1000)
    p = np.where(mag < 20, y.astype(float), rng.random(1000))
    m = classification_metrics(p, y, magnitude=mag, bins=[18, 20, 22])
    assert [b["mag_lo"] for b in m["bins"]] == [18.0, 20.0]
    assert m["bins"][0]["roc_auc"] == 1.0 and m["bins"][1]["roc_auc"] < 0.6
    assert sum(b["n"] for b in m["bins"]) == 1000
    assert len(classification_metrics(p, y, magnitude=mag)["bins"]) == 4
    with pytest.raises(ValueError):
        classification_metrics(p, y, magnitude=mag, bins=[20, 18])


def test_one_class_and_plots(tmp_path):
    m = classification_metrics([0.2, 0.3], [True, True])
    assert np.isnan(m["roc_auc"]) and m["n_stars"] == 0
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.5
    p = np.clip(y + rng.normal(0, 0.3, 300), 0, 1)
    for path in (plot_roc(p, y, tmp_path / "roc.png"), plot_reliability(p, y, tmp_path / "rel.png")):
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
