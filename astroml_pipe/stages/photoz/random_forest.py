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

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, PhotoZStage
from astroml_pipe.models.tabular import load_skops, threads
from astroml_pipe.stages.photoz.votes import KernelCache, smoothed_histogram

__all__ = ["RandomForestPhotoZ"]

MODEL_FILE = "model.skops"
#: The only types a saved forest may contain.
TRUSTED_TYPES = [
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
]


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
        with ThreadPoolExecutor(threads(self.n_jobs)) as pool:
            votes = list(pool.map(lambda tree: tree.predict(X, check_input=False), trees))
        return np.asarray(votes, dtype=np.float32)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.tree_predictions(X).T)

    def _pdf_from_raw(self, votes: np.ndarray, width: float) -> np.ndarray:
        """PDFs from votes of shape ``(n_objects, n_trees)``."""
        if not hasattr(self, "_kernel"):
            self._kernel = KernelCache(self.grid)
        position = np.clip((votes - self.grid.start) / self.grid.step, 0, self.grid.num - 1)
        return smoothed_histogram(position, np.ones(votes.shape[1], np.float32), self.grid, self._kernel(width))

    def save_artifacts(self, folder: Path) -> None:
        import skops.io as sio

        sio.dump(self.model_, folder / MODEL_FILE)

    def load_artifacts(self, folder: Path) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.model_ = load_skops(folder / MODEL_FILE, TRUSTED_TYPES, RandomForestRegressor)
