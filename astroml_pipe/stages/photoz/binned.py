"""Photo-z stages that classify objects into redshift bins, and how their PDFs are made.

How the PDF is made
-------------------
The training redshifts are cut into ``n_bins`` bins at their quantiles, so
that every bin holds the same number of training objects (narrow bins where
galaxies are common, wide ones in the sparse tail).  A classifier learns the
logits of the bins; the bin probabilities are ``softmax(logits / T)`` with a
temperature ``T`` fitted on the validation rows (temperature scaling, Guo et
al. 2017: classifiers are often over- or under-confident).  On the PDF grid,
each bin contributes its probability spread uniformly over its width and
smoothed by a Gaussian whose standard deviation is a fraction ``smoothing``
of the bin's width (plus ``kernel_width`` in quadrature, if given), so that
the mixture is a smooth density whose mode moves continuously.  ``T`` and
``smoothing`` are chosen together by maximum likelihood on the validation
rows.  Both steps are linear, so they are precomputed once as an
``(n_bins, n_grid)`` basis and the PDFs of a chunk are a single matrix
product.  The bin edges are saved with the model.

Subclasses (:mod:`~astroml_pipe.stages.photoz.catboost`,
:mod:`~astroml_pipe.stages.photoz.mlp`) train their classifier on the labels
of :meth:`BinnedPhotoZ._bins` and return its logits from ``_predict_raw``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from astroml_pipe.core.errors import InputError
from astroml_pipe.stages.photoz.base import PhotoZStage
from astroml_pipe.stages.photoz.pdf import PdfGrid, normalize

__all__ = ["BinnedPhotoZ", "bin_basis"]

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


class BinnedPhotoZ(PhotoZStage):
    """Base class of photo-z stages whose model classifies objects into quantile redshift bins.

    Subclasses declare an ``n_bins`` parameter, call :meth:`_bins` in
    ``_fit_model`` and set ``classes_`` to the bins their model has outputs
    for (in the order of its logits).
    """

    def _bins(self, y: np.ndarray) -> np.ndarray:
        """Cut the redshifts ``y`` into quantile bins (sets ``bin_edges_``); returns each row's bin."""
        edges = np.unique(np.quantile(y, np.linspace(0.0, 1.0, self.n_bins + 1)))
        edges[0], edges[-1] = self.grid.start, self.grid.stop
        if len(edges) < 3:
            raise InputError(f"{self.where}: the training redshifts take too few distinct values to make bins")
        self.bin_edges_ = edges
        self._bases: dict[tuple[float, float], np.ndarray] = {}
        return self._labels(y)

    def _labels(self, y: np.ndarray) -> np.ndarray:
        """The bin of each redshift in ``y``, with the edges set by :meth:`_bins`."""
        return np.clip(np.searchsorted(self.bin_edges_, y, side="right") - 1, 0, len(self.bin_edges_) - 2)

    def _basis(self, smoothing: float, width: float) -> np.ndarray:
        key = (smoothing, width)
        if key not in self._bases:
            self._bases[key] = bin_basis(self.bin_edges_, self.grid, smoothing, width)[self.classes_]
        return self._bases[key]

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
        self._bases = {}
