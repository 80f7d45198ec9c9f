"""astroml-pipe: declarative machine-learning pipelines for survey catalogs.

The main objects are importable from the top level::

    from astroml_pipe import Pipeline, Stage, read_catalog, run_catalog

They are imported on first use, so ``import astroml_pipe`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from astroml_pipe._version import __version__

_LAZY = {
    "Pipeline": "astroml_pipe.core.pipeline",
    "Stage": "astroml_pipe.core.stage",
    "Param": "astroml_pipe.core.params",
    "Col": "astroml_pipe.core.columns",
    "ColumnMap": "astroml_pipe.core.columns",
    "open_catalog": "astroml_pipe.io.catalogs",
    "read_catalog": "astroml_pipe.io.catalogs",
    "write_catalog": "astroml_pipe.io.catalogs",
    "run_catalog": "astroml_pipe.runner",
    "train_catalog": "astroml_pipe.runner",
    "read_pdf": "astroml_pipe.stages.photoz.pdf",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'astroml_pipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
