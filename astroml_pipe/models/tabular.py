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

__all__ = ["threads", "training_medians", "impute", "load_skops"]


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
