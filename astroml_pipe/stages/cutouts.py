"""Pipeline stage ``images.cutouts``: stamps cut from FITS images at catalog positions.

The stage wraps :func:`astroml_pipe.io.cutouts.cut_stamps` so that a pipeline
file can list images: each chunk of the catalog gets a multi-band stamp
column, ready for :class:`~astroml_pipe.features.morphology.Morphology` or
:class:`~astroml_pipe.stages.classify.star_galaxy_cnn.StarGalaxyCNN`.
Geometry, resampling and flags are those of
:func:`~astroml_pipe.io.cutouts.cut_stamps` (see :mod:`astroml_pipe.io.cutouts`).

Usage
-----
In a pipeline file::

    name: morphology-from-images
    version: 1
    columns:
      bands: [g, r, i]
    stages:
      - name: stamps
        uses: images.cutouts
        with:
          images: [tiles/field_g.fits, tiles/field_r.fits, tiles/field_i.fits]
          bands: [g, r, i]          # names of the planes, in image order
          size: 44
      - name: morphology
        uses: features.morphology

or from Python::

    from astroml_pipe.stages.cutouts import Cutouts

    stage = Cutouts(images="tiles/field_*.fits", bands=["g", "i", "r"], size=32)
    table = stage.run(catalog)        # adds cutout, cutout_flag

Images
------
``images`` is a list of files, one per band in band order; or a single
string: a glob pattern (the matches are sorted by full path, which is the
band order) or one 3-D cube (bands along its first NumPy axis).  A glob
pattern inside a list is not expanded (give it alone, as a string).
Relative paths are relative to the **current directory** of the process that
runs the pipeline, not to the pipeline file's folder (a pipeline does not
tell its stages where its file is); use absolute paths in pipeline files
that are run from elsewhere.

The images are resolved once, when the stage is first asked for its columns
(e.g. by :meth:`~astroml_pipe.core.pipeline.Pipeline.validate` before a run),
and the same files are used for every chunk, so that a pattern cannot match
different files half-way.  Only headers are read then; a missing file, a
pattern with no match, an HDU without an image, an image without celestial
WCS, or (with ``resample: false``) bands on different pixel grids stop the
run with a one-line error naming the file.  Image files are only read.

Columns
-------
``<column>`` (default ``cutout``)
    ``float32``, shape ``(n_bands, size, size)`` per row, unit from the first
    image's ``BUNIT``.
``<column>_flag``
    ``int16`` bit flags: 1 edge/padded, 2 off every image, 4 NaN masked,
    8 off some band (:data:`~astroml_pipe.io.cutouts.FLAG_EDGE` ...).
``<column>_mask``
    ``bool``, same shape as ``<column>``: only with ``mask: true`` (it is a
    quarter of the stamp column's size).

Bands
-----
The stamp column's ``meta["bands"]`` names its planes: the ``bands``
parameter if given (it must name as many bands as the images give), else the
file stems (``field_g`` for ``field_g.fits``; ``cube[0]``, ``cube[1]`` ...
for the planes of ``cube.fits``).  ``meta["images"]`` lists the file (or
plane) of each band.  :class:`~astroml_pipe.features.morphology.Morphology`
picks its bands from the stamps by these names, so give ``bands`` that match
the pipeline's ``columns: bands`` (or the morphology stage's ``bands``).

:class:`~astroml_pipe.stages.classify.star_galaxy_cnn.StarGalaxyCNN` compares
them with the bands it was trained on (and always checks the number of
bands and the stamp size; ``size`` 44 matches its default ``crop``).  This
metadata lives on the column while the pipeline runs a chunk; catalog files
store a column's unit and description but not its ``meta``, so stamps read
back from a file are checked by number and size only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage
from astroml_pipe.io.cutouts import _GLOB_CHARS, ImageBands, cut_stamps
from astroml_pipe.io.cutouts import image_bands as resolve_image_bands

__all__ = ["Cutouts"]

log = logging.getLogger(__name__)

_CENTRE = "nearest pixel of the first band"
_FLAG_DOC = "stamp flags: 1 edge/padded, 2 off every image, 4 NaN masked, 8 off some band"


class _UnionMeta(type):
    """Metaclass of parameter types that accept several kinds of value."""

    def __instancecheck__(cls, value: Any) -> bool:
        return bool(cls._accepts(value))  # type: ignore[attr-defined]


def _union_type(name: str, accepts: Callable[[Any], bool]) -> type:
    """A type for :class:`Param` whose ``isinstance`` is ``accepts`` and whose name is ``name``.

    :class:`Param` checks types it does not convert itself with ``isinstance``
    and names them by ``__name__`` in messages and generated docs.
    """
    return _UnionMeta(name, (), {"_accepts": staticmethod(accepts)})


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


_PATHS = _union_type(
    "str | list[str]",
    lambda v: _is_path(v) or (isinstance(v, (list, tuple)) and all(_is_path(p) for p in v)),
)
_HDU = _union_type(
    "int | str", lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
)


class Cutouts(Stage):
    """Cut multi-band stamps from FITS images at each source's RA/Dec (see the module docs)."""

    name = "images.cutouts"
    params = (
        Param("images", _PATHS, None,
              "FITS images: a list of files in band order, or one glob pattern or cube file (required).",
              nullable=True),
        Param("ra", str, "ra", "Column of right ascensions, in degrees."),
        Param("dec", str, "dec", "Column of declinations, in degrees."),
        Param("size", int, 44, "Stamp width and height in pixels of the first band.", minimum=1),
        Param("hdu", _HDU, None, "HDU index or name of the image in every file (null: the first 2-D image).",
              nullable=True),
        Param("resample", bool, True,
              "Resample bands whose WCS differs from the first band's onto its grid (false: refuse them)."),
        Param("fill_value", float, 0.0, "Value of padded (off-image) and non-finite pixels."),
        Param("column", str, "cutout", "Name of the stamp column; <column>_flag (and _mask) go beside it."),
        Param("mask", bool, False, "Also write <column>_mask, true where a pixel is padded or NaN."),
        Param("bands", list, None, "Names of the bands, in image order (null: the file stems).",
              nullable=True, item_type=str),
    )

    _images_cache: tuple[Any, ImageBands] | None = None

    def validate(self) -> None:
        images = self.images
        expected = "a list of FITS files (one per band, in band order), a glob pattern or a cube file"
        if images is None:
            raise ConfigError(f"{self.where}: parameter 'images' is required: {expected}")
        if isinstance(images, (str, os.PathLike)):
            self.images = os.fspath(images)
        else:
            self.images = [os.fspath(p) for p in images]
        if not self.images or (isinstance(self.images, list) and not all(self.images)):
            raise ConfigError(f"{self.where}: parameter 'images' must not be empty: {expected}")
        if isinstance(self.hdu, int) and self.hdu < 0:
            raise ConfigError(f"{self.where}: parameter 'hdu' must be >= 0 or an HDU name, got {self.hdu!r}")
        for key in ("ra", "dec", "column"):
            if not getattr(self, key):
                raise ConfigError(f"{self.where}: parameter {key!r} must not be empty")
        if self.bands is not None and (not self.bands or len(set(self.bands)) != len(self.bands)):
            raise ConfigError(f"{self.where}: bands must be a non-empty list of distinct names, got {self.bands!r}")

    # -- images ------------------------------------------------------------------
    def image_bands(self) -> ImageBands:
        """The resolved images and their bands (read once, then cached).

        Raises
        ------
        InputError
            A file is missing, a pattern matches nothing, or a file holds no
            usable image (the message names the stage and the file).
        ConfigError
            ``bands`` does not name one band per image plane, or ``resample``
            is false and the bands are on different pixel grids.
        """
        images = self.images
        key = (images if isinstance(images, str) else tuple(images), self.hdu, self.resample)
        if self._images_cache is not None and self._images_cache[0] == key:
            return self._images_cache[1]
        if not isinstance(images, str):
            for item in images:
                if any(c in item for c in _GLOB_CHARS) and not os.path.exists(item):
                    raise InputError(
                        f"{self.where}: image file {item!r} not found (a glob pattern must be given "
                        "alone, as a string, not inside a list)"
                    )
        try:
            info = resolve_image_bands(images, self.hdu, resample=self.resample)
        except (InputError, ConfigError) as exc:
            raise type(exc)(f"{self.where}: {exc}") from None
        # Absolute paths: later chunks use the same files even if the working directory changes.
        info = dataclasses.replace(info, paths=tuple(p.absolute() for p in info.paths))
        if self.bands is not None and len(self.bands) != info.n_bands:
            raise ConfigError(
                f"{self.where}: parameter 'bands' names {len(self.bands)} band(s) {list(self.bands)} but the "
                f"images give {info.n_bands} ({', '.join(info.labels)})"
            )
        log.info("%s: %d band(s) from %s", self.where, info.n_bands, ", ".join(info.labels))
        self._images_cache = (key, info)
        return info

    @property
    def band_names(self) -> list[str]:
        """Names of the stamp planes: ``bands``, or the file stems (opens the images once)."""
        return list(self.bands) if self.bands is not None else list(self.image_bands().stems)

    # -- columns -------------------------------------------------------------------
    def requires(self) -> list[str]:
        return [self.ra, self.dec]

    def provides(self) -> list[Col]:
        info = self.image_bands()
        names = self.band_names
        shape = (info.n_bands, self.size, self.size)
        meta = {"bands": names, "images": list(info.labels), "size": self.size, "centre": _CENTRE}
        cols = [
            Col(self.column, info.unit, "float32",
                f"{self.size}x{self.size} image stamps in bands {', '.join(names)}", shape=shape, meta=meta),
            Col(f"{self.column}_flag", "", "int16", _FLAG_DOC),
        ]
        if self.mask:
            cols.append(Col(f"{self.column}_mask", "", "bool",
                            f"true where a pixel of {self.column} is padded or NaN", shape=shape))
        return cols

    def compute(self, table: Table) -> Mapping[str, np.ndarray]:
        cols = self.provides()
        taken = [c.name for c in cols if c.name in table.colnames]
        if taken:
            raise InputError(
                f"{self.where}: the table already has column(s) {', '.join(repr(t) for t in taken)}; "
                "if it already carries stamps leave this stage out, else choose another 'column'"
            )
        info = self.image_bands()
        coords = table[list(dict.fromkeys([self.ra, self.dec]))]
        try:
            out = cut_stamps(
                coords, list(info.paths), ra=self.ra, dec=self.dec, size=self.size, hdu=self.hdu,
                resample=self.resample, fill_value=self.fill_value, column=self.column, mask=self.mask,
            )
        except (InputError, ConfigError) as exc:
            raise type(exc)(f"{self.where}: {exc}") from None
        log.debug("%s cut %d stamps", self.where, len(table))
        return {c.name: np.asarray(out[c.name]) for c in cols}
