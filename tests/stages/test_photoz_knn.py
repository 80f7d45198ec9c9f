"""photoz.knn: nearest training objects in standardised feature space make the PDF."""

import numpy as np
import pytest
from click.testing import CliRunner

from astroml_pipe.cli import cli
from astroml_pipe.core.errors import AstromlPipeWarning, ConfigError, ModelError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.stages.photoz import read_pdf
from astroml_pipe.stages.photoz.knn import KNNPhotoZ
from astroml_pipe.stages.photoz.pdf import summarize, trapezoid_weights

YAML = """
name: test-knn
stages:
  - name: colors
    uses: features.colors
  - name: photoz
    uses: photoz.knn
    with: {n_neighbors: 20}
"""


@pytest.fixture(scope="module")
def trained(make_catalog):
    return Pipeline.from_yaml(YAML).fit(make_catalog(2000, seed=5))


@pytest.fixture(scope="module")
def test_table(make_catalog):
    return make_catalog(600, seed=6)


def test_registered_and_listed():
    assert get_stage_class("photoz.knn") is KNNPhotoZ
    result = CliRunner().invoke(cli, ["stages"])
    assert result.exit_code == 0 and "photoz.knn" in result.output and "n_neighbors" in result.output


def test_learns_redshift_with_normalised_pdfs(trained, test_table):
    out = trained.run(test_table)
    metrics = photoz_metrics(out["z_phot"], test_table["redshift"])
    assert metrics["sigma_nmad"] < 0.05 and metrics["outlier_fraction"] < 0.05
    z, pdf = read_pdf(out)
    np.testing.assert_allclose(pdf @ trapezoid_weights(len(z), z[1] - z[0]), 1.0, rtol=1e-6)
    stage = trained["photoz"]
    raw_pdf = stage.predict_pdf(stage._matrix(trained["colors"].run(test_table), stage.features_))
    assert raw_pdf.shape == (600, 301) and np.all(raw_pdf >= 0)
    np.testing.assert_allclose(raw_pdf @ trapezoid_weights(301, stage.grid.step), 1.0, rtol=1e-5)


def test_standardisation_is_fitted_state(trained):
    stage = trained["photoz"]
    n = len(stage.features_)
    assert stage.mean_.shape == stage.scale_.shape == stage.medians_.shape == (n,)
    np.testing.assert_allclose(stage.train_features_.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(stage.train_features_.std(axis=0), 1.0, rtol=1e-9)
    assert len(stage.train_redshifts_) == stage.training_metrics_["n_train"]


@pytest.mark.parametrize("recalibrate", [False, True])
def test_pdf_of_a_training_object_peaks_at_its_redshift(make_catalog, recalibrate):
    train = make_catalog(1500, seed=11)
    stage = KNNPhotoZ(features=["mag_u", "mag_g", "mag_r", "mag_i", "mag_z", "mag_y"], kernel_width=0.02,
                      validation_fraction=0.2 if recalibrate else 0.0, recalibrate=recalibrate)
    stage.fit(train)
    # Rows that are in the neighbour set (with validation rows, some are held out).
    rows = [i for i in range(300) if np.any(stage.train_redshifts_ == train["redshift"][i])][:100]
    out = stage.run(train[rows])
    np.testing.assert_allclose(out["z_phot_mode"], train["redshift"][rows], atol=stage.grid.step)


def test_nan_features_are_imputed_by_training_medians(trained, test_table):
    stage = trained["photoz"]
    features = trained["colors"].run(test_table)
    assert np.isnan(features["color_z_y"]).any()  # the fixture has unobserved y-band rows
    X = stage._matrix(features, stage.features_)
    X[:100, 1] = np.nan
    X[100:110, :] = np.nan  # nothing observed: the neighbours of the median object
    pdf = stage.predict_pdf(X)
    assert np.all(np.isfinite(pdf))
    np.testing.assert_allclose(pdf @ trapezoid_weights(301, stage.grid.step), 1.0, rtol=1e-5)
    filled = np.where(np.isnan(X), stage.medians_.astype(np.float32), X)
    np.testing.assert_array_equal(pdf, stage.predict_pdf(filled))
    out = stage.run(features)
    assert np.all(np.isfinite(out["z_phot"]))


def test_save_load_round_trip_without_pickle(trained, test_table, tmp_path):
    trained.save(tmp_path / "model")
    folder = tmp_path / "model" / "photoz"
    for name in ("train_features.npy", "train_redshifts.npy"):
        np.load(folder / name, allow_pickle=False)
    loaded = Pipeline.load(tmp_path / "model")
    before, after = trained.run(test_table), loaded.run(test_table)
    for name in trained.output_columns():
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_load_refuses_inconsistent_arrays(trained, tmp_path):
    folder = trained["photoz"].save(tmp_path / "stage")
    np.save(folder / "train_redshifts.npy", np.zeros(3))
    with pytest.raises(ModelError, match="do not hold"):
        KNNPhotoZ.load(folder)
    np.save(folder / "train_redshifts.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="not a readable numeric"):
        KNNPhotoZ.load(folder)


def test_random_state_reproducible(make_catalog):
    def fit(seed):
        stage = KNNPhotoZ(features=["mag_g", "mag_r", "mag_i"], n_neighbors=10, random_state=seed)
        return stage.fit(make_catalog(800, seed=3)).run(make_catalog(100, seed=4))

    first, second, other = fit(7), fit(7), fit(8)  # the seed chooses the validation rows
    np.testing.assert_array_equal(first["z_phot_pdf"], second["z_phot_pdf"])
    assert not np.array_equal(first["z_phot_pdf"], other["z_phot_pdf"])


def test_uniform_weights_and_more_neighbours_than_rows(make_catalog):
    stage = KNNPhotoZ(features=["mag_g", "mag_r"], n_neighbors=50, weights="uniform", algorithm="brute",
                      kernel_width=0.05, validation_fraction=0.0, recalibrate=False)
    with pytest.warns(AstromlPipeWarning, match="using 30 neighbours"):
        stage.fit(make_catalog(30, seed=1))
    out = stage.run(make_catalog(5, seed=2))
    # Every object sees all 30 training objects with equal weights: the same PDF.
    assert np.all(out["z_phot_pdf"] == out["z_phot_pdf"][0])
    assert summarize(stage.grid, stage.predict_pdf(np.zeros((1, 2), np.float32)))["mean"].shape == (1,)


@pytest.mark.parametrize(
    "params, named",
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"weights": "gaussian"}, "weights"),
        ({"algorithm": "annoy"}, "algorithm"),
        ({"n_neighbours": 5}, "n_neighbors"),  # British spelling: did-you-mean
    ],
)
def test_bad_params_name_the_parameter(params, named):
    with pytest.raises(ConfigError, match=f"'{named}'"):
        Pipeline.from_dict({"stages": [{"name": "pz", "uses": "photoz.knn", "with": params}]})
