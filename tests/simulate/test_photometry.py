"""Tests of astroml_pipe.simulate.photometry (simulated LSST-like galaxy catalogs)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("galsim")
speclite_filters = pytest.importorskip("speclite.filters")

import astropy.units as u  # noqa: E402

import astroml_pipe  # noqa: E402
from astroml_pipe.core.errors import ConfigError  # noqa: E402
from astroml_pipe.simulate.photometry import (  # noqa: E402
    LSST_BANDS,
    M5,
    calzetti_k,
    lsst_mag_error,
    madau_igm_transmission,
    model_colours,
    simulate_photometry,
    synthetic_ab_mags,
)

BANDS = "ugrizy"


@pytest.fixture(scope="module")
def catalog():
    return simulate_photometry(20000, random_state=42)


def _mags(table, bands=BANDS):
    return {b: np.asarray(table[f"mag_{b}"], dtype=float) for b in bands}


def _tables_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(a[c]), np.asarray(b[c]), equal_nan=a[c].dtype.kind == "f")
               for c in a.colnames)


def test_reproducible_with_same_seed_and_different_otherwise():
    a = simulate_photometry(500, random_state=7, unobserved_fraction=0.1)
    b = simulate_photometry(500, random_state=7, unobserved_fraction=0.1)
    c = simulate_photometry(500, random_state=8, unobserved_fraction=0.1)
    assert _tables_equal(a, b)
    assert not np.array_equal(np.asarray(a["redshift"]), np.asarray(c["redshift"]))
    d = simulate_photometry(50, random_state=np.random.default_rng(3))
    assert len(d) == 50 and d.meta["random_state"] == "Generator"


def test_rows_columns_dtypes_units_and_meta():
    t = simulate_photometry(1234, random_state=1)
    assert len(t) == 1234
    expected = ["id", "ra", "dec", "redshift", "template"]
    for b in BANDS:
        expected += [f"mag_{b}", f"magerr_{b}"]
    assert t.colnames == expected
    assert t["id"].dtype == np.int64 and t["template"].dtype == np.int16
    assert np.array_equal(t["id"], np.arange(1234))
    for name in expected[1:4] + expected[5:]:
        assert t[name].dtype == np.float32, name
    assert t["ra"].unit == u.deg and t["dec"].unit == u.deg
    assert t["redshift"].unit == u.dimensionless_unscaled
    for b in BANDS:
        assert t[f"mag_{b}"].unit == u.mag and t[f"magerr_{b}"].unit == u.mag
    assert all(t[c].description for c in t.colnames)
    ra, dec = np.asarray(t["ra"]), np.asarray(t["dec"])
    assert np.ptp(dec) < 1.0 and np.ptp(ra * np.cos(np.radians(dec.mean()))) < 1.0
    assert t["template"].min() >= 0 and t["template"].max() <= 39
    assert t.meta["astroml_pipe_version"] == astroml_pipe.__version__
    assert t.meta["mag_limit"] == 25.3 and t.meta["depth"] == "lsst10yr"
    assert t.meta["random_state"] == 1 and t.meta["bands"] == "u,g,r,i,z,y"
    assert t.meta["m5_u"] == 26.1


def test_band_subset_and_other_limit_band():
    t = simulate_photometry(300, random_state=2, bands=("g", "r", "i"), limit_band="r",
                            mag_limit=24.0, depth="lsst1yr")
    assert t.colnames[5:] == ["mag_g", "magerr_g", "mag_r", "magerr_r", "mag_i", "magerr_i"]
    assert np.all(t["mag_r"] <= 24.0)
    assert simulate_photometry(0).colnames == simulate_photometry(1).colnames


def test_selection_on_observed_limit_band(catalog):
    i = np.asarray(catalog["mag_i"])
    assert np.all(np.isfinite(i)) and np.all(i <= 25.3)
    assert np.all(catalog["magerr_i"] < 0.22)
    assert np.percentile(i, 50) > 24.0  # number counts rise steeply to the limit
    z = np.asarray(catalog["redshift"])
    assert z.min() >= 0.0 and z.max() <= 3.0
    assert 0.5 < np.median(z) < 0.9


def test_flat_fnu_source_has_equal_magnitudes_in_every_band():
    wave = np.arange(3000.0, 11200.0, 1.0)
    flambda = 3631e-23 * 10 ** (-0.4 * 22.5) * 2.99792458e18 / wave**2
    mags = synthetic_ab_mags(wave, flambda)
    np.testing.assert_allclose(mags, 22.5, atol=1e-9)
    # and the integral agrees with speclite on a real galaxy-like spectrum
    spec = flambda * (wave / 5000.0) ** 1.5 * np.where(wave > 4000, 1.0, 0.5)
    filters = speclite_filters.load_filters(*[f"lsst2023-{b}" for b in LSST_BANDS])
    ref = filters.get_ab_magnitudes(spec * u.erg / u.s / u.cm**2 / u.AA, wave * u.AA)
    np.testing.assert_allclose(synthetic_ab_mags(wave, spec),
                               [ref[f"lsst2023-{b}"][0] for b in LSST_BANDS], atol=2e-3)


def test_lyman_break_moves_u_out_at_z3(catalog):
    z = np.asarray(catalog["redshift"])
    m = _mags(catalog)

    def dropout_fraction(sel):
        return np.mean((m["u"][sel] > 90) | (m["u"][sel] - m["g"][sel] > 1.0))

    high, mid = z > 2.5, (z > 1.5) & (z < 2.0)
    assert high.sum() > 30
    assert dropout_fraction(high) > 0.45 and dropout_fraction(high) > 3 * dropout_fraction(mid)
    ug = model_colours([2.0, 3.0], 3.0, bands="ug")
    assert (ug[1, 0] - ug[1, 1]) - (ug[0, 0] - ug[0, 1]) > 1.0


def test_4000A_break_reddens_g_minus_r_of_early_types(catalog):
    z, tpl = np.asarray(catalog["redshift"]), np.asarray(catalog["template"])
    m = _mags(catalog)
    gr = m["g"] - m["r"]
    low, mid = (z < 0.1) & (tpl <= 6), (z > 0.35) & (z < 0.45) & (tpl <= 6)
    assert low.sum() > 20 and mid.sum() > 20
    assert np.median(gr[mid]) - np.median(gr[low]) > 0.5
    gr_model = -np.diff(model_colours([0.0, 0.4], 0.0, bands="gr"), axis=1)[:, 0]
    assert gr_model[1] - gr_model[0] > 0.8


def test_nondetections_use_sentinel_and_are_commonest_in_u_and_y(catalog):
    frac = {}
    for b in BANDS:
        mag, err = np.asarray(catalog[f"mag_{b}"]), np.asarray(catalog[f"magerr_{b}"])
        nd = mag == 99.0
        assert np.array_equal(nd, err == 99.0)
        assert np.all(err[~nd] <= 1.0857 / 5 + 1e-6)  # detections have S/N >= 5
        frac[b] = nd.mean()
    assert frac["u"] > frac["r"] and frac["y"] > frac["r"]
    assert frac["i"] == 0.0
    shallow = simulate_photometry(3000, random_state=5, depth="lsst1yr")
    assert np.mean(shallow["mag_u"] == 99.0) > frac["u"]
    t = simulate_photometry(200, random_state=5, nondetection=-1.0)
    assert np.any(t["mag_u"] == -1.0) and not np.any(t["mag_u"] == 99.0)


def test_unobserved_fraction_roughly_honoured():
    t = simulate_photometry(5000, random_state=9, unobserved_fraction=0.2)
    for b in BANDS:
        nan = np.isnan(np.asarray(t[f"mag_{b}"]))
        assert np.array_equal(nan, np.isnan(np.asarray(t[f"magerr_{b}"])))
        if b == "i":
            assert not nan.any()
        else:
            assert abs(nan.mean() - 0.2) < 0.025, b


def test_errors_grow_with_magnitude(catalog):
    mag, err = np.asarray(catalog["mag_r"]), np.asarray(catalog["magerr_r"])
    ok = mag < 90
    edges = np.arange(20.0, 27.0, 1.0)
    med = [np.median(err[ok & (mag >= lo) & (mag < lo + 1)]) for lo in edges]
    assert np.all(np.diff(med) > 0)
    assert lsst_mag_error(26.8, M5["lsst10yr"]["i"]) == pytest.approx(np.hypot(0.2, 0.005))
    assert M5["lsst1yr"]["i"] == pytest.approx(26.8 - 1.25, abs=0.01)


def test_dust_and_igm_building_blocks():
    assert calzetti_k(4400.0) - calzetti_k(5500.0) == pytest.approx(1.0, abs=0.05)
    assert calzetti_k(1000.0) > calzetti_k(1500.0) > calzetti_k(5500.0) > calzetti_k(9000.0)
    wave = np.array([3000.0, 4000.0, 4800.0, 5000.0, 6000.0])
    trans = madau_igm_transmission(wave, 3.0)
    # Lyman-limit region < Ly-alpha forest < unabsorbed redward of Ly-alpha at 4863 A
    assert trans[0] < 0.2 < trans[1] < trans[3] and np.all(trans[-2:] == 1.0)
    assert trans[2] < trans[1]  # forest optical depth grows ~ lambda^3.46 towards Ly-alpha


def test_colours_carry_redshift_information():
    neighbors = pytest.importorskip("sklearn.neighbors")
    t = simulate_photometry(7000, random_state=11)
    m5 = np.array([M5["lsst10yr"][b] for b in BANDS])
    mag = np.column_stack([np.asarray(t[f"mag_{b}"], dtype=float) for b in BANDS])
    mag = np.where(mag > 90, m5, mag)  # non-detections at the 5-sigma depth
    X = np.column_stack([-np.diff(mag, axis=1), mag[:, 3]])
    z = np.asarray(t["redshift"], dtype=float)
    knn = neighbors.KNeighborsRegressor(n_neighbors=10, weights="distance")
    zp = knn.fit(X[:5000], z[:5000]).predict(X[5000:])
    dz = (zp - z[5000:]) / (1 + z[5000:])
    assert 1.4826 * np.median(np.abs(dz - np.median(dz))) < 0.08


@pytest.mark.parametrize("kwargs", [dict(limit_band="y", bands="griz"), dict(depth="deep"),
                                    dict(unobserved_fraction=1.0), dict(z_max=0.0),
                                    dict(bands=("g", "g", "i")), dict(mag_limit=15.0)])
def test_invalid_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_photometry(10, **kwargs)
