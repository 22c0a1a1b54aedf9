"""The trainer's per-thread phase clock (pyreg.profiling, Mlp::set_profiling in cpp/mlp.h): which
thread spends time in which phase, totals bounded by the wall clock, reset and off, and training
unchanged by it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_sweep import build
from test_sweep import sparse_data as sweep_data

from pyreg.profiling import format_profile, profile_fit

PHASES_2_LAYERS = ["setup", "forward_0", "forward_1", "loss", "backward_0", "backward_1", "optimizer",
                   "report", "column_bits", "row_scans", "prefetch", "wait"]  # fmt: skip


def sparse_data(n=1024):
    """80% exact zeros (test_sweep's data), so that fit takes the sparse path and its narrow-top steps."""
    return sweep_data(n, features=96, classes=4)


def study_like(dropout=True):
    """The study's shape on 96 features: Dense(128, relu) [-> Dropout(0.5)] -> Dense(4, softmax), Adam."""
    return build(96, 128, dropout=0.5 if dropout else None, classes=4)


def test_two_threads_split_the_step_as_documented():
    x, y = sparse_data()
    m = study_like()
    m.build((None, x.shape[1]))
    m._mlp.set_profiling(True)
    t0 = time.perf_counter()
    m.fit(x, y, batch_size=32, epochs=2, verbose=0, threads=2)
    wall = time.perf_counter() - t0
    prof = m._mlp.profile()
    m._mlp.set_profiling(False)
    assert len(prof) == 2
    for thread in prof:
        assert list(thread) == PHASES_2_LAYERS
        assert all(s >= 0.0 for s in thread.values())
        # each thread's own marks: never more than the fit
        assert 0.0 < sum(thread.values()) <= wall
        assert thread["backward_0"] > 0.0  # both threads sweep their columns of the first layer
    master, helper = prof
    # thread 0 runs the output layer and (with one helper) builds the column bitmaps; the helper
    # scans the next batch and prefetches the one after
    for phase in ("forward_1", "backward_1", "column_bits"):
        assert master[phase] > 0, phase
    for phase in ("row_scans", "prefetch"):
        assert helper[phase] > 0, phase
    assert master["row_scans"] == master["prefetch"] == helper["column_bits"] == 0.0


def test_one_thread_does_both_parts_and_never_prefetches_apart():
    x, y = sparse_data()
    phases = profile_fit(study_like(), x, y, threads=1)
    assert len(phases) == 1
    (only,) = phases
    for phase in ("forward_1", "column_bits", "row_scans"):
        assert only[phase] > 0, phase
    assert only["prefetch"] == 0.0  # one thread spreads it over the sweep (sweep.h)


def test_turning_on_resets_and_off_empties():
    x, y = sparse_data()
    m = study_like()
    m.build((None, x.shape[1]))
    assert m._mlp.profile() == []
    m._mlp.set_profiling(True)
    m.fit(x, y, epochs=1, verbose=0, threads=2)
    assert sum(m._mlp.profile()[0].values()) > 0
    m._mlp.set_profiling(True)  # a fresh clock
    assert m._mlp.profile() == []
    m.fit(x, y, epochs=1, verbose=0, threads=1)
    assert len(m._mlp.profile()) == 1
    m._mlp.set_profiling(False)
    assert m._mlp.profile() == []


@pytest.mark.parametrize("threads", [1, 2])
def test_the_clock_does_not_change_training(threads):
    x, y = sparse_data()
    plain = study_like()
    plain.fit(x, y, epochs=2, verbose=0, threads=threads)
    timed = study_like()
    profile_fit(timed, x, y, epochs=2, threads=threads)
    for a, b in zip(plain.get_weights(), timed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert timed._mlp.profile() == []  # profile_fit turned it off again


def test_profile_fit_reports_microseconds_per_step():
    x, y = sparse_data(n=640)
    m = study_like(dropout=False)
    t0 = time.perf_counter()
    phases = profile_fit(m, x, y, epochs=1, batch_size=64, threads=2)
    wall_us_per_step = (time.perf_counter() - t0) / 10 * 1e6
    assert len(phases) == 2
    assert 0.0 < sum(phases[0].values()) <= wall_us_per_step
    table = format_profile(phases)
    assert table.splitlines()[0] == "| phase (µs per step) | thread 0 | thread 1 |"
    assert "| backward_0 |" in table
    assert table.splitlines()[-1].startswith("| total |")
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:-1]]
    assert names == [
        n for n in phases[0] if phases[0][n] > 0 or phases[1][n] > 0
    ]  # only phases that took time


def test_profile_fit_rejects_bad_arguments():
    x, y = sparse_data(n=64)
    with pytest.raises(TypeError, match=r"model must be a pyreg\.models\.Sequential"):
        profile_fit(object(), x, y)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        profile_fit(study_like(), x, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        profile_fit(study_like(), x, y, batch_size=2.5)
    with pytest.raises(ValueError, match="phases is empty"):
        format_profile([])


def test_the_clock_is_off_again_when_fit_raises():
    x, y = sparse_data(n=64)
    m = study_like()
    with pytest.raises(ValueError, match="same number of samples"):
        profile_fit(m, x, y[:10])  # fit's own check: x and y differ in length
    assert m._mlp.profile() == []


def test_more_helpers_share_the_bitmaps_and_scans():
    x, y = sparse_data()
    phases = profile_fit(study_like(), x, y, threads=3)
    assert len(phases) == 3
    master, *helpers = phases
    assert master["column_bits"] == master["row_scans"] == 0.0
    for rank, helper in enumerate(helpers, start=1):
        for phase in ("column_bits", "row_scans", "prefetch"):
            assert helper[phase] > 0, (rank, phase)
