"""Diagnostic PNG plots of photometric redshifts.

Figures are drawn with :class:`matplotlib.figure.Figure` and rendered by the
Agg backend: nothing here touches pyplot's global state or needs a display.
Each function writes one PNG and returns its path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["plot_zphot_vs_ztrue", "plot_pit", "plot_binned_metrics", "plot_nz", "plot_members"]

log = logging.getLogger(__name__)

#: Resolution of the PNGs.
DPI = 120
#: Above this many objects the z_phot vs z_true plot is a density (hexbin) plot.
SCATTER_LIMIT = 3000
_BOX = {"facecolor": "white", "alpha": 0.85, "lw": 0}


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A figure (Agg canvas, no pyplot) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=True, **kwargs)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    log.debug("wrote %s", path)
    return path


def _note(ax: Any, lines: Sequence[str], loc: str = "upper left") -> None:
    """A text box of ``lines`` in a corner of ``ax``."""
    x, ha = (0.03, "left") if "left" in loc else (0.97, "right")
    y, va = (0.97, "top") if "upper" in loc else (0.03, "bottom")
    ax.text(x, y, "\n".join(lines), transform=ax.transAxes, ha=ha, va=va, fontsize=9, bbox=_BOX)


def _finite(*arrays: Any) -> list[np.ndarray]:
    arrays_ = [np.asarray(a, dtype=float) for a in arrays]
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrays_])
    return [a[ok] for a in arrays_]


def plot_zphot_vs_ztrue(
    z_phot: np.ndarray,
    z_true: np.ndarray,
    path: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    zmax: float | None = None,
) -> Path:
    """Photometric against true redshift: points for small samples, a log-density map for large ones.

    The solid line is ``z_phot = z_true``, the dashed lines the outlier limits
    ``|Δz| / (1 + z_true) = 0.15``.  With ``metrics``, N, σ_NMAD, outlier
    fraction and bias are written in a corner.
    """
    from astroml_pipe.evaluate.photoz import OUTLIER_THRESHOLD

    z_phot, z_true = _finite(z_phot, z_true)
    top = zmax or float(max(np.percentile(z_true, 99.9), np.percentile(z_phot, 99.9))) * 1.05
    fig, ax = _figure(5.8, 5.2)
    if len(z_true) > SCATTER_LIMIT:
        hb = ax.hexbin(z_true, z_phot, gridsize=90, extent=(0, top, 0, top), bins="log", cmap="viridis", mincnt=1)
        fig.colorbar(hb, ax=ax, label="objects per cell")
    else:
        ax.scatter(z_true, z_phot, s=4, alpha=0.5, lw=0)
    line = np.array([0, top])
    ax.plot(line, line, "k-", lw=0.8)
    for sign in (1, -1):
        ax.plot(line, line + sign * OUTLIER_THRESHOLD * (1 + line), "k--", lw=0.6)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="true redshift", ylabel="photometric redshift", aspect="equal")
    if metrics:
        _note(ax, [
            f"N = {metrics['n']:,}",
            f"$\\sigma_{{NMAD}}$ = {metrics['sigma_nmad']:.4f}",
            f"outliers = {100 * metrics['outlier_fraction']:.2f}%",
            f"bias = {metrics['bias']:+.4f}",
        ])
    return _save(fig, path)


def plot_pit(pit: np.ndarray, path: str | Path, *, metrics: Mapping[str, Any] | None = None, bins: int = 50) -> Path:
    """PIT histogram (with the ±1σ Poisson band of a uniform one) and PIT quantile–quantile plot.

    A flat histogram means calibrated PDFs; a U shape PDFs that are too
    narrow, a hump too wide ones, a slope a bias.  With ``metrics``, the KS
    and CvM statistics and the PIT outlier rate are written on the plot.
    """
    (pit,) = _finite(pit)
    n = len(pit)
    fig, (hist_ax, qq_ax) = _figure(10, 4.3, 1, 2, width_ratios=(1.6, 1))
    hist_ax.hist(pit, bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.75)
    band = np.sqrt(bins / max(n, 1))  # relative Poisson error of an expected count n / bins
    hist_ax.axhspan(1 - band, 1 + band, color="0.5", alpha=0.25, lw=0, label="uniform ±1σ")
    hist_ax.axhline(1.0, color="k", lw=0.8)
    title = f"PIT histogram (N = {n:,})"
    if metrics:
        title += (
            f"\nKS = {metrics['pit_ks']:.4f}    CvM = {metrics['pit_cvm']:.2e}"
            f" (W$^2$ = n·CvM = {metrics['pit_cvm_w2']:.2f})"
            f"    PIT outliers = {100 * metrics['pit_outlier_rate']:.2f}%"
        )
    hist_ax.set(xlim=(0, 1), ylim=(0, None), xlabel="PIT", ylabel="density")
    hist_ax.set_title(title, fontsize=10)
    hist_ax.legend(loc="lower center", fontsize=8, framealpha=0.85)
    quantiles = np.linspace(0, 1, 201)
    qq_ax.plot(quantiles, np.quantile(pit, quantiles) if n else quantiles, color="tab:blue", lw=1.5, label="PIT")
    qq_ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="uniform")
    qq_ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="uniform quantile", ylabel="PIT quantile",
              title="PIT quantile–quantile")
    qq_ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _save(fig, path)


def plot_binned_metrics(rows: Sequence[Mapping[str, Any]], path: str | Path, *, xlabel: str) -> Path:
    """σ_NMAD (and σ_IQR), outlier fraction and number of objects per bin.

    Parameters
    ----------
    rows : list of dict
        Bins as written by :func:`astroml_pipe.evaluate.photoz.binned_metrics`
        (``lo``, ``hi``, ``n``, ``sigma_nmad``, ``sigma_iqr``,
        ``outlier_fraction``; ``None`` for empty bins).
    path : path
        The PNG to write.
    xlabel : str
        Name of the binned quantity.
    """

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)

    lo, hi, n = column("lo"), column("hi"), column("n")
    centre = 0.5 * (lo + hi)
    fig, (ax_s, ax_o, ax_n) = _figure(6.5, 7, 3, 1, sharex=True, height_ratios=(1.2, 1.2, 0.7))
    ax_s.plot(centre, column("sigma_nmad"), "o-", label="$\\sigma_{NMAD}$")
    ax_s.plot(centre, column("sigma_iqr"), "s--", ms=4, label="$\\sigma_{IQR}$")
    ax_s.set(ylabel="scatter of Δz/(1+z)", ylim=(0, None))
    ax_s.legend(fontsize=8, frameon=False)
    ax_o.plot(centre, 100 * column("outlier_fraction"), "o-", color="tab:red")
    ax_o.set(ylabel="outliers (%)", ylim=(0, None))
    ax_n.stairs(np.nan_to_num(n), np.append(lo, hi[-1]) if len(lo) else [0], fill=True, color="0.6")
    ax_n.set(ylabel="objects", xlabel=xlabel)
    for ax in (ax_s, ax_o, ax_n):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_nz(
    z_true: np.ndarray,
    path: str | Path,
    *,
    z_grid: np.ndarray | None = None,
    stacked: np.ndarray | None = None,
    z_phot: np.ndarray | None = None,
    bins: int = 60,
) -> Path:
    """The true redshift distribution against the stacked PDFs (and the point estimates).

    Parameters
    ----------
    z_true : numpy.ndarray
        True redshifts (drawn as a normalised histogram).
    path : path
        The PNG to write.
    z_grid, stacked : numpy.ndarray, optional
        The grid and the mean PDF of the objects (see
        :meth:`~astroml_pipe.evaluate.pdf_metrics.PdfMetricsAccumulator.stacked_pdf`).
    z_phot : numpy.ndarray, optional
        Point estimates (drawn as a dashed histogram).
    bins : int
        Number of histogram bins.
    """
    (z_true,) = _finite(z_true)
    top = float(z_grid[-1]) if z_grid is not None else float(np.percentile(z_true, 99.9) * 1.05)
    edges = np.linspace(0.0 if z_grid is None else float(z_grid[0]), top, bins + 1)
    fig, ax = _figure(7, 4.3)
    ax.hist(z_true, bins=edges, density=True, color="0.7", label=f"true N(z) ({len(z_true):,} objects)")
    if z_phot is not None:
        (z_phot,) = _finite(z_phot)
        ax.hist(z_phot, bins=edges, density=True, histtype="step", ls="--", color="tab:green", lw=1.2,
                label="point estimates")
    if stacked is not None and z_grid is not None:
        ax.plot(z_grid, stacked, color="tab:blue", lw=1.8, label="stacked PDFs")
    ax.set(xlim=(edges[0], edges[-1]), ylim=(0, None), xlabel="redshift", ylabel="N(z) (normalised)")
    ax.legend(fontsize=8, frameon=False)
    return _save(fig, path)


def plot_members(members: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """σ_NMAD and outlier fraction of each member of a committee, side by side."""
    names = list(members)
    x = np.arange(len(names))
    fig, axes = _figure(max(6.0, 1.2 * len(names) + 3), 3.8, 1, 2)
    for ax, key, scale, label, color in (
        (axes[0], "sigma_nmad", 1.0, "$\\sigma_{NMAD}$", "tab:blue"),
        (axes[1], "outlier_fraction", 100.0, "outliers (%)", "tab:red"),
    ):
        values = np.array([np.nan if members[m].get(key) is None else members[m][key] * scale for m in names])
        bars = ax.bar(x, values, color=color, alpha=0.8)
        ax.bar_label(bars, fmt="%.4f" if scale == 1 else "%.2f", fontsize=8)
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set(ylabel=label, ylim=(0, np.nanmax(values) * 1.2 if np.isfinite(values).any() else 1))
    fig.suptitle("Committee members: metrics of their point estimates", fontsize=10)
    return _save(fig, path)
