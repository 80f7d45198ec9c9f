"""Photometric-redshift metrics, overall and per bin, and the evaluation report.

Point estimates
---------------
With ``dz = (z_phot - z_true) / (1 + z_true)``:

``sigma_nmad``
    ``1.4826 * median(|dz - median(dz)|)``, the normalised median absolute
    deviation (Hoaglin, Mosteller & Tukey 1983; Brammer et al. 2008, ApJ
    686, 1503); the factor makes it the standard deviation for a Gaussian;
``sigma_iqr``
    ``IQR(dz) / 1.349``, the interquartile range scaled to a Gaussian
    standard deviation (as in RAIL and Schmidt et al. 2020, MNRAS 499, 1587);
``outlier_fraction``
    fraction of objects with ``|dz| > 0.15`` (Ilbert et al. 2006, A&A 457, 841);
``bias``
    ``median(dz)``.

PDFs
----
PIT (with KS and CvM statistics and the PIT outlier rate), CRPS and CDE
loss of the PDF column: see :mod:`astroml_pipe.evaluate.pdf_metrics`.

Bins
----
All metrics are also given per bin of a magnitude column (by default
``mag_i`` when present; edges :data:`MAGNITUDE_BINS`) and per bin of the true
redshift (edges :data:`REDSHIFT_BINS`).  Objects outside the edges, or with
a non-finite (or sentinel, e.g. 99) magnitude, are in no magnitude bin.

Memory
------
:func:`evaluate_photoz` of a file reads the scalar columns whole (8 bytes a row each)
and the PDF column in blocks of ``block_size`` rows, keeping 32 bytes a row of
per-object PDF values; a 10^6-row result needs a few hundred MB at most.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import InputError
from astroml_pipe.evaluate.pdf_metrics import SUB_BLOCK, PdfMetricsAccumulator
from astroml_pipe.evaluate.plots import plot_zphot_vs_ztrue
from astroml_pipe.evaluate.result import (
    AUTO, Available, check_numeric, float_column, jsonable, open_result, pick, require,
)

__all__ = [
    "MAGNITUDE_BINS",
    "REDSHIFT_BINS",
    "binned_metrics",
    "evaluate_photoz",
    "photoz_metrics",
    "plot_zphot_vs_ztrue",
]

log = logging.getLogger(__name__)

OUTLIER_THRESHOLD = 0.15
#: Default magnitude bin edges: 18 to 25.5 in steps of 0.5.
MAGNITUDE_BINS = tuple(np.round(np.arange(18.0, 25.5 + 1e-9, 0.5), 6).tolist())
#: Default true-redshift bin edges: 0 to 3 in steps of 0.25.
REDSHIFT_BINS = tuple(np.round(np.arange(0.0, 3.0 + 1e-9, 0.25), 6).tolist())
#: Magnitude column used for bins when none is named and it is present.
DEFAULT_MAGNITUDE = "mag_i"
#: Photometric-redshift column evaluated by default.
DEFAULT_PREDICTION = "z_phot"
#: Rows of the PDF column of a file read at once by :func:`evaluate_photoz`.
BLOCK_SIZE = 50_000
_POINT_KEYS = ("n", "sigma_nmad", "sigma_iqr", "outlier_fraction", "bias")


def _dz_metrics(dz: np.ndarray) -> dict[str, Any]:
    """Point metrics of finite ``dz`` values (NaN when there are none)."""
    if len(dz) == 0:
        return {"n": 0} | dict.fromkeys(_POINT_KEYS[1:], float("nan"))
    median = float(np.median(dz))
    q25, q75 = np.percentile(dz, [25, 75])
    return {
        "n": len(dz),
        "sigma_nmad": float(1.4826 * np.median(np.abs(dz - median))),
        "sigma_iqr": float((q75 - q25) / 1.349),
        "outlier_fraction": float(np.mean(np.abs(dz) > OUTLIER_THRESHOLD)),
        "bias": median,
    }


def _dz(z_phot: Any, z_true: Any) -> np.ndarray:
    """``(z_phot - z_true) / (1 + z_true)``, NaN where either is not finite."""
    z_phot = np.asarray(z_phot, dtype=np.float64)
    z_true = np.asarray(z_true, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (z_phot - z_true) / (1.0 + z_true)


def photoz_metrics(z_phot: np.ndarray, z_true: np.ndarray) -> dict[str, float]:
    """σ_NMAD, σ_IQR, outlier fraction and bias of point estimates.

    Parameters
    ----------
    z_phot, z_true : array_like
        Photometric and true redshifts; pairs where either is not finite are
        ignored.

    Returns
    -------
    dict
        ``n``, ``sigma_nmad``, ``sigma_iqr``, ``outlier_fraction``, ``bias``
        (definitions in the module docstring).

    Raises
    ------
    InputError
        If no pair is finite.
    """
    dz = _dz(z_phot, z_true)
    dz = dz[np.isfinite(dz)]
    if len(dz) == 0:
        raise InputError("no object has both a finite photometric and a finite true redshift")
    return _dz_metrics(dz)


def _bin_edges(edges: Sequence[float]) -> np.ndarray:
    """``edges`` as a float array, checked to be at least two increasing finite numbers."""
    array = np.asarray(edges, dtype=np.float64)
    if array.ndim != 1 or len(array) < 2 or not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise InputError(f"bin edges must be at least two increasing numbers, got {array.tolist()}")
    return array


def binned_metrics(
    x: Any,
    edges: Sequence[float],
    z_phot: Any,
    z_true: Any,
    pdf_values: PdfMetricsAccumulator | None = None,
) -> list[dict[str, Any]]:
    """Point (and PDF) metrics in bins of ``x``.

    Parameters
    ----------
    x : array_like
        The binned quantity (a magnitude, the true redshift) of every object.
    edges : sequence of float
        Increasing bin edges; bin ``j`` is ``edges[j] <= x < edges[j+1]``
        (the last bin includes its upper edge).
    z_phot, z_true : array_like
        Photometric and true redshifts of the same objects.
    pdf_values : PdfMetricsAccumulator, optional
        PDF values of the same objects, in the same order; adds the PDF
        metrics of :func:`~astroml_pipe.evaluate.pdf_metrics.pdf_summary`.

    Returns
    -------
    list of dict
        One dict per bin: ``lo``, ``hi``, then the metrics (``n`` = 0 and
        NaN for an empty bin).
    """
    edges = _bin_edges(edges)
    x = np.asarray(x, dtype=np.float64)
    dz = _dz(z_phot, z_true)
    index = np.full(len(x), -1)
    inside = np.isfinite(x) & (x >= edges[0]) & (x <= edges[-1])
    index[inside] = np.clip(np.searchsorted(edges, x[inside], side="right") - 1, 0, len(edges) - 2)
    rows = []
    for j in range(len(edges) - 1):
        in_bin = index == j
        row: dict[str, Any] = {"lo": float(edges[j]), "hi": float(edges[j + 1])}
        row.update(_dz_metrics(dz[in_bin & np.isfinite(dz)]))
        if pdf_values is not None:
            row.update(pdf_values.summary(in_bin))
        rows.append(row)
    return rows


@dataclass
class _Plan:
    """The columns one evaluation reads, checked against the catalog."""

    truth: str
    predictions: list[str]
    pdf: str | None
    magnitude: str | None
    committee: str | None  # a (n, n_members) column of member point estimates

    @property
    def scalar_columns(self) -> list[str]:
        """The columns read whole, without repeats."""
        names = [self.truth, *self.predictions, self.magnitude, self.committee]
        return list(dict.fromkeys(name for name in names if name))


def _resolve(
    available: Available,
    truth: str,
    prediction: str | Sequence[str],
    pdf: str | None,
    magnitude: str | None,
    source: str,
) -> _Plan:
    """Check the named columns (dtype and per-row shape by name) and resolve ``auto``."""
    predictions = [prediction] if isinstance(prediction, str) else list(prediction)
    if not predictions:
        raise InputError("give at least one photometric-redshift column")
    for column in (truth, *predictions):
        require(available, column, source)
        check_numeric(column, *available[column], source)
    magnitude = pick(magnitude, [DEFAULT_MAGNITUDE], available)
    if magnitude is not None:
        require(available, magnitude, source, "magnitude ")
        check_numeric(magnitude, *available[magnitude], source)
    pdf = pick(pdf, [f"{predictions[0]}_pdf"], available)
    if pdf is not None:
        require(available, pdf, source, "PDF ")
        if len(available[pdf][1]) != 1:
            raise InputError(f"column {pdf!r} in {source} is not a PDF column (shape {available[pdf][1]} per row)")
    committee: str | None = f"{predictions[0]}_members"
    dtype, shape = available.get(committee, (np.dtype("U1"), ()))
    if len(shape) != 1 or np.dtype(dtype).kind not in "biuf":
        committee = None
    return _Plan(truth, predictions, pdf, magnitude, committee)


def _table_pdf_blocks(table: Table, column: str, source: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Grid and normalised PDFs of ``table[column]``, :data:`SUB_BLOCK` rows at a time."""
    from astroml_pipe.stages.photoz.pdf import read_pdf

    for start in range(0, len(table), SUB_BLOCK):
        try:
            yield read_pdf(table[start : start + SUB_BLOCK], column)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None


def evaluate_photoz(
    table: Table | str | os.PathLike[str],
    truth: str,
    *,
    prediction: str | Sequence[str] = DEFAULT_PREDICTION,
    pdf: str | None = AUTO,
    magnitude: str | None = AUTO,
    magnitude_bins: Sequence[float] = MAGNITUDE_BINS,
    redshift_bins: Sequence[float] = REDSHIFT_BINS,
    report_dir: str | os.PathLike[str] | None = None,
    source: str | None = None,
    hdu: int | str | None = None,
    block_size: int = BLOCK_SIZE,
) -> dict[str, Any]:
    """Metrics of a result catalog against its true redshifts, overall and per bin.

    Parameters
    ----------
    table : astropy.table.Table or path
        Result catalog with the ``truth`` and ``prediction`` columns (and the
        PDF column with its grid keywords in the metadata), in memory or as
        a file.  Of a file only the needed columns are read: the scalar ones
        whole, the PDF column ``block_size`` rows at a time.
    truth : str
        Column of the true redshift.
    prediction : str or sequence of str
        Column(s) of the photometric redshift.  With several (the members of
        a committee), the first is evaluated in full and all get their point
        metrics under ``members``; so do the members of a
        ``<prediction>_members`` column (one point estimate per member and
        row, as ``photoz.committee`` writes), named ``<column>[k]``.
    pdf : str or None
        PDF column; ``"auto"`` (default) takes ``<prediction>_pdf`` when
        present, ``None`` skips the PDF metrics.
    magnitude : str or None
        Column for the magnitude bins; ``"auto"`` (default) takes ``mag_i``
        when present, ``None`` skips the magnitude bins.
    magnitude_bins, redshift_bins : sequence of float
        Bin edges.
    report_dir : path, optional
        If given, the report (``metrics.json``, PNGs, ``report.html``) is
        written there, atomically (see
        :func:`~astroml_pipe.evaluate.report.write_report`).
    source : str, optional
        How to name the catalog in error messages (default the file name, or
        "the catalog" for a table).
    hdu : int or str, optional
        FITS HDU or HDF5 dataset of a file (see
        :func:`~astroml_pipe.io.catalogs.open_catalog`).
    block_size : int
        Rows of the PDF column of a file read at once.

    Returns
    -------
    dict
        JSON-ready metrics (``None`` where undefined): the overall point
        metrics of :func:`photoz_metrics` at the top level with
        ``prediction``, ``truth`` and ``pdf``; with a PDF, the PDF metrics
        of :func:`~astroml_pipe.evaluate.pdf_metrics.pdf_summary`;
        ``magnitude``; ``bins`` (``magnitude`` and ``redshift``, each with
        ``column``, ``edges`` and ``rows`` from :func:`binned_metrics`); and
        ``members`` for several predictions or a committee.
    """
    with open_result(table, hdu=hdu, source=source) as result:
        plan = _resolve(result.available, truth, prediction, pdf, magnitude, result.source)
        column = plan.pdf

        def pdf_blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for start in range(0, result.n_rows, block_size):
                yield from _table_pdf_blocks(result.read([column], start, start + block_size), column, result.source)

        scalars = result.read(plan.scalar_columns)
        return _evaluate(scalars, pdf_blocks if column else None, plan, magnitude_bins, redshift_bins, report_dir,
                         result.source)


def _evaluate(
    scalars: Table,
    pdf_blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]] | None,
    plan: _Plan,
    magnitude_bins: Sequence[float],
    redshift_bins: Sequence[float],
    report_dir: str | os.PathLike[str] | None,
    source: str,
) -> dict[str, Any]:
    """The evaluation of :func:`evaluate_photoz`, of a table or of a file.

    ``scalars`` holds (at least) the plan's scalar columns; ``pdf_blocks``
    yields the grid and the PDFs of consecutive blocks of rows.
    """
    truth, magnitude, pdf = plan.truth, plan.magnitude, plan.pdf
    columns = {name: float_column(scalars, name) for name in plan.scalar_columns if name != plan.committee}
    predictions = list(plan.predictions)
    if plan.committee is not None:
        member_values = float_column(scalars, plan.committee)
        for k in range(member_values.shape[1]):
            predictions.append(f"{plan.committee}[{k}]")
            columns[predictions[-1]] = member_values[:, k]
    z_true = columns[truth]
    z_phot = columns[predictions[0]]
    sections = {"magnitude": (magnitude, _bin_edges(magnitude_bins))} if magnitude else {}
    sections["redshift"] = (truth, _bin_edges(redshift_bins))
    members = {}
    for name in predictions:
        try:
            members[name] = photoz_metrics(columns[name], z_true)
        except InputError as exc:
            raise InputError(f"{source}, columns {name!r} and {truth!r}: {exc}") from None
    metrics: dict[str, Any] = {**members[predictions[0]], "prediction": predictions[0], "truth": truth, "pdf": pdf}
    acc = None
    if pdf_blocks is not None:
        acc = PdfMetricsAccumulator()
        offset = 0
        for z_grid, block in pdf_blocks():
            acc.add(z_grid, block, z_true[offset : offset + len(block)])
            offset += len(block)
        metrics.update(acc.summary())
    metrics["magnitude"] = magnitude
    metrics["bins"] = {
        name: {"column": column, "edges": edges.tolist(),
               "rows": binned_metrics(columns[column], edges, z_phot, z_true, acc)}
        for name, (column, edges) in sections.items()
    }
    if len(predictions) > 1:
        metrics["members"] = members
    metrics = jsonable(metrics)
    if report_dir is not None:
        _write(Path(report_dir), metrics, columns, acc, source)
    return metrics


def _write(
    folder: Path,
    metrics: dict[str, Any],
    columns: Mapping[str, np.ndarray],
    acc: PdfMetricsAccumulator | None,
    source: str,
) -> None:
    """The plots of one evaluation and its :func:`~astroml_pipe.evaluate.report.write_report`."""
    from astroml_pipe.evaluate import plots
    from astroml_pipe.evaluate.report import PHOTOZ, write_report

    z_true, z_phot = columns[metrics["truth"]], columns[metrics["prediction"]]
    shown = {
        "Photometric against true redshift": (
            "zphot_vs_ztrue.png", partial(plots.plot_zphot_vs_ztrue, z_phot, z_true, metrics=metrics)
        )
    }
    if acc is not None:
        shown["PIT histogram and QQ plot"] = ("pit.png", partial(plots.plot_pit, acc.values["pit"], metrics=metrics))
    for name, label in (("magnitude", metrics["magnitude"]), ("redshift", "true redshift")):
        if name in metrics["bins"]:
            shown[f"Metrics per {name} bin"] = (
                f"metrics_vs_{name}.png", partial(plots.plot_binned_metrics, metrics["bins"][name]["rows"], xlabel=label)
            )
    grid, stacked = acc.stacked_pdf() if acc is not None else (None, None)
    shown["Redshift distribution: true, stacked PDFs, point estimates"] = (
        "nz.png", partial(plots.plot_nz, z_true, z_grid=grid, stacked=stacked, z_phot=z_phot)
    )
    if "members" in metrics:
        shown["Committee members"] = ("members.png", partial(plots.plot_members, metrics["members"]))
    write_report(folder, metrics, shown, source=source.strip("'"), layout=PHOTOZ)
