"""Tests of astroml_pipe.simulate.cutouts (simulated multi-band star/galaxy stamps)."""

from __future__ import annotations

import math

import numpy as np
import pytest

galsim = pytest.importorskip("galsim")
pytest.importorskip("speclite.filters")

from astroml_pipe.core.errors import ConfigError  # noqa: E402
from astroml_pipe.simulate.cutouts import PRESETS, ZERO_POINT, simulate_cutouts  # noqa: E402


@pytest.fixture(scope="module")
def noisy():
    return simulate_cutouts(120, random_state=3, bands="gri", mag_range=(19.0, 20.0))


@pytest.fixture(scope="module")
def noiseless():
    return simulate_cutouts(120, random_state=4, bands="gri", noise=False,
                            mag_range=(22.5, 24.0), seeing_range=(0.8, 1.0))


def test_columns_shapes_dtypes():
    t = simulate_cutouts(7, random_state=0, neighbours=0.5, stamp_size=32)
    assert t["cutout"].shape == (7, 6, 32, 32)
    assert t["cutout"].dtype == np.float32
    assert str(t["cutout"].unit) == "nJy"
    assert t["is_galaxy"].dtype == bool
    for b in "ugrizy":
        assert f"mag_{b}" in t.colnames and np.all(np.isfinite(t[f"mag_{b}"]))
    assert list(t["id"]) == list(range(7))
    assert np.all((t["seeing"] >= 0.6) & (t["seeing"] <= 1.0))
    assert t.meta["preset"] == "lsst" and t.meta["pixel_scale"] == 0.2
    assert t.meta["bands"] == list("ugrizy") and t.meta["zero_point"] == ZERO_POINT
    s = simulate_cutouts(3, random_state=0, preset="sdss")
    assert s["cutout"].shape == (3, 5, 48, 48) and s.meta["pixel_scale"] == 0.396
    assert np.all(s["seeing"] >= 1.0)


def test_reproducible():
    a = simulate_cutouts(6, random_state=11, neighbours=0.5, bands="gr")
    b = simulate_cutouts(6, random_state=11, neighbours=0.5, bands="gr")
    c = simulate_cutouts(6, random_state=12, neighbours=0.5, bands="gr")
    for name in a.colnames:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["cutout"], c["cutout"])


def test_stars_more_concentrated_than_galaxies(noisy):
    cut = np.asarray(noisy["cutout"])[:, 2]  # i band, background subtracted
    frac = cut[:, 22:26, 22:26].sum(axis=(1, 2)) / cut.sum(axis=(1, 2))
    gal = np.asarray(noisy["is_galaxy"])
    assert gal.sum() > 20 and (~gal).sum() > 20
    assert frac[~gal].mean() > frac[gal].mean() + 0.1


def test_noiseless_flux_matches_magnitude(noiseless):
    cut = np.asarray(noiseless["cutout"], dtype=float)
    gal = np.asarray(noiseless["is_galaxy"])
    for k, b in enumerate("gri"):
        ratio = cut[:, k].sum(axis=(1, 2)) / 10.0 ** (-0.4 * (noiseless[f"mag_{b}"] - ZERO_POINT))
        np.testing.assert_allclose(ratio[~gal], 1.0, atol=0.02)
        assert abs(np.median(ratio[gal]) - 1.0) < 0.02


def test_brighter_objects_have_higher_snr():
    t = simulate_cutouts(80, random_state=5, bands="r", galaxy_fraction=0.0,
                         mag_range=(18.0, 25.0))
    cut = np.asarray(t["cutout"], dtype=float)[:, 0]
    border = np.concatenate([cut[:, :6].reshape(80, -1), cut[:, -6:].reshape(80, -1)], axis=1)
    ap = cut[:, 20:28, 20:28]
    snr = ap.sum(axis=(1, 2)) / (border.std(axis=1) * math.sqrt(ap[0].size))
    mag = np.asarray(t["mag_r"])
    assert np.median(snr[mag < 20]) > 10 * np.median(snr[mag > 23])
    assert np.corrcoef(mag, np.log10(np.maximum(snr, 0.1)))[0, 1] < -0.8


def test_depth_matches_m5():
    """A noiseless point source at m5 and the fiducial seeing has optimal S/N ~ 5."""
    m5 = PRESETS["lsst"].m5["r"]
    t = simulate_cutouts(3, random_state=0, bands="r", galaxy_fraction=0.0, noise=False,
                         mag_range=(m5, m5), seeing_range=(0.7, 0.7))
    sigma = t.meta["sigma_background"]["r"]
    snr = np.sqrt((np.asarray(t["cutout"], dtype=float)[:, 0] ** 2).sum(axis=(1, 2))) / sigma
    np.testing.assert_allclose(snr, 5.0, rtol=0.01)


def test_seeing_matches_star_fwhm(noiseless):
    stars = noiseless[~np.asarray(noiseless["is_galaxy"])]
    assert len(stars) > 20
    scale = noiseless.meta["pixel_scale"]
    y, x = np.mgrid[0:48, 0:48]
    for row in stars:
        arr = np.asarray(row["cutout"][1], dtype=float)
        cx, cy = (arr * x).sum() / arr.sum(), (arr * y).sum() / arr.sum()
        img = galsim.Image(arr, scale=scale)
        fwhm = img.calculateFWHM(center=galsim.PositionD(cx + 1.0, cy + 1.0))
        assert fwhm == pytest.approx(row["seeing"], rel=0.1)


def test_neighbours_add_flux():
    kw = dict(random_state=8, bands="r", galaxy_fraction=0.0, noise=False)
    a = simulate_cutouts(20, neighbours=1.0, **kw)
    b = simulate_cutouts(20, neighbours=0.0, **kw)  # same primaries (stars use no extra draws)
    assert np.all(a["has_neighbour"]) and not np.any(b["has_neighbour"])
    np.testing.assert_array_equal(a["mag_r"], b["mag_r"])
    extra = np.asarray(a["cutout"], float).sum(axis=(1, 2, 3)) / np.asarray(
        b["cutout"], float).sum(axis=(1, 2, 3))
    assert np.all(extra > 1.01) and np.all(extra < 1.7)


@pytest.mark.parametrize("kwargs, name", [
    ({"n": 0}, "n"),
    ({"preset": "hsc"}, "preset"),
    ({"bands": "gx"}, "bands"),
    ({"bands": "gg"}, "bands"),
    ({"preset": "sdss", "bands": "y"}, "bands"),
    ({"stamp_size": 4}, "stamp_size"),
    ({"galaxy_fraction": 1.5}, "galaxy_fraction"),
    ({"neighbours": -0.1}, "neighbours"),
    ({"mag_range": (24.0, 18.0)}, "mag_range"),
    ({"mag_range": 20.0}, "mag_range"),
    ({"seeing_range": (0.0, 1.0)}, "seeing_range"),
    ({"pixel_scale": -1.0}, "pixel_scale"),
    ({"m5": {"q": 25.0}}, "m5"),
])
def test_bad_parameters(kwargs, name):
    kwargs = {"n": 2, **kwargs}
    with pytest.raises(ConfigError, match=name):
        simulate_cutouts(**kwargs)
