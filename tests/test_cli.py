"""The command line as a user meets it: happy paths and every bad input.

Every bad input must give one line starting with ``error:``, exit status 2,
and leave no file behind.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from click.testing import CliRunner

from astroml_pipe.cli import cli
from astroml_pipe.stages.photoz import read_pdf

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "catalogs" / "demo.fits"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory, make_catalog, tiny_yaml):
    """A folder with a training catalog, a test catalog, a pipeline file and a trained model."""
    folder = tmp_path_factory.mktemp("cli")
    make_catalog(1500, seed=1).write(folder / "train.fits")
    make_catalog(700, seed=2).write(folder / "test.fits")
    (folder / "pipeline.yaml").write_text(tiny_yaml("catboost"))
    result = invoke("train", folder / "pipeline.yaml", folder / "train.fits", "-o", folder / "model", "-q")
    assert result.exit_code == 0, result.output
    return folder


# -- happy paths ------------------------------------------------------------------


def test_default_pipeline_on_demo_catalog(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", DEMO, "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "demo.astroml.fits"
    assert "output:" in result.stdout and "5,000 rows" in result.stdout
    table = Table.read(out)
    assert len(table) == 5000 and "z_phot" in table.colnames
    z, pdf = read_pdf(table)
    assert pdf.shape == (5000, 301)
    header = fits.getheader(out, 0)
    assert header["PIPENAME"] == "default-photoz" and len(header["INSHA256"]) == 64
    result = invoke("evaluate", out, "--truth", "redshift", "-o", tmp_path / "report", "-q")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    # The bundled model is good on data like its training set.
    assert metrics["sigma_nmad"] < 0.035 and metrics["outlier_fraction"] < 0.06 and abs(metrics["bias"]) < 0.01
    assert (tmp_path / "report" / "zphot_vs_ztrue.png").exists()


def test_bundled_star_galaxy_model(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    monkeypatch.chdir(tmp_path)
    stamps = tmp_path / "stamps.fits"
    result = invoke("simulate", "cutouts", "-n", 400, "--seed", 77, "--bands", "u,g,r,i,z", "--neighbours", 0.2,
                    "-o", stamps, "-q")
    assert result.exit_code == 0, result.output
    result = invoke("run", stamps, "--model", "star-galaxy", "-q")
    assert result.exit_code == 0, result.output
    header = fits.getheader(tmp_path / "stamps.astroml.fits", 0)
    assert header["PIPENAME"] == "default-star-galaxy"
    result = invoke("evaluate", tmp_path / "stamps.astroml.fits", "--truth", "is_galaxy", "-o", tmp_path / "rep", "-q")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    # The bundled CNN separates stars from galaxies like its training set (r = 18-24, LSST-like).
    assert metrics["roc_auc"] > 0.99 and metrics["ece"] < 0.05
    # Its p_galaxy is stacked; evaluate compares it with the CNN alone, calibrated and raw.
    assert list(metrics["compare"]) == ["p_galaxy", "p_galaxy_cnn", "p_galaxy_raw"]
    # Stamps of another shape are refused with one line naming what the model expects.
    result = invoke("simulate", "cutouts", "-n", 5, "--bands", "g,r,i", "-o", tmp_path / "three.fits", "-q")
    assert result.exit_code == 0
    assert_one_line_error(invoke("run", tmp_path / "three.fits", "--model", "star-galaxy", "-o", tmp_path / "x.fits"),
                          "trained on 5 bands x 48 x 48 pixels")
    assert not (tmp_path / "x.fits").exists()


def test_train_run_evaluate_chain(work, tmp_path):
    out = tmp_path / "result.fits"
    result = invoke("run", work / "test.fits", "--model", work / "model", "-o", out, "--chunk-size", 256, "-q")
    assert result.exit_code == 0, result.output
    assert "700 rows" in result.stdout
    chunked = Table.read(out)
    # Streaming in chunks of 256 gives exactly what the whole table gives in memory.
    from astroml_pipe.core.pipeline import Pipeline

    whole = Pipeline.load(work / "model").run(Table.read(work / "test.fits"))
    np.testing.assert_array_equal(chunked["z_phot_pdf"], whole["z_phot_pdf"])
    np.testing.assert_array_equal(chunked["z_phot"], whole["z_phot"])
    result = invoke("evaluate", out, "--truth", "redshift")
    assert result.exit_code == 0 and "sigma_NMAD" in result.stdout


@pytest.mark.parametrize("ext", [".parquet", ".hdf5"])
def test_other_output_formats(work, tmp_path, ext):
    out = tmp_path / f"result{ext}"
    assert invoke("run", work / "test.fits", "--model", work / "model", "-o", out, "-q").exit_code == 0
    table = Table.read(out, **({"path": "data"} if ext == ".hdf5" else {}))
    assert read_pdf(table)[1].shape == (700, 301)


def test_columns_found_by_spelling_or_named(work, tmp_path):
    table = Table.read(work / "test.fits")
    for band in "ugrizy":
        table.rename_column(f"mag_{band}", f"{band}_mag")
        table.rename_column(f"magerr_{band}", f"MAGERR_{band}_X")
    table.write(tmp_path / "renamed.fits")
    result = invoke("run", tmp_path / "renamed.fits", "--model", work / "model", "-o", tmp_path / "a.fits", "-q")
    assert_one_line_error(result, "cannot find the mag_err columns", "--columns mag_err=")
    result = invoke("run", tmp_path / "renamed.fits", "--model", work / "model", "-o", tmp_path / "a.fits",
                    "--columns", "mag_err=MAGERR_{band}_X", "-q")
    assert result.exit_code == 0, result.output
    assert "z_phot" in Table.read(tmp_path / "a.fits").colnames


def test_stages_and_validate(work):
    result = invoke("stages")
    assert result.exit_code == 0
    for name in ("features.colors", "photoz.catboost", "photoz.random_forest"):
        assert name in result.stdout
    assert "n_estimators (int, default 100)" in result.stdout
    result = invoke("validate", work / "pipeline.yaml", work / "train.fits", "--training")
    assert result.exit_code == 0 and result.stdout.startswith("ok:")


def test_validate_lists_all_problems(work, tmp_path):
    (tmp_path / "p.yaml").write_text(
        "stages:\n  - {uses: features.colors}\n  - {uses: photoz.catboost, with: {target: z_spec}}\n"
    )
    result = invoke("validate", tmp_path / "p.yaml", work / "train.fits", "--training")
    assert result.exit_code == 2
    assert "needs column 'z_spec'" in result.stderr


def test_simulate_photometry(tmp_path):
    result = invoke("simulate", "photometry", "-n", 300, "--seed", 3, "-o", tmp_path / "sim.fits", "-q")
    assert result.exit_code == 0, result.output
    assert len(Table.read(tmp_path / "sim.fits")) == 300


def test_simulate_cutouts(tmp_path):
    out = tmp_path / "stamps.fits"
    result = invoke("simulate", "cutouts", "-n", 12, "--seed", 3, "--bands", "g,r", "--stamp-size", 20,
                    "--mag-range", "19,20", "--neighbours", 0.5, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert "12 stamps (2 x 20 x 20" in result.output
    table = Table.read(out)
    assert table["cutout"].shape == (12, 2, 20, 20)
    assert np.all((table["mag_r"] >= 19) & (table["mag_r"] <= 20))
    # same seed, same stamps
    again = invoke("simulate", "cutouts", "-n", 12, "--seed", 3, "--bands", "g,r", "--stamp-size", 20,
                   "--mag-range", "19,20", "--neighbours", 0.5, "-o", tmp_path / "again.fits", "-q")
    assert again.exit_code == 0
    assert np.array_equal(Table.read(tmp_path / "again.fits")["cutout"], table["cutout"])


def test_simulate_cutouts_bad_input(tmp_path):
    out = tmp_path / "s.fits"
    assert_one_line_error(invoke("simulate", "cutouts", "-n", 5, "--bands", "g,w", "-o", out), "bands", "'w'")
    result = invoke("simulate", "cutouts", "-n", 5, "--mag-range", "20", "-o", out)
    assert result.exit_code == 2 and "LOW,HIGH" in result.output
    assert files_in(tmp_path) == []
    out.write_text("keep me")
    assert_one_line_error(invoke("simulate", "cutouts", "-n", 5, "-o", out), "already exists")
    assert out.read_text() == "keep me"


# -- bad input: one line, exit status 2, nothing written ---------------------------


def test_missing_file(work, tmp_path):
    assert_one_line_error(invoke("run", tmp_path / "nope.fits", "--model", work / "model", "-o", tmp_path / "o.fits"),
                          "nope.fits' does not exist")
    assert files_in(tmp_path) == []


def test_not_a_catalog(work, tmp_path):
    (tmp_path / "notes.fits").write_text("these are my notes, not a FITS file\n" * 20)
    result = invoke("run", tmp_path / "notes.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "notes.fits")
    assert files_in(tmp_path) == ["notes.fits"]


def test_truncated_fits(work, tmp_path):
    data = (work / "test.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(data[: len(data) // 2])
    result = invoke("run", tmp_path / "cut.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "cut.fits", "truncated")
    assert files_in(tmp_path) == ["cut.fits"]


def test_no_rows(work, tmp_path):
    Table.read(work / "test.fits")[:0].write(tmp_path / "empty.fits")
    result = invoke("run", tmp_path / "empty.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "empty.fits' has no rows")
    assert files_in(tmp_path) == ["empty.fits"]


def test_required_column_missing(work, tmp_path):
    table = Table.read(work / "test.fits")
    table.rename_column("mag_g", "mag_gg")
    table.write(tmp_path / "cat.fits")
    result = invoke("run", tmp_path / "cat.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "'mag_g'", "mag_gg")
    assert files_in(tmp_path) == ["cat.fits"]


def test_non_numeric_column(work, tmp_path):
    table = Table.read(work / "test.fits")
    table["mag_r"] = np.array(["bright"] * len(table))
    table.write(tmp_path / "cat.fits")
    result = invoke("run", tmp_path / "cat.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "column 'mag_r'", "needs numbers")
    assert files_in(tmp_path) == ["cat.fits"]


@pytest.mark.parametrize("value", [np.nan, 99.0])
def test_band_all_nan_or_sentinel(work, tmp_path, value):
    table = Table.read(work / "test.fits")
    table["mag_z"] = value
    table.write(tmp_path / "cat.fits")
    result = invoke("run", tmp_path / "cat.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "column 'mag_z'", "no usable values")
    assert files_in(tmp_path) == ["cat.fits"]


def test_unknown_stage(work, tmp_path):
    (tmp_path / "p.yaml").write_text("stages:\n  - {uses: photoz.catbost}\n")
    result = invoke("train", tmp_path / "p.yaml", work / "train.fits", "-o", tmp_path / "m")
    assert_one_line_error(result, "unknown stage 'photoz.catbost'", "did you mean 'photoz.catboost'")
    assert files_in(tmp_path) == ["p.yaml"]


def test_unknown_parameter(work, tmp_path):
    (tmp_path / "p.yaml").write_text("stages:\n  - {uses: photoz.catboost, with: {iteration: 3}}\n")
    result = invoke("train", tmp_path / "p.yaml", work / "train.fits", "-o", tmp_path / "m")
    assert_one_line_error(result, "unknown parameter 'iteration'", "did you mean 'iterations'")
    assert files_in(tmp_path) == ["p.yaml"]


def test_output_equal_to_input(work, tmp_path):
    (tmp_path / "cat.fits").write_bytes((work / "test.fits").read_bytes())
    before = (tmp_path / "cat.fits").read_bytes()
    result = invoke("run", tmp_path / "cat.fits", "--model", work / "model", "-o", tmp_path / "cat.fits", "--overwrite")
    assert_one_line_error(result, "is the input catalog")
    assert (tmp_path / "cat.fits").read_bytes() == before and files_in(tmp_path) == ["cat.fits"]


def test_output_folder_not_writable(work, tmp_path):
    (tmp_path / "afile").write_text("a file where a folder should be")
    result = invoke("run", work / "test.fits", "--model", work / "model", "-o", tmp_path / "afile" / "o.fits")
    assert_one_line_error(result, "cannot write output")
    assert files_in(tmp_path) == ["afile"]


def test_incompatible_model_folder(work, tmp_path):
    import shutil

    shutil.copytree(work / "model", tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    manifest.update(format=2, astroml_pipe="3.0.0")
    (tmp_path / "model" / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("run", work / "test.fits", "--model", tmp_path / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "astroml-pipe 3.0.0", "model format 2", "retrain")
    assert files_in(tmp_path) == ["model"]


def test_existing_output_needs_overwrite(work, tmp_path):
    (tmp_path / "o.fits").write_text("keep me")
    result = invoke("run", work / "test.fits", "--model", work / "model", "-o", tmp_path / "o.fits")
    assert_one_line_error(result, "already exists", "--overwrite")
    assert (tmp_path / "o.fits").read_text() == "keep me"


def test_usage_error_is_status_2():
    result = invoke("run")
    assert result.exit_code == 2 and "Missing argument 'CATALOG'" in result.stderr


def test_debug_shows_traceback(work, tmp_path):
    result = invoke("run", tmp_path / "nope.fits", "--model", work / "model", "--debug")
    assert result.exit_code == 1 and result.exception is not None


def test_simulate_without_the_sim_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "galsim" else real(name, *a))
    result = invoke("simulate", "cutouts", "-n", 3, "-o", tmp_path / "s.fits")
    assert_one_line_error(result, "needs galsim", 'pip install "astroml-pipe[sim]"')
    assert files_in(tmp_path) == []
    # The photometry simulator needs no extra: its template fluxes ship with the package.
    result = invoke("simulate", "photometry", "-n", 3, "-o", tmp_path / "p.fits", "-q")
    assert result.exit_code == 0, result.output
    assert files_in(tmp_path) == ["p.fits"]
