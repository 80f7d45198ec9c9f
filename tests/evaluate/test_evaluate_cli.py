"""``astroml-pipe evaluate`` on a result catalog made by a tiny trained pipeline."""

import json
from pathlib import Path

import pytest
from astropy.table import Table
from click.testing import CliRunner

from astroml_pipe.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(result):
    """The one line an input error prints (exit status 2)."""
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.fixture(scope="module")
def result(tmp_path_factory, make_catalog, tiny_yaml):
    """A photo-z result catalog (with PDFs, redshift and mag_i) from a freshly trained tiny pipeline."""
    folder = tmp_path_factory.mktemp("evaluate")
    make_catalog(800, seed=1).write(folder / "train.fits")
    make_catalog(300, seed=2).write(folder / "test.fits")
    (folder / "pipeline.yaml").write_text(tiny_yaml("catboost"))
    for args in (("train", folder / "pipeline.yaml", folder / "train.fits", "-o", folder / "model"),
                 ("run", folder / "test.fits", "--model", folder / "model", "-o", folder / "result.fits")):
        outcome = invoke(*args, "-q")
        assert outcome.exit_code == 0, outcome.output
    return folder / "result.fits"


def test_evaluate_with_pdfs_writes_the_report(result, tmp_path):
    out = invoke("evaluate", result, "--truth", "redshift", "-o", tmp_path / "report", "-q")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    for label in ("sigma_NMAD", "sigma_IQR", "outlier fraction", "bias", "PIT KS", "PIT CvM", "CRPS mean", "CDE loss"):
        assert any(line.startswith(label) for line in lines), label
    metrics = json.loads(lines[-2])
    assert metrics == json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == metrics["n_pdf"] == 300
    assert metrics["pdf"] == "z_phot_pdf" and metrics["magnitude"] == "mag_i"
    assert metrics["sigma_nmad"] < 0.1 and 0 < metrics["crps_mean"] < 0.2
    assert lines[-1] == f"report:   {tmp_path / 'report' / 'report.html'}"
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["metrics.json", "metrics_vs_magnitude.png", "metrics_vs_redshift.png", "nz.png", "pit.png",
                     "report.html", "zphot_vs_ztrue.png"]


def test_committee_members_and_point_metrics_only(result):
    out = invoke("evaluate", result, "--truth", "redshift", "--prediction", "z_phot_median",
                 "--prediction", "z_phot_mode", "-q")
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.stdout.splitlines()[-1])
    assert metrics["prediction"] == "z_phot_median" and "pit_ks" not in metrics  # no z_phot_median_pdf column
    assert list(metrics["members"]) == ["z_phot_median", "z_phot_mode"]
    assert "member z_phot_mode: N = 300, sigma_NMAD = " in out.stdout
    out = invoke("evaluate", result, "--truth", "redshift", "--pdf", "z_phot_pdf", "--prediction", "z_phot_mode",
                 "--magnitude", "mag_r")
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.stdout.splitlines()[-1])
    assert metrics["pdf"] == "z_phot_pdf" and metrics["bins"]["magnitude"]["column"] == "mag_r"


def test_without_a_pdf_column(result, tmp_path):
    table = Table.read(result)
    del table["z_phot_pdf"]
    table.write(tmp_path / "nopdf.fits")
    out = invoke("evaluate", tmp_path / "nopdf.fits", "--truth", "redshift", "-q")
    assert out.exit_code == 0, out.output
    assert "PIT KS" not in out.stdout and json.loads(out.stdout.splitlines()[-1])["pdf"] is None


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("--truth", "redshfit"), ["has no column 'redshfit'", "did you mean 'redshift'"]),
        (("--truth", "redshift", "--prediction", "zz"), ["has no column 'zz'"]),
        (("--truth", "redshift", "--pdf", "nope_pdf"), ["has no PDF column 'nope_pdf'"]),
        (("--truth", "redshift", "--pdf", "z_phot_lo"), ["'z_phot_lo'", "is not a PDF column"]),
        (("--truth", "redshift", "--magnitude", "mag_q"), ["has no magnitude column 'mag_q'"]),
        (("--truth", "redshift", "--prediction", "z_phot_pdf"), ["'z_phot_pdf'", "expected one number per row"]),
    ],
)
def test_errors_are_one_line_naming_file_and_column(result, args, fragments):
    line = error_line(invoke("evaluate", result, *args))
    assert all(fragment in line for fragment in ["result.fits", *fragments]), line


def test_missing_file_and_unusable_grid(result, tmp_path):
    assert "does not exist" in error_line(invoke("evaluate", tmp_path / "nothere.fits", "--truth", "redshift"))
    table = Table.read(result)
    for key in [k for k in table.meta if k.startswith("PDF")]:
        del table.meta[key]
    table.write(tmp_path / "nogrid.fits")
    line = error_line(invoke("evaluate", tmp_path / "nogrid.fits", "--truth", "redshift"))
    assert "nogrid.fits" in line and "no grid recorded for PDF column 'z_phot_pdf'" in line
    blocked = Path(tmp_path / "file")
    blocked.write_text("")
    out = invoke("evaluate", result, "--truth", "redshift", "-o", blocked / "report")
    assert "cannot write report folder" in error_line(out)


# -- star-galaxy classification -------------------------------------------------------

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

CLASSIFY_LABELS = ("N", "galaxies", "stars", "ROC AUC", "galaxy purity (c_g >= 0.96)",
                   "star completeness (p_s >= 0.97)", "ECE")


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    """A classification result: is_galaxy (bool), mag_r, p_galaxy and p_galaxy_raw of one score; no z_phot."""
    rng = np.random.default_rng(5)
    n = 1000
    is_galaxy = rng.random(n) < 0.5
    mag = rng.uniform(17, 24, n)
    score = np.where(is_galaxy, 1.0, -1.0) + rng.normal(0, 0.3 * (mag - 16), n)
    table = Table({"is_galaxy": is_galaxy, "mag_r": mag, "redshift": rng.uniform(0, 2, n),
                   "p_galaxy": 1 / (1 + np.exp(-2 * score)), "p_galaxy_raw": 1 / (1 + np.exp(-4 * score))})
    path = tmp_path_factory.mktemp("classify") / "classified.fits"
    table.write(path)
    return path


def test_evaluate_classification_is_chosen_from_a_boolean_truth(classified, tmp_path):
    out = invoke("evaluate", classified, "--truth", "is_galaxy", "-o", tmp_path / "report", "-q")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert [line.split(" = ")[0].rstrip() for line in lines[:7]] == list(CLASSIFY_LABELS)
    assert len({line.index(" = ") for line in lines[:7]}) == 1  # aligned
    # the main prediction is printed in full above; only the others get a compare line
    assert lines[7].startswith("compare p_galaxy_raw: N = 1,000, ROC AUC = ")
    assert not any(line.startswith("compare p_galaxy:") for line in lines)
    metrics = json.loads(lines[-2])
    assert metrics == json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert lines[-1] == f"report:   {tmp_path / 'report' / 'report.html'}"
    table = Table.read(classified)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(table["is_galaxy"], table["p_galaxy"]), rel=1e-12)
    assert metrics["prediction"] == "p_galaxy" and metrics["magnitude"] == "mag_r" and metrics["n"] == 1000
    assert "sigma_nmad" not in metrics and len(metrics["bins"]["magnitude"]["rows"]) == 7
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["metrics.json", "metrics_vs_magnitude.png", "reliability.png", "report.html", "roc.png"]


def test_evaluate_task_choice(classified, tmp_path):
    # no z_phot but a p_galaxy: classification, even for a truth that is not boolean
    table = Table.read(classified)
    table["is_galaxy"] = table["is_galaxy"].astype(float)
    table.write(tmp_path / "float_truth.fits")
    out = invoke("evaluate", tmp_path / "float_truth.fits", "--truth", "is_galaxy", "--prediction", "p_galaxy_raw",
                 "--magnitude", "redshift", "-q")
    assert out.exit_code == 0, out.output
    assert "ROC AUC" in out.stdout and "sigma_NMAD" not in out.stdout
    metrics = json.loads(out.stdout.splitlines()[-1])
    assert metrics["prediction"] == "p_galaxy_raw" and metrics["magnitude"] == "redshift" and "compare" not in metrics
    assert metrics["bins"]["magnitude"]["edges"] == [0, 1, 2]
    # a z_phot and a float truth: photo-z; an integer 0/1 truth: classification
    table["z_phot"] = table["redshift"] + 0.01
    table.write(tmp_path / "float_truth_and_z_phot.fits")
    table["is_galaxy"] = table["is_galaxy"].astype("i4")
    table.write(tmp_path / "both.fits")
    out = invoke("evaluate", tmp_path / "both.fits", "--truth", "redshift", "-q")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("N ") and "sigma_NMAD" in out.stdout and "ROC AUC" not in out.stdout
    out = invoke("evaluate", tmp_path / "both.fits", "--truth", "is_galaxy", "-q")
    assert out.exit_code == 0, out.output
    assert "ROC AUC" in out.stdout and json.loads(out.stdout.splitlines()[-1])["n_galaxies"] > 400
    # --task forces it
    line = error_line(invoke("evaluate", classified, "--truth", "redshift", "--task", "photoz"))
    assert "has no column 'z_phot'" in line
    out = invoke("evaluate", tmp_path / "float_truth_and_z_phot.fits", "--truth", "is_galaxy", "-q")
    assert out.exit_code == 0 and "sigma_NMAD" in out.stdout  # auto: photo-z
    out = invoke("evaluate", tmp_path / "float_truth_and_z_phot.fits", "--truth", "is_galaxy", "--task", "classify",
                 "-q")
    assert out.exit_code == 0 and "ROC AUC" in out.stdout
    line = error_line(invoke("evaluate", classified, "--truth", "is_galaxy", "--pdf", "p_pdf"))
    assert "--pdf applies to photometric redshifts" in line
    assert invoke("evaluate", classified, "--truth", "is_galaxy", "--task", "pz").exit_code == 2


def test_evaluate_classification_bad_truth_leaves_no_report(classified, tmp_path):
    out = invoke("evaluate", classified, "--truth", "redshift", "--task", "classify", "-o", tmp_path / "report")
    line = error_line(out)
    assert "classified.fits" in line and "column 'redshift'" in line and "other than 0 and 1" in line
    assert "expected true/false or 0/1 per row (1 = galaxy)" in line
    assert not list(tmp_path.iterdir())
    assert out.stdout == ""
