"""Morphology features on simulated noiseless stars and galaxies."""

import numpy as np
import pytest

from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.features.morphology import FEATURES, Morphology, measure_morphology, morphology_columns

pytest.importorskip("galsim")
from astroml_pipe.simulate.cutouts import simulate_cutouts  # noqa: E402


@pytest.fixture(scope="module")
def noiseless():
    return simulate_cutouts(200, random_state=5, stamp_size=32, noise=False, bands=["g", "r", "i"])


def test_stars_are_compact(noiseless):
    out = Morphology(bands=["g", "r", "i"]).run(noiseless)
    star = ~np.asarray(noiseless["is_galaxy"])
    for band in "gri":
        conc, size = np.asarray(out[f"morph_conc_{band}"]), np.asarray(out[f"morph_size_{band}"])
        assert np.median(conc[star]) > np.median(conc[~star]) + 0.1
        assert np.median(size[star]) < np.median(size[~star])
        assert np.median(out[f"morph_psfext_{band}"][star]) < np.median(out[f"morph_psfext_{band}"][~star])
        assert np.median(out[f"morph_ellip_{band}"][star]) < 0.02
    assert out["morph_size_r"].unit == "pix" and out["morph_psfext_r"].unit == "mag"
    assert "concentration" in out["morph_conc_r"].description


def test_star_fwhm_matches_seeing(noiseless):
    out = Morphology(bands=["r"]).run(noiseless)  # picks the r plane by name from the metadata
    star = ~np.asarray(noiseless["is_galaxy"])
    expected = np.asarray(noiseless["seeing"])[star] / noiseless.meta["pixel_scale"]
    ratio = np.asarray(out["morph_fwhm_r"])[star] / expected
    assert np.all(np.abs(ratio - 1) < 0.15)
    assert "morph_fwhm_g" not in out.colnames


def test_columns_and_bands_without_metadata(noiseless):
    table = noiseless.copy()
    table.meta.pop("bands")
    stage = Morphology(bands=["a", "b", "c"])
    assert [c.name for c in stage.provides()] == morphology_columns(["a", "b", "c"])
    assert len(stage.provides()) == 3 * len(FEATURES)
    out = stage.run(table)
    assert out["morph_conc_b"].dtype == np.float32
    with pytest.raises(InputError, match="planes"):
        Morphology(bands=["a", "b"]).run(table)
    with pytest.raises(InputError, match="not in the stamps"):
        Morphology(bands=["u"]).run(noiseless)
    with pytest.raises(ConfigError):
        Morphology(r_small=5.0, r_large=2.0)


def test_chunks_and_noise_only():
    rng = np.random.default_rng(0)
    stamps = rng.normal(size=(7, 2, 20, 20)).astype("f4")
    whole = measure_morphology(stamps)
    assert set(whole) == set(FEATURES)
    assert all(v.shape == (7, 2) and v.dtype == np.float32 for v in whole.values())
    from astropy.table import Table

    table = Table({"cutout": stamps})
    a = Morphology(bands=["x", "y"], chunk_size=3).run(table)
    b = Morphology(bands=["x", "y"]).run(table)
    for name in morphology_columns(["x", "y"]):
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))
