"""Helpers shared by stages that wrap scikit-learn models on tabular features.

Thread counts, filling missing features with training medians (saved with
the model, never re-derived at run time), and loading scikit-learn models
saved with skops from an explicit list of trusted types (never pickle).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from astroml_pipe.core.errors import AstromlPipeWarning, ModelError

__all__ = ["threads", "training_medians", "impute", "fit_standardizer", "standardize", "load_standardizer",
           "load_skops"]


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


def impute(X: np.ndarray, medians: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """A C-contiguous copy of ``X`` (of ``dtype``) with non-finite entries replaced by ``medians``."""
    X = np.array(X, dtype=dtype, order="C", copy=True)
    bad = ~np.isfinite(X)
    if bad.any():
        X[bad] = np.broadcast_to(medians, X.shape)[bad]
    return X


def fit_standardizer(X: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Medians for missing values, then means and standard deviations, of training features.

    Non-finite features are replaced by the training median of their column
    (see :func:`training_medians`); the mean and standard deviation are
    computed after that replacement.  A constant column gets scale 1.

    Returns
    -------
    medians, mean, scale : numpy.ndarray
        ``float64`` arrays of shape ``(n_features,)``, for :func:`standardize`.
    """
    medians = training_medians(X, where).astype(np.float64)
    filled = impute(X, medians, np.float64)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale[~(scale > 0)] = 1.0
    return medians, mean, scale


def standardize(X: np.ndarray, medians: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                dtype: type = np.float64) -> np.ndarray:
    """``(X - mean) / scale`` with non-finite entries first replaced by ``medians`` (a new array)."""
    out = impute(X, medians, dtype)
    out -= mean.astype(dtype)
    out /= scale.astype(dtype)
    return out


def load_standardizer(state: dict, n_features: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``medians_``, ``mean_`` and ``scale_`` of a saved state, checked against the number of features.

    Raises
    ------
    ModelError
        A value is missing or has the wrong length.
    """
    values = []
    for key in ("medians_", "mean_", "scale_"):
        if key not in state:
            raise ModelError(f"{where}: saved state has no {key}")
        value = np.asarray(state[key], dtype=np.float64)
        if value.shape != (n_features,):
            raise ModelError(f"{where}: saved {key} has {value.size} values for {n_features} features")
        values.append(value)
    return values[0], values[1], values[2]


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
