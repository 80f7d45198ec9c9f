"""Spectroscopic redshifts from archives, for building training sets.

:func:`crossmatch_spectra` cross-matches the sky positions of a catalog
against a spectroscopic archive -- the SDSS ``SpecObj`` table or a VizieR
catalog -- and returns a copy of the catalog with four new columns:

================= ======== =====================================================
column            unit     meaning
================= ======== =====================================================
``z_spec``                 spectroscopic redshift of the nearest spectrum within
                           the radius; NaN where there is none
``z_spec_flag``            the archive's quality flag of that spectrum (SDSS
                           ``zWarning``, or the VizieR column named by
                           ``flag_column``); -1 where there is no match
``z_spec_sep``    arcsec   separation between the source and the spectrum; NaN
                           where there is no match
``z_spec_source``          the archive or catalog the redshift comes from; empty
                           where there is no match
================= ======== =====================================================

The archive is asked, in batches of sources, for every spectrum within (a
little more than) the radius of each source; the answers are pooled and the
matching itself is done here, by :func:`crossmatch_local`, which is also the
function to call with a spectroscopic catalog of one's own (no network).  So
the nearest spectrum within ``radius_arcsec`` is chosen the same way whatever
the archive and however the sources are batched.

Network queries go through astroquery.  Each request has a time limit
(``timeout``, seconds per connection attempt and per read) and is tried up to
``retries`` times in all, waiting ``backoff``, ``2 * backoff``,
``4 * backoff`` ... seconds between tries, when the connection fails, times out
or the server answers 429/5xx.  When every try fails the error is an
:class:`~astroml_pipe.core.errors.InputError` whose one-line message names the
archive and the last reason.  Answers are not cached by astroquery.

Examples
--------
Attach SDSS redshifts to a photometric catalog, keep the secure ones::

    from astroml_pipe.io.archive import crossmatch_spectra
    from astroml_pipe.io.catalogs import read_catalog, write_catalog

    photometry = read_catalog("deep_field.fits")
    matched = crossmatch_spectra(photometry, archive="sdss", radius_arcsec=1.0)
    training = matched[matched["z_spec_flag"] == 0]   # matched, zWarning == 0
    write_catalog(training, "training.fits")

A VizieR catalog (here 2dFGRS, whose redshift quality ``q_z`` >= 3 is
reliable)::

    matched = crossmatch_spectra(
        photometry, archive="vizier", vizier_catalog="VII/250/2dfgrs",
        z_column="z", flag_column="q_z", radius_arcsec=1.5,
    )
    training = matched[matched["z_spec_flag"] >= 3]

A spectroscopic catalog on disk (no network)::

    from astroml_pipe.io.archive import crossmatch_local

    spectra = read_catalog("my_spectra.fits")
    matched = crossmatch_local(photometry, spectra, spec_ra="RA", spec_dec="DEC",
                               z_column="Z", flag_column="ZWARN", source="my survey")
"""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, Table, vstack

from astroml_pipe.core.errors import AstromlPipeWarning, ConfigError, InputError
from astroml_pipe.core.params import did_you_mean

if TYPE_CHECKING:  # imported lazily at run time
    from astroquery.sdss import SDSSClass
    from astroquery.vizier import VizierClass

__all__ = [
    "ARCHIVES",
    "OUTPUT_COLUMNS",
    "SDSS_MAX_RADIUS_ARCSEC",
    "crossmatch_spectra",
    "crossmatch_local",
]

log = logging.getLogger(__name__)

#: Archives :func:`crossmatch_spectra` can query.
ARCHIVES: tuple[str, ...] = ("sdss", "vizier")

#: The columns added to the catalog, in order.
OUTPUT_COLUMNS: tuple[str, ...] = ("z_spec", "z_spec_flag", "z_spec_sep", "z_spec_source")

#: Server-side limit of the SDSS cross-identification radius (3 arcmin).
SDSS_MAX_RADIUS_ARCSEC: float = 180.0

#: Default number of sources sent to the archive in one request.
DEFAULT_BATCH_SIZE = 500

#: SpecObjAll fields asked of SDSS (besides the redshift and flag columns).
_SDSS_FIELDS: tuple[str, ...] = ("ra", "dec", "specObjID", "sciencePrimary")

#: The archive is asked for spectra this much farther out than the radius:
#: SDSS searches around the photometric positions of the spectra's targets,
#: which may sit a little off the fibre positions matched here.
_SDSS_PAD_ARCSEC = 1.0
_VIZIER_PAD_ARCSEC = 0.1

_T = TypeVar("_T")


# -- public API ---------------------------------------------------------------


def crossmatch_spectra(
    table: Table,
    *,
    archive: str = "sdss",
    ra: str = "ra",
    dec: str = "dec",
    radius_arcsec: float = 1.0,
    vizier_catalog: str | None = None,
    z_column: str | None = None,
    flag_column: str | None = None,
    timeout: float = 60,
    retries: int = 3,
    backoff: float = 2.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    data_release: int = 17,
) -> Table:
    """Attach archive spectroscopic redshifts to a catalog by sky position.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog, one row per source.  It is not modified.
    archive : {"sdss", "vizier"}
        ``"sdss"``: the SDSS ``SpecObj`` spectra (``SpecObjAll`` rows with
        ``sciencePrimary = 1``) of data release ``data_release``, found with
        the SkyServer cross-identification service.  ``"vizier"``: the VizieR
        catalog named by ``vizier_catalog``.
    ra, dec : str
        Columns of ``table`` holding the ICRS right ascension and declination,
        in degrees unless the column has another angle unit.
    radius_arcsec : float
        Largest separation of a match, in arcseconds (at most 180 for SDSS).
    vizier_catalog : str, optional
        VizieR catalog or table, e.g. ``"VII/250/2dfgrs"`` (``archive="vizier"``
        only).  A catalog with several tables holding ``z_column`` must be
        narrowed to one table.
    z_column : str, optional
        Archive column of the redshift: default ``"z"`` for SDSS; required for
        VizieR.
    flag_column : str, optional
        Archive column of the redshift quality flag, copied to
        ``z_spec_flag``: default ``"zWarning"`` for SDSS (0: no known
        problem).  For VizieR without one, ``z_spec_flag`` is 0 for matched
        sources.
    timeout : float
        Seconds allowed to connect to the archive and for each read.
    retries : int
        How many times in all each request is tried (1: no retry).
    backoff : float
        Seconds waited after the first failed try; doubled after each next one.
    batch_size : int
        Sources per archive request.  The result does not depend on it.
    data_release : int
        SDSS data release.

    Returns
    -------
    astropy.table.Table
        A copy of ``table`` with the columns ``z_spec``, ``z_spec_flag``,
        ``z_spec_sep`` and ``z_spec_source`` (see the module documentation).

    Raises
    ------
    ConfigError
        If a parameter is wrong (unknown archive, bad radius, ...).
    InputError
        If the coordinate columns are missing or unusable, the output columns
        already exist, the archive answer lacks a named column, or the archive
        cannot be reached after ``retries`` tries.
    """
    archive = _check_archive(archive, vizier_catalog)
    if archive == "vizier" and not z_column:
        raise ConfigError(
            "archive='vizier' needs z_column, the catalog's redshift column (e.g. 'z')"
        )
    radius_arcsec = _check_radius(radius_arcsec, archive)
    timeout = _check_number("timeout", timeout, minimum=0.0, strict=True)
    backoff = _check_number("backoff", backoff, minimum=0.0)
    retries = _check_int("retries", retries, minimum=1)
    batch_size = _check_int("batch_size", batch_size, minimum=1)
    data_release = _check_int("data_release", data_release, minimum=1)
    _check_table(table)
    _check_free_outputs(table)
    coords = _catalog_coords(table, ra, dec)  # validate before any request

    if archive == "sdss":
        z_column = z_column or "z"
        flag_column = flag_column or "zWarning"
        source = f"SDSS DR{data_release} SpecObj"
        fetch = _sdss_fetcher(
            radius_arcsec=radius_arcsec + _SDSS_PAD_ARCSEC,
            timeout=timeout,
            data_release=data_release,
            fields=_unique([*_SDSS_FIELDS[:2], z_column, flag_column, *_SDSS_FIELDS[2:]]),
        )
        what = "the SDSS archive"
    else:
        assert vizier_catalog is not None and z_column
        fetch = _vizier_fetcher(
            catalog=vizier_catalog,
            z_column=z_column,
            flag_column=flag_column,
            radius_arcsec=radius_arcsec + _VIZIER_PAD_ARCSEC,
            timeout=timeout,
        )
        source = f"VizieR {vizier_catalog}"
        what = f"the VizieR archive (catalog '{vizier_catalog}')"

    pieces: list[Table] = []
    n_batches = math.ceil(len(table) / batch_size)
    for k, start in enumerate(range(0, len(table), batch_size)):
        batch = coords[start : start + batch_size]
        log.debug("querying %s: batch %d of %d (%d sources)", what, k + 1, n_batches, len(batch))
        found = _with_retries(
            lambda batch=batch: fetch(batch),
            what=what,
            retries=retries,
            backoff=backoff,
        )
        if found is not None and len(found):
            pieces.append(found)

    if archive == "sdss":
        spectra = _sdss_spectra(pieces, z_column=z_column, flag_column=flag_column)
        spec_ra, spec_dec, frame = "ra", "dec", "icrs"
    else:
        spectra, table_name = _vizier_spectra(pieces, z_column=z_column, flag_column=flag_column)
        if table_name:
            source = f"VizieR {table_name}"
        spec_ra, spec_dec, frame = "_RAJ2000", "_DEJ2000", "fk5"

    log.info("%s returned %d spectra near %d sources", what, len(spectra), len(table))
    if len(table) and not len(spectra):
        warnings.warn(
            f"{what} returned no spectra near any of the {len(table)} sources; check the "
            "catalog name and that the sources lie in the archive's footprint",
            AstromlPipeWarning,
            stacklevel=2,
        )
    return _match(
        table,
        coords,
        spectra,
        spec_ra=spec_ra,
        spec_dec=spec_dec,
        spec_frame=frame,
        z_column=z_column,
        flag_column=flag_column,
        radius_arcsec=radius_arcsec,
        source=source,
        what=f"the answer of {what}",
    )


def crossmatch_local(
    table: Table,
    spectra: Table,
    *,
    ra: str = "ra",
    dec: str = "dec",
    spec_ra: str = "ra",
    spec_dec: str = "dec",
    z_column: str = "z",
    flag_column: str | None = None,
    radius_arcsec: float = 1.0,
    source: str = "local",
    spec_frame: str = "icrs",
) -> Table:
    """Attach redshifts from a spectroscopic catalog in memory (no network).

    Each source gets the nearest spectrum (with a finite redshift) within
    ``radius_arcsec``; several sources may get the same spectrum.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog, one row per source.  It is not modified.
    spectra : astropy.table.Table
        The spectroscopic catalog.  Rows with a missing position or redshift
        are ignored.
    ra, dec : str
        Columns of ``table`` holding the ICRS right ascension and declination
        (degrees unless the column has another angle unit).
    spec_ra, spec_dec : str
        Columns of ``spectra`` holding its positions.
    z_column : str
        Column of ``spectra`` holding the redshift.
    flag_column : str, optional
        Column of ``spectra`` holding the redshift quality flag.  Without one,
        ``z_spec_flag`` is 0 for matched sources.
    radius_arcsec : float
        Largest separation of a match, in arcseconds.
    source : str
        Written to ``z_spec_source`` for matched sources.
    spec_frame : str
        Celestial frame of the ``spectra`` positions (e.g. ``"icrs"``,
        ``"fk5"``).

    Returns
    -------
    astropy.table.Table
        A copy of ``table`` with the columns ``z_spec``, ``z_spec_flag``
        (integers, -1 where unmatched; floats with NaN, or text with ``""``,
        if the flag column holds such values), ``z_spec_sep`` (arcsec) and
        ``z_spec_source``.

    Raises
    ------
    ConfigError
        If ``radius_arcsec`` or ``spec_frame`` is wrong.
    InputError
        If a named column is missing or unusable, a coordinate is out of
        range, or the output columns already exist.
    """
    radius_arcsec = _check_radius(radius_arcsec, None)
    _check_table(table)
    _check_table(spectra, "spectra")
    _check_free_outputs(table)
    coords = _catalog_coords(table, ra, dec)
    return _match(
        table,
        coords,
        spectra,
        spec_ra=spec_ra,
        spec_dec=spec_dec,
        spec_frame=spec_frame,
        z_column=z_column,
        flag_column=flag_column,
        radius_arcsec=radius_arcsec,
        source=str(source),
        what="the spectroscopic catalog",
    )


# -- matching -----------------------------------------------------------------


def _match(
    table: Table,
    coords: SkyCoord,
    spectra: Table,
    *,
    spec_ra: str,
    spec_dec: str,
    spec_frame: str,
    z_column: str,
    flag_column: str | None,
    radius_arcsec: float,
    source: str,
    what: str,
) -> Table:
    """The one place where sources and spectra are matched (see crossmatch_local)."""
    spec_coords, z, flags = _spectra_arrays(
        spectra, spec_ra, spec_dec, z_column, flag_column, spec_frame, what
    )
    n = len(table)
    if flags is None:
        flag_out: np.ndarray = np.full(n, -1, dtype=np.int64)
        flag_fill: Any = -1
        flag_note = "no flag column given: 0 = matched, -1 = no match"
    else:
        flag_out, flag_fill, note = _empty_flags(flags, n)
        if flag_out.dtype.kind != "U":  # e.g. uint8 -> int64, so that -1 fits
            flags = flags.astype(flag_out.dtype)
        flag_note = f"column {flag_column!r} of {source}; {note}"
    z_out = np.full(n, np.nan)
    sep_out = np.full(n, np.nan)
    matched = np.zeros(n, dtype=bool)

    if n and len(spec_coords):
        idx, sep2d, _ = coords.match_to_catalog_sky(spec_coords)
        sep = sep2d.to_value(u.arcsec)
        matched = sep <= radius_arcsec
        take = idx[matched]
        z_out[matched] = z[take]
        sep_out[matched] = sep[matched]
        if flags is None:
            flag_out[matched] = 0
        else:
            values = flags[take]
            if np.ma.isMaskedArray(values):
                values = values.filled(flag_fill)
            flag_out[matched] = values

    src_out = np.where(matched, source, "").astype(f"U{max(len(source), 1)}")

    out = table.copy()
    out["z_spec"] = Column(
        z_out,
        description=(
            f"spectroscopic redshift of the nearest {source} spectrum within "
            f"{radius_arcsec:g} arcsec (NaN: no match)"
        ),
    )
    out["z_spec_flag"] = Column(
        flag_out, description=f"redshift quality flag of the matched spectrum ({flag_note})"
    )
    out["z_spec_sep"] = Column(
        sep_out,
        unit=u.arcsec,
        description="separation between the source and the matched spectrum (NaN: no match)",
    )
    out["z_spec_source"] = Column(
        src_out, description="archive or catalog of the matched spectrum (empty: no match)"
    )
    log.info(
        "matched %d of %d sources to %s within %g arcsec",
        int(matched.sum()),
        n,
        source,
        radius_arcsec,
    )
    return out


def _empty_flags(flags: np.ndarray, n: int) -> tuple[np.ndarray, Any, str]:
    """The unmatched ``z_spec_flag`` column for flags like ``flags``, its fill and a note."""
    kind = flags.dtype.kind
    if kind in "biu":
        return np.full(n, -1, dtype=np.int64), -1, "-1: no match"
    if kind == "f":
        return np.full(n, np.nan), np.nan, "NaN: no match"
    width = max(flags.dtype.itemsize // (4 if kind == "U" else 1), 1)
    return np.full(n, "", dtype=f"U{width}"), "", "empty: no match"


def _spectra_arrays(
    spectra: Table,
    ra: str,
    dec: str,
    z_column: str,
    flag_column: str | None,
    frame: str,
    what: str,
) -> tuple[SkyCoord, np.ndarray, np.ndarray | None]:
    """Positions, redshifts and flags of the usable rows of ``spectra``."""
    for name in (ra, dec, z_column, flag_column):
        if name is not None and name not in spectra.colnames:
            raise InputError(f"{what} has no column '{name}'{_hint(name, spectra.colnames)}")
    ra_deg = _degrees(spectra[ra], ra, what)
    dec_deg = _degrees(spectra[dec], dec, what)
    z = _numbers(spectra[z_column], z_column, what)
    usable = np.isfinite(ra_deg) & np.isfinite(dec_deg) & np.isfinite(z)
    _check_range(ra_deg, dec_deg, ra, dec, what, usable)
    if not usable.all():
        log.debug("%s: %d rows without position or redshift ignored", what, int((~usable).sum()))
    flags: np.ndarray | None = None
    if flag_column is not None:
        col = spectra[flag_column]
        if getattr(col, "ndim", 1) != 1:
            raise InputError(f"column '{flag_column}' of {what} is not one value per row")
        flags = _plain(col)[usable]
        if flags.dtype.kind == "S":
            flags = flags.astype("U")
        if flags.dtype.kind not in "biufU":
            raise InputError(
                f"column '{flag_column}' of {what} holds {flags.dtype} values; "
                "expected numbers or text"
            )
    try:
        coords = SkyCoord(ra_deg[usable], dec_deg[usable], unit="deg", frame=frame)
    except ValueError as exc:
        raise ConfigError(f"spec_frame {frame!r} is not a celestial frame astropy knows") from exc
    return coords, z[usable], flags


# -- validation -----------------------------------------------------------------


def _check_table(table: Any, name: str = "table") -> None:
    if not isinstance(table, Table):
        raise TypeError(f"{name} must be an astropy Table, not {type(table).__name__}")


def _check_free_outputs(table: Table) -> None:
    taken = [c for c in OUTPUT_COLUMNS if c in table.colnames]
    if taken:
        raise InputError(
            f"the catalog already has column(s) {', '.join(repr(c) for c in taken)}; "
            "rename or remove them before cross-matching"
        )


def _check_archive(archive: Any, vizier_catalog: str | None) -> str:
    if not isinstance(archive, str) or archive.lower() not in ARCHIVES:
        hint = did_you_mean(str(archive).lower(), ARCHIVES)
        raise ConfigError(
            f"unknown archive {archive!r}{hint or ''} (expected one of: {', '.join(ARCHIVES)})"
        )
    archive = archive.lower()
    if archive == "vizier" and not (isinstance(vizier_catalog, str) and vizier_catalog.strip()):
        raise ConfigError(
            "archive='vizier' needs vizier_catalog, the VizieR catalog to query "
            "(e.g. 'VII/250/2dfgrs')"
        )
    if archive == "sdss" and vizier_catalog is not None:
        raise ConfigError(
            f"vizier_catalog={vizier_catalog!r} is only used with archive='vizier'"
        )
    return archive


def _check_number(name: str, value: Any, *, minimum: float, strict: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"{name} must be a finite number {bound}, not {value!r}")
    return value


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _check_radius(radius_arcsec: Any, archive: str | None) -> float:
    radius = _check_number("radius_arcsec", radius_arcsec, minimum=0.0, strict=True)
    if archive == "sdss" and radius > SDSS_MAX_RADIUS_ARCSEC:
        raise ConfigError(
            f"radius_arcsec={radius:g} is more than the SDSS limit of "
            f"{SDSS_MAX_RADIUS_ARCSEC:g} arcsec (3 arcmin)"
        )
    return radius


def _hint(name: str, names: Sequence[str]) -> str:
    """A did-you-mean suffix, or a short list of the columns there are."""
    hint = did_you_mean(name, names)
    if hint:
        return hint
    shown = ", ".join(list(names)[:12]) + (", ..." if len(names) > 12 else "")
    return f" (columns: {shown or 'none'})"


def _plain(col: Any) -> np.ma.MaskedArray:
    """A column as a plain masked array (no unit, no Column subclass)."""
    return np.ma.MaskedArray(np.asarray(np.ma.getdata(col)), mask=np.ma.getmaskarray(col))


def _numbers(col: Any, name: str, what: str) -> np.ndarray:
    """Float values of a numeric column, NaN where masked."""
    if getattr(col, "ndim", 1) != 1:
        raise InputError(f"column '{name}' of {what} is not one value per row")
    arr = _plain(col.value if isinstance(col, u.Quantity) else col)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"column '{name}' of {what} holds {arr.dtype} values; expected numbers")
    return arr.astype(np.float64).filled(np.nan)


def _degrees(col: Any, name: str, what: str) -> np.ndarray:
    """A coordinate column in degrees (NaN where masked)."""
    values = _numbers(col, name, what)
    unit = col.unit if isinstance(col, u.Quantity) else getattr(col, "unit", None)
    if unit is None or unit == u.dimensionless_unscaled:
        return values
    try:
        return (values * u.Unit(unit)).to_value(u.deg)
    except (u.UnitConversionError, ValueError, TypeError) as exc:
        raise InputError(
            f"column '{name}' of {what} has unit '{unit}'; expected an angle (degrees)"
        ) from exc


def _check_range(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    ra: str,
    dec: str,
    what: str,
    finite: np.ndarray,
) -> None:
    for name, values, low, high in ((ra, ra_deg, 0.0, 360.0), (dec, dec_deg, -90.0, 90.0)):
        with np.errstate(invalid="ignore"):
            bad = finite & ((values < low) | (values > high))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"column '{name}' of {what} has {int(bad.sum())} value(s) outside "
                f"[{low:g}, {high:g}] degrees (first: {values[row]:g} at row {row})"
            )


def _catalog_coords(table: Table, ra: str, dec: str) -> SkyCoord:
    """ICRS positions of every row of the catalog; InputError for anything unusable."""
    what = "the catalog"
    for name, role in ((ra, "right ascension"), (dec, "declination")):
        if name not in table.colnames:
            raise InputError(
                f"{what} has no column '{name}' ({role}){_hint(name, table.colnames)}"
            )
    ra_deg = _degrees(table[ra], ra, what)
    dec_deg = _degrees(table[dec], dec, what)
    for name, values in ((ra, ra_deg), (dec, dec_deg)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(
                f"column '{name}' of {what} has {int(bad.sum())} missing or non-finite "
                f"value(s) (first at row {int(np.flatnonzero(bad)[0])})"
            )
    _check_range(ra_deg, dec_deg, ra, dec, what, np.ones(len(ra_deg), dtype=bool))
    return SkyCoord(ra_deg, dec_deg, unit="deg", frame="icrs")


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


# -- network --------------------------------------------------------------------


def _is_transient(exc: BaseException) -> bool:
    """Whether a failed request is worth trying again."""
    import requests
    from astroquery.exceptions import TimeoutError as AstroqueryTimeout

    if isinstance(exc, requests.exceptions.HTTPError):
        status = getattr(exc.response, "status_code", None)
        return status is None or status == 429 or status >= 500
    return isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            AstroqueryTimeout,
            ConnectionError,
            TimeoutError,
        ),
    )


def _is_refusal(exc: BaseException) -> bool:
    """Whether the archive answered, but with an error (not worth retrying)."""
    import requests
    from astroquery.exceptions import RemoteServiceError, TableParseError

    return isinstance(exc, (requests.exceptions.HTTPError, RemoteServiceError, TableParseError))


def _reason(exc: BaseException) -> str:
    """A short, one-line description of an exception."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    if len(text) > 200:
        text = text[:197] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _with_retries(call: Callable[[], _T], *, what: str, retries: int, backoff: float) -> _T:
    """``call()``, tried up to ``retries`` times with exponential backoff.

    Raises
    ------
    InputError
        If every try fails for a network reason, or the archive refuses the
        query.
    """
    for attempt in range(1, retries + 1):
        try:
            return call()
        except InputError:
            raise
        except Exception as exc:
            if not _is_transient(exc):
                if _is_refusal(exc):
                    raise InputError(
                        f"{what} could not answer the query ({_reason(exc)})"
                    ) from exc
                raise
            if attempt == retries:
                raise InputError(
                    f"cannot reach {what} after {retries} "
                    f"{'try' if retries == 1 else 'tries'} ({_reason(exc)}); check the "
                    "network or use a local spectroscopic catalog (crossmatch_local)"
                ) from exc
            wait = backoff * 2 ** (attempt - 1)
            log.warning(
                "querying %s failed (try %d of %d: %s); trying again in %g s",
                what,
                attempt,
                retries,
                _reason(exc),
                wait,
            )
            if wait > 0:
                time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - retries >= 1


# -- SDSS -----------------------------------------------------------------------


def _sdss_client(timeout: float) -> SDSSClass:
    from astroquery.sdss import SDSSClass

    client = SDSSClass()
    client.TIMEOUT = timeout  # also used for the field-name lookups astroquery makes
    return client


def _sdss_fetcher(
    *, radius_arcsec: float, timeout: float, data_release: int, fields: list[str]
) -> Callable[[SkyCoord], Table | None]:
    """A function asking SDSS for the spectra near a batch of positions."""
    client = _sdss_client(timeout)
    radius = min(radius_arcsec, SDSS_MAX_RADIUS_ARCSEC) * u.arcsec

    def fetch(coords: SkyCoord) -> Table | None:
        # region=True cross-identification: every photometric object within
        # the radius of each position, joined to the SpecObjAll rows it is
        # the best photometric object of.
        return client.query_region(
            coords,
            radius=radius,
            spectro=True,
            specobj_fields=fields,
            timeout=timeout,
            data_release=data_release,
            cache=False,
        )

    return fetch


def _sdss_spectra(pieces: list[Table], *, z_column: str, flag_column: str) -> Table:
    """Pool SDSS answers: SpecObj rows (``sciencePrimary == 1``), each once."""
    what = "the answer of the SDSS archive"
    if not pieces:
        return Table(names=["ra", "dec", z_column, flag_column], dtype=["f8", "f8", "f8", "i8"])
    spectra = vstack(pieces, metadata_conflicts="silent") if len(pieces) > 1 else pieces[0]
    for name in (*_SDSS_FIELDS, z_column, flag_column):
        if name not in spectra.colnames:
            raise InputError(f"{what} has no column '{name}'{_hint(name, spectra.colnames)}")
    spectra = spectra[np.asarray(spectra["sciencePrimary"]) == 1]
    _, first = np.unique(np.asarray(spectra["specObjID"]), return_index=True)
    return spectra[np.sort(first)]


# -- VizieR ---------------------------------------------------------------------


def _vizier_client(columns: list[str], timeout: float) -> VizierClass:
    from astroquery.vizier import Vizier

    return Vizier(columns=columns, row_limit=-1, timeout=timeout)


def _vizier_fetcher(
    *,
    catalog: str,
    z_column: str,
    flag_column: str | None,
    radius_arcsec: float,
    timeout: float,
) -> Callable[[SkyCoord], Table | None]:
    """A function asking VizieR for the catalog rows near a batch of positions."""
    columns = _unique(["_RAJ2000", "_DEJ2000", z_column, *([flag_column] if flag_column else [])])
    client = _vizier_client(columns, timeout)

    def fetch(coords: SkyCoord) -> Table | None:
        found = client.query_region(
            coords, radius=radius_arcsec * u.arcsec, catalog=catalog, cache=False
        )
        return _vizier_table(found, catalog=catalog, z_column=z_column, flag_column=flag_column)

    return fetch


def _vizier_table(
    found: Any, *, catalog: str, z_column: str, flag_column: str | None
) -> Table | None:
    """The one table of a VizieR answer (a TableList) that holds ``z_column``."""
    if found is None or len(found) == 0:
        return None
    names = [str(name) for name in found.keys()]
    with_z = [name for name in names if z_column in found[name].colnames]
    if not with_z:
        first = found[names[0]]
        raise InputError(
            f"VizieR catalog '{catalog}' has no column '{z_column}' "
            f"(table {names[0]}{_hint(z_column, first.colnames)})"
        )
    if len(with_z) > 1:
        if catalog in with_z:
            with_z = [catalog]
        else:
            raise InputError(
                f"VizieR catalog '{catalog}' has several tables with column '{z_column}' "
                f"({', '.join(with_z)}); name one of them as vizier_catalog"
            )
    table = found[with_z[0]]
    if flag_column is not None and flag_column not in table.colnames:
        raise InputError(
            f"VizieR catalog '{catalog}' has no column '{flag_column}' "
            f"(table {with_z[0]}{_hint(flag_column, table.colnames)})"
        )
    table.meta["vizier_table"] = with_z[0]
    if "_q" in table.colnames:  # index of the position in this batch only
        table.remove_column("_q")
    return table


def _vizier_spectra(
    pieces: list[Table], *, z_column: str, flag_column: str | None
) -> tuple[Table, str | None]:
    """Pool VizieR answers; also return the VizieR table they come from."""
    what = "the answer of the VizieR archive"
    if not pieces:
        names = ["_RAJ2000", "_DEJ2000", z_column, *([flag_column] if flag_column else [])]
        return Table(names=names, dtype=["f8", "f8", "f8", "i8"][: len(names)]), None
    tables = {piece.meta.get("vizier_table") for piece in pieces}
    if len(tables) > 1:
        raise InputError(
            f"{what} came from several tables ({', '.join(sorted(map(str, tables)))}); "
            "name one of them as vizier_catalog"
        )
    spectra = vstack(pieces, metadata_conflicts="silent") if len(pieces) > 1 else pieces[0]
    for name in ("_RAJ2000", "_DEJ2000"):
        if name not in spectra.colnames:
            raise InputError(f"{what} has no positions (column '{name}')")
    return spectra, tables.pop()
