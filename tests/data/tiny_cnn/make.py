"""Rebuild the committed tiny CNN star-galaxy model and its reference predictions.

    python tests/data/tiny_cnn/make.py

Writes ``model/`` (a trained pipeline folder), ``stamps.fits`` (24 stamps,
2 bands, 20 x 20 pixels) and ``expected.json`` (their ``p_galaxy`` and
``p_galaxy_raw``).  ``tests/stages/test_committed_cnn_model.py`` loads the
model with the installed Keras and checks that it reproduces the
predictions, so a Keras or TensorFlow upgrade that cannot read the saved
weights, or reads them differently, fails a test.  Rebuild only when the
saved format changes on purpose.
"""

import json
from pathlib import Path

import numpy as np

from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.io.catalogs import write_catalog
from astroml_pipe.simulate.cutouts import simulate_cutouts

HERE = Path(__file__).resolve().parent
PIPELINE = {
    "name": "tiny-cnn",
    "version": 1,
    "stages": [{"name": "cnn", "uses": "classify.star_galaxy_cnn",
                "with": {"filters": [4, 8], "dense_units": 8, "crop": 16, "epochs": 6, "batch_size": 32, "learning_rate": 3e-3,
                         "random_state": 3}}],
}


def main() -> None:
    train = simulate_cutouts(400, stamp_size=20, bands=("g", "r"), random_state=11)
    stamps = simulate_cutouts(24, stamp_size=20, bands=("g", "r"), random_state=12)
    pipe = Pipeline.from_dict(PIPELINE)
    pipe.fit(train)
    pipe.save(HERE / "model", overwrite=True)
    out = pipe.stages[0].compute(stamps)
    write_catalog(stamps["id", "is_galaxy", "cutout"], HERE / "stamps.fits", overwrite=True)
    expected = {k: np.asarray(v, dtype=float).round(7).tolist() for k, v in out.items()}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
