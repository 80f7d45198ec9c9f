"""Simulated training and test data: galaxy photometry and star/galaxy image cutouts.

The cutout simulator needs the ``sim`` extra (GalSim and speclite):
``pip install "astroml-pipe[sim]"``.  The photometry simulator reads the
band fluxes of its templates from a table shipped with the package, and
needs the extra only to rebuild that table.
"""

from __future__ import annotations

import importlib.util

from astroml_pipe.core.errors import MissingDependencyError

__all__ = ["require_sim_extra"]

#: Modules of the ``sim`` extra.
SIM_MODULES = ("galsim", "speclite")


def require_sim_extra(what: str) -> None:
    """Raise :class:`MissingDependencyError` naming the ``sim`` extra if GalSim or speclite is missing.

    Parameters
    ----------
    what : str
        The feature that needs them, for the message.
    """
    missing = [name for name in SIM_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(
            f"{what} needs {' and '.join(missing)}, which are not installed; "
            'install the simulation extra: pip install "astroml-pipe[sim]"'
        )
