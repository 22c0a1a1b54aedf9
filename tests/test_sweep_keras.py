"""``pyreg sweep --keras``: every cell trained in Keras too, and the report compares the two
frameworks cell by cell (TensorFlow-marked: runs in CI)."""

from __future__ import annotations

import pytest
from sweep_helpers import read_lines

from pyreg.study.sweep import run_sweep

pytestmark = pytest.mark.keras


def test_keras_trials_and_the_cell_by_cell_comparison(keras_mod, tmp_path):
    spec = {"l2": [0.0], "dropout": [0.0, 0.5], "units": [32], "epochs": [2], "train_size": [1000],
            "seeds": 2, "validation_size": 1000, "keras": True}  # fmt: skip
    run = run_sweep(spec, tmp_path, engine="inline", progress=False, say=lambda *a: None)
    assert run.ran == 8
    keras = [r for r in read_lines(tmp_path) if r["config"]["framework"] == "keras"]
    assert len(keras) == 4
    for r in keras:
        assert r["status"] == "ok", r["reason"]
        assert len(r["history"]["val_accuracy"]) == 2
        assert len(r["history"]["train_eval_accuracy"]) == 2
        assert 0.6 < r["metrics"]["val_accuracy"] <= 1.0
        assert r["metrics"]["gap"] == pytest.approx(
            r["metrics"]["train_accuracy"] - r["metrics"]["val_accuracy"]
        )
    pyreg_ids = {r["id"] for r in run.records if r["config"]["framework"] == "pyreg"}
    assert len(pyreg_ids) == 4
    assert pyreg_ids.isdisjoint(r["id"] for r in keras)
    # the same cells reach the same accuracy in both frameworks, within a few points on 1000 images
    for cell_dropout in (0.0, 0.5):
        accs = {fw: [r["metrics"]["val_accuracy"] for r in run.records
                     if r["config"]["framework"] == fw and r["config"]["dropout"] == cell_dropout]
                for fw in ("pyreg", "keras")}  # fmt: skip
        assert abs(sum(accs["pyreg"]) / 2 - sum(accs["keras"]) / 2) < 0.05
    report = (tmp_path / "report.md").read_text()
    assert "pyreg against Keras" in report
