"""The evaluation report folder: ``metrics.json``, PNG plots and ``report.html``.

``report.html`` is one self-contained page (inline style, no scripts, no
external resources) with the overall metrics, the per-bin tables and the
plots, linked relatively so that the folder can be moved or archived whole.
What the page shows for a kind of evaluation (photometric redshifts,
star-galaxy classification) is a :class:`ReportLayout`.

The folder is written atomically: everything goes into a temporary folder
beside it first, so an error leaves no partial report behind.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from astroml_pipe.core.folders import staged_folder
from astroml_pipe.evaluate.classify import ECE_BINS, GALAXY_COMPLETENESS, STAR_PURITY

__all__ = [
    "CLASSIFICATION",
    "CLASSIFICATION_FIGURES",
    "FIGURES",
    "PHOTOZ",
    "ReportLayout",
    "format_value",
    "overall_lines",
    "write_report",
]

log = logging.getLogger(__name__)

#: A figure of merit: key, label, format and what it means.
Figure = tuple[str, str, str, str]
#: A plot of the report: its file name and a function that draws it to a path.
Plot = tuple[str, Callable[[Path], object]]

#: The figures of merit of photometric redshifts.
FIGURES: tuple[Figure, ...] = (
    ("n", "N", ",d", "objects with finite true and photometric redshift"),
    ("sigma_nmad", "sigma_NMAD", ".4f",
     "1.4826 × median |Δz − median Δz|, Δz = (z_phot − z_true)/(1 + z_true)"),
    ("sigma_iqr", "sigma_IQR", ".4f", "interquartile range of Δz / 1.349"),
    ("outlier_fraction", "outlier fraction", ".4f", "fraction with |Δz| > 0.15"),
    ("bias", "bias", "+.5f", "median Δz"),
    ("n_pdf", "N (PDF)", ",d", "objects with a usable PDF and a finite true redshift"),
    ("pit_ks", "PIT KS", ".4f", "sup |ECDF(PIT) − x| against U(0, 1)"),
    ("pit_ks_pvalue", "PIT KS p-value", ".3g", "p-value of the KS statistic (scipy.stats.kstwo)"),
    ("pit_cvm", "PIT CvM", ".3e", "∫ (ECDF(PIT) − x)² dx, mean-square form"),
    ("pit_cvm_w2", "PIT CvM W^2", ".4g",
     "N(PDF) × PIT CvM = W², the statistic of scipy.stats.cramervonmises (RAIL/qp)"),
    ("pit_outlier_rate", "PIT outlier rate", ".4f", "fraction of PIT < 1e-4 or > 1 − 1e-4"),
    ("crps_mean", "CRPS mean", ".4f", "mean of ∫ (CDF(z) − H(z − z_true))² dz"),
    ("crps_median", "CRPS median", ".4f", "median CRPS"),
    ("cde_loss", "CDE loss", ".4f", "mean ∫ f(z)² dz − 2 mean f(z_true) (Izbicki & Lee 2017); lower is better"),
)
#: The figures of merit of star-galaxy classification (galaxies are the positives).
CLASSIFICATION_FIGURES: tuple[Figure, ...] = (
    ("n", "N", ",d", "objects with a finite probability and a known class"),
    ("n_galaxies", "galaxies", ",d", "true galaxies among them"),
    ("n_stars", "stars", ",d", "true stars among them"),
    ("roc_auc", "ROC AUC", ".4f",
     "area under the ROC curve: probability that a random galaxy has a larger p than a random star"),
    ("galaxy_purity_at_completeness", f"galaxy purity (c_g >= {GALAXY_COMPLETENESS:g})", ".4f",
     f"highest galaxy purity over the thresholds with galaxy completeness ≥ {GALAXY_COMPLETENESS:g}"),
    ("star_completeness_at_purity", f"star completeness (p_s >= {STAR_PURITY:g})", ".4f",
     f"highest star completeness over the thresholds with star purity ≥ {STAR_PURITY:g} (0 if none)"),
    ("ece", "ECE", ".4f",
     f"expected calibration error: Σ (n_b / N) |galaxy fraction − mean p| over {ECE_BINS} equal bins of p"),
)
_FORMATS = {key: fmt for key, _, fmt, _ in (*FIGURES, *CLASSIFICATION_FIGURES)}


@dataclass(frozen=True)
class ReportLayout:
    """What the report page of one kind of evaluation shows.

    Attributes
    ----------
    title : str
        Start of the page title (": <prediction> against <truth>" follows).
    figures : tuple
        The overall figures of merit: key, label, format and definition.
    bin_keys : tuple of str
        Metrics of the per-bin tables (those present in the rows).
    described : tuple of (str, str)
        Label and metrics key of each setting named at the top.
    compare : str
        Metrics key of a dict of further predictions and their metrics.
    compare_title : str
        Heading of their table.
    compare_keys : tuple of str
        Metrics of their table.
    """

    title: str
    figures: tuple[Figure, ...]
    bin_keys: tuple[str, ...]
    described: tuple[tuple[str, str], ...]
    compare: str
    compare_title: str
    compare_keys: tuple[str, ...]


#: The report of :func:`~astroml_pipe.evaluate.photoz.evaluate_photoz`.
PHOTOZ = ReportLayout(
    title="Photo-z evaluation",
    figures=FIGURES,
    bin_keys=("n", "sigma_nmad", "sigma_iqr", "outlier_fraction", "bias",
              "pit_ks", "pit_cvm", "pit_outlier_rate", "crps_mean", "cde_loss"),
    described=(("point estimate", "prediction"), ("true redshift", "truth"), ("PDF column", "pdf"),
               ("magnitude", "magnitude")),
    compare="members",
    compare_title="Committee members",
    compare_keys=("n", "sigma_nmad", "sigma_iqr", "outlier_fraction", "bias"),
)
#: The report of :func:`~astroml_pipe.evaluate.classify.evaluate_classification`.
CLASSIFICATION = ReportLayout(
    title="Star-galaxy classification",
    figures=CLASSIFICATION_FIGURES,
    bin_keys=tuple(key for key, *_ in CLASSIFICATION_FIGURES),
    described=(("probability of a galaxy", "prediction"), ("truth (true/1 = galaxy)", "truth"),
               ("magnitude", "magnitude")),
    compare="compare",
    compare_title="Probability columns compared",
    compare_keys=("n", "roc_auc", "galaxy_purity_at_completeness", "star_completeness_at_purity", "ece"),
)


def format_value(key: str, value: Any) -> str:
    """``value`` formatted for metric ``key`` (``–`` when it is undefined)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    fmt = _FORMATS.get(key, ".4g")
    if fmt.endswith("d"):
        value = int(value)
    return format(value, fmt)


def overall_lines(
    metrics: Mapping[str, Any], *, align: bool = True, figures: Sequence[Figure] = FIGURES
) -> list[str]:
    """One ``label = value`` item per overall figure present in ``metrics``.

    With ``align`` the labels are padded to one width (a column of lines);
    without, the items suit joining on one line.  ``figures`` is the table of
    figures of merit (:data:`FIGURES` or :data:`CLASSIFICATION_FIGURES`).
    """
    shown = [(label, format_value(key, metrics[key])) for key, label, _, _ in figures if key in metrics]
    width = max((len(label) for label, _ in shown), default=0) if align else 0
    return [f"{label:<{width}} = {value}" for label, value in shown]


def _table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}>\n<tr>{head}</tr>\n{body}\n</table>"


def _bin_table(section: Mapping[str, Any], layout: ReportLayout) -> str:
    rows_in = section.get("rows", [])
    keys = [k for k in layout.bin_keys if any(k in r for r in rows_in)]
    labels = {key: label for key, label, _, _ in layout.figures}
    header = [str(section.get("column", "bin"))] + [labels.get(k, k) for k in keys]
    rows = [[f"{r['lo']:g} – {r['hi']:g}"] + [format_value(k, r.get(k)) for k in keys] for r in rows_in]
    return _table(header, rows)


_TRUE_Z_CAVEAT = (
    "Bins of true redshift select on the truth, so their PIT values are not uniform even for "
    "calibrated PDFs; judge calibration from the overall and the magnitude bins."
)

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
table.defs td:last-child { text-align: left; color: #555; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def write_report(
    report_dir: str | os.PathLike[str],
    metrics: Mapping[str, Any],
    plots: Mapping[str, Plot],
    *,
    source: str | None = None,
    layout: ReportLayout = PHOTOZ,
) -> Path:
    """Write the report folder: the plots, ``metrics.json`` and ``report.html``.

    Everything is written to a temporary folder beside ``report_dir`` and
    then moved into place (the whole folder when it is new, else file by
    file), so an error leaves ``report_dir`` as it was.

    Parameters
    ----------
    report_dir : path
        The report folder (created if needed).
    metrics : dict
        JSON-ready metrics (``None`` for undefined values), as returned by
        :func:`~astroml_pipe.evaluate.photoz.evaluate_photoz` or
        :func:`~astroml_pipe.evaluate.classify.evaluate_classification`.
    plots : dict of str to (str, callable)
        Caption -> (PNG file name, function that draws the plot to a path);
        each is shown with a relative ``<img>`` link.
    source : str, optional
        The evaluated catalog, named on the page.
    layout : ReportLayout
        What the page shows: :data:`PHOTOZ` or :data:`CLASSIFICATION`.

    Returns
    -------
    pathlib.Path
        The ``report.html`` file.

    Raises
    ------
    InputError
        If the folder cannot be written.
    """
    folder = Path(report_dir)
    with staged_folder(folder, what="report folder", merge=True) as tmp:
        for name, draw in plots.values():
            draw(tmp / name)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
        page = _page(metrics, {caption: name for caption, (name, _) in plots.items()}, source, layout)
        (tmp / "report.html").write_text(page, encoding="utf-8")
    log.info("wrote %s", folder / "report.html")
    return folder / "report.html"


def _page(metrics: Mapping[str, Any], pngs: Mapping[str, str], source: str | None, layout: ReportLayout) -> str:
    """The HTML of ``report.html``; ``pngs`` maps captions to file names in the folder."""
    title = f"{layout.title}: {metrics.get('prediction', '')} against {metrics.get('truth', '')}"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    described = [("catalog", source)] + [(label, metrics.get(key)) for label, key in layout.described]
    parts.append("<p>" + "<br>\n".join(f"{k}: <code>{html.escape(str(v))}</code>" for k, v in described if v) + "</p>")
    parts.append("<h2>Overall</h2>")
    rows = [[label, format_value(key, metrics[key]), note] for key, label, _, note in layout.figures if key in metrics]
    parts.append(_table(["metric", "value", "definition"], rows, css="defs"))
    for name, section in metrics.get("bins", {}).items():
        parts.append(f"<h2>Per {html.escape(name)} bin</h2>")
        if name == "redshift" and "pit_ks" in metrics:
            parts.append(f"<p>{_TRUE_Z_CAVEAT}</p>")
        parts.append(_bin_table(section, layout))
    compared = metrics.get(layout.compare)
    if compared:
        labels = {key: label for key, label, _, _ in layout.figures}
        parts.append(f"<h2>{html.escape(layout.compare_title)}</h2>")
        parts.append(_table(["column"] + [labels[k] for k in layout.compare_keys],
                            [[m] + [format_value(k, v.get(k)) for k in layout.compare_keys]
                             for m, v in compared.items()]))
    parts.append("<h2>Plots</h2>")
    for caption, png in pngs.items():
        parts.append(
            f'<figure><img src="{html.escape(png)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
