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
