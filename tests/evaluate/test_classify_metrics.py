"""Classification metrics on hand-made cases."""

import numpy as np
import pytest

from astroml_pipe.evaluate.classify import classification_metrics, plot_reliability, plot_roc


def test_perfect_classifier():
    y = np.array([0, 0, 1, 1, 1], bool)
    m = classification_metrics(y.astype(float), y)
    assert m["roc_auc"] == 1.0 and m["ece"] == 0.0
    assert m["galaxy_purity_at_completeness"] == 1.0 and m["star_completeness_at_purity"] == 1.0
    assert (m["n"], m["n_galaxies"], m["n_stars"]) == (5, 3, 2)


def test_random_classifier():
    rng = np.random.default_rng(1)
    y = rng.random(20000) < 0.5
    m = classification_metrics(rng.random(20000), y)
    assert m["roc_auc"] == pytest.approx(0.5, abs=0.02)
    assert m["galaxy_purity_at_completeness"] == pytest.approx(0.5, abs=0.03)
    # constant p: AUC 0.5 exactly (ties count half), ECE = |0.5 - fraction|
    m = classification_metrics(np.full(4, 0.5), [1, 0, 0, 0])
    assert m["roc_auc"] == 0.5 and m["ece"] == pytest.approx(0.25)


def test_operating_points_constructed():
    # 100 galaxies with p = 0.01, 0.02, ..., 1.00; 100 stars with p = 0.00025, 0.00075, ..., 0.04975
    gal = np.arange(1, 101) / 100.0
    star = np.arange(1, 101) * 0.0005 - 0.00025
    p = np.r_[gal, star]
    y = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    m = classification_metrics(p, y)
    # c_g >= 0.96 needs t <= 0.05; at t = 0.05 the 96 galaxies above are alone: purity 1
    assert m["galaxy_purity_at_completeness"] == pytest.approx(1.0)
    # stars are p < t.  t = 0.02: 40 stars + 1 galaxy (0.01) -> p_s = 40/41 = 0.976 >= 0.97;
    # any t > 0.02 lets in 2 galaxies with <= 60 stars -> p_s <= 60/62 = 0.968 < 0.97
    assert m["star_completeness_at_purity"] == pytest.approx(0.40)
    # AUC: 1 - fraction of (galaxy, star) pairs in the wrong order (no ties here)
    wrong = np.mean(gal[:, None] < star[None, :])
    assert m["roc_auc"] == pytest.approx(1 - wrong)
    # purity 0.97 out of reach: no threshold, completeness 0
    m = classification_metrics([0.1, 0.2, 0.3, 0.4], [False, True, False, True])
    assert m["star_completeness_at_purity"] == 1 / 2
    m = classification_metrics([0.9, 0.2, 0.3], [False, True, True])
    assert m["star_completeness_at_purity"] == 0.0 and m["roc_auc"] == 0.0


def test_ece_bins():
    # 15 bins: p = 0.1 for 10 objects with 5 galaxies -> |0.5 - 0.1| = 0.4
    m = classification_metrics(np.full(10, 0.1), np.arange(10) < 5)
    assert m["ece"] == pytest.approx(0.4)


def test_magnitude_bins():
    rng = np.random.default_rng(2)
    y = rng.random(1000) < 0.5
    mag = rng.uniform(18, 22, 1000)
    p = np.where(mag < 20, y.astype(float), rng.random(1000))
    m = classification_metrics(p, y, magnitude=mag, bins=[18, 20, 22])
    assert [b["mag_lo"] for b in m["bins"]] == [18.0, 20.0]
    assert m["bins"][0]["roc_auc"] == 1.0 and m["bins"][1]["roc_auc"] < 0.6
    assert sum(b["n"] for b in m["bins"]) == 1000
    assert len(classification_metrics(p, y, magnitude=mag)["bins"]) == 4
    with pytest.raises(ValueError):
        classification_metrics(p, y, magnitude=mag, bins=[20, 18])


def test_one_class_and_plots(tmp_path):
    m = classification_metrics([0.2, 0.3], [True, True])
    assert np.isnan(m["roc_auc"]) and m["n_stars"] == 0
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.5
    p = np.clip(y + rng.normal(0, 0.3, 300), 0, 1)
    for path in (plot_roc(p, y, tmp_path / "roc.png"), plot_reliability(p, y, tmp_path / "rel.png")):
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


# -- evaluate_classification: a result catalog, the report ---------------------------

import json  # noqa: E402

from astropy.table import Table  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_auc_score  # noqa: E402

from astroml_pipe.core.errors import InputError  # noqa: E402
from astroml_pipe.evaluate import classify  # noqa: E402
from astroml_pipe.evaluate.classify import (  # noqa: E402
    detect_task,
    evaluate_classification,
    plot_metrics_vs_magnitude,
)

PNG = b"\x89PNG\r\n\x1a\n"


def classified(n=2000, seed=4):
    """A result catalog: is_galaxy, mag_r, a calibrated p_galaxy and an overconfident p_galaxy_raw of one score."""
    rng = np.random.default_rng(seed)
    is_galaxy = rng.random(n) < 0.6
    mag = rng.uniform(16, 24, n)
    score = np.where(is_galaxy, 1.0, -1.0) + rng.normal(0, 0.2 + 0.3 * (mag - 16), n)  # harder when faint
    return Table({
        "is_galaxy": is_galaxy,
        "mag_r": mag.astype("f4"),
        "p_galaxy": 1 / (1 + np.exp(-2 * score)),
        "p_galaxy_raw": (1 / (1 + np.exp(-6 * score))).astype("f4"),
    })


def by_sklearn(p, y):
    """AUC and the two operating points, from scikit-learn's curves."""
    precision, recall, _ = precision_recall_curve(y, p)
    star_precision, star_recall, _ = precision_recall_curve(~y, -p)
    return {
        "roc_auc": roc_auc_score(y, p),
        "galaxy_purity_at_completeness": precision[recall >= classify.GALAXY_COMPLETENESS].max(),
        "star_completeness_at_purity": star_recall[star_precision >= classify.STAR_PURITY].max(),
    }


def test_evaluate_classification_matches_sklearn_and_writes_the_report(tmp_path):
    table = classified()
    y, p = np.asarray(table["is_galaxy"]), np.asarray(table["p_galaxy"])
    m = evaluate_classification(table, "is_galaxy", report_dir=tmp_path / "report")
    assert (m["prediction"], m["truth"], m["magnitude"]) == ("p_galaxy", "is_galaxy", "mag_r")
    assert (m["n"], m["n_galaxies"], m["n_stars"]) == (2000, y.sum(), (~y).sum())
    for key, value in by_sklearn(p, y).items():
        assert m[key] == pytest.approx(value, rel=1e-12), key
    in_bin = np.minimum(np.floor(np.asarray(table["mag_r"])) - 16, 7).astype(int)
    p_bin = np.minimum(p * 15, 14).astype(int)  # 15 equal-width bins of p, the last closed
    gaps = [abs(y[p_bin == b].mean() - p[p_bin == b].mean()) * np.sum(p_bin == b) for b in np.unique(p_bin)]
    assert m["ece"] == pytest.approx(np.sum(gaps) / 2000)
    section = m["bins"]["magnitude"]
    assert section["column"] == "mag_r" and section["edges"] == list(range(16, 25))
    for k, row in enumerate(section["rows"]):
        assert (row["lo"], row["hi"], row["n"]) == (16 + k, 17 + k, np.sum(in_bin == k))
        assert row["roc_auc"] == pytest.approx(roc_auc_score(y[in_bin == k], p[in_bin == k]), rel=1e-12)
    assert section["rows"][0]["roc_auc"] > 0.99 > 0.8 > section["rows"][-1]["roc_auc"]
    # the raw probability is a monotone function of the same score: the same ranking (but for float32
    # saturation at 1), worse calibration
    raw = m["compare"]["p_galaxy_raw"]
    assert list(m["compare"]) == ["p_galaxy", "p_galaxy_raw"]
    assert raw["roc_auc"] == pytest.approx(m["roc_auc"], abs=1e-3)
    assert raw["ece"] > m["ece"] + 0.02
    folder = tmp_path / "report"
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["metrics.json", "metrics_vs_magnitude.png", "reliability.png", "report.html", "roc.png"]
    assert json.loads((folder / "metrics.json").read_text()) == m
    html = (folder / "report.html").read_text()
    for name in files:
        if name.endswith(".png"):
            assert (folder / name).read_bytes()[:8] == PNG and f'<img src="{name}"' in html
    assert "Star-galaxy classification: p_galaxy against is_galaxy" in html and "ROC AUC" in html
    assert "<h2>Per magnitude bin</h2>" in html and "p_galaxy_raw" in html and "sigma_NMAD" not in html
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report"]  # no temporary folder left


def test_evaluate_classification_of_a_file(tmp_path):
    table = classified(600)
    table["is_galaxy"] = table["is_galaxy"].astype("i2")  # 0/1 integers
    table.rename_column("mag_r", "mag_i")
    table["mag_i"][:10] = 99.0  # non-detections: in no bin
    table["p_galaxy"][10:20] = np.nan  # ignored
    table.write(tmp_path / "result.fits")
    m = evaluate_classification(tmp_path / "result.fits", "is_galaxy", others=[])
    assert m["magnitude"] == "mag_i" and "compare" not in m and m["n"] == 590
    assert m["bins"]["magnitude"]["edges"][-1] == 24 and sum(r["n"] for r in m["bins"]["magnitude"]["rows"]) == 580
    m = evaluate_classification(tmp_path / "result.fits", "is_galaxy", prediction="p_galaxy_raw", magnitude=None,
                                report_dir=tmp_path / "report")
    assert m["bins"] == {} and m["n"] == 600 and "compare" not in m
    assert not (tmp_path / "report" / "metrics_vs_magnitude.png").exists()
    assert (tmp_path / "report" / "roc.png").exists()


@pytest.mark.parametrize(
    "change, kwargs, fragments",
    [
        (lambda t: t, {"truth": "mag_r"}, ["column 'mag_r' in the catalog holds values other than 0 and 1",
                                           "expected true/false or 0/1 per row (1 = galaxy)"]),
        (lambda t: t.__setitem__("kind", ["galaxy"] * len(t)), {"truth": "kind"},
         ["column 'kind' in the catalog holds <U6 values", "expected true/false or 0/1"]),
        (lambda t: t, {"truth": "is_galaxi"}, ["has no column 'is_galaxi'", "did you mean 'is_galaxy'"]),
        (lambda t: t, {"truth": "is_galaxy", "magnitude": "mag_x"}, ["has no magnitude column 'mag_x'"]),
        (lambda t: t.__setitem__("p_galaxy", t["p_galaxy"] * 3), {"truth": "is_galaxy"},
         ["column 'p_galaxy' in the catalog holds values outside [0, 1]", "expected the probability"]),
        (lambda t: t.__setitem__("p_galaxy", np.nan), {"truth": "is_galaxy"},
         ["columns 'p_galaxy' and 'is_galaxy': no object has both a finite probability and a known class"]),
    ],
)
def test_evaluate_classification_errors_name_the_column(tmp_path, change, kwargs, fragments):
    table = classified(100)
    change(table)
    with pytest.raises(InputError) as info:
        evaluate_classification(table, report_dir=tmp_path / "report", **kwargs)
    message = str(info.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message
    assert not list(tmp_path.iterdir())  # nothing written


def test_report_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    table = classified(300)

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(classify, "plot_reliability", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        evaluate_classification(table, "is_galaxy", report_dir=tmp_path / "new")
    assert not list(tmp_path.iterdir())  # neither the folder nor a temporary one
    old = tmp_path / "old"
    old.mkdir()
    (old / "roc.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        evaluate_classification(table, "is_galaxy", report_dir=old)
    assert [path.name for path in tmp_path.iterdir()] == ["old"] and (old / "roc.png").read_bytes() == b"old"
    monkeypatch.undo()
    m = evaluate_classification(table, "is_galaxy", report_dir=old)  # an existing folder: its files replaced
    assert (old / "roc.png").read_bytes()[:8] == PNG and json.loads((old / "metrics.json").read_text()) == m


def test_detect_task_and_metrics_plot(tmp_path):
    table = classified(200)
    table["redshift"] = np.linspace(0, 2, 200)
    table["flag"] = (np.arange(200) % 2).astype("u1")
    table["level"] = np.arange(200) % 3
    assert detect_task(table, "is_galaxy") == detect_task(table, "flag") == "classify"  # boolean, integer 0/1
    assert detect_task(table, "redshift") == detect_task(table, "nope") == "classify"  # no z_phot, a p_galaxy
    table["z_phot"] = table["redshift"]
    assert detect_task(table, "redshift") == detect_task(table, "level") == detect_task(table, "nope") == "photoz"
    assert detect_task(table, "is_galaxy") == "classify"
    table.write(tmp_path / "both.parquet")
    assert detect_task(tmp_path / "both.parquet", "flag") == "classify"
    assert detect_task(tmp_path / "both.parquet", "redshift") == "photoz"
    y, p = np.asarray(table["is_galaxy"]), np.asarray(table["p_galaxy"])
    rows = classification_metrics(p, y, magnitude=table["mag_r"], bins=[16, 20, 24])["bins"]
    path = plot_metrics_vs_magnitude(rows, tmp_path / "m.png", xlabel="mag_r")
    assert path.read_bytes()[:8] == PNG
