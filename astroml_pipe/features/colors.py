"""Colours from magnitudes, with missing photometry handled explicitly.

For every band the stage distinguishes, using the pipeline's column map:

* detected entries, used as they are;
* non-detections (e.g. ``99`` or ``inf``), replaced by the band's limiting
  magnitude, with error ``nondetection_err`` and a ``nondet_<band>`` flag;
* not-observed entries (e.g. ``NaN`` or ``-99``), left as ``NaN`` so that
  tree models treat them as missing values.

The limiting magnitudes are either given (``limits``) or estimated from the
training catalog in :meth:`Colors.fit` as the median magnitude of detected
sources whose error corresponds to ``limit_snr`` (S/N of 5 means an error of
1.0857/5 ≈ 0.217 mag).

With ``magnitudes: asinh`` every magnitude is first turned into the asinh
magnitude of Lupton, Gunn & Szalay (1999, AJ 118, 1406),

    mu = m_lim - 2.5 / ln 10 [asinh(x / 2b) + ln b],   x = 10^(-0.4 (m - m_lim)),

with the flux ``x`` in units of the band's limiting flux and the softening
``b = 1 / limit_snr``, the flux error at the limit.  Above a S/N of a few,
``mu`` equals the usual magnitude (to 0.01 mag at S/N 10); towards zero flux
it stays finite, so that faint measurements of S/N 2 or 0.5 (kept by many
catalogs, e.g. a u band at 26-33 mag) and non-detections (zero flux with
error ``b``, mu = m_lim + 1.75 mag for S/N 5) lie on one smooth scale
instead of producing colours of several magnitudes that are mostly noise.
The error is ``2.5 / ln 10 * sigma_x / sqrt(x^2 + 4 b^2)``; ``nondetection_err``
is not used.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage

__all__ = ["Colors", "asinh_magnitude", "color_name", "filled_name"]

log = logging.getLogger(__name__)

#: Error of a magnitude at signal-to-noise 1, in magnitudes (2.5 / ln 10).
MAG_ERR_AT_SNR1 = 2.5 / np.log(10)


def asinh_magnitude(
    mag: np.ndarray, err: np.ndarray, nondet: np.ndarray, limit: float, limit_snr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Asinh magnitudes (Lupton, Gunn & Szalay 1999) and their errors, softened at the limiting flux.

    Parameters
    ----------
    mag, err : numpy.ndarray
        Magnitudes and their errors (mag); NaN where not observed.
    nondet : numpy.ndarray
        Boolean mask of non-detections, taken as zero flux with the error at
        the limit.
    limit : float
        Limiting magnitude of the band, the flux of S/N ``limit_snr``.
    limit_snr : float
        Signal-to-noise of ``limit``: the softening is ``1 / limit_snr`` of
        the limiting flux.

    Returns
    -------
    mu, mu_err : numpy.ndarray
        Asinh magnitudes and errors (mag, float32).
    """
    b = 1.0 / limit_snr
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.where(nondet, 0.0, 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - limit)))
        sigma_x = np.where(nondet, b, x * np.asarray(err, dtype=np.float64) / MAG_ERR_AT_SNR1)
        mu = limit - MAG_ERR_AT_SNR1 * (np.arcsinh(x / (2.0 * b)) + np.log(b))
        mu_err = MAG_ERR_AT_SNR1 * sigma_x / np.sqrt(x**2 + 4.0 * b**2)
    return mu.astype(np.float32), mu_err.astype(np.float32)


def color_name(blue: str, red: str) -> str:
    """Name of the colour column ``blue - red``."""
    return f"color_{blue}_{red}"


def filled_name(band: str) -> str:
    """Name of the magnitude column of ``band`` with non-detections filled in."""
    return f"mag_filled_{band}"


class Colors(Stage):
    """Colours of adjacent (or all) bands, of usual or asinh magnitudes, with non-detections filled in.

    Writes, for bands ``a`` and ``b``: ``color_a_b`` and ``color_a_b_err``
    (mag), and per band ``mag_filled_<band>`` (mag) and the boolean flag
    ``nondet_<band>``.
    """

    name = "features.colors"
    trainable = True
    params = (
        Param("pairs", str, "adjacent", "Which colours: adjacent bands, or all pairs.", choices=("adjacent", "all")),
        Param(
            "limits",
            dict,
            None,
            "Limiting magnitude per band that replaces non-detections; estimated from the training data when null.",
            nullable=True,
        ),
        Param("limit_snr", float, 5.0, "Signal-to-noise that defines an estimated limiting magnitude.", minimum=1.0),
        Param(
            "magnitudes",
            str,
            "log",
            "Usual (log) magnitudes, or asinh magnitudes softened at the limiting flux, which stay finite and "
            "smooth for faint measurements and non-detections.",
            choices=("log", "asinh"),
        ),
        Param(
            "nondetection_err",
            float,
            1.0,
            "Magnitude error assigned to a non-detection replaced by the limit (log magnitudes only).",
            minimum=0.0,
        ),
    )

    def validate(self) -> None:
        if self.limits is not None:
            bad = {k: v for k, v in self.limits.items() if not isinstance(v, (int, float)) or not np.isfinite(v)}
            if bad:
                raise ConfigError(f"{self.where}: parameter 'limits' must map bands to finite magnitudes, got {bad}")
            self.limits_ = {str(k): float(v) for k, v in self.limits.items()}

    # -- columns ---------------------------------------------------------------
    def _pairs(self) -> list[tuple[str, str]]:
        bands = self.columns.bands
        if self.pairs == "all":
            return list(itertools.combinations(bands, 2))
        return list(zip(bands[:-1], bands[1:]))

    def requires(self) -> list[str]:
        return self.columns.photometry_columns()

    def provides(self) -> list[Col]:
        out = []
        if self.magnitudes == "asinh":
            colour, filled = "colour of asinh magnitudes", "asinh magnitude (non-detections at zero flux)"
        else:
            colour, filled = "colour, non-detections at the limit", "magnitude, non-detections replaced by the limit"
        for a, b in self._pairs():
            out.append(Col(color_name(a, b), "mag", "float32", f"{a} - {b} {colour}"))
            out.append(Col(color_name(a, b) + "_err", "mag", "float32", f"uncertainty of the {a} - {b} colour"))
        for band in self.columns.bands:
            out.append(Col(filled_name(band), "mag", "float32", f"{band} {filled}"))
        for band in self.columns.bands:
            out.append(Col(f"nondet_{band}", None, "bool", f"{band} was a non-detection (filled in, see the magnitude column)"))
        return out

    # -- learning -----------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        limits = getattr(self, "limits_", None)
        return limits is not None and all(b in limits for b in self.columns.bands)

    def fit(self, table: Table) -> "Colors":
        """Estimate the limiting magnitude of every band not given in ``limits``."""
        self.check_columns(table)
        limits = dict(self.limits or {})
        target_err = MAG_ERR_AT_SNR1 / self.limit_snr
        for band in self.columns.bands:
            if band in limits:
                continue
            mag = np.asarray(table[self.columns.mag_column(band)], dtype=float)
            err = np.asarray(table[self.columns.err_column(band)], dtype=float)
            ok = self.columns.usable(mag) & np.isfinite(err) & (err > 0)
            if not ok.any():
                raise InputError(
                    f"{self.where}: column {self.columns.mag_column(band)!r} has no detected values to estimate "
                    f"the {band}-band limit; give it in 'limits'"
                )
            limits[band] = _limiting_magnitude(mag[ok], err[ok], target_err)
            log.info("%s: estimated %s-band limit %.2f mag (S/N=%g)", self.where, band, limits[band], self.limit_snr)
        self.limits_ = limits
        self.training_metrics_ = {"limits": dict(limits)}
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"limits_": self.limits_}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.limits_ = {str(k): float(v) for k, v in state["limits_"].items()}

    # -- applying --------------------------------------------------------------------
    def compute(self, table: Table) -> dict[str, np.ndarray]:
        filled: dict[str, np.ndarray] = {}
        errors: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        for band in self.columns.bands:
            mag = np.asarray(table[self.columns.mag_column(band)], dtype=np.float32)
            err = np.asarray(table[self.columns.err_column(band)], dtype=np.float32)
            nondet, unobserved = self.columns.sentinel_masks(mag)
            e = np.where(nondet, np.float32(self.nondetection_err), err)
            e[unobserved | ~np.isfinite(e) | (e < 0) | self.columns.sentinel_masks(e)[0]] = np.nan
            e[nondet] = self.nondetection_err
            if self.magnitudes == "asinh":
                m, e = asinh_magnitude(mag, e, nondet, self.limits_[band], self.limit_snr)
                e[unobserved] = np.nan
            else:
                m = np.where(nondet, np.float32(self.limits_[band]), mag)
            m[unobserved] = np.nan
            filled[band], errors[band] = m, e
            out[filled_name(band)] = m
            out[f"nondet_{band}"] = nondet
        for a, b in self._pairs():
            out[color_name(a, b)] = filled[a] - filled[b]
            out[color_name(a, b) + "_err"] = np.hypot(errors[a], errors[b])
        return out


def _limiting_magnitude(mag: np.ndarray, err: np.ndarray, target_err: float) -> float:
    """Magnitude at which the error reaches ``target_err``.

    The median magnitude of sources whose error is within 15% of the target;
    if fewer than 20, a straight-line fit of log(error) against magnitude for
    sources with error above 0.01 mag (at least 10); if that fails, the 99.5th percentile
    of the detected magnitudes.
    """
    near = np.abs(err / target_err - 1) < 0.15
    if near.sum() >= 20:
        return float(np.median(mag[near]))
    usable = err > 0.01
    if usable.sum() >= 10:
        slope, intercept = np.polyfit(mag[usable], np.log10(err[usable]), 1)
        if slope > 0:
            return float((np.log10(target_err) - intercept) / slope)
    return float(np.percentile(mag, 99.5))
