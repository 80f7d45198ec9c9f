"""Tests of the images.cutouts stage (astroml_pipe.stages.cutouts) on tiny WCS images.

The image helpers (``wcs_images``) and the ``image_scene`` fixture are in tests/conftest.py:
two 120x120 bands ``band_0.fits`` and ``band_1.fits`` on one grid, three sources.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from astropy.io import fits

from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.pipeline import Pipeline
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.io.catalogs import read_catalog, write_catalog
from astroml_pipe.io.cutouts import cut_stamps
from astroml_pipe.runner import run_catalog
from astroml_pipe.stages.classify.star_galaxy_cnn import StarGalaxyCNN
from astroml_pipe.stages.cutouts import Cutouts

SIZE = 16


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _one_line(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_registered():
    assert get_stage_class("images.cutouts") is Cutouts
    assert not Cutouts.trainable


def test_stamps_match_cut_stamps(image_scene):
    table, files, _, _ = image_scene
    stage = Cutouts(images=[str(f) for f in files], size=SIZE, bands=["g", "r"])
    assert stage.requires() == ["ra", "dec"]
    stamp_col, flag_col = stage.provides()
    assert (stamp_col.name, stamp_col.dtype, stamp_col.shape) == ("cutout", "float32", (2, SIZE, SIZE))
    assert (flag_col.name, flag_col.dtype) == ("cutout_flag", "int16")

    out = stage.run(table)
    ref = cut_stamps(table, files, size=SIZE)
    assert out["cutout"].shape == (3, 2, SIZE, SIZE) and out["cutout"].dtype == np.float32
    assert out["cutout_flag"].dtype == np.int16 and not out["cutout_flag"].any()
    assert "cutout_mask" not in out.colnames  # off by default in a stage
    np.testing.assert_array_equal(out["cutout"], ref["cutout"])
    np.testing.assert_array_equal(out["cutout_flag"], ref["cutout_flag"])
    for stamps in out["cutout"]:
        for stamp in stamps:
            assert np.unravel_index(np.argmax(stamp), stamp.shape) == (SIZE // 2, SIZE // 2)
    meta = out["cutout"].meta
    assert meta["bands"] == ["g", "r"] and meta["images"] == ["band_0.fits", "band_1.fits"]
    assert "cutout" not in table.colnames and list(out["id"]) == [1, 2, 3]


def test_mask_column_and_defaults(image_scene, tmp_path):
    table, files, _, _ = image_scene
    stage = Cutouts(images=str(tmp_path / "band_*.fits"), size=SIZE, mask=True, column="stamp")
    assert stage.band_names == ["band_0", "band_1"]  # file stems when bands is null
    out = stage.run(table)
    ref = cut_stamps(table, files, size=SIZE, column="stamp")
    np.testing.assert_array_equal(out["stamp_mask"], ref["stamp_mask"])
    assert out["stamp"].meta["bands"] == ["band_0", "band_1"]
    assert Cutouts(images=files[0]).provides()[0].shape == (1, 44, 44)


def test_cube_band_names(image_scene, tmp_path):
    table, files, w, _ = image_scene
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.stack([fits.getdata(f) for f in files]), header=w.to_header()).writeto(path)
    stage = Cutouts(images=str(path), size=SIZE)
    assert stage.band_names == ["cube[0]", "cube[1]"]
    np.testing.assert_array_equal(stage.run(table)["cutout"], cut_stamps(table, files, size=SIZE)["cutout"])


def test_pipeline_with_morphology_via_run_catalog(image_scene, tmp_path, monkeypatch):
    table, files, _, _ = image_scene
    catalog = tmp_path / "catalog.fits"
    write_catalog(table, catalog)
    before = {f: _digest(f) for f in files}
    monkeypatch.chdir(tmp_path)  # the relative pattern is resolved against the current directory
    config = {
        "name": "stamps-and-morphology",
        "columns": {"bands": ["g", "r"]},
        "stages": [
            {"name": "stamps", "uses": "images.cutouts",
             "with": {"images": "band_*.fits", "bands": ["g", "r"], "size": SIZE}},
            {"name": "morphology", "uses": "features.morphology"},
        ],
    }
    pipeline = Pipeline.from_dict(config)
    summary = run_catalog(pipeline, catalog, tmp_path / "out.fits", chunk_size=2)
    assert summary.n_rows == 3 and "cutout" in summary.columns_added
    out = read_catalog(tmp_path / "out.fits")
    assert out["cutout"].shape == (3, 2, SIZE, SIZE)
    np.testing.assert_array_equal(out["cutout"], cut_stamps(table, files, size=SIZE)["cutout"])
    assert list(out["cutout_flag"]) == [0, 0, 0]
    assert {"morph_flux2_g", "morph_flux2_r", "morph_fwhm_g"} <= set(out.colnames)
    np.testing.assert_allclose(out["morph_flux5_r"], 3 * out["morph_flux5_g"], rtol=1e-4)
    assert {f: _digest(f) for f in files} == before  # images only read
    assert pipeline["stamps"].get_params()["images"] == "band_*.fits"  # kept as written


def test_stamps_fit_the_cnn_input_check(image_scene):
    """The CNN accepts the stage's stamps, and reads their band names from the column."""
    table, files, _, _ = image_scene
    out = Cutouts(images=files, size=SIZE, bands=["g", "r"]).run(table)
    cnn = StarGalaxyCNN(crop=SIZE)
    cnn.stamp_shape_, cnn.bands_ = [2, SIZE, SIZE], ["g", "r"]
    cnn._check_stamps(out, np.asarray(out["cutout"]))
    other = Cutouts(images=files, size=SIZE, bands=["r", "i"]).run(table)
    with pytest.raises(InputError, match=r"stamps have bands \['r', 'i'\], but the model was trained on \['g', 'r'\]"):
        cnn._check_stamps(other, np.asarray(other["cutout"]))
    defaults = {p.name: p.default for p in Cutouts.params}
    assert defaults["size"] == StarGalaxyCNN().crop  # the default stamp fits the default crop


# --------------------------------------------------------------------------- errors


def test_missing_file(image_scene, tmp_path):
    table, files, _, _ = image_scene
    stage = Cutouts(images=[str(files[0]), str(tmp_path / "nope.fits")], size=SIZE)
    with pytest.raises(InputError) as excinfo:
        stage.run(table)
    _one_line(excinfo, "stage 'images.cutouts'", "nope.fits' not found")


def test_glob_without_match(image_scene, tmp_path):
    table, _, _, _ = image_scene
    pattern = str(tmp_path / "zz_*.fits")
    with pytest.raises(InputError) as excinfo:
        Cutouts(images=pattern).run(table)
    _one_line(excinfo, "no image file matches the pattern", pattern)


def test_glob_inside_a_list(image_scene, tmp_path):
    table, files, _, _ = image_scene
    with pytest.raises(InputError) as excinfo:
        Cutouts(images=[str(files[0]), str(tmp_path / "band_*.fits")]).run(table)
    _one_line(excinfo, "band_*.fits' not found", "glob pattern must be given alone")


def test_image_without_celestial_wcs(image_scene, tmp_path, wcs_images):
    table, _, _, _ = image_scene
    path = wcs_images.write(tmp_path / "plain.fits", np.zeros((20, 20), np.float32), None)
    with pytest.raises(InputError) as excinfo:
        Cutouts(images=[str(path)]).run(table)
    _one_line(excinfo, "plain.fits' has no celestial WCS")


def test_errors_stop_a_run_before_any_output(image_scene, tmp_path):
    table, _, _, _ = image_scene
    catalog = tmp_path / "catalog.fits"
    write_catalog(table, catalog)
    pipeline = Pipeline.from_dict(
        {"stages": [{"uses": "images.cutouts", "with": {"images": [str(tmp_path / "nope.fits")]}}]}
    )
    with pytest.raises(InputError) as excinfo:
        run_catalog(pipeline, catalog, tmp_path / "out.fits")
    _one_line(excinfo, "nope.fits' not found")
    assert not (tmp_path / "out.fits").exists()


def test_resample_off_refuses_other_grids_early(image_scene, tmp_path, wcs_images):
    _, files, _, _ = image_scene
    w2 = wcs_images.make_wcs(scale=2 * wcs_images.SCALE)
    path = wcs_images.write(tmp_path / "coarse.fits", np.zeros((60, 60), np.float32), w2)
    with pytest.raises(ConfigError) as excinfo:
        Cutouts(images=[str(files[0]), str(path)], resample=False).provides()
    _one_line(excinfo, "coarse.fits", "resample is off")


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({}, "'images' is required"),
        ({"images": []}, "'images' must not be empty"),
        ({"images": 3}, "'images' must be str | list[str] or null"),
        ({"images": "a.fits", "hdu": True}, "'hdu' must be int | str or null"),
        ({"images": "a.fits", "hdu": -1}, "'hdu' must be >= 0"),
        ({"images": "a.fits", "size": 0}, "'size' must be >= 1"),
        ({"images": "a.fits", "bands": ["g", "g"]}, "distinct"),
    ],
)
def test_bad_parameters(params, fragment):
    with pytest.raises(ConfigError) as excinfo:
        Cutouts(**params)
    _one_line(excinfo, fragment)


def test_bands_must_match_the_images(image_scene):
    table, files, _, _ = image_scene
    with pytest.raises(ConfigError) as excinfo:
        Cutouts(images=files, bands=["g", "r", "i"]).run(table)
    _one_line(excinfo, "names 3 band(s)", "images give 2 (band_0.fits, band_1.fits)")


def test_existing_stamp_column_is_refused(image_scene):
    table, files, _, _ = image_scene
    table["cutout"] = np.ones((3, 2, 8, 8), np.float32)
    with pytest.raises(InputError) as excinfo:
        Cutouts(images=files, size=SIZE).run(table)
    _one_line(excinfo, "already has column(s) 'cutout'")


def test_yaml_round_trip(image_scene):
    _, files, _, _ = image_scene
    stage = Cutouts(images=files, size=SIZE, hdu=0)
    pipeline = Pipeline([stage])
    again = Pipeline.from_yaml(pipeline.to_yaml())
    assert again.stages[0].get_params() == stage.get_params()
    assert stage.get_params()["images"] == [str(f) for f in files]  # paths stored as str
