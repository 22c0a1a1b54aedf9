"""Fashion-MNIST (Zalando's article images), verified against published digests, cached, repaired.

``load_data()`` returns exactly what ``keras.datasets.fashion_mnist.load_data()`` returns::

    (x_train, y_train), (x_test, y_test) = pyreg.datasets.fashion_mnist.load_data()
    # uint8 (60000, 28, 28), uint8 (60000,), uint8 (10000, 28, 28), uint8 (10000,)

The data set is four gzipped IDX files (``train-images-idx3-ubyte.gz`` and so on). Where each comes
from, in order:

1. ``path=`` when given: that file (a Keras-style ``.npz`` with ``x_train``, ``y_train``, ``x_test``,
   ``y_test``). If it does not exist it is created from the sources below; if it exists and does not
   match the published digests, :class:`FashionMnistIntegrityError` is raised and nothing is returned.
2. pyreg's cache, ``$PYREG_DATA_DIR/fashion-mnist/`` (default ``$XDG_CACHE_HOME/pyreg`` or
   ``~/.cache/pyreg``). A truncated, corrupt or tampered file is reported with a warning and rebuilt.
3. A Keras cache, ``$KERAS_HOME/datasets/fashion-mnist/`` (default ``~/.keras``); an invalid file is
   skipped with a warning and left alone.
4. A system copy: Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``),
   for machines without internet access; an invalid file is skipped with a warning.
5. The download Keras uses (``base_url=``, else ``$PYREG_FASHION_MNIST_URL``, else Keras' URL): each
   file goes to an anonymous temporary file, is checked, and only then is written to pyreg's cache
   (temporary file, then rename, so concurrent loaders never see a partial file).

Every array is checked against the SHA-256 of its raw bytes (and its IDX header against the shape)
before it is returned, so a file that was recompressed differently is accepted and one whose content
differs by a bit is not. The arrays are fresh and writable on every call.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from .._io import write_atomic
from ._files import check_array, data_dir, keras_datasets_dir, read_npz, write_npz_atomic
from ._files import split as _split

__all__ = ["FILES", "SHA256", "FashionMnistIntegrityError", "cache_dir", "load_data"]

# SHA-256 of each array's raw bytes (arr.tobytes(), C order), as keras.datasets.fashion_mnist returns
# them: the IDX payloads of Zalando's published files (the uncompressed files hash, with their headers,
# to c59f468a..., bad3541b..., 5b4141f0... and 0402a96d..., as listed by independent sources).
SHA256 = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
URL_ENV = "PYREG_FASHION_MNIST_URL"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DOWNLOAD_TIMEOUT_S = 60  # per blocking network operation
MAX_DOWNLOAD_BYTES = 64 << 20  # the largest file is 26 MB compressed
_CHUNK = 1 << 20


class FashionMnistIntegrityError(ValueError):
    """A Fashion-MNIST file is missing arrays, unreadable, or does not match the published digests."""


def cache_dir() -> Path:
    """Where pyreg caches the four ``.gz`` files: ``$PYREG_DATA_DIR/fashion-mnist``, else the user
    cache directory's ``pyreg/fashion-mnist``."""
    return data_dir() / "fashion-mnist"


def _keras_dir() -> Path:
    return keras_datasets_dir() / "fashion-mnist"


def _parse_idx(fileobj, name: str, source: str) -> np.ndarray:
    """The array in a gzipped IDX file (ubyte data), checked against its header and digest."""
    shape = SHAPES[name]
    header_len = 4 + 4 * len(shape)
    expected = header_len + int(np.prod(shape))
    try:
        with gzip.GzipFile(fileobj=fileobj, mode="rb") as g:
            raw = g.read(expected + 1)  # never more: a wrong file cannot make us inflate gigabytes
    except Exception as e:  # not gzip, truncated stream, CRC mismatch, read error, ...
        raise FashionMnistIntegrityError(
            f"{source}: not a readable gzip file ({type(e).__name__}: {e})"
        ) from e
    if len(raw) < header_len:
        raise FashionMnistIntegrityError(
            f"{source}: too short for an IDX header ({len(raw)} bytes)"
        )
    magic, *dims = struct.unpack(f">{1 + len(shape)}I", raw[:header_len])
    if magic != 0x0800 + len(shape) or tuple(dims) != shape:
        raise FashionMnistIntegrityError(
            f"{source}: IDX header says type 0x{magic:08x} dims {tuple(dims)}; expected unsigned "
            f"bytes 0x{0x0800 + len(shape):08x} dims {shape} for '{name}'"
        )
    if len(raw) != expected:
        raise FashionMnistIntegrityError(
            f"{source}: holds {len(raw) - header_len}{'+' if len(raw) > expected else ''} data "
            f"bytes; expected {expected - header_len}"
        )
    a = np.frombuffer(bytearray(raw), np.uint8, offset=header_len).reshape(shape)  # writable
    check_array(a, name, SHA256[name], shape, source, FashionMnistIntegrityError, "Fashion-MNIST")
    return a


def _read_file(path: Path, name: str) -> np.ndarray:
    try:
        if path.stat().st_size > MAX_DOWNLOAD_BYTES:
            raise FashionMnistIntegrityError(f"{path}: larger than {MAX_DOWNLOAD_BYTES} bytes")
        data = path.read_bytes()
    except OSError as e:
        raise FashionMnistIntegrityError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e
    return _parse_idx(io.BytesIO(data), name, str(path))


def _base_url(base_url: str | None) -> str:
    url = base_url if base_url is not None else os.environ.get(URL_ENV) or KERAS_BASE_URL
    if not isinstance(url, str) or not url:
        raise ValueError(f"base_url: expected a URL string such as {KERAS_BASE_URL!r}; got {url!r}")
    return url if url.endswith("/") else url + "/"


def _download(name: str, base_url: str, target: Path) -> np.ndarray:
    """Downloads one file into an anonymous temporary file beside `target`, verifies it, then
    writes it to `target` atomically. Nothing is cached unless it is verified."""
    url = base_url + FILES[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=target.parent, prefix=f".{FILES[name]}.") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                size = 0
                while chunk := resp.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise FashionMnistIntegrityError(
                            f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes; not Fashion-MNIST"
                        )
                    tmp.write(chunk)
        except FashionMnistIntegrityError:
            raise
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, bad URL
            raise RuntimeError(
                f"could not download Fashion-MNIST: {url}: {type(e).__name__}: {e}"
            ) from e
        tmp.seek(0)
        a = _parse_idx(tmp, name, url)
        tmp.seek(0)
        write_atomic(target, lambda f: shutil.copyfileobj(tmp, f))
    return a


def _load_one(name: str, base_url: str) -> np.ndarray:
    """One array from the first source that holds a valid copy (pyreg, Keras, system, download)."""
    cached = cache_dir() / FILES[name]
    rebuild = False
    if cached.exists():
        try:
            return _read_file(cached, name)
        except FashionMnistIntegrityError as e:
            warnings.warn(
                f"pyreg's Fashion-MNIST cache is invalid and will be rebuilt: {e}", stacklevel=3
            )
            rebuild = True
    for folder, what in ((_keras_dir(), "the Keras Fashion-MNIST cache"),
                         (Path(SYSTEM_DIR), "the system copy of Fashion-MNIST")):  # fmt: skip
        source = folder / FILES[name]
        if not source.exists():
            continue
        try:
            a = _read_file(source, name)
        except FashionMnistIntegrityError as e:
            warnings.warn(f"skipping {what}: {e}", stacklevel=3)
            continue
        if rebuild:  # replace the bad cache file with the verified one

            def copy(f, source=source):
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, f)

            write_atomic(cached, copy)
        return a
    try:
        return _download(name, base_url, cached)
    except RuntimeError as e:
        raise RuntimeError(
            f"{e}\n  (no valid {FILES[name]} in pyreg's cache {cached.parent}, the Keras cache "
            f"{_keras_dir()} or the system copy {SYSTEM_DIR}; offline, install Debian's "
            "dataset-fashion-mnist package or pass path=)"
        ) from e.__cause__


def load_data(path: str | os.PathLike | None = None, *, base_url: str | None = None):
    """Loads Fashion-MNIST, verified, as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        path: an ``.npz`` file to read (or to create when it does not exist). Default: the sources in
            the module's description.
        base_url: where to download the ``.gz`` files from when no local copy is valid. Default:
            ``$PYREG_FASHION_MNIST_URL``, else the URL ``keras.datasets.fashion_mnist`` uses.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28), (60000,),
        (10000, 28, 28) and (10000,), exactly as ``keras.datasets.fashion_mnist.load_data()``.

    Raises:
        FashionMnistIntegrityError: the file named by ``path`` does not hold Fashion-MNIST as
            published (or is a directory, or unreadable), or a downloaded file does not.
        RuntimeError: a file had to be downloaded and could not be.
    """
    url = _base_url(base_url)
    target = None
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"path: expected a str or os.PathLike (an .npz file); got {type(path).__name__}"
            )
        target = Path(path).expanduser()
        if target.exists():
            return _split(
                read_npz(target, SHA256, SHAPES, FashionMnistIntegrityError, "Fashion-MNIST")
            )
    arrays = {name: _load_one(name, url) for name in SHA256}
    if target is not None:
        write_npz_atomic(target, arrays)
    return _split(arrays)
