"""Photometric-redshift stages and their PDF helpers.

The stages themselves are imported lazily through the registry
(``photoz.random_forest``, ``photoz.catboost``); importing this package only
brings in :func:`read_pdf` and the grid helpers.
"""

from astroml_pipe.stages.photoz.pdf import PdfGrid, read_pdf

__all__ = ["PdfGrid", "read_pdf"]
