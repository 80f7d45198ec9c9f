"""Finding stages by name through the ``astroml_pipe.stages`` entry-point group.

The package registers its own stages in that group, exactly as a third-party
package would::

    [options.entry_points]
    astroml_pipe.stages =
        mysurvey.flux = mysurvey_stages.flux:Flux

Names resolve lazily: listing names reads only distribution metadata, and a
stage's module is imported when the stage is first used.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from astroml_pipe.core.errors import ConfigError
from astroml_pipe.core.params import did_you_mean
from astroml_pipe.core.stage import Stage

__all__ = ["GROUP", "stage_names", "get_stage_class", "refresh"]

log = logging.getLogger(__name__)

GROUP = "astroml_pipe.stages"


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "<unknown distribution>"


@lru_cache(maxsize=1)
def _registered() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        same = found.setdefault(ep.name, [])
        # The same distribution seen twice on sys.path (editable + build dir) is one registration.
        if not any(o.value == ep.value and _dist_name(o) == _dist_name(ep) for o in same):
            same.append(ep)
    return found


def refresh() -> None:
    """Forget cached registrations (after installing a plugin in a running session)."""
    _registered.cache_clear()
    _load.cache_clear()


def stage_names() -> list[str]:
    """Names of every registered stage, sorted."""
    return sorted(_registered())


@lru_cache(maxsize=None)
def _load(name: str) -> type[Stage]:
    eps = _registered()[name]
    if len(eps) > 1:
        owners = " and ".join(f"{_dist_name(ep)} ({ep.value})" for ep in eps)
        raise ConfigError(f"stage name {name!r} is registered twice: by {owners}")
    ep = eps[0]
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not look like an unknown stage
        raise ConfigError(
            f"stage {name!r} from {_dist_name(ep)} could not be imported ({ep.value}): {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise ConfigError(f"stage {name!r} from {_dist_name(ep)} ({ep.value}) is not a Stage subclass")
    if cls.name != name:
        raise ConfigError(
            f"stage {name!r} from {_dist_name(ep)} points to {cls.__name__}, whose name is {cls.name!r}"
        )
    log.debug("loaded stage %s from %s", name, ep.value)
    return cls


def get_stage_class(name: str) -> type[Stage]:
    """Return the stage class registered as ``name``.

    Raises
    ------
    ConfigError
        Unknown name (with close matches), a name registered by two
        distributions, or a registration that cannot be imported.
    """
    if name not in _registered():
        known = stage_names()
        raise ConfigError(
            f"unknown stage {name!r}{did_you_mean(name, known)} (registered: {', '.join(known) or 'none'})"
        )
    return _load(name)
