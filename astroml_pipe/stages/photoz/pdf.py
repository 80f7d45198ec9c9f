"""Redshift PDFs on a grid: summaries, compact storage, and reading them back.

Storage
-------
A PDF column (``z_phot_pdf`` by default) holds, for every object, the
probability density on a linear redshift grid as ``int16`` values scaled so
that each row's peak is 32767 (602 bytes per object for 301 grid points, a
relative precision of 3e-5 of the peak).  The grid is written into the table
metadata (and so into the FITS header of the table HDU) as keywords
``PDFCOLn`` (column name), ``PDFMINn``, ``PDFMAXn`` and ``PDFNUMn`` with
``n = 1, 2, ...``.  :func:`read_pdf` undoes the scaling::

    from astropy.table import Table
    from astroml_pipe.stages.photoz import read_pdf

    result = Table.read("result.fits")
    z, pdf = read_pdf(result)              # pdf has shape (n_objects, n_grid)
    # each row integrates to 1 over z (trapezoid rule)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import ConfigError, InputError

__all__ = [
    "PdfGrid",
    "cdf_on_grid",
    "grid_meta",
    "interpolate_rows",
    "normalize",
    "quantize",
    "read_pdf",
    "summarize",
    "trapezoid_weights",
]

PDF_SCALE = 32767


class PdfGrid:
    """A linear redshift grid ``numpy.linspace(start, stop, num)``.

    Parameters
    ----------
    start, stop : float
        First and last grid points.
    num : int
        Number of points (at least 2).
    """

    def __init__(self, start: float = 0.0, stop: float = 3.0, num: int = 301):
        if not (np.isfinite(start) and np.isfinite(stop) and stop > start and int(num) >= 2):
            raise ConfigError(f"pdf_grid must have start < stop and num >= 2, got start={start}, stop={stop}, num={num}")
        self.start, self.stop, self.num = float(start), float(stop), int(num)
        self.z = np.linspace(self.start, self.stop, self.num)
        self.step = (self.stop - self.start) / (self.num - 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "pdf_grid") -> "PdfGrid":
        """Build from ``{start, stop, num}`` (the ``pdf_grid`` parameter)."""
        unknown = set(data) - {"start", "stop", "num"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected start, stop, num")
        try:
            return cls(float(data.get("start", 0.0)), float(data.get("stop", 3.0)), int(data.get("num", 301)))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: start, stop must be numbers and num an integer, got {dict(data)}") from None

    def to_dict(self) -> dict[str, float | int]:
        return {"start": self.start, "stop": self.stop, "num": self.num}


def trapezoid_weights(num: int, step: float, dtype: Any = np.float64) -> np.ndarray:
    """Weights ``w`` with ``pdf @ w`` the trapezoid-rule integral on a uniform grid."""
    weights = np.full(num, step, dtype=dtype)
    weights[[0, -1]] *= 0.5
    return weights


def normalize(pdf: np.ndarray, step: float) -> np.ndarray:
    """Scale rows to unit integral (trapezoid rule on a uniform grid), in place.

    All-zero rows stay zero.  Returns ``pdf``.
    """
    norm = pdf @ trapezoid_weights(pdf.shape[-1], step, pdf.dtype)
    norm[norm <= 0] = 1.0
    pdf /= norm[:, None]
    return pdf


def cdf_on_grid(grid: PdfGrid, pdf: np.ndarray) -> np.ndarray:
    """Cumulative distributions at the grid points (trapezoid rule), each ending at one.

    Computed as ``step * (cumsum_i - p_0/2 - p_i/2)`` without temporaries
    larger than the result.
    """
    cdf = np.cumsum(pdf, axis=1)
    cdf -= 0.5 * pdf
    cdf -= 0.5 * pdf[:, :1]
    total = cdf[:, -1:].copy()
    total[total <= 0] = 1.0
    cdf /= total
    return cdf


def interpolate_rows(grid: PdfGrid, values: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``values`` (sampled on the grid) linearly interpolated at ``z[i]``."""
    position = np.clip((np.asarray(z, dtype=np.float64) - grid.start) / grid.step, 0, grid.num - 1)
    left = np.minimum(position.astype(int), grid.num - 2)
    frac = position - left
    rows = np.arange(len(position))
    return (1 - frac) * values[rows, left] + frac * values[rows, left + 1]


def summarize(grid: PdfGrid, pdf: np.ndarray, cdf: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Point estimates and a 68% interval from normalised PDFs on ``grid``.

    Parameters
    ----------
    grid : PdfGrid
        The grid of the PDFs.
    pdf : numpy.ndarray
        Densities of shape ``(n, grid.num)``, each row integrating to one
        (trapezoid rule); ``float32`` is fastest.
    cdf : numpy.ndarray, optional
        Their cumulative distributions at the grid points, if known
        (:func:`cdf_on_grid` otherwise).

    Returns
    -------
    dict
        ``mode`` (refined by a parabola through the peak and its neighbours),
        ``mean``, ``median``, ``lo`` and ``hi`` (16th and 84th percentiles),
        each of length ``len(pdf)``.
    """
    n, g = pdf.shape
    rows = np.arange(n)
    peak = np.argmax(pdf, axis=1)
    inner = np.clip(peak, 1, g - 2)
    left, mid, right = pdf[rows, inner - 1], pdf[rows, inner], pdf[rows, inner + 1]
    denom = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where((denom < 0) & (peak == inner), 0.5 * (left - right) / denom, 0.0)
    mode = grid.start + (peak + np.clip(shift, -0.5, 0.5)) * grid.step

    cdf = cdf_on_grid(grid, pdf) if cdf is None else cdf
    weights = trapezoid_weights(g, grid.step, pdf.dtype)
    mass = pdf @ weights
    mass[mass <= 0] = 1.0
    out = {"mode": mode, "mean": (pdf @ (weights * grid.z.astype(pdf.dtype))) / mass}
    for key, q in (("median", 0.5), ("lo", 0.15865525393145707), ("hi", 0.8413447460685429)):
        out[key] = _quantile(grid, cdf, np.full(n, q, dtype=cdf.dtype))
    return out


def _quantile(grid: PdfGrid, cdf: np.ndarray, level: np.ndarray) -> np.ndarray:
    # CDF rows are monotone: the first point at or above the level (boolean argmax stops early).
    idx = np.clip(np.argmax(cdf >= level[:, None], axis=1), 1, cdf.shape[1] - 1)
    rows = np.arange(len(cdf))
    c0, c1 = cdf[rows, idx - 1], cdf[rows, idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(c1 > c0, (level - c0) / (c1 - c0), 0.5)
    return grid.start + (idx - 1 + np.clip(frac, 0, 1)) * grid.step


def quantize(pdf: np.ndarray) -> np.ndarray:
    """PDF rows as ``int16`` scaled so that each row's maximum is 32767."""
    peak = pdf.max(axis=1, keepdims=True)
    peak[peak <= 0] = 1.0
    return np.rint(pdf * (PDF_SCALE / peak)).astype(np.int16)


def grid_meta(column: str, grid: PdfGrid, index: int = 1) -> dict[str, Any]:
    """Table-metadata keywords that record the grid of PDF column ``column``."""
    return {
        f"PDFCOL{index}": column,
        f"PDFMIN{index}": grid.start,
        f"PDFMAX{index}": grid.stop,
        f"PDFNUM{index}": grid.num,
    }


def read_pdf(table: Table, column: str = "z_phot_pdf") -> tuple[np.ndarray, np.ndarray]:
    """Redshift grid and normalised PDFs of a PDF column of a result catalog.

    Parameters
    ----------
    table : astropy.table.Table
        A catalog written by a photo-z stage (read with ``Table.read``, or
        from ``Pipeline.run``).
    column : str
        Name of the PDF column.

    Returns
    -------
    z : numpy.ndarray
        The redshift grid, shape ``(n_grid,)``.
    pdf : numpy.ndarray
        ``float64`` densities of shape ``(n_objects, n_grid)``; each row
        integrates to one over ``z``.
    """
    if column not in table.colnames:
        raise InputError(f"the table has no PDF column {column!r}")
    grid = None
    meta = table.meta
    for i in range(1, 100):
        if meta.get(f"PDFCOL{i}") == column:
            grid = PdfGrid(meta[f"PDFMIN{i}"], meta[f"PDFMAX{i}"], meta[f"PDFNUM{i}"])
            break
        if f"PDFCOL{i}" not in meta:
            break
    if grid is None:
        raise InputError(f"no grid recorded for PDF column {column!r} (PDFCOLn/PDFMINn/PDFMAXn/PDFNUMn keywords)")
    pdf = np.asarray(table[column], dtype=np.float64)
    if pdf.ndim != 2 or pdf.shape[1] != grid.num:
        raise InputError(f"PDF column {column!r} has shape {pdf.shape}, expected (n, {grid.num})")
    return grid.z, normalize(pdf, grid.step)
