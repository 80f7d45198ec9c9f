"""Column declarations and the mapping of a survey's column names onto roles.

Stages never hard-code a survey's column names.  They ask a :class:`ColumnMap`
for the column that plays a role (``mag`` in band ``g``, say), and the map is
set once per pipeline from its ``columns:`` section.  The map also knows how
missing photometry is written:

* **non-detection** — the source was observed but is fainter than the limit
  (often written ``99`` or ``inf``);
* **not observed** — there is no measurement at all (``NaN`` or ``-99``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from astroml_pipe.core.errors import ConfigError
from astroml_pipe.core.params import did_you_mean

__all__ = ["Col", "ColumnMap"]


@dataclass(frozen=True)
class Col:
    """A column that a stage writes.

    Parameters
    ----------
    name : str
        Column name.
    unit : str or None
        Astropy unit string (``"mag"``, ``"deg"``, ``""`` for dimensionless).
    dtype : str
        NumPy dtype, e.g. ``"float32"``.
    description : str
        One sentence, written to the output file.
    shape : tuple of int
        Per-row shape; ``()`` for a scalar column.
    meta : dict
        Extra column metadata (for example the grid of a PDF column).
    """

    name: str
    unit: str | None
    dtype: str
    description: str
    shape: tuple[int, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def _as_floats(value: Any, key: str) -> tuple[float, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            raise ConfigError(
                f"columns: {key!r} must be a number or a list of numbers (99, inf, nan, -99), got {item!r}"
            ) from None
    return tuple(out)


@dataclass(frozen=True, eq=False)
class ColumnMap:
    """Where a catalog keeps the quantities that stages use.

    Parameters
    ----------
    mag : str
        Pattern of the magnitude columns; ``{band}`` is replaced by each band.
    mag_err : str
        Pattern of the magnitude-error columns.
    bands : tuple of str
        Bands, in wavelength order.
    nondetection : tuple of float
        Values that mean "observed, not detected" (e.g. ``99``, ``inf``).
    unobserved : tuple of float
        Values that mean "not observed" (e.g. ``nan``, ``-99``).
    """

    mag: str = "mag_{band}"
    mag_err: str = "magerr_{band}"
    bands: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
    nondetection: tuple[float, ...] = (99.0, math.inf)
    unobserved: tuple[float, ...] = (math.nan, -99.0)

    def __post_init__(self) -> None:
        for key in ("mag", "mag_err"):
            pattern = getattr(self, key)
            if not isinstance(pattern, str) or "{band}" not in pattern:
                raise ConfigError(f"columns: {key!r} must be a pattern containing '{{band}}', got {pattern!r}")
        if not self.bands or len(set(self.bands)) != len(self.bands):
            raise ConfigError(f"columns: 'bands' must be a non-empty list of distinct bands, got {list(self.bands)!r}")
        overlap = {v for v in self.nondetection if not math.isnan(v)} & {
            v for v in self.unobserved if not math.isnan(v)
        }
        if overlap:
            raise ConfigError(
                f"columns: value(s) {sorted(overlap)} cannot mean both non-detection and not observed"
            )

    def __eq__(self, other: object) -> bool:
        # NaN sentinels never compare equal to themselves; compare the YAML form.
        return isinstance(other, ColumnMap) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    # -- construction -----------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "ColumnMap":
        """Build from the ``columns:`` section of a pipeline file."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"columns: expected a mapping of roles to column names, got {data!r}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in known]
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"columns: unknown key {key!r}{did_you_mean(key, known)} (keys: {', '.join(known)})"
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("nondetection", "unobserved"):
                kwargs[key] = _as_floats(value, key)
            elif key == "bands":
                if isinstance(value, str) or not isinstance(value, Sequence):
                    raise ConfigError(f"columns: 'bands' must be a list such as [u, g, r, i, z, y], got {value!r}")
                kwargs[key] = tuple(str(b) for b in value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The ``columns:`` section that rebuilds this map (YAML friendly)."""

        def clean(values: tuple[float, ...]) -> list[Any]:
            out: list[Any] = []
            for v in values:
                if math.isnan(v):
                    out.append("nan")
                elif math.isinf(v):
                    out.append("inf" if v > 0 else "-inf")
                else:
                    out.append(v)
            return out

        return {
            "mag": self.mag,
            "mag_err": self.mag_err,
            "bands": list(self.bands),
            "nondetection": clean(self.nondetection),
            "unobserved": clean(self.unobserved),
        }

    def replace(self, **changes: Any) -> "ColumnMap":
        """A copy with some roles changed (same validation as :meth:`from_dict`)."""
        merged = self.to_dict()
        merged.update(changes)
        return ColumnMap.from_dict(merged)

    # -- lookup --------------------------------------------------------------
    def mag_column(self, band: str) -> str:
        """Name of the magnitude column of ``band``."""
        return self.mag.format(band=band)

    def err_column(self, band: str) -> str:
        """Name of the magnitude-error column of ``band``."""
        return self.mag_err.format(band=band)

    def photometry_columns(self) -> list[str]:
        """All magnitude and error columns, band by band."""
        out = []
        for band in self.bands:
            out += [self.mag_column(band), self.err_column(band)]
        return out

    def sentinel_masks(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify entries as non-detected or not observed.

        Returns
        -------
        nondetected, unobserved : numpy.ndarray of bool
            Masks of entries equal to a non-detection or a not-observed
            sentinel (NaN always counts as not observed unless it is listed
            as a non-detection sentinel).
        """
        values = np.asarray(values)
        nondet = _matches(values, self.nondetection)
        unobs = _matches(values, self.unobserved) & ~nondet
        if not any(math.isnan(v) for v in self.nondetection):
            unobs |= np.isnan(values)
        return nondet, unobs

    def usable(self, values: np.ndarray) -> np.ndarray:
        """Mask of finite entries that are neither kind of sentinel."""
        nondet, unobs = self.sentinel_masks(values)
        return np.isfinite(values) & ~nondet & ~unobs

    # -- detection -----------------------------------------------------------
    _MAG_PATTERNS = ("mag_{band}", "{band}_mag", "mag_{band}_lsst", "{band}", "MAG_{band}", "{band}mag")
    _ERR_PATTERNS = (
        "magerr_{band}",
        "mag_err_{band}",
        "mag_{band}_err",
        "{band}_err",
        "{band}_magerr",
        "err_{band}",
        "magerr_{band}_lsst",
        "mag_err_{band}_lsst",
        "MAGERR_{band}",
        "{band}_mag_err",
    )

    def detect(self, available: Iterable[str]) -> "ColumnMap":
        """Return a map for these bands whose patterns match ``available``.

        The current patterns are tried first, then common survey spellings.

        Raises
        ------
        ConfigError
            When no pattern finds every band, naming what was looked for.
        """
        names = set(available)

        def first(patterns: Iterable[str]) -> str | None:
            for pattern in patterns:
                if all(pattern.format(band=b) in names for b in self.bands):
                    return pattern
            return None

        mag = first((self.mag, *self._MAG_PATTERNS))
        err = first((self.mag_err, *self._ERR_PATTERNS))
        if mag is None or err is None:
            role, pattern = ("mag", self.mag) if mag is None else ("mag_err", self.mag_err)
            expected = [pattern.format(band=b) for b in self.bands]
            missing = [c for c in expected if c not in names]
            if len(missing) < len(expected):  # the pattern is right but some bands are missing
                raise ConfigError(
                    f"{role} column(s) {', '.join(repr(m) for m in missing)} missing "
                    f"(pattern {pattern!r}, bands {','.join(self.bands)}){did_you_mean(missing[0], names)}"
                )
            raise ConfigError(
                f"cannot find the {role} columns for bands {','.join(self.bands)} "
                f"(looked for {expected[0]!r} and common spellings){did_you_mean(expected[0], names)}; "
                f"name them with --columns {role}=PATTERN, e.g. {role}='{pattern}'"
            )
        return self.replace(mag=mag, mag_err=err)


def _matches(values: np.ndarray, sentinels: Iterable[float]) -> np.ndarray:
    mask = np.zeros(values.shape, dtype=bool)
    for s in sentinels:
        if math.isnan(s):
            mask |= np.isnan(values)
        else:
            mask |= values == s
    return mask

