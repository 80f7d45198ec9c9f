"""The ``astroml-pipe`` command line.

Usage and input errors print one line starting with ``error:`` and exit with
status 2; ``--debug`` shows the traceback instead.  Heavy libraries are
imported inside the commands, so ``astroml-pipe --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import click

from astroml_pipe._version import __version__
from astroml_pipe.core.errors import AstromlPipeError, ConfigError

log = logging.getLogger(__name__)

#: Trained default pipeline shipped inside the package.
DEFAULT_MODEL = files("astroml_pipe") / "data" / "default_model"
#: Configuration the default model was trained from.
DEFAULT_PIPELINE = files("astroml_pipe") / "data" / "default_pipeline.yaml"
#: Trained star-galaxy CNN shipped inside the package (``--model star-galaxy``).
STAR_GALAXY_MODEL = files("astroml_pipe") / "data" / "star_galaxy_model"
#: Bundled models that ``--model`` accepts by name.
BUNDLED_MODELS = {"photoz": DEFAULT_MODEL, "star-galaxy": STAR_GALAXY_MODEL}
#: How the default model is rebuilt (also in catalogs/README.md).
DEFAULT_MODEL_COMMAND = (
    "astroml-pipe train astroml_pipe/data/default_pipeline.yaml catalogs/training.fits "
    "-o astroml_pipe/data/default_model --overwrite"
)


class _Group(click.Group):
    """Turns astroml-pipe errors into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader of our output went away (e.g. "| head"): stop quietly, like Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except (AstromlPipeError, OSError) as exc:
            if ctx.meta.get("astroml_pipe.debug"):
                raise
            message = str(exc) if isinstance(exc, AstromlPipeError) else f"{exc.strerror or exc}: {exc.filename or ''}"
            click.echo(f"error: {message}", err=True)
            ctx.exit(2)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["astroml_pipe.debug"] = value
    return value


def _common(func: Any) -> Any:
    """Options every command takes: --quiet and --debug."""
    func = click.option("-q", "--quiet", is_flag=True, help="Only print errors and the result.")(func)
    func = click.option(
        "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug, help="Show tracebacks of errors."
    )(func)
    return func


def _hdu_value(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _hdu_option(func: Any) -> Any:
    return click.option(
        "--hdu", callback=_hdu_value, help="FITS HDU (index or name) or HDF5 path of the table."
    )(func)


def _logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", force=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="astroml-pipe")
def cli() -> None:
    """Machine-learning pipelines for astronomical survey catalogs.

    \b
    astroml-pipe run catalog.fits                   default photo-z pipeline and bundled model
    astroml-pipe train pipeline.yaml train.fits -o models/mine
    astroml-pipe run catalog.fits --model models/mine -o result.fits
    astroml-pipe run stamps.fits --model star-galaxy  bundled CNN star-galaxy classifier
    astroml-pipe evaluate result.fits --truth redshift -o report/
    astroml-pipe stages                              every registered stage and its parameters
    """


def _parse_columns(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--columns takes ROLE=VALUE (e.g. mag='mag_{{band}}_lsst'), got {item!r}")
        key, value = key.strip(), value.strip()
        out[key] = [v.strip() for v in value.split(",")] if key in ("bands", "nondetection", "unobserved") else value
    return out


def _load_pipeline(pipeline: str | None, model: str | None) -> Any:
    from astroml_pipe.core.errors import ModelError
    from astroml_pipe.core.pipeline import Pipeline

    if pipeline and model:
        raise ConfigError("give either --pipeline or --model, not both")
    if pipeline:
        return Pipeline.from_yaml(Path(pipeline))
    if model and (Path(model).exists() or model not in BUNDLED_MODELS):
        return Pipeline.load(model)
    bundled = Path(str(BUNDLED_MODELS[model or "photoz"]))
    if not (bundled / "manifest.json").exists():
        raise ModelError(f"the bundled model is missing from '{bundled}'; see catalogs/README.md for the "
                         f"command that builds it (photo-z: {DEFAULT_MODEL_COMMAND})")
    return Pipeline.load(bundled)


@cli.command()
@click.argument("catalog")
@click.option("--pipeline", "pipeline_file", metavar="FILE", help="Pipeline file (for pipelines that need no training).")
@click.option("--model", metavar="DIR", help="Trained-pipeline folder from 'astroml-pipe train', or the name of a "
              "bundled model: photoz (the default) or star-galaxy (CNN on 5 x 48 x 48 ugriz stamps).")
@click.option("-o", "--output", metavar="OUT", help="Output catalog (.fits, .parquet, .hdf5) [default: ./<name>.astroml.fits].")
@click.option("--chunk-size", default=100_000, show_default=True, type=click.IntRange(min=1), help="Rows per chunk.")
@_hdu_option
@click.option("--columns", "column_items", multiple=True, metavar="ROLE=VALUE", help="Map a role to the catalog's columns, e.g. mag='mag_{band}_lsst'; repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@_common
def run(catalog: str, pipeline_file: str | None, model: str | None, output: str | None, chunk_size: int,
        hdu: int | str | None, column_items: tuple[str, ...], overwrite: bool, quiet: bool) -> None:
    """Run a pipeline on CATALOG and write the catalog with the new columns.

    With neither --pipeline nor --model, the built-in default photo-z
    pipeline and its bundled model run; the catalog's magnitude columns are
    found by common spellings (mag_u, u_mag, mag_u_lsst, ...) or named with
    --columns.
    """
    _logging(quiet)
    from astroml_pipe.io.catalogs import open_catalog
    from astroml_pipe.runner import run_catalog

    pipe = _load_pipeline(pipeline_file, model)
    overrides = _parse_columns(column_items)
    columns = pipe.columns.replace(**overrides) if overrides else pipe.columns
    with open_catalog(catalog, hdu=hdu) as reader:
        names = list(reader.columns)
    wanted = columns.photometry_columns()
    if any(c in pipe.input_columns() for c in wanted) and not all(c in names for c in wanted):
        columns = columns.detect(names)
    pipe.columns = columns
    summary = run_catalog(pipe, catalog, output, hdu=hdu, chunk_size=chunk_size, overwrite=overwrite, progress=not quiet)
    click.echo(summary.format())


@cli.command()
@click.argument("pipeline_file", metavar="PIPELINE")
@click.argument("training_catalog")
@click.option("-o", "--output", "model_dir", required=True, metavar="MODEL_DIR", help="Folder for the trained pipeline.")
@_hdu_option
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@_common
def train(pipeline_file: str, training_catalog: str, model_dir: str, hdu: int | str | None, overwrite: bool, quiet: bool) -> None:
    """Train PIPELINE on TRAINING_CATALOG and save it to MODEL_DIR."""
    _logging(quiet)
    import time

    from astroml_pipe.core.pipeline import Pipeline
    from astroml_pipe.runner import train_catalog

    start = time.perf_counter()
    pipe = Pipeline.from_yaml(Path(pipeline_file))
    folder = train_catalog(pipe, training_catalog, model_dir, hdu=hdu, overwrite=overwrite)
    click.echo(f"trained:  {pipe.name} ({', '.join(s.label for s in pipe.stages)})")
    for label, metrics in pipe.manifest.get("metrics", {}).items():
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if not isinstance(v, dict)}
        if shown:
            click.echo(f"  {label}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    click.echo(f"model:    {folder} (id {pipe.manifest['id']})")
    click.echo(f"time:     {time.perf_counter() - start:.1f} s")


@cli.command()
@click.argument("result")
@click.option("--truth", required=True, metavar="COLUMN",
              help="Column with the truth: the true redshift, or true/1 for a galaxy and false/0 for a star.")
@click.option("--task", default="auto", show_default=True, metavar="TASK",
              type=click.Choice(["auto", "photoz", "classify"]),
              help="photoz, classify (star-galaxy) or auto: chosen from the columns, as said above.")
@click.option("--prediction", "predictions", multiple=True, metavar="COLUMN",
              help="Column with the prediction [default: z_phot; p_galaxy for classification]; repeat it to "
              "compare the members of a committee or other probability columns (the first is evaluated in full).")
@click.option("--pdf", metavar="COLUMN", help="PDF column (photo-z) [default: <prediction>_pdf when present; "
              "without one, only the point metrics].")
@click.option("--magnitude", metavar="COLUMN",
              help="Magnitude column for the per-bin metrics [default: mag_i when present; for classification "
              "mag_r, else mag_i].")
@click.option("-o", "--output", "report_dir", metavar="REPORT_DIR",
              help="Write metrics.json, PNG plots and report.html here.")
@_hdu_option
@_common
def evaluate(result: str, truth: str, task: str, predictions: tuple[str, ...], pdf: str | None,
             magnitude: str | None, report_dir: str | None, hdu: int | str | None, quiet: bool) -> None:
    """Photo-z or star-galaxy metrics of RESULT against its truth.

    The task (--task auto) is star-galaxy classification when the --truth
    column is boolean or integer 0/1, or when RESULT has a p_galaxy but no
    z_phot column; photo-z otherwise.

    Photo-z metrics, overall and per bin of magnitude and of true redshift:

    \b
    Point estimates, with dz = (z_phot - z_true)/(1 + z_true):
      sigma_NMAD = 1.4826 median|dz - median dz|, sigma_IQR = IQR(dz)/1.349,
      outlier fraction |dz| > 0.15, bias = median dz.
    PDFs: PIT histogram with KS and Cramer-von Mises statistics and the PIT
    outlier rate, CRPS, CDE loss.  The PDF column is read in blocks, so large
    results fit in memory.  Members of a committee (a <prediction>_members
    column, or several --prediction) are compared by their point metrics.

    Classification metrics of the galaxy probability, overall and per
    magnitude bin: ROC AUC, galaxy purity at galaxy completeness 0.96, star
    completeness at star purity 0.97, expected calibration error (15 bins);
    the report shows the ROC curve and the reliability diagram.  Other
    probability columns (<prediction>_raw when present, or several
    --prediction) are compared by their overall metrics.
    """
    _logging(quiet)
    import json

    from astroml_pipe.evaluate import classify, photoz
    from astroml_pipe.evaluate.report import CLASSIFICATION, PHOTOZ, overall_lines
    from astroml_pipe.evaluate.result import AUTO

    if task == "auto":
        task = classify.detect_task(result, truth, hdu=hdu)
    if task == "classify":
        if pdf:
            raise ConfigError("--pdf applies to photometric redshifts, not to star-galaxy classification")
        first, *others = predictions or (classify.DEFAULT_PREDICTION,)
        metrics = classify.evaluate_classification(result, truth, prediction=first, others=others or AUTO,
                                                   magnitude=magnitude or AUTO, report_dir=report_dir, hdu=hdu)
        layout, label = CLASSIFICATION, "compare"
    else:
        metrics = photoz.evaluate_photoz(result, truth, prediction=predictions or photoz.DEFAULT_PREDICTION,
                                         pdf=pdf or AUTO, magnitude=magnitude or AUTO, report_dir=report_dir, hdu=hdu)
        layout, label = PHOTOZ, "member"
    for line in overall_lines(metrics, figures=layout.figures):
        click.echo(line)
    compared = [figure for figure in layout.figures if figure[0] in layout.compare_keys]
    for name, values in metrics.get(layout.compare, {}).items():
        if task == "classify" and name == metrics.get("prediction"):
            continue  # already printed in full above
        click.echo(f"{label} {name}: " + ", ".join(overall_lines(values, align=False, figures=compared)))
    click.echo(json.dumps(metrics))
    if report_dir:
        click.echo(f"report:   {Path(report_dir) / 'report.html'}")


@cli.command()
@click.argument("name", required=False)
@_common
def stages(name: str | None, quiet: bool) -> None:
    """List every registered stage with its parameters (or only NAME)."""
    from astroml_pipe.core.registry import get_stage_class, stage_names

    names = [name] if name else stage_names()
    for index, stage_name in enumerate(names):
        cls = get_stage_class(stage_name)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        if index:
            click.echo("")
        click.echo(f"{stage_name}  ({cls.__module__}.{cls.__name__}){'  [trainable]' if cls.trainable else ''}")
        if summary:
            click.echo(f"  {summary}")
        for param in cls.params:
            click.echo(f"    {param.describe()}")


@cli.command()
@click.argument("pipeline_file", metavar="PIPELINE")
@click.argument("catalog", required=False)
@click.option("--training", is_flag=True, help="Also check the columns training needs (e.g. the target).")
@_hdu_option
@_common
def validate(pipeline_file: str, catalog: str | None, training: bool, hdu: int | str | None, quiet: bool) -> None:
    """Check PIPELINE (and its wiring against CATALOG's columns) without running it."""
    _logging(quiet)
    from astroml_pipe.core.pipeline import Pipeline
    from astroml_pipe.io.catalogs import open_catalog

    pipe = Pipeline.from_yaml(Path(pipeline_file))
    if catalog:
        with open_catalog(catalog, hdu=hdu) as reader:
            pipe.validate({c.name: c.dtype for c in reader.columns.values()}, training=training, source=f"'{catalog}'")
        click.echo(f"ok: pipeline {pipe.name!r} ({len(pipe.stages)} stages) fits the columns of '{catalog}'")
    else:
        pipe.validate(training=training)
        click.echo(f"ok: pipeline {pipe.name!r} ({len(pipe.stages)} stages) is valid")


@cli.group(cls=_Group)
def simulate() -> None:
    """Make labelled training and test catalogs."""


@simulate.command("photometry")
@click.option("-n", "--rows", "n", required=True, type=click.IntRange(min=1), help="Number of galaxies.")
@click.option("-o", "--output", required=True, help="Output catalog (.fits, .parquet, .hdf5).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--mag-limit", default=25.3, show_default=True, type=float, help="Faint limit in the i band.")
@click.option("--depth", default="lsst10yr", show_default=True, type=click.Choice(["lsst10yr", "lsst1yr"]), help="Depth of the photometric errors.")
@click.option("--unobserved-fraction", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True), help="Fraction of (object, band) entries written as not observed (NaN).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@_common
def simulate_photometry(n: int, output: str, seed: int, mag_limit: float, depth: str, unobserved_fraction: float,
                        overwrite: bool, quiet: bool) -> None:
    """Simulate an LSST-like galaxy catalog with true redshifts."""
    _logging(quiet)
    from astroml_pipe.io.catalogs import write_catalog
    from astroml_pipe.simulate.photometry import simulate_photometry as simulate_fn

    table = simulate_fn(n, random_state=seed, mag_limit=mag_limit, depth=depth, unobserved_fraction=unobserved_fraction)
    write_catalog(table, output, overwrite=overwrite)
    click.echo(f"wrote {len(table):,} galaxies to {output}")


def _float_pair(_ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH (two numbers), got {value!r}", param=param) from None
    return low, high


@simulate.command("cutouts")
@click.option("-n", "--rows", "n", required=True, type=click.IntRange(min=1), help="Number of stamps.")
@click.option("-o", "--output", required=True, help="Output catalog (.fits, .parquet, .hdf5).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--preset", default="lsst", show_default=True, type=click.Choice(["lsst", "sdss"]),
              help="Survey: pixel scale, bands, depth, seeing and magnitude ranges.")
@click.option("--bands", metavar="B1,B2,...", help="Bands in output order [default: all of the preset's].")
@click.option("--stamp-size", default=48, show_default=True, type=click.IntRange(16, 256), help="Stamp side in pixels.")
@click.option("--galaxy-fraction", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Probability that a stamp holds a galaxy.")
@click.option("--neighbours", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Probability of a fainter second source in a stamp.")
@click.option("--mag-range", callback=_float_pair, metavar="LOW,HIGH",
              help="Range of the true r magnitude [default: the preset's, 18,24 for lsst].")
@click.option("--seeing-range", callback=_float_pair, metavar="LOW,HIGH",
              help="Range of the PSF FWHM in arcsec [default: the preset's, 0.6,1.0 for lsst].")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@_common
def simulate_cutouts(n: int, output: str, seed: int, preset: str, bands: str | None, stamp_size: int,
                     galaxy_fraction: float, neighbours: float, mag_range: tuple[float, float] | None,
                     seeing_range: tuple[float, float] | None, overwrite: bool, quiet: bool) -> None:
    """Simulate labelled multi-band cutouts of stars and galaxies (GalSim).

    The catalog has a `cutout` column (n, bands, size, size) in nJy per
    pixel, `is_galaxy`, true magnitudes `mag_<band>`, `seeing` and more;
    see astroml_pipe.simulate.simulate_cutouts for the model.
    """
    _logging(quiet)
    from astroml_pipe.io.catalogs import output_format, write_catalog
    from astroml_pipe.simulate.cutouts import simulate_cutouts as simulate_fn

    output_format(output)  # an unsupported extension fails before minutes of simulation
    if Path(output).exists() and not overwrite:
        raise ConfigError(f"output '{output}' already exists (pass --overwrite to replace it)")
    band_list = None if bands is None else [b.strip() for b in bands.split(",") if b.strip()]
    table = simulate_fn(n, random_state=seed, preset=preset, bands=band_list, stamp_size=stamp_size,
                        galaxy_fraction=galaxy_fraction, neighbours=neighbours, mag_range=mag_range,
                        seeing_range=seeing_range, progress=not quiet)
    write_catalog(table, output, overwrite=overwrite)
    shape = " x ".join(str(s) for s in table["cutout"].shape[1:])
    click.echo(f"wrote {len(table):,} stamps ({shape}; {int(table['is_galaxy'].sum()):,} galaxies) to {output}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``astroml-pipe`` script."""
    cli.main(args=argv, prog_name="astroml-pipe")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
