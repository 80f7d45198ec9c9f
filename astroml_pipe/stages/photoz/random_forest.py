"""Random-forest photometric redshifts (scikit-learn).

How the PDF is made
-------------------
Every tree of the forest predicts a redshift (the mean training redshift in
the leaf the object falls into).  The per-tree predictions are histogrammed
on the PDF grid and smoothed with a Gaussian kernel whose width is chosen
on the validation rows (or fixed by ``kernel_width``): the PDF is the
kernel density estimate of the forest's votes.  Its spread reflects how
much the trees disagree, which grows where colours are degenerate; the
kernel adds the scatter the trees do not see.

The model is saved with skops (``model.skops``) and loaded with an explicit
list of trusted scikit-learn types, never with pickle.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from astroml_pipe.core.errors import ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, PhotoZStage
from astroml_pipe.stages.photoz.pdf import normalize

__all__ = ["RandomForestPhotoZ"]

MODEL_FILE = "model.skops"
#: The only types a saved forest may contain.
TRUSTED_TYPES = [
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
]


def _threads(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return cores if n_jobs < 0 else min(n_jobs, cores)


class RandomForestPhotoZ(PhotoZStage):
    """Photometric redshifts from a random forest; the PDF is a smoothed histogram of the trees' votes."""

    name = "photoz.random_forest"
    params = COMMON_PARAMS + (
        Param("n_estimators", int, 100, "Number of trees.", minimum=1),
        Param("max_depth", int, None, "Maximum depth of a tree (null: grow until leaves are pure).", nullable=True, minimum=1),
        Param("min_samples_leaf", int, 5, "Minimum number of training objects in a leaf.", minimum=1),
        Param("max_features", float, 1.0, "Fraction of the features tried at each split.", minimum=0.01, maximum=1.0),
        Param("n_jobs", int, -1, "Threads for training and prediction (-1: all cores).", nullable=True),
    )

    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.model_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(X, y)

    def tree_predictions(self, X: np.ndarray) -> np.ndarray:
        """Predictions of every tree, shape ``(n_trees, n_objects)``."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        trees = self.model_.estimators_
        with ThreadPoolExecutor(_threads(self.n_jobs)) as pool:
            votes = list(pool.map(lambda tree: tree.predict(X, check_input=False), trees))
        return np.asarray(votes, dtype=np.float32)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.tree_predictions(X).T)

    def _pdf_from_raw(self, votes: np.ndarray, width: float) -> np.ndarray:
        """PDFs from votes of shape ``(n_objects, n_trees)``."""
        grid = self.grid
        n = votes.shape[0]
        index = np.clip(np.rint((votes - grid.start) / grid.step), 0, grid.num - 1).astype(np.int64)
        flat = index + (np.arange(n, dtype=np.int64) * grid.num)[:, None]
        hist = np.bincount(flat.ravel(), minlength=n * grid.num).reshape(n, grid.num).astype(np.float32)
        if width > 0:
            hist = gaussian_filter1d(hist, width / grid.step, axis=1, mode="constant", truncate=4.0)
        return normalize(hist, grid.step)

    def save_artifacts(self, folder: Path) -> None:
        import skops.io as sio

        sio.dump(self.model_, folder / MODEL_FILE)

    def load_artifacts(self, folder: Path) -> None:
        import skops.io as sio

        path = folder / MODEL_FILE
        if not path.exists():
            raise ModelError(f"model folder '{folder}' has no {MODEL_FILE}")
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise ModelError(f"'{path}' contains types that are not trusted: {', '.join(untrusted)}")
        self.model_ = sio.load(path, trusted=TRUSTED_TYPES)
