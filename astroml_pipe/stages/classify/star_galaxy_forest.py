"""Star-galaxy separation with a random forest on morphology features (scikit-learn).

Features
--------
By default the ``morph_<feature>_<band>`` columns that
:class:`astroml_pipe.features.morphology.Morphology` writes for the
configured bands (all features of
:data:`astroml_pipe.features.morphology.FEATURES`), followed by the columns
of ``extra_features`` (magnitudes, colours, ...).  ``features`` replaces the
whole list.  Non-finite feature values (failed measurements, missing
photometry) are replaced by the training medians, which are saved with the
model.

Output
------
``p_galaxy`` (name set by ``output``): the forest's probability that the
object is a galaxy, the mean over trees of the galaxy fraction in the leaf
(with ``class_weight: balanced`` the classes weigh equally in training, so
the probability is calibrated for a balanced sample).

The model is saved with skops (``model.skops``) and loaded with an explicit
list of trusted scikit-learn types, never with pickle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage
from astroml_pipe.features.morphology import morphology_columns
from astroml_pipe.models.tabular import impute, load_skops, training_medians

__all__ = ["StarGalaxyForest"]

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
#: The only types a saved forest may contain.
TRUSTED_TYPES = [
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
]


class StarGalaxyForest(Stage):
    """Probability that a source is a galaxy, from a random forest on morphology (and photometry) features."""

    name = "classify.star_galaxy_forest"
    trainable = True
    params = (
        Param("features", list, None, "Feature columns (null: morph_* columns of the bands plus extra_features).",
              nullable=True, item_type=str),
        Param("bands", list, None, "Bands of the default morph_* features (null: the pipeline's bands).",
              nullable=True, item_type=str),
        Param("extra_features", list, [], "Columns added to the default morph_* features.", item_type=str),
        Param("target", str, "is_galaxy", "Boolean column, true for galaxies, read when training."),
        Param("output", str, "p_galaxy", "Name of the output probability column."),
        Param("n_estimators", int, 300, "Number of trees.", minimum=1),
        Param("min_samples_leaf", int, 1, "Minimum number of training objects in a leaf.", minimum=1),
        Param("max_features", str, "sqrt", "Features tried at each split.", choices=("sqrt", "log2", "all")),
        Param("class_weight", str, "balanced", "Class weights: balanced (equal total weight) or none.",
              nullable=True, choices=("balanced", "balanced_subsample", "none")),
        Param("random_state", int, 0, "Seed of the forest.", nullable=True),
        Param("n_jobs", int, -1, "Threads for training and prediction (-1: all cores).", nullable=True),
    )

    def validate(self) -> None:
        if self.features is not None and not self.features:
            raise ConfigError(f"{self.where}: parameter 'features' must name at least one column")
        if self.bands is not None and not self.bands:
            raise ConfigError(f"{self.where}: parameter 'bands' must name at least one band")

    # -- columns ------------------------------------------------------------------
    def feature_columns(self) -> list[str]:
        """The feature columns, as trained or as configured."""
        if hasattr(self, "features_"):
            return list(self.features_)
        if self.features is not None:
            return list(self.features)
        bands = self.bands if self.bands is not None else self.columns.bands
        return morphology_columns(bands) + [c for c in self.extra_features]

    def requires(self) -> list[str]:
        return self.feature_columns()

    def fit_requires(self) -> list[str]:
        return self.feature_columns() + [self.target]

    def provides(self) -> list[Col]:
        return [Col(self.output, "", "float32", "random-forest probability that the source is a galaxy")]

    def _matrix(self, table: Table, columns: list[str]) -> np.ndarray:
        X = np.empty((len(table), len(columns)), dtype=np.float32)
        for j, name in enumerate(columns):
            X[:, j] = np.ma.filled(np.ma.asarray(table[name], dtype=np.float32), np.nan)
        return X

    # -- learning -------------------------------------------------------------------
    def fit(self, table: Table) -> "StarGalaxyForest":
        """Train on ``table`` (the feature columns and the boolean ``target`` column)."""
        from sklearn.ensemble import RandomForestClassifier

        self.check_columns(table, self.fit_requires())
        features = self.feature_columns()
        y = np.asarray(table[self.target])
        if y.dtype.kind not in "biu" or (y.dtype.kind in "iu" and not np.isin(y, (0, 1)).all()):
            raise InputError(f"{self.where}: target column {self.target!r} must be boolean (or 0/1), got {y.dtype}")
        y = y.astype(np.int8)
        counts = np.bincount(y, minlength=2)
        if counts.min() < 2:
            raise InputError(
                f"{self.where}: training needs at least 2 stars and 2 galaxies in {self.target!r}, got {counts.tolist()}"
            )
        X = self._matrix(table, features)
        medians = training_medians(X, self.where)
        weight = None if self.class_weight in (None, "none") else self.class_weight
        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=None if self.max_features == "all" else self.max_features,
            class_weight=weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(impute(X, medians), y)
        self.features_ = features
        self.medians_ = medians
        self.training_metrics_ = {"n_train": int(len(y)), "n_stars": int(counts[0]), "n_galaxies": int(counts[1])}
        log.info("%s trained: %s", self.where, self.training_metrics_)
        return self

    def compute(self, table: Table) -> Mapping[str, np.ndarray]:
        X = impute(self._matrix(table, self.features_), self.medians_)
        if len(X) == 0:
            return {self.output: np.zeros(0, dtype=np.float32)}
        proba = self.model_.predict_proba(X)
        column = list(self.model_.classes_).index(1)
        return {self.output: proba[:, column].astype(np.float32)}

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features_),
            "medians": [float(v) for v in self.medians_],
            "training_metrics": dict(self.training_metrics_),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.features_ = list(state["features"])
        self.medians_ = np.asarray(state["medians"], dtype=np.float32)
        self.training_metrics_ = dict(state.get("training_metrics", {}))

    def save_artifacts(self, folder: Path) -> None:
        import skops.io as sio

        sio.dump(self.model_, folder / MODEL_FILE)

    def load_artifacts(self, folder: Path) -> None:
        from sklearn.ensemble import RandomForestClassifier

        self.model_ = load_skops(folder / MODEL_FILE, TRUSTED_TYPES, RandomForestClassifier)
