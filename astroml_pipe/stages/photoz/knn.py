"""k-nearest-neighbour photometric redshifts in standardised feature space (scikit-learn).

Features
--------
Non-finite features (NaN: not observed; ±inf) are replaced by the median of
the feature over the training rows; then every feature is standardised with
the training mean and standard deviation (computed after that imputation),
so that colours and magnitudes weigh alike in the Euclidean distance.  The
medians, means and standard deviations are fitted state (``medians_``,
``mean_``, ``scale_``, saved in ``stage.json``), never re-derived at run time.

How the PDF is made
-------------------
The PDF of an object is the distribution of the true redshifts of its
``n_neighbors`` nearest training objects, each weighted by the inverse of its
distance (``weights: distance``; an object at distance zero takes all the
weight, shared with any other at distance zero) or equally
(``weights: uniform``).  The weights are spread linearly onto the two
nearest grid points and the histogram is smoothed with a Gaussian kernel
whose width is chosen on the validation rows (or fixed by
``kernel_width``).  The validation rows are not among the neighbours, so the
chosen width is honest.

Saving
------
No pickle: the standardised training features and their redshifts are saved
as ``train_features.npy`` and ``train_redshifts.npy`` (read with
``allow_pickle=False``), and the neighbour search structure
(:class:`sklearn.neighbors.NearestNeighbors`) is rebuilt when loading, which
takes milliseconds and gives identical neighbours.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astroml_pipe.core.errors import AstromlPipeWarning, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, PhotoZStage
from astroml_pipe.models.tabular import fit_standardizer, load_standardizer, standardize
from astroml_pipe.stages.photoz.votes import KernelCache, smoothed_histogram

__all__ = ["KNNPhotoZ"]

FEATURES_FILE = "train_features.npy"
REDSHIFTS_FILE = "train_redshifts.npy"


class KNNPhotoZ(PhotoZStage):
    """Photometric redshifts from the nearest training objects in standardised feature space."""

    name = "photoz.knn"
    params = COMMON_PARAMS + (
        Param("n_neighbors", int, 30, "Number of neighbours that make an object's PDF.", minimum=1),
        Param(
            "weights",
            str,
            "distance",
            "Weight of a neighbour: inverse distance, or uniform.",
            choices=("distance", "uniform"),
        ),
        Param(
            "algorithm",
            str,
            "auto",
            "Neighbour search of sklearn.neighbors.NearestNeighbors.",
            choices=("auto", "kd_tree", "ball_tree", "brute"),
        ),
        Param("n_jobs", int, -1, "Threads for the neighbour search (-1: all cores).", nullable=True),
    )

    # -- learning --------------------------------------------------------------------
    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        # A constant feature gets scale 1, so it does not take part in distances.
        self.medians_, self.mean_, self.scale_ = fit_standardizer(X, self.where)
        if self.n_neighbors > len(y):
            warnings.warn(
                f"{self.where}: n_neighbors={self.n_neighbors} but only {len(y)} training rows; "
                f"using {len(y)} neighbours",
                AstromlPipeWarning,
                stacklevel=3,
            )
        self._build(np.ascontiguousarray(self.transform(X)), np.asarray(y, dtype=np.float64))

    def _build(self, train_features: np.ndarray, train_redshifts: np.ndarray) -> None:
        """Set the training set and rebuild the neighbour search on it."""
        from sklearn.neighbors import NearestNeighbors

        self.train_features_ = train_features
        self.train_redshifts_ = train_redshifts
        self.neighbors_ = NearestNeighbors(algorithm=self.algorithm, n_jobs=self.n_jobs).fit(train_features)
        self._kernel = KernelCache(self.grid)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Features as the neighbour search sees them: imputed and standardised.

        Parameters
        ----------
        X : numpy.ndarray
            Features in the order of ``features_``, shape ``(n, n_features)``.

        Returns
        -------
        numpy.ndarray
            ``float64`` array of the same shape.
        """
        return standardize(X, self.medians_, self.mean_, self.scale_)

    # -- applying --------------------------------------------------------------------
    def kneighbors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances to and indices of the nearest training objects, nearest first.

        Parameters
        ----------
        X : numpy.ndarray
            Features in the order of ``features_``, shape ``(n, n_features)``.

        Returns
        -------
        distance, index : numpy.ndarray
            Both of shape ``(n, k)`` with ``k = min(n_neighbors, n_train)``;
            ``index`` points into ``train_redshifts_``.
        """
        k = min(self.n_neighbors, len(self.train_redshifts_))
        return self.neighbors_.kneighbors(self.transform(X), n_neighbors=k)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Neighbours' redshifts and weights, shape ``(n, k, 2)`` (``[..., 0]`` z, ``[..., 1]`` weight)."""
        distance, index = self.kneighbors(X)
        if self.weights == "uniform":
            weight = np.ones_like(distance)
        else:
            exact = distance == 0
            with np.errstate(divide="ignore"):
                weight = 1.0 / distance
            on_top = exact.any(axis=1)
            weight[on_top] = exact[on_top]
        weight /= weight.sum(axis=1, keepdims=True)
        raw = np.empty((*distance.shape, 2), dtype=np.float32)
        raw[..., 0] = self.train_redshifts_[index]
        raw[..., 1] = weight
        return raw

    def _pdf_from_raw(self, raw: np.ndarray, width: float) -> np.ndarray:
        """PDFs from the neighbours' redshifts and weights, shape ``(n, k, 2)``."""
        grid = self.grid
        position = np.clip((raw[..., 0] - grid.start) / grid.step, 0, grid.num - 1)
        return smoothed_histogram(position, raw[..., 1], grid, self._kernel(width))

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "medians_": self.medians_.tolist(),
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.medians_, self.mean_, self.scale_ = load_standardizer(state, len(self.features_), self.where)

    def save_artifacts(self, folder: Path) -> None:
        np.save(folder / FEATURES_FILE, self.train_features_, allow_pickle=False)
        np.save(folder / REDSHIFTS_FILE, self.train_redshifts_, allow_pickle=False)

    def load_artifacts(self, folder: Path) -> None:
        arrays = []
        for name in (FEATURES_FILE, REDSHIFTS_FILE):
            path = folder / name
            if not path.exists():
                raise ModelError(f"model folder '{folder}' has no {name}")
            try:
                arrays.append(np.load(path, allow_pickle=False))
            except ValueError as exc:
                raise ModelError(f"'{path}' is not a readable numeric .npy file: {exc}") from None
        features, redshifts = arrays
        if (
            features.dtype.kind != "f"
            or redshifts.dtype.kind != "f"
            or features.ndim != 2
            or redshifts.ndim != 1
            or features.shape != (len(redshifts), len(self.features_))
            or len(redshifts) == 0
        ):
            raise ModelError(
                f"model folder '{folder}': {FEATURES_FILE} {features.shape} and {REDSHIFTS_FILE} {redshifts.shape} "
                f"do not hold {len(self.features_)} features of the same training objects"
            )
        self._build(np.ascontiguousarray(features), redshifts)
