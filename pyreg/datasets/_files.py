"""What the data set loaders share: where caches live, digest checks, and ``.npz`` files.

Each loader keeps its own published digests and its own error class (a ``ValueError``); these
helpers take both as arguments so that every message names the data set and the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .._io import write_atomic

__all__ = ["data_dir", "keras_datasets_dir", "read_npz", "split", "verify", "write_npz_atomic"]

NAMES = (
    "x_train",
    "y_train",
    "x_test",
    "y_test",
)  # keras' order: ((x_train, y_train), (x_test, y_test))


def data_dir() -> Path:
    """pyreg's data cache: ``$PYREG_DATA_DIR``, else ``$XDG_CACHE_HOME/pyreg`` or ``~/.cache/pyreg``."""
    env = os.environ.get("PYREG_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyreg"


def keras_datasets_dir() -> Path:
    """Where Keras keeps downloaded data sets: ``$KERAS_HOME/datasets`` (default ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def check_array(a: np.ndarray, name: str, digest: str, shape: tuple, source: str, error: type,
                label: str) -> None:  # fmt: skip
    """Raises `error` naming `source` unless `a` is uint8 of `shape` whose raw bytes hash to `digest`."""
    if a.dtype != np.uint8 or a.shape != shape:
        raise error(f"{source}: array '{name}' must be uint8 {shape}; got {a.dtype} {a.shape}")
    got = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    if got != digest:
        raise error(
            f"{source}: array '{name}' does not match the published {label} digest "
            f"(sha256 {got[:16]}..., expected {digest[:16]}...)"
        )


def verify(arrays: dict, digests: dict, shapes: dict, source: str, error: type, label: str) -> None:
    """Raises `error` naming `source` unless every array is present and matches its digest."""
    for name, digest in digests.items():
        if name not in arrays:
            raise error(f"{source}: array '{name}' is missing")
        check_array(arrays[name], name, digest, shapes[name], source, error, label)


def read_npz(path: Path, digests: dict, shapes: dict, error: type, label: str) -> dict:
    """Reads and verifies an ``.npz``; any failure becomes `error` naming the file."""
    if path.is_dir():
        raise error(f"{path}: is a directory; expected an .npz file holding {', '.join(NAMES)}")
    try:
        with (
            open(path, "rb") as fh,
            np.load(fh, allow_pickle=False) as f,
        ):  # our handle: closed on any error
            arrays = {name: f[name] for name in digests if name in f.files}
    except Exception as e:  # truncated zip, bad header, short read, permission denied, ...
        raise error(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    verify(arrays, digests, shapes, str(path), error, label)
    return arrays


def write_npz_atomic(path: Path, arrays: dict) -> None:
    """Writes an ``.npz`` so that concurrent loaders never see a partial file."""
    write_atomic(path, lambda f: np.savez(f, **arrays))


def split(arrays: dict):
    """``((x_train, y_train), (x_test, y_test))``, as ``keras.datasets`` returns them."""
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
