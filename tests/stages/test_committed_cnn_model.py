"""A CNN model saved by an earlier version of the package still loads and predicts the same.

The model folder, its input stamps and reference predictions are committed
under ``tests/data/tiny_cnn`` (rebuilt by ``tests/data/tiny_cnn/make.py``).
The network is rebuilt from its configuration and the weights file loaded,
so this fails if a Keras or TensorFlow upgrade can no longer read the
weights or computes something else with them.
"""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from astroml_pipe.core.pipeline import Pipeline  # noqa: E402
from astroml_pipe.io.catalogs import read_catalog  # noqa: E402

DATA = Path(__file__).parents[1] / "data" / "tiny_cnn"


def test_committed_model_reproduces_its_predictions():
    pipe = Pipeline.load(DATA / "model")
    stamps = read_catalog(DATA / "stamps.fits")
    expected = json.loads((DATA / "expected.json").read_text())
    out = pipe.stages[0].compute(stamps)
    for key in ("p_galaxy", "p_galaxy_raw"):
        np.testing.assert_allclose(out[key], expected[key], atol=2e-5, err_msg=key)
    # the reference predictions are not trivial: they vary and rank the classes
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(np.asarray(stamps["is_galaxy"]), expected["p_galaxy"]) > 0.8


def test_committed_model_refuses_other_stamps():
    from astroml_pipe.core.errors import InputError

    pipe = Pipeline.load(DATA / "model")
    stamps = read_catalog(DATA / "stamps.fits")
    stamps["cutout"] = np.asarray(stamps["cutout"])[:, :1]
    with pytest.raises(InputError, match="1 bands x 20 x 20 pixels, but the model was trained on 2 bands"):
        pipe.stages[0].compute(stamps)
