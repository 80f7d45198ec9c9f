"""How photo-z quality grows with the number of training galaxies (a learning curve).

Every chosen photo-z pipeline (see ``benchmarks/photoz_mock.py``; by
default the built-in default pipeline) is trained on nested random subsets
of one training catalog, of the sizes ``--sizes``, and run on one fixed test
catalog; FlexZBoost is trained on the same subsets when ``flexcode`` and
``xgboost`` are installed (and ``--flexzboost`` is given).  Measured for
each size: σ_NMAD, outlier fraction (|Δz|/(1+z) > 0.15), bias, the PIT KS
statistic, CRPS and the training time.

Three kinds of data:

* by default, simulated catalogs (:mod:`astroml_pipe.simulate.photometry`,
  LSST 10-year depth, i <= 25.3): a training catalog of the largest size
  (seed ``--seed``) and a test catalog of ``--n-test`` galaxies (seed
  ``--seed + 1``);
* ``--train`` and ``--test``: your own catalogs, as for
  ``benchmarks/photoz_mock.py`` (``--mag-column``, ``--err-column``,
  ``--redshift-column``);
* with ``--pool N`` as well: the two catalogs are pooled and ``N`` random
  galaxies of the pool are the test set, so that the curve can go beyond
  the size of the training file (the other galaxies are the training pool).

For the LSST-DESC RAIL sample of cosmoDC2 (see ``benchmarks/photoz_mock.py``
for where to get it)::

    python benchmarks/photoz_training_size.py \\
        --train rail/rail/examples_data/testdata/test_dc2_training_9816.hdf5 \\
        --test rail/rail/examples_data/testdata/test_dc2_validation_9816.hdf5 \\
        --mag-column 'mag_{band}_lsst' --err-column 'mag_err_{band}_lsst' \\
        --pool 6000 --sizes 1500,3000,6000,12000,24674 \\
        --json benchmarks/results/photoz_training_size_dc2.json

Usage::

    python benchmarks/photoz_training_size.py
    python benchmarks/photoz_training_size.py --sizes 2500,5000,10000 --stages default,random_forest

The figures are printed and written as JSON (``--json``, default
``benchmarks/results/photoz_training_size.json``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photoz_mock import (add_catalog_arguments, load_catalogs, machine, run_flexzboost, run_stage,  # noqa: E402
                         stage_labels, write_json)

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1250,2500,5000,10000,20000,40000",
                        help="comma-separated numbers of training galaxies (nested random subsets)")
    parser.add_argument("--n-test", type=int, default=20_000, help="simulated test galaxies")
    add_catalog_arguments(parser)
    parser.add_argument("--pool", type=int, metavar="N",
                        help="pool --train and --test and use N random galaxies of the pool as the test set")
    parser.add_argument("--stages", default="default", help="comma-separated stages (see benchmarks/photoz.py)")
    parser.add_argument("--flexzboost", action="store_true", help="also FlexZBoost (needs flexcode and xgboost)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "photoz_training_size.json")
    args = parser.parse_args(argv)

    from astropy.table import vstack

    from astroml_pipe import __version__

    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    labels = stage_labels(parser, args.stages)
    if args.pool is not None and not args.train:
        parser.error("--pool needs --train and --test")
    if args.flexzboost and not all(importlib.util.find_spec(name) for name in ("flexcode", "xgboost")):
        parser.error("--flexzboost needs the flexcode and xgboost packages (pip install flexcode xgboost)")
    rng = np.random.default_rng(args.seed)
    train, test, data = load_catalogs(parser, args, sizes[-1], args.n_test)
    if args.pool is not None:
        pool = vstack([train, test])
        order = rng.permutation(len(pool))
        test, train = pool[order[: args.pool]], pool[order[args.pool:]]
        data["pooled"] = {"n_test": args.pool, "seed": args.seed}
    if sizes[-1] > len(train) or sizes[0] < 100:
        parser.error(f"--sizes must lie between 100 and the {len(train)} training galaxies")
    data.update(n_train_available=len(train), n_test=len(test))
    order = rng.permutation(len(train))  # nested subsets: each is the start of one permutation

    report: dict = {"astroml_pipe": __version__, "data": data, "sizes": sizes, "machine": machine(),
                    "curves": {label: [] for label in labels + (["flexzboost"] if args.flexzboost else [])}}
    print(f"{'':14s} {'n_train':>8s} {'sigma_NMAD':>10s} {'outliers':>8s} {'bias':>8s} {'PIT KS':>7s} "
          f"{'CRPS':>7s} {'train s':>8s}", flush=True)
    keys = ("sigma_nmad", "outlier_fraction", "bias", "pit_ks", "crps_mean", "train_seconds")
    for n in sizes:
        subset = train[np.sort(order[:n])]
        for label in report["curves"]:
            entry = run_flexzboost(subset, test) if label == "flexzboost" else run_stage(label, subset, test)
            point = {"n_train": n, **{k: entry[k] for k in keys}}
            report["curves"][label].append(point)
            print(f"{label:14s} {n:8d} {point['sigma_nmad']:10.4f} {point['outlier_fraction']:8.4f} "
                  f"{point['bias']:+8.4f} {point['pit_ks']:7.3f} {point['crps_mean']:7.4f} "
                  f"{point['train_seconds']:8.1f}", flush=True)
    write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
