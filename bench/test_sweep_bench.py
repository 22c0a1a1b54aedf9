"""Throughput of ``pyreg sweep``: a 24-trial grid (3 L2 factors x 2 dropout rates x 4 seeds, the
default study's cell: 3,000 training images, 80 epochs) one trial at a time in this process, on the
local process pool and on a Dask LocalCluster, each trial on one thread.

Targets (checked here, not in the tests): the pool reaches at least 90% of ideal parallel
throughput (cores x the one-at-a-time rate) and Dask stays within 10% of the pool. The Keras time
of the same grid is measured on two cells for two epochs and extrapolated (``extra_info``, labelled
as such): training the whole grid in Keras would take most of an hour.

    pytest bench/test_sweep_bench.py --benchmark-only
"""

from __future__ import annotations

import itertools
import time

import pytest

from pyreg.study.sweep import run_sweep
from pyreg.study.sweep.engines import cores
from pyreg.study.sweep.trial import run_trial

GROUP = "sweep 24 trials"
GRID = {"l2": [0.0, 0.001, 0.01], "dropout": [0.0, 0.5], "seeds": 4}  # the default cell otherwise
QUICK = {"l2": [0.0, 0.001, 0.01], "dropout": [0.0, 0.5], "seeds": 4, "epochs": [1],
         "train_size": [500], "validation_size": 500, "units": [16]}  # fmt: skip
ENGINES = ["inline", "local", "dask"]  # the order matters: the later ones compare with the earlier


def keras_grid_seconds(spec: dict, trials: int) -> dict:
    """Keras on two of the grid's cells for two epochs each, scaled to the whole grid."""
    from pyreg.study.sweep.runner import SweepSpec, semantics_of

    s = SweepSpec.from_dict(spec)
    semantics = semantics_of(s)
    per_epoch = []
    for cell in (s.cells()[0], s.cells()[-1]):
        config = {"framework": "keras", **cell, "epochs": 2, "seed": 0}
        run_trial("keras-probe", config, semantics, 1)  # warm-up: imports, graph tracing
        t0 = time.perf_counter()
        record = run_trial("keras-probe", config, semantics, 1)
        assert record["status"] == "ok", record["reason"]
        per_epoch.append((time.perf_counter() - t0) / 2)
    epochs = s.axes["epochs"][0]
    return {"keras_extrapolated_s": trials * epochs * sum(per_epoch) / len(per_epoch),
            "keras_extrapolated_from": "2 cells x 2 epochs, one thread, scaled to every trial and epoch"}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_sweep_throughput(benchmark, baselines, request, tmp_path, quick, engine):
    if engine == "dask":
        pytest.importorskip("distributed")
    spec = QUICK if quick else GRID
    trials = len(spec["l2"]) * len(spec["dropout"]) * spec["seeds"]
    workers = cores()
    folders = (tmp_path / f"round{i}" for i in itertools.count())
    runs = []

    def sweep():
        runs.append(run_sweep(spec, next(folders), engine=engine, workers=workers, report=False,
                              progress=False, say=lambda *a: None))  # fmt: skip

    benchmark.group = GROUP
    benchmark.pedantic(sweep, rounds=1, iterations=1, warmup_rounds=0)
    assert all(r.ran == trials and all(x["status"] == "ok" for x in r.records) for r in runs)
    info = {"trials": trials, "workers": 1 if engine == "inline" else workers, "threads_per_trial": 1,
            "grid": {k: v for k, v in spec.items()}}  # fmt: skip
    if benchmark.disabled or benchmark.stats is None:
        baselines.record(benchmark, GROUP, engine, {}, **info)
        return
    seconds = benchmark.stats.stats.median
    info["trials_per_minute"] = 60 * trials / seconds
    one_at_a_time = baselines.medians.get((GROUP, "inline"))
    if engine == "local" and one_at_a_time:
        info["parallel_efficiency"] = one_at_a_time / (workers * seconds)
        if "keras" in request.config.getoption("-k", "") or not quick:
            try:
                request.getfixturevalue("keras_mod")
            except pytest.skip.Exception:
                pass
            else:
                info.update(keras_grid_seconds(spec, trials))
                info["speedup_vs_keras_extrapolated"] = info["keras_extrapolated_s"] / seconds
    pool = baselines.medians.get((GROUP, "local"))
    if engine == "dask" and pool:
        info["vs_pool"] = pool / seconds
    baselines.record(benchmark, GROUP, engine, {}, **info)
    if not quick:
        if "parallel_efficiency" in info:
            assert info["parallel_efficiency"] >= 0.9, info
        if "vs_pool" in info:
            assert info["vs_pool"] >= 0.9, info
