"""CatBoost photometric redshifts: a multi-class classifier over redshift bins.

How the PDF is made
-------------------
The training redshifts are cut into ``n_bins`` bins at their quantiles, so
that every bin holds the same number of training objects (narrow bins where
galaxies are common, wide ones in the sparse tail).  A CatBoost
``MultiClass`` model learns the logits of the bins; the bin probabilities
are ``softmax(logits / T)`` with a temperature ``T`` fitted on the
validation rows (temperature scaling, Guo et al. 2017: boosted classifiers
are often over- or under-confident).  On the PDF grid, each bin contributes
its probability spread uniformly over its width and smoothed by a Gaussian
whose standard deviation is a fraction ``smoothing`` of the bin's width
(plus ``kernel_width`` in quadrature, if given), so that the mixture is a
smooth density whose mode moves continuously.  ``T`` and ``smoothing`` are
chosen together by maximum likelihood on the validation rows.
Both steps are linear, so they are precomputed once as an
``(n_bins, n_grid)`` basis and the PDFs of a chunk are a single matrix
product.

The model is saved in CatBoost's own ``.cbm`` format; the bin edges are
saved with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astroml_pipe.core.errors import InputError, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, PhotoZStage
from astroml_pipe.stages.photoz.pdf import PdfGrid, normalize

__all__ = ["CatBoostPhotoZ"]

MODEL_FILE = "model.cbm"
#: Softmax temperatures tried on the validation rows.
TEMPERATURES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.5)
#: Gaussian smoothing of each bin, in units of the bin's width, tried on the validation rows.
SMOOTHINGS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def bin_basis(edges: np.ndarray, grid: PdfGrid, smoothing: float, width: float = 0.0) -> np.ndarray:
    """Densities on ``grid`` of a unit probability in each redshift bin.

    Bin ``k`` is a box over ``[edges[k], edges[k+1]]`` convolved with a
    Gaussian of standard deviation ``sqrt((smoothing * bin_width)**2 + width**2)``,
    so wide bins are smoothed more than narrow ones and the mixture of bins
    is a smooth density (a box without smoothing would give flat-topped
    PDFs whose mode sticks to bin positions).

    Returns
    -------
    numpy.ndarray
        ``(n_bins, grid.num)`` float32 densities whose rows integrate to one.
    """
    from scipy.special import ndtr

    lo, hi = edges[:-1, None], edges[1:, None]
    bin_width = hi - lo
    sigma = np.sqrt((smoothing * bin_width) ** 2 + width**2)
    z = grid.z[None, :]
    if np.all(sigma > 0):
        basis = (ndtr((z - lo) / sigma) - ndtr((z - hi) / sigma)) / bin_width
    else:  # a plain box: the fraction of each grid cell inside the bin
        overlap = np.clip(np.minimum(hi, z + 0.5 * grid.step) - np.maximum(lo, z - 0.5 * grid.step), 0, None)
        basis = overlap / bin_width / grid.step
    return normalize(basis, grid.step).astype(np.float32)


class CatBoostPhotoZ(PhotoZStage):
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

        edges = np.unique(np.quantile(y, np.linspace(0.0, 1.0, self.n_bins + 1)))
        edges[0], edges[-1] = self.grid.start, self.grid.stop
        if len(edges) < 3:
            raise InputError(f"{self.where}: the training redshifts take too few distinct values to make bins")
        labels = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, len(edges) - 2)
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
        present = np.asarray(model.classes_, dtype=int)
        self.model_ = model
        self.bin_edges_ = edges
        self.classes_ = present
        self._bases: dict[tuple[float, float], np.ndarray] = {}

    def _basis(self, smoothing: float, width: float) -> np.ndarray:
        key = (smoothing, width)
        if key not in self._bases:
            self._bases[key] = bin_basis(self.bin_edges_, self.grid, smoothing, width)[self.classes_]
        return self._bases[key]

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        logits = self.model_.predict(X, prediction_type="RawFormulaVal", thread_count=self.thread_count)
        return np.asarray(logits, dtype=np.float32).reshape(len(X), len(self.classes_))

    def _pdf_candidates(self) -> list[dict[str, float]]:
        width = self.kernel_width or 0.0
        return [{"smoothing": a, "width": width, "temperature": t} for a in SMOOTHINGS for t in TEMPERATURES]

    def _default_pdf_settings(self) -> dict[str, float]:
        return {"smoothing": 0.0, "width": float(self.kernel_width), "temperature": 1.0}

    def _pdf_from_raw(
        self, logits: np.ndarray, smoothing: float, width: float, temperature: float = 1.0
    ) -> np.ndarray:
        scaled = logits / np.float32(temperature)
        scaled -= scaled.max(axis=1, keepdims=True)
        proba = np.exp(scaled, out=scaled)
        proba /= proba.sum(axis=1, keepdims=True)
        return normalize(proba @ self._basis(smoothing, width), self.grid.step)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bin_edges_": self.bin_edges_.tolist(), "classes_": self.classes_.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.bin_edges_ = np.asarray(state["bin_edges_"], dtype=float)
        self.classes_ = np.asarray(state["classes_"], dtype=int)

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
        self._bases = {}
