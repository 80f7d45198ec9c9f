"""photoz.mlp: a committee of dense networks classifying into redshift bins."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from astroml_pipe.cli import cli
from astroml_pipe.core.errors import ConfigError, ModelError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.models.tabular import standardize
from astroml_pipe.stages.photoz.mlp import MLPPhotoZ, _logits

YAML = """
name: test-mlp
stages:
  - name: colors
    uses: features.colors
  - name: photoz
    uses: photoz.mlp
    with: {{n_bins: 20, hidden_layers: [32, 32], n_networks: {n}, max_epochs: 40, patience: 6, random_state: {seed},
           cross_fit: {cross_fit}}}
"""


def fit(make_catalog, n=2, seed=3, cross_fit=True):
    return Pipeline.from_yaml(YAML.format(n=n, seed=seed, cross_fit=cross_fit)).fit(make_catalog(2000, seed=5))


@pytest.fixture(scope="module")
def trained(make_catalog):
    return fit(make_catalog)


@pytest.fixture(scope="module")
def trained_held_out(make_catalog):
    """Trained with cross_fit: false (a validation set held out from all networks)."""
    return fit(make_catalog, cross_fit=False)


@pytest.fixture(scope="module")
def test_table(make_catalog):
    return make_catalog(500, seed=6)


def test_registered_and_listed():
    assert get_stage_class("photoz.mlp") is MLPPhotoZ
    result = CliRunner().invoke(cli, ["stages"])
    assert result.exit_code == 0 and "photoz.mlp" in result.output and "n_networks" in result.output


def test_learns_with_early_stopping(trained, test_table):
    stage = trained.stages[-1]
    assert len(stage.networks_) == 2 and len(stage.epochs_) == 2
    assert all(1 <= e <= 40 for e in stage.epochs_)
    out = trained.run(test_table)
    metrics = photoz_metrics(out["z_phot"], test_table["redshift"])
    assert metrics["sigma_nmad"] < 0.06 and metrics["outlier_fraction"] < 0.08


@pytest.mark.parametrize("which", ["trained", "trained_held_out"])
def test_committee_output_pools_the_networks(which, request, test_table):
    pipe = request.getfixturevalue(which)
    stage = pipe.stages[-1]
    X = stage._matrix(pipe.stages[0].run(test_table), stage.features_)
    raw = stage._predict_raw(X)
    singles = []
    for layers in stage.networks_:
        one = MLPPhotoZ(**{k: getattr(stage, k) for k in ("n_bins", "hidden_layers")}, n_networks=1, cross_fit=False)
        one.medians_, one.mean_, one.scale_, one.classes_, one.networks_ = (
            stage.medians_, stage.mean_, stage.scale_, stage.classes_, [layers])
        one.pooling_ = "arithmetic"
        singles.append(np.exp(one._predict_raw(X)))
    assert not np.allclose(singles[0], singles[1])  # the members differ: own seeds, own held-out rows
    if stage.cross_fit:  # the mean of the log-probabilities (a geometric mean), up to a constant per row
        assert stage.pooling_ == "geometric"
        shift = raw - np.mean(np.log(singles), axis=0)
        np.testing.assert_allclose(shift, shift[:, :1] * np.ones_like(shift), atol=1e-4)
        assert np.ptp(shift[:, 0]) > 0.1  # a constant for each row, not one for all
    else:  # the log of the mean probabilities
        assert stage.pooling_ == "arithmetic"
        np.testing.assert_allclose(np.exp(raw).sum(axis=1), 1.0, rtol=1e-4)
        np.testing.assert_allclose(np.exp(raw), np.mean(singles, axis=0), rtol=1e-4, atol=1e-7)


def test_cross_fitting_holds_out_every_row_once(trained, make_catalog):
    stage = trained.stages[-1]
    n = 2000  # the training rows, all usable
    metrics = stage.training_metrics_
    # The PDF settings and the recalibration were fitted on out-of-fold predictions of all rows.
    assert metrics["n_train"] == n and metrics["n_validation"] == n
    folds = stage._folds(n, stage.random_state)
    held = np.concatenate([h for _, h in folds])
    np.testing.assert_array_equal(np.sort(held), np.arange(n))  # each row held out by exactly one network
    for train, h in folds:
        assert len(np.intersect1d(train, h)) == 0 and len(train) + len(h) == n
    # The training metrics are those of network k's predictions for fold k, not of the whole committee's.
    table = trained.stages[0].run(make_catalog(2000, seed=5))
    X = stage._matrix(table, stage.features_)
    x = standardize(X, stage.medians_, stage.mean_, stage.scale_, np.float32)
    raw = np.empty((n, len(stage.classes_)), np.float32)
    for (_, h), layers in zip(folds, stage.networks_):
        raw[h] = _logits(layers, x[h])
    assert not np.allclose(raw, stage._predict_raw(X), atol=1e-3)
    z_phot = stage._summaries(stage._pdf_from_raw(raw, **stage.pdf_settings_))[stage.point_estimate]
    out_of_fold = photoz_metrics(z_phot, np.asarray(table["redshift"]))
    assert metrics["validation_sigma_nmad"] == pytest.approx(out_of_fold["sigma_nmad"], rel=1e-3)
    assert metrics["validation_outlier_fraction"] == pytest.approx(out_of_fold["outlier_fraction"], abs=1e-3)


def test_networks_train_on_past_their_best_epoch(make_catalog):
    def fit_with(factor):
        pipe = Pipeline.from_yaml(f"""
stages:
  - {{name: colors, uses: features.colors}}
  - {{name: photoz, uses: photoz.mlp, with: {{n_bins: 20, hidden_layers: [64, 64], n_networks: 2, max_epochs: 200,
                                            patience: 4, learning_rate: 0.01, epoch_factor: {factor}}}}}
""")
        return pipe.fit(make_catalog(400, seed=1))["photoz"]

    best = fit_with(1.0)  # the weights of each network's best epoch
    assert all(4 < epochs < 200 for epochs in best.epochs_)  # stopped early, so there is a best epoch
    # The same networks up to their best epoch (same seeds), then trained on to 1.5 times it.
    later = fit_with(1.5)
    assert later.epochs_ == [round(1.5 * epochs) for epochs in best.epochs_]
    # One or two epochs past the best: weights kept from the epochs trained before early stopping ended.
    near = fit_with(1.02)
    assert near.epochs_ == [round(1.02 * epochs) for epochs in best.epochs_] != best.epochs_
    for a, b, c in zip(best.networks_, near.networks_, later.networks_):
        assert not np.allclose(a[0], b[0]) and not np.allclose(b[0], c[0])
    with pytest.raises(ConfigError, match="epoch_factor"):
        MLPPhotoZ(epoch_factor=0.5)


@pytest.mark.parametrize("cross_fit", [True, False])
def test_folds_keep_the_copies_of_a_row_together(cross_fit):
    stage = MLPPhotoZ(n_networks=4, cross_fit=cross_fit)
    rows = np.random.default_rng(0).integers(0, 300, 300)  # a bootstrap resample, as photoz.bagging gives
    stage._groups = rows  # what fit(groups=rows) sets while training
    folds = stage._folds(len(rows), 3)
    for train, held in folds:
        assert len(held) and len(train) + len(held) == len(rows)
        assert not set(rows[train]) & set(rows[held])
    if cross_fit:
        np.testing.assert_array_equal(np.sort(np.concatenate([h for _, h in folds])), np.arange(len(rows)))
    stage._groups = None  # every row its own group: copies fall on both sides
    assert any(set(rows[train]) & set(rows[held]) for train, held in stage._folds(len(rows), 3))


def test_held_out_validation_when_not_cross_fitting(trained_held_out, test_table):
    stage = trained_held_out.stages[-1]
    assert stage.training_metrics_["n_validation"] == 200 and stage.training_metrics_["n_train"] == 1800
    metrics = photoz_metrics(trained_held_out.run(test_table)["z_phot"], test_table["redshift"])
    assert metrics["sigma_nmad"] < 0.06 and metrics["outlier_fraction"] < 0.08


def test_cross_fitting_needs_two_networks_and_no_validation_fraction():
    with pytest.raises(ConfigError, match="cross_fit needs n_networks >= 2"):
        MLPPhotoZ(n_networks=1)
    MLPPhotoZ(validation_fraction=0.0)  # the out-of-fold rows are the validation rows
    with pytest.raises(ConfigError, match="chosen on validation rows"):
        MLPPhotoZ(validation_fraction=0.0, cross_fit=False)


def test_models_saved_before_cross_fitting_average_probabilities(trained_held_out, test_table, tmp_path):
    folder = trained_held_out.save(tmp_path / "model")
    path = folder / "photoz" / "stage.json"
    saved = json.loads(path.read_text())
    assert saved["state"].pop("pooling_") == "arithmetic"
    path.write_text(json.dumps(saved))  # as written by astroml-pipe before pooling_ was saved
    loaded = Pipeline.load(folder)
    assert loaded.stages[-1].pooling_ == "arithmetic"
    np.testing.assert_array_equal(loaded.run(test_table)["z_phot_pdf"], trained_held_out.run(test_table)["z_phot_pdf"])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_numpy_forward_pass_matches_scikit_learn():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    net = MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=50, random_state=0).fit(X, labels)
    stage = MLPPhotoZ(n_bins=3, hidden_layers=[8, 8], n_networks=1, cross_fit=False)
    stage.medians_, stage.mean_, stage.scale_ = np.zeros(4), np.zeros(4), np.ones(4)
    stage.pooling_ = "arithmetic"
    stage.classes_ = np.arange(3)
    stage.networks_ = [[a.astype(np.float32) for pair in zip(net.coefs_, net.intercepts_) for a in pair]]
    np.testing.assert_allclose(np.exp(stage._predict_raw(X.astype(np.float32))), net.predict_proba(X), atol=1e-5)


def test_training_is_repeatable_and_seeded(trained, make_catalog, test_table):
    again = fit(make_catalog)
    np.testing.assert_array_equal(again.run(test_table)["z_phot"], trained.run(test_table)["z_phot"])
    other = fit(make_catalog, seed=4)
    assert not np.array_equal(other.run(test_table)["z_phot"], trained.run(test_table)["z_phot"])


def test_parallel_training_gives_the_same_networks(trained, make_catalog):
    # The fixture trained its two networks in two processes (n_jobs: -1); these train one after the other.
    serial_yaml = YAML.format(n=2, seed=3, cross_fit=True).replace("random_state: 3,", "random_state: 3, n_jobs: 1,")
    serial = Pipeline.from_yaml(serial_yaml).fit(make_catalog(2000, seed=5)).stages[-1]
    parallel = trained.stages[-1]
    assert parallel.n_jobs == -1 and serial.n_jobs == 1
    assert serial.epochs_ == parallel.epochs_
    for one, other in zip(serial.networks_, parallel.networks_, strict=True):
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_and_bad_files(trained, test_table, tmp_path):
    folder = trained.save(tmp_path / "model")
    stage_dir = folder / "photoz"
    assert (stage_dir / "networks.npz").is_file()
    state = json.loads((stage_dir / "stage.json").read_text())["state"]
    assert len(state["mean_"]) == len(state["features_"]) and len(state["bin_edges_"]) == 21
    loaded = Pipeline.load(folder)
    np.testing.assert_array_equal(loaded.run(test_table)["z_phot_pdf"], trained.run(test_table)["z_phot_pdf"])
    # A weights file for another architecture is refused, as is a missing one.
    np.savez(stage_dir / "networks.npz", net0_layer0=np.zeros((3, 3), np.float32))
    with pytest.raises(ModelError, match="does not hold network 0"):
        Pipeline.load(folder)
    (stage_dir / "networks.npz").unlink()
    with pytest.raises(ModelError, match="has no networks.npz"):
        Pipeline.load(folder)


def test_noise_scale_without_errors_is_refused_when_the_pipeline_is_read():
    with pytest.raises(ConfigError, match="noise_scale needs the colour errors"):
        MLPPhotoZ(noise_scale=0.3, use_errors=False)


def test_bad_hidden_layers():
    with pytest.raises(ConfigError, match="hidden_layers"):
        MLPPhotoZ(hidden_layers=[])
    with pytest.raises(ConfigError, match="hidden_layers"):
        MLPPhotoZ(hidden_layers=[16, 0])


def test_calibrated_log_loss_undoes_overconfidence():
    from astroml_pipe.stages.photoz.mlp import calibrated_log_loss

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, size=(4000, 5))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    honest = calibrated_log_loss(logits, labels)
    # Three times over-confident logits carry the same information: the same calibrated loss...
    assert calibrated_log_loss(3 * logits, labels) == pytest.approx(honest, abs=2e-3)
    # ...whereas their plain log-loss is far worse.
    s = 3 * logits - (3 * logits).max(axis=1, keepdims=True)
    plain = np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(4000), labels])
    assert plain > honest + 0.3
    # Logits that know nothing lose log(5) per object.
    assert calibrated_log_loss(np.zeros((4000, 5)), labels) == pytest.approx(np.log(5), abs=1e-6)


def test_noise_scale_trains_on_noisy_realisations(make_catalog, trained, test_table):
    noisy_yaml = YAML.format(n=2, seed=3, cross_fit=True).replace("random_state: 3,",
                                                                  "random_state: 3, noise_scale: 0.5,")
    first = Pipeline.from_yaml(noisy_yaml).fit(make_catalog(2000, seed=5))
    second = Pipeline.from_yaml(noisy_yaml).fit(make_catalog(2000, seed=5))
    z = first.run(test_table)["z_phot"]
    np.testing.assert_array_equal(second.run(test_table)["z_phot"], z)  # seeded
    assert not np.array_equal(z, trained.run(test_table)["z_phot"])  # the noise changes the networks
    assert photoz_metrics(z, test_table["redshift"])["sigma_nmad"] < 0.06
    stage = first.stages[-1]
    X = stage._matrix(first.stages[0].run(make_catalog(2000, seed=5)), stage.features_)
    columns, sigma = stage._noise_columns(X)
    assert [stage.features_[j] for j in columns] == [f for f in stage.features_ if f + "_err" in stage.features_]
    assert sigma.shape == (2000, len(columns))  # one row per training row (cross-fitting uses all)
    assert np.all(sigma >= 0) and np.any(sigma > 0)


def test_noise_scale_needs_error_features(make_catalog):
    pipe = Pipeline.from_dict({"stages": [{"uses": "photoz.mlp", "with": {
        "features": ["mag_g", "mag_r"], "noise_scale": 0.5, "n_networks": 2, "max_epochs": 2}}]})
    with pytest.raises(ConfigError, match="noise_scale needs error features"):
        pipe.fit(make_catalog(300))


def test_predicting_block_by_block_matches_whole_chunks(trained, test_table, monkeypatch):
    import astroml_pipe.stages.photoz.base as base

    monkeypatch.setattr(base, "BLOCK_ROWS", 64)  # 500 rows: 8 blocks, on all cores
    assert MLPPhotoZ.predict_in_blocks
    blocks = trained.run(test_table)
    monkeypatch.setattr(MLPPhotoZ, "predict_in_blocks", False)
    whole = trained.run(test_table)
    np.testing.assert_allclose(blocks["z_phot"], whole["z_phot"], rtol=1e-5)
    np.testing.assert_allclose(blocks["z_phot_pdf"], whole["z_phot_pdf"], atol=2)
