"""A real third-party distribution registers a stage through the entry-point group."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astroml_pipe.core import registry
from astroml_pipe.core.errors import ConfigError
from astroml_pipe.core.pipeline import Pipeline

PLUGIN = Path(__file__).parents[1] / "plugin_pkg"


@pytest.fixture
def on_path(monkeypatch):
    """Put a folder on sys.path for one test and forget cached registrations around it."""

    def add(folder):
        monkeypatch.syspath_prepend(str(folder))
        registry.refresh()

    yield add
    registry.refresh()


def test_installed_plugin_stage_runs_in_pipeline(tmp_path, on_path, catalog):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(PLUGIN)],
        check=True,
    )
    assert "testplugin.flux" not in registry.stage_names()
    on_path(target)
    assert "testplugin.flux" in registry.stage_names()
    pipe = Pipeline.from_dict({
        "columns": {"bands": ["g", "r"]},
        "stages": [{"name": "flux", "uses": "testplugin.flux", "with": {"zeropoint": 31.4}}],
    })
    out = pipe.run(catalog)
    np.testing.assert_allclose(out["flux_g"], 10 ** (-0.4 * (catalog["mag_g"].astype(float) - 31.4)))
    assert str(out["flux_g"].unit) == "nJy"


def fake_distribution(folder, name, entry):
    """Distribution metadata (no code) that registers one entry point."""
    dist = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[astroml_pipe.stages]\n{entry}\n")


def test_duplicate_registration_names_both_distributions(tmp_path, on_path):
    fake_distribution(tmp_path, "rogue-stages", "features.colors = rogue:Colors")
    on_path(tmp_path)
    with pytest.raises(ConfigError, match="'features.colors' is registered twice") as info:
        registry.get_stage_class("features.colors")
    assert "rogue-stages (rogue:Colors)" in str(info.value)
    assert "astroml-pipe (astroml_pipe.features.colors:Colors)" in str(info.value)


def test_broken_plugin_is_not_unknown(tmp_path, on_path):
    fake_distribution(tmp_path, "broken-stages", "broken.stage = no_such_module:Stage")
    on_path(tmp_path)
    with pytest.raises(ConfigError, match="stage 'broken.stage' from broken-stages could not be imported"):
        registry.get_stage_class("broken.stage")
