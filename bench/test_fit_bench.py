"""End-to-end benchmarks: one epoch of each study model (training on MNIST's 60,000 images plus
validation on the 10,000 test images, batch 32) with pyreg, Keras and a plain NumPy trainer, and
inference on the test images.

Each implementation trains one warm-up epoch first (Keras traces its graph then); it is timed and
reported separately in extra_info["warmup_s"], then every round is one more epoch of the same model.
Speed-ups versus Keras and NumPy, thread scaling (pyreg on all cores vs one) and pyreg on one thread
vs Keras on one thread (TensorFlow limited to one thread, in a subprocess of this run) are recorded in
extra_info, with the validation accuracy reached, and where one more epoch's time went on each thread
(extra_info["phases_us_per_step"], pyreg.profiling). On a CPU with AVX-512, "pyreg-avx2" trains with the
AVX2 kernels forced, the speed of CPUs without AVX-512 (its paths once fell back to scalar loops
unnoticed: an epoch took 1.9x as long).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import pyreg
from pyreg import _core
from pyreg.study.definition import build_keras, build_numpy, build_pyreg

KINDS = ["l2", "dropout"]
IMPLS = ["keras", "numpy", "pyreg", "pyreg-1thread", "pyreg-avx2"]
ROUNDS = {"keras": 3, "numpy": 2, "pyreg": 7, "pyreg-1thread": 5, "pyreg-avx2": 5}


class EpochRunner:
    """One model of one implementation: .epoch() trains one epoch and validates; .val_accuracy after."""

    def __init__(self, impl: str, kind: str, data, keras_mod=None):
        (self.x, self.y, self.xt, self.yt) = data
        self.impl, self.kind, self.val_accuracy = impl, kind, None
        if impl.startswith("pyreg"):
            self.model = build_pyreg(kind, seed=0)
            self.threads = 1 if impl == "pyreg-1thread" else 0
            self.isa = "avx2" if impl == "pyreg-avx2" else None
        elif impl == "keras":
            keras_mod.utils.set_random_seed(0)
            self.model = build_keras(kind, input_shape=(784,))
        else:
            self.model = build_numpy(kind, seed=0)

    def epoch(self):
        if self.impl.startswith("pyreg"):
            with forced_isa(self.isa):
                h = self.model.fit(self.x, self.y, epochs=1, batch_size=32, validation_data=(self.xt, self.yt),
                                   verbose=0, threads=self.threads)  # fmt: skip
            self.val_accuracy = h.history["val_accuracy"][-1]
        elif self.impl == "keras":
            h = self.model.fit(
                self.x,
                self.y,
                epochs=1,
                batch_size=32,
                validation_data=(self.xt, self.yt),
                verbose=0,
            )
            self.val_accuracy = float(h.history["val_accuracy"][-1])
        else:
            self.model.train_epoch(self.x, self.y, 32)
            self.val_accuracy = self.model.evaluate(self.xt, self.yt)["accuracy"]


@contextlib.contextmanager
def forced_isa(isa: str | None):
    """Runs the block with the kernel table `isa` (None: as chosen at load), then restores the choice."""
    if isa is None:
        yield
        return
    before = _core.get_isa()
    _core.set_isa(isa)
    try:
        yield
    finally:
        _core.set_isa(before)


_KERAS_1THREAD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras
from pyreg.study.definition import build_keras, load_mnist
kind, n_train, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
(x, y), (xt, yt) = load_mnist(n_train, flat=True)
keras.utils.set_random_seed(0)
m = build_keras(kind, input_shape=(784,))
m.fit(x, y, epochs=1, batch_size=32, validation_data=(xt, yt), verbose=0)
times = []
for _ in range(rounds):
    t0 = time.perf_counter()
    m.fit(x, y, epochs=1, batch_size=32, validation_data=(xt, yt), verbose=0)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


@pytest.fixture(scope="session")
def keras_one_thread(keras_mod, mnist):
    """Median epoch time of Keras with TensorFlow limited to one thread, per kind (subprocess)."""
    cache = {}

    def measure(kind: str) -> float:
        if kind not in cache:
            out = subprocess.run([sys.executable, "-c", _KERAS_1THREAD, kind, str(len(mnist[1])), "2"],
                                 capture_output=True, text=True, check=True, env=dict(os.environ))  # fmt: skip
            cache[kind] = float(np.median(json.loads(out.stdout.strip().splitlines()[-1])))
        return cache[kind]

    return measure


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_epoch(benchmark, baselines, request, mnist, quick, kind, impl):
    if impl == "pyreg-avx2" and not (
        _core.get_isa() == "avx512" and "avx2" in pyreg.build_info()["isa_available"]
    ):
        pytest.skip(f"pyreg-avx2 compares against avx512; this CPU runs {_core.get_isa()}")
    keras_mod = request.getfixturevalue("keras_mod") if impl == "keras" else None
    runner = EpochRunner(impl, kind, mnist, keras_mod)
    t0 = time.perf_counter()
    runner.epoch()  # warm-up: timed, reported apart, not in the statistics
    warmup = time.perf_counter() - t0
    group = f"epoch {kind} model"
    benchmark.group = group
    rounds = 1 if quick else ROUNDS[impl]
    benchmark.pedantic(runner.epoch, rounds=rounds, iterations=1)
    assert runner.val_accuracy > (0.8 if quick else 0.95)
    info = dict(kind=kind, batch_size=32, train_samples=len(mnist[1]), test_samples=len(mnist[3]),
                warmup_s=warmup, val_accuracy=runner.val_accuracy, threads=1 if impl == "pyreg-1thread" else "all")  # fmt: skip
    if getattr(runner, "isa", None):
        info["isa"] = runner.isa  # the kernels it ran (versions() reports the active ones)
    if impl.startswith("pyreg") and not benchmark.disabled:
        # where the time goes: one more epoch (untimed, no validation) with the phase clock on,
        # microseconds per step and phase, one dict per thread (pyreg.profiling)
        from pyreg.profiling import profile_fit

        with forced_isa(runner.isa):
            phases = profile_fit(runner.model, runner.x, runner.y, threads=runner.threads)
        info["phases_us_per_step"] = [{k: round(v, 3) for k, v in t.items()} for t in phases]
    others = {}
    if impl.startswith("pyreg") and not benchmark.disabled:
        others = {name: EpochRunner(name, kind, mnist, request.getfixturevalue("keras_mod") if name == "keras"
                                    else None).epoch for name in ("keras", "numpy")}  # fmt: skip
        if impl == "pyreg":
            others["pyreg-1thread"] = EpochRunner("pyreg-1thread", kind, mnist).epoch
        elif impl == "pyreg-avx2":  # the same model on the kernels this CPU picks itself
            others["pyreg"] = EpochRunner("pyreg", kind, mnist).epoch
        else:
            info["speedup_vs_keras_1thread"] = (
                request.getfixturevalue("keras_one_thread")(kind) / benchmark.stats.stats.median
            )
    baselines.record(benchmark, group, impl, others, **info)


@pytest.mark.parametrize("impl", ["keras", "numpy", "pyreg"])
def test_inference_10000(benchmark, baselines, request, mnist, impl):
    """predict() on the 10,000 test images with a trained study model (throughput)."""
    x, y, xt, yt = mnist
    keras_mod = request.getfixturevalue("keras_mod") if impl == "keras" else None
    runner = EpochRunner(impl, "dropout", (x[:6400], y[:6400], xt, yt), keras_mod)
    runner.epoch()
    if impl == "pyreg" or impl == "keras":
        fn = lambda: runner.model.predict(xt, batch_size=1000, verbose=0)  # noqa: E731
    else:
        fn = lambda: runner.model.predict(xt, batch_size=1000)  # noqa: E731
    group = "predict 10000 test images"
    benchmark.group = group
    probs = benchmark(fn)
    accuracy = float((np.asarray(probs).argmax(1) == yt).mean())
    assert accuracy > 0.8
    baselines.record(benchmark, group, impl, {}, images=len(xt), accuracy=accuracy,
                     images_per_s=len(xt) / benchmark.stats.stats.median if benchmark.stats else None)  # fmt: skip
