"""Faults during training (Ctrl-C, exceptions in callbacks), memory (no growth, peak of a full fit)
and concurrency (two threads, two models; one model, two threads)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import OUTSIDE

import pyreg
from pyreg import callbacks, kernels, layers, models, utils


def small_model(seed=0, hidden=32, features=20, classes=4, dropout=0.2):
    utils.set_random_seed(seed)
    m = models.Sequential([layers.Input(shape=(features,)), layers.Dense(hidden, activation="relu"),
                           layers.Dropout(dropout), layers.Dense(classes, activation="softmax")])  # fmt: skip
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def small_data(n=512, features=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, classes, n)


CHILD = r"""
import json, sys, time
import numpy as np
from pyreg import layers, models, utils
rng = np.random.default_rng(0)
x = rng.standard_normal((200000, 64)).astype(np.float32)
y = rng.integers(0, 10, 200000)
utils.set_random_seed(0)
m = models.Sequential([layers.Input(shape=(64,)), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print("ready", flush=True)
try:
    m.fit(x, y, epochs=1000, batch_size=32, verbose=0)
    out = {"interrupted": False}
except KeyboardInterrupt:
    caught = time.monotonic()
    w = m.get_weights()
    out = {"interrupted": True, "caught": caught, "iterations": m.optimizer.iterations,
           "finite": all(bool(np.isfinite(a).all()) for a in w)}
    h = m.fit(x[:640], y[:640], epochs=1, batch_size=32, verbose=0)  # the model still trains
    out["after"] = m.optimizer.iterations - out["iterations"]
    out["loss_after"] = h.history["loss"][0]
    try:  # python's own SIGINT handling is back in place
        import signal, os
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
        out["second"] = "not raised"
    except KeyboardInterrupt:
        out["second"] = "raised"
print(json.dumps(out), flush=True)
"""


def test_ctrl_c_stops_a_native_fit_within_a_batch_and_keeps_the_model_usable():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=OUTSIDE)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # well inside the first epoch (6250 batches)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"], err
    latency = result["caught"] - sent
    assert latency < 0.05, (
        f"KeyboardInterrupt took {latency * 1e3:.1f} ms"
    )  # a batch takes ~0.05 ms here
    assert result["iterations"] > 0
    assert result["finite"]
    assert result["after"] == 20
    assert np.isfinite(result["loss_after"])
    assert result["second"] == "raised"


def test_a_fit_inside_another_fits_callback_works():
    """Nested native fits (a callback training a second model) keep SIGINT handling sane."""
    x, y = small_data()
    inner = small_model(seed=5)
    cb = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: inner.fit(x, y, epochs=1, verbose=0)
    )
    outer = small_model()
    outer.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert outer.optimizer.iterations == inner.optimizer.iterations == 32
    import signal as _signal

    assert (
        _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    )  # python's handler is back


def test_exception_in_a_batch_callback_propagates_and_leaves_the_model_consistent():
    x, y = small_data()
    model = small_model()

    class Boom(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise ZeroDivisionError("boom at batch 3")

    with pytest.raises(ZeroDivisionError, match="boom at batch 3"):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[Boom()])
    assert model.optimizer.iterations == 4  # batches 0..3 were applied, nothing after
    assert all(np.isfinite(w).all() for w in model.get_weights())
    h = model.fit(x, y, epochs=1, verbose=0)  # and it trains again
    assert np.isfinite(h.history["loss"][0])


def test_exception_in_an_epoch_callback_propagates():
    x, y = small_data()
    model = small_model()
    cb = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: (_ for _ in ()).throw(KeyError(f"epoch {epoch}"))
    )
    with pytest.raises(KeyError, match="epoch 0"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert model.optimizer.iterations == 16


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read the resident set"
)
@pytest.mark.skipif(
    bool(pyreg.build_info()["sanitizers"]),
    reason="AddressSanitizer keeps freed memory in quarantine, so RSS grows by design; the normal build runs this",
)
def test_no_rss_growth_over_1000_fits_and_100000_kernel_calls():
    x, y = small_data(n=64)
    model = small_model()
    for _ in range(50):  # warm up allocators and caches
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    before = rss_bytes()
    for _ in range(1000):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        model.predict(x, verbose=0)
    grown_fits = rss_bytes() - before
    w = np.ones((20, 16), np.float32)
    for _ in range(1000):
        kernels.dense_forward(x, w, None, "relu")
    before = rss_bytes()
    for _ in range(100_000):
        kernels.dense_forward(x, w, None, "relu")
    grown_kernels = rss_bytes() - before
    assert grown_fits < 4 * 2**20, f"RSS grew {grown_fits / 2**20:.1f} MiB over 1000 fits"
    assert grown_kernels < 2 * 2**20, (
        f"RSS grew {grown_kernels / 2**20:.1f} MiB over 100000 kernel calls"
    )


PEAK = r"""
import json, sys
import numpy as np
from pyreg.study.definition import build_pyreg, scale_images
from pyreg.datasets import mnist
(x, y), (xt, yt) = mnist.load_data()
if sys.argv[1] == "float32":
    x, xt = scale_images(x), scale_images(xt)
else:
    x, xt = x / 255.0, xt / 255.0  # float64, as the study writes it
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
m = build_pyreg("dropout", 0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak resident set (VmHWM) to the current one
before = status("VmRSS:")
m.fit(x, y, epochs=1, batch_size=32, validation_data=(xt, yt), verbose=0)
print(json.dumps({"grown": status("VmHWM:") - before}))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc to reset the peak RSS"
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_peak_memory_of_a_full_mnist_fit(mnist_data, dtype):
    """At most the float32 training set (188 MB, only when the input must be converted) plus 100 MB."""
    out = subprocess.run([sys.executable, "-c", PEAK, dtype], capture_output=True, text=True, check=True, timeout=600,
                         cwd=OUTSIDE)  # fmt: skip
    grown = json.loads(out.stdout.strip().splitlines()[-1])["grown"]
    train_f32 = 60000 * 784 * 4
    allowed = (train_f32 if dtype == "float64" else 0) + 100 * 2**20
    assert grown <= allowed, (
        f"fit grew the peak RSS by {grown / 2**20:.0f} MiB (allowed {allowed / 2**20:.0f})"
    )


def test_two_threads_two_models_equal_sequential_results():
    x, y = small_data(n=2000)

    def train(seed, results, key):
        m = small_model(seed=seed, hidden=64)
        m._seed_used = seed
        h = m.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_data=(x, y))
        results[key] = (m.get_weights(), h.history)

    sequential, parallel = {}, {}
    train(1, sequential, "a")
    train(2, sequential, "b")
    # models are built (seeded) before the threads start; training runs concurrently
    ma, mb = small_model(seed=1, hidden=64), small_model(seed=2, hidden=64)

    def fit(m, key):
        h = m.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_data=(x, y))
        parallel[key] = (m.get_weights(), h.history)

    threads = [
        threading.Thread(target=fit, args=(ma, "a")),
        threading.Thread(target=fit, args=(mb, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for key in ("a", "b"):
        for u, v in zip(parallel[key][0], sequential[key][0]):
            np.testing.assert_array_equal(u, v)
        assert parallel[key][1] == sequential[key][1]


def test_one_model_used_from_two_threads_is_refused_clearly():
    x, y = small_data(n=4096)
    model = small_model()
    started, release = threading.Event(), threading.Event()
    errors = []

    def on_batch(batch, logs):
        if batch == 0:
            started.set()
            release.wait(timeout=30)

    def trainer():
        try:
            model.fit(
                x,
                y,
                epochs=1,
                verbose=0,
                callbacks=[callbacks.LambdaCallback(on_train_batch_end=on_batch)],
            )
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=trainer)
    t.start()
    assert started.wait(timeout=30)
    try:
        with pytest.raises(RuntimeError, match="already training or predicting in another thread"):
            model.predict(x, verbose=0)
        with pytest.raises(RuntimeError, match="already training or predicting in another thread"):
            model.fit(x, y, verbose=0)
        with pytest.raises(
            RuntimeError, match="cannot read the weights while this model is training"
        ):
            model.get_weights()
    finally:
        release.set()
        t.join(timeout=60)
    assert not errors
    assert model.optimizer.iterations == 128  # the first thread's fit completed undisturbed
