"""Exceptions and warnings raised by astroml-pipe.

Every error meant for a user derives from :class:`AstromlPipeError`; its
message is a single line that names the file, column, stage or parameter at
fault and says what was expected.  The command line prints that line and
exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "AstromlPipeError",
    "ConfigError",
    "InputError",
    "ModelError",
    "MissingDependencyError",
    "AstromlPipeWarning",
]


class AstromlPipeError(Exception):
    """Base class of all user-facing astroml-pipe errors."""


class ConfigError(AstromlPipeError, ValueError):
    """A pipeline file, stage name or stage parameter is wrong."""


class InputError(AstromlPipeError, ValueError):
    """An input or output file, or a column in it, is unusable."""


class ModelError(AstromlPipeError, RuntimeError):
    """A model is missing, untrained, or was made by an incompatible version."""


class MissingDependencyError(AstromlPipeError, ImportError):
    """An optional dependency that this feature needs is not installed."""


class AstromlPipeWarning(UserWarning):
    """A caveat about the data or the result that the user should see."""
