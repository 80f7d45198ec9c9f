"""Shared machinery of the photo-z stages whose PDF is a weighted set of votes.

The random forest (its trees' predictions), AdaBoost (its trees'
predictions, weighted by the boosting weights) and kNN (the neighbours'
redshifts, weighted by inverse distance) all make their PDF the same way:
each vote is split linearly between the two nearest grid points, the
histogram is smoothed by a Gaussian kernel (a cached matrix product) and
normalised.  Thread counts, imputation and safe model loading shared with
other scikit-learn stages are in :mod:`astroml_pipe.models.tabular`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from astroml_pipe.stages.photoz.pdf import PdfGrid, normalize

__all__ = ["smoothed_histogram", "kernel_matrix", "KernelCache"]


def smoothed_histogram(
    position: np.ndarray, weight: np.ndarray, grid: PdfGrid, kernel: np.ndarray | None
) -> np.ndarray:
    """Normalised PDFs from weighted values, spread linearly onto the grid and smoothed.

    Parameters
    ----------
    position : numpy.ndarray
        Values as fractional grid indices ``(z - grid.start) / grid.step``,
        clipped to ``[0, grid.num - 1]``, shape ``(n, m)``.
    weight : numpy.ndarray
        Weights of the values, shape ``(m,)`` or ``(n, m)``.
    grid : PdfGrid
        The PDF grid.
    kernel : numpy.ndarray or None
        ``(grid.num, grid.num)`` smoothing matrix (see :func:`kernel_matrix`),
        or None for no smoothing.

    Returns
    -------
    numpy.ndarray
        ``float32`` densities of shape ``(n, grid.num)`` integrating to one.
    """
    n, m = position.shape
    left = np.minimum(position.astype(np.int64), grid.num - 2)
    frac = position - left
    weight = np.broadcast_to(weight, (n, m))
    flat = (left + (np.arange(n, dtype=np.int64) * grid.num)[:, None]).ravel()
    size = n * grid.num
    upper = weight * frac
    hist = np.bincount(flat, (weight - upper).ravel(), minlength=size)
    hist[1:] += np.bincount(flat, upper.ravel(), minlength=size)[:-1]
    hist = hist.reshape(n, grid.num).astype(np.float32)
    if kernel is not None:
        hist = hist @ kernel
    return normalize(hist, grid.step)


def kernel_matrix(grid: PdfGrid, width: float) -> np.ndarray | None:
    """Matrix ``K`` such that ``hist @ K`` is ``hist`` smoothed by a Gaussian of std ``width``.

    Equal (to rounding) to ``scipy.ndimage.gaussian_filter1d(hist, width / grid.step,
    axis=1, mode="constant", truncate=4.0)``, but a matrix product is faster
    for wide kernels.  Returns None for ``width <= 0``.
    """
    if width <= 0:
        return None
    eye = np.eye(grid.num, dtype=np.float32)
    return np.ascontiguousarray(gaussian_filter1d(eye, width / grid.step, axis=1, mode="constant", truncate=4.0))


class KernelCache:
    """Smoothing matrices of one grid, built once per kernel width."""

    def __init__(self, grid: PdfGrid):
        self.grid = grid
        self._kernels: dict[float, np.ndarray | None] = {}

    def __call__(self, width: float) -> np.ndarray | None:
        if width not in self._kernels:
            self._kernels[width] = kernel_matrix(self.grid, width)
        return self._kernels[width]
