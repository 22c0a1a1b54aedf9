"""The Fashion-MNIST loader: every source (path=, pyreg's cache, a Keras cache, the system copy, the
download through an HTTP server on 127.0.0.1), verified, cached atomically, corrupt files repaired or
reported, never wrong data. No test touches the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import IN_CI, OUTSIDE

from pyreg.datasets import fashion_mnist as fm

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
NAMES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
# independent copy of the published digests (raw array bytes, C order), not imported from the loader
DIGESTS = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
# SHA-256 of the uncompressed IDX files (header included) as Zalando published them
IDX_SHA256 = {
    "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEAD_URL = "http://127.0.0.1:9/"  # the discard port: refused at once, never the internet


def independent_parse(gz: bytes) -> np.ndarray:
    """Reads an IDX file the long way: big-endian header fields one by one, then the bytes."""
    raw = gzip.decompress(gz)
    assert raw[:3] == b"\x00\x00\x08", "IDX magic: unsigned bytes"
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim :]
    assert len(body) == int(np.prod(dims))
    return np.array(bytearray(body), dtype=np.uint8).reshape(dims)


@pytest.fixture(scope="session")
def gz_files() -> dict[str, bytes]:
    """The real files, from Debian's dataset-fashion-mnist (installed by .ci/run)."""
    if not all((SYSTEM / f).is_file() for f in NAMES.values()):
        msg = f"Fashion-MNIST's system copy is not installed in {SYSTEM} (apt-get install dataset-fashion-mnist)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    files = {name: (SYSTEM / f).read_bytes() for name, f in NAMES.items()}
    for name, gz in files.items():  # the system copy is Zalando's data, recompressed
        assert hashlib.sha256(gzip.decompress(gz)).hexdigest() == IDX_SHA256[name], name
    return files


@pytest.fixture(scope="session")
def reference(gz_files) -> dict[str, np.ndarray]:
    return {name: independent_parse(gz) for name, gz in gz_files.items()}


def assert_is_fashion(data, reference=None):
    (x_train, y_train), (x_test, y_test) = data
    got = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    shapes = {
        "x_train": (60000, 28, 28),
        "y_train": (60000,),
        "x_test": (10000, 28, 28),
        "y_test": (10000,),
    }
    for name, a in got.items():
        assert a.dtype == np.uint8, name
        assert a.shape == shapes[name], name
        assert hashlib.sha256(a.tobytes()).hexdigest() == DIGESTS[name], name
        if reference is not None:
            np.testing.assert_array_equal(a, reference[name])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty pyreg and Keras caches, an empty 'system copy', and a download URL that is refused."""
    monkeypatch.setenv("PYREG_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("PYREG_FASHION_MNIST_URL", DEAD_URL)
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    return tmp_path


def put(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / NAMES[name]).write_bytes(data)
    return folder


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet; count instead
        self.server.requests.append(self.path)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, folder, request log)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(www))
    )
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/data", www, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def cache(isolated) -> Path:
    return isolated / "cache" / "fashion-mnist"


def test_published_digests_match_the_module():
    assert fm.SHA256 == DIGESTS
    assert fm.FILES == NAMES


def test_system_copy_is_read_in_place(isolated, gz_files, reference, monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIR", SYSTEM)
    assert_is_fashion(fm.load_data(), reference)
    assert not (isolated / "cache").exists()  # nothing copied: the system copy stays the source


def test_pyreg_cache_comes_first(isolated, gz_files, reference):
    put(cache(isolated), gz_files)
    put(isolated / "system", {k: b"garbage" for k in gz_files})  # never opened
    assert_is_fashion(fm.load_data(), reference)


def test_keras_cache_is_used(isolated, gz_files, reference):
    put(isolated / "keras" / "datasets" / "fashion-mnist", gz_files)
    assert_is_fashion(fm.load_data(), reference)
    assert not (isolated / "cache").exists()


def test_recompressed_files_are_accepted(isolated, gz_files, reference):
    """Content is verified, not the gzip bytes: a different compression of the same data is fine."""
    other = {
        k: gzip.compress(gzip.decompress(v), compresslevel=1, mtime=0) for k, v in gz_files.items()
    }
    assert other != gz_files
    put(isolated / "keras" / "datasets" / "fashion-mnist", other)
    assert_is_fashion(fm.load_data(), reference)


def test_load_returns_fresh_writable_arrays(isolated, gz_files):
    put(cache(isolated), gz_files)
    (x1, _), _ = fm.load_data()
    before = x1[0, 0, 0]
    x1[0, 0, 0] = before ^ 0xFF
    (x2, _), _ = fm.load_data()
    assert x2[0, 0, 0] == before


def test_download_from_a_local_server_is_verified_and_cached(isolated, gz_files, reference, server):
    url, www, requests = server
    put(www / "data", gz_files)
    assert_is_fashion(fm.load_data(base_url=url), reference)
    assert sorted(requests) == sorted(f"/data/{f}" for f in NAMES.values())
    for name, f in NAMES.items():
        assert (cache(isolated) / f).read_bytes() == gz_files[name]
    assert sorted(p.name for p in cache(isolated).iterdir()) == sorted(
        NAMES.values()
    )  # no temp files
    n = len(requests)
    assert_is_fashion(fm.load_data(base_url=url), reference)  # now a cache hit
    assert len(requests) == n


def test_download_url_comes_from_the_environment(isolated, gz_files, server, monkeypatch):
    url, www, requests = server
    put(www / "data", gz_files)
    monkeypatch.setenv("PYREG_FASHION_MNIST_URL", url + "/")
    assert_is_fashion(fm.load_data())
    assert len(requests) == 4


def truncated(gz: bytes) -> bytes:
    return gz[: len(gz) // 2]


def tampered(gz: bytes) -> bytes:
    raw = bytearray(gzip.decompress(gz))
    raw[-100] ^= 1  # one bit of one pixel (or label)
    return gzip.compress(bytes(raw), mtime=0)


@pytest.mark.parametrize(
    ("corrupt", "match"), [(truncated, "not a readable gzip"), (tampered, "does not match")]
)
def test_corrupt_download_raises_and_caches_nothing(isolated, gz_files, server, corrupt, match):
    url, www, _ = server
    put(www / "data", {**gz_files, "x_test": corrupt(gz_files["x_test"])})
    with pytest.raises(fm.FashionMnistIntegrityError, match=rf"127\.0\.0\.1.*t10k-images.*{match}"):
        fm.load_data(base_url=url)
    assert not (cache(isolated) / NAMES["x_test"]).exists()
    assert not any(p.name.startswith(".") for p in cache(isolated).iterdir())  # no temp files left


def test_wrong_header_is_rejected(isolated, gz_files):
    raw = bytearray(gzip.decompress(gz_files["y_test"]))
    raw[7] = 0x0F  # the count 0x2710 (10000) becomes 0x270F: the header no longer says 10000 labels
    put(
        isolated / "keras" / "datasets" / "fashion-mnist",
        {**gz_files, "y_test": gzip.compress(bytes(raw))},
    )
    with (
        pytest.warns(UserWarning, match=r"skipping the Keras.*t10k-labels.*IDX header"),
        pytest.raises(RuntimeError, match="could not download"),
    ):
        fm.load_data()


def test_missing_file_on_the_server_is_a_clear_error(isolated, gz_files, server):
    url, www, _ = server
    put(www / "data", {k: v for k, v in gz_files.items() if k != "y_train"})
    with pytest.raises(RuntimeError, match=r"could not download Fashion-MNIST.*train-labels.*404"):
        fm.load_data(base_url=url)


def test_offline_with_no_source_says_what_to_do(isolated):
    with pytest.raises(RuntimeError, match=r"(?s)could not download.*dataset-fashion-mnist"):
        fm.load_data()


@pytest.mark.parametrize("corrupt", [truncated, tampered, lambda gz: b""])
def test_corrupt_cache_is_rebuilt_from_the_system_copy(isolated, gz_files, reference, corrupt):
    put(isolated / "system", gz_files)
    bad = cache(isolated) / NAMES["x_train"]
    put(cache(isolated), {"x_train": corrupt(gz_files["x_train"])})
    with pytest.warns(UserWarning, match=r"cache is invalid and will be rebuilt.*train-images"):
        assert_is_fashion(fm.load_data(), reference)
    assert bad.read_bytes() == gz_files["x_train"]  # repaired on disk


def test_corrupt_cache_is_rebuilt_by_download(isolated, gz_files, reference, server):
    url, www, requests = server
    put(www / "data", gz_files)
    put(cache(isolated), {**gz_files, "y_test": tampered(gz_files["y_test"])})
    with pytest.warns(UserWarning, match="cache is invalid.*y_test.*does not match"):
        assert_is_fashion(fm.load_data(base_url=url), reference)
    assert requests == ["/data/" + NAMES["y_test"]]
    assert (cache(isolated) / NAMES["y_test"]).read_bytes() == gz_files["y_test"]


def test_invalid_keras_cache_is_skipped_and_left_alone(isolated, gz_files, reference):
    keras_dir = put(isolated / "keras" / "datasets" / "fashion-mnist", {"x_train": b"not gzip"})
    put(isolated / "system", gz_files)
    with pytest.warns(UserWarning, match="skipping the Keras Fashion-MNIST cache"):
        assert_is_fashion(fm.load_data(), reference)
    assert (keras_dir / NAMES["x_train"]).read_bytes() == b"not gzip"


def test_invalid_system_copy_is_skipped(isolated, gz_files, server):
    url, www, requests = server
    put(isolated / "system", {**gz_files, "y_train": truncated(gz_files["y_train"])})
    put(www / "data", gz_files)
    with pytest.warns(UserWarning, match="skipping the system copy"):
        assert_is_fashion(fm.load_data(base_url=url))
    assert requests == ["/data/" + NAMES["y_train"]]


# --- path= ---


def test_path_is_created_when_absent_then_read(isolated, gz_files, reference, monkeypatch):
    put(isolated / "system", gz_files)
    path = isolated / "sub" / "fashion.npz"
    assert_is_fashion(fm.load_data(path=path), reference)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(DIGESTS)
    shutil.rmtree(isolated / "system")  # path= alone is enough now
    assert_is_fashion(fm.load_data(path=str(path)), reference)


def test_path_with_wrong_arrays_raises_naming_the_file(isolated, reference):
    path = isolated / "mine.npz"
    r = reference
    np.savez(
        path,
        x_train=r["x_train"],
        y_train=(r["y_train"] + 1) % 10,
        x_test=r["x_test"],
        y_test=r["y_test"],
    )
    before = path.read_bytes()
    with pytest.raises(fm.FashionMnistIntegrityError, match=r"mine\.npz.*y_train.*does not match"):
        fm.load_data(path=path)
    assert path.read_bytes() == before  # the user's file is never touched


def test_path_missing_array_raises(isolated, reference):
    path = isolated / "partial.npz"
    np.savez(path, x_train=reference["x_train"])
    with pytest.raises(fm.FashionMnistIntegrityError, match=r"partial\.npz.*'y_train'.*missing"):
        fm.load_data(path=path)


def test_path_that_is_a_directory_is_rejected(isolated):
    with pytest.raises(ValueError, match=r"is a directory; expected an \.npz"):
        fm.load_data(path=isolated)


def test_path_that_is_not_an_npz_is_rejected(isolated):
    path = isolated / "junk.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(fm.FashionMnistIntegrityError, match=r"junk\.npz: not a readable \.npz"):
        fm.load_data(path=path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_path_is_rejected(isolated):
    path = isolated / "locked.npz"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(fm.FashionMnistIntegrityError, match=r"locked\.npz.*PermissionError"):
        fm.load_data(path=path)


def test_bad_argument_types(isolated):
    with pytest.raises(TypeError, match=r"path: expected a str or os\.PathLike"):
        fm.load_data(path=3)
    with pytest.raises(ValueError, match="base_url: expected a URL"):
        fm.load_data(base_url="")


# --- against Keras, and in a sweep ---


@pytest.mark.keras
def test_equals_keras_own_loader_on_the_same_files(keras_mod, gz_files, isolated, monkeypatch):
    """Keras' loader, its download replaced by the same files (it cannot download here)."""
    import importlib

    kfm = importlib.import_module("keras.src.datasets.fashion_mnist")
    asked = []

    def get_file(fname, origin, cache_subdir):
        asked.append((origin, cache_subdir))
        return str(SYSTEM / fname)

    monkeypatch.setattr(kfm, "get_file", get_file)
    want = keras_mod.datasets.fashion_mnist.load_data()
    assert {o for o, _ in asked} == {fm.KERAS_BASE_URL + f for f in NAMES.values()}  # the same URL
    assert {s for _, s in asked} == {os.path.join("datasets", "fashion-mnist")}  # the same cache
    put(isolated / "keras" / "datasets" / "fashion-mnist", gz_files)
    got = fm.load_data()
    for w, g in zip([*want[0], *want[1]], [*got[0], *got[1]]):
        assert w.dtype == g.dtype
        assert w.shape == g.shape
        np.testing.assert_array_equal(w, g)


def test_tiny_sweep_on_fashion_mnist(gz_files, tmp_path, monkeypatch):
    from pyreg.study.sweep import data
    from pyreg.study.sweep.runner import run_sweep

    monkeypatch.setattr(fm, "SYSTEM_DIR", SYSTEM)
    monkeypatch.setenv("PYREG_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    spec = {"dataset": ["fashion_mnist"], "l2": [0.0], "dropout": [0.0], "units": [16], "epochs": [1],
            "train_size": [300], "seeds": 1, "validation_size": 500}  # fmt: skip
    run = run_sweep(
        spec, tmp_path / "out", engine="inline", report=False, progress=False, say=lambda *a: None
    )
    assert run.ran == 1
    (row,) = run.rows
    assert row["status"] == "ok", row["reason"]
    assert row["dataset"] == "fashion_mnist"
    assert 0.1 < row["val_accuracy"] <= 1.0  # one epoch on 300 images: well above chance (0.1)
    assert data.dataset_digest("fashion_mnist") != data.dataset_digest("mnist")
    assert data.train_rows("fashion_mnist") == 60_000


def test_two_processes_downloading_at_once_leave_a_valid_cache(isolated, gz_files, server):
    url, www, _ = server
    put(www / "data", gz_files)
    env = dict(os.environ, PYREG_FASHION_MNIST_URL=url)
    code = (
        "from pyreg.datasets import fashion_mnist as fm; fm.SYSTEM_DIR = fm.Path('/nonexistent'); "
        "d = fm.load_data(); print(d[0][0].shape)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=OUTSIDE) for _ in range(2)]  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "(60000, 28, 28)" in out
    for name, f in NAMES.items():
        assert (cache(isolated) / f).read_bytes() == gz_files[name]
    assert sorted(p.name for p in cache(isolated).iterdir()) == sorted(NAMES.values())
