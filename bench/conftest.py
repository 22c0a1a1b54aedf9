"""Benchmark fixtures: real MNIST batches, the Keras baseline, and what every benchmark records.

Run: ``pytest bench --benchmark-only`` (save with ``--benchmark-autosave`` or ``--benchmark-json F``).
``--bench-quick`` uses small data so the suites can run in CI with ``--benchmark-disable``.
Each benchmark stores in ``extra_info`` its shapes, threads, versions and build, its speed-up versus
the Keras and NumPy implementations of the same group *measured in the same run*, and (for epochs)
the accuracy reached.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--bench-quick", action="store_true", default=False,
                     help="small data sets, for a fast check that the suites run (CI)")  # fmt: skip


@pytest.fixture(scope="session")
def quick(request) -> bool:
    return request.config.getoption("--bench-quick")


@pytest.fixture(scope="session")
def mnist(quick):
    """float32 (N, 784) in [0, 1] and uint8 labels, as the study feeds them."""
    from pyreg.study.definition import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(
        *((3200, 1000) if quick else (None, None)), flat=True
    )
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="session")
def keras_mod():
    """Keras on TensorFlow; in CI (CI=true) a missing TensorFlow fails, elsewhere it skips."""
    try:
        import keras
        import tensorflow  # noqa: F401
    except ImportError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"TensorFlow is required in CI: {e}")
        pytest.skip(f"TensorFlow not installed ({e})")
    return keras


def versions() -> dict:
    import pyreg

    info = pyreg.build_info()
    out = {"pyreg": info["pyreg"], "numpy": np.__version__, "python": platform.python_version(),
           "isa": info["isa_active"], "compiler": info["compiler"], "cpu": info["cpu"], "cores": info["cpu_count"]}  # fmt: skip
    import sys

    if "tensorflow" in sys.modules:
        import keras
        import tensorflow as tf

        out["tensorflow"], out["keras"] = tf.__version__, keras.__version__
        out["tf_threads"] = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    return out


class Baselines:
    """Median times of each (group, impl) measured in this session, for in-run speed-ups."""

    def __init__(self):
        self.medians: dict[tuple[str, str], float] = {}

    def measure(self, group: str, impl: str, fn, rounds: int = 7, warmup: int = 2) -> float:
        key = (group, impl)
        if key not in self.medians:
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            self.medians[key] = statistics.median(times)
        return self.medians[key]

    def record(self, benchmark, group: str, impl: str, baselines: dict, **info) -> None:
        """extra_info for one benchmark: versions, info, and speed-ups versus the given baselines.

        baselines maps an impl name ("keras", "numpy") to a zero-argument function doing the same work;
        each is timed once per session (or taken from its own benchmark when that ran first).
        """
        benchmark.extra_info.update(versions())
        benchmark.extra_info.update(info)
        benchmark.extra_info["impl"] = impl
        if benchmark.disabled or benchmark.stats is None:
            return
        own = benchmark.stats.stats.median
        self.medians[(group, impl)] = own
        for name, fn in baselines.items():
            if fn is None:
                continue
            base = own if name == impl else self.measure(group, name, fn)
            benchmark.extra_info[f"speedup_vs_{name}"] = base / own


@pytest.fixture(scope="session")
def baselines() -> Baselines:
    return Baselines()
