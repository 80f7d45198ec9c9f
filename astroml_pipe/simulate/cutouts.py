"""Simulated multi-band image cutouts of stars and galaxies, with labels.

:func:`simulate_cutouts` draws GalSim postage stamps for training and testing
star-galaxy classifiers.  The result is a catalog whose ``cutout`` column is
``N x bands x H x W`` (see ``DESIGN.md``).

Model
-----
Units and zero point
    Pixel values are fluxes in nJy per pixel, background subtracted; the sum
    of a stamp is the source flux, so ``mag = 31.4 - 2.5 log10(sum)`` (AB,
    ``ZERO_POINT``).
Magnitudes
    The r-band magnitude is uniform in ``mag_range`` (a balanced training
    set, not the sky's number counts).  Other bands follow from the colours.
Galaxies
    Bulge (de Vaucouleurs, n = 4) + disk (exponential) with bulge fraction
    ~ Beta(1.2, 2.5).  Disk half-light radius: log10(r50 / arcsec) ~
    N(log10(0.6) - 0.15 (r - 22), 0.2), clipped to [0.1, 4] arcsec; the
    bulge has 0.4-0.8 of the disk radius.  Disk axis ratio from a uniform
    cos(inclination) with intrinsic thickness 0.2, bulge axis ratio
    U(0.6, 1), common random position angle.  Colours are those of
    :func:`astroml_pipe.simulate.photometry.model_colours` (CWW templates,
    Calzetti dust, Madau IGM) at redshift, type and E(B-V) drawn with the
    photometry simulator's p(z, type, E(B-V) | m), using r as the
    reference magnitude.  Bulge and disk share one SED, so the galaxy
    shape is the same in every band.  For the ``sdss`` preset the LSST
    ugriz throughputs stand in for SDSS ones in the galaxy colours (a
    few hundredths of a magnitude, more in u).
Stars
    Point sources with blackbody SEDs, Teff log-uniform in 3,000-10,000 K,
    through the preset's speclite filters (``lsst2023`` or ``sdss2010``),
    normalised in r.
PSF
    Moffat, beta = 3, FWHM drawn per stamp uniformly in ``seeing_range``
    and the same in every band (recorded as ``seeing``).  Stamps include
    the pixel response (GalSim ``method='auto'``).  Centroids are offset
    uniformly by up to +-0.5 pixel.
Noise
    Gaussian, background subtracted.  The background variance per pixel
    (sky Poisson + read noise, ``READ_FRACTION`` of the variance from read
    noise) is set so that PSF-optimal photometry of a point source reaches
    S/N = 5 at the preset's depth ``m5`` for the fiducial seeing:
    sigma_pix = F(m5) / (5 sqrt(n_eff)), n_eff = 1 / sum(psf_i^2).  Source
    Poisson noise adds variance F_pix / g with the effective gain
    g = F_sky,pix / sigma_sky^2 (nJy per electron) implied by the sky
    brightness.  The ``lsst`` preset uses the 10-year coadd depths of
    :data:`astroml_pipe.simulate.photometry.M5` (``lsst10yr``, quoted for
    ~0.7 arcsec seeing); the ``sdss`` preset single-epoch 95%-completeness
    depths (u 22.0, g 22.2, r 22.2, i 21.3, z 20.5) at 1.4 arcsec.
Neighbours
    With probability ``neighbours`` a second source (galaxy with
    probability ``galaxy_fraction``), 0.5-3 mag fainter in r, is added
    2-(stamp/2 - 3) pixels from the centre.
Stamp truncation
    ``mag_<band>`` are total magnitudes; light outside the stamp is lost.
    For 48 x 0.2 arcsec LSST stamps the in-stamp flux of galaxies is
    typically 87% at r = 18-19, 98% at r = 20-21 and > 99% fainter; stars
    lose < 0.5%.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from astropy.table import Column, Table
from tqdm.auto import tqdm

from astroml_pipe import __version__
from astroml_pipe.core.errors import ConfigError
from astroml_pipe.simulate import require_sim_extra
from astroml_pipe.simulate.photometry import M5, draw_population, model_colours

__all__ = ["PRESETS", "ZERO_POINT", "SurveyPreset", "simulate_cutouts"]

logger = logging.getLogger(__name__)

#: AB magnitude of 1 nJy: ``mag = ZERO_POINT - 2.5 log10(flux / nJy)``.
ZERO_POINT = 31.4
MOFFAT_BETA = 3.0
READ_FRACTION = 0.05
REF_BAND = "r"
_TEFF_RANGE = (3000.0, 10000.0)


@dataclass(frozen=True)
class SurveyPreset:
    """Survey parameters used by :func:`simulate_cutouts`.

    Attributes
    ----------
    bands : tuple of str
        Bands available, blue to red.
    filter_group : str
        speclite filter group (``<group>-<band>``).
    pixel_scale : float
        Arcsec per pixel.
    m5 : dict
        5-sigma point-source depth per band (AB) at ``fiducial_seeing``.
    sky : dict
        Sky brightness per band (AB mag / arcsec^2).
    fiducial_seeing : float
        PSF FWHM (arcsec) at which ``m5`` holds.
    seeing_range, mag_range : tuple of float
        Defaults of :func:`simulate_cutouts`.
    """

    bands: tuple[str, ...]
    filter_group: str
    pixel_scale: float
    m5: Mapping[str, float]
    sky: Mapping[str, float]
    fiducial_seeing: float
    seeing_range: tuple[float, float]
    mag_range: tuple[float, float]


#: Built-in presets.  Sky brightness: Ivezic et al. (2019, ApJ 873, 111,
#: table 2) for LSST; SDSS DR7 typical dark-sky values.
PRESETS: dict[str, SurveyPreset] = {
    "lsst": SurveyPreset(
        bands=("u", "g", "r", "i", "z", "y"), filter_group="lsst2023", pixel_scale=0.2,
        m5=dict(M5["lsst10yr"]),
        sky={"u": 22.99, "g": 22.26, "r": 21.20, "i": 20.48, "z": 19.60, "y": 18.61},
        fiducial_seeing=0.7, seeing_range=(0.6, 1.0), mag_range=(18.0, 24.0)),
    "sdss": SurveyPreset(
        bands=("u", "g", "r", "i", "z"), filter_group="sdss2010", pixel_scale=0.396,
        m5={"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5},
        sky={"u": 22.1, "g": 21.8, "r": 20.8, "i": 20.2, "z": 18.8},
        fiducial_seeing=1.4, seeing_range=(1.0, 1.6), mag_range=(16.0, 22.0)),
}


@lru_cache(maxsize=4)
def _stellar_colour_grid(group: str, bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Blackbody colours m_b - m_r on a log-Teff grid; returns (log_teff, colours)."""
    import astropy.units as u
    import speclite.filters

    names = [f"{group}-{b}" for b in dict.fromkeys(bands + (REF_BAND,))]
    filters = speclite.filters.load_filters(*names)
    wave = np.arange(2500.0, 12500.0, 5.0)
    log_t = np.linspace(math.log10(_TEFF_RANGE[0]), math.log10(_TEFF_RANGE[1]), 141)
    # Planck f_lambda up to a constant: lambda^-5 / (exp(hc / lambda k T) - 1)
    x = 1.438777e8 / (wave[None, :] * 10.0 ** log_t[:, None])
    flam = (wave[None, :] / 1e4) ** -5 / np.expm1(x) * 1e-15
    mags = filters.get_ab_magnitudes(flam * u.erg / (u.s * u.cm**2 * u.AA), wave * u.AA)
    m = np.stack([np.asarray(mags[f"{group}-{b}"]) for b in bands], axis=1)
    return log_t, m - np.asarray(mags[f"{group}-{REF_BAND}"])[:, None]


def _star_colours(log_teff: np.ndarray, group: str, bands: tuple[str, ...]) -> np.ndarray:
    grid_t, grid_c = _stellar_colour_grid(group, bands)
    return np.stack([np.interp(log_teff, grid_t, grid_c[:, k]) for k in range(len(bands))],
                    axis=1)


def _galaxy_colours(mag_r: np.ndarray, bands: tuple[str, ...],
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Colours m_b - m_r and redshifts of galaxies with r magnitudes ``mag_r``."""
    z, t, ebv = draw_population(mag_r, 3.0, rng)
    if mag_r.size == 0:
        return np.zeros((0, len(bands))), z
    return model_colours(z, t, ebv, bands=bands, ref_band=REF_BAND, z_max=3.0), z


def _noise_effective_area(seeing: float, pixel_scale: float) -> float:
    """n_eff = 1 / sum(p_i^2) in pixels of the pixelated Moffat PSF."""
    import galsim

    size = int(8 * seeing / pixel_scale) | 1
    img = galsim.Moffat(beta=MOFFAT_BETA, fwhm=seeing).drawImage(
        nx=size, ny=size, scale=pixel_scale)
    p = img.array / img.array.sum()
    return float(1.0 / np.sum(p**2))


def _check_range(name: str, value: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (lo <= a <= b <= hi) or not (math.isfinite(a) and math.isfinite(b)):
        raise ConfigError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}")
    return a, b


def _galaxy_profile(mag_r: float, rng: np.random.Generator, gsparams):
    """Unit-flux bulge + disk profile; returns (profile, disk half-light radius)."""
    import galsim

    r_d = float(np.clip(10.0 ** rng.normal(math.log10(0.6) - 0.15 * (mag_r - 22.0), 0.2),
                        0.1, 4.0))
    r_b = r_d * rng.uniform(0.4, 0.8)
    bt = rng.beta(1.2, 2.5)
    beta = rng.uniform(0.0, math.pi) * galsim.radians
    cos_i = rng.uniform()
    q_d = math.sqrt(cos_i**2 + 0.04 * (1.0 - cos_i**2))
    disk = galsim.Exponential(half_light_radius=r_d, flux=1.0 - bt, gsparams=gsparams)
    bulge = galsim.DeVaucouleurs(half_light_radius=r_b, flux=bt, gsparams=gsparams)
    prof = disk.shear(q=q_d, beta=beta) + bulge.shear(q=rng.uniform(0.6, 1.0), beta=beta)
    return prof, r_d


def simulate_cutouts(n: int, *, random_state: int | np.random.Generator | None = None,
                     preset: str = "lsst", bands: Sequence[str] | None = None,
                     stamp_size: int = 48, galaxy_fraction: float = 0.5,
                     mag_range: tuple[float, float] | None = None,
                     seeing_range: tuple[float, float] | None = None,
                     neighbours: float = 0.0, pixel_scale: float | None = None,
                     m5: Mapping[str, float] | None = None, noise: bool = True,
                     progress: bool = False) -> Table:
    """Simulate labelled multi-band cutouts of stars and galaxies.

    Parameters
    ----------
    n : int
        Number of stamps (>= 1).
    random_state : int, numpy.random.Generator or None, optional
        Seed or generator; the same integer gives the same table.
    preset : {"lsst", "sdss"}, optional
        Survey preset, see :data:`PRESETS`.
    bands : sequence of str, optional
        Distinct bands of the preset, in output order; default all.
    stamp_size : int, optional
        Stamp side in pixels (16..256).
    galaxy_fraction : float, optional
        Probability that a stamp holds a galaxy, in [0, 1].
    mag_range : (float, float), optional
        Range of the uniform true r-band AB magnitude; default the
        preset's ((18, 24) for lsst, (16, 22) for sdss).
    seeing_range : (float, float), optional
        Range of the uniform PSF FWHM in arcsec; default the preset's
        ((0.6, 1.0) for lsst, (1.0, 1.6) for sdss).
    neighbours : float, optional
        Probability in [0, 1] of a fainter second source in the stamp.
    pixel_scale : float, optional
        Arcsec per pixel; default the preset's.
    m5 : mapping, optional
        5-sigma depth per band overriding the preset's (for the preset's
        fiducial seeing).
    noise : bool, optional
        If False, return noiseless stamps (the model images).
    progress : bool, optional
        Show a progress bar (tqdm) while drawing (200-400 stamps/s on
        one core).

    Returns
    -------
    astropy.table.Table
        Columns ``id``, ``is_galaxy``, ``mag_<band>`` (true AB), ``seeing``
        (arcsec), ``redshift`` (NaN for stars), ``half_light_radius``
        (disk, arcsec; 0 for stars), ``has_neighbour`` and ``cutout``
        (float32, nJy per pixel, shape (n, n_bands, stamp_size,
        stamp_size)).  ``meta`` holds the preset, pixel scale, bands,
        zero point, depths and background sigma per band.

    Raises
    ------
    ConfigError
        If a parameter is out of range; the message names it.
    """
    require_sim_extra("simulate_cutouts")
    import galsim

    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    survey = PRESETS[preset]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    bands = survey.bands if bands is None else tuple(bands)
    if not bands or len(set(bands)) != len(bands) or not set(bands) <= set(survey.bands):
        raise ConfigError(f"bands must be distinct bands of preset {preset!r} "
                          f"{survey.bands}, got {bands}")
    if isinstance(stamp_size, bool) or not isinstance(stamp_size, (int, np.integer)) \
            or not 16 <= stamp_size <= 256:
        raise ConfigError(f"stamp_size must be an integer in [16, 256], got {stamp_size!r}")
    for name, val in (("galaxy_fraction", galaxy_fraction), ("neighbours", neighbours)):
        if not 0.0 <= float(val) <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {val!r}")
    mag_lo, mag_hi = _check_range("mag_range", survey.mag_range if mag_range is None
                                  else mag_range, 10.0, 30.0)
    see_lo, see_hi = _check_range("seeing_range", survey.seeing_range if seeing_range is None
                                  else seeing_range, 0.05, 10.0)
    scale = survey.pixel_scale if pixel_scale is None else float(pixel_scale)
    if not 0.01 <= scale <= 5.0:
        raise ConfigError(f"pixel_scale must be in [0.01, 5] arcsec, got {pixel_scale!r}")
    depth = dict(survey.m5)
    if m5 is not None:
        unknown = set(m5) - set(survey.bands)
        if unknown:
            raise ConfigError(f"m5 has bands {sorted(unknown)} not in preset {preset!r}")
        depth.update({b: float(v) for b, v in m5.items()})

    n, size, nb = int(n), int(stamp_size), len(bands)
    rng = np.random.default_rng(random_state)

    # per-band background sigma (nJy / pixel) and effective gain (nJy / e-)
    n_eff = _noise_effective_area(survey.fiducial_seeing, scale)
    sigma_bg = np.array([10.0 ** (-0.4 * (depth[b] - ZERO_POINT)) / (5.0 * math.sqrt(n_eff))
                         for b in bands])
    sky_pix = np.array([10.0 ** (-0.4 * (survey.sky[b] - ZERO_POINT)) * scale**2 for b in bands])
    gain = sky_pix / ((1.0 - READ_FRACTION) * sigma_bg**2)

    # labels and magnitudes, drawn vectorised
    is_gal = rng.random(n) < galaxy_fraction
    mag_r = rng.uniform(mag_lo, mag_hi, n)
    seeing = rng.uniform(see_lo, see_hi, n)
    offsets = rng.uniform(-0.5, 0.5, (n, 2))
    has_nb = rng.random(n) < neighbours
    nb_gal = rng.random(n) < galaxy_fraction
    nb_mag = mag_r + rng.uniform(0.5, 3.0, n)
    nb_r = rng.uniform(2.0, max(size / 2.0 - 3.0, 2.5), n)
    nb_phi = rng.uniform(0.0, 2.0 * math.pi, n)
    colours = np.empty((n, nb))
    nb_colours = np.zeros((n, nb))
    redshift = np.full(n, np.nan)
    colours[is_gal], redshift[is_gal] = _galaxy_colours(mag_r[is_gal], bands, rng)
    colours[~is_gal] = _star_colours(rng.uniform(*np.log10(_TEFF_RANGE), (~is_gal).sum()),
                                     survey.filter_group, bands)
    sel = has_nb & nb_gal
    nb_colours[sel] = _galaxy_colours(nb_mag[sel], bands, rng)[0]
    sel = has_nb & ~nb_gal
    nb_colours[sel] = _star_colours(rng.uniform(*np.log10(_TEFF_RANGE), sel.sum()),
                                    survey.filter_group, bands)
    mags = mag_r[:, None] + colours
    flux = 10.0 ** (-0.4 * (mags - ZERO_POINT))
    nb_flux = 10.0 ** (-0.4 * (nb_mag[:, None] + nb_colours - ZERO_POINT))

    gsparams = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)
    img = galsim.ImageF(size, size, scale=scale)
    cut = np.empty((n, nb, size, size), dtype=np.float32)
    hlr = np.zeros(n)
    for i in tqdm(range(n), disable=not progress, unit="stamps", desc="simulate"):
        psf = galsim.Moffat(beta=MOFFAT_BETA, fwhm=seeing[i], gsparams=gsparams)
        if is_gal[i]:
            gal, hlr[i] = _galaxy_profile(mag_r[i], rng, gsparams)
            obj = galsim.Convolve(gal, psf, gsparams=gsparams)
        else:
            obj = psf
        obj.drawImage(image=img, offset=tuple(offsets[i]), method="auto")
        stamp = flux[i][:, None, None] * img.array[None]
        if has_nb[i]:
            other = (_galaxy_profile(nb_mag[i], rng, gsparams)[0] if nb_gal[i] else None)
            other = psf if other is None else galsim.Convolve(other, psf, gsparams=gsparams)
            dx, dy = nb_r[i] * math.cos(nb_phi[i]), nb_r[i] * math.sin(nb_phi[i])
            other.drawImage(image=img, offset=(dx, dy), method="auto")
            stamp += nb_flux[i][:, None, None] * img.array[None]
        cut[i] = stamp
    if noise:
        var = sigma_bg[None, :, None, None] ** 2 \
            + np.maximum(cut, 0.0) / gain[None, :, None, None]
        cut += (np.sqrt(var) * rng.standard_normal(cut.shape)).astype(np.float32)
    logger.debug("simulated %d %s cutouts of %d bands", n, preset, nb)

    table = Table()
    table["id"] = Column(np.arange(n, dtype=np.int64), description="Source index")
    table["is_galaxy"] = Column(is_gal, description="True for a galaxy, False for a star")
    for k, b in enumerate(bands):
        table[f"mag_{b}"] = Column(mags[:, k], unit="mag",
                                   description=f"True total AB magnitude in {b}")
    table["seeing"] = Column(seeing, unit="arcsec", description="Moffat PSF FWHM")
    table["redshift"] = Column(redshift, description="True redshift (NaN for stars)")
    table["half_light_radius"] = Column(hlr, unit="arcsec",
                                        description="Disk half-light radius (0 for stars)")
    table["has_neighbour"] = Column(has_nb, description="A fainter second source is present")
    table["cutout"] = Column(cut, unit="nJy", description=(
        "Background-subtracted flux per pixel, (band, y, x); "
        f"mag = {ZERO_POINT} - 2.5 log10(sum)"))
    table.meta.update({
        "preset": preset, "pixel_scale": scale, "bands": list(bands),
        "zero_point": ZERO_POINT, "flux_unit": "nJy", "psf": f"Moffat beta={MOFFAT_BETA}",
        "m5": {b: depth[b] for b in bands}, "fiducial_seeing": survey.fiducial_seeing,
        "sigma_background": dict(zip(bands, sigma_bg.tolist())), "noise": bool(noise),
        "stamp_size": size, "generator": f"astroml_pipe {__version__} simulate_cutouts",
    })
    return table
