import json

import numpy as np
import pytest

from astroml_pipe.core.errors import ConfigError, InputError, ModelError
from astroml_pipe.core.pipeline import MANIFEST, Pipeline
from astroml_pipe.core.registry import get_stage_class, stage_names
from astroml_pipe.features.colors import Colors


def test_registry_lists_builtin_stages_lazily():
    names = stage_names()
    assert {"features.colors", "photoz.random_forest", "photoz.catboost"} <= set(names)
    assert get_stage_class("features.colors") is Colors


def test_unknown_stage_suggests():
    with pytest.raises(ConfigError, match="unknown stage 'photoz.catbost'; did you mean 'photoz.catboost'"):
        get_stage_class("photoz.catbost")


def test_every_config_problem_reported_at_once():
    text = """
name: broken
colums: {}
stages:
  - name: colors
    uses: features.colours
  - name: photoz
    uses: photoz.catboost
    with: {iteration: 10, depth: "deep"}
"""
    with pytest.raises(ConfigError) as info:
        Pipeline.from_yaml(text)
    message = str(info.value)
    assert message.startswith("pipeline: 4 problems")
    assert "unknown key 'colums'; did you mean 'columns'?" in message
    assert "unknown stage 'features.colours'; did you mean 'features.colors'" in message
    assert "unknown parameter 'iteration'; did you mean 'iterations'?" in message
    assert "parameter 'depth' must be int" in message


def test_invalid_yaml_names_line():
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d"):
        Pipeline.from_yaml("name: x\nstages:\n  - {uses: [\n")


def test_missing_pipeline_file(tmp_path):
    with pytest.raises(ConfigError, match="pipeline file '.*nope.yaml' does not exist"):
        Pipeline.from_yaml(tmp_path / "nope.yaml")


def test_yaml_round_trip(tiny_yaml, tmp_path):
    pipe = Pipeline.from_yaml(tiny_yaml("catboost"))
    path = tmp_path / "p.yaml"
    pipe.to_yaml(path)
    again = Pipeline.from_yaml(path)
    assert again.to_dict() == pipe.to_dict()
    assert again.config_hash() == pipe.config_hash()
    assert again["photoz"].iterations == 30


def test_python_construction_matches_yaml(tiny_yaml):
    from astroml_pipe.stages.photoz.catboost import CatBoostPhotoZ

    pipe = Pipeline([("colors", Colors()), ("photoz", CatBoostPhotoZ(iterations=30, n_bins=12))], name="test-photoz")
    assert pipe.config_hash() == Pipeline.from_yaml(tiny_yaml("catboost")).config_hash()


def test_validate_reports_missing_and_nonnumeric_columns(tiny_yaml, catalog):
    pipe = Pipeline.from_yaml(tiny_yaml("catboost"))
    columns = {n: catalog[n].dtype for n in catalog.colnames if n not in ("mag_g", "redshift")}
    columns["mag_r"] = np.dtype("U8")
    with pytest.raises(ConfigError) as info:
        pipe.validate(columns, training=True, source="'cat.fits'")
    message = str(info.value)
    assert "stage 'colors' (features.colors) needs column 'mag_g', which neither 'cat.fits' nor an earlier stage" in message
    assert "close matches: mag_i" in message or "close matches: mag_" in message
    assert "column 'mag_r' in 'cat.fits' holds <U8 values" in message
    assert "needs column 'redshift'" in message
    # The same catalog is fine for running (no target needed).
    pipe.validate({n: catalog[n].dtype for n in catalog.colnames})


def test_validate_refuses_overwriting_input_columns(tiny_yaml, catalog):
    catalog["z_phot"] = 1.0
    with pytest.raises(ConfigError, match="writes column 'z_phot', which input already has"):
        Pipeline.from_yaml(tiny_yaml("catboost")).validate(catalog.colnames)


def test_run_before_fit_is_clear(tiny_yaml, catalog):
    pipe = Pipeline.from_yaml(tiny_yaml("catboost"))
    with pytest.raises(ModelError, match="is not trained"):
        pipe.run(catalog)
    with pytest.raises(ModelError, match="stage 'colors' .* is not trained"):
        pipe["colors"].run(catalog)


@pytest.mark.parametrize("kind", ["catboost", "random_forest"])
def test_fit_save_load_round_trip(kind, tiny_yaml, make_catalog, tmp_path):
    train, test = make_catalog(1500, seed=1), make_catalog(300, seed=2)
    pipe = Pipeline.from_yaml(tiny_yaml(kind)).fit(train)
    result = pipe.run(test)
    # Inputs untouched, columns added with units and descriptions.
    assert result.colnames[: len(test.colnames)] == test.colnames
    assert "z_phot" not in test.colnames and not test.meta
    assert result["color_g_r"].unit == "mag" and result["z_phot"].description
    folder = pipe.save(tmp_path / "model", training={"sha256": "x" * 64, "n_rows": len(train)})
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == 1 and manifest["training_data"]["n_rows"] == 1500
    assert manifest["metrics"]["photoz"]["n_validation"] == 150
    assert set(manifest["libraries"]) >= {"numpy", "astropy", "scikit-learn", "catboost"}
    assert sorted(p.name for p in folder.iterdir()) == ["colors", "manifest.json", "photoz", "pipeline.yaml"]
    again = Pipeline.load(folder)
    np.testing.assert_array_equal(again.run(test)["z_phot_pdf"], result["z_phot_pdf"])
    with pytest.raises(InputError, match="already exists"):
        pipe.save(folder)


def test_fit_is_reproducible(tiny_yaml, make_catalog):
    train, test = make_catalog(800, seed=3), make_catalog(100, seed=4)
    a = Pipeline.from_yaml(tiny_yaml("random_forest")).fit(train).run(test)
    b = Pipeline.from_yaml(tiny_yaml("random_forest")).fit(train).run(test)
    np.testing.assert_array_equal(a["z_phot"], b["z_phot"])


def test_incompatible_model_folder(tiny_yaml, make_catalog, tmp_path):
    pipe = Pipeline.from_yaml(tiny_yaml("catboost")).fit(make_catalog(300))
    folder = pipe.save(tmp_path / "m")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.update(format=99, astroml_pipe="9.0.0")
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"written by astroml-pipe 9.0.0 in model format 99; .* reads format 1"):
        Pipeline.load(folder)
    with pytest.raises(ModelError, match="has no manifest.json"):
        Pipeline.load(tmp_path)


def test_duplicate_stage_names():
    with pytest.raises(ConfigError, match="stage name 'a' is used twice"):
        Pipeline.from_dict({"stages": [{"name": "a", "uses": "features.colors"}] * 2})


def test_save_refuses_untrained(tiny_yaml, tmp_path):
    with pytest.raises(ModelError, match="not trained"):
        Pipeline.from_yaml(tiny_yaml("catboost")).save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_empty_table_runs(tiny_yaml, make_catalog):
    pipe = Pipeline.from_yaml(tiny_yaml("catboost")).fit(make_catalog(300))
    out = pipe.run(make_catalog(300)[:0])
    assert len(out) == 0 and out["z_phot_pdf"].shape == (0, 301)


def test_stage_without_compute_is_refused():
    from astroml_pipe.core.stage import Stage

    class Incomplete(Stage):
        name = "test.incomplete"

    with pytest.raises(TypeError, match="abstract method.*compute"):
        Incomplete()
