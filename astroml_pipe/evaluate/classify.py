"""Star-galaxy classification metrics, overall and per magnitude bin, and their plots.

Definitions (following Kim & Brunner 2017, MNRAS 464, 4463)
-----------------------------------------------------------
An object is *classified as a galaxy* at threshold ``t`` when
``p_galaxy >= t`` and as a star otherwise.  With ``TG`` true galaxies,
``TS`` true stars, ``CG(t)`` / ``CS(t)`` those classified as galaxies /
stars:

galaxy completeness ``c_g(t)``
    ``|TG & CG(t)| / |TG|``;
galaxy purity ``p_g(t)``
    ``|TG & CG(t)| / |CG(t)|``;
star completeness ``c_s(t)``
    ``|TS & CS(t)| / |TS|``;
star purity ``p_s(t)``
    ``|TS & CS(t)| / |CS(t)|``.

Thresholds run over every distinct value of ``p_galaxy`` (and above the
largest, where no object is a galaxy).  Reported:

``roc_auc``
    Area under the ROC curve (true-positive rate ``c_g`` against
    false-positive rate ``1 - c_s``), ties counted half: the probability
    that a random galaxy has a larger ``p_galaxy`` than a random star.
``galaxy_purity_at_completeness``
    ``max p_g(t)`` over the thresholds with ``c_g(t) >= 0.96``
    (``GALAXY_COMPLETENESS``);
``star_completeness_at_purity``
    ``max c_s(t)`` over the thresholds with ``p_s(t) >= 0.97``
    (``STAR_PURITY``); 0 if no threshold reaches that purity;
``ece``
    expected calibration error: with 15 equal-width bins of ``p_galaxy`` on
    ``[0, 1]`` (the last closed), ``sum_b (n_b / N) |mean(is_galaxy)_b -
    mean(p_galaxy)_b|`` over non-empty bins (Guo et al. 2017);
``n``, ``n_galaxies``, ``n_stars``
    counts.

Metrics that need both classes (AUC, the operating points) are NaN when
one class is absent.  Objects with non-finite ``p_galaxy`` are ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from astroml_pipe.evaluate.plots import _figure, _note, _save

__all__ = [
    "GALAXY_COMPLETENESS",
    "STAR_PURITY",
    "ECE_BINS",
    "classification_metrics",
    "roc_curve",
    "reliability",
    "plot_roc",
    "plot_reliability",
]

log = logging.getLogger(__name__)

#: Galaxy completeness at which the galaxy purity is quoted.
GALAXY_COMPLETENESS = 0.96
#: Star purity at which the star completeness is quoted.
STAR_PURITY = 0.97
#: Number of equal-width probability bins of the calibration error.
ECE_BINS = 15


def _clean(p_galaxy: Any, is_galaxy: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_galaxy, dtype=float).ravel()
    y = np.asarray(is_galaxy).ravel().astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"p_galaxy and is_galaxy have different lengths ({p.size} and {y.size})")
    ok = np.isfinite(p)
    return p[ok], y[ok]


def _cumulative(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (descending) and galaxies / stars with ``p >= threshold``; first entry: nothing selected."""
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), p.size - 1]  # last index of each distinct value
    gal = np.r_[0, np.cumsum(y)[last]]
    star = np.r_[0, np.cumsum(~y)[last]]
    thresholds = np.r_[np.inf, p[last]]
    return thresholds, gal.astype(float), star.astype(float)


def roc_curve(p_galaxy: Any, is_galaxy: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with galaxies as positives.

    Returns
    -------
    fpr, tpr, thresholds : numpy.ndarray
        False-positive rate ``1 - c_s``, true-positive rate ``c_g`` and the
        thresholds (descending, the first ``inf``).
    """
    p, y = _clean(p_galaxy, is_galaxy)
    thresholds, gal, star = _cumulative(p, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return star / star[-1], gal / gal[-1], thresholds


def reliability(p_galaxy: Any, is_galaxy: Any, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Reliability diagram data on ``bins`` equal-width bins of ``[0, 1]``.

    Returns
    -------
    dict
        ``edges`` (``bins + 1``), ``count``, ``mean_p`` and ``fraction``
        (galaxy fraction) per bin, NaN in empty bins.
    """
    p, y = _clean(p_galaxy, is_galaxy)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.floor(np.clip(p, 0.0, 1.0) * bins).astype(int), 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, p, minlength=bins) / count
        fraction = np.bincount(index, y.astype(float), minlength=bins) / count
    return {"edges": edges, "count": count, "mean_p": mean_p, "fraction": fraction}


def _metrics(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    n_gal, n_star = int(y.sum()), int((~y).sum())
    out: dict[str, float] = {"n": int(p.size), "n_galaxies": n_gal, "n_stars": n_star}
    if p.size:
        rel = reliability(p, y)
        filled = rel["count"] > 0
        out["ece"] = float(np.sum(rel["count"][filled] * np.abs(rel["fraction"] - rel["mean_p"])[filled]) / p.size)
    else:
        out["ece"] = float("nan")
    if n_gal == 0 or n_star == 0:
        out.update(roc_auc=float("nan"), galaxy_purity_at_completeness=float("nan"),
                   star_completeness_at_purity=float("nan"))
        return out
    _, gal, star = _cumulative(p, y)
    tpr, fpr = gal / n_gal, star / n_star
    out["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        galaxy_purity = gal / (gal + star)
        stars_as_stars = n_star - star
        star_purity = stars_as_stars / (stars_as_stars + n_gal - gal)
    ok = (tpr >= GALAXY_COMPLETENESS) & np.isfinite(galaxy_purity)
    out["galaxy_purity_at_completeness"] = float(galaxy_purity[ok].max())
    ok = (star_purity >= STAR_PURITY) & np.isfinite(star_purity)
    out["star_completeness_at_purity"] = float((stars_as_stars[ok] / n_star).max()) if ok.any() else 0.0
    return out


def classification_metrics(
    p_galaxy: Any,
    is_galaxy: Any,
    magnitude: Any = None,
    bins: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Star-galaxy metrics, overall and per magnitude bin (see the module docstring).

    Parameters
    ----------
    p_galaxy : array_like
        Probability of being a galaxy.
    is_galaxy : array_like of bool
        Truth.
    magnitude : array_like, optional
        Magnitude of every object, for the per-bin metrics.
    bins : sequence of float, optional
        Increasing magnitude bin edges (half-open ``[lo, hi)``); default
        one-magnitude bins from ``floor(min)`` to ``ceil(max)`` of the
        finite magnitudes.  Objects outside the edges or with non-finite
        magnitudes are in no bin.

    Returns
    -------
    dict
        ``roc_auc``, ``galaxy_purity_at_completeness``,
        ``star_completeness_at_purity``, ``ece``, ``n``, ``n_galaxies``,
        ``n_stars``, and, with ``magnitude``, ``bins``: a list of dicts with
        the same keys plus ``mag_lo`` and ``mag_hi``.
    """
    p_all = np.asarray(p_galaxy, dtype=float).ravel()
    y_all = np.asarray(is_galaxy).ravel().astype(bool)
    p, y = _clean(p_all, y_all)
    out: dict[str, Any] = _metrics(p, y)
    if magnitude is None:
        return out
    mag = np.asarray(magnitude, dtype=float).ravel()
    if mag.shape != p_all.shape:
        raise ValueError(f"magnitude has {mag.size} values, p_galaxy {p_all.size}")
    finite = np.isfinite(mag)
    if bins is None:
        if not finite.any():
            out["bins"] = []
            return out
        edges = np.arange(np.floor(mag[finite].min()), np.ceil(mag[finite].max()) + 1.0)
        edges = edges if edges.size > 1 else np.array([edges[0], edges[0] + 1.0])
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bins must be at least two increasing edges, got {bins!r}")
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        last = hi == edges[-1] and bins is None
        sel = finite & (mag >= lo) & ((mag <= hi) if last else (mag < hi))
        row = {"mag_lo": float(lo), "mag_hi": float(hi)}
        row.update(_metrics(*_clean(p_all[sel], y_all[sel])))
        rows.append(row)
    out["bins"] = rows
    return out


def plot_roc(p_galaxy: Any, is_galaxy: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Write the ROC curve (galaxies as positives) with the AUC and operating points to a PNG.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    fpr, tpr, _ = roc_curve(p_galaxy, is_galaxy)
    metrics = classification_metrics(p_galaxy, is_galaxy)
    fig, ax = _figure(5.0, 5.0)
    ax.plot(fpr, tpr, color="C0", lw=1.5)
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8)
    ax.set(xlabel="false-positive rate (stars called galaxies)", ylabel="galaxy completeness (true-positive rate)",
           xlim=(0, 1), ylim=(0, 1.01), title=title or "ROC")
    _note(ax, [
        f"AUC = {metrics['roc_auc']:.4f}",
        f"p_g at c_g={GALAXY_COMPLETENESS:g}: {metrics['galaxy_purity_at_completeness']:.3f}",
        f"c_s at p_s={STAR_PURITY:g}: {metrics['star_completeness_at_purity']:.3f}",
        f"N = {metrics['n']}",
    ], loc="lower right")
    return _save(fig, path)


def plot_reliability(p_galaxy: Any, is_galaxy: Any, path: str | Path, *, bins: int = ECE_BINS,
                     title: str | None = None) -> Path:
    """Write the reliability diagram (galaxy fraction against mean ``p_galaxy`` per bin) to a PNG.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    rel = reliability(p_galaxy, is_galaxy, bins)
    metrics = classification_metrics(p_galaxy, is_galaxy)
    fig, (ax, hist) = _figure(5.0, 6.0, rows=2, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ok = rel["count"] > 0
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8)
    ax.plot(rel["mean_p"][ok], rel["fraction"][ok], "o-", color="C0")
    ax.set(ylabel="galaxy fraction", xlim=(0, 1), ylim=(0, 1), title=title or "Reliability")
    _note(ax, [f"ECE = {metrics['ece']:.4f}", f"N = {metrics['n']}"])
    centres = (rel["edges"][:-1] + rel["edges"][1:]) / 2.0
    hist.bar(centres, rel["count"], width=np.diff(rel["edges"]), color="C0", alpha=0.6)
    hist.set(xlabel="p_galaxy", ylabel="objects", yscale="log")
    return _save(fig, path)
