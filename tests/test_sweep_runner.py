"""The sweep's driver and store: a small sweep end to end, trials as an independent fit computes
them, bitwise the same results for any pool size and order, resumption that runs exactly the
missing trials, failed and diverged trials recorded while the sweep goes on."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sweep_helpers import SMALL, read_lines, results

from pyreg.study.definition import ModelSpec, build_pyreg, scale_images
from pyreg.study.sweep import run_sweep
from pyreg.study.sweep import trial as trial_mod
from pyreg.study.sweep.data import SPLIT_SEED
from pyreg.study.sweep.spec import SweepSpec

QUIET = {"progress": False, "say": lambda *a: None}


@pytest.fixture(scope="module")
def inline_run(tmp_path_factory):
    """The small sweep, one trial at a time in this process: the reference the others must equal."""
    out = tmp_path_factory.mktemp("inline")
    return run_sweep(SMALL, out, engine="inline", **QUIET)


def test_small_sweep_writes_every_output(inline_run):
    out = inline_run.out
    assert inline_run.ran == 8
    lines = read_lines(out)
    assert len(lines) == 8
    assert len({r["id"] for r in lines}) == 8
    for r in lines:
        assert r["status"] == "ok", r["reason"]
        assert set(r["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy", "train_eval_loss",
                                     "train_eval_accuracy"}  # fmt: skip
        assert all(len(v) == 2 for v in r["history"].values())
        m = r["metrics"]
        assert m["gap"] == pytest.approx(m["train_accuracy"] - m["val_accuracy"])
        assert m["train_accuracy"] == r["history"]["train_eval_accuracy"][-1]
        assert m["val_accuracy"] == r["history"]["val_accuracy"][-1]
        assert 0.3 < m["test_accuracy"] <= 1.0
        assert len(m["kernel_norms"]) == 2
        assert r["threads"] == 1
        assert r["pyreg"]
        assert r["finished"]
    for name in ("results.csv", "report.md", "heatmap_val_accuracy.png", "heatmap_gap.png",
                 "learning_curves.png", "sweep.json"):  # fmt: skip
        assert (out / name).is_file(), name
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 8
    rows = inline_run.rows
    assert len(rows) == 8
    assert {row["l2"] for row in rows} == {0.0, 0.001}


def test_a_trial_is_the_fit_it_describes(inline_run):
    """One record against an independent fit: the split recomputed here, the model from the study's
    definition, the metrics from evaluate."""
    from pyreg.datasets import mnist

    rec = next(
        r
        for r in inline_run.records
        if r["config"]["l2"] == 0.001 and r["config"]["dropout"] == 0.5
    )
    c = rec["config"]
    (x, y), (xt, yt) = mnist.load_data()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    val, pool = order[:500], order[500:]
    xtr, ytr = scale_images(x[pool[: c["train_size"]]], flat=True), y[pool[: c["train_size"]]]
    xv, yv = scale_images(x[val], flat=True), y[val]
    model = build_pyreg(ModelSpec(units=32, l2=0.001, dropout=0.5), c["seed"], input_shape=(784,))
    h = model.fit(xtr, ytr, epochs=2, batch_size=32, validation_data=(xv, yv), verbose=0, threads=1)
    assert rec["history"]["val_accuracy"] == h.history["val_accuracy"]
    assert rec["history"]["loss"] == h.history["loss"]
    assert rec["metrics"]["train_accuracy"] == model.evaluate(xtr, ytr, verbose=0)[1]
    test_loss, test_acc = model.evaluate(scale_images(xt, flat=True), yt, verbose=0)
    assert rec["metrics"]["test_accuracy"] == test_acc
    assert rec["metrics"]["test_loss"] == test_loss
    assert rec["metrics"]["kernel_norms"][0] == pytest.approx(
        float(np.linalg.norm(model.get_weights()[0]))
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_results_are_bitwise_the_same_in_a_pool_of_any_size(inline_run, tmp_path, workers):
    run = run_sweep(SMALL, tmp_path, engine="local", workers=workers, report=False, **QUIET)
    assert run.ran == 8
    assert results(run.records) == results(inline_run.records)


def test_order_and_threads_do_not_change_results(inline_run, tmp_path):
    """Half the grid first (another order of trials), two threads a trial, then the rest."""
    half = dict(SMALL, l2=[0.001])
    first = run_sweep(half, tmp_path, engine="inline", threads_per_trial=2, report=False, **QUIET)
    assert first.ran == 4
    rest = run_sweep(SMALL, tmp_path, engine="inline", report=False, **QUIET)
    assert rest.ran == 4
    assert results(rest.records) == results(inline_run.records)


def test_rerun_runs_only_missing_trials_and_an_extended_grid_only_new_cells(inline_run, tmp_path):
    lines = (inline_run.out / "trials.jsonl").read_text().splitlines()
    (tmp_path / "trials.jsonl").write_text("\n".join(lines[:5]) + "\n")
    (tmp_path / "sweep.json").write_text((inline_run.out / "sweep.json").read_text())
    again = run_sweep(SMALL, tmp_path, engine="inline", report=False, **QUIET)
    assert again.ran == 3
    assert results(again.records) == results(inline_run.records)
    assert run_sweep(SMALL, tmp_path, engine="inline", report=False, **QUIET).ran == 0
    wider = run_sweep(
        dict(SMALL, dropout=[0.0, 0.5, 0.25]), tmp_path, engine="inline", report=False, **QUIET
    )
    assert wider.ran == 2 * 1 * 2  # the new rate for each λ and seed
    ids = [r["id"] for r in read_lines(tmp_path)]
    assert len(ids) == len(set(ids)) == 12


def test_a_truncated_last_line_is_detected_and_its_trial_rerun(inline_run, tmp_path):
    text = (inline_run.out / "trials.jsonl").read_text()
    (tmp_path / "trials.jsonl").write_text(text[: len(text) - 40])  # a killed driver's half line
    (tmp_path / "sweep.json").write_text((inline_run.out / "sweep.json").read_text())
    with pytest.warns(RuntimeWarning, match="last line was cut short"):
        again = run_sweep(SMALL, tmp_path, engine="inline", report=False, **QUIET)
    assert again.ran == 1
    assert results(again.records) == results(inline_run.records)
    assert all(json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines())


def test_failed_and_diverged_trials_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = trial_mod._train_pyreg

    def flaky(record, config, data, threads):
        if config["seed"] == 1 and config["dropout"] == 0.5 and config["l2"] == 0:
            raise ValueError("simulated failure\nsecond line")
        return real(record, config, data, threads)

    monkeypatch.setattr(trial_mod, "_train_pyreg", flaky)
    spec = dict(SMALL, l2=[0.0, 1e38])  # λ = 1e38: the penalty overflows, the loss is Inf
    run = run_sweep(spec, tmp_path, engine="inline", **QUIET)
    by_status = {
        s: [r for r in run.records if r["status"] == s] for s in ("ok", "diverged", "failed")
    }
    assert len(run.records) == 8
    assert len(by_status["failed"]) == 1  # l2 = 0, dropout 0.5, seed 1
    assert by_status["failed"][0]["reason"] == "ValueError: simulated failure"
    assert by_status["failed"][0]["metrics"] is None
    assert len(by_status["diverged"]) == 4
    assert all("invalid loss" in r["reason"] for r in by_status["diverged"])
    assert len(by_status["ok"]) == 3
    report = (tmp_path / "report.md").read_text()
    assert "simulated failure" in report
    monkeypatch.setattr(trial_mod, "_train_pyreg", real)
    assert run_sweep(spec, tmp_path, engine="inline", report=False, **QUIET).ran == 0
    retried = run_sweep(spec, tmp_path, engine="inline", retry_failed=True, report=False, **QUIET)
    assert retried.ran == 5  # the failed one and the four diverged (they diverge again)
    assert sum(r["status"] == "ok" for r in retried.records) == 4
    ids = [r["id"] for r in read_lines(tmp_path)]
    assert len(ids) == len(set(ids)) == 8


def test_python_api_rows_and_dataframe(inline_run):
    pd = pytest.importorskip("pandas")
    frame = inline_run.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 8
    assert {"l2", "dropout", "seed", "val_accuracy", "test_accuracy", "gap", "status"} <= set(
        frame.columns
    )
    assert frame["val_accuracy"].tolist() == [
        r["metrics"]["val_accuracy"] for r in inline_run.records
    ]


def test_bad_api_arguments(tmp_path):
    with pytest.raises(ValueError, match="--threads-per-trial: expected a positive integer; got 0"):
        run_sweep(SMALL, tmp_path, threads_per_trial=0, **QUIET)
    with pytest.raises(ValueError, match="unknown axis 'lambda'"):
        run_sweep({"lambda": [1]}, tmp_path, **QUIET)
    with pytest.raises(ValueError, match="engine must be 'local', 'inline' or 'dask'"):
        run_sweep(dict(SMALL, l2=[0.0]), tmp_path / "e", engine="threads", **QUIET)
    assert SweepSpec.from_dict(SMALL).seeds == 2


def test_a_second_driver_on_the_same_folder_is_refused(tmp_path):
    from pyreg.study.sweep.store import TrialStore

    with TrialStore(tmp_path), pytest.raises(RuntimeError, match="another pyreg sweep is writing"):
        run_sweep(SMALL, tmp_path, engine="inline", **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrialStore(tmp_path).load() == {}
