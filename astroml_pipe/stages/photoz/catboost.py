"""CatBoost photometric redshifts: a multi-class classifier over redshift bins.

The training redshifts are cut into ``n_bins`` quantile bins and a CatBoost
``MultiClass`` model learns the logits of the bins; the PDF is made from
them as described in :mod:`astroml_pipe.stages.photoz.binned`.

The model is saved in CatBoost's own ``.cbm`` format; the bin edges are
saved with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astroml_pipe.core.errors import ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS
from astroml_pipe.stages.photoz.binned import BinnedPhotoZ

__all__ = ["CatBoostPhotoZ"]

MODEL_FILE = "model.cbm"


class CatBoostPhotoZ(BinnedPhotoZ):
    """Photometric redshifts from CatBoost classifying objects into redshift bins."""

    name = "photoz.catboost"
    params = COMMON_PARAMS + (
        Param("n_bins", int, 30, "Number of redshift bins (classes), cut at quantiles of the training redshifts.", minimum=2),
        Param("iterations", int, 800, "Number of boosting iterations (trees).", minimum=1),
        Param("depth", int, 4, "Depth of the (oblivious) trees.", minimum=1, maximum=16),
        Param("learning_rate", float, None, "Learning rate (null: CatBoost chooses one).", nullable=True, minimum=0.0),
        Param("l2_leaf_reg", float, 3.0, "L2 regularisation of the leaf values.", minimum=0.0),
        Param("thread_count", int, -1, "Threads for training and prediction (-1: all cores).", minimum=-1),
    )

    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        from catboost import CatBoostClassifier

        labels = self._bins(y)
        model = CatBoostClassifier(
            loss_function="MultiClass",
            iterations=self.iterations,
            depth=self.depth,
            learning_rate=self.learning_rate,
            l2_leaf_reg=self.l2_leaf_reg,
            random_seed=self.random_state if self.random_state is not None else 0,
            thread_count=self.thread_count,
            verbose=False,
            allow_writing_files=False,
        )
        model.fit(X, labels)
        self.model_ = model
        self.classes_ = np.asarray(model.classes_, dtype=int)  # bins with training objects

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        logits = self.model_.predict(X, prediction_type="RawFormulaVal", thread_count=self.thread_count)
        return np.asarray(logits, dtype=np.float32).reshape(len(X), len(self.classes_))

    def save_artifacts(self, folder: Path) -> None:
        self.model_.save_model(str(folder / MODEL_FILE), format="cbm")

    def load_artifacts(self, folder: Path) -> None:
        from catboost import CatBoostClassifier, CatBoostError

        path = folder / MODEL_FILE
        if not path.exists():
            raise ModelError(f"model folder '{folder}' has no {MODEL_FILE}")
        model = CatBoostClassifier()
        try:
            model.load_model(str(path), format="cbm")
        except CatBoostError as exc:
            raise ModelError(f"'{path}' is not a readable CatBoost model: {exc}") from None
        self.model_ = model
