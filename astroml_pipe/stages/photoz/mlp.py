"""Neural-network photometric redshifts: a committee of small dense networks classifying into redshift bins.

Features
--------
Non-finite features (NaN: not observed) are replaced by their training
median and every feature is standardised with the training mean and
standard deviation (:func:`~astroml_pipe.models.tabular.fit_standardizer`;
saved in ``stage.json`` as ``medians_``, ``mean_`` and ``scale_``).

Networks
--------
Each network is a multi-layer perceptron (scikit-learn's
``MLPClassifier``: ReLU hidden layers of ``hidden_layers`` units, a softmax
output over the ``n_bins`` quantile redshift bins, Adam, L2 penalty
``alpha``), trained for at most ``max_epochs`` passes over the training
rows.  Some rows are held out from each network (see *Cross-fitting*) and
training stops when their temperature-calibrated log-loss (the log-loss of
``softmax(logits / T)`` at the temperature ``T`` that minimises it, see
:func:`calibrated_log_loss`) has not improved for ``patience`` epochs (its
best epoch).  Calibrating before comparing makes the
criterion measure how much the network knows rather than how confident it
is: the plain log-loss turns up as soon as the network becomes
over-confident, while its ranking of the bins still improves, and the PDF
steps below fit their own temperature anyway.  If the best epoch was the
*b*-th, the network is then trained on to ``epoch_factor`` × *b* epochs
(1.5 by default; at most ``max_epochs``) and those weights are kept: a
committee gains from members trained a little past their own best point,
whose extra variance the average removes (``epoch_factor: 1`` keeps the
best epoch's weights).  With ``noise_scale`` *s* > 0,
every epoch trains on a new noisy realisation of the training rows: each
feature ``<name>`` that has an error feature ``<name>_err`` gets Gaussian
noise of *s* times that error (error-perturbed training).  ``n_networks``
networks, each with
its own seed and held-out rows, form a committee (as in ANNz, Collister &
Lahav 2004), which lowers the scatter of a single network.  Their combined
output is the raw output from which the PDF is made as described in
:mod:`astroml_pipe.stages.photoz.binned` (temperature scaling, smoothing
and the PIT recalibration of every photo-z stage).

Cross-fitting
-------------
With ``cross_fit: true`` (the default) the training rows are cut into
``n_networks`` random folds.  Network *k* trains on all folds but fold *k*
and early-stops on fold *k*, so every row trains all networks but one and
each network's predictions for its own fold are out of fold.  The PDF
settings (temperature and smoothing) and the PIT recalibration are fitted
on these out-of-fold predictions of *all* training rows, and the training
metrics (``validation_*``) are measured on them; ``validation_fraction``
and ``early_stopping_fraction`` are not used.  The committee's raw output
is the mean of the networks' log-probabilities (the logarithm of their
geometric mean, which the softmax of the PDF step renormalises; computed as
the mean of their logits, which differs only by a constant per object): it
stays on the scale of one network's log-probabilities, on which the PDF
settings were fitted, where the mean of the probabilities would be broader.

With ``cross_fit: false`` a random ``validation_fraction`` of the rows is
held out from all networks to fit the PDF settings and the recalibration
on the committee's output, and each network holds out its own random
``early_stopping_fraction`` of the other rows for early stopping; the
committee's raw output is then the logarithm of the networks' mean
probabilities.  With the default 10 networks, cross-fitting trains every
network on more rows (90% instead of 81%; the committee learns from all
rows instead of 90%) and fits the PDF on ten times as many rows, which
matters most for small training sets (docs/photoz.rst).

Training in parallel
--------------------
Each network depends only on its seed, its rows and the settings above, so
the networks train side by side in ``n_jobs`` worker processes (all cores
by default; joblib's ``loky`` backend, one BLAS thread each).  Threads would
not help: scikit-learn's per-batch work is Python code that holds the
interpreter lock.  The trained networks are identical, bit for bit, to
those trained one after another (``n_jobs: 1``); on 2 cores the default
trains in about half the time.  The networks train in float32
(scikit-learn keeps the dtype of its input), which is about a quarter
faster than float64 and as accurate within the scatter from one seed to
another (docs/photoz.rst); their weights are saved and applied in float32
anyway.

Pretraining on simulated galaxies
---------------------------------
With ``pretrain: {galaxies: N, epochs: E}`` (off for the stage on its own;
``{galaxies: 200000}`` in the default pipeline, which lowered σ_NMAD by about
3% on cosmoDC2), every network first makes ``E`` passes over ``N`` simulated
galaxies of its own (:mod:`astroml_pipe.stages.photoz.pretraining`) and then
trains and early-stops on the real rows as above.  ``N`` times
``n_networks`` galaxies are simulated and dealt out: network *k* of *n*
gets rows *k*, *k* + *n*, *k* + 2 *n*, ...  Different simulated galaxies
for every network make the members of the committee differ more than
different starting weights alone, which lowered σ_NMAD by another 1% on
cosmoDC2 (docs/photoz.rst).  The simulated rows get their
features from the stages before this one in the pipeline, are standardised
with the real rows' medians, means and scales and are labelled with the
real rows' bin edges; those outside the PDF grid are left out.  Only the
trained weights are saved: applying the model needs no simulation.

Saving
------
No pickle: the weights and biases of every layer of every network are saved
in ``networks.npz`` (read with ``allow_pickle=False``) and the forward pass
is done in NumPy (float32), so scikit-learn is not needed to apply a model.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.errors import ConfigError, InputError, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.models.tabular import fit_standardizer, load_standardizer, standardize, threads
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, group_index, hold_out
from astroml_pipe.stages.photoz.binned import BinnedPhotoZ
from astroml_pipe.stages.photoz.pretraining import PretrainSettings, simulated_catalog

__all__ = ["MLPPhotoZ", "calibrated_log_loss"]

log = logging.getLogger(__name__)

NETWORKS_FILE = "networks.npz"
#: Smallest improvement of the held-out log-loss that counts as one.
MIN_DELTA = 1e-4
#: Range of the temperature of :func:`calibrated_log_loss`.
_LOG_T_BOUNDS = (np.log(0.2), np.log(5.0))


def calibrated_log_loss(log_proba: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(log_proba / T)`` at its best ``T``.

    Parameters
    ----------
    log_proba : numpy.ndarray
        Log class probabilities (or logits), shape ``(n, n_classes)``.
    labels : numpy.ndarray
        True class indices, shape ``(n,)``.

    Returns
    -------
    float
        The smallest mean negative log-likelihood over temperatures ``T`` in
        [0.2, 5].
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(log_proba, dtype=np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s -= s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[rows, labels]))

    return float(minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-3}).fun)


def _logits(layers: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Output-layer logits of one network (alternating weights and biases of ReLU layers) for rows ``x``."""
    h = x
    for i in range(0, len(layers) - 2, 2):
        h = h @ layers[i]
        h += layers[i + 1]
        np.maximum(h, 0.0, out=h)
    logits = h @ layers[-2]
    logits += layers[-1]
    return logits


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in place."""
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


@dataclass(frozen=True)
class _Training:
    """What every network of a committee is trained with (sent to the worker processes)."""

    x: np.ndarray  # standardised training features, (n, n_features)
    labels: np.ndarray  # their bins
    classes: np.ndarray
    hidden_layers: tuple[int, ...]
    alpha: float
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    epoch_factor: float
    noise: tuple[list[int], np.ndarray] | None  # noisy columns and the noise sigma of each row
    pretrain_epochs: int  # passes over each network's simulated rows (if it has any)


def _train_network(setup: _Training, seed: int, train: np.ndarray, held: np.ndarray,
                   pretraining: tuple[np.ndarray, np.ndarray] | None) -> tuple[list[np.ndarray], int]:
    """One network pretrained on ``pretraining`` (its standardised simulated rows and their bins; None:
    no pretraining), trained on rows ``train``, early-stopped on the calibrated log-loss of rows ``held``
    and trained on to ``epoch_factor`` times its best epoch: (layers, epochs trained for them).

    A function of its arguments alone, so that networks can be trained in parallel processes with the
    same results as one after another.
    """
    from sklearn.neural_network import MLPClassifier

    x, labels = setup.x, setup.labels
    net = MLPClassifier(hidden_layer_sizes=setup.hidden_layers, alpha=setup.alpha,
                        learning_rate_init=setup.learning_rate, batch_size=min(setup.batch_size, len(train)),
                        random_state=seed)
    # partial_fit reseeds its shuffling from random_state at every call, so every epoch cuts the rows into
    # the same mini-batches (with new noise). Reshuffling them each epoch was tried and was not better
    # (docs/photoz.rst, the variants of the default).
    if pretraining is not None:  # learn from the simulated galaxies first
        x_pre, labels_pre = pretraining
        for _ in range(setup.pretrain_epochs):
            net.partial_fit(x_pre, labels_pre, classes=setup.classes)
    noise_rng = np.random.default_rng([seed, 1])

    def train_one_epoch() -> None:
        x_epoch = x[train]
        if setup.noise is not None:  # a new noisy realisation of the training rows
            columns, sigma = setup.noise
            x_epoch = x_epoch.copy()
            x_epoch[:, columns] += noise_rng.normal(size=(len(train), len(columns))) * sigma[train]
        net.partial_fit(x_epoch, labels[train], classes=setup.classes)

    def snapshot() -> list[np.ndarray]:
        layers = []
        for weight, bias in zip(net.coefs_, net.intercepts_):
            # Copies: the float32 weights are the live ones, which partial_fit updates in place.
            layers += [np.array(weight, dtype=np.float32), np.array(bias, dtype=np.float32)]
        return layers

    # The weights of the last patience + 1 epochs: the best epoch and every epoch after it are among them.
    recent: deque[tuple[int, list[np.ndarray]]] = deque(maxlen=setup.patience + 1)
    best, best_epoch, waited, done = np.inf, 0, 0, 0
    while done < setup.max_epochs:
        train_one_epoch()
        done += 1
        recent.append((done, snapshot()))
        # On the logits, which the temperature softmax makes the same as the log-probabilities, and which stay
        # finite where a float32 probability would underflow to 0.
        loss = calibrated_log_loss(_logits(recent[-1][1], x[held]), labels[held])
        if loss < best - MIN_DELTA:
            best, best_epoch, waited = loss, done, 0
        else:
            waited += 1
            if waited >= setup.patience:
                break
    # Train on to epoch_factor times the best epoch (within max_epochs) and keep those weights.
    best_epoch = max(best_epoch, 1)  # (a loss that never improved: NaN)
    target = min(setup.max_epochs, max(best_epoch, int(round(setup.epoch_factor * best_epoch))))
    while done < target:
        train_one_epoch()
        done += 1
    if done == target:
        return snapshot(), target
    return next(layers for epoch, layers in recent if epoch == target), target


class MLPPhotoZ(BinnedPhotoZ):
    """Photometric redshifts from a committee of dense networks classifying objects into redshift bins."""

    name = "photoz.mlp"
    predict_in_blocks = True  # small matrix products: fastest on blocks that stay in cache, on all cores
    params = COMMON_PARAMS + (
        Param("n_bins", int, 60, "Number of redshift bins (classes), cut at quantiles of the training redshifts.",
              minimum=2),
        Param("hidden_layers", list, [64, 64, 64], "Units of each hidden (ReLU) layer.", item_type=int),
        Param("n_networks", int, 10, "Networks in the committee, each with its own seed and held-out rows (folds).",
              minimum=1),
        Param("alpha", float, 1e-4, "L2 penalty on the weights.", minimum=0.0),
        Param("learning_rate", float, 1e-3, "Adam learning rate.", minimum=0.0),
        Param("batch_size", int, 200, "Rows per gradient step.", minimum=1),
        Param("max_epochs", int, 300, "Largest number of passes over the training rows.", minimum=1),
        Param("patience", int, 20,
              "Epochs without a better calibrated held-out log-loss before a network stops.", minimum=1),
        Param("epoch_factor", float, 1.5,
              "Train each network for this many times the epochs after which its held-out loss was lowest, and "
              "keep those weights (1: the weights of that best epoch).", minimum=1.0),
        Param("cross_fit", bool, True,
              "Cut the rows into n_networks folds; network k trains on the others and early-stops on fold k, and "
              "the PDF is fitted on these out-of-fold predictions of all rows (validation_fraction and "
              "early_stopping_fraction unused). false: hold out validation_fraction from all networks."),
        Param("early_stopping_fraction", float, 0.1,
              "Fraction of each network's training rows held out for early stopping (cross_fit: false only).",
              minimum=0.01, maximum=0.5),
        Param("noise_scale", float, 0.0,
              "Each epoch, add Gaussian noise of this many times its error to every feature that has an "
              "error feature '<name>_err' (0: off).", minimum=0.0),
        Param("n_jobs", int, -1,
              "Processes that train the networks side by side (-1: all cores); the results do not depend on it.",
              nullable=True),
        Param("pretrain", dict, None,
              "Pre-train every network on N simulated galaxies of its own first: {galaxies: N, epochs: 10, "
              "mag_limit: 25.3, limit_band: i, depth: lsst10yr} (only galaxies is required; LSST bands ugrizy "
              "only; null: off).",
              nullable=True),
    )

    def validate(self) -> None:
        super().validate()
        if not self.hidden_layers or any(units < 1 for units in self.hidden_layers):
            raise ConfigError(f"{self.where}: parameter 'hidden_layers' must be a non-empty list of positive integers")
        if self.noise_scale > 0 and self.features is None and not self.use_errors:
            raise ConfigError(f"{self.where}: noise_scale needs the colour errors as features; "
                              "set use_errors: true or noise_scale: 0")
        if self.cross_fit and self.n_networks < 2:
            raise ConfigError(f"{self.where}: cross_fit needs n_networks >= 2 folds; set n_networks >= 2 or "
                              "cross_fit: false")
        self._pretrain_settings()  # checked when the pipeline file is read

    def _has_validation(self) -> bool:
        return self.cross_fit or super()._has_validation()

    def _pretrain_settings(self) -> PretrainSettings | None:
        """The checked ``pretrain`` settings for the current column map (None: no pretraining)."""
        if self.pretrain is None:
            return None
        return PretrainSettings.from_param(self.pretrain, self.columns, self.where)

    # -- learning --------------------------------------------------------------------
    def pretraining_catalog(self) -> Table | None:
        """Simulated galaxies in the pipeline's input columns if ``pretrain`` is set, else None.

        ``galaxies`` for every network: ``pretrain['galaxies']`` times ``n_networks`` rows.
        """
        settings = self._pretrain_settings()
        if settings is None:
            return None
        return simulated_catalog(replace(settings, galaxies=settings.galaxies * self.n_networks), self.columns,
                                 self.target, self.grid.stop, self.random_state)

    def fit(self, table: Table, pretraining: Table | None = None, *,
            groups: np.ndarray | None = None) -> "MLPPhotoZ":
        """Train on ``table``, after pretraining on ``pretraining`` if ``pretrain`` is set.

        Parameters
        ----------
        table : astropy.table.Table
            Training rows: the feature columns and ``target``.
        pretraining : astropy.table.Table, optional
            Simulated rows with the same columns, as made by a pipeline (see
            :meth:`pretraining_catalog`), dealt out among the networks: network
            *k* of *n* pretrains on rows *k*, *k* + *n*, ...  Without them the
            simulated catalog is used as it is, which works only if the
            features are among its columns.
        groups : numpy.ndarray, optional
            A label for every row of ``table``: rows with the same label stay
            in the same fold and on the same side of every held-out split
            (see :meth:`PhotoZStage.fit`).

        Returns
        -------
        MLPPhotoZ
            ``self``, trained.
        """
        settings = self._pretrain_settings()
        if pretraining is not None and settings is None:
            raise ConfigError(f"{self.where}: pretraining rows were given but parameter 'pretrain' is null")
        self._pretraining_rows = None
        if settings is not None:
            # Checked before simulating: the simulation writes only the photometry and the target.
            have = (pretraining.colnames if pretraining is not None
                    else [*self.columns.photometry_columns(), self.target])
            missing = [name for name in self.fit_requires() if name not in have]
            if missing:
                raise InputError(
                    f"{self.where}: the simulated pretraining galaxies lack column(s) {missing}; fit the stage in "
                    "a Pipeline, whose earlier stages compute its features, or pass pretraining= rows that have them"
                )
            rows = self.pretraining_catalog() if pretraining is None else pretraining
            y_pre = np.asarray(rows[self.target], dtype=np.float64)
            inside = np.isfinite(y_pre) & (y_pre >= self.grid.start) & (y_pre <= self.grid.stop)
            if inside.sum() < self.n_networks:
                raise InputError(f"{self.where}: {int(inside.sum())} pretraining rows inside the redshift grid are "
                                 f"too few for {self.n_networks} networks (n_networks)")
            self._pretraining_rows = (self._matrix(rows, self.feature_columns())[inside], y_pre[inside],
                                      settings.epochs)
        try:
            super().fit(table, groups=groups)
        finally:
            self._pretraining_rows = None
        if settings is not None:
            self.training_metrics_.update(n_pretrain=int(inside.sum()), pretrain_epochs=settings.epochs)
        return self

    def _fit_and_validate(self, X: np.ndarray, y: np.ndarray) -> tuple[int, np.ndarray | None, np.ndarray]:
        if not self.cross_fit:
            return super()._fit_and_validate(X, y)
        self._fit_model(X, y)
        out_of_fold, self._out_of_fold = self._out_of_fold, None
        return len(y), out_of_fold, y

    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm

        labels = self._bins(y)
        self.classes_ = np.arange(len(self.bin_edges_) - 1)
        self.medians_, self.mean_, self.scale_ = fit_standardizer(X, self.where)
        # The networks train in float32 (scikit-learn keeps the dtype of its input; see the module docstring).
        x = standardize(X, self.medians_, self.mean_, self.scale_, np.float32)
        pretraining: list[tuple[np.ndarray, np.ndarray] | None] = [None] * self.n_networks
        pretrain_epochs = 0
        if self._pretraining_rows is not None:  # set by fit: simulated rows inside the grid, dealt out
            X_pre, y_pre, pretrain_epochs = self._pretraining_rows
            self._pretraining_rows = None  # (memory: 2,000,000 rows in the default pipeline)
            n = self.n_networks
            pretraining = [(standardize(X_pre[k::n], self.medians_, self.mean_, self.scale_, np.float32),
                            self._labels(y_pre[k::n])) for k in range(n)]
            del X_pre, y_pre
        setup = _Training(x=x, labels=labels, classes=self.classes_, hidden_layers=tuple(self.hidden_layers),
                          alpha=self.alpha, learning_rate=self.learning_rate, batch_size=self.batch_size,
                          max_epochs=self.max_epochs, patience=self.patience, epoch_factor=self.epoch_factor,
                          noise=self._noise_columns(X) if self.noise_scale > 0 else None,
                          pretrain_epochs=pretrain_epochs)
        seed = self.random_state if self.random_state is not None else 0
        folds = self._folds(len(labels), seed)
        self.pooling_ = "geometric" if self.cross_fit else "arithmetic"
        self._out_of_fold = np.empty((len(labels), len(self.classes_)), np.float32) if self.cross_fit else None
        # Every network depends only on its seed and rows, so they train in parallel processes (Python's
        # per-batch work keeps threads from helping) with the same results as one after another.
        workers = min(threads(self.n_jobs), self.n_networks)
        if workers > 1:
            results = Parallel(n_jobs=workers, backend="loky", return_as="generator")(
                delayed(_train_network)(setup, seed + k, *folds[k], pretraining[k]) for k in range(self.n_networks))
        else:
            results = (_train_network(setup, seed + k, *folds[k], pretraining[k]) for k in range(self.n_networks))
        self.networks_ = []
        self.epochs_ = []
        for k, (weights, epochs) in enumerate(tqdm(results, total=self.n_networks, desc="networks", unit="net",
                                                   leave=False, disable=not log.isEnabledFor(logging.INFO))):
            self.networks_.append(weights)
            self.epochs_.append(epochs)
            if self.cross_fit:
                held = folds[k][1]
                self._out_of_fold[held] = _logits(weights, x[held])
        log.info("%s: %d networks trained on %d process(es) for %s epochs", self.where, self.n_networks, workers,
                 self.epochs_)

    def _folds(self, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (training, held-out) rows of every network: complementary folds when cross-fitting, else a
        random ``early_stopping_fraction`` held out from each network.

        With groups (``fit(groups=...)``) the groups are split instead of the rows, so that the copies of a
        row are never both trained on and held out.
        """
        if self.cross_fit:
            group, n_groups = group_index(self._groups, n)
            if n_groups < self.n_networks:
                raise InputError(f"{self.where}: {n_groups} distinct training rows are too few for "
                                 f"{self.n_networks} folds (n_networks)")
            fold = np.empty(n_groups, np.intp)
            for k, part in enumerate(np.array_split(np.random.default_rng(seed).permutation(n_groups),
                                                    self.n_networks)):
                fold[part] = k
            fold = fold[group]
            return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(self.n_networks)]
        folds = []
        for k in range(self.n_networks):
            held, train = hold_out(n, self.early_stopping_fraction, np.random.default_rng(seed + k), self._groups,
                                   minimum=1)
            folds.append((train, held))
        return folds

    def _noise_columns(self, X: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Columns that have an error column, and the standard deviation of their training noise
        in standardised units ``(n, k)``: ``noise_scale`` times the error, 0 where it is not finite."""
        features = list(self.features_)
        pairs = [(j, features.index(f"{name}_err")) for j, name in enumerate(features) if f"{name}_err" in features]
        if not pairs:
            raise ConfigError(f"{self.where}: noise_scale needs error features '<name>_err' beside their features "
                              f"(features: {features})")
        columns = [j for j, _ in pairs]
        errors = np.stack([X[:, e] for _, e in pairs], axis=1).astype(np.float64)
        errors = np.where(np.isfinite(errors) & (errors > 0), errors, 0.0)
        return columns, (self.noise_scale * errors / self.scale_[columns]).astype(np.float32)

    # -- applying --------------------------------------------------------------------
    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        """The committee's log bin probabilities, up to a constant per row, shape ``(n, n_bins)``.

        With ``pooling_`` geometric, the mean of the networks' logits: the mean of their log-probabilities
        plus a constant per row, which the softmax of the PDF step removes (and no exponential is needed).
        With ``pooling_`` arithmetic, the logarithm of the networks' mean probabilities.
        """
        x = standardize(X, self.medians_, self.mean_, self.scale_, np.float32)
        total = np.zeros((len(X), len(self.classes_)), dtype=np.float32)
        for layers in self.networks_:
            logits = _logits(layers, x)
            total += logits if self.pooling_ == "geometric" else _softmax(logits)
        total /= len(self.networks_)
        if self.pooling_ == "geometric":
            return total
        return np.log(np.maximum(total, np.float32(1e-30)))

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "medians_": self.medians_.tolist(),
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
            "epochs_": [int(e) for e in self.epochs_],
            "pooling_": self.pooling_,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.medians_, self.mean_, self.scale_ = load_standardizer(state, len(self.features_), self.where)
        self.epochs_ = [int(e) for e in state.get("epochs_", [])]
        # Models saved before cross-fitting existed average the networks' probabilities.
        self.pooling_ = state.get("pooling_", "arithmetic")
        if self.pooling_ not in ("geometric", "arithmetic"):
            raise ModelError(f"{self.where}: unknown pooling_ {self.pooling_!r} in the saved model; "
                             "expected 'geometric' or 'arithmetic'")

    def save_artifacts(self, folder: Path) -> None:
        arrays = {f"net{k}_layer{i}": array for k, layers in enumerate(self.networks_) for i, array in enumerate(layers)}
        np.savez(folder / NETWORKS_FILE, **arrays)

    def load_artifacts(self, folder: Path) -> None:
        path = Path(folder) / NETWORKS_FILE
        if not path.exists():
            raise ModelError(f"model folder '{folder}' has no {NETWORKS_FILE}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (ValueError, OSError) as exc:
            raise ModelError(f"'{path}' is not a readable .npz file of network weights: {exc}") from None
        n_layers = len(self.hidden_layers) + 1
        widths = [len(self.features_), *self.hidden_layers, len(self.classes_)]
        networks = []
        for k in range(self.n_networks):
            layers = []
            for i in range(n_layers):
                weight, bias = arrays.get(f"net{k}_layer{2 * i}"), arrays.get(f"net{k}_layer{2 * i + 1}")
                if weight is None or bias is None or weight.shape != (widths[i], widths[i + 1]) \
                        or bias.shape != (widths[i + 1],):
                    raise ModelError(f"'{path}' does not hold network {k} of layer widths {widths}")
                layers += [weight.astype(np.float32), bias.astype(np.float32)]
            networks.append(layers)
        self.networks_ = networks
