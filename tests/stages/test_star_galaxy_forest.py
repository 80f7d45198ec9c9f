"""Star-galaxy random forest on morphology features of simulated LSST stamps."""

import numpy as np
import pytest

from astroml_pipe.core.errors import ModelError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.evaluate.classify import classification_metrics
from astroml_pipe.features.morphology import Morphology
from astroml_pipe.stages.classify.star_galaxy_forest import StarGalaxyForest

pytest.importorskip("galsim")
from astroml_pipe.simulate.cutouts import simulate_cutouts  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    table = simulate_cutouts(2000, random_state=11, stamp_size=24)
    train, test = table[:1500], table[1500:]
    pipe = Pipeline([
        ("morph", Morphology(bands=["g", "r", "i"])),
        ("stargal", StarGalaxyForest(bands=["g", "r", "i"], n_estimators=100, n_jobs=2)),
    ])
    pipe.fit(train)
    return pipe, test


def test_auc_on_held_out(trained):
    pipe, test = trained
    out = pipe.run(test)
    p = np.asarray(out["p_galaxy"])
    assert out["p_galaxy"].dtype == np.float32 and np.all((p >= 0) & (p <= 1))
    metrics = classification_metrics(p, out["is_galaxy"])
    assert metrics["roc_auc"] > 0.95, metrics


def test_save_load_round_trip(trained, tmp_path):
    pipe, test = trained
    stage = pipe["stargal"]
    stage.save(tmp_path / "sg")
    assert (tmp_path / "sg" / "model.skops").exists()
    again = StarGalaxyForest.load(tmp_path / "sg")
    features = pipe["morph"].run(test[:100])
    np.testing.assert_array_equal(np.asarray(stage.run(features)["p_galaxy"]),
                                  np.asarray(again.run(features)["p_galaxy"]))
    assert again.feature_columns() == stage.feature_columns()


def test_untrained_and_untrusted(tmp_path, trained):
    with pytest.raises(ModelError, match="not trained"):
        StarGalaxyForest().run(trained[1])
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    stage = trained[0]["stargal"]
    stage.save(tmp_path / "bad")
    sio.dump(LogisticRegression(), tmp_path / "bad" / "model.skops")
    with pytest.raises(ModelError, match="not trusted|expected RandomForestClassifier"):
        StarGalaxyForest.load(tmp_path / "bad")


def test_default_features():
    stage = StarGalaxyForest(bands=["r"], extra_features=["mag_r"])
    names = stage.requires()
    assert "morph_conc_r" in names and names[-1] == "mag_r"
    assert stage.fit_requires()[-1] == "is_galaxy"
