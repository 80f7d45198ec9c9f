"""Photometric-redshift metrics and diagnostic plots.

With ``dz = (z_phot - z_true) / (1 + z_true)``:

``sigma_nmad``
    1.4826 * median(|dz - median(dz)|), the normalised median absolute deviation;
``outlier_fraction``
    fraction of objects with |dz| > 0.15;
``bias``
    median(dz).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import InputError

__all__ = ["photoz_metrics", "plot_zphot_vs_ztrue", "evaluate_photoz"]

log = logging.getLogger(__name__)

OUTLIER_THRESHOLD = 0.15


def photoz_metrics(z_phot: np.ndarray, z_true: np.ndarray) -> dict[str, float]:
    """σ_NMAD, outlier fraction and bias of point estimates.

    Parameters
    ----------
    z_phot, z_true : array_like
        Photometric and true redshifts; pairs where either is not finite are
        ignored.

    Returns
    -------
    dict
        ``n``, ``sigma_nmad``, ``outlier_fraction``, ``bias``.
    """
    z_phot = np.asarray(z_phot, dtype=np.float64)
    z_true = np.asarray(z_true, dtype=np.float64)
    ok = np.isfinite(z_phot) & np.isfinite(z_true)
    if not ok.any():
        raise InputError("no object has both a finite photometric and a finite true redshift")
    dz = (z_phot[ok] - z_true[ok]) / (1.0 + z_true[ok])
    median = float(np.median(dz))
    return {
        "n": int(ok.sum()),
        "sigma_nmad": float(1.4826 * np.median(np.abs(dz - median))),
        "outlier_fraction": float(np.mean(np.abs(dz) > OUTLIER_THRESHOLD)),
        "bias": median,
    }


def plot_zphot_vs_ztrue(
    z_phot: np.ndarray,
    z_true: np.ndarray,
    path: str | Path,
    *,
    metrics: dict[str, float] | None = None,
    zmax: float | None = None,
) -> Path:
    """Write a PNG of photometric against true redshift (density for large samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z_phot = np.asarray(z_phot, dtype=float)
    z_true = np.asarray(z_true, dtype=float)
    ok = np.isfinite(z_phot) & np.isfinite(z_true)
    top = zmax or float(max(np.percentile(z_true[ok], 99.9), np.percentile(z_phot[ok], 99.9))) * 1.05
    fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    if ok.sum() > 5000:
        hb = ax.hexbin(z_true[ok], z_phot[ok], gridsize=120, extent=(0, top, 0, top), bins="log", cmap="viridis", mincnt=1)
        fig.colorbar(hb, ax=ax, label="objects per cell")
    else:
        ax.scatter(z_true[ok], z_phot[ok], s=3, alpha=0.5, lw=0)
    line = np.array([0, top])
    ax.plot(line, line, "k-", lw=0.8)
    for sign in (1, -1):
        ax.plot(line, line + sign * OUTLIER_THRESHOLD * (1 + line), "k--", lw=0.6)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="true redshift", ylabel="photometric redshift")
    if metrics:
        ax.text(
            0.03,
            0.97,
            f"N = {metrics['n']}\n$\\sigma_{{NMAD}}$ = {metrics['sigma_nmad']:.4f}\n"
            f"outliers = {100 * metrics['outlier_fraction']:.2f}%\nbias = {metrics['bias']:+.4f}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate_photoz(
    table: Table,
    truth: str,
    *,
    prediction: str = "z_phot",
    report_dir: str | Path | None = None,
    source: str = "the catalog",
) -> dict[str, Any]:
    """Metrics of a result catalog against its true redshifts.

    Parameters
    ----------
    table : astropy.table.Table
        Result catalog with ``prediction`` and ``truth`` columns.
    truth, prediction : str
        Column names of the true and the photometric redshift.
    report_dir : path, optional
        If given, ``metrics.json`` and ``zphot_vs_ztrue.png`` are written there.
    source : str
        How to name the catalog in error messages.

    Returns
    -------
    dict
        The metrics of :func:`photoz_metrics`, plus the column names.
    """
    for column in (truth, prediction):
        if column not in table.colnames:
            from astroml_pipe.core.params import did_you_mean

            raise InputError(f"{source} has no column {column!r}{did_you_mean(column, table.colnames)}")
        if np.asarray(table[column]).dtype.kind not in "biuf":
            raise InputError(f"column {column!r} in {source} holds {table[column].dtype} values; expected numbers")
    z_phot = np.asarray(table[prediction], dtype=float)
    z_true = np.asarray(table[truth], dtype=float)
    metrics: dict[str, Any] = photoz_metrics(z_phot, z_true)
    metrics.update({"prediction": prediction, "truth": truth})
    if report_dir is not None:
        report_dir = Path(report_dir)
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write report folder '{report_dir}': {exc.strerror or exc}") from None
        (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_zphot_vs_ztrue(z_phot, z_true, report_dir / "zphot_vs_ztrue.png", metrics=metrics)
        log.info("wrote %s", report_dir)
    return metrics
