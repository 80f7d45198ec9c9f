"""What every photometric-redshift stage shares: features, target, PDF outputs.

A photo-z stage turns feature columns into a redshift PDF on a grid for
every object and summarises it.  Subclasses implement three methods:
``_fit_model(X, y)``; ``_predict_raw(X)``, the model's raw output with one
row per object (the trees' votes, the bin probabilities); and ``_pdf_from_raw(raw, width)``,
which turns it into ``(n, n_grid)`` densities smoothed by a Gaussian kernel
of standard deviation ``width`` in redshift.

Kernel width
------------
With ``kernel_width: null`` (the default) the width is chosen when
training: among widths from 0.5 grid steps to 0.1, the one that maximises
the mean log-likelihood of the true redshifts of the held-out validation
rows under their PDFs (densities floored at 1e-3, so that rare outliers do
not dominate).  A number fixes it instead.

Output columns (with the default ``prefix`` of ``z_phot``):

``z_phot``
    the point estimate chosen by ``point_estimate`` (by default the mode);
``z_phot_mode``, ``z_phot_median``, ``z_phot_mean``
    mode (parabolic refinement around the peak), median and mean of the PDF;
``z_phot_lo``, ``z_phot_hi``
    16th and 84th percentiles (a 68% interval);
``z_phot_pdf``
    the PDF, stored compactly (see :mod:`astroml_pipe.stages.photoz.pdf`).
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

import numpy as np
from astropy.table import Table
from threadpoolctl import threadpool_limits

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import AstromlPipeWarning, ConfigError, InputError
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage
from astroml_pipe.evaluate.pdf_metrics import pit_statistics
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.features.colors import color_name, filled_name
from astroml_pipe.stages.photoz.calibration import PitRecalibration, pit_values
from astroml_pipe.stages.photoz.pdf import PdfGrid, grid_meta, interpolate_rows, quantize, summarize

__all__ = ["PhotoZStage", "COMMON_PARAMS"]

log = logging.getLogger(__name__)

COMMON_PARAMS = (
    Param("target", str, "redshift", "Column with the true (spectroscopic) redshift, read when training."),
    Param(
        "features",
        list,
        None,
        "Feature columns; by default the adjacent colours, the reference band's filled magnitude "
        "and (with use_errors) the colour errors, all written by features.colors.",
        nullable=True,
        item_type=str,
    ),
    Param("reference_band", str, "i", "Band whose magnitude joins the colours in the default features."),
    Param(
        "use_errors",
        bool,
        True,
        "Add the colour errors to the default features, so that the model knows how noisy each colour is.",
    ),
    Param(
        "pdf_grid",
        dict,
        {"start": 0.0, "stop": 3.0, "num": 301},
        "Redshift grid of the PDFs: {start, stop, num}.",
    ),
    Param("prefix", str, "z_phot", "Prefix of the output columns."),
    Param(
        "point_estimate",
        str,
        "mode",
        "Which summary of the PDF the main column holds (all three are written as well).",
        choices=("mode", "median", "mean"),
    ),
    Param(
        "validation_fraction",
        float,
        0.1,
        "Fraction of the training rows held out to measure the training metrics (0 to train on all).",
        minimum=0.0,
        maximum=0.5,
    ),
    Param(
        "kernel_width",
        float,
        None,
        "Standard deviation (in redshift) of the Gaussian that smooths the PDF; null: chosen on the "
        "validation rows by maximum likelihood.",
        nullable=True,
        minimum=0.0,
    ),
    Param(
        "recalibrate",
        bool,
        True,
        "Recalibrate the PDFs so that the PIT of the validation rows is uniform (saved with the model).",
    ),
    Param("random_state", int, 0, "Seed of every random choice (splits, trees).", nullable=True),
)

#: Candidate kernel widths (in redshift) tried when ``kernel_width`` is null.
KERNEL_WIDTHS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.045, 0.07, 0.1)
#: Density floor of the likelihood used to choose the kernel width.
DENSITY_FLOOR = 1e-3
#: Rows per block when turning model output into PDFs and summaries.
BLOCK_ROWS = 4096
#: Threads that turn blocks of model output into PDFs and summaries.
WORKERS = os.cpu_count() or 1


class PhotoZStage(Stage):
    """Base class of photometric-redshift stages."""

    trainable = True
    #: Whether the model's raw output is computed block by block, on all cores, with the PDFs (True), or for a
    #: whole chunk at once (False: for models whose prediction has a large cost per call).
    predict_in_blocks = False
    #: Group label of every row that ``_fit_model`` is training on, set by :meth:`fit` while it trains (None:
    #: every row is its own group). Subclasses that hold rows out inside ``_fit_model`` split by these groups.
    _groups: np.ndarray | None = None

    def validate(self) -> None:
        self.grid = PdfGrid.from_dict(self.pdf_grid, where=f"{self.where}: pdf_grid")
        if self.features is not None and not self.features:
            raise ConfigError(f"{self.where}: parameter 'features' must name at least one column")
        if self.kernel_width is None and not self._has_validation():
            raise ConfigError(
                f"{self.where}: kernel_width null is chosen on validation rows; set validation_fraction > 0 "
                "or give kernel_width"
            )
        if self.recalibrate and not self._has_validation():
            raise ConfigError(
                f"{self.where}: recalibrate needs validation rows; set validation_fraction > 0 or recalibrate: false"
            )

    # -- columns -------------------------------------------------------------------
    def feature_columns(self) -> list[str]:
        """The feature columns, as trained or as configured."""
        if hasattr(self, "features_"):
            return list(self.features_)
        if self.features is not None:
            return list(self.features)
        bands = self.columns.bands
        if self.reference_band not in bands:
            raise ConfigError(
                f"{self.where}: reference_band {self.reference_band!r} is not one of the bands {list(bands)}"
            )
        colours = [color_name(a, b) for a, b in zip(bands[:-1], bands[1:])]
        errors = [f"{name}_err" for name in colours] if self.use_errors else []
        return colours + [filled_name(self.reference_band)] + errors

    def requires(self) -> list[str]:
        return self.feature_columns()

    def fit_requires(self) -> list[str]:
        return self.feature_columns() + [self.target]

    def provides(self) -> list[Col]:
        p = self.prefix
        return [
            Col(p, "", "float32", f"photometric redshift: {self.point_estimate} of the PDF"),
            Col(f"{p}_mode", "", "float32", "mode of the redshift PDF"),
            Col(f"{p}_median", "", "float32", "median of the redshift PDF"),
            Col(f"{p}_mean", "", "float32", "mean of the redshift PDF"),
            Col(f"{p}_lo", "", "float32", "16th percentile of the redshift PDF"),
            Col(f"{p}_hi", "", "float32", "84th percentile of the redshift PDF"),
            Col(
                f"{p}_pdf",
                "",
                "int16",
                f"redshift PDF on {self.grid.num} points from {self.grid.start} to {self.grid.stop}, peak-scaled to 32767",
                shape=(self.grid.num,),
                meta={"grid": self.grid.to_dict()},
            ),
        ]

    def _matrix(self, table: Table, columns: list[str]) -> np.ndarray:
        X = np.empty((len(table), len(columns)), dtype=np.float32)
        for j, name in enumerate(columns):
            X[:, j] = table[name]
        return X

    # -- learning --------------------------------------------------------------------
    def fit(self, table: Table, *, groups: np.ndarray | None = None) -> "PhotoZStage":
        """Train on ``table`` (feature columns and the ``target`` column).

        Parameters
        ----------
        table : astropy.table.Table
            Training rows.
        groups : numpy.ndarray, optional
            A label for every row of ``table``.  Rows with the same label,
            such as the copies of one galaxy in a bootstrap resample, are
            kept on the same side of every split into training and held-out
            rows, so that no held-out row is also trained on.  By default
            every row is its own group.

        Returns
        -------
        PhotoZStage
            ``self``, trained.
        """
        self.check_columns(table, self.fit_requires())
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (len(table),):
                raise InputError(f"{self.where}: groups must have one label per training row ({len(table)}), "
                                 f"got shape {groups.shape}")
        features = self.feature_columns()
        X = self._matrix(table, features)
        y = np.asarray(table[self.target], dtype=np.float64)
        good = np.isfinite(y)
        outside = good & ((y < self.grid.start) | (y > self.grid.stop))
        if (~good).any() or outside.any():
            warnings.warn(
                f"{self.where}: ignoring {int((~good).sum())} training rows without a finite {self.target!r} "
                f"and {int(outside.sum())} outside the PDF grid [{self.grid.start}, {self.grid.stop}]",
                AstromlPipeWarning,
                stacklevel=2,
            )
            good &= ~outside
        X, y = X[good], y[good]
        self._groups = None if groups is None else groups[good]
        if len(y) < 10:
            raise InputError(f"{self.where}: only {len(y)} usable training rows in column {self.target!r}; need at least 10")
        self.features_ = features
        try:
            n_train, raw, y_val = self._fit_and_validate(X, y)
        finally:
            self._groups = None
        metrics: dict[str, Any] = {"n_train": int(n_train), "n_validation": int(len(y_val))}
        self.recalibration_ = None
        if len(y_val):
            self.pdf_settings_ = self._choose_pdf_settings(raw, y_val)
            pdf = self._pdf_from_raw(raw, **self.pdf_settings_)
            pit = pit_values(self.grid, pdf, y_val)
            metrics["validation_pit_ks_before_recalibration"] = pit_statistics(pit)["pit_ks"]
            if self.recalibrate:
                self.recalibration_ = PitRecalibration.fit(pit)
            z_phot = self._summaries(pdf)[self.point_estimate]
            metrics.update({f"validation_{k}": v for k, v in photoz_metrics(z_phot, y_val).items() if k != "n"})
            metrics["validation_mean_log_density"] = _mean_log_density(self.grid, pdf, y_val)
        else:
            self.pdf_settings_ = self._default_pdf_settings()
        metrics["pdf_settings"] = dict(self.pdf_settings_)
        self.training_metrics_ = metrics
        log.info("%s trained: %s", self.where, metrics)
        return self

    def _fit_and_validate(self, X: np.ndarray, y: np.ndarray) -> tuple[int, Any, np.ndarray]:
        """Train on the usable rows and predict the validation rows.

        Holds out a random ``validation_fraction`` of the rows (of the
        groups, if ``fit`` was given groups), trains on the others and
        returns ``(rows trained on, raw output of the validation rows, their
        true redshifts)``; the PDF settings and the recalibration are fitted
        on that output.
        """
        val, train = hold_out(len(y), self.validation_fraction, np.random.default_rng(self.random_state),
                              self._groups)
        groups = self._groups
        self._groups = None if groups is None else groups[train]  # what _fit_model may split further
        self._fit_model(X[train], y[train])
        self._groups = groups
        return len(train), (self._predict_raw(X[val]) if len(val) else None), y[val]

    def _has_validation(self) -> bool:
        """Whether training yields validation output to fit the PDF settings and the recalibration on."""
        return self.validation_fraction > 0

    def _choose_pdf_settings(self, raw: Any, z_true: np.ndarray) -> dict[str, float]:
        best: dict[str, float] = {}
        best_score = -np.inf
        for settings in self._pdf_candidates():
            score = _mean_log_density(self.grid, self._pdf_from_raw(raw, **settings), z_true)
            if score > best_score:
                best, best_score = settings, score
        log.info("%s: PDF settings %s chosen on %d validation rows", self.where, best, len(z_true))
        return best

    def _pdf_candidates(self) -> list[dict[str, float]]:
        """Settings of :meth:`_pdf_from_raw` to try (by default only the kernel width)."""
        if self.kernel_width is not None:
            return [{"width": float(self.kernel_width)}]
        return [{"width": w} for w in KERNEL_WIDTHS if w >= 0.5 * self.grid.step]

    def _default_pdf_settings(self) -> dict[str, float]:
        """Settings used without validation rows to choose them."""
        return {"width": float(self.kernel_width)}

    @abstractmethod
    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        """Train the model on features ``X`` and true redshifts ``y``."""

    @abstractmethod
    def _predict_raw(self, X: np.ndarray) -> Any:
        """The model's raw output, one row per object (sliceable by rows)."""

    @abstractmethod
    def _pdf_from_raw(self, raw: Any, width: float, **extra: float) -> np.ndarray:
        """Normalised PDFs ``(n, grid.num)`` from raw output, with the given PDF settings."""

    def _block_extras(self, raw: Any) -> dict[str, np.ndarray]:
        """Values of the extra columns a subclass provides, for one block of raw output."""
        return {}

    def _summaries(self, pdf: np.ndarray) -> dict[str, np.ndarray]:
        """Recalibrate ``pdf`` in place (if the model has a recalibration) and summarise it."""
        if self.recalibration_ is not None:
            pdf = self.recalibration_.apply(self.grid, pdf)
        return summarize(self.grid, pdf)

    def predict_pdf(self, X: np.ndarray) -> np.ndarray:
        """Normalised (and recalibrated) PDFs on the grid for a feature matrix, shape ``(n, n_grid)``."""
        pdf = self._pdf_from_raw(self._predict_raw(X), **self.pdf_settings_)
        if self.recalibration_ is not None:
            pdf = self.recalibration_.apply(self.grid, pdf)
        return pdf

    # -- applying ------------------------------------------------------------------------
    def compute(self, table: Table) -> dict[str, np.ndarray]:
        X = self._matrix(table, self.feature_columns())
        n, p = len(table), self.prefix
        raw = self._predict_raw(X) if n and not self.predict_in_blocks else None
        names = {"mode": f"{p}_mode", "median": f"{p}_median", "mean": f"{p}_mean", "lo": f"{p}_lo", "hi": f"{p}_hi"}
        out = {name: np.empty(n, np.float32) for name in (p, *names.values())}
        out[f"{p}_pdf"] = np.empty((n, self.grid.num), np.int16)
        for col in self.provides()[len(PhotoZStage.provides(self)) :]:  # columns a subclass adds
            out[col.name] = np.empty((n, *col.shape), col.dtype)
        # Blocks of rows small enough to stay in cache (several times faster than whole
        # chunks), processed on all cores: numpy releases the GIL, and each block
        # writes only its own rows of the outputs.
        def process(start: int) -> None:
            block = slice(start, min(start + BLOCK_ROWS, n))
            raw_block = self._predict_raw(X[block]) if self.predict_in_blocks else raw[block]
            pdf = self._pdf_from_raw(raw_block, **self.pdf_settings_)
            stats = self._summaries(pdf)
            for key, name in names.items():
                out[name][block] = stats[key]
            out[p][block] = stats[self.point_estimate]
            out[f"{p}_pdf"][block] = quantize(pdf)
            for name, values in self._block_extras(raw_block).items():
                out[name][block] = values

        starts = range(0, n, BLOCK_ROWS)
        # One BLAS thread per block: results must not depend on how blocks are scheduled.
        with threadpool_limits(limits=1, user_api="blas"):
            if len(starts) > 1 and WORKERS > 1:
                with ThreadPoolExecutor(WORKERS) as pool:
                    list(pool.map(process, starts))
            else:
                for start in starts:
                    process(start)
        return out

    def run(self, table: Table) -> Table:
        out = super().run(table)
        index = 1
        while f"PDFCOL{index}" in out.meta and out.meta[f"PDFCOL{index}"] != f"{self.prefix}_pdf":
            index += 1
        out.meta.update(grid_meta(f"{self.prefix}_pdf", self.grid, index))
        return out

    # -- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "features_": self.features_,
            "pdf_settings_": self.pdf_settings_,
            "recalibration_": None if self.recalibration_ is None else self.recalibration_.to_list(),
            "training_metrics_": self.training_metrics_,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.features_ = list(state["features_"])
        self.pdf_settings_ = {k: float(v) for k, v in state["pdf_settings_"].items()}
        density = state.get("recalibration_")
        self.recalibration_ = None if density is None else PitRecalibration(density)
        self.training_metrics_ = dict(state.get("training_metrics_", {}))


def hold_out(n: int, fraction: float, rng: np.random.Generator, groups: np.ndarray | None = None,
             minimum: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random ``fraction`` (at least ``minimum``) of ``n`` rows, or of their ``groups``: (held out, the others).

    With ``groups`` (a label per row), whole groups are held out, so that no held-out row has a copy among the
    others.
    """
    if groups is None:
        order = rng.permutation(n)
        n_held = max(minimum, int(round(fraction * n)))
        return order[:n_held], order[n_held:]
    group, n_groups = group_index(groups, n)
    held = np.zeros(n_groups, bool)
    held[rng.permutation(n_groups)[: max(minimum, int(round(fraction * n_groups)))]] = True
    return np.flatnonzero(held[group]), np.flatnonzero(~held[group])


def group_index(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """The group number of each of ``n`` rows, and the number of groups (without ``groups``, one per row)."""
    if groups is None:
        return np.arange(n), n
    labels, group = np.unique(groups, return_inverse=True)
    return group, len(labels)


def _mean_log_density(grid: PdfGrid, pdf: np.ndarray, z_true: np.ndarray) -> float:
    """Mean log PDF at the true redshifts (linear interpolation, floored at ``DENSITY_FLOOR``)."""
    return float(np.mean(np.log(np.maximum(interpolate_rows(grid, pdf, z_true), DENSITY_FLOOR))))
