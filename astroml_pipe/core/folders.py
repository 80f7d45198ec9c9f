"""Folders written atomically: built beside their destination, moved into place at the end.

Model folders (:meth:`~astroml_pipe.core.pipeline.Pipeline.save`) and
evaluation reports (:func:`~astroml_pipe.evaluate.report.write_report`) are
written into a temporary folder ``.<name>.<random>.tmp`` next to the
destination and moved into place only when everything was written, so a
failure never leaves a half-written folder behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from astroml_pipe.core.errors import InputError

__all__ = ["staged_folder"]


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike, *, what: str, merge: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``folder``, moved into its place when the block ends without error.

    Parameters
    ----------
    folder : path
        Destination.
    what : str
        What the folder is, for error messages (``"model folder"``).
    merge : bool
        If ``folder`` exists: move the new files into it, keeping the others
        (True), or replace it whole (False).

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.  It is deleted if the block
        raises.

    Raises
    ------
    InputError
        If the folder cannot be created, written or moved into place (the
        message names ``what`` and the folder).
    """
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise InputError(f"cannot write {what} '{folder}': it is a file")
        parent = folder.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; these folders are for sharing
    except OSError as exc:
        raise InputError(f"cannot write {what} '{folder}': {exc.strerror or exc}") from None
    try:
        yield tmp
        if folder.is_dir() and merge:
            for path in sorted(tmp.iterdir()):
                os.replace(path, folder / path.name)
            tmp.rmdir()
        else:
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write {what} '{folder}': {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
