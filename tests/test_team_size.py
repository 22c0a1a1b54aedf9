"""OpenMP may give a parallel region fewer threads than asked for (OMP_THREAD_LIMIT, OMP_DYNAMIC, a
nested region). The trainer and inference must then share their work by the team they got: training
and inference with threads=2..4 under OMP_THREAD_LIMIT=1 or 2 must give exactly the results of one
thread. (Before this was fixed, the narrow-top steps left the next batch unscanned, and inference left
whole chunks of rows uncomputed: evaluate's accuracy 0.90 -> 0.46, silently.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import OUTSIDE

CHILD = r"""
import hashlib, json, numpy as np
from pyreg import layers, models, utils

def digest(arrays):
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()

rng = np.random.default_rng(0)
x = rng.random((1200, 96)).astype(np.float32)
x[rng.random(x.shape) < 0.8] = 0.0  # sparse: the fused sweep and its narrow-top steps
y = (x @ rng.standard_normal((96, 4))).argmax(1)
xd = rng.random((600, 96)).astype(np.float32)  # dense: the general steps

def train(threads, data, dropout):
    utils.set_random_seed(3)
    hidden = [layers.Dense(128, activation="relu")] + ([layers.Dropout(0.5)] if dropout else [])
    m = models.Sequential([layers.Input(shape=(96,)), *hidden, layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xs, ys = data
    h = m.fit(xs, ys, epochs=2, batch_size=32, verbose=0, threads=threads)
    out = m.predict(xs, verbose=0, threads=threads, batch_size=64)
    ev = m.evaluate(xs, ys, verbose=0, threads=threads, batch_size=64)
    return [digest(m.get_weights()), digest([out]), ev, h.history["loss"]]

result = {}
for name, data, dropout in (("sparse", (x, y), True), ("sparse-l2", (x, y), False), ("dense", (xd, y[:600]), True)):
    result[name] = {str(t): train(t, data, dropout) for t in (1, 2, 3, 4)}
print(json.dumps(result))
"""


@pytest.mark.parametrize("limit", ["1", "2"])
def test_a_smaller_team_than_asked_gives_the_one_thread_results(limit):
    env = dict(os.environ, OMP_THREAD_LIMIT=limit)
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=OUTSIDE, env=env,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, by_threads in result.items():
        one = by_threads["1"]
        for threads, got in by_threads.items():
            assert got == one, (
                f"{name}: threads={threads} under OMP_THREAD_LIMIT={limit} differs from 1 thread"
            )


ONE_THREAD = r"""
import os, numpy as np
from pyreg import layers, models, utils

def threads_now():
    return len(os.listdir("/proc/self/task"))

rng = np.random.default_rng(0)
x = rng.random((2000, 64)).astype(np.float32)
y = (x[:, :4].sum(1) > 2).astype(np.int32)
utils.set_random_seed(0)
m = models.Sequential([layers.Input(shape=(64,)), layers.Dense(32, activation="relu"), layers.Dropout(0.2),
                       layers.Dense(2, activation="softmax")])
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
before = threads_now()
m.fit(x, y, epochs=2, batch_size=32, validation_data=(x[:500], y[:500]), verbose=0, threads=1)
m.fit(x.astype(np.float64), y, epochs=1, verbose=0, threads=1, callbacks=[])  # checked up front
m.evaluate(x, y, verbose=0, threads=1)
m.predict(x, verbose=0, threads=1)
print(before, threads_now())
"""


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc to count threads"
)
def test_threads_1_runs_everything_on_the_calling_thread():
    """fit/evaluate/predict(threads=1), input checks included, start no OpenMP team: the budget a
    sweep gives each trial is the budget it uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    proc = subprocess.run([sys.executable, "-c", ONE_THREAD], capture_output=True, text=True, cwd=OUTSIDE,
                          env=env, timeout=300, check=True)  # fmt: skip
    before, after = map(int, proc.stdout.split())
    assert after == before
