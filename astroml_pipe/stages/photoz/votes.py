"""Shared machinery of the photo-z stages whose PDF is a weighted set of votes.

The random forest (its trees' predictions), AdaBoost (its trees'
predictions, weighted by the boosting weights) and kNN (the neighbours'
redshifts, weighted by inverse distance) all make their PDF the same way:
each vote is split linearly between the two nearest grid points, the
histogram is smoothed by a Gaussian kernel (a cached matrix product) and
normalised.  Also here: thread counts, imputing missing features with
training medians, and loading scikit-learn models with skops from an
explicit list of trusted types.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from astroml_pipe.core.errors import AstromlPipeWarning, ModelError
from astroml_pipe.stages.photoz.pdf import PdfGrid, normalize

__all__ = ["threads", "training_medians", "impute", "smoothed_histogram", "KernelCache", "load_skops"]


def threads(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return cores if n_jobs < 0 else min(n_jobs, cores)


def training_medians(X: np.ndarray, where: str) -> np.ndarray:
    """Median of every column of ``X`` over its finite values (0 where there is none).

    Parameters
    ----------
    X : numpy.ndarray
        Training features, shape ``(n, n_features)``.
    where : str
        How warnings name the stage.

    Returns
    -------
    numpy.ndarray
        ``float32`` medians, shape ``(n_features,)``.
    """
    finite = np.isfinite(X)
    medians = np.zeros(X.shape[1], dtype=np.float32)
    empty = []
    for j in range(X.shape[1]):
        values = X[finite[:, j], j]
        if len(values):
            medians[j] = np.median(values)
        else:
            empty.append(j)
    if empty:
        warnings.warn(
            f"{where}: feature column(s) {empty} have no finite training value; they are replaced by 0",
            AstromlPipeWarning,
            stacklevel=3,
        )
    return medians


def impute(X: np.ndarray, medians: np.ndarray) -> np.ndarray:
    """``X`` as C-contiguous ``float32`` with non-finite entries replaced by ``medians``."""
    X = np.array(X, dtype=np.float32, order="C", copy=True)
    bad = ~np.isfinite(X)
    if bad.any():
        X[bad] = np.broadcast_to(medians, X.shape)[bad]
    return X


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


def load_skops(path: Path, trusted: list[str], expected: type) -> object:
    """Load a scikit-learn model saved with skops, refusing anything but ``trusted`` types.

    Raises
    ------
    ModelError
        The file is missing, contains an untrusted type, or holds another
        kind of model than ``expected``.
    """
    import skops.io as sio

    if not path.exists():
        raise ModelError(f"model folder '{path.parent}' has no {path.name}")
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
    if untrusted:
        raise ModelError(f"'{path}' contains types that are not trusted: {', '.join(untrusted)}")
    model = sio.load(path, trusted=trusted)
    if not isinstance(model, expected):
        raise ModelError(f"'{path}' holds a model of type {type(model).__name__}, expected {expected.__name__}")
    return model
