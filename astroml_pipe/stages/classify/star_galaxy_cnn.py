"""Star-galaxy separation with a CNN on multi-band cutouts.

The stage reads a cutout column ``(n, bands, H, W)`` (fluxes per pixel,
background subtracted, as made by :func:`astroml_pipe.simulate.simulate_cutouts`)
and writes the probability that each source is a galaxy.

Preprocessing (fitted on the training rows and saved with the model)
    1. Centre crop to ``crop x crop`` pixels; non-finite pixels become 0
       (the background level).
    2. Per-band arcsinh stretch ``a_b = arcsinh(x_b / s_b)``, where ``s_b``
       is the background noise of band ``b``: 1.4826 times the median
       absolute deviation of the pixels on the one-pixel border of the
       cropped training stamps.  Noise then has unit scale and bright
       cores are compressed logarithmically.
    3. Per-band standardisation ``(a_b - m_b) / d_b`` with the mean and
       standard deviation of ``a_b`` over all training pixels.
    4. Transpose to channels-last ``(n, crop, crop, bands)``.

Training
    A stratified ``validation_fraction`` of the rows is held out; the CNN of
    :mod:`astroml_pipe.models.cnn` is trained on the rest with early stopping
    on the validation loss (and, with ``reduce_lr_patience``, the learning
    rate divided by 3 whenever that loss stalls).  A temperature ``T`` is
    then fitted on the held-out rows by minimising the negative log-likelihood of
    ``sigmoid(logit / T)`` (Guo et al. 2017).  ``p_galaxy`` is the
    calibrated probability, ``p_galaxy_raw`` the network's own.  Temperature
    scaling corrects over- or under-confidence, not a change of class
    balance between training and application data.

Stacking on the stamp's photometry (``stack_photometry``)
    Faint stars and galaxies differ in colour as well as in shape, and a
    CNN trained on a few tens of thousands of stamps uses the colours less
    well than a tree model on measured colours does.  With
    ``stack_photometry: true`` a scikit-learn
    ``HistGradientBoostingClassifier`` is fitted on the training rows after
    the network, and its AUC, accuracy and ECE on the validation rows are
    recorded (``stacked_validation_*`` in the manifest).  Its inputs are
    the CNN logit and photometry measured on the same cropped stamps
    (:func:`stamp_photometry`): in a circular aperture of radius
    ``PHOTOMETRY_RADIUS`` pixels about the stamp centre, the flux ``F_b``
    of each band gives the asinh magnitude ``mu_b = arcsinh(F_b / (2
    sigma_b))`` (``sigma_b`` the aperture's noise from the band's
    background scale); the features are the colours of adjacent bands and
    the asinh magnitude of the band-summed flux.  ``p_galaxy`` is then the
    stacker's probability, ``p_galaxy_cnn`` the temperature-calibrated CNN
    probability and ``p_galaxy_raw`` the network's own.  Nothing but the
    stamps is used, so the stage still needs only the cutout column.

MC dropout
    With ``mc_dropout_samples > 0`` the network is also run that many
    times with dropout active, and the standard deviation of the calibrated
    probabilities is written as ``p_galaxy_std`` (it is random from run to
    run).

Saved model
    ``stage.json`` holds the architecture configuration, input shape and
    preprocessing statistics; ``weights.weights.h5`` the weights
    (``model.save_weights``); with stacking, ``stacker.skops`` holds the
    stacker (skops, loaded with an explicit list of trusted types).  Loading
    rebuilds the network from the configuration and loads the weights, so
    no Keras model file is deserialised.  ``history.json`` and
    ``history.png`` record training.

TensorFlow is imported only when the stage trains, loads or predicts.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import ConfigError, InputError, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage

__all__ = ["StarGalaxyCNN"]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.weights.h5"
HISTORY_FILE = "history.json"
HISTORY_PLOT = "history.png"
STACKER_FILE = "stacker.skops"
#: Radius in pixels of the aperture of the stacker's photometry.
PHOTOMETRY_RADIUS = 5.0
#: The only types a saved stacker may contain besides skops' defaults (``skops.io.get_untrusted_types``).
STACKER_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
#: Images per forward pass when predicting.
PREDICT_BATCH = 1024
_LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))


class StarGalaxyCNN(Stage):
    """Probability that a source is a galaxy, from a CNN on its multi-band cutout."""

    name = "classify.star_galaxy_cnn"
    trainable = True
    params = (
        Param("cutout", str, "cutout", "Column of cutouts (n, bands, H, W), background-subtracted flux per pixel."),
        Param("target", str, "is_galaxy", "Training label column: true/1 for galaxies, false/0 for stars."),
        Param("crop", int, 44, "Side of the centre crop of the stamps fed to the network (pixels).", minimum=2),
        Param("filters", list, [32, 64, 128], "Filters of the conv blocks (convs 3x3 + ReLU, then 2x2 max pooling).",
              item_type=int),
        Param("convs_per_block", int, 1, "Convolutions (3x3 + ReLU) in each block before its pooling.", minimum=1),
        Param("batch_norm", bool, False, "Batch normalisation after each convolution."),
        Param("dense_units", int, 128, "Units of the dense layer before the output.", minimum=1),
        Param("dropout", float, 0.3, "Dropout rate before and after the dense layer.", minimum=0.0, maximum=0.95),
        Param("l2", float, 1e-4, "L2 weight decay of the conv and dense kernels.", minimum=0.0),
        Param("learning_rate", float, 1e-3, "Adam learning rate.", minimum=0.0),
        Param("reduce_lr_patience", int, 0,
              "Epochs without a better validation loss before the learning rate is divided by 3 (0: constant).",
              minimum=0),
        Param("epochs", int, 30, "Largest number of training epochs.", minimum=1),
        Param("batch_size", int, 128, "Stamps per gradient step.", minimum=1),
        Param("patience", int, 5, "Epochs without a better validation loss before training stops.", minimum=1),
        Param("validation_fraction", float, 0.15,
              "Fraction of training rows held out for early stopping and temperature scaling.",
              minimum=0.01, maximum=0.5),
        Param("augment", bool, True, "Randomly flip, rotate by 90 degrees and shift training stamps."),
        Param("class_weight", str, "balanced", "'balanced' weights classes by inverse frequency; null: no weights.",
              choices=("balanced",), nullable=True),
        Param("random_state", int, 0, "Seed of the split, the weights, augmentation and dropout."),
        Param("mc_dropout_samples", int, 0, "Forward passes with dropout for p_galaxy_std (0: off).", minimum=0),
        Param("stack_photometry", bool, False,
              "Fit gradient-boosted trees that combine the CNN logit with aperture colours and magnitude "
              "measured on the stamps; p_galaxy is then their probability."),
    )
    #: The fitted stacker (``stack_photometry``), else None.
    stacker_: Any = None

    def validate(self) -> None:
        if not self.filters or any(f < 1 for f in self.filters):
            raise ConfigError(f"{self.where}: parameter 'filters' must be a non-empty list of positive integers")
        if self.crop < 2 ** len(self.filters):
            raise ConfigError(
                f"{self.where}: crop {self.crop} is too small for {len(self.filters)} pooling blocks "
                f"(needs >= {2 ** len(self.filters)})"
            )

    # -- columns ---------------------------------------------------------------
    def requires(self) -> list[str]:
        return [self.cutout]

    def fit_requires(self) -> list[str]:
        return [self.cutout, self.target]

    def provides(self) -> list[Col]:
        cols = [
            Col("p_galaxy", "", "float32", "probability that the source is a galaxy (CNN, temperature-calibrated)"),
            Col("p_galaxy_raw", "", "float32", "probability that the source is a galaxy (CNN, uncalibrated)"),
        ]
        if self.stack_photometry:
            cols[0] = Col("p_galaxy", "", "float32",
                          "probability that the source is a galaxy (CNN logit stacked with stamp photometry)")
            cols.append(Col("p_galaxy_cnn", "", "float32",
                            "probability that the source is a galaxy (CNN alone, temperature-calibrated)"))
        if self.mc_dropout_samples > 0:
            cols.append(Col("p_galaxy_std", "", "float32",
                            f"standard deviation of p_galaxy over {self.mc_dropout_samples} MC-dropout passes"))
        return cols

    # -- preprocessing -----------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {"filters": [int(f) for f in self.filters], "convs_per_block": int(self.convs_per_block),
                "batch_norm": bool(self.batch_norm), "kernel_size": 3, "dense_units": int(self.dense_units),
                "dropout": float(self.dropout), "l2": float(self.l2)}

    def _stamps(self, table: Table) -> np.ndarray:
        """The cutout column as float32 ``(n, bands, H, W)``, checked."""
        stamps = np.asarray(table[self.cutout], dtype=np.float32)
        if stamps.ndim != 4:
            raise InputError(
                f"{self.where}: column {self.cutout!r} must hold cutouts (n, bands, H, W), got shape {stamps.shape}"
            )
        return stamps

    def _crop(self, stamps: np.ndarray) -> np.ndarray:
        height, width = stamps.shape[2:]
        if height < self.crop or width < self.crop:
            raise InputError(f"{self.where}: stamps of {height} x {width} pixels are smaller than crop {self.crop}")
        top, left = (height - self.crop) // 2, (width - self.crop) // 2
        out = stamps[:, :, top:top + self.crop, left:left + self.crop]
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def _normalise(self, cropped: np.ndarray) -> np.ndarray:
        """Stretch, standardise and transpose cropped stamps to ``(n, crop, crop, bands)`` float32."""
        scale = np.asarray(self.scale_, dtype=np.float32)[None, :, None, None]
        offset = np.asarray(self.offset_, dtype=np.float32)[None, :, None, None]
        norm = np.asarray(self.norm_, dtype=np.float32)[None, :, None, None]
        x = (np.arcsinh(cropped / scale) - offset) / norm
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)

    def _bands(self, table: Table) -> Any:
        """Band names of the stamps: the cutout column's ``meta['bands']`` (as written by
        ``images.cutouts``), else the table's (as :func:`~astroml_pipe.simulate.simulate_cutouts`
        writes), else None."""
        bands = getattr(table[self.cutout], "meta", {}).get("bands")
        return table.meta.get("bands") if bands is None else bands

    def _check_stamps(self, table: Table, stamps: np.ndarray) -> None:
        """Refuse stamps that the trained model was not made for."""
        expected = tuple(self.stamp_shape_)
        if stamps.shape[1:] != expected:
            raise InputError(
                f"{self.where}: column {self.cutout!r} holds stamps of {stamps.shape[1]} bands x "
                f"{stamps.shape[2]} x {stamps.shape[3]} pixels, but the model was trained on "
                f"{expected[0]} bands x {expected[1]} x {expected[2]} pixels"
            )
        bands = self._bands(table)
        if self.bands_ and bands is not None and [str(b) for b in bands] != list(self.bands_):
            raise InputError(
                f"{self.where}: stamps have bands {list(bands)}, but the model was trained on {list(self.bands_)}"
            )

    # -- learning ----------------------------------------------------------------
    def fit(self, table: Table) -> "StarGalaxyCNN":
        """Fit the preprocessing, train the CNN and its temperature on ``table``."""
        from astroml_pipe.models.cnn import build_cnn, logit_model, train_cnn

        self.check_columns(table, self.fit_requires())
        stamps = self._stamps(table)
        y = _labels(table[self.target], self.where, self.target)
        n_gal = int(y.sum())
        if n_gal < 2 or len(y) - n_gal < 2:
            raise InputError(f"{self.where}: training needs at least 2 stars and 2 galaxies, got "
                             f"{len(y) - n_gal} stars and {n_gal} galaxies")
        cropped = self._crop(stamps)

        # Preprocessing statistics from the training rows only.
        train, val = _stratified_split(y, self.validation_fraction, self.random_state)
        scale, offset, norm = _band_statistics(cropped[train])
        self.scale_, self.offset_, self.norm_ = scale, offset, norm
        self.stamp_shape_ = [int(s) for s in stamps.shape[1:]]
        bands = self._bands(table)
        self.bands_ = [str(b) for b in bands] if bands is not None and len(bands) == stamps.shape[1] else []
        x = self._normalise(cropped)

        config = self._config()
        input_shape = (self.crop, self.crop, int(stamps.shape[1]))
        model = build_cnn(config, input_shape, seed=self.random_state)
        logger.info("%s: training on %d stamps, validating on %d", self.where, len(train), len(val))
        history = train_cnn(model, x[train], y[train], x_val=x[val], y_val=y[val], epochs=self.epochs,
                            batch_size=self.batch_size, class_weight=self.class_weight, patience=self.patience,
                            seed=self.random_state, augment_data=self.augment, learning_rate=self.learning_rate,
                            reduce_lr_patience=self.reduce_lr_patience)
        self.config_ = config
        self.input_shape_ = list(input_shape)
        self.history_ = history
        self.model_ = model
        self._logits = logit_model(model)
        logits = self._predict_logits(x[val])
        self.temperature_ = fit_temperature(logits, y[val])
        self.training_metrics_ = {
            "epochs": len(history.get("loss", [])),
            "best_epoch": int(history.get("best_epoch", [0])[0]) + 1,
            "n_validation": int(len(val)),
            **_probability_metrics(_sigmoid(logits / self.temperature_), y[val], "validation"),
            "n_train": int(len(train)), "n_stars": int(len(y) - n_gal), "n_galaxies": n_gal,
            "temperature": round(self.temperature_, 6),
        }
        logger.info("%s: temperature %.3f from %d validation stamps", self.where, self.temperature_, len(val))
        self.stacker_ = None
        if self.stack_photometry:
            inputs = _stacker_inputs(self._predict_logits(x[train]), self._photometry(cropped[train]))
            self.stacker_ = _fit_stacker(inputs, y[train], self.random_state)
            p_val = self._probability(logits, self._photometry(cropped[val]))
            self.training_metrics_.update(_probability_metrics(p_val, y[val], "stacked_validation"))
            logger.info("%s: stacker fitted on %d training stamps; validation AUC %.5f (CNN alone %.5f)",
                        self.where, len(train), self.training_metrics_["stacked_validation_auc"],
                        self.training_metrics_["validation_auc"])
        return self

    # -- applying ----------------------------------------------------------------
    def _predict_logits(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._logits.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32).reshape(-1)

    def _photometry(self, cropped: np.ndarray) -> np.ndarray:
        """The stacker's photometric inputs of cropped stamps (:func:`stamp_photometry`)."""
        return stamp_photometry(cropped, self.scale_, PHOTOMETRY_RADIUS)

    def _probability(self, logits: np.ndarray, photometry: np.ndarray | None) -> np.ndarray:
        """``p_galaxy`` from logits: the stacker's probability given the stamps' photometry, or
        (``photometry`` None) the temperature-calibrated sigmoid."""
        if photometry is None:
            return _sigmoid(logits / self.temperature_)
        if len(logits) == 0:
            return np.zeros(0, dtype=np.float32)
        return self.stacker_.predict_proba(_stacker_inputs(logits, photometry))[:, 1].astype(np.float32)

    def compute(self, table: Table) -> Mapping[str, np.ndarray]:
        stamps = self._stamps(table)
        self._check_stamps(table, stamps)
        cropped = self._crop(stamps)
        x = self._normalise(cropped)
        logits = self._predict_logits(x)
        photometry = None
        if self.stacker_ is not None:
            photometry = self._photometry(cropped)
        out = {"p_galaxy": self._probability(logits, photometry), "p_galaxy_raw": _sigmoid(logits)}
        if photometry is not None:
            out["p_galaxy_cnn"] = _sigmoid(logits / self.temperature_)
        if self.mc_dropout_samples > 0:
            out["p_galaxy_std"] = self._mc_dropout_std(x, photometry)
        return out

    def _mc_dropout_std(self, x: np.ndarray, photometry: np.ndarray | None) -> np.ndarray:
        """Standard deviation of ``p_galaxy`` over passes with dropout active.

        Batch normalisation layers are frozen (``trainable = False``), which
        keeps them on their learned statistics while ``training=True``
        switches dropout on.
        """
        for layer in self._logits.layers:
            if layer.__class__.__name__ == "BatchNormalization":
                layer.trainable = False
        n = len(x)
        mean = np.zeros(n, dtype=np.float64)
        sq = np.zeros(n, dtype=np.float64)
        for _ in range(self.mc_dropout_samples):
            for start in range(0, n, PREDICT_BATCH):
                part = slice(start, start + PREDICT_BATCH)
                z = np.asarray(self._logits(x[part], training=True), dtype=np.float64).reshape(-1)
                p = self._probability(z, None if photometry is None else photometry[part])
                mean[part] += p
                sq[part] += p * p
        k = self.mc_dropout_samples
        mean /= k
        return np.sqrt(np.maximum(sq / k - mean * mean, 0.0)).astype(np.float32)

    # -- persistence -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "config_": self.config_,
            "input_shape_": list(self.input_shape_),
            "stamp_shape_": list(self.stamp_shape_),
            "bands_": list(self.bands_),
            "scale_": [float(v) for v in self.scale_],
            "offset_": [float(v) for v in self.offset_],
            "norm_": [float(v) for v in self.norm_],
            "temperature_": float(self.temperature_),
            "training_metrics_": dict(getattr(self, "training_metrics_", {})),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self.config_ = dict(state["config_"])
            self.input_shape_ = [int(v) for v in state["input_shape_"]]
            self.stamp_shape_ = [int(v) for v in state["stamp_shape_"]]
            self.bands_ = [str(b) for b in state.get("bands_", [])]
            self.scale_ = np.asarray(state["scale_"], dtype=np.float32)
            self.offset_ = np.asarray(state["offset_"], dtype=np.float32)
            self.norm_ = np.asarray(state["norm_"], dtype=np.float32)
            self.temperature_ = float(state["temperature_"])
            self.training_metrics_ = dict(state.get("training_metrics_", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{self.where}: saved state is incomplete or invalid ({exc!r})") from None
        if not (np.isfinite(self.temperature_) and self.temperature_ > 0):
            raise ModelError(f"{self.where}: saved temperature {self.temperature_!r} is not positive and finite")

    def save_artifacts(self, folder: Path) -> None:
        from astroml_pipe.models.cnn import build_cnn

        folder = Path(folder)
        # A fresh copy of the network holds only the layer weights: saving the trained model
        # itself would add the optimizer's state (three times the size, useless for inference).
        clean = build_cnn(self.config_, tuple(self.input_shape_))
        clean.set_weights(self.model_.get_weights())
        clean.save_weights(str(folder / WEIGHTS_FILE))
        history = getattr(self, "history_", None)
        if history:
            (folder / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")
            _plot_history(history, folder / HISTORY_PLOT)
        if self.stacker_ is not None:
            import skops.io as sio

            sio.dump(self.stacker_, folder / STACKER_FILE)

    def load_artifacts(self, folder: Path) -> None:
        from astroml_pipe.models.cnn import build_cnn, logit_model

        path = Path(folder) / WEIGHTS_FILE
        if not path.exists():
            raise ModelError(f"model folder '{folder}' has no {WEIGHTS_FILE}")
        model = build_cnn(self.config_, tuple(self.input_shape_))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.load_weights(str(path))
        except Exception as exc:  # h5py/Keras raise many types for a bad or mismatched file
            raise ModelError(f"'{path}' does not hold weights for this architecture: {exc}") from None
        # Keras only warns when layers of the file and the model do not pair up, leaving
        # freshly initialised weights behind: that is a broken model, not a warning.
        for item in caught:
            if "keras" in item.filename:
                message = str(item.message).splitlines()[0]
                raise ModelError(f"'{path}' does not hold weights for this architecture: {message}")
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        self.model_ = model
        self._logits = logit_model(model)
        self.stacker_ = None
        if self.stack_photometry:
            from sklearn.ensemble import HistGradientBoostingClassifier

            from astroml_pipe.models.tabular import load_skops

            self.stacker_ = load_skops(Path(folder) / STACKER_FILE, STACKER_TRUSTED_TYPES,
                                       HistGradientBoostingClassifier)
        history_path = Path(folder) / HISTORY_FILE
        if history_path.exists():
            try:
                self.history_ = json.loads(history_path.read_text())
            except json.JSONDecodeError:
                logger.warning("%s: ignoring unreadable %s", self.where, history_path)


# -- helpers -----------------------------------------------------------------------
def stamp_photometry(cropped: np.ndarray, scale: np.ndarray, radius: float) -> np.ndarray:
    """Aperture colours and magnitude of stamps: the stacker's photometric inputs.

    Parameters
    ----------
    cropped : ndarray
        Stamps ``(n, bands, H, W)``, background-subtracted and finite.
    scale : ndarray
        Background noise per pixel of each band (same units as the stamps).
    radius : float
        Radius in pixels of the circular aperture about the stamp centre.

    Returns
    -------
    ndarray
        ``(n, bands)`` float64: the ``bands - 1`` colours ``mu_b - mu_(b+1)``
        of adjacent bands, then the asinh magnitude of the band-summed flux,
        where ``mu = -arcsinh(F / (2 sigma))`` for an aperture flux ``F`` of
        noise ``sigma`` (a magnitude-like scale, brighter is smaller, in
        units of ln 10 / 2.5 mag for bright sources; finite for faint and
        negative fluxes).
    """
    from astroml_pipe.features.morphology import aperture_weights

    height, width = cropped.shape[2:]
    yy, xx = np.mgrid[:height, :width]
    weights = aperture_weights(np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2), radius).astype(np.float64)
    flux = np.einsum("nbyx,yx->nb", cropped, weights, dtype=np.float64)
    sigma = np.asarray(scale, dtype=np.float64) * np.sqrt(np.sum(weights ** 2))
    mu = -np.arcsinh(flux / (2.0 * sigma))
    total = -np.arcsinh(flux.sum(axis=1) / (2.0 * np.sqrt(np.sum(sigma ** 2))))
    return np.column_stack([-np.diff(mu, axis=1), total])


def _stacker_inputs(logits: np.ndarray, photometry: np.ndarray) -> np.ndarray:
    """The stacker's input matrix: the CNN logit, then the stamp photometry."""
    return np.column_stack([np.asarray(logits, dtype=np.float64), photometry])


def _fit_stacker(inputs: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """Gradient-boosted trees on the stacker inputs, with fixed settings (no early stopping, so
    no further split of the rows)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    stacker = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, early_stopping=False,
                                             random_state=seed)
    return stacker.fit(inputs, (y > 0.5).astype(int))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)


def _labels(column: Any, where: str, name: str) -> np.ndarray:
    """0/1 float32 labels; `InputError` for masked, non-finite or other values."""
    if np.ma.is_masked(column):
        raise InputError(f"{where}: target column {name!r} has masked values")
    y = np.asarray(column)
    if y.dtype == bool:
        return y.astype(np.float32)
    y = y.astype(np.float64)
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise InputError(f"{where}: target column {name!r} must be boolean or 0/1")
    return y.astype(np.float32)


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a stratified train/validation split (at least one of each class held out)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in (0.0, 1.0):
        rows = rng.permutation(np.flatnonzero(y == c))
        k = min(max(1, int(round(fraction * len(rows)))), len(rows) - 1)
        val.append(rows[:k])
        train.append(rows[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _band_statistics(cropped: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band noise scale (border MAD) and mean/std of the arcsinh-stretched pixels."""
    border = np.concatenate([cropped[:, :, 0, :], cropped[:, :, -1, :], cropped[:, :, 1:-1, 0],
                             cropped[:, :, 1:-1, -1]], axis=2)  # (n, bands, perimeter)
    border = border.transpose(1, 0, 2).reshape(cropped.shape[1], -1).astype(np.float64)
    med = np.median(border, axis=1, keepdims=True)
    scale = 1.4826 * np.median(np.abs(border - med), axis=1)
    fallback = np.std(border, axis=1)
    scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1.0))
    stretched = np.arcsinh(cropped.astype(np.float64) / scale[None, :, None, None])
    offset = stretched.mean(axis=(0, 2, 3))
    norm = stretched.std(axis=(0, 2, 3))
    norm = np.where(norm > 0, norm, 1.0)
    return scale.astype(np.float32), offset.astype(np.float32), norm.astype(np.float32)


def _probability_metrics(p: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """``<prefix>_auc``, ``_accuracy`` and ``_ece`` of probabilities ``p`` for 0/1 labels ``y``.

    On the validation rows, which also chose the stopping epoch and the
    temperature, these figures are a little optimistic; held-out test data
    measure the model.
    """
    from astroml_pipe.evaluate.classify import classification_metrics

    metrics = classification_metrics(p, y > 0.5)
    return {
        f"{prefix}_auc": round(float(metrics["roc_auc"]), 6),
        f"{prefix}_accuracy": round(float(np.mean((p >= 0.5) == (y > 0.5))), 6),
        f"{prefix}_ece": round(float(metrics["ece"]), 6),
    }


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature ``T`` minimising the mean NLL of ``sigmoid(logits / T)`` for labels ``y``.

    Parameters
    ----------
    logits : ndarray
        Uncalibrated logits of held-out rows.
    y : ndarray
        Their 0/1 labels.

    Returns
    -------
    float
        ``T`` in [0.05, 20] (1 when there are no rows).
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(z) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, s) - t * s))

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def _plot_history(history: Mapping[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, as a PNG (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2))
    FigureCanvasAgg(fig)
    for ax, key in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            if history.get(name):
                epochs = np.arange(1, len(history[name]) + 1)
                ax.plot(epochs, history[name], style, label=name)
        best = history.get("best_epoch")
        if best:
            ax.axvline(best[0] + 1, color="0.6", lw=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
