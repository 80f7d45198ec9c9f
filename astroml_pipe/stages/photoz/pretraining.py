"""Simulated galaxies on which a photo-z network is pre-trained before it learns from real ones.

Training on simulations and transferring to real data: a network first
learns the broad relation between colours and redshift from many simulated
galaxies (:func:`~astroml_pipe.simulate.photometry.simulate_photometry`:
CWW templates, LSST filters and depths), then goes on learning from the
real spectroscopic training set, which corrects what the simulation gets
wrong.  This helps most when the real training set is small.

The simulated catalog is written in the pipeline's own column names (its
``columns:`` map) and runs through the stages before the photo-z stage, so
its features are made exactly as those of the real rows.  Its settings come
from the stage's ``pretrain`` parameter::

    pretrain: {galaxies: 200000, epochs: 10, mag_limit: 25.3, limit_band: i, depth: lsst10yr}

Only ``galaxies`` is required: the number of simulated galaxies for every
network (:class:`~astroml_pipe.stages.photoz.mlp.MLPPhotoZ` simulates
``galaxies`` times ``n_networks`` and gives each network its own).  The
simulation covers the LSST bands ``ugrizy`` only.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, fields
from typing import Any, Mapping

from astropy.table import Table

from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import ConfigError

__all__ = ["PretrainSettings", "simulated_catalog"]

log = logging.getLogger(__name__)

#: Added to the stage's random_state to seed the simulation.
SEED_OFFSET = 7919


@dataclass(frozen=True)
class PretrainSettings:
    """What to simulate for pretraining and for how long to pretrain.

    Parameters
    ----------
    galaxies : int
        Number of simulated galaxies (for each network of a committee).
    epochs : int
        Passes over them before the real training starts.
    mag_limit, limit_band, depth
        Selection and depth of the simulation, as in
        :func:`~astroml_pipe.simulate.photometry.simulate_photometry`.
    """

    galaxies: int
    epochs: int = 10
    mag_limit: float = 25.3
    limit_band: str = "i"
    depth: str = "lsst10yr"

    @classmethod
    def from_param(cls, value: Mapping[str, Any], columns: ColumnMap, where: str) -> "PretrainSettings":
        """Check the ``pretrain`` parameter against the pipeline's bands; raise `ConfigError` if it is wrong."""
        # Imported only when pretrain is set: the simulator loads scipy.special.
        from astroml_pipe.simulate.photometry import LSST_BANDS, M5, M_BRIGHT

        known = [f.name for f in fields(cls)]
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(f"{where}: parameter 'pretrain' has unknown key(s) {unknown}; known: {known}")
        if "galaxies" not in value:
            raise ConfigError(f"{where}: parameter 'pretrain' needs 'galaxies', the number of simulated galaxies")
        try:
            settings = cls(
                galaxies=_integer(value["galaxies"]),
                epochs=_integer(value.get("epochs", cls.epochs)),
                mag_limit=float(value.get("mag_limit", cls.mag_limit)),
                limit_band=str(value.get("limit_band", cls.limit_band)),
                depth=str(value.get("depth", cls.depth)),
            )
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: parameter 'pretrain' must be {{galaxies: int, epochs: int, mag_limit: float, "
                f"limit_band: str, depth: str}}, got {dict(value)!r}"
            ) from None
        if settings.galaxies < 1 or settings.epochs < 1:
            raise ConfigError(f"{where}: pretrain 'galaxies' and 'epochs' must be positive, got {dict(value)!r}")
        if not M_BRIGHT + 1.0 < settings.mag_limit < 30.0:  # the range simulate_photometry accepts
            raise ConfigError(
                f"{where}: pretrain 'mag_limit' must be in ({M_BRIGHT + 1:g}, 30), got {settings.mag_limit}"
            )
        if settings.depth not in M5:
            raise ConfigError(f"{where}: pretrain 'depth' must be one of {sorted(M5)}, got {settings.depth!r}")
        others = [band for band in columns.bands if band not in LSST_BANDS]
        if others:
            raise ConfigError(
                f"{where}: pretrain simulates the LSST bands {''.join(LSST_BANDS)} only; the pipeline's "
                f"band(s) {others} are not among them; set pretrain: null to train without pretraining"
            )
        if settings.limit_band not in columns.bands:
            raise ConfigError(
                f"{where}: pretrain 'limit_band' {settings.limit_band!r} is not one of the bands {list(columns.bands)}"
            )
        if all(math.isnan(v) for v in columns.nondetection):
            raise ConfigError(f"{where}: pretrain needs a non-detection value in the pipeline's columns map")
        return settings


def _integer(value: Any) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(value)
    return int(value)


def simulated_catalog(settings: PretrainSettings, columns: ColumnMap, target: str, z_max: float,
                      random_state: int | None) -> Table:
    """Simulated galaxies in the pipeline's column names, with their true redshifts in ``target``.

    Parameters
    ----------
    settings : PretrainSettings
        What to simulate.
    columns : ColumnMap
        The pipeline's columns: magnitudes and errors are written under
        ``columns.mag_column(band)`` and ``columns.err_column(band)``, and
        non-detections as its first non-detection value.
    target : str
        Name of the true-redshift column.
    z_max : float
        Highest redshift (the top of the PDF grid; at most 4).
    random_state : int or None
        Seed; the simulation uses ``random_state + 7919``.

    Returns
    -------
    astropy.table.Table
        ``settings.galaxies`` rows.
    """
    from astroml_pipe.simulate.photometry import simulate_photometry

    nondetection = next(v for v in columns.nondetection if not math.isnan(v))
    seed = None if random_state is None else int(random_state) + SEED_OFFSET
    start = time.perf_counter()
    sim = simulate_photometry(settings.galaxies, random_state=seed, bands=columns.bands,
                              mag_limit=settings.mag_limit, limit_band=settings.limit_band, depth=settings.depth,
                              z_max=min(float(z_max), 4.0), nondetection=nondetection)
    out = Table()
    for band in columns.bands:
        out[columns.mag_column(band)] = sim[f"mag_{band}"]
        out[columns.err_column(band)] = sim[f"magerr_{band}"]
    out[target] = sim["redshift"]
    log.info("simulated %d galaxies for pretraining in %.1f s", len(out), time.perf_counter() - start)
    return out
