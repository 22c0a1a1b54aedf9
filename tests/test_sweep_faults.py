"""The sweep under faults and on Dask: kill -9 of the driver loses only the trials in flight, Ctrl-C
stops cleanly, a Dask LocalCluster of worker processes gives the pool's results bitwise, and a Dask
worker killed mid-sweep costs only a rerun of its trials."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sweep_helpers import read_lines, require_dask, results, start_cli

from pyreg.study.sweep import run_sweep

QUIET = {"progress": False, "say": lambda *a: None}
# 12 trials of a few tenths of a second each: long enough to stop part-way
LONGER = {"l2": [0.0, 0.001, 0.01], "dropout": [0.0, 0.5], "units": [32], "epochs": [4],
          "train_size": [1500], "seeds": 2, "validation_size": 500}  # fmt: skip
LONGER_FLAGS = ["--l2", "0,0.001,0.01", "--dropout", "0,0.5", "--units", "32", "--epochs", "4",
                "--train-size", "1500", "--seeds", "2", "--validation-size", "500", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The LONGER sweep run one trial at a time in this process."""
    return run_sweep(LONGER, tmp_path_factory.mktemp("ref"), engine="inline", report=False, **QUIET)


def wait_for_lines(out, n: int, proc=None, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while len(read_lines(out)) < n:
        assert proc is None or proc.poll() is None, proc and proc.communicate()
        assert time.monotonic() - t0 < timeout, "the sweep made no progress"
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_kill_9_of_the_driver_loses_only_trials_in_flight(reference, tmp_path):
    out = tmp_path / "s"
    proc = start_cli("sweep", *LONGER_FLAGS, "--workers", "2", "--out", str(out))
    wait_for_lines(out, 3, proc)
    workers = children_of(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    kept = read_lines(out)
    assert 3 <= len(kept) < 12
    deadline = time.monotonic() + 30  # the pool's workers die with their driver
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)
    again = run_sweep(LONGER, out, engine="local", workers=2, report=False, **QUIET)
    assert again.ran == 12 - len(kept)
    ids = [r["id"] for r in read_lines(out)]
    assert len(ids) == len(set(ids)) == 12
    assert results(again.records) == results(reference.records)


def test_ctrl_c_keeps_finished_trials_and_resumes(reference, tmp_path):
    out = tmp_path / "s"
    proc = start_cli("sweep", *LONGER_FLAGS, "--workers", "1", "--out", str(out))
    wait_for_lines(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "finished trials are kept in" in err
    assert "Traceback" not in err
    kept = read_lines(out)
    assert 2 <= len(kept) < 12
    again = run_sweep(LONGER, out, engine="inline", report=False, **QUIET)
    assert again.ran == 12 - len(kept)
    assert results(again.records) == results(reference.records)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = require_dask()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster:  # fmt: skip
        yield cluster


def test_dask_local_cluster_gives_the_pools_results(reference, tmp_path):
    require_dask()
    run = run_sweep(LONGER, tmp_path, engine="dask", workers=2, report=False, **QUIET)
    assert run.ran == 12
    assert results(run.records) == results(reference.records)
    assert {r["pid"] for r in run.records} - {os.getpid()}  # ran in the cluster's processes


def test_a_dask_worker_killed_mid_sweep_costs_only_a_rerun(reference, tmp_path, dask_cluster):
    from distributed import Client

    out = tmp_path / "s"
    killed = []

    def kill_a_worker():
        wait_for_lines(out, 1)
        with Client(dask_cluster.scheduler_address) as client:
            pids = client.run(os.getpid)
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    run = run_sweep(LONGER, out, scheduler=dask_cluster.scheduler_address, report=False, **QUIET)
    killer.join(timeout=60)
    assert killed, "no worker was killed"
    assert not alive(killed[0])
    assert run.ran == 12
    assert all(r["status"] == "ok" for r in run.records)
    ids = [r["id"] for r in read_lines(out)]
    assert len(ids) == len(set(ids)) == 12
    assert results(run.records) == results(reference.records)
