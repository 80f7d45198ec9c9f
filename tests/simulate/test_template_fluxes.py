"""The template fluxes that ship with the package: the photometry simulation needs neither GalSim nor speclite."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from astroml_pipe.core.errors import MissingDependencyError, ModelError
from astroml_pipe.simulate import photometry
from astroml_pipe.simulate.photometry import TEMPLATE_FLUX_FILE, simulate_photometry, template_fluxes


@pytest.fixture
def fresh_caches():
    """Empty the module's caches before and after a test that changes what they would hold."""
    caches = (photometry._shipped_template_fluxes, photometry._colour_grid, photometry._templates,
              photometry._filter_curves)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def test_shipped_table_is_what_the_templates_and_filters_give():
    pytest.importorskip("galsim")
    pytest.importorskip("speclite.filters")
    with np.load(TEMPLATE_FLUX_FILE, allow_pickle=False) as data:
        shipped = data["flux"]
        assert tuple(data["bands"].tolist()) == photometry.LSST_BANDS
    fresh = template_fluxes(photometry.Z_TABLE_MAX)
    assert shipped.shape == fresh.shape == (801, 4, 4, 6)
    np.testing.assert_allclose(shipped, fresh, rtol=1e-12, atol=0)


def test_simulation_needs_neither_galsim_nor_speclite(monkeypatch, fresh_caches):
    reference = simulate_photometry(300, random_state=5, unobserved_fraction=0.01)
    photometry._colour_grid.cache_clear()
    photometry._shipped_template_fluxes.cache_clear()
    for name in ("galsim", "galsim.meta_data", "speclite", "speclite.filters"):
        monkeypatch.setitem(sys.modules, name, None)  # importing them now fails
    with pytest.raises(ImportError):
        importlib.import_module("speclite.filters")
    again = simulate_photometry(300, random_state=5, unobserved_fraction=0.01)
    for name in reference.colnames:
        np.testing.assert_array_equal(np.asarray(again[name]), np.asarray(reference[name]))
    with pytest.raises(MissingDependencyError, match=r"astroml-pipe\[sim\]"):
        template_fluxes(0.1)  # rebuilding the table does need them


def test_a_damaged_table_is_refused_with_a_clear_error(tmp_path, monkeypatch, fresh_caches):
    bad = tmp_path / "fluxes.npz"
    with np.load(TEMPLATE_FLUX_FILE, allow_pickle=False) as data:
        np.savez(bad, **{**{key: data[key] for key in data.files}, "flux": data["flux"][:100]})
    monkeypatch.setattr(photometry, "TEMPLATE_FLUX_FILE", bad)
    with pytest.raises(ModelError, match="do not match this version's grid; rebuild"):
        simulate_photometry(10, random_state=1)
    bad.write_bytes(b"not an npz file")
    photometry._shipped_template_fluxes.cache_clear()
    with pytest.raises(ModelError, match="cannot read the template fluxes"):
        simulate_photometry(10, random_state=1)
