import numpy as np
import pytest

from astroml_pipe.core.errors import ConfigError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.stages.photoz.ensembles import mixture_weights

COMMITTEE = {"stages": [
    {"name": "colors", "uses": "features.colors"},
    {"name": "photoz", "uses": "photoz.committee", "with": {"members": [
        {"uses": "photoz.catboost", "with": {"iterations": 30, "n_bins": 12}},
        {"uses": "photoz.random_forest", "with": {"n_estimators": 20}},
    ]}},
]}


def test_mixture_weights_prefer_the_member_that_predicts_better():
    rng = np.random.default_rng(0)
    good = rng.uniform(1.0, 3.0, 500)
    bad = rng.uniform(0.0, 0.2, 500)
    w = mixture_weights(np.column_stack([good, bad, good]))
    assert w.sum() == pytest.approx(1.0)
    assert w[1] < 0.05 and w[0] == pytest.approx(w[2], abs=1e-6)


def test_committee_trains_runs_and_reloads(make_catalog, tmp_path):
    pipe = Pipeline.from_dict(COMMITTEE).fit(make_catalog(1500, seed=1))
    stage = pipe["photoz"]
    assert stage.member_weights_.sum() == pytest.approx(1.0) and len(stage.member_weights_) == 2
    test = make_catalog(300, seed=2)
    out = pipe.run(test)
    assert out["z_phot_members"].shape == (300, 2)
    assert photoz_metrics(out["z_phot"], test["redshift"])["sigma_nmad"] < 0.05
    pdf = out["z_phot_pdf"].astype(float)
    assert np.all(pdf >= 0) and np.all(pdf.max(axis=1) == 32767)
    again = Pipeline.load(pipe.save(tmp_path / "m"))
    np.testing.assert_array_equal(again.run(test)["z_phot_pdf"], out["z_phot_pdf"])
    assert sorted(p.name for p in (tmp_path / "m" / "photoz").iterdir()) == ["member1", "member2", "stage.json"]


@pytest.mark.parametrize(
    "members, message",
    [
        ([{"uses": "photoz.catboost"}], "at least two"),
        ([{"uses": "photoz.catboost"}, {"uses": "features.colors"}], "not a photo-z estimator"),
        ([{"uses": "photoz.catboost"}, {"uses": "photoz.knn", "with": {"target": "z"}}], "may not set ['target']"),
        ([{"uses": "photoz.catboost"}, {"use": "photoz.knn"}], "member #2 must be"),
        ([{"uses": "photoz.catboost"}, {"uses": "photoz.catbost"}], "did you mean 'photoz.catboost'"),
    ],
)
def test_bad_members(members, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Pipeline.from_dict({"stages": [{"uses": "photoz.committee", "with": {"members": members}}]})


BAGGING = {"stages": [
    {"name": "colors", "uses": "features.colors"},
    {"name": "photoz", "uses": "photoz.bagging",
     "with": {"member": {"uses": "photoz.random_forest", "with": {"n_estimators": 10}}, "n_bags": 3}},
]}


def test_bagging_averages_bootstrap_copies_and_reports_spread(make_catalog, tmp_path):
    train, test = make_catalog(1200, seed=3), make_catalog(200, seed=4)
    pipe = Pipeline.from_dict(BAGGING).fit(train)
    out = pipe.run(test)
    members = out["z_phot_members"]
    assert members.shape == (200, 3)
    assert not np.array_equal(members[:, 0], members[:, 1])  # different resamples, different copies
    np.testing.assert_allclose(out["z_phot_spread"], members.std(axis=1), rtol=1e-4, atol=1e-6)
    assert np.all(pipe["photoz"].member_weights_ == pytest.approx(1 / 3))
    # Reproducible, and identical after a save/load round trip.
    again = Pipeline.from_dict(BAGGING).fit(train).run(test)
    np.testing.assert_array_equal(again["z_phot_pdf"], out["z_phot_pdf"])
    loaded = Pipeline.load(pipe.save(tmp_path / "bag"))
    np.testing.assert_array_equal(loaded.run(test)["z_phot_spread"], out["z_phot_spread"])


def test_bagged_copies_never_hold_out_a_row_they_train_on(make_catalog):
    """A bootstrap resample holds copies of rows; each copy trains and holds out whole groups of copies.

    Otherwise a kNN member finds most of its held-out rows among its own training rows, at distance zero:
    its validation scatter was then about a tenth of the truth, and it chose far too narrow PDFs.
    """
    train = make_catalog(1500, seed=3)
    stages = [{"name": "colors", "uses": "features.colors"}]
    single = Pipeline.from_dict({"stages": stages + [{"name": "photoz", "uses": "photoz.knn"}]}).fit(train)
    bagged = Pipeline.from_dict({"stages": stages + [{"name": "photoz", "uses": "photoz.bagging",
                                                      "with": {"member": {"uses": "photoz.knn"}, "n_bags": 3}}]})
    bagged.fit(train)
    honest = single["photoz"].training_metrics_["validation_sigma_nmad"]
    for member in bagged["photoz"]._members:
        assert member.training_metrics_["validation_sigma_nmad"] > 0.6 * honest
        assert member.pdf_settings_["width"] >= 0.5 * single["photoz"].pdf_settings_["width"]
