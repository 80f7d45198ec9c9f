"""Shared fixtures: small synthetic photometric catalogs and FITS images made in the tests."""

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

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
    extra = {"catboost": "iterations: 30, n_bins: 12", "random_forest": "n_estimators: 20",
             "mlp": "n_bins: 20, hidden_layers: [32, 32], n_networks: 2, max_epochs: 60, patience: 8"}[kind]
    return PIPELINE_YAML.format(kind=kind, extra=extra)


@pytest.fixture(scope="session")
def tiny_yaml():
    """YAML text of a small, fast photo-z pipeline: ``tiny_yaml("catboost")``."""
    return tiny_pipeline_yaml


# --------------------------------------------------------------------------- FITS images with a WCS
# Shared by the cutout tests (tests/io/test_cutouts.py, tests/stages/test_cutouts_stage.py).


class WcsImages:
    """Small synthetic FITS images with a TAN WCS: Gaussian sources at chosen RA/Dec."""

    RA0, DEC0 = 150.0, 2.0  # centre of every WCS
    SCALE = 0.2  # arcsec per pixel
    SIGMA = 1.0  # arcsec, Gaussian width of the sources

    @classmethod
    def make_wcs(
        cls,
        shape: tuple = (120, 120),
        scale: float | None = None,
        rot_deg: float = 0.0,
        crpix: tuple | None = None,
    ) -> WCS:
        """TAN WCS centred on (RA0, DEC0), with RA increasing to the left."""
        scale = cls.SCALE if scale is None else scale
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [cls.RA0, cls.DEC0]
        w.wcs.crpix = list(crpix) if crpix else [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
        c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
        d = scale / 3600.0
        w.wcs.cd = np.array([[-d * c, d * s], [d * s, d * c]])
        return w

    @classmethod
    def render(cls, wcs: WCS, shape: tuple, sources: list) -> np.ndarray:
        """Image of Gaussian sources (ra, dec, total flux) in flux per pixel, float32."""
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        ra, dec = wcs.pixel_to_world_values(xx, yy)
        area = abs(np.linalg.det(wcs.pixel_scale_matrix)) * 3600.0**2  # arcsec^2
        img = np.zeros(shape)
        sigma = cls.SIGMA
        for sra, sdec, flux in sources:
            dx = (ra - sra) * math.cos(math.radians(sdec)) * 3600.0
            dy = (dec - sdec) * 3600.0
            img += flux * area / (2 * math.pi * sigma**2) * np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
        return img.astype(np.float32)

    @staticmethod
    def write(path: Path, data: np.ndarray, wcs: WCS | None) -> Path:
        """Write ``data`` as the primary HDU of ``path`` with ``wcs`` (None: no WCS); returns ``path``."""
        header = wcs.to_header() if wcs is not None else fits.Header()
        fits.PrimaryHDU(data, header=header).writeto(path)
        return path

    @staticmethod
    def sky(wcs: WCS, x: float, y: float) -> tuple:
        """(ra, dec) in degrees of pixel (x, y)."""
        ra, dec = wcs.pixel_to_world_values(x, y)
        return float(ra), float(dec)


@pytest.fixture(scope="session")
def wcs_images() -> type:
    """The :class:`WcsImages` helpers: ``make_wcs``, ``render``, ``write``, ``sky`` and constants."""
    return WcsImages


@pytest.fixture
def image_scene(tmp_path, wcs_images):
    """Two 120x120 bands on the same grid (``band_0.fits``, ``band_1.fits``, fluxes 100 and 300),
    three sources near pixel centres; returns ``(table, files, wcs, coords)``."""
    w = wcs_images.make_wcs()
    positions = [(60.2, 59.9), (30.0, 80.0), (90.0, 25.0)]
    coords = [wcs_images.sky(w, x, y) for x, y in positions]
    table = Table({"ra": [c[0] for c in coords], "dec": [c[1] for c in coords], "id": [1, 2, 3]})
    files = []
    for k, flux in enumerate([100.0, 300.0]):
        img = wcs_images.render(w, (120, 120), [(ra, dec, flux) for ra, dec in coords])
        files.append(wcs_images.write(tmp_path / f"band_{k}.fits", img, w))
    return table, files, w, coords
