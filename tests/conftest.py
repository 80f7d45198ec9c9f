"""Shared fixtures: small synthetic photometric catalogs made in the tests."""

import numpy as np
import pytest
from astropy.table import Table

BANDS = "ugrizy"


def toy_catalog(n: int = 2000, seed: int = 0) -> Table:
    """A catalog whose colours depend smoothly on redshift, with sentinels.

    Not physical (the simulator tests cover physics); it makes the engine
    tests fast and independent of the simulator.
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.05, 2.5, n)
    table = Table()
    table["id"] = np.arange(n)
    table["redshift"] = z.astype("f4")
    for k, band in enumerate(BANDS):
        mag = 22.0 + np.sin(z * (k + 1)) + 0.3 * k * z + rng.normal(0, 0.03, n)
        table[f"mag_{band}"] = mag.astype("f4")
        table[f"mag_{band}"].unit = "mag"
        table[f"magerr_{band}"] = np.full(n, 0.03, "f4") * (1 + rng.uniform(0, 10, n))
        table[f"magerr_{band}"].unit = "mag"
    table["mag_u"][:50] = 99.0
    table["magerr_u"][:50] = 99.0
    table["mag_y"][50:80] = np.nan
    table["magerr_y"][50:80] = np.nan
    return table


@pytest.fixture
def catalog() -> Table:
    return toy_catalog()


@pytest.fixture(scope="session")
def make_catalog():
    """The :func:`toy_catalog` factory."""
    return toy_catalog


PIPELINE_YAML = """
name: test-photoz
version: 1
stages:
  - name: colors
    uses: features.colors
  - name: photoz
    uses: photoz.{kind}
    with: {{{extra}}}
"""


def tiny_pipeline_yaml(kind: str = "catboost") -> str:
    extra = "iterations: 30, n_bins: 12" if kind == "catboost" else "n_estimators: 20"
    return PIPELINE_YAML.format(kind=kind, extra=extra)


@pytest.fixture(scope="session")
def tiny_yaml():
    """YAML text of a small, fast photo-z pipeline: ``tiny_yaml("catboost")``."""
    return tiny_pipeline_yaml
