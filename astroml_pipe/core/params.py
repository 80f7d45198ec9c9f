"""Typed, documented stage parameters, declared once.

A stage lists its parameters as :class:`Param` objects.  The same declaration
validates values coming from a pipeline file or from Python, feeds
``astroml-pipe stages``, the error messages, and the generated docstrings.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from astroml_pipe.core.errors import ConfigError

__all__ = ["Param", "close_matches", "validate_params"]

_RESERVED = ("columns", "label")
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name`` (for did-you-mean hints)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not found:
        lowered = name.lower()
        found = [c for c in candidates if lowered in c.lower() or c.lower() in lowered][:n]
    return found


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Format a ``"; did you mean 'x'?"`` suffix, or an empty string."""
    matches = close_matches(name, candidates)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"


@dataclass(frozen=True)
class Param:
    """One declared parameter of a stage.

    Parameters
    ----------
    name : str
        Keyword used in Python and in the pipeline file.
    type : type
        One of ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``.
    default : object
        Value used when the parameter is not given.
    doc : str
        One-sentence description shown in ``astroml-pipe stages`` and the docs.
    choices : tuple, optional
        Allowed values.
    minimum, maximum : float, optional
        Inclusive bounds for numbers.
    nullable : bool
        Whether ``None`` (YAML ``null``) is allowed.
    item_type : type, optional
        Type of the items of a ``list`` parameter.
    """

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    item_type: type | None = None

    def __post_init__(self) -> None:
        if self.name in _RESERVED:
            raise TypeError(f"parameter name {self.name!r} is reserved")
        if self.default is None and not self.nullable:
            raise TypeError(f"parameter {self.name!r} defaults to None but is not nullable")

    @property
    def type_name(self) -> str:
        """Human-readable type, e.g. ``'int'`` or ``'list[str] or null'``."""
        text = _TYPE_NAMES.get(self.type, self.type.__name__)
        if self.type is list and self.item_type is not None:
            text += f"[{_TYPE_NAMES.get(self.item_type, self.item_type.__name__)}]"
        if self.choices:
            text = " | ".join(repr(c) for c in self.choices)
        if self.nullable:
            text += " or null"
        return text

    def describe(self) -> str:
        """One line: name, type, default and doc."""
        return f"{self.name} ({self.type_name}, default {self.default!r}): {self.doc}"

    def validate(self, value: Any, where: str) -> Any:
        """Return ``value`` converted to the declared type, or raise `ConfigError`.

        ``where`` names the stage, e.g. ``"stage 'photoz' (photoz.catboost)"``.
        """
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{where}: parameter {self.name!r} must not be null; expected {self.type_name}")
        converted = self._convert(value, self.type)
        if converted is _INVALID:
            raise ConfigError(
                f"{where}: parameter {self.name!r} must be {self.type_name}, got {value!r}"
            )
        if self.type is list and self.item_type is not None:
            items = [self._convert(v, self.item_type) for v in converted]
            if any(v is _INVALID for v in items):
                raise ConfigError(
                    f"{where}: parameter {self.name!r} must be {self.type_name}, got {value!r}"
                )
            converted = items
        if self.choices is not None and converted not in self.choices:
            raise ConfigError(
                f"{where}: parameter {self.name!r} must be one of "
                f"{', '.join(repr(c) for c in self.choices)}, got {value!r}"
            )
        if self.minimum is not None and converted < self.minimum:
            raise ConfigError(f"{where}: parameter {self.name!r} must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and converted > self.maximum:
            raise ConfigError(f"{where}: parameter {self.name!r} must be <= {self.maximum}, got {value!r}")
        return converted

    @staticmethod
    def _convert(value: Any, kind: type) -> Any:
        if kind is bool:
            return value if isinstance(value, bool) else _INVALID
        if kind is int:
            if isinstance(value, bool):
                return _INVALID
            if isinstance(value, int):
                return int(value)
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return _INVALID
        if kind is float:
            if isinstance(value, bool):
                return _INVALID
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                try:
                    out = float(value)  # accepts "nan", "inf", "1e-3"
                except ValueError:
                    return _INVALID
                return out if not math.isnan(out) or value.strip().lower() == "nan" else _INVALID
            return _INVALID
        if kind is str:
            return value if isinstance(value, str) else _INVALID
        if kind is list:
            if isinstance(value, (list, tuple)):
                return list(value)
            return _INVALID
        if kind is dict:
            return dict(value) if isinstance(value, Mapping) else _INVALID
        return value if isinstance(value, kind) else _INVALID


_INVALID = object()


def validate_params(params: Sequence[Param], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``given`` against ``params``; report every problem at once.

    Returns
    -------
    dict
        Every declared parameter, given or defaulted, converted to its type.

    Raises
    ------
    ConfigError
        Unknown keys (with a did-you-mean) and invalid values, all in one message.
    """
    declared = {p.name: p for p in params}
    problems: list[str] = []
    for key in given:
        if key not in declared:
            known = ", ".join(declared) or "none"
            problems.append(
                f"{where}: unknown parameter {key!r}{did_you_mean(key, declared)} (parameters: {known})"
            )
    values: dict[str, Any] = {}
    for name, param in declared.items():
        try:
            values[name] = param.validate(given[name], where) if name in given else _copy(param.default)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return values


def _copy(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value
