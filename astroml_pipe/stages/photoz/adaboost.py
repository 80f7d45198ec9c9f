"""AdaBoost photometric redshifts: boosted shallow regression trees (scikit-learn).

The model is ``AdaBoostRegressor(DecisionTreeRegressor(max_depth=4),
n_estimators=300)`` (AdaBoost.R2, Drucker 1997): every new tree is trained on
a bootstrap sample drawn with the weights of the objects the earlier trees
got most wrong, and gets a weight ``learning_rate * log(1 / beta)`` that is
larger the smaller its weighted error.

How the PDF is made
-------------------
AdaBoost's own prediction is the weighted median of its trees' predictions.
The PDF is the whole weighted distribution behind that median: every tree
puts its weight (``estimator_weights_``) at the redshift it predicts; the
weights are spread linearly onto the two nearest grid points, and the
histogram is smoothed with a Gaussian kernel whose width is chosen on the
validation rows (or fixed by ``kernel_width``), as for the random forest.
The median of the PDF is therefore close to AdaBoost's prediction (it
differs by the smoothing only), and the PDF's spread shows how much the
trees disagree.

Missing features
----------------
scikit-learn's ``AdaBoostRegressor`` rejects NaN (checked with
scikit-learn 1.9), although its trees would accept them.  Non-finite
features (NaN: not observed; ±inf) are therefore replaced by the median of
the feature over the training rows; the medians are part of the fitted state
(``medians_``, saved in ``stage.json``), never re-derived at run time.  A
feature with no finite training value is replaced by 0.

Saving
------
The model is saved with skops (``model.skops``) and loaded with an explicit
list of trusted scikit-learn types, never with pickle.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astroml_pipe.core.errors import ConfigError, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, PhotoZStage
from astroml_pipe.models.tabular import impute, load_skops, threads, training_medians
from astroml_pipe.stages.photoz.votes import KernelCache, smoothed_histogram

__all__ = ["AdaBoostPhotoZ"]

MODEL_FILE = "model.skops"
#: The only types a saved model may contain (found with ``skops.io.get_untrusted_types``).
TRUSTED_TYPES = [
    "sklearn.ensemble._weight_boosting.AdaBoostRegressor",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
]


class AdaBoostPhotoZ(PhotoZStage):
    """Photometric redshifts from AdaBoost regression trees; the PDF is the trees' weighted votes, smoothed."""

    name = "photoz.adaboost"
    params = COMMON_PARAMS + (
        Param("n_estimators", int, 300, "Maximum number of boosted trees.", minimum=1),
        Param("max_depth", int, 4, "Maximum depth of every tree.", minimum=1),
        Param("learning_rate", float, 1.0, "Shrinkage of every tree's weight (> 0).", minimum=0.0),
        Param(
            "loss",
            str,
            "linear",
            "Loss used to re-weight the training objects after each tree (AdaBoost.R2).",
            choices=("linear", "square", "exponential"),
        ),
        Param("n_jobs", int, -1, "Threads for prediction (-1: all cores); training is sequential.", nullable=True),
    )

    def validate(self) -> None:
        super().validate()
        if self.learning_rate <= 0:
            raise ConfigError(f"{self.where}: parameter 'learning_rate' must be > 0, got {self.learning_rate!r}")

    # -- learning --------------------------------------------------------------------
    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import AdaBoostRegressor
        from sklearn.tree import DecisionTreeRegressor

        self.medians_ = training_medians(X, self.where)
        self.model_ = AdaBoostRegressor(
            DecisionTreeRegressor(max_depth=self.max_depth),
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            loss=self.loss,
            random_state=self.random_state,
        ).fit(impute(X, self.medians_), y)
        self._prepare()

    def _prepare(self) -> None:
        """Cache, per tree, the grid position of every node's value and the trees' weights."""
        trees = self.model_.estimators_
        weights = np.asarray(self.model_.estimator_weights_[: len(trees)], dtype=np.float64)
        if not weights.sum() > 0:  # a single tree no better than chance keeps weight 0
            weights = np.ones(len(trees))
        self._weights = (weights / weights.sum()).astype(np.float32)
        n_nodes = max(tree.tree_.node_count for tree in trees)
        self._node_dtype = np.uint8 if n_nodes <= 256 else np.uint16 if n_nodes <= 65536 else np.int32
        position = np.zeros((len(trees), n_nodes), dtype=np.float32)
        for k, tree in enumerate(trees):
            value = tree.tree_.value[:, 0, 0]
            position[k, : len(value)] = np.clip((value - self.grid.start) / self.grid.step, 0, self.grid.num - 1)
        self._positions = position
        self._kernel = KernelCache(self.grid)

    # -- applying --------------------------------------------------------------------
    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf (node index) of every object in every tree, shape ``(n, n_trees)``."""
        X = impute(X, self.medians_)
        trees = self.model_.estimators_
        out = np.empty((len(X), len(trees)), dtype=self._node_dtype, order="F")

        def apply(k: int) -> None:
            out[:, k] = trees[k].apply(X, check_input=False)

        with ThreadPoolExecutor(threads(self.n_jobs)) as pool:
            list(pool.map(apply, range(len(trees))))
        return out

    def estimator_predictions(self, X: np.ndarray) -> np.ndarray:
        """Redshift predicted by every tree, shape ``(n_trees, n_objects)``.

        Parameters
        ----------
        X : numpy.ndarray
            Features in the order of ``features_``; non-finite values are
            imputed with the training medians.
        """
        leaves = self._leaves(X)
        trees = self.model_.estimators_
        return np.stack([tree.tree_.value[leaves[:, k], 0, 0] for k, tree in enumerate(trees)]).astype(np.float32)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        # Leaf indices (one byte each for shallow trees) rather than float predictions: 4x less memory.
        return self._leaves(X)

    def _pdf_from_raw(self, leaves: np.ndarray, width: float) -> np.ndarray:
        """PDFs from leaf indices of shape ``(n_objects, n_trees)``."""
        position = self._positions[np.arange(leaves.shape[1])[None, :], leaves]
        return smoothed_histogram(position, self._weights, self.grid, self._kernel(width))

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "medians_": self.medians_.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.medians_ = np.asarray(state["medians_"], dtype=np.float32)
        if self.medians_.shape != (len(self.features_),):
            raise ModelError(
                f"{self.where}: saved state has {self.medians_.size} feature medians for {len(self.features_)} features"
            )

    def save_artifacts(self, folder: Path) -> None:
        import skops.io as sio

        sio.dump(self.model_, folder / MODEL_FILE)

    def load_artifacts(self, folder: Path) -> None:
        from sklearn.ensemble import AdaBoostRegressor

        self.model_ = load_skops(folder / MODEL_FILE, TRUSTED_TYPES, AdaBoostRegressor)
        self._prepare()
