"""Tests of astroml_pipe.io.cutouts on small synthetic FITS images.

The image helpers (``wcs_images``) and the ``image_scene`` fixture are in tests/conftest.py.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.io.cutouts import (
    FLAG_EDGE,
    FLAG_MASKED,
    FLAG_OFF_BAND,
    FLAG_OFF_IMAGE,
    cut_stamps,
    stamps_in_table,
)

SIZE = 16


def assert_centred(stamp: np.ndarray) -> None:
    iy, ix = np.unravel_index(np.argmax(stamp), stamp.shape)
    assert (iy, ix) == (SIZE // 2, SIZE // 2)


def test_stamps_are_centred_and_shaped(image_scene):
    table, files, _, _ = image_scene
    out = cut_stamps(table, files[:1], size=SIZE)
    assert out["cutout"].shape == (3, 1, SIZE, SIZE)
    assert out["cutout"].dtype == np.float32
    assert out["cutout_flag"].dtype == np.int16
    assert out["cutout_mask"].shape == out["cutout"].shape
    for row in out:
        assert_centred(row["cutout"][0])
    assert not out["cutout_flag"].any() and not out["cutout_mask"].any()
    assert "cutout" not in table.colnames  # input untouched
    assert list(out["id"]) == [1, 2, 3]


def test_odd_size_and_no_mask(image_scene):
    table, files, _, _ = image_scene
    out = cut_stamps(table, files[0], size=15, mask=False, column="stamp")
    assert out["stamp"].shape == (3, 1, 15, 15)
    assert "stamp_mask" not in out.colnames and "stamp_flag" in out.colnames
    iy, ix = np.unravel_index(np.argmax(out["stamp"][0, 0]), (15, 15))
    assert (iy, ix) == (7, 7)


def test_multiband_identical_wcs(image_scene):
    table, files, _, _ = image_scene
    out = cut_stamps(table, files, size=SIZE)
    assert out["cutout"].shape == (3, 2, SIZE, SIZE)
    for row in out:
        assert_centred(row["cutout"][1])
        np.testing.assert_allclose(row["cutout"][1], 3 * row["cutout"][0], rtol=1e-5)
    assert out["cutout"].meta["bands"] == ["band_0.fits", "band_1.fits"]


def test_integer_shift_is_not_resampled(image_scene, tmp_path, wcs_images):
    """A tile cropped differently (reference pixel shifted by whole pixels) is copied."""
    table, files, w, _ = image_scene
    data = fits.getdata(files[0])
    crop = data[10:, 5:]
    wc = wcs_images.make_wcs(crpix=(w.wcs.crpix[0] - 5, w.wcs.crpix[1] - 10))
    path = wcs_images.write(tmp_path / "crop.fits", crop, wc)
    out = cut_stamps(table, [files[0], path], size=SIZE, resample=False)
    np.testing.assert_array_equal(out["cutout"][:, 1], out["cutout"][:, 0])


def test_resample_different_scale_and_rotation(image_scene, tmp_path, wcs_images):
    table, files, _, coords = image_scene
    w2 = wcs_images.make_wcs(shape=(70, 70), scale=2 * wcs_images.SCALE, rot_deg=30.0, crpix=(33.3, 36.7))
    flux = 100.0
    img = wcs_images.render(w2, (70, 70), [(ra, dec, flux) for ra, dec in coords])
    path = wcs_images.write(tmp_path / "coarse.fits", img, w2)
    out = cut_stamps(table, [files[0], path], size=SIZE)
    assert not out["cutout_flag"].any()
    for row in out:
        ref, res = row["cutout"][0], row["cutout"][1]
        iy, ix = np.unravel_index(np.argmax(res), res.shape)
        assert abs(iy - SIZE // 2) <= 1 and abs(ix - SIZE // 2) <= 1
        # values are per first-band pixel: the peak and the summed flux match band 0
        assert res.max() == pytest.approx(ref.max(), rel=0.1)
        assert res.sum() == pytest.approx(ref.sum(), rel=0.05)


def test_resample_off_is_refused(image_scene, tmp_path, wcs_images):
    table, files, _, _ = image_scene
    w2 = wcs_images.make_wcs(scale=2 * wcs_images.SCALE, rot_deg=30.0)
    path = wcs_images.write(tmp_path / "coarse.fits", np.zeros((120, 120), np.float32), w2)
    with pytest.raises(ConfigError, match=r"coarse\.fits.*pixel scale.*rotation.*resample is off"):
        cut_stamps(table, [files[0], path], size=SIZE, resample=False)


def test_edge_padding_and_flag(tmp_path, wcs_images):
    w = wcs_images.make_wcs()
    ra, dec = wcs_images.sky(w, 2.0, 60.0)
    path = wcs_images.write(tmp_path / "img.fits", wcs_images.render(w, (120, 120), [(ra, dec, 100.0)]), w)
    out = cut_stamps(Table({"ra": [ra], "dec": [dec]}), [path], size=SIZE, fill_value=-1.0)
    assert out["cutout_flag"][0] == FLAG_EDGE
    stamp, mask = out["cutout"][0, 0], out["cutout_mask"][0, 0]
    # pixels x = 2 - 8 ... -1 are off the image: columns 0..5 of the stamp
    assert mask[:, :6].all() and not mask[:, 6:].any()
    assert (stamp[:, :6] == -1.0).all()
    assert_centred(stamp)


def test_off_image_flag_keeps_row(image_scene, wcs_images):
    table, files, w, _ = image_scene
    ra, dec = wcs_images.sky(w, 500.0, 500.0)
    table.add_row({"ra": ra, "dec": dec, "id": 4})
    out = cut_stamps(table, files, size=SIZE)
    assert len(out) == 4
    assert out["cutout_flag"][3] == FLAG_OFF_IMAGE
    assert out["cutout_mask"][3].all() and (out["cutout"][3] == 0).all()
    assert not out["cutout_flag"][:3].any()


def test_nan_coordinates_are_off_image(image_scene):
    table, files, _, _ = image_scene
    table["ra"][1] = np.nan
    out = cut_stamps(table, files, size=SIZE)
    assert out["cutout_flag"][1] == FLAG_OFF_IMAGE


def test_off_some_band(image_scene, tmp_path, wcs_images):
    table, files, w, _ = image_scene
    data = fits.getdata(files[1])
    crop = data[:, :50]  # x < 50 only: source 2 (x=30) is on it, 1 and 3 are not
    path = wcs_images.write(tmp_path / "half.fits", crop, wcs_images.make_wcs(crpix=tuple(w.wcs.crpix)))
    out = cut_stamps(table, [files[0], path], size=SIZE)
    flags = list(out["cutout_flag"])
    assert flags[1] == 0
    assert flags[0] & FLAG_OFF_BAND and flags[2] & FLAG_OFF_BAND
    assert not flags[2] & FLAG_OFF_IMAGE
    # EDGE counts only bands the source is on: band 1's partly padded stamp is OFF_BAND
    assert flags[0] == FLAG_OFF_BAND
    assert out["cutout_mask"][0, 1, :, :].any() and not out["cutout_mask"][0, 0].any()


def test_nan_pixels_are_masked(tmp_path, wcs_images):
    w = wcs_images.make_wcs()
    ra, dec = wcs_images.sky(w, 60.0, 60.0)
    img = wcs_images.render(w, (120, 120), [(ra, dec, 100.0)])
    img[58, 61] = np.nan
    img[59, 62] = np.inf
    path = wcs_images.write(tmp_path / "img.fits", img, w)
    out = cut_stamps(Table({"ra": [ra], "dec": [dec]}), path, size=SIZE, fill_value=-5.0)
    assert out["cutout_flag"][0] == FLAG_MASKED
    mask, stamp = out["cutout_mask"][0, 0], out["cutout"][0, 0]
    assert mask.sum() == 2 and mask[6, 9] and mask[7, 10]
    assert stamp[6, 9] == -5.0 and np.isfinite(stamp).all()


def test_cube_input_matches_files(image_scene, tmp_path):
    table, files, w, _ = image_scene
    cube = np.stack([fits.getdata(f) for f in files])
    header = w.to_header()
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(cube, header=header).writeto(path)
    # a 3-D WCS: celestial on the first two FITS axes, a band axis third
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["CTYPE3"] = "BAND"
        hdul[0].header["WCSAXES"] = 3
    out_cube = cut_stamps(table, str(path), size=SIZE)
    out_files = cut_stamps(table, files, size=SIZE)
    np.testing.assert_array_equal(out_cube["cutout"], out_files["cutout"])
    assert out_cube["cutout"].meta["bands"] == ["cube.fits[0]", "cube.fits[1]"]


def test_glob_is_sorted(image_scene, tmp_path, wcs_images):
    table, files, w, _ = image_scene
    # written in reverse order: b_2 holds band 0's pixels, b_1 band 1's
    wcs_images.write(tmp_path / "b_2.fits", fits.getdata(files[0]), w)
    wcs_images.write(tmp_path / "b_1.fits", fits.getdata(files[1]), w)
    out = cut_stamps(table, str(tmp_path / "b_*.fits"), size=SIZE)
    assert out["cutout"].meta["bands"] == ["b_1.fits", "b_2.fits"]
    ref = cut_stamps(table, files, size=SIZE)
    np.testing.assert_array_equal(out["cutout"][:, 0], ref["cutout"][:, 1])


def test_explicit_hdu(image_scene, tmp_path):
    table, files, w, _ = image_scene
    path = tmp_path / "ext.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(fits.getdata(files[0]), header=w.to_header(), name="SCI")]
    ).writeto(path)
    out = cut_stamps(table, [path], size=SIZE, hdu="SCI")
    np.testing.assert_array_equal(out["cutout"], cut_stamps(table, files[:1], size=SIZE)["cutout"])
    out = cut_stamps(table, [path], size=SIZE)  # found without being named
    assert out["cutout"].shape == (3, 1, SIZE, SIZE)
    with pytest.raises(InputError, match=r"ext\.fits.*no HDU 'ERR'"):
        cut_stamps(table, [path], size=SIZE, hdu="ERR")


def test_large_image_is_memory_mapped(tmp_path, wcs_images):
    w = wcs_images.make_wcs(shape=(3000, 3000))
    path = tmp_path / "big.fits"
    fits.PrimaryHDU(np.ones((3000, 3000), np.float32), header=w.to_header()).writeto(path)
    ra, dec = wcs_images.sky(w, 1500.0, 1500.0)
    tracemalloc.start()
    try:
        out = cut_stamps(Table({"ra": [ra], "dec": [dec]}), [path], size=SIZE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (out["cutout"] == 1).all()
    assert peak < 4_000_000  # the image is 36 MB


def test_stamps_already_in_table(image_scene):
    table, _, _, _ = image_scene
    table["cutout"] = np.ones((3, 2, 8, 8), np.float32)
    assert stamps_in_table(table)
    assert not stamps_in_table(table, "other")
    out = cut_stamps(table, ["/no/such/file.fits"], size=SIZE)  # no image opened
    assert out is not table and out.colnames == table.colnames
    table["flat"] = np.ones((3, 8), np.float32)
    assert not stamps_in_table(table, "flat")
    with pytest.raises(InputError, match="'flat' already exists"):
        cut_stamps(table, ["x.fits"], column="flat")


# --------------------------------------------------------------------------- errors


def test_missing_file(image_scene, tmp_path):
    table, files, _, _ = image_scene
    with pytest.raises(InputError, match=r"nope\.fits' not found"):
        cut_stamps(table, [files[0], tmp_path / "nope.fits"])


def test_glob_without_match(image_scene, tmp_path):
    table, _, _, _ = image_scene
    with pytest.raises(InputError, match="no image file matches"):
        cut_stamps(table, str(tmp_path / "zz_*.fits"))


def test_no_celestial_wcs(image_scene, tmp_path, wcs_images):
    table, _, _, _ = image_scene
    path = wcs_images.write(tmp_path / "plain.fits", np.zeros((20, 20), np.float32), None)
    with pytest.raises(InputError, match=r"plain\.fits' has no celestial WCS"):
        cut_stamps(table, [path])


def test_not_fits(image_scene, tmp_path):
    table, _, _, _ = image_scene
    path = tmp_path / "junk.fits"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"junk\.fits"):
        cut_stamps(table, [path])


def test_missing_coordinate_column(image_scene):
    table, files, _, _ = image_scene
    table.rename_column("ra", "RA_deg")
    with pytest.raises(InputError, match=r"'ra' not found; did you mean 'RA_deg'"):
        cut_stamps(table, files)


def test_non_numeric_coordinate(image_scene):
    table, files, _, _ = image_scene
    table["ra_str"] = ["a", "b", "c"]
    with pytest.raises(InputError, match="'ra_str' must be a 1-D numeric column"):
        cut_stamps(table, files, ra="ra_str")


@pytest.mark.parametrize("size", [0, -4, 2.5, True, "16"])
def test_bad_size(image_scene, size):
    table, files, _, _ = image_scene
    with pytest.raises(ConfigError, match="'size'"):
        cut_stamps(table, files, size=size)


def test_wrong_dimensionality(image_scene, tmp_path):
    table, files, w, _ = image_scene
    header = w.to_header()
    path = tmp_path / "four.fits"
    fits.PrimaryHDU(np.zeros((2, 2, 20, 20), np.float32), header=header).writeto(path)
    with pytest.raises(InputError, match=r"four\.fits' has 4-D data"):
        cut_stamps(table, [path])
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((2, 20, 20), np.float32), header=header).writeto(cube)
    with pytest.raises(InputError, match=r"cube\.fits' is a 3-D cube"):
        cut_stamps(table, [files[0], cube])


def test_nan_in_resampled_band_is_masked(image_scene, tmp_path, wcs_images):
    table, files, _, coords = image_scene
    w2 = wcs_images.make_wcs(shape=(70, 70), scale=2 * wcs_images.SCALE, rot_deg=30.0)
    img = wcs_images.render(w2, (70, 70), [(ra, dec, 100.0) for ra, dec in coords])
    x, y = w2.world_to_pixel_values(*coords[0])
    img[int(round(float(y))), int(round(float(x)))] = np.nan
    path = wcs_images.write(tmp_path / "coarse.fits", img, w2)
    out = cut_stamps(table, [files[0], path], size=SIZE, fill_value=0.0)
    assert out["cutout_flag"][0] == FLAG_MASKED and not out["cutout_flag"][1:].any()
    assert out["cutout_mask"][0, 1].any() and not out["cutout_mask"][0, 0].any()
    assert np.isfinite(out["cutout"]).all()
