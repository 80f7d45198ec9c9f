"""Simulated LSST-like galaxy photometry with true redshifts.

:func:`simulate_photometry` draws a magnitude-limited galaxy catalog with
realistic colours, for training and testing photometric-redshift methods.

Model
-----
SEDs
    The four empirical templates of Coleman, Wu & Weedman (1980, ApJS 43,
    393) shipped with GalSim (``share/SEDs/CWW_{E,Sbc,Scd,Im}_ext.sed``; the
    ``*_more`` files are the same spectra, thinned more coarsely).  They were
    extended below 1400 A and above 1 micron by Bolzonella, Miralles & Pello
    (2000, A&A 363, 476) with Bruzual & Charlot (1993) models and cover
    91-22050 A (rest frame); ugrizy for 0 <= z <= 4 needs ~640-11000 A, so no
    extension is required.  Outside the tabulated range the code would use
    zero flux blueward and constant f_nu redward.  Each template is
    normalised to f_lambda = 1 at 5400-5600 A and a continuous type
    ``t`` in [0, 3] (0 = E, 1 = Sbc, 2 = Scd, 3 = Im) mixes adjacent
    templates linearly in f_lambda.
Internal dust
    Calzetti et al. (2000, ApJ 533, 682) starburst law (R_V = 4.05) with
    E(B-V) <= 0.3, extrapolated linearly below 1200 A; applied in the rest
    frame to star-forming types only.
IGM
    Madau (1995, ApJ 441, 18): Lyman-series line blanketing (Ly alpha-delta,
    eqs. 12 and 15) and the photoelectric-absorption fit of his footnote 3,
    applied in the observed frame.
Filters and magnitudes
    LSST total throughputs (``lsst2023-*`` of speclite, from lsst/throughputs
    v1.9).  AB magnitudes (Oke & Gunn 1983) for a photon-counting detector,
    m = -2.5 log10[int f_lambda R lambda dlambda / int f_lambda^AB R lambda
    dlambda]; a flat f_nu source gives the same magnitude in every band.
    The band fluxes of the four templates on a grid of redshift (0-4, step
    0.005) x 4 E(B-V) values ship with the package
    (``astroml_pipe/data/lsst_template_fluxes.npz``, written by
    ``python -m astroml_pipe.simulate.photometry``), so simulating needs
    neither GalSim nor speclite; only rebuilding that table does.  Noise-free
    colours m_b - m_ref are tabulated from it on a grid of redshift x 40
    types x 4 E(B-V) values and interpolated trilinearly.
Population (LSST Science Book, arXiv:0912.0201, section 3.7.2)
    Reference-band (``limit_band``) magnitudes follow the number counts
    dN/dm ~ 10^(0.31 m) from 18 to a little fainter than ``mag_limit``;
    redshifts follow p(z|m) ~ z^2 exp(-z/z0), z0 = 0.0417 m - 0.744 (floored
    at 0.03), truncated at ``z_max``.  Types follow deep-field luminosity
    functions by type qualitatively (e.g. Dahlen et al. 2005, ApJ 631, 126):
    a fraction [0.15 + 0.35 / (1 + e^(m - 21.5))] e^(-z/1.5) is early type,
    t = |N(0, 0.3)| <= 1; the rest have t = 0.8 + 2.2 Beta(a, 2) with
    a = 1.5 + 1.5 min(z, 2) + 0.25 (m - 22) (bluer when fainter or more
    distant) and E(B-V) ~ Exp(0.08), capped at 0.3, times clip(t - 0.5, 0, 1).
    The templates already contain a stellar Lyman-limit break; no extra
    interstellar Lyman-continuum absorption is applied.
Errors (Ivezic et al. 2019, ApJ 873, 111, eq. 5)
    sigma_rand^2 = (0.04 - gamma) x + gamma x^2, x = 10^(0.4 (m - m5)),
    gamma = 0.038 (u) or 0.039, plus sigma_sys = 0.005 in quadrature.
    ``lsst10yr`` uses the 10-year coadded 5-sigma depths (u 26.1, g 27.4,
    r 27.5, i 26.8, z 26.1, y 24.9); ``lsst1yr`` is 2.5 log10(sqrt 10) =
    1.25 mag shallower.  Noise is Gaussian in flux, sigma_f = f sigma_m /
    1.0857 at the true magnitude; the reported error is the model evaluated
    at the observed magnitude and a band counts as detected when the flux is
    positive and 1.0857 / magerr >= 5.  Objects are kept when the observed
    ``limit_band`` magnitude is detected and <= ``mag_limit``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.table import Column, Table
from scipy.special import gammainc, gammaincinv

from astroml_pipe import __version__
from astroml_pipe.core.errors import ConfigError, ModelError
from astroml_pipe.simulate import require_sim_extra

__all__ = ["LSST_BANDS", "M5", "calzetti_k", "draw_population", "lsst_mag_error", "madau_igm_transmission",
           "model_colours", "simulate_photometry", "synthetic_ab_mags", "template_fluxes", "write_template_fluxes"]

logger = logging.getLogger(__name__)

LSST_BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
_M5_10YR = {"u": 26.1, "g": 27.4, "r": 27.5, "i": 26.8, "z": 26.1, "y": 24.9}
#: Per-band 5-sigma point-source depths (AB) for each ``depth`` option.
M5: dict[str, dict[str, float]] = {
    "lsst10yr": dict(_M5_10YR),
    "lsst1yr": {b: m - 2.5 * math.log10(math.sqrt(10.0)) for b, m in _M5_10YR.items()},
}
GAMMA = {b: (0.038 if b == "u" else 0.039) for b in LSST_BANDS}
SIGMA_SYS = 0.005
FILTER_GROUP = "lsst2023"
TEMPLATE_FILES = ("CWW_E_ext.sed", "CWW_Sbc_ext.sed", "CWW_Scd_ext.sed", "CWW_Im_ext.sed")
N_TYPES = 40
TYPE_MAX = float(len(TEMPLATE_FILES) - 1)
EBV_GRID = np.array([0.0, 0.1, 0.2, 0.3])
DZ = 0.005
#: Highest redshift of the shipped template fluxes (and of ``z_max``).
Z_TABLE_MAX = 4.0
#: The shipped band fluxes of the templates (see :func:`template_fluxes`).
TEMPLATE_FLUX_FILE = Path(__file__).resolve().parent.parent / "data" / "lsst_template_fluxes.npz"
M_BRIGHT = 18.0
COUNT_SLOPE = 0.31
FIELD_CENTRE = (150.0, 2.0)  # deg (ra, dec)
FIELD_SIDE = 1.0  # deg
_ZP_NJY = 31.4  # AB magnitude of 1 nJy
_PSN = 2.5 / math.log(10.0)  # 1.0857: mag error per fractional flux error
_C_AA = 2.99792458e18  # speed of light, A/s
_LYMAN_SERIES = ((1215.67, 3.6e-3), (1025.72, 1.7e-3), (972.54, 1.2e-3), (949.74, 9.3e-4))


def calzetti_k(wavelength: np.ndarray) -> np.ndarray:
    """Calzetti et al. (2000) attenuation curve k(lambda), R_V = 4.05.

    Parameters
    ----------
    wavelength : array_like
        Rest-frame wavelength in Angstrom.

    Returns
    -------
    numpy.ndarray
        k(lambda); the attenuation is A_lambda = k(lambda) E(B-V).
    """
    lam = np.asarray(wavelength, dtype=float) / 1e4

    def blue(x: np.ndarray) -> np.ndarray:
        return 2.659 * (-2.156 + 1.509 / x - 0.198 / x**2 + 0.011 / x**3) + 4.05

    slope = 2.659 * (-1.509 / 0.12**2 + 0.396 / 0.12**3 - 0.033 / 0.12**4)
    with np.errstate(divide="ignore"):
        red = 2.659 * (-1.857 + 1.040 / lam) + 4.05
        k = np.where(lam > 0.63, red, blue(np.maximum(lam, 0.12)))
    return np.where(lam < 0.12, blue(np.array(0.12)) + slope * (lam - 0.12), k)


def madau_igm_transmission(wavelength: np.ndarray, z: float) -> np.ndarray:
    """Mean IGM transmission exp(-tau_eff) of Madau (1995).

    Parameters
    ----------
    wavelength : array_like
        Observed-frame wavelength in Angstrom.
    z : float
        Source redshift.

    Returns
    -------
    numpy.ndarray
        Transmission in [0, 1], same shape as ``wavelength``.
    """
    lam = np.asarray(wavelength, dtype=float)
    tau = np.zeros_like(lam)
    for lam_j, a_j in _LYMAN_SERIES:
        tau += np.where(lam < lam_j * (1.0 + z), a_j * (lam / lam_j) ** 3.46, 0.0)
    xem = 1.0 + z
    xc = np.clip(lam / 912.0, 1.0, xem)
    tau_pe = (0.25 * xc**3 * (xem**0.46 - xc**0.46) + 9.4 * xc**1.5 * (xem**0.18 - xc**0.18)
              - 0.7 * xc**3 * (xc**-1.32 - xem**-1.32) - 0.023 * (xem**1.68 - xc**1.68))
    tau += np.where(lam < 912.0 * xem, np.maximum(tau_pe, 0.0), 0.0)
    return np.exp(-tau)


def lsst_mag_error(mag: np.ndarray, m5: float, gamma: float = 0.039,
                   sigma_sys: float = SIGMA_SYS) -> np.ndarray:
    """Photometric error of Ivezic et al. (2019, eq. 5) plus a systematic floor.

    Parameters
    ----------
    mag : array_like
        AB magnitude.
    m5 : float
        5-sigma point-source depth of the band.
    gamma : float, optional
        Sky-noise parameter (0.038 for u, 0.039 for grizy).
    sigma_sys : float, optional
        Systematic error added in quadrature (mag).

    Returns
    -------
    numpy.ndarray
        Total 1-sigma magnitude error.
    """
    x = 10.0 ** (0.4 * (np.asarray(mag, dtype=float) - m5))
    return np.sqrt((0.04 - gamma) * x + gamma * x * x + sigma_sys**2)


@lru_cache(maxsize=4)
def _filter_curves(group: str = FILTER_GROUP) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import speclite.filters

    curves = {}
    for band in LSST_BANDS:
        f = speclite.filters.load_filter(f"{group}-{band}")
        curves[band] = (np.asarray(f.wavelength, float), np.asarray(f.response, float))
    return curves


def synthetic_ab_mags(wavelength: np.ndarray, flambda: np.ndarray,
                      bands: Sequence[str] = LSST_BANDS) -> np.ndarray:
    """Synthetic AB magnitudes through the LSST throughputs.

    Parameters
    ----------
    wavelength : array_like, shape (n_wave,)
        Observed wavelength in Angstrom, increasing; must cover the filters.
    flambda : array_like, shape (..., n_wave)
        Flux density in erg s^-1 cm^-2 A^-1.
    bands : sequence of str, optional
        LSST band names.

    Returns
    -------
    numpy.ndarray, shape (..., n_bands)
        AB magnitudes (NaN where the band flux is not positive).
    """
    wave = np.asarray(wavelength, dtype=float)
    weights = _band_weights(tuple(bands), wave)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(flambda, dtype=float) @ weights.T
        return np.where(ratio > 0, -2.5 * np.log10(np.where(ratio > 0, ratio, 1.0)), np.nan)


def _band_weights(bands: tuple[str, ...], wave: np.ndarray) -> np.ndarray:
    """Weights R lambda dlambda / int f_lambda^AB R lambda dlambda per band on ``wave``."""
    curves = _filter_curves()
    dl = np.gradient(wave)
    dl[0] *= 0.5
    dl[-1] *= 0.5
    out = np.empty((len(bands), wave.size))
    for k, band in enumerate(bands):
        fw, fr = curves[band]
        if wave[0] > fw[fr > 0].min() or wave[-1] < fw[fr > 0].max():
            raise ConfigError(f"wavelength grid does not cover the {band} filter")
        out[k] = np.interp(wave, fw, fr, left=0.0, right=0.0) * wave * dl
    return out / (out @ (3631e-23 * _C_AA / wave**2))[:, None]


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from galsim.meta_data import share_dir

    out = []
    for name in TEMPLATE_FILES:
        wave, flux = np.loadtxt(os.path.join(share_dir, "SEDs", name), unpack=True)
        norm = flux[(wave >= 5400) & (wave <= 5600)].mean()
        out.append((wave, flux / norm))
    return tuple(out)


def _rest_template(k: int, rest: np.ndarray) -> np.ndarray:
    wave, flux = _templates()[k]
    f = np.interp(rest, wave, flux, left=0.0, right=flux[-1])
    red = rest > wave[-1]  # constant f_nu beyond the table
    f[red] = flux[-1] * (wave[-1] / rest[red]) ** 2
    return f


def _n_redshifts(z_max: float) -> int:
    """Points of the redshift grid 0, DZ, 2 DZ, ... that reaches ``z_max``."""
    return int(math.ceil(z_max / DZ - 1e-9)) + 1


def template_fluxes(z_max: float = Z_TABLE_MAX) -> np.ndarray:
    """Noise-free band fluxes of the templates, computed from GalSim's SEDs and speclite's filters.

    Needs the ``sim`` extra.  The package ships this table for ``z_max`` =
    4 (``TEMPLATE_FLUX_FILE``), which is what the simulation uses.

    Parameters
    ----------
    z_max : float, optional
        Highest redshift of the grid (step ``DZ``).

    Returns
    -------
    numpy.ndarray, shape (n_z, 4, 4, 6)
        Flux through each LSST band (in the order of ``LSST_BANDS``) of
        each template (``TEMPLATE_FILES``) with each internal E(B-V) of
        ``EBV_GRID``, at redshifts ``0, DZ, 2 DZ, ...``; in units of the
        AB zero-point flux times the template's normalisation.
    """
    require_sim_extra("computing the template fluxes")
    nz = _n_redshifts(z_max)
    wave = np.arange(3000.0, 11200.0, 2.0)
    weights = _band_weights(LSST_BANDS, wave)
    ntpl = len(TEMPLATE_FILES)
    flux = np.empty((nz, ntpl, EBV_GRID.size, len(LSST_BANDS)))
    for j in range(nz):
        z = j * DZ
        rest = wave / (1.0 + z)
        sed = np.stack([_rest_template(k, rest) for k in range(ntpl)])
        sed *= madau_igm_transmission(wave, z)
        dust = 10.0 ** (-0.4 * np.outer(EBV_GRID, calzetti_k(rest)))
        flux[j] = (sed[:, None, :] * dust[None]) @ weights.T
    return flux


def write_template_fluxes(path: str | os.PathLike = TEMPLATE_FLUX_FILE) -> Path:
    """Compute :func:`template_fluxes` up to redshift 4 and save them as the table the simulation reads.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Output ``.npz`` file; by default the package's own table.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    np.savez_compressed(path, flux=template_fluxes(Z_TABLE_MAX), dz=DZ, ebv=EBV_GRID, bands=np.array(LSST_BANDS),
                        templates=np.array(TEMPLATE_FILES), filters=np.array(FILTER_GROUP))
    logger.info("wrote the template fluxes to %s", path)
    return path


@lru_cache(maxsize=1)
def _shipped_template_fluxes() -> np.ndarray:
    """The template-flux table that ships with the package, checked against this module's grid."""
    try:
        with np.load(TEMPLATE_FLUX_FILE, allow_pickle=False) as data:
            flux, dz, ebv = data["flux"], float(data["dz"]), data["ebv"]
            bands, templates = tuple(data["bands"].tolist()), tuple(data["templates"].tolist())
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"cannot read the template fluxes '{TEMPLATE_FLUX_FILE}': {exc}; rebuild them with "
                         "'python -m astroml_pipe.simulate.photometry' (needs the sim extra)") from None
    nz = _n_redshifts(Z_TABLE_MAX)
    if (flux.shape != (nz, len(TEMPLATE_FILES), EBV_GRID.size, len(LSST_BANDS)) or dz != DZ
            or not np.array_equal(ebv, EBV_GRID) or bands != LSST_BANDS or templates != TEMPLATE_FILES):
        raise ModelError(f"the template fluxes '{TEMPLATE_FLUX_FILE}' do not match this version's grid; rebuild "
                         "them with 'python -m astroml_pipe.simulate.photometry' (needs the sim extra)")
    flux.flags.writeable = False  # shared through the cache
    return flux


@lru_cache(maxsize=8)
def _colour_grid(bands: tuple[str, ...], ref_band: str, z_max: float) -> np.ndarray:
    """Noise-free m_b - m_ref on the (z, type, E(B-V), band) grid, from the shipped template fluxes."""
    if not 0.0 < z_max <= Z_TABLE_MAX:
        raise ConfigError(f"z_max must be in (0, {Z_TABLE_MAX:g}], got {z_max}")
    nz = _n_redshifts(z_max)
    flux = _shipped_template_fluxes()[:nz][..., [LSST_BANDS.index(b) for b in (*bands, ref_band)]]
    ntpl = len(TEMPLATE_FILES)
    t = np.linspace(0.0, TYPE_MAX, N_TYPES)
    k = np.minimum(t.astype(int), ntpl - 2)
    w = (t - k)[None, :, None, None]
    mixed = (1.0 - w) * flux[:, k] + w * flux[:, k + 1]
    ratio = np.maximum(mixed[..., :-1] / mixed[..., -1:], 1e-12)
    logger.debug("built colour grid %s for bands %s", ratio.shape, bands)
    grid = -2.5 * np.log10(ratio)
    grid.flags.writeable = False  # shared through the cache
    return grid


def _interp_colours(grid: np.ndarray, z: np.ndarray, t: np.ndarray,
                    ebv: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``grid`` at (z, t, E(B-V))."""
    out = np.zeros((z.size, grid.shape[-1]))
    coords = []
    for val, step, size in ((z, DZ, grid.shape[0]), (t, TYPE_MAX / (N_TYPES - 1), N_TYPES),
                            (ebv, EBV_GRID[1], EBV_GRID.size)):
        f = np.clip(np.asarray(val, float) / step, 0.0, size - 1.0)
        i = np.minimum(f.astype(np.intp), size - 2)
        coords.append((i, f - i))
    (iz, wz), (it, wt), (ie, we) = coords
    for dz in (0, 1):
        for dt in (0, 1):
            for de in (0, 1):
                w = ((wz if dz else 1 - wz) * (wt if dt else 1 - wt) * (we if de else 1 - we))
                out += w[:, None] * grid[iz + dz, it + dt, ie + de]
    return out


def model_colours(z: np.ndarray, sed_type: np.ndarray, ebv: np.ndarray | float = 0.0, *,
                  bands: Sequence[str] = LSST_BANDS, ref_band: str = "i",
                  z_max: float = 3.0) -> np.ndarray:
    """Noise-free colours m_b - m_ref of the simulated SED family.

    Parameters
    ----------
    z, sed_type, ebv : array_like
        Redshift (0..z_max), continuous type (0 = E, 1 = Sbc, 2 = Scd,
        3 = Im) and internal E(B-V) (0..0.3); broadcast together.
    bands, ref_band : sequence of str, str, optional
        Bands returned and the reference band.
    z_max : float, optional
        Extent of the cached redshift grid.

    Returns
    -------
    numpy.ndarray, shape (n, n_bands)
        Colours in magnitudes, interpolated on the cached grid.
    """
    z, t, e = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, float))
                                    for a in (z, sed_type, ebv)))
    grid = _colour_grid(tuple(bands), ref_band, float(z_max))
    return _interp_colours(grid, z.ravel(), t.ravel(), e.ravel())


def _faint_draw_limit(mag_limit: float, m5: float, gamma: float) -> float:
    """Faintest true magnitude that can scatter (5 sigma) to ``mag_limit``."""
    m = mag_limit + np.arange(0.0, 3.0, 0.01)
    f = 10.0 ** (-0.4 * (m - _ZP_NJY))
    sig_f = f * lsst_mag_error(m, m5, gamma) / _PSN
    ok = (10.0 ** (-0.4 * (mag_limit - _ZP_NJY)) - f) >= 5.0 * sig_f
    return float(m[np.argmax(ok)] if ok.any() else m[-1])


def _observe(m_true: np.ndarray, m5: float, gamma: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add flux noise; return observed mag, reported error and detection flag."""
    f = 10.0 ** (-0.4 * (m_true - _ZP_NJY))
    f_obs = f + f * lsst_mag_error(m_true, m5, gamma) / _PSN * rng.standard_normal(f.shape)
    pos = f_obs > 0
    m_obs = np.where(pos, _ZP_NJY - 2.5 * np.log10(np.where(pos, f_obs, 1.0)), np.inf)
    err = lsst_mag_error(m_obs, m5, gamma)
    return m_obs, err, pos & (_PSN / err >= 5.0)


def draw_population(
    m: np.ndarray, z_max: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw redshift, continuous SED type and E(B-V) given the reference magnitude.

    Parameters
    ----------
    m : numpy.ndarray
        Reference-band (i) AB magnitudes.
    z_max : float
        Largest redshift drawn.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    z, t, ebv : numpy.ndarray
        Redshift (LSST Science Book p(z|m)), type (0 = E ... 3 = Im; early
        types more common at bright magnitudes and low z) and internal
        reddening (Calzetti E(B-V), larger for later types).
    """
    z0 = np.maximum(0.0417 * m - 0.744, 0.03)
    z = z0 * gammaincinv(3.0, rng.random(m.size) * gammainc(3.0, z_max / z0))
    sig = 1.0 / (1.0 + np.exp((m - 21.5) / 1.0))
    early = rng.random(m.size) < (0.15 + 0.35 * sig) * np.exp(-z / 1.5)
    a = np.clip(1.5 + 1.5 * np.minimum(z, 2.0) + 0.25 * (m - 22.0), 1.0, 6.0)
    t_late = 0.8 + (TYPE_MAX - 0.8) * rng.beta(a, 2.0)
    t_early = np.minimum(np.abs(rng.normal(0.0, 0.3, m.size)), 1.0)
    t = np.where(early, t_early, t_late)
    ebv = np.minimum(rng.exponential(0.08, m.size), EBV_GRID[-1]) * np.clip(t - 0.5, 0.0, 1.0)
    return np.minimum(z, z_max), t, ebv


def simulate_photometry(n: int, *, random_state: int | np.random.Generator | None = None,
                        bands: Sequence[str] = LSST_BANDS, mag_limit: float = 25.3,
                        limit_band: str = "i", depth: str = "lsst10yr", z_max: float = 3.0,
                        nondetection: float = 99.0, unobserved_fraction: float = 0.0) -> Table:
    """Simulate a magnitude-limited LSST-like galaxy catalog with true redshifts.

    Parameters
    ----------
    n : int
        Number of rows (objects passing the selection).
    random_state : int, numpy.random.Generator or None, optional
        Seed or generator; the same integer gives the same table.
    bands : sequence of str, optional
        Subset of ``ugrizy``; must contain ``limit_band``.
    mag_limit : float, optional
        Selection limit on the observed ``limit_band`` magnitude.
    limit_band : str, optional
        Band used for the number counts, p(z|m) and the selection.
    depth : {"lsst10yr", "lsst1yr"}, optional
        Set of 5-sigma depths, see :data:`M5`.
    z_max : float, optional
        Highest true redshift (0 < z_max <= 4).
    nondetection : float, optional
        Value written to ``mag_*`` and ``magerr_*`` where S/N < 5 or flux <= 0.
    unobserved_fraction : float, optional
        Probability that an (object, band) entry is NaN (not observed) in
        both columns; the limit band is always observed.

    Returns
    -------
    astropy.table.Table
        Columns ``id``, ``ra``, ``dec``, ``redshift``, ``template`` and
        ``mag_{b}``, ``magerr_{b}`` per band; parameters in ``meta``.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """
    bands = tuple(bands)
    if n < 0 or int(n) != n:
        raise ConfigError(f"n must be a non-negative integer, got {n!r}")
    if not bands or len(set(bands)) != len(bands) or not set(bands) <= set(LSST_BANDS):
        raise ConfigError(f"bands must be distinct LSST bands {LSST_BANDS}, got {bands}")
    if limit_band not in bands:
        raise ConfigError(f"limit_band {limit_band!r} must be one of bands {bands}")
    if depth not in M5:
        raise ConfigError(f"depth must be one of {sorted(M5)}, got {depth!r}")
    if not 0.0 < z_max <= Z_TABLE_MAX:
        raise ConfigError(f"z_max must be in (0, {Z_TABLE_MAX:g}], got {z_max}")
    if not M_BRIGHT + 1.0 < mag_limit < 30.0:
        raise ConfigError(f"mag_limit must be in ({M_BRIGHT + 1}, 30), got {mag_limit}")
    if not 0.0 <= unobserved_fraction < 1.0:
        raise ConfigError(f"unobserved_fraction must be in [0, 1), got {unobserved_fraction}")
    n = int(n)
    rng = np.random.default_rng(random_state)
    m5 = M5[depth]
    m_faint = _faint_draw_limit(mag_limit, m5[limit_band], GAMMA[limit_band])
    lo, hi = 10.0 ** (COUNT_SLOPE * M_BRIGHT), 10.0 ** (COUNT_SLOPE * m_faint)
    acc = max((10.0 ** (COUNT_SLOPE * mag_limit) - lo) / (hi - lo), 0.05)
    chunks: list[tuple[np.ndarray, ...]] = [(np.empty(0),) * 3]
    have = 0
    while have < n:  # draw extra in the reference band, keep the selected ones
        size = int(1.1 * (n - have) / acc) + 1000
        m = np.log10(lo + rng.random(size) * (hi - lo)) / COUNT_SLOPE
        m_obs, err, det = _observe(m, m5[limit_band], GAMMA[limit_band], rng)
        keep = det & (m_obs <= mag_limit)
        chunks.append((m[keep], m_obs[keep], err[keep]))
        have += int(keep.sum())
    m_true, m_ref, e_ref = (np.concatenate(a)[:n] for a in zip(*chunks))

    z, t, ebv = draw_population(m_true, z_max, rng)
    colours = _interp_colours(_colour_grid(bands, limit_band, float(z_max)), z, t, ebv)
    half = 0.5 * FIELD_SIDE
    ra = FIELD_CENTRE[0] + half * (2 * rng.random(n) - 1) / math.cos(math.radians(FIELD_CENTRE[1]))
    s0, s1 = (math.sin(math.radians(FIELD_CENTRE[1] + d)) for d in (-half, half))
    dec = np.degrees(np.arcsin(s0 + (s1 - s0) * rng.random(n)))
    unobserved = rng.random((n, len(bands))) < unobserved_fraction

    cols = [Column(np.arange(n, dtype=np.int64), "id", description="object identifier"),
            Column(ra, "ra", np.float32, unit="deg", description="right ascension (ICRS)"),
            Column(dec, "dec", np.float32, unit="deg", description="declination (ICRS)"),
            Column(z, "redshift", np.float32, unit="", description="true redshift"),
            Column(np.rint(t / (TYPE_MAX / (N_TYPES - 1))), "template", np.int16,
                   description=f"nearest of {N_TYPES} SED types mixing CWW E-Sbc-Scd-Im "
                               f"(0 = E, {N_TYPES - 1} = Im)")]
    for k, band in enumerate(bands):
        if band == limit_band:
            mag, err = m_ref, e_ref
        else:
            mag, err, det = _observe(m_true + colours[:, k], m5[band], GAMMA[band], rng)
            mag, err = (np.where(unobserved[:, k], np.nan, np.where(det, a, nondetection))
                        for a in (mag, err))
        cols.append(Column(mag, f"mag_{band}", np.float32, unit="mag",
                           description=f"observed AB magnitude, LSST {band}; {nondetection:g} = "
                                       "not detected (S/N < 5), NaN = not observed"))
        cols.append(Column(err, f"magerr_{band}", np.float32, unit="mag",
                           description=f"1-sigma error of mag_{band}"))
    table = Table(cols)
    seed: int | str = (int(random_state) if isinstance(random_state, (int, np.integer))
                       else type(random_state).__name__)
    table.meta.update({
        "generator": "astroml_pipe.simulate.photometry.simulate_photometry",
        "astroml_pipe_version": __version__, "random_state": seed,
        "bands": ",".join(bands), "mag_limit": float(mag_limit), "limit_band": limit_band,
        "depth": depth, "z_max": float(z_max), "nondetection": float(nondetection),
        "unobserved_fraction": float(unobserved_fraction), "filters": f"speclite {FILTER_GROUP}",
        "templates": ",".join(TEMPLATE_FILES), "sigma_sys": SIGMA_SYS,
        **{f"m5_{b}": float(m5[b]) for b in bands},
    })
    logger.info("simulated %d galaxies (%s, %s <= %.2f)", n, depth, limit_band, mag_limit)
    return table


if __name__ == "__main__":  # python -m astroml_pipe.simulate.photometry [-o FILE]
    parser = argparse.ArgumentParser(description="Rebuild the template-flux table of the photometry simulation "
                                                 "(needs GalSim and speclite).")
    parser.add_argument("-o", "--output", default=str(TEMPLATE_FLUX_FILE), help="output .npz file")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_template_fluxes(parser.parse_args().output)
