"""The evaluation report folder: ``metrics.json``, PNG plots and ``report.html``.

``report.html`` is one self-contained page (inline style, no scripts, no
external resources) with the overall metrics, the per-bin tables and the
plots, linked relatively so that the folder can be moved or archived whole.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

from astroml_pipe.core.errors import InputError

__all__ = ["FIGURES", "format_value", "overall_lines", "write_report"]

log = logging.getLogger(__name__)

#: The figures of merit: key, label, format, and what they mean.
FIGURES: tuple[tuple[str, str, str, str], ...] = (
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
_FORMATS = {key: fmt for key, _, fmt, _ in FIGURES}
#: Columns of the per-bin tables (besides the bin limits).
_BIN_KEYS = (
    "n", "sigma_nmad", "sigma_iqr", "outlier_fraction", "bias",
    "pit_ks", "pit_cvm", "pit_outlier_rate", "crps_mean", "cde_loss",
)


def format_value(key: str, value: Any) -> str:
    """``value`` formatted for metric ``key`` (``–`` when it is undefined)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    fmt = _FORMATS.get(key, ".4g")
    if fmt.endswith("d"):
        value = int(value)
    return format(value, fmt)


def overall_lines(metrics: Mapping[str, Any], *, align: bool = True) -> list[str]:
    """One ``label = value`` item per overall figure present in ``metrics``.

    With ``align`` the labels are padded to one width (a column of lines);
    without, the items suit joining on one line.
    """
    shown = [(label, format_value(key, metrics[key])) for key, label, _, _ in FIGURES if key in metrics]
    width = max((len(label) for label, _ in shown), default=0) if align else 0
    return [f"{label:<{width}} = {value}" for label, value in shown]


def _table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}>\n<tr>{head}</tr>\n{body}\n</table>"


def _bin_table(section: Mapping[str, Any]) -> str:
    rows_in = section.get("rows", [])
    keys = [k for k in _BIN_KEYS if any(k in r for r in rows_in)]
    labels = {key: label for key, label, _, _ in FIGURES}
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
    plots: Mapping[str, str | os.PathLike[str]],
    *,
    source: str | None = None,
) -> Path:
    """Write ``metrics.json`` and ``report.html`` into ``report_dir``.

    Parameters
    ----------
    report_dir : path
        The report folder (created if needed); the PNGs should already be in it.
    metrics : dict
        Metrics as returned by :func:`astroml_pipe.evaluate.photoz.evaluate_photoz`
        (JSON-ready: ``None`` for undefined values).
    plots : dict of str to path
        Caption -> PNG file; each is shown with a relative ``<img>`` link.
    source : str, optional
        The evaluated catalog, named on the page.

    Returns
    -------
    pathlib.Path
        The ``report.html`` file.
    """
    folder = Path(report_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write report folder '{folder}': {exc.strerror or exc}") from None
    title = f"Photo-z evaluation: {metrics.get('prediction', '')} against {metrics.get('truth', '')}"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    described = [
        ("catalog", source),
        ("point estimate", metrics.get("prediction")),
        ("true redshift", metrics.get("truth")),
        ("PDF column", metrics.get("pdf")),
        ("magnitude", metrics.get("magnitude")),
    ]
    parts.append("<p>" + "<br>\n".join(f"{k}: <code>{html.escape(str(v))}</code>" for k, v in described if v) + "</p>")
    parts.append("<h2>Overall</h2>")
    rows = [[label, format_value(key, metrics[key]), note] for key, label, _, note in FIGURES if key in metrics]
    parts.append(_table(["metric", "value", "definition"], rows, css="defs"))
    for name, section in metrics.get("bins", {}).items():
        parts.append(f"<h2>Per {html.escape(name)} bin</h2>")
        if name == "redshift" and "pit_ks" in metrics:
            parts.append(f"<p>{_TRUE_Z_CAVEAT}</p>")
        parts.append(_bin_table(section))
    members = metrics.get("members")
    if members:
        parts.append("<h2>Committee members</h2>")
        keys = [k for k, *_ in FIGURES[:5]]
        parts.append(_table(["member"] + [label for _, label, *_ in FIGURES[:5]],
                            [[m] + [format_value(k, v.get(k)) for k in keys] for m, v in members.items()]))
    parts.append("<h2>Plots</h2>")
    for caption, png in plots.items():
        link = Path(os.path.relpath(Path(png), folder)).as_posix()
        parts.append(
            f'<figure><img src="{html.escape(link)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    log.info("wrote %s", out)
    return out
