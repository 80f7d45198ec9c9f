"""Photo-z comparison in the protocol of LSST-like mock challenges: 10,000 training and 20,000 test galaxies.

Every photo-z stage, in a pipeline with ``features.colors`` in front (asinh
magnitudes, as in the default pipeline) and its default parameters
(``point_estimate: median`` for the binned classifiers), is trained on the
same training catalog and run on the same test catalog; the built-in
default pipeline is ``default``, whose networks first learn from 200,000
simulated galaxies each, and ``no-pretraining`` the same without that
(``pretrain: null``).  ``pretrained`` (not run unless named in
``--stages``) is the default pipeline with the committee the default had before
cross-fitting (``n_networks: 5, cross_fit: false, epoch_factor: 1``, with
which its results were measured, when all networks pretrained on the same
simulated galaxies: commits fcfa51f and 0d19898), and ``pretrained-wide``
the same with networks of 3 x 128 units (``hidden_layers: [128, 128, 128]``).  When the
``flexcode`` and ``xgboost`` packages are installed (``pip install flexcode
xgboost``; not a dependency of astroml-pipe), FlexZBoost is run too, with
the settings of LSST-DESC RAIL's ``FlexZBoostInformer``: the i magnitude and
the adjacent colours as features (non-detections at the limiting magnitude,
as our colours stage writes them), 35 cosine basis functions, xgboost trees
of depth 8, 75% of the training rows for the fit and 25% to tune the bump
threshold and sharpening, the mode as point estimate.

Measured for each: σ_NMAD, outlier fraction (|Δz|/(1+z) > 0.15), bias,
σ_IQR, the PIT KS and CvM statistics, CRPS, the 68% coverage, training time
and the prediction rate in memory (PDFs included, no file I/O; see
``benchmarks/photoz.py`` for end-to-end throughput).

By default both catalogs are simulated by :mod:`astroml_pipe.simulate.photometry`
(LSST 10-year depth, i <= 25.3, seeds ``--seed`` and ``--seed + 1``); give
``--train`` and ``--test`` to compare on your own catalogs instead (FITS,
HDF5, Parquet or CSV with magnitudes and errors for ugrizy, non-detections
as 99, and the true redshift; ``--mag-column``, ``--err-column`` and
``--redshift-column`` give their names).

The LSST-DESC RAIL sample of cosmoDC2 (healpix 9816, 10-year LSST errors;
10,225 training and 20,449 test galaxies to i = 25.3) is the data of the
published FlexZBoost figures.  It ships in the ``pz-rail-base`` wheel, from
which it can be taken without installing RAIL::

    pip download pz-rail-base==2.0.11 --no-deps -d rail
    unzip -o rail/pz_rail_base-2.0.11-py3-none-any.whl 'rail/examples_data/testdata/test_dc2_*_9816.hdf5' -d rail
    python benchmarks/photoz_mock.py \
        --train rail/rail/examples_data/testdata/test_dc2_training_9816.hdf5 \
        --test rail/rail/examples_data/testdata/test_dc2_validation_9816.hdf5 \
        --mag-column 'mag_{band}_lsst' --err-column 'mag_err_{band}_lsst' \
        --json benchmarks/results/photoz_dc2.json

Usage::

    python benchmarks/photoz_mock.py
    python benchmarks/photoz_mock.py --stages default,random_forest
    python benchmarks/photoz_mock.py --train mock_train.fits --test mock_test.fits

The figures are printed and written as JSON (``--json``, default
``benchmarks/results/photoz_mock.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photoz import LABELS, pipeline_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["default", "no-pretraining", "catboost", "random_forest", "knn", "adaboost", "committee", "bagging"]


def metrics(z_phot: np.ndarray, z_grid: np.ndarray, pdf: np.ndarray, z_true: np.ndarray,
            lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> dict:
    from astroml_pipe.evaluate.pdf_metrics import pdf_metrics
    from astroml_pipe.evaluate.photoz import photoz_metrics

    out = {k: v for k, v in photoz_metrics(z_phot, z_true).items()}
    pm = pdf_metrics(z_grid, pdf, z_true)
    out.update({k: pm[k] for k in ("pit_ks", "pit_cvm", "pit_outlier_rate", "crps_mean")})
    if lo is not None:
        out["coverage_68"] = float(np.mean((z_true >= lo) & (z_true <= hi)))
    return out


def run_stage(label: str, train, test) -> dict:
    from astroml_pipe.core.pipeline import Pipeline
    from astroml_pipe.stages.photoz import read_pdf

    pipe = Pipeline.from_yaml(pipeline_text(label))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(train)
    train_s = time.perf_counter() - start
    pipe.run(test[:1000])  # warm-up
    start = time.perf_counter()
    out = pipe.run(test)
    run_s = time.perf_counter() - start
    z, pdf = read_pdf(out)
    z_true = np.asarray(test["redshift"], float)
    entry = metrics(np.asarray(out["z_phot"], float), z, pdf, z_true, out["z_phot_lo"], out["z_phot_hi"])
    entry.update(train_seconds=train_s, objects_per_second_in_memory=len(test) / run_s,
                 uses=pipe.stages[-1].name)
    return entry


def run_flexzboost(train, test) -> dict | None:
    try:
        import flexcode
        from flexcode.regression_models import XGBoost
    except ImportError:
        return None
    from astroml_pipe.core.pipeline import Pipeline

    colours = Pipeline.from_dict({"stages": [{"uses": "features.colors"}]}).fit(train)

    def features(table):
        out = colours.run(table)
        names = ["mag_filled_i"] + [c for c in out.colnames if c.startswith("color_") and not c.endswith("_err")]
        return np.column_stack([np.asarray(out[c], float) for c in names])

    X, X_test = features(train), features(test)
    z, z_true = np.asarray(train["redshift"], float), np.asarray(test["redshift"], float)
    order = np.random.default_rng(0).permutation(len(z))
    fit_rows, tune_rows = order[: int(0.75 * len(z))], order[int(0.75 * len(z)):]
    start = time.perf_counter()
    model = flexcode.FlexCodeModel(XGBoost, max_basis=35, basis_system="cosine", z_min=0.0, z_max=3.0,
                                   regression_params={"max_depth": 8, "objective": "reg:squarederror",
                                                      "nthread": os.cpu_count()})
    model.fit(X[fit_rows], z[fit_rows])
    model.tune(X[tune_rows], z[tune_rows], bump_threshold_grid=np.linspace(0.02, 0.35, 20),
               sharpen_grid=np.linspace(0.7, 2.1, 15))
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    pdf, grid = model.predict(X_test, n_grid=301)
    run_s = time.perf_counter() - start
    grid = np.asarray(grid, float).ravel()
    pdf = np.asarray(pdf, float)
    cdf = np.cumsum(pdf, axis=1)
    cdf /= cdf[:, -1:]
    lo = grid[np.argmax(cdf >= 0.16, axis=1)]
    hi = grid[np.argmax(cdf >= 0.84, axis=1)]
    entry = metrics(grid[np.argmax(pdf, axis=1)], grid, pdf, z_true, lo, hi)
    entry.update(train_seconds=train_s, objects_per_second_in_memory=len(z_true) / run_s,
                 uses="FlexZBoost (flexcode " + getattr(flexcode, "__version__", "?") + ", RAIL settings)")
    return entry


def sha256(path: Path) -> str:
    """SHA-256 of a file, to record exactly which catalogs were compared."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def standard_names(table, args: argparse.Namespace):
    """``table`` with the columns the benchmarked pipelines read: ``mag_<band>``, ``magerr_<band>``, ``redshift``."""
    names = {args.redshift_column: "redshift"}
    for band in "ugrizy":
        names[args.mag_column.format(band=band)] = f"mag_{band}"
        names[args.err_column.format(band=band)] = f"magerr_{band}"
    missing = [name for name in names if name not in table.colnames]
    if missing:
        raise SystemExit(f"error: catalog has no column(s) {', '.join(missing)}; see --mag-column, --err-column, "
                         f"--redshift-column")
    table = table[list(names)]
    table.rename_columns(list(names), list(names.values()))
    return table


def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the training and test catalogs (simulated, or files of your own)."""
    parser.add_argument("--seed", type=int, default=101,
                        help="seed of the simulated training catalog; the test catalog uses seed + 1")
    parser.add_argument("--train", type=Path, help="training catalog instead of a simulated one")
    parser.add_argument("--test", type=Path, help="test catalog instead of a simulated one")
    parser.add_argument("--mag-column", default="mag_{band}", help="magnitude columns of --train/--test")
    parser.add_argument("--err-column", default="magerr_{band}", help="magnitude error columns of --train/--test")
    parser.add_argument("--redshift-column", default="redshift", help="true redshift column of --train/--test")


def stage_labels(parser: argparse.ArgumentParser, stages: str) -> list[str]:
    """The labels of ``--stages``, checked before any work is done."""
    labels = stages.split(",")
    for label in labels:
        if label not in LABELS:
            parser.error(f"unknown stage {label!r}; expected one of {', '.join(LABELS)}")
    return labels


def load_catalogs(parser: argparse.ArgumentParser, args: argparse.Namespace, n_train: int, n_test: int):
    """The training and test tables of :func:`add_catalog_arguments`'s options, and a description for the JSON."""
    from astroml_pipe.io.catalogs import read_catalog
    from astroml_pipe.simulate.photometry import simulate_photometry

    if bool(args.train) != bool(args.test):
        parser.error("--train and --test go together")
    if args.train:
        train, test = (standard_names(read_catalog(path), args) for path in (args.train, args.test))
        data = {"train": args.train.name, "test": args.test.name,
                "sha256": {path.name: sha256(path) for path in (args.train, args.test)}}
    else:
        train = simulate_photometry(n_train, random_state=args.seed, unobserved_fraction=0.01)
        test = simulate_photometry(n_test, random_state=args.seed + 1, unobserved_fraction=0.01)
        data = {"simulated": True, "seed": args.seed, "unobserved_fraction": 0.01}
    return train, test, data


def machine() -> dict:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=20_000)
    add_catalog_arguments(parser)
    parser.add_argument("--stages", default=",".join(ORDER), help="comma-separated stages (see benchmarks/photoz.py)")
    parser.add_argument("--no-flexzboost", action="store_true", help="skip FlexZBoost even if flexcode is installed")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "photoz_mock.json")
    args = parser.parse_args(argv)
    labels = stage_labels(parser, args.stages)

    from astroml_pipe import __version__

    train, test, data = load_catalogs(parser, args, args.n_train, args.n_test)
    data.update(n_train=len(train), n_test=len(test))
    report: dict = {"astroml_pipe": __version__, "data": data, "machine": machine()}
    header = (f"{'':14s} {'sigma_NMAD':>10s} {'outliers':>8s} {'bias':>8s} {'PIT KS':>7s} {'CRPS':>7s} "
              f"{'cov68':>6s} {'train s':>8s} {'obj/s':>9s}")
    print(header, flush=True)

    def show(label: str, e: dict) -> None:
        print(f"{label:14s} {e['sigma_nmad']:10.4f} {e['outlier_fraction']:8.4f} {e['bias']:+8.4f} "
              f"{e['pit_ks']:7.3f} {e['crps_mean']:7.4f} {e.get('coverage_68', float('nan')):6.3f} "
              f"{e['train_seconds']:8.1f} {e['objects_per_second_in_memory']:9,.0f}", flush=True)

    for label in labels:
        report[label] = run_stage(label, train, test)
        show(label, report[label])
    if not args.no_flexzboost:
        entry = run_flexzboost(train, test)
        if entry is None:
            print("flexzboost: not run (pip install flexcode xgboost to compare with it)")
        else:
            report["flexzboost"] = entry
            show("flexzboost", entry)
    if "default" in report:
        d = report["default"]
        report["targets_met"] = {"sigma_nmad_le_0.018": d["sigma_nmad"] <= 0.018,
                                 "outlier_fraction_le_0.02": d["outlier_fraction"] <= 0.02,
                                 "abs_bias_le_0.002": abs(d["bias"]) <= 0.002, "pit_ks_le_0.03": d["pit_ks"] <= 0.03}
        if "flexzboost" in report:
            f = report["flexzboost"]
            report["targets_met"]["beats_flexzboost_sigma_nmad"] = d["sigma_nmad"] < f["sigma_nmad"]
            report["targets_met"]["beats_flexzboost_outliers"] = d["outlier_fraction"] < f["outlier_fraction"]
        print("targets:", json.dumps(report["targets_met"]))
    write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
