"""photoz.mlp with ``pretrain``: networks pre-trained on simulated galaxies, then trained on real ones."""

import math
import sys

import numpy as np
import pytest
from astropy.table import Table

from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.core.stage import Stage
from astroml_pipe.evaluate.photoz import photoz_metrics
from astroml_pipe.features.colors import Colors
from astroml_pipe.models.tabular import standardize
from astroml_pipe.simulate import photometry
from astroml_pipe.simulate.photometry import simulate_photometry
from astroml_pipe.stages.photoz import pretraining
from astroml_pipe.stages.photoz.mlp import MLPPhotoZ
from astroml_pipe.stages.photoz.pretraining import PretrainSettings, simulated_catalog

MLP = {"n_bins": 20, "hidden_layers": [32, 32], "n_networks": 2, "max_epochs": 100, "random_state": 3}
PRETRAIN = {"galaxies": 5000, "epochs": 10}


def pipeline(pretrain=None, columns=None):
    mlp = dict(MLP, **({"pretrain": pretrain} if pretrain else {}))
    return Pipeline.from_dict({
        "columns": columns,
        "stages": [{"uses": "features.colors", "with": {"magnitudes": "asinh"}},
                   {"name": "photoz", "uses": "photoz.mlp", "with": mlp}],
    })


@pytest.fixture(scope="module")
def small_training_set():
    """100 training galaxies (too few for a network on its own) and 3,000 test galaxies."""
    return simulate_photometry(100, random_state=1), simulate_photometry(3000, random_state=2)


@pytest.fixture(scope="module")
def pretrained(small_training_set):
    return pipeline(PRETRAIN).fit(small_training_set[0])


def test_pretraining_makes_a_small_training_set_go_much_further(small_training_set, pretrained):
    train, test = small_training_set
    plain = pipeline().fit(train)
    with_pretraining = photoz_metrics(pretrained.run(test)["z_phot"], test["redshift"])
    without = photoz_metrics(plain.run(test)["z_phot"], test["redshift"])
    assert with_pretraining["sigma_nmad"] < 0.05 and without["sigma_nmad"] > 0.07  # measured: 0.032 and 0.112
    assert with_pretraining["outlier_fraction"] < 0.5 * without["outlier_fraction"]  # 4.6% and 26%
    metrics = pretrained["photoz"].training_metrics_
    assert metrics["n_pretrain"] == 5000 * 2 and metrics["pretrain_epochs"] == 10  # 5,000 for each network
    assert "n_pretrain" not in plain["photoz"].training_metrics_


def test_pretraining_is_seeded(small_training_set, pretrained):
    train, test = small_training_set
    again = pipeline(PRETRAIN).fit(train)
    np.testing.assert_array_equal(again.run(test)["z_phot_pdf"], pretrained.run(test)["z_phot_pdf"])


def test_saved_model_applies_without_simulating(pretrained, small_training_set, tmp_path, monkeypatch):
    test = small_training_set[1][:200]
    folder = pretrained.save(tmp_path / "model")

    def refuse(*args, **kwargs):
        raise AssertionError("a saved model must not simulate")

    monkeypatch.setattr(pretraining, "simulate_photometry", refuse, raising=False)
    monkeypatch.setattr("astroml_pipe.simulate.photometry.simulate_photometry", refuse)
    loaded = Pipeline.load(folder)
    assert loaded["photoz"].pretrain == PRETRAIN
    np.testing.assert_array_equal(loaded.run(test)["z_phot_pdf"], pretrained.run(test)["z_phot_pdf"])


def test_simulated_catalog_is_written_in_the_pipelines_columns():
    columns = ColumnMap(mag="{band}_MAG", mag_err="{band}_MAGERR", bands=("u", "g", "r", "i"),
                        nondetection=(math.inf,), unobserved=(math.nan,))
    settings = PretrainSettings(galaxies=2000, mag_limit=24.0, depth="lsst1yr")
    table = simulated_catalog(settings, columns, "zspec", z_max=2.0, random_state=0)
    assert table.colnames == ["u_MAG", "u_MAGERR", "g_MAG", "g_MAGERR", "r_MAG", "r_MAGERR", "i_MAG", "i_MAGERR",
                              "zspec"]
    assert len(table) == 2000 and table["zspec"].max() <= 2.0
    assert np.isinf(table["u_MAG"]).any() and not (table["u_MAG"] == 99).any()  # u non-detections, as inf
    assert table["i_MAG"].max() <= 24.0


def test_pretraining_with_another_column_map():
    """Magnitudes named differently, fewer bands: the simulation follows the pipeline's columns."""
    columns = {"mag": "{band}_MAG", "mag_err": "{band}_MAGERR", "bands": ["g", "r", "i", "z"]}
    sim = simulate_photometry(400, random_state=4, bands=("g", "r", "i", "z"))
    train = Table({"zspec": sim["redshift"]})
    for band in "griz":
        train[f"{band}_MAG"], train[f"{band}_MAGERR"] = sim[f"mag_{band}"], sim[f"magerr_{band}"]
    pipe = Pipeline.from_dict({
        "columns": columns,
        "stages": [{"uses": "features.colors"},
                   {"name": "photoz", "uses": "photoz.mlp",
                    "with": dict(MLP, target="zspec", max_epochs=20, pretrain={"galaxies": 1000, "epochs": 1})}],
    }).fit(train)
    assert pipe["photoz"].training_metrics_["n_pretrain"] == 1000 * 2
    assert np.isfinite(pipe.run(train)["z_phot"]).all()


@pytest.mark.parametrize("pretrain, columns, message", [
    ({"galaxies": 10, "epoch": 2}, None, r"unknown key\(s\) \['epoch'\]"),
    ({"epochs": 2}, None, "needs 'galaxies'"),
    ({"galaxies": "many"}, None, "must be {galaxies: int"),
    ({"galaxies": 2.5}, None, "must be {galaxies: int"),
    ({"galaxies": 0}, None, "must be positive"),
    ({"galaxies": 10, "depth": "deep"}, None, "'depth' must be one of"),
    ({"galaxies": 10, "mag_limit": 40}, None, "'mag_limit' must be in"),
    ({"galaxies": 10}, {"bands": ["g", "r", "W1"]}, r"LSST bands ugrizy only; the pipeline's band\(s\) \['W1'\]"),
    ({"galaxies": 10, "limit_band": "u"}, {"bands": ["g", "r", "i"]}, "'limit_band' 'u' is not one of the bands"),
])
def test_bad_pretrain_settings_are_refused_when_the_pipeline_is_read(pretrain, columns, message):
    with pytest.raises(ConfigError, match=message):
        pipeline(pretrain, columns)


def test_pretraining_needs_neither_galsim_nor_speclite(small_training_set, monkeypatch):
    # The simulation reads its template fluxes from the package (tests/simulate/test_template_fluxes.py).
    photometry._colour_grid.cache_clear()
    photometry._shipped_template_fluxes.cache_clear()
    for name in ("galsim", "galsim.meta_data", "speclite", "speclite.filters"):
        monkeypatch.setitem(sys.modules, name, None)  # importing them now fails
    pipe = pipeline(PRETRAIN).fit(small_training_set[0])
    assert pipe.is_fitted and pipe.stages[-1].training_metrics_["n_pretrain"] > 0


def test_outside_a_pipeline_the_features_must_be_in_the_pretraining_rows(small_training_set):
    train = small_training_set[0]
    colours = Colors(magnitudes="asinh").fit(train)
    stage = MLPPhotoZ(**MLP, pretrain={"galaxies": 500, "epochs": 1})
    with pytest.raises(InputError, match=r"simulated pretraining galaxies lack column\(s\) \['color_u_g'"):
        stage.fit(colours.run(train))
    # Given rows that have them (here made by the same colours stage), it trains.
    rows = colours.run(stage.pretraining_catalog())
    stage.fit(colours.run(train), pretraining=rows)
    assert len(rows) == 500 * 2 and stage.training_metrics_["n_pretrain"] == 500 * 2
    with pytest.raises(InputError, match=r"1 pretraining rows inside the redshift grid are too few for 2 networks"):
        stage.fit(colours.run(train), pretraining=rows[:1])
    with pytest.raises(ConfigError, match="pretraining rows were given but parameter 'pretrain' is null"):
        MLPPhotoZ(**MLP).fit(colours.run(train), pretraining=rows)
    # Features that the simulation writes itself (magnitudes) need no earlier stage.
    on_magnitudes = MLPPhotoZ(**MLP, features=["mag_g", "mag_r", "mag_i"], pretrain={"galaxies": 300, "epochs": 1})
    assert on_magnitudes.fit(train).training_metrics_["n_pretrain"] == 300 * 2


def test_committee_members_may_not_pretrain():
    with pytest.raises(ConfigError, match="member #2 may not set 'pretrain'"):
        Pipeline.from_dict({"stages": [{"uses": "features.colors"}, {"uses": "photoz.committee", "with": {
            "members": [{"uses": "photoz.catboost"}, {"uses": "photoz.mlp", "with": {"pretrain": PRETRAIN}}]}}]})


class NeedsSkyPosition(Stage):
    """A stage that reads 'ra', which the simulated pretraining rows do not have."""

    name = "test.needs_ra"

    def requires(self):
        return ["ra"]

    def compute(self, table):
        return {}


def test_pretraining_rows_must_pass_through_the_earlier_stages(small_training_set):
    train = small_training_set[0]
    pipe = Pipeline([NeedsSkyPosition(), ("colors", Colors()), ("photoz", MLPPhotoZ(**MLP, pretrain=PRETRAIN))])
    with pytest.raises(ConfigError, match=r"cannot pass through stage 'test.needs_ra', which needs column\(s\) \['ra'\]"):
        pipe.fit(train)


def test_every_network_pretrains_on_simulated_galaxies_of_its_own(small_training_set, monkeypatch):
    """The rows are dealt out: network k of n gets rows k, k + n, ..., so no two networks share one."""
    from astroml_pipe.stages.photoz import mlp

    train = small_training_set[0]
    colours = Colors(magnitudes="asinh").fit(train)
    stage = MLPPhotoZ(**dict(MLP, n_networks=3, max_epochs=2, n_jobs=1), pretrain={"galaxies": 400, "epochs": 1})
    rows = colours.run(stage.pretraining_catalog())
    seen = []
    train_network = mlp._train_network

    def record(setup, seed, training, held, pretraining):
        assert setup.x.dtype == np.float32  # the networks train in float32
        seen.append(pretraining)
        return train_network(setup, seed, training, held, pretraining)

    monkeypatch.setattr(mlp, "_train_network", record)
    stage.fit(colours.run(train), pretraining=rows)
    assert [len(x) for x, _ in seen] == [400, 400, 400]
    # Network k's rows are every third simulated galaxy from the k-th on, standardised as the real rows.
    features = np.stack([np.asarray(rows[name], dtype=np.float64) for name in stage.feature_columns()], axis=1)
    x = standardize(features, stage.medians_, stage.mean_, stage.scale_, np.float32)
    labels = stage._labels(np.asarray(rows["redshift"], dtype=np.float64))
    for k, (x_k, labels_k) in enumerate(seen):
        assert x_k.dtype == np.float32
        np.testing.assert_array_equal(x_k, x[k::3])
        np.testing.assert_array_equal(labels_k, labels[k::3])
