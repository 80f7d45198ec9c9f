"""photoz.adaboost: boosted shallow trees whose weighted votes make the PDF."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

from astroml_pipe.cli import cli
from astroml_pipe.core.errors import ConfigError, ModelError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.stages.photoz import read_pdf
from astroml_pipe.stages.photoz.adaboost import AdaBoostPhotoZ
from astroml_pipe.stages.photoz.pdf import summarize, trapezoid_weights

YAML = """
name: test-adaboost
stages:
  - name: colors
    uses: features.colors
  - name: photoz
    uses: photoz.adaboost
    with: {n_estimators: 40, random_state: 3}
"""


@pytest.fixture(scope="module")
def trained(make_catalog):
    return Pipeline.from_yaml(YAML).fit(make_catalog(2000, seed=5))


@pytest.fixture(scope="module")
def test_table(make_catalog):
    return make_catalog(600, seed=6)


def test_registered_and_listed():
    assert get_stage_class("photoz.adaboost") is AdaBoostPhotoZ
    result = CliRunner().invoke(cli, ["stages"])
    assert result.exit_code == 0 and "photoz.adaboost" in result.output and "learning_rate" in result.output


def test_learns_redshift_with_normalised_pdfs(trained, test_table):
    out = trained.run(test_table)
    metrics = photoz_metrics(out["z_phot"], test_table["redshift"])
    assert metrics["sigma_nmad"] < 0.05 and metrics["outlier_fraction"] < 0.05
    z, pdf = read_pdf(out)
    np.testing.assert_allclose(pdf @ trapezoid_weights(len(z), z[1] - z[0]), 1.0, rtol=1e-6)
    stage = trained["photoz"]
    X = stage._matrix(trained["colors"].run(test_table), stage.features_)
    raw_pdf = stage.predict_pdf(X)
    assert raw_pdf.shape == (600, 301) and np.all(raw_pdf >= 0)
    np.testing.assert_allclose(raw_pdf @ trapezoid_weights(301, stage.grid.step), 1.0, rtol=1e-5)


def test_pdf_is_the_weighted_vote_of_the_trees(make_catalog):
    """Unsmoothed, the PDF's median is AdaBoost's own prediction (the weighted median of the trees)."""
    pipe = Pipeline.from_dict({"stages": [
        {"name": "colors", "uses": "features.colors"},
        {"name": "pz", "uses": "photoz.adaboost",
         "with": {"n_estimators": 30, "kernel_width": 0.0, "recalibrate": False}},
    ]}).fit(make_catalog(1500, seed=1))
    stage = pipe["pz"]
    X = stage._matrix(pipe["colors"].run(make_catalog(300, seed=2)), stage.features_)
    X[:20, 0] = np.nan  # imputed with the training median, as AdaBoost itself cannot take NaN
    filled = np.where(np.isnan(X), stage.medians_, X)
    median = summarize(stage.grid, stage.predict_pdf(X))["median"]
    assert np.max(np.abs(median - stage.model_.predict(filled))) < 2 * stage.grid.step
    votes = stage.estimator_predictions(X)
    assert votes.shape == (len(stage.model_.estimators_), 300)
    np.testing.assert_allclose(votes[:, 0], [t.predict(filled[:1])[0] for t in stage.model_.estimators_], rtol=1e-6)


def test_nan_features_use_saved_training_medians(trained, test_table):
    stage = trained["photoz"]
    assert stage.medians_.shape == (len(stage.features_),) and np.all(np.isfinite(stage.medians_))
    features = trained["colors"].run(test_table)
    X = stage._matrix(features, stage.features_)
    X[:, 2] = np.nan
    out = stage.run(features[:0])  # no rows: still works
    assert len(out) == 0
    pdf = stage.predict_pdf(X)
    assert np.all(np.isfinite(pdf))
    X[:, 2] = stage.medians_[2]
    np.testing.assert_array_equal(pdf, stage.predict_pdf(X))


def test_save_load_round_trip(trained, test_table, tmp_path):
    trained.save(tmp_path / "model")
    assert (tmp_path / "model" / "photoz" / "model.skops").exists()
    loaded = Pipeline.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded["photoz"].medians_, trained["photoz"].medians_)
    before, after = trained.run(test_table), loaded.run(test_table)
    for name in trained.output_columns():
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_refuses_untrusted_types(trained, tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import FunctionTransformer

    folder = trained["photoz"].save(tmp_path / "stage")
    sio.dump(FunctionTransformer(os.system), folder / "model.skops")
    with pytest.raises(ModelError, match=r"not trusted: \w+\.system"):
        AdaBoostPhotoZ.load(folder)
    sio.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), folder / "model.skops")
    with pytest.raises(ModelError, match="holds a model of type LinearRegression, expected AdaBoostRegressor"):
        AdaBoostPhotoZ.load(folder)


def test_random_state_reproducible(make_catalog):
    def fit(seed):
        stage = AdaBoostPhotoZ(features=["mag_g", "mag_r", "mag_i", "mag_z"], n_estimators=15, random_state=seed)
        return stage.fit(make_catalog(800, seed=3)).run(make_catalog(100, seed=4))

    first, second, other = fit(7), fit(7), fit(8)
    np.testing.assert_array_equal(first["z_phot_pdf"], second["z_phot_pdf"])
    np.testing.assert_array_equal(first["z_phot"], second["z_phot"])
    assert not np.array_equal(first["z_phot_pdf"], other["z_phot_pdf"])


@pytest.mark.parametrize(
    "params, named",
    [
        ({"loss": "huber"}, "loss"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.5}, "learning_rate"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"max_depth": "deep"}, "max_depth"),
        ({"n_estimator": 10}, "n_estimators"),  # typo: did-you-mean
    ],
)
def test_bad_params_name_the_parameter(params, named):
    with pytest.raises(ConfigError, match=f"'{named}'"):
        Pipeline.from_dict({"stages": [{"name": "pz", "uses": "photoz.adaboost", "with": params}]})
