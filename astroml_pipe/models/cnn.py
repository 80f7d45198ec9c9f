"""A small convolutional classifier for multi-band image cutouts.

The architecture is rebuilt from a plain, JSON-serialisable configuration
(:data:`DEFAULT_CONFIG`) by :func:`build_cnn`; a saved model is that
configuration plus a weights file, so it survives Keras upgrades (see
``DESIGN.md``).  Images are channels-last, ``(n, H, W, bands)``.

Architecture
    For each entry ``f`` of ``filters``: ``convs_per_block`` layers
    ``Conv2D(f, kernel_size, 'same', ReLU, L2)`` (with ``batch_norm``:
    convolution without bias, ``BatchNormalization``, then ReLU) followed by
    ``MaxPooling2D(2)``; then ``Flatten``,
    ``Dropout``, ``Dense(dense_units, ReLU, L2)``, ``Dropout`` and a single
    unit.  The last ``Dense`` layer, named ``"logit"``, gives the logit; the
    model's output is its sigmoid (layer ``"probability"``), so a stage can
    read logits for temperature scaling with :func:`logit_model`.

TensorFlow/Keras is imported inside the functions only, so importing this
module is cheap.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from astroml_pipe.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["DEFAULT_CONFIG", "augment", "build_cnn", "logit_model", "train_cnn"]

logger = logging.getLogger(__name__)

#: Default architecture: three conv blocks, 128 dense units.
DEFAULT_CONFIG: dict[str, Any] = {
    "filters": [32, 64, 128],
    "convs_per_block": 1,
    "batch_norm": False,
    "kernel_size": 3,
    "dense_units": 128,
    "dropout": 0.3,
    "l2": 1e-4,
}


def _check_config(config: Mapping[str, Any], input_shape: tuple[int, ...]) -> dict[str, Any]:
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise ConfigError(f"CNN config: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **dict(config)}
    filters = [int(f) for f in cfg["filters"]]
    if not filters or any(f < 1 for f in filters):
        raise ConfigError(f"CNN config: 'filters' must be a non-empty list of positive integers, got {cfg['filters']!r}")
    if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
        raise ConfigError(f"CNN input shape must be (height, width, bands), got {input_shape!r}")
    height, width = int(input_shape[0]), int(input_shape[1])
    if min(height, width) < 2 ** len(filters):
        raise ConfigError(
            f"CNN config: {len(filters)} pooling blocks need images of at least "
            f"{2 ** len(filters)} pixels, got {height} x {width}"
        )
    if not 0.0 <= float(cfg["dropout"]) < 1.0:
        raise ConfigError(f"CNN config: 'dropout' must be in [0, 1), got {cfg['dropout']!r}")
    if float(cfg["l2"]) < 0:
        raise ConfigError(f"CNN config: 'l2' must be >= 0, got {cfg['l2']!r}")
    if int(cfg["convs_per_block"]) < 1:
        raise ConfigError(f"CNN config: 'convs_per_block' must be >= 1, got {cfg['convs_per_block']!r}")
    return {
        "filters": filters,
        "convs_per_block": int(cfg["convs_per_block"]),
        "batch_norm": bool(cfg["batch_norm"]),
        "kernel_size": int(cfg["kernel_size"]),
        "dense_units": int(cfg["dense_units"]),
        "dropout": float(cfg["dropout"]),
        "l2": float(cfg["l2"]),
    }


def build_cnn(config: Mapping[str, Any], input_shape: tuple[int, int, int], *,
              seed: int | None = None) -> "keras.Model":
    """Build the (uncompiled) CNN described by ``config``.

    Parameters
    ----------
    config : mapping
        Keys of :data:`DEFAULT_CONFIG` (missing keys take the defaults):
        ``filters`` (list of int, one conv block each), ``convs_per_block``
        (int, convolutions before each pooling), ``batch_norm`` (bool,
        batch normalisation after each convolution), ``kernel_size``
        (int), ``dense_units`` (int), ``dropout`` (rate in [0, 1)) and
        ``l2`` (weight decay of conv and dense kernels).
    input_shape : tuple of int
        ``(height, width, bands)`` of one image.
    seed : int, optional
        If given, ``keras.utils.set_random_seed(seed)`` is called first so the
        initial weights are repeatable.

    Returns
    -------
    keras.Model
        Maps ``(n, H, W, bands)`` float32 images to ``(n, 1)`` probabilities.

    Raises
    ------
    ConfigError
        Unknown keys, invalid values, or images too small for the pooling.
    """
    import keras
    from keras import layers, regularizers

    cfg = _check_config(config, input_shape)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    reg = regularizers.L2(cfg["l2"]) if cfg["l2"] > 0 else None
    inputs = keras.Input(shape=tuple(int(s) for s in input_shape), name="image")
    x = inputs
    for i, f in enumerate(cfg["filters"]):
        for j in range(cfg["convs_per_block"]):
            # the first conv of a block keeps the name of the one-conv architecture
            name = f"conv{i}" if j == 0 else f"conv{i}_{j}"
            if cfg["batch_norm"]:
                x = layers.Conv2D(f, cfg["kernel_size"], padding="same", use_bias=False,
                                  kernel_regularizer=reg, name=name)(x)
                x = layers.BatchNormalization(name=f"{name}_bn")(x)
                x = layers.Activation("relu", name=f"{name}_relu")(x)
            else:
                x = layers.Conv2D(f, cfg["kernel_size"], padding="same", activation="relu",
                                  kernel_regularizer=reg, name=name)(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(cfg["dropout"], name="dropout0")(x)
    x = layers.Dense(cfg["dense_units"], activation="relu", kernel_regularizer=reg, name="dense")(x)
    x = layers.Dropout(cfg["dropout"], name="dropout1")(x)
    logit = layers.Dense(1, name="logit")(x)
    prob = layers.Activation("sigmoid", name="probability")(logit)
    return keras.Model(inputs, prob, name="cutout_cnn")


def logit_model(model: "keras.Model") -> "keras.Model":
    """A model sharing ``model``'s layers that outputs the logit (layer ``"logit"``)."""
    import keras

    return keras.Model(model.input, model.get_layer("logit").output, name=f"{model.name}_logit")


def augment(x: np.ndarray, rng: np.random.Generator, *, max_shift: int = 2) -> np.ndarray:
    """Randomly flip, rotate by multiples of 90 degrees and shift a batch of images.

    Every image gets its own transformation: a horizontal flip with
    probability 1/2, a rotation by ``k * 90`` degrees with ``k`` uniform in
    0-3 (0 or 2 for non-square images), and an integer shift of up to
    ``max_shift`` pixels along each axis.  Shifts roll the image (pixels
    leaving one side come back on the other), which is harmless for stamps
    whose edges are background.

    Parameters
    ----------
    x : ndarray
        Images ``(n, H, W, bands)``; not modified.
    rng : numpy.random.Generator
        Source of randomness.
    max_shift : int
        Largest shift in pixels (0 disables shifts).

    Returns
    -------
    ndarray
        The augmented batch, same shape and dtype as ``x``.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"augment expects images (n, H, W, bands), got shape {x.shape}")
    n, height, width = x.shape[:3]
    out = x.copy()
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    turns = rng.integers(0, 4, n) if height == width else 2 * rng.integers(0, 2, n)
    for k in (1, 2, 3):
        sel = turns == k
        if sel.any():
            out[sel] = np.rot90(out[sel], k=k, axes=(1, 2))
    if max_shift > 0:
        shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
        for i in np.flatnonzero(shifts.any(axis=1)):
            out[i] = np.roll(out[i], shift=(int(shifts[i, 0]), int(shifts[i, 1])), axis=(0, 1))
    return out


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, do_augment: bool,
             sample_weight: np.ndarray | None) -> Any:
    """A ``keras.utils.PyDataset`` of shuffled (and augmented) training batches."""
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self) -> int:
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int) -> tuple:
            rows = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            xb = augment(x[rows], self.rng) if do_augment else x[rows]
            if sample_weight is None:
                return xb, y[rows]
            return xb, y[rows], sample_weight[rows]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(x))

    return _Batches()


def _epoch_logger() -> Any:
    """A Keras callback that logs each epoch's losses and duration (INFO)."""
    import time

    import keras

    class _EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()) if "loss" in k or "acc" in k)
            logger.info("epoch %d: %s (%.0f s)", epoch + 1, shown, time.perf_counter() - self.start)

    return _EpochLog()


def train_cnn(model: "keras.Model", x: np.ndarray, y: np.ndarray, *, x_val: np.ndarray | None = None,
              y_val: np.ndarray | None = None, epochs: int = 30, batch_size: int = 128,
              class_weight: str | Mapping[int, float] | None = "balanced", patience: int = 5,
              seed: int = 0, augment_data: bool = True, learning_rate: float = 1e-3,
              reduce_lr_patience: int = 0) -> dict[str, list[float]]:
    """Train ``model`` with Adam and binary cross-entropy, stopping early.

    Early stopping watches the validation loss (the training loss when no
    validation set is given) and restores the weights of the best epoch.
    Seeds of Python, NumPy and TensorFlow are set with
    ``keras.utils.set_random_seed(seed)`` first, so a run is repeatable on
    one machine.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_cnn`; compiled here.
    x, y : ndarray
        Training images ``(n, H, W, bands)`` float32 and 0/1 labels.
    x_val, y_val : ndarray, optional
        Validation images and labels.
    epochs : int
        Largest number of epochs.
    batch_size : int
        Images per gradient step.
    class_weight : {"balanced"} or mapping or None
        Weight of the loss of each class; ``"balanced"`` gives class ``c``
        the weight ``n / (2 n_c)``.
    patience : int
        Epochs without improvement of the monitored loss before stopping.
    seed : int
        Seed of the weights, the shuffling, the augmentation and dropout.
    augment_data : bool
        Apply :func:`augment` to each training batch.
    learning_rate : float
        Adam learning rate.
    reduce_lr_patience : int
        If positive, divide the learning rate by 3 after this many epochs
        without improvement of the monitored loss (``ReduceLROnPlateau``,
        down to 1/100 of ``learning_rate``); 0 keeps it constant.

    Returns
    -------
    dict
        Keras history: per-epoch ``loss``, ``accuracy`` (and ``val_loss``,
        ``val_accuracy``) as lists of float, plus ``best_epoch`` (0-based,
        one-element list).
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"train_cnn: {len(x)} images and {len(y)} labels")
    weights = None
    if class_weight is not None:
        if class_weight == "balanced":
            counts = np.array([(y == 0).sum(), (y == 1).sum()], dtype=float)
            cw = {c: (len(y) / (2.0 * counts[c]) if counts[c] else 0.0) for c in (0, 1)}
        elif isinstance(class_weight, Mapping):
            cw = {int(k): float(v) for k, v in class_weight.items()}
        else:
            raise ConfigError(f"class_weight must be 'balanced', a mapping or None, got {class_weight!r}")
        weights = np.where(y > 0.5, cw.get(1, 1.0), cw.get(0, 1.0)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    monitor = "val_loss" if has_val else "loss"
    stop = keras.callbacks.EarlyStopping(monitor=monitor, patience=int(patience), restore_best_weights=True)
    callbacks = [stop, _epoch_logger()]
    if reduce_lr_patience > 0:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=1.0 / 3.0, patience=int(reduce_lr_patience), min_lr=learning_rate / 100.0))
    data = _batches(x, y, int(batch_size), int(seed), augment_data, weights)
    validation = None
    if has_val:
        validation = (np.asarray(x_val, dtype=np.float32), np.asarray(y_val, dtype=np.float32).reshape(-1))
    fitted = model.fit(data, validation_data=validation, epochs=int(epochs), callbacks=callbacks, verbose=0)
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    best = int(np.argmin(history[monitor])) if history.get(monitor) else 0
    history["best_epoch"] = [best]
    logger.info("CNN trained for %d epochs; best %s = %.4f at epoch %d",
                len(history.get("loss", [])), monitor, history[monitor][best] if history.get(monitor) else float("nan"),
                best + 1)
    return history
