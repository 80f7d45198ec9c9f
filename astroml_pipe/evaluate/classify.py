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

Evaluating a result catalog
---------------------------
:func:`evaluate_classification` reads the probability, the truth (boolean or
0/1, 1 for a galaxy) and a magnitude column of a result catalog, computes
the metrics overall and per magnitude bin, compares further probability
columns (by default ``<prediction>_raw``, the uncalibrated probability the
CNN stage also writes) and can write a report folder.  :func:`detect_task`
tells a classification result from a photo-z one.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import InputError
from astroml_pipe.evaluate.plots import _figure, _note, _save
from astroml_pipe.evaluate.result import AUTO, check_numeric, float_column, jsonable, open_result, pick, require

__all__ = [
    "GALAXY_COMPLETENESS",
    "STAR_PURITY",
    "ECE_BINS",
    "DEFAULT_MAGNITUDES",
    "DEFAULT_PREDICTION",
    "classification_metrics",
    "detect_task",
    "evaluate_classification",
    "roc_curve",
    "reliability",
    "plot_roc",
    "plot_reliability",
    "plot_metrics_vs_magnitude",
]

log = logging.getLogger(__name__)

#: Galaxy completeness at which the galaxy purity is quoted.
GALAXY_COMPLETENESS = 0.96
#: Star purity at which the star completeness is quoted.
STAR_PURITY = 0.97
#: Number of equal-width probability bins of the calibration error.
ECE_BINS = 15
#: Probability column evaluated by default.
DEFAULT_PREDICTION = "p_galaxy"
#: Magnitude columns tried in turn for the bins when ``magnitude="auto"``.
DEFAULT_MAGNITUDES = ("mag_r", "mag_i")
_TRUTH_EXPECTED = "true/false or 0/1 per row (1 = galaxy)"


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


def plot_metrics_vs_magnitude(rows: Sequence[Mapping[str, Any]], path: str | Path, *,
                              xlabel: str = "magnitude") -> Path:
    """Write the classification metrics and the numbers of galaxies and stars per magnitude bin to a PNG.

    Parameters
    ----------
    rows : list of dict
        Bins with ``lo`` and ``hi`` (as in the result of
        :func:`evaluate_classification`) or ``mag_lo`` and ``mag_hi`` (as
        from :func:`classification_metrics`) and the metrics (``None`` or
        NaN where undefined).
    path : path
        The PNG to write.
    xlabel : str
        Name of the magnitude.

    Returns
    -------
    pathlib.Path
        The written file.
    """

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)

    prefix = "mag_" if rows and "lo" not in rows[0] else ""
    lo, hi = column(prefix + "lo"), column(prefix + "hi")
    centre = 0.5 * (lo + hi)
    edges = np.append(lo, hi[-1]) if len(rows) else np.array([0.0, 1.0])
    fig, (ax_m, ax_e, ax_n) = _figure(6.5, 7, 3, 1, sharex=True, height_ratios=(1.4, 1.0, 0.8))
    ax_m.plot(centre, column("roc_auc"), "o-", label="ROC AUC")
    ax_m.plot(centre, column("galaxy_purity_at_completeness"), "s-",
              label=f"galaxy purity at completeness {GALAXY_COMPLETENESS:g}")
    ax_m.plot(centre, column("star_completeness_at_purity"), "^-", label=f"star completeness at purity {STAR_PURITY:g}")
    ax_m.set(ylabel="metric", ylim=(0, 1.02))
    ax_m.legend(fontsize=8, frameon=False, loc="lower left")
    ax_e.plot(centre, column("ece"), "o-", color="tab:red")
    ax_e.set(ylabel="ECE", ylim=(0, None))
    for key, label, color in (("n_galaxies", "galaxies", "C0"), ("n_stars", "stars", "C1")):
        ax_n.stairs(np.nan_to_num(column(key)) if len(rows) else [0.0], edges, color=color, lw=1.5, label=label)
    ax_n.set(ylabel="objects", xlabel=xlabel)
    ax_n.legend(fontsize=8, frameon=False)
    for ax in (ax_m, ax_e, ax_n):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _not_binary(values: np.ndarray) -> np.ndarray:
    """Mask of the finite values that are neither 0 nor 1."""
    return np.isfinite(values) & (values != 0) & (values != 1)


def detect_task(
    result: Table | str | os.PathLike[str],
    truth: str,
    *,
    hdu: int | str | None = None,
) -> str:
    """Whether ``result`` is a star-galaxy classification or a photo-z result.

    Parameters
    ----------
    result : astropy.table.Table or path
        The result catalog.
    truth : str
        The truth column.
    hdu : int or str, optional
        FITS HDU or HDF5 dataset of a file.

    Returns
    -------
    str
        ``"classify"`` when the truth column is boolean or integer with only
        the values 0 and 1, or when the catalog has no ``z_phot`` column (the
        default photo-z prediction) but a ``p_galaxy`` column; ``"photoz"``
        otherwise (also when ``truth`` is missing, so that the photo-z
        evaluation names it in its error).
    """
    from astroml_pipe.evaluate.photoz import DEFAULT_PREDICTION as PHOTOZ_PREDICTION

    with open_result(result, hdu=hdu) as opened:
        columns = opened.available
        dtype, shape = columns.get(truth, (np.dtype("U1"), ()))
        kind = np.dtype(dtype).kind if shape == () else ""
        if kind == "b" or kind in ("i", "u") and not _not_binary(float_column(opened.read([truth]), truth)).any():
            return "classify"
        if PHOTOZ_PREDICTION not in columns and DEFAULT_PREDICTION in columns:
            return "classify"
    return "photoz"


def evaluate_classification(
    result: Table | str | os.PathLike[str],
    truth: str,
    *,
    prediction: str = DEFAULT_PREDICTION,
    others: Sequence[str] | str = AUTO,
    magnitude: str | None = AUTO,
    magnitude_bins: Sequence[float] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    source: str | None = None,
    hdu: int | str | None = None,
) -> dict[str, Any]:
    """Star-galaxy metrics of a result catalog against its truth, overall and per magnitude bin.

    Parameters
    ----------
    result : astropy.table.Table or path
        Result catalog, in memory or as a file (of which only the needed
        columns are read).
    truth : str
        Column of the truth: boolean, or numbers 0 and 1; true/1 is a galaxy.
        Masked or NaN entries mark objects of unknown class, which are
        ignored.
    prediction : str
        Column of the probability that an object is a galaxy, in [0, 1];
        non-finite values are ignored.
    others : sequence of str or "auto"
        Further probability columns whose overall metrics are compared with
        those of ``prediction`` (under ``compare``); ``"auto"`` (default)
        takes ``<prediction>_cnn`` (the CNN alone, when ``p_galaxy`` is
        stacked) and ``<prediction>_raw`` (the uncalibrated probability)
        when present.
    magnitude : str or None
        Column for the magnitude bins; ``"auto"`` (default) takes ``mag_r``
        when present, else ``mag_i`` when present, else none.  ``None``
        skips the bins.  Non-finite values and the usual sentinels (99,
        -99) are in no bin.
    magnitude_bins : sequence of float, optional
        Bin edges (half-open bins); default one-magnitude bins spanning the
        usable magnitudes (see :func:`classification_metrics`).
    report_dir : path, optional
        If given, the report (``metrics.json``, ``roc.png``,
        ``reliability.png``, ``metrics_vs_magnitude.png`` with a magnitude,
        ``report.html``) is written there, atomically.
    source : str, optional
        How to name the catalog in error messages (default the file name, or
        "the catalog" for a table).
    hdu : int or str, optional
        FITS HDU or HDF5 dataset of a file (see
        :func:`~astroml_pipe.io.catalogs.open_catalog`).

    Returns
    -------
    dict
        JSON-ready metrics (``None`` where undefined): the overall metrics
        of :func:`classification_metrics` at the top level with
        ``prediction``, ``truth`` and ``magnitude``; ``bins`` (with a
        magnitude, ``magnitude`` with ``column``, ``edges`` and ``rows``:
        ``lo``, ``hi`` and the metrics of each bin); and, with further
        probability columns, ``compare``: column -> overall metrics, the
        first being ``prediction``.

    Raises
    ------
    InputError
        If a column is missing or holds the wrong kind of values, or no
        object has both a finite probability and a known class.
    """
    with open_result(result, hdu=hdu, source=source) as opened:
        available, source = opened.available, opened.source
        if isinstance(others, str):
            auto = [name for name in (f"{prediction}_cnn", f"{prediction}_raw") if name in available]
            others = auto if others == AUTO else [others]
        probabilities = list(dict.fromkeys([prediction, *others]))
        require(available, truth, source)
        check_numeric(truth, *available[truth], source, expected=_TRUTH_EXPECTED)
        for name in probabilities:
            require(available, name, source)
            check_numeric(name, *available[name], source)
        magnitude = pick(magnitude, DEFAULT_MAGNITUDES, available)
        if magnitude is not None:
            require(available, magnitude, source, "magnitude ")
            check_numeric(magnitude, *available[magnitude], source)
        table = opened.read([truth, *probabilities, *([magnitude] if magnitude else [])])
    truth_values = float_column(table, truth)
    if _not_binary(truth_values).any():
        example = truth_values[_not_binary(truth_values)][0]
        raise InputError(f"column {truth!r} in {source} holds values other than 0 and 1 (e.g. {example:g}); "
                         f"expected {_TRUTH_EXPECTED}")
    is_galaxy, known = truth_values == 1, np.isfinite(truth_values)
    values = {}
    for name in probabilities:
        p = float_column(table, name)
        outside = np.isfinite(p) & ((p < 0) | (p > 1))
        if outside.any():
            raise InputError(f"column {name!r} in {source} holds values outside [0, 1] (e.g. {p[outside][0]:g}); "
                             "expected the probability of being a galaxy")
        p[~known] = np.nan
        if not np.isfinite(p).any():
            raise InputError(f"{source}, columns {name!r} and {truth!r}: "
                             "no object has both a finite probability and a known class")
        values[name] = p
    mag = None
    if magnitude is not None:
        from astroml_pipe.core.columns import ColumnMap

        mag = float_column(table, magnitude)
        mag[~ColumnMap().usable(mag)] = np.nan
    overall = classification_metrics(values[prediction], is_galaxy, magnitude=mag, bins=magnitude_bins)
    rows = [{"lo": row.pop("mag_lo"), "hi": row.pop("mag_hi"), **row} for row in overall.pop("bins", [])]
    metrics: dict[str, Any] = {**overall, "prediction": prediction, "truth": truth, "magnitude": magnitude, "bins": {}}
    if rows:
        edges = [row["lo"] for row in rows] + [rows[-1]["hi"]]
        metrics["bins"]["magnitude"] = {"column": magnitude, "edges": edges, "rows": rows}
    elif magnitude is not None:
        log.warning("column %r in %s has no usable magnitude in the bins; no magnitude bins", magnitude, source)
    if len(probabilities) > 1:
        metrics["compare"] = {name: classification_metrics(p, is_galaxy) for name, p in values.items()}
    metrics = jsonable(metrics)
    if report_dir is not None:
        _write(Path(report_dir), metrics, values[prediction], is_galaxy, source)
    return metrics


def _write(folder: Path, metrics: dict[str, Any], p_galaxy: np.ndarray, is_galaxy: np.ndarray, source: str) -> None:
    """The plots of one evaluation and its :func:`~astroml_pipe.evaluate.report.write_report`."""
    from astroml_pipe.evaluate.report import CLASSIFICATION, write_report

    name = metrics["prediction"]
    shown = {
        "ROC curve, galaxies as positives": ("roc.png", partial(plot_roc, p_galaxy, is_galaxy, title=f"ROC: {name}")),
        "Reliability diagram: galaxy fraction against mean probability": (
            "reliability.png", partial(plot_reliability, p_galaxy, is_galaxy, title=f"Reliability: {name}")
        ),
    }
    if "magnitude" in metrics["bins"]:
        shown["Metrics per magnitude bin"] = ("metrics_vs_magnitude.png", partial(
            plot_metrics_vs_magnitude, metrics["bins"]["magnitude"]["rows"], xlabel=metrics["magnitude"]
        ))
    write_report(folder, metrics, shown, source=source.strip("'"), layout=CLASSIFICATION)
