"""The photo-z stages learn redshift from colours and write honest PDFs."""

import numpy as np
import pytest

from astroml_pipe.core.errors import InputError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.stages.photoz import read_pdf


@pytest.mark.parametrize("kind", ["catboost", "random_forest", "mlp"])
def test_learns_redshift_and_intervals_cover(kind, tiny_yaml, make_catalog):
    pipe = Pipeline.from_yaml(tiny_yaml(kind)).fit(make_catalog(3000, seed=5))
    test = make_catalog(1000, seed=6)
    out = pipe.run(test)
    metrics = photoz_metrics(out["z_phot"], test["redshift"])
    assert metrics["sigma_nmad"] < 0.05 and metrics["outlier_fraction"] < 0.05
    assert np.all(out["z_phot_lo"] <= out["z_phot_median"]) and np.all(out["z_phot_median"] <= out["z_phot_hi"])
    inside = (test["redshift"] >= out["z_phot_lo"]) & (test["redshift"] <= out["z_phot_hi"])
    assert 0.4 < inside.mean() < 0.98  # a 68% interval: neither absurdly narrow nor absurdly wide
    z, pdf = read_pdf(out)
    assert pdf.shape == (1000, 301)
    # The stored median is where the CDF of the stored PDF crosses one half.
    cdf = np.concatenate([np.zeros((1000, 1)), np.cumsum(0.5 * (pdf[:, 1:] + pdf[:, :-1]) * (z[1] - z[0]), axis=1)], axis=1)
    at_median = [np.interp(m, z, c) for m, c in zip(out["z_phot_median"], cdf)]
    np.testing.assert_allclose(at_median, 0.5, atol=0.01)


def test_custom_features_and_prefix(make_catalog):
    pipe = Pipeline.from_dict({"stages": [
        {"name": "pz", "uses": "photoz.random_forest",
         "with": {"features": ["mag_g", "mag_r", "mag_i"], "prefix": "zrf", "n_estimators": 5,
                  "pdf_grid": {"start": 0, "stop": 4, "num": 41}}},
    ]})
    out = pipe.fit(make_catalog(500)).run(make_catalog(50, seed=9))
    assert out["zrf_pdf"].shape == (50, 41) and out.meta["PDFMAX1"] == 4.0
    assert "z_phot" not in out.colnames
    np.testing.assert_array_equal(out["zrf"], out["zrf_mode"])


def test_point_estimate_choice(make_catalog):
    pipe = Pipeline.from_dict({"stages": [{"uses": "photoz.random_forest", "with": {
        "features": ["mag_g", "mag_r", "mag_i"], "n_estimators": 5, "point_estimate": "median"}}]})
    out = pipe.fit(make_catalog(500)).run(make_catalog(50, seed=9))
    np.testing.assert_array_equal(out["z_phot"], out["z_phot_median"])
    assert out["z_phot"].description == "photometric redshift: median of the PDF"


def test_target_problems(make_catalog):
    train = make_catalog(200)
    train["redshift"][:] = np.nan
    pipe = Pipeline.from_dict({"stages": [{"uses": "photoz.random_forest", "with": {"features": ["mag_g"], "n_estimators": 3}}]})
    with pytest.warns(UserWarning, match="ignoring 200 training rows"), pytest.raises(InputError, match="only 0 usable training rows"):
        pipe.fit(train)


def test_fixed_kernel_without_validation_uses_plain_softmax(make_catalog):
    pipe = Pipeline.from_dict({"stages": [{"uses": "photoz.catboost", "with": {
        "features": ["mag_g", "mag_r"], "iterations": 5, "n_bins": 5, "validation_fraction": 0.0, "kernel_width": 0.02,
        "recalibrate": False}}]})
    pipe.fit(make_catalog(300))
    assert pipe.stages[0].pdf_settings_ == {"smoothing": 0.0, "width": 0.02, "temperature": 1.0}


def test_kernel_width_null_needs_validation_rows():
    from astroml_pipe.core.errors import ConfigError

    with pytest.raises(ConfigError, match="set validation_fraction > 0 or give kernel_width"):
        Pipeline.from_dict({"stages": [{"uses": "photoz.random_forest", "with": {"validation_fraction": 0.0}}]})
    with pytest.raises(ConfigError, match="recalibrate needs validation rows"):
        Pipeline.from_dict({"stages": [{"uses": "photoz.random_forest",
                                        "with": {"validation_fraction": 0.0, "kernel_width": 0.01}}]})


def test_groups_keep_the_copies_of_a_row_on_one_side_of_the_validation_split(make_catalog):
    """With groups (as bagging gives its bootstrap resamples), no held-out row is also trained on."""
    pipe = Pipeline.from_dict({"stages": [
        {"name": "pz", "uses": "photoz.random_forest", "with": {"features": ["mag_g", "mag_r", "mag_i"],
                                                              "n_estimators": 5, "validation_fraction": 0.2}},
    ]})
    stage = pipe["pz"]
    table = make_catalog(400, seed=2)
    rows = np.random.default_rng(0).integers(0, len(table), len(table))  # a bootstrap resample: copies of rows
    seen = {}
    fit_model, predict_raw = stage._fit_model, stage._predict_raw

    def record(name, method):
        def wrapped(X, *args):
            seen.setdefault(name, {tuple(x) for x in X.tolist()})
            return method(X, *args)
        return wrapped

    stage._fit_model, stage._predict_raw = record("train", fit_model), record("held", predict_raw)
    stage.fit(table[rows], groups=rows)
    assert seen["held"] and not seen["held"] & seen["train"]
    assert stage.training_metrics_["n_train"] + stage.training_metrics_["n_validation"] == len(rows)
    seen.clear()
    stage.fit(table[rows])  # every row its own group: copies of a row fall on both sides
    assert seen["held"] & seen["train"]
    with pytest.raises(InputError, match="groups must have one label per training row"):
        stage.fit(table, groups=rows[:10])
