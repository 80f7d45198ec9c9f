"""Cut multi-band image stamps at catalog positions into an array column.

A cutout is a multi-dimensional column of the catalog (``N x bands x H x W``,
one row per source), so a catalog with stamps is just a catalog.
:func:`cut_stamps` makes such a column from FITS images with a celestial WCS;
:func:`stamps_in_table` tells whether a catalog already carries one (a ZTF
alert, say), in which case it is used as it is.

Images
------
``images`` is one of

* a list of files, one per band, in band order;
* a glob pattern (a string containing ``*``, ``?`` or ``[``): the matching
  files are **sorted lexicographically by their full path** and that is the
  band order (``g, i, r, z`` sorts as such, so name the files so that they
  sort in band order, e.g. ``img_0_g.fits``, ``img_1_r.fits``, or pass a list);
* a single file (or a list or pattern resolving to one file) holding a 3-D
  cube: bands along the first NumPy axis (the last FITS axis) and a 2-D
  celestial WCS on the last two NumPy axes.

The file names used, in band order, are stored in the column's
``meta["bands"]``.  :func:`image_bands` resolves ``images`` the same way
without cutting anything (how many bands, their files and unit), e.g. to
declare the stamp column's shape before any catalog is read.

Geometry
--------
Each stamp is centred on the source's position in the **first band's**
image: the RA/Dec is converted to a pixel position there and rounded to the
nearest pixel (``floor(x + 0.5)``); no sub-pixel shift is applied.  For a
stamp of ``size`` pixels (even or odd), that pixel lands at index
``size // 2`` along each axis, so the stamp covers pixels
``ix - size // 2 ... ix - size // 2 + size - 1``.

Other bands:

* same WCS as the first band (up to an integer shift of the reference pixel,
  e.g. tiles cropped differently): the same pixels are copied, no resampling;
* a different pixel scale, orientation, projection or sub-pixel offset: if
  ``resample`` is true the band is resampled onto the first band's stamp grid
  (stamp pixel -> world -> pixel of that band) by bilinear interpolation
  (:func:`scipy.ndimage.map_coordinates`, ``order=1``) of only the needed
  sub-array, and multiplied by the ratio of pixel areas (first band / this
  band) so that values stay *per first-band pixel* and the flux summed over a
  stamp is preserved; if ``resample`` is false a
  :class:`~astroml_pipe.core.errors.ConfigError` names the band and what
  differs.

Images are opened with ``fits.open(memmap=True)`` and only the rows and
columns a stamp needs are copied, so large images are not read whole (except
where astropy must decode the whole HDU: tile-compressed images and integer
images scaled by ``BSCALE``/``BZERO``).

Output columns
--------------
``<column>``
    ``float32``, shape ``(n, n_bands, size, size)``.  Padded and non-finite
    pixels hold ``fill_value``.
``<column>_flag``
    ``int16`` bit flags, see :data:`FLAG_EDGE`, :data:`FLAG_OFF_IMAGE`,
    :data:`FLAG_MASKED`, :data:`FLAG_OFF_BAND`.  Sources off every image are
    flagged, never dropped.
``<column>_mask``
    ``bool``, same shape as ``<column>``, true where a pixel is padded or was
    NaN/inf.  Written only when ``mask=True`` (the default); it costs a quarter
    of the cutout column's memory, so turn it off for large chunks when the
    flags are enough.
"""

from __future__ import annotations

import glob
import logging
import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area, proj_plane_pixel_scales

from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.params import did_you_mean

__all__ = [
    "FLAG_EDGE",
    "FLAG_MASKED",
    "FLAG_OFF_BAND",
    "FLAG_OFF_IMAGE",
    "ImageBands",
    "cut_stamps",
    "image_bands",
    "stamps_in_table",
]

logger = logging.getLogger(__name__)

#: The stamp touches an image edge in a band where the source is on the image (padded).
FLAG_EDGE = 1
#: The source is off every band's image (its stamp is all ``fill_value``).
FLAG_OFF_IMAGE = 2
#: The stamp contains NaN/inf pixels (masked and set to ``fill_value``).
FLAG_MASKED = 4
#: The source is off some, but not all, bands' images.
FLAG_OFF_BAND = 8

_GLOB_CHARS = ("*", "?", "[")
_FITS_SUFFIXES = (".fits", ".fit", ".fts")
_COMPRESSION_SUFFIXES = (".gz", ".fz", ".bz2")
_WCS_RTOL = 1e-9  # relative tolerance when comparing pixel-scale matrices
_PIX_ATOL = 1e-6  # pixel tolerance when comparing reference pixels / offsets


@dataclass
class _Band:
    """One band: where its pixels are and how they map onto the sky."""

    path: Path
    hdu: int | str
    plane: int | None  # index along a cube's first axis, None for a 2-D image
    wcs: WCS
    shape: tuple[int, int]  # (ny, nx)
    label: str
    offset: tuple[int, int] | None = None  # integer (dx, dy) from the first band; None = resample
    area_ratio: float = 1.0  # first band's pixel area / this band's


@dataclass(frozen=True)
class ImageBands:
    """The bands a set of images gives, in band order (see :func:`image_bands`).

    Attributes
    ----------
    paths : tuple of pathlib.Path
        The files, in band order (a single file for a cube); passing them to
        :func:`cut_stamps` uses exactly these files, without globbing again.
    labels : tuple of str
        One per band, as :func:`cut_stamps` writes them to ``meta["bands"]``:
        the file name, or ``name[k]`` for plane ``k`` of a cube.
    stems : tuple of str
        One per band: the file name without its FITS (and compression)
        extension, ``stem[k]`` for plane ``k`` of a cube.
    unit : str or None
        Unit of the first band's ``BUNIT`` keyword, if astropy understands it.
    """

    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    stems: tuple[str, ...]
    unit: str | None

    @property
    def n_bands(self) -> int:
        """Number of bands (planes of a stamp)."""
        return len(self.labels)


def image_bands(
    images: Sequence[str | Path] | str | Path,
    hdu: int | str | None = None,
    *,
    resample: bool = True,
) -> ImageBands:
    """Resolve ``images`` as :func:`cut_stamps` does and describe their bands.

    Only headers are read (images are memory-mapped); nothing is cut.

    Parameters
    ----------
    images : sequence of str or Path, or str or Path
        Per-band files, a glob pattern or one cube file (see the module docs).
    hdu : int or str, optional
        HDU holding the image in every file; by default the first with 2-D data.
    resample : bool
        If false, also check now that every band shares the first band's
        pixel grid (up to an integer shift), as :func:`cut_stamps` would.

    Returns
    -------
    ImageBands

    Raises
    ------
    InputError
        A file is missing, a pattern matches nothing, or a file has no image,
        no celestial WCS or the wrong dimensionality.
    ConfigError
        ``resample`` is false and a band would need resampling.
    """
    paths = _resolve_images(images)
    with ExitStack() as stack:
        bands, _ = _open_bands(paths, hdu, stack)
    if not resample:
        first = bands[0]
        for band in bands[1:]:
            _relate(first, band, resample=False)
    stems = tuple(
        _stem(band.path.name) + ("" if band.plane is None else f"[{band.plane}]") for band in bands
    )
    return ImageBands(
        paths=tuple(paths),
        labels=tuple(band.label for band in bands),
        stems=stems,
        unit=_unit(bands[0]),
    )


def _stem(name: str) -> str:
    """File name without its FITS extension (``img_g.fits.gz`` -> ``img_g``)."""
    lowered = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if lowered.endswith(suffix):
            name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
            break
    for suffix in _FITS_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def stamps_in_table(table: Table, column: str = "cutout") -> bool:
    """Tell whether ``table`` already carries stamps in ``column``.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog.
    column : str
        Name of the stamp column.

    Returns
    -------
    bool
        True when ``column`` exists and is a floating-point column of shape
        ``(n, bands, H, W)``.
    """
    if column not in table.colnames:
        return False
    col = table[column]
    return getattr(col, "ndim", 0) == 4 and np.asarray(col).dtype.kind == "f"


def cut_stamps(
    table: Table,
    images: Sequence[str | Path] | str | Path,
    *,
    ra: str = "ra",
    dec: str = "dec",
    size: int = 44,
    hdu: int | str | None = None,
    resample: bool = True,
    fill_value: float = 0.0,
    column: str = "cutout",
    mask: bool = True,
) -> Table:
    """Cut ``bands x size x size`` stamps at each source's RA/Dec.

    Parameters
    ----------
    table : astropy.table.Table
        Catalog with one row per source; it is not modified.
    images : sequence of str or Path, or str or Path
        Per-band FITS files in band order, a glob pattern (sorted
        lexicographically: that is the band order), or one 3-D cube file.
    ra, dec : str
        Names of the RA and Dec columns, in degrees (ICRS/the images' frame).
    size : int
        Stamp width and height in pixels of the first band; any positive
        integer (even or odd), the source's pixel lands at index ``size // 2``.
    hdu : int or str, optional
        HDU index or name holding the image in every file; by default the
        first HDU with at least 2-D data.
    resample : bool
        Resample bands whose WCS differs from the first band's onto its grid;
        if false such a band is a :class:`ConfigError`.
    fill_value : float
        Value of padded (off-image) and non-finite pixels.
    column : str
        Name of the stamp column; ``<column>_flag`` and ``<column>_mask`` are
        written beside it.
    mask : bool
        Write the ``<column>_mask`` column.

    Returns
    -------
    astropy.table.Table
        A copy of ``table`` with the new columns.  If ``table`` already
        carries stamps in ``column`` (see :func:`stamps_in_table`) it is
        returned as a copy unchanged and no image is opened.

    Raises
    ------
    ConfigError
        ``size`` is not a positive integer, or a band needs resampling while
        ``resample`` is false.
    InputError
        A file, HDU or column is missing or unusable.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"parameter 'size' must be a positive integer, got {size!r}")
    size = int(size)
    if column in table.colnames:
        if stamps_in_table(table, column):
            logger.info("table already carries stamps in column %r; using them as they are", column)
            return table.copy()
        raise InputError(
            f"column {column!r} already exists and is not a float (n, bands, H, W) stamp column"
        )
    ra_deg = _coordinate(table, ra)
    dec_deg = _coordinate(table, dec)
    paths = _resolve_images(images)

    n = len(table)
    with ExitStack() as stack:
        bands, arrays = _open_bands(paths, hdu, stack)
        first = bands[0]
        first.offset = (0, 0)
        for band in bands[1:]:
            _relate(first, band, resample)
        cut = np.full((n, len(bands), size, size), fill_value, dtype=np.float32)
        padded = np.ones(cut.shape, dtype=bool)
        on = np.zeros((n, len(bands)), dtype=bool)

        px, py = _to_pixel(first.wcs, ra_deg, dec_deg)
        valid = np.isfinite(px) & np.isfinite(py)
        ix = np.zeros(n, dtype=np.int64)
        iy = np.zeros(n, dtype=np.int64)
        ix[valid] = np.floor(px[valid] + 0.5)
        iy[valid] = np.floor(py[valid] + 0.5)
        half = size // 2

        for b, (band, data) in enumerate(zip(bands, arrays)):
            ny, nx = band.shape
            if band.offset is not None:
                dx, dy = band.offset
                bx, by = ix + dx, iy + dy
                on[:, b] = valid & (bx >= 0) & (bx < nx) & (by >= 0) & (by < ny)
                for i in np.flatnonzero(valid):
                    _copy(data, int(bx[i]) - half, int(by[i]) - half, cut[i, b], padded[i, b])
            else:
                cx, cy = _to_pixel(band.wcs, ra_deg, dec_deg)
                with np.errstate(invalid="ignore"):
                    on[:, b] = (
                        valid & (cx >= -0.5) & (cx < nx - 0.5) & (cy >= -0.5) & (cy < ny - 0.5)
                    )
                grid = np.arange(size) - half
                for i in np.flatnonzero(valid):
                    gx, gy = np.meshgrid(ix[i] + grid, iy[i] + grid)
                    _resample(data, first.wcs, band, gx, gy, cut[i, b], padded[i, b])

    bad = ~np.isfinite(cut)
    cut[bad] = fill_value
    flags = np.zeros(n, dtype=np.int16)
    edge = (padded.any(axis=(2, 3)) & on).any(axis=1)
    flags[edge] |= FLAG_EDGE
    off_all = ~on.any(axis=1)
    flags[off_all] |= FLAG_OFF_IMAGE
    flags[bad.any(axis=(1, 2, 3))] |= FLAG_MASKED
    flags[~off_all & ~on.all(axis=1)] |= FLAG_OFF_BAND
    if off_all.any():
        logger.info("%d of %d sources are off every image", int(off_all.sum()), n)

    out = table.copy()
    labels = [band.label for band in bands]
    out[column] = Column(
        cut,
        unit=_unit(bands[0]),
        description=f"{size}x{size} image stamps in bands {', '.join(labels)}",
        meta={"bands": labels, "size": size, "centre": "nearest pixel of the first band"},
    )
    out[f"{column}_flag"] = Column(
        flags,
        description="stamp flags: 1 edge/padded, 2 off every image, 4 NaN masked, 8 off some band",
    )
    if mask:
        out[f"{column}_mask"] = Column(
            padded | bad, description=f"true where a pixel of {column} is padded or NaN"
        )
    return out


# --------------------------------------------------------------------------- inputs


def _coordinate(table: Table, name: str) -> np.ndarray:
    """Return column ``name`` as float64 degrees, masked values as NaN."""
    if name not in table.colnames:
        raise InputError(
            f"coordinate column {name!r} not found{did_you_mean(name, table.colnames)}"
        )
    col = table[name]
    if np.asarray(col).dtype.kind not in "iuf" or getattr(col, "ndim", 1) != 1:
        raise InputError(f"coordinate column {name!r} must be a 1-D numeric column")
    if isinstance(col, MaskedColumn):
        return col.filled(np.nan).astype(np.float64)
    unit = getattr(col, "unit", None)
    if unit is not None and str(unit) not in ("deg", ""):
        return col.quantity.to_value("deg").astype(np.float64)
    return np.asarray(col, dtype=np.float64)


def _resolve_images(images: Sequence[str | Path] | str | Path) -> list[Path]:
    """Turn a list, glob pattern or single path into existing files, in band order."""
    if isinstance(images, (str, Path)):
        text = str(images)
        if isinstance(images, str) and any(c in text for c in _GLOB_CHARS):
            found = sorted(glob.glob(text))
            if not found:
                raise InputError(f"no image file matches the pattern {text!r}")
            paths = [Path(p) for p in found]
        else:
            paths = [Path(images)]
    else:
        paths = [Path(p) for p in images]
    if not paths:
        raise InputError("no image files given")
    for path in paths:
        if not path.is_file():
            raise InputError(f"image file {str(path)!r} not found")
    return paths


def _image_hdu(hdul: fits.HDUList, hdu: int | str | None, path: Path) -> int | str:
    """Find the HDU holding the image."""
    if hdu is not None:
        try:
            found = hdul[hdu]
        except (KeyError, IndexError):
            raise InputError(f"image file {str(path)!r} has no HDU {hdu!r}") from None
        if not getattr(found, "is_image", False) or found.header.get("NAXIS", 0) < 2:
            raise InputError(f"HDU {hdu!r} of image file {str(path)!r} holds no image")
        return hdu
    for index, h in enumerate(hdul):
        if getattr(h, "is_image", False) and h.header.get("NAXIS", 0) >= 2:
            return index
    raise InputError(f"image file {str(path)!r} has no HDU with an image")


def _open_bands(
    paths: list[Path], hdu: int | str | None, stack: ExitStack
) -> tuple[list[_Band], list[Any]]:
    """Open every file (memory-mapped) and describe each band."""
    bands: list[_Band] = []
    arrays: list[Any] = []
    for path in paths:
        try:
            hdul = stack.enter_context(fits.open(path, memmap=True))
        except OSError as exc:
            raise InputError(
                f"image file {str(path)!r} is not a readable FITS file: {exc}"
            ) from None
        index = _image_hdu(hdul, hdu, path)
        header = hdul[index].header
        try:
            full = WCS(header)
        except Exception as exc:  # astropy raises several kinds for bad headers
            raise InputError(f"image file {str(path)!r} has an unreadable WCS: {exc}") from None
        if not full.has_celestial:
            raise InputError(f"image file {str(path)!r} has no celestial WCS (RA/Dec axes)")
        wcs = full.celestial
        data = hdul[index].data
        shape = tuple(int(s) for s in data.shape)
        # drop degenerate leading axes (e.g. a 1 x H x W image)
        while len(shape) > 2 and shape[0] == 1 and (len(paths) > 1 or len(shape) > 3):
            data, shape = data[0], shape[1:]
        if {full.wcs.lng, full.wcs.lat} != {0, 1}:
            raise InputError(
                f"image file {str(path)!r}: the celestial axes must be the first two FITS axes"
            )
        if len(shape) == 2:
            bands.append(_Band(path, index, None, wcs, (shape[0], shape[1]), path.name))
            arrays.append(data)
        elif len(shape) == 3 and len(paths) == 1:
            for plane in range(shape[0]):
                bands.append(
                    _Band(path, index, plane, wcs, (shape[1], shape[2]), f"{path.name}[{plane}]")
                )
                arrays.append(data[plane])
        elif len(shape) == 3:
            raise InputError(
                f"image file {str(path)!r} is a 3-D cube; give one cube or one 2-D image per band"
            )
        else:
            raise InputError(
                f"image file {str(path)!r} has {len(shape)}-D data; expected a 2-D image "
                "or a 3-D cube (bands, y, x)"
            )
    return bands, arrays


def _unit(band: _Band) -> str | None:
    """Unit of the first band from its ``BUNIT`` keyword, if any (read again cheaply)."""
    try:
        with fits.open(band.path, memmap=True) as hdul:
            bunit = hdul[band.hdu].header.get("BUNIT")
    except OSError:
        return None
    if not bunit:
        return None
    try:
        return str(u.Unit(bunit, parse_strict="silent"))
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------- geometry


def _to_pixel(wcs: WCS, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (deg) to 0-based pixel coordinates; invalid positions become NaN."""
    world = (lon, lat) if wcs.wcs.lng == 0 else (lat, lon)
    with np.errstate(invalid="ignore"):
        x, y = wcs.world_to_pixel_values(*world)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _to_world(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel to world (lon, lat) in degrees."""
    a, b = wcs.pixel_to_world_values(x, y)
    return (a, b) if wcs.wcs.lng == 0 else (b, a)


def _rotation(wcs: WCS) -> float:
    """Position angle of the pixel grid's y axis, in degrees."""
    m = wcs.pixel_scale_matrix
    return math.degrees(math.atan2(-m[0, 1], m[1, 1]))


def _relate(first: _Band, band: _Band, resample: bool) -> None:
    """Decide how ``band`` maps onto the first band: integer shift or resampling."""
    w0, w1 = first.wcs.wcs, band.wcs.wcs
    same_proj = list(w0.ctype) == list(w1.ctype) and np.allclose(
        w0.crval, w1.crval, rtol=0, atol=1e-12
    )
    m0, m1 = first.wcs.pixel_scale_matrix, band.wcs.pixel_scale_matrix
    same_matrix = np.allclose(m0, m1, rtol=_WCS_RTOL, atol=0)
    shift = np.asarray(w1.crpix, dtype=float) - np.asarray(w0.crpix, dtype=float)
    integer_shift = np.allclose(shift, np.round(shift), rtol=0, atol=_PIX_ATOL)
    no_distortion = not (first.wcs.has_distortion or band.wcs.has_distortion)
    if same_proj and same_matrix and integer_shift and no_distortion:
        band.offset = (int(round(shift[0])), int(round(shift[1])))
        return
    if not resample:
        raise ConfigError(
            f"band {str(band.path)!r} needs resampling onto {str(first.path)!r} "
            f"({_difference(first.wcs, band.wcs)}) but resample is off"
        )
    band.offset = None
    band.area_ratio = float(proj_plane_pixel_area(first.wcs) / proj_plane_pixel_area(band.wcs))
    logger.info("resampling band %s onto the grid of %s", band.label, first.label)


def _difference(w0: WCS, w1: WCS) -> str:
    """Say in a few words how two celestial WCSs differ."""
    parts = []
    s0 = proj_plane_pixel_scales(w0) * 3600.0
    s1 = proj_plane_pixel_scales(w1) * 3600.0
    if not np.allclose(s0, s1, rtol=_WCS_RTOL):
        parts.append(f"pixel scale {s1.mean():.4g} vs {s0.mean():.4g} arcsec")
    r0, r1 = _rotation(w0), _rotation(w1)
    if abs(r0 - r1) > 1e-6:
        parts.append(f"rotation {r1:.4g} vs {r0:.4g} deg")
    if list(w0.wcs.ctype) != list(w1.wcs.ctype):
        parts.append(f"projection {'/'.join(w1.wcs.ctype)} vs {'/'.join(w0.wcs.ctype)}")
    if w0.has_distortion or w1.has_distortion:
        parts.append("distortion terms")
    if not parts:
        parts.append("reference point not an integer pixel shift")
    return ", ".join(parts)


# --------------------------------------------------------------------------- pixels


def _copy(data: Any, x0: int, y0: int, out: np.ndarray, padded: np.ndarray) -> None:
    """Copy the ``out``-sized box starting at (x0, y0) from ``data``, where it overlaps."""
    ny, nx = data.shape
    size_y, size_x = out.shape
    xa, xb = max(x0, 0), min(x0 + size_x, nx)
    ya, yb = max(y0, 0), min(y0 + size_y, ny)
    if xa >= xb or ya >= yb:
        return
    out[ya - y0 : yb - y0, xa - x0 : xb - x0] = data[ya:yb, xa:xb]
    padded[ya - y0 : yb - y0, xa - x0 : xb - x0] = False


def _resample(
    data: Any,
    first: WCS,
    band: _Band,
    gx: np.ndarray,
    gy: np.ndarray,
    out: np.ndarray,
    padded: np.ndarray,
) -> None:
    """Interpolate ``band`` at the first band's pixels (gx, gy) into ``out``."""
    from scipy.ndimage import map_coordinates

    ny, nx = band.shape
    lon, lat = _to_world(first, gx.astype(np.float64), gy.astype(np.float64))
    bx, by = _to_pixel(band.wcs, np.asarray(lon), np.asarray(lat))
    with np.errstate(invalid="ignore"):
        inside = (
            np.isfinite(bx) & np.isfinite(by)
            & (bx >= -0.5) & (bx <= nx - 0.5) & (by >= -0.5) & (by <= ny - 0.5)
        )
    if not inside.any():
        return
    xa = max(int(np.floor(bx[inside].min())) - 1, 0)
    xb = min(int(np.ceil(bx[inside].max())) + 2, nx)
    ya = max(int(np.floor(by[inside].min())) - 1, 0)
    yb = min(int(np.ceil(by[inside].max())) + 2, ny)
    sub = np.asarray(data[ya:yb, xa:xb], dtype=np.float64)
    values = map_coordinates(
        sub, [by[inside] - ya, bx[inside] - xa], order=1, mode="nearest"
    )
    out[inside] = values * band.area_ratio
    padded[inside] = False
