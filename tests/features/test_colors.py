import numpy as np
import pytest
from astropy.table import Table

from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.features.colors import Colors, _limiting_magnitude, asinh_magnitude


def _table():
    t = Table()
    t["mag_g"] = np.array([22.0, 99.0, np.nan, 23.0, -99.0], "f4")
    t["magerr_g"] = np.array([0.02, 99.0, np.nan, 0.05, -99.0], "f4")
    t["mag_r"] = np.array([21.5, 24.0, 21.0, np.inf, 22.0], "f4")
    t["magerr_r"] = np.array([0.02, 0.1, 0.03, 0.5, 0.04], "f4")
    return t


def test_sentinels_become_limits_nans_and_flags():
    stage = Colors(columns=ColumnMap(bands=("g", "r")), limits={"g": 25.0, "r": 24.5})
    out = stage.run(_table())
    np.testing.assert_allclose(out["mag_filled_g"], [22.0, 25.0, np.nan, 23.0, np.nan])
    np.testing.assert_allclose(out["mag_filled_r"], [21.5, 24.0, 21.0, 24.5, 22.0])
    assert out["nondet_g"].tolist() == [False, True, False, False, False]
    assert out["nondet_r"].tolist() == [False, False, False, True, False]
    np.testing.assert_allclose(out["color_g_r"], [0.5, 1.0, np.nan, -1.5, np.nan])
    np.testing.assert_allclose(out["color_g_r_err"][[0, 1, 3]], [np.hypot(0.02, 0.02), np.hypot(1.0, 0.1), np.hypot(0.05, 1.0)], rtol=1e-5)
    assert np.isnan(out["color_g_r_err"][2])
    assert out["color_g_r"].unit == "mag"


def test_all_pairs():
    stage = Colors(columns=ColumnMap(bands=("g", "r", "i")), pairs="all", limits={"g": 25, "r": 25, "i": 25})
    names = [c.name for c in stage.provides() if c.name.startswith("color") and not c.name.endswith("err")]
    assert names == ["color_g_r", "color_g_i", "color_r_i"]


def test_limit_estimated_from_error_curve():
    rng = np.random.default_rng(0)
    mag = rng.uniform(18, 26, 5000)
    err = 0.217 * 10 ** (0.4 * (mag - 25.0))  # S/N = 5 exactly at 25
    assert _limiting_magnitude(mag, err, 0.2171) == pytest.approx(25.0, abs=0.05)
    assert _limiting_magnitude(mag[:30], err[:30], 0.2171) == pytest.approx(25.0, abs=0.2)


def test_fit_estimates_missing_limits_only(catalog):
    stage = Colors(limits={"u": 26.0}).fit(catalog)
    assert stage.limits_["u"] == 26.0
    assert set(stage.limits_) == set("ugrizy")
    assert stage.training_metrics_["limits"]["g"] == stage.limits_["g"]


def test_no_detections_to_estimate_limit(catalog):
    catalog["mag_g"] = 99.0
    with pytest.raises(InputError, match="'mag_g' has no detected values to estimate the g-band limit"):
        Colors().fit(catalog)


def test_bad_limits_parameter():
    with pytest.raises(ConfigError, match="'limits' must map bands to finite magnitudes"):
        Colors(limits={"g": "deep"})


def test_asinh_magnitudes_match_log_when_bright_and_stay_finite_when_faint():
    # Limit 25 at S/N 5: the softening is 1/5 of the limiting flux.
    mag = np.array([18.0, 22.0, 25.0, 27.0, 31.0, 99.0, np.nan])
    flux = 10 ** (-0.4 * (mag[:5] - 25.0))  # in units of the limiting flux
    snr = np.array([500.0, 50.0, 5.0, 0.8, 0.05])
    err = np.r_[2.5 / np.log(10) / snr, 0.0, np.nan]
    mu, mu_err = asinh_magnitude(mag, err, mag > 90, 25.0, 5.0)
    # Bright: the usual magnitude and error.
    np.testing.assert_allclose(mu[:2], mag[:2], atol=2e-3)
    np.testing.assert_allclose(mu_err[:2], err[:2], rtol=1e-3)
    # The definition, checked directly at the limit and below it.
    b = 0.2
    expected = 25.0 - 2.5 / np.log(10) * (np.arcsinh(flux / (2 * b)) + np.log(b))
    np.testing.assert_allclose(mu[:5], expected, rtol=1e-6)
    # Faint and undetected sources stay within ~1.75 mag of the limit, ordered by flux.
    assert np.all(np.diff(mu[:5]) > 0) and mu[5] > mu[4]
    np.testing.assert_allclose(mu[5], 25.0 + 2.5 * np.log10(5.0), rtol=1e-6)
    np.testing.assert_allclose(mu_err[5], 2.5 / np.log(10) / 2, rtol=1e-6)
    assert mu_err[4] < 0.6 < err[4]  # a 20-sigma-wide log-magnitude error becomes a bounded one
    assert np.isnan(mu[6]) and np.isnan(mu_err[6])


def test_asinh_option_in_the_stage():
    log_stage = Colors(columns=ColumnMap(bands=("g", "r")), limits={"g": 25.0, "r": 24.5})
    stage = Colors(columns=ColumnMap(bands=("g", "r")), limits={"g": 25.0, "r": 24.5}, magnitudes="asinh")
    t = _table()
    out, log_out = stage.run(t), log_stage.run(t)
    # Row 0 is bright in both bands: asinh and log colours agree.
    np.testing.assert_allclose(out["color_g_r"][0], log_out["color_g_r"][0], atol=1e-3)
    # Non-detections sit at zero flux, above the limit, not at it; not-observed stays NaN.
    assert out["mag_filled_g"][1] == pytest.approx(25.0 + 2.5 * np.log10(5.0), abs=1e-4)
    assert np.isnan(out["mag_filled_g"][2]) and np.isnan(out["color_g_r"][4])
    assert out["nondet_g"].tolist() == log_out["nondet_g"].tolist()
    assert "asinh" in out["mag_filled_g"].description
    with pytest.raises(ConfigError, match="magnitudes"):
        Colors(columns=ColumnMap(bands=("g", "r")), magnitudes="luptitudes")
