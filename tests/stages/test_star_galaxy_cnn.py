"""The CNN star-galaxy stage learns from simulated cutouts, calibrates, saves and refuses bad stamps."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

pytest.importorskip("keras")

from astroml_pipe.core.errors import InputError, ModelError  # noqa: E402
from astroml_pipe.simulate.cutouts import simulate_cutouts  # noqa: E402
from astroml_pipe.stages.classify.star_galaxy_cnn import StarGalaxyCNN, fit_temperature  # noqa: E402

TINY = {"filters": [8, 16], "dense_units": 16, "epochs": 3, "crop": 20, "batch_size": 32, "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def trained():
    train = simulate_cutouts(600, stamp_size=24, random_state=1)
    test = simulate_cutouts(300, stamp_size=24, random_state=2)
    stage = StarGalaxyCNN(**TINY).fit(train)
    stage.train_table = train  # for the repeatability test
    return stage, test, stage.run(test)


def test_learns_and_calibrates(trained):
    from sklearn.metrics import roc_auc_score

    stage, test, out = trained
    assert out["p_galaxy"].dtype == np.float32 and out["p_galaxy_raw"].dtype == np.float32
    assert np.all((out["p_galaxy"] >= 0) & (out["p_galaxy"] <= 1))
    assert roc_auc_score(np.asarray(test["is_galaxy"]), out["p_galaxy"]) > 0.85
    assert np.isfinite(stage.temperature_) and stage.temperature_ > 0
    # Temperature scaling is monotone: the ranking of sources does not change.
    order = np.argsort(out["p_galaxy_raw"], kind="stable")
    assert np.all(np.diff(np.asarray(out["p_galaxy"])[order]) >= -1e-6)
    assert set(stage.history_) >= {"loss", "val_loss", "best_epoch"}
    metrics = stage.training_metrics_
    assert metrics["n_train"] + metrics["n_validation"] == 600 and metrics["epochs"] == len(stage.history_["loss"])
    assert 0.5 < metrics["validation_auc"] <= 1 and 0 <= metrics["validation_ece"] < 0.5


def test_training_is_repeatable(trained):
    stage, test, out = trained
    again = StarGalaxyCNN(**TINY).fit(stage.train_table).run(test[:100])
    np.testing.assert_array_equal(again["p_galaxy"], out["p_galaxy"][:100])


def test_fit_temperature_recovers_known_scale():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    assert fit_temperature(3.0 * true_logit, y) == pytest.approx(3.0, rel=0.08)


def test_save_load_round_trip(trained, tmp_path):
    stage, test, out = trained
    stage.save(tmp_path / "cnn")
    for name in ("stage.json", "weights.weights.h5", "history.json", "history.png"):
        assert (tmp_path / "cnn" / name).is_file()
    import h5py

    with h5py.File(tmp_path / "cnn" / "weights.weights.h5") as weights:
        assert "optimizer" not in weights  # only what inference needs
    state = json.loads((tmp_path / "cnn" / "stage.json").read_text())["state"]
    assert state["config_"]["filters"] == [8, 16] and state["stamp_shape_"] == [6, 24, 24]
    loaded = StarGalaxyCNN.load(tmp_path / "cnn")
    assert loaded.training_metrics_ == stage.training_metrics_
    again = loaded.run(test)
    np.testing.assert_array_equal(again["p_galaxy"], out["p_galaxy"])
    np.testing.assert_array_equal(again["p_galaxy_raw"], out["p_galaxy_raw"])


def test_refuses_stamps_of_other_shape(trained):
    stage, test, _ = trained
    fewer_bands = Table({"cutout": np.asarray(test["cutout"])[:, :5]})
    with pytest.raises(InputError, match="5 bands x 24 x 24 pixels, but the model was trained on 6 bands"):
        stage.run(fewer_bands)
    smaller = Table({"cutout": np.asarray(test["cutout"])[:, :, 1:23, 1:23]})
    with pytest.raises(InputError, match="22 x 22 pixels, but the model was trained on 6 bands x 24 x 24"):
        stage.run(smaller)
    other_bands = Table({"cutout": np.asarray(test["cutout"])}, meta={"bands": list("ugrizY")})
    with pytest.raises(InputError, match="bands"):
        stage.run(other_bands)


def test_refuses_weights_of_another_architecture(trained, tmp_path):
    stage, _, _ = trained
    folder = stage.save(tmp_path / "cnn")
    document = json.loads((folder / "stage.json").read_text())
    document["state"]["config_"]["filters"] = [8, 32]
    (folder / "stage.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="does not hold weights for this architecture"):
        StarGalaxyCNN.load(folder)
    document["state"]["config_"]["filters"] = [8, 16, 16]  # one more layer: Keras itself only warns
    (folder / "stage.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="does not hold weights for this architecture"):
        StarGalaxyCNN.load(folder)
    (folder / "weights.weights.h5").unlink()
    with pytest.raises(ModelError, match="has no weights.weights.h5"):
        StarGalaxyCNN.load(folder)


def test_mc_dropout_adds_std(trained):
    stage, test, _ = trained
    mc = StarGalaxyCNN(**TINY, mc_dropout_samples=4)
    mc.load_state_dict(stage.state_dict())
    mc.model_, mc._logits = stage.model_, stage._logits
    out = mc.run(test[:50])
    assert out["p_galaxy_std"].dtype == np.float32
    assert np.all(out["p_galaxy_std"] >= 0) and np.any(out["p_galaxy_std"] > 0)


def test_run_before_fit_is_an_error():
    with pytest.raises(ModelError, match="not trained"):
        StarGalaxyCNN().run(Table({"cutout": np.zeros((2, 5, 44, 44), "f4")}))


def test_import_does_not_load_tensorflow():
    code = ("import sys, astroml_pipe.stages.classify.star_galaxy_cnn, astroml_pipe.models.cnn; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stderr


def test_batch_norm_double_convs_and_lr_reduction(tmp_path):
    train = simulate_cutouts(200, stamp_size=20, bands=("g", "r"), random_state=5)
    test = simulate_cutouts(40, stamp_size=20, bands=("g", "r"), random_state=6)
    params = dict(filters=[4, 8], dense_units=8, crop=16, epochs=3, batch_size=32, batch_norm=True,
                  convs_per_block=2, reduce_lr_patience=1, patience=3)
    stage = StarGalaxyCNN(**params).fit(train)
    names = [layer.name for layer in stage.model_.layers]
    assert {"conv0", "conv0_1", "conv0_bn", "conv1_1_bn"} <= set(names)
    assert len(stage.history_["learning_rate"]) == len(stage.history_["loss"])
    out = stage.run(test)
    stage.save(tmp_path / "cnn")
    loaded = StarGalaxyCNN.load(tmp_path / "cnn")
    np.testing.assert_array_equal(loaded.run(test)["p_galaxy"], out["p_galaxy"])
    # MC dropout switches dropout on but keeps batch normalisation on its learned statistics:
    # with the dropout rate set to 0 the passes reproduce the deterministic prediction exactly.
    from astroml_pipe.models.cnn import build_cnn, logit_model

    net = build_cnn({**loaded.config_, "dropout": 0.0}, tuple(loaded.input_shape_))
    net.set_weights(loaded.model_.get_weights())
    mc = StarGalaxyCNN(**params, mc_dropout_samples=3)
    mc.load_state_dict(loaded.state_dict())
    mc.model_, mc._logits = net, logit_model(net)
    mc_out = mc.run(test)
    np.testing.assert_allclose(mc_out["p_galaxy_std"], 0.0, atol=1e-3)
    np.testing.assert_allclose(mc_out["p_galaxy"], out["p_galaxy"], atol=1e-3)
    # ...whereas batch statistics (BN left trainable) would move the predictions far more
    x = mc._normalise(mc._crop(np.asarray(test["cutout"], dtype=np.float32)))
    free = build_cnn({**loaded.config_, "dropout": 0.0}, tuple(loaded.input_shape_))
    free.set_weights(loaded.model_.get_weights())
    batch_logits = np.asarray(logit_model(free)(x, training=True)).ravel()
    assert np.abs(batch_logits - np.asarray(loaded._logits(x)).ravel()).mean() > 1e-2



def test_stamp_photometry_of_a_point_source():
    from astroml_pipe.stages.classify.star_galaxy_cnn import stamp_photometry

    stamps = np.zeros((2, 3, 11, 11))
    stamps[0, :, 5, 5] = [40.0, 20.0, 10.0]  # a point source at the centre, brightest in the first band
    stamps[0, :, 0, 0] = 1e6  # outside the 3-pixel aperture: ignored
    scale = np.array([1.0, 2.0, 0.5])
    out = stamp_photometry(stamps, scale, radius=3.0)
    assert out.shape == (2, 3)
    from astroml_pipe.features.morphology import aperture_weights

    yy, xx = np.mgrid[:11, :11]
    root = np.sqrt(np.sum(aperture_weights(np.hypot(yy - 5, xx - 5), 3.0).astype(float) ** 2))
    mu = -np.arcsinh(np.array([40.0, 20.0, 10.0]) / (2 * scale * root))
    np.testing.assert_allclose(out[0, :2], mu[:-1] - mu[1:])
    np.testing.assert_allclose(out[0, 2], -np.arcsinh(70.0 / (2 * root * np.sqrt(np.sum(scale ** 2)))))
    np.testing.assert_array_equal(out[1], 0.0)  # blank stamps: zero colours and zero asinh magnitude


def test_stacking_on_stamp_photometry(trained, tmp_path):
    from sklearn.metrics import roc_auc_score

    stage, test, out = trained
    stacked = StarGalaxyCNN(**TINY, stack_photometry=True).fit(stage.train_table)
    assert [c.name for c in stacked.provides()] == ["p_galaxy", "p_galaxy_raw", "p_galaxy_cnn"]
    result = stacked.run(test)
    # The network is trained exactly as without stacking; the stacker only adds p_galaxy.
    np.testing.assert_array_equal(result["p_galaxy_cnn"], out["p_galaxy"])
    np.testing.assert_array_equal(result["p_galaxy_raw"], out["p_galaxy_raw"])
    p = np.asarray(result["p_galaxy"])
    assert p.dtype == np.float32 and np.all((p >= 0) & (p <= 1))
    assert not np.allclose(p, result["p_galaxy_cnn"])
    assert roc_auc_score(np.asarray(test["is_galaxy"]), p) > 0.85
    metrics = stacked.training_metrics_
    assert 0.5 < metrics["stacked_validation_auc"] <= 1 and 0 <= metrics["stacked_validation_ece"] < 0.5
    assert metrics["validation_auc"] == stage.training_metrics_["validation_auc"]
    folder = stacked.save(tmp_path / "stacked")
    assert (folder / "stacker.skops").is_file()
    loaded = StarGalaxyCNN.load(folder)
    np.testing.assert_array_equal(loaded.run(test)["p_galaxy"], p)
    mc = StarGalaxyCNN(**TINY, stack_photometry=True, mc_dropout_samples=3)
    mc.load_state_dict(loaded.state_dict())
    mc.model_, mc._logits, mc.stacker_ = loaded.model_, loaded._logits, loaded.stacker_
    assert np.all(np.isfinite(mc.run(test[:20])["p_galaxy_std"]))
    (folder / "stacker.skops").unlink()
    with pytest.raises(ModelError, match="has no stacker.skops"):
        StarGalaxyCNN.load(folder)
