"""Atomic file writes: nothing a user saved is lost, and no reader sees a partial file.

The content goes to a temporary file in the destination's folder, is flushed to disk, and then
renamed over the destination (an atomic replace on POSIX and Windows); on any failure the
temporary file is removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path, write, *, binary: bool = True) -> None:
    """Calls ``write(file)`` on a temporary file beside `path`, then renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _existing_mode(path) or _NEW_FILE_MODE)
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; once, at import
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()


def _existing_mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None
