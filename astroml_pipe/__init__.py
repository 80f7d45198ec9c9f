"""astroml-pipe: declarative machine-learning pipelines for survey catalogs."""

from astroml_pipe._version import __version__

__all__ = ["__version__"]
