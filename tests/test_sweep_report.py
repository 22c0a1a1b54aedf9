"""The sweep's report (pyreg.study.sweep.report): results.csv, the per-cell aggregation, the
figures and report.md, from synthetic trial records with known values."""

from __future__ import annotations

import csv
import hashlib
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from pyreg.study.sweep.records import AXES, METRICS
from pyreg.study.sweep.report import cells, spearman, write_report

L2S = (0.0, 1e-4, 1e-3)
RATES = (0.0, 0.3)
SEEDS = (0, 1, 2)
FIGURES = (
    "heatmap_val_accuracy.png",
    "heatmap_gap.png",
    "val_accuracy_vs_l2.png",
    "val_accuracy_vs_dropout.png",
    "learning_curves.png",
)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def val_of(l2, rate, seed, framework="pyreg"):
    """A known validation accuracy: best at l2=1e-4, rate=0.3; seeds spread by 0.002."""
    base = 0.95 + 0.01 * (l2 == 1e-4) + 0.005 * (l2 == 1e-3) + 0.006 * (rate == 0.3)
    return base + 0.002 * seed


def record(
    l2=0.0, dropout=0.0, seed=0, *, framework="pyreg", status="ok", val=None, epochs=3, **config
):
    """One trial record as the sweep writes it (pyreg/study/sweep/records.py)."""
    cfg = {"framework": framework, "dataset": "mnist", "l2": l2, "dropout": dropout}
    cfg |= {"weight_decay": 0.0, "units": 128, "epochs": epochs, "train_size": 1000}
    cfg |= {"batch_size": 32, "learning_rate": 0.001, "seed": seed, **config}
    rid = hashlib.sha256(repr(sorted(cfg.items())).encode()).hexdigest()[:16]
    rec = {"id": rid, "config": cfg, "status": status, "wall_s": 1.5, "threads": 2}
    rec |= {
        "host": "h",
        "pid": 1,
        "pyreg": "0.1",
        "isa": "avx2",
        "finished": "2024-01-01T00:00:00Z",
    }
    if status == "failed":
        return rec | {"reason": "ValueError: boom", "history": {}, "metrics": None}
    v = val_of(l2, dropout, seed) if val is None else val
    train = v + 0.03 - 0.5 * dropout * 0.02 - 10 * l2  # a gap that shrinks with regularisation
    curve = np.linspace(0.8, 1.0, epochs)
    history = {
        "loss": list(1 - curve),
        "accuracy": list(curve * train),
        "val_loss": list(1 - curve),
    }
    history |= {"val_accuracy": list(curve * v), "train_eval_accuracy": list(curve * train)}
    history |= {"train_eval_loss": list(1 - curve)}
    if status == "diverged":
        return rec | {"reason": "loss became NaN at epoch 2", "history": history, "metrics": None}
    metrics = {"val_accuracy": v, "val_loss": 0.1, "train_accuracy": train, "train_loss": 0.05}
    metrics |= {
        "gap": train - v,
        "test_accuracy": v - 0.001,
        "test_loss": 0.11,
        "kernel_norms": [12.5, 3.0],
    }
    return rec | {"reason": None, "history": history, "metrics": metrics}


def grid(**kw):
    return [record(l2, p, s, **kw) for l2, p, s in itertools.product(L2S, RATES, SEEDS)]


def test_csv_has_one_row_per_trial(tmp_path):
    recs = [*grid(), record(1e-3, 0.3, 7, status="failed"), record(0.0, 0.3, 8, status="diverged")]
    write_report(tmp_path, recs)
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(recs)
    for key in (
        "id",
        "status",
        "reason",
        *AXES,
        "seed",
        *METRICS,
        "hidden_kernel_norm",
        "epochs_run",
    ):
        assert key in rows[0]
    by_id = {r["id"]: r for r in rows}
    first = by_id[recs[0]["id"]]
    assert float(first["val_accuracy"]) == recs[0]["metrics"]["val_accuracy"]
    assert float(first["hidden_kernel_norm"]) == 12.5
    assert first["epochs_run"] == "3"
    assert first["host"] == "h"
    assert first["reason"] == ""
    failed = by_id[recs[-2]["id"]]
    assert failed["status"] == "failed"
    assert failed["reason"] == "ValueError: boom"
    assert failed["val_accuracy"] == failed["hidden_kernel_norm"] == ""
    assert failed["epochs_run"] == "0"


def test_cells_aggregate_seeds():
    recs = [*grid(), record(1e-3, 0.3, 7, status="failed"), record(0.0, 0.3, 8, status="diverged")]
    cs = cells(recs)
    assert len(cs) == len(L2S) * len(RATES)
    for c in cs:
        vals = np.array([val_of(c["l2"], c["dropout"], s) for s in SEEDS])
        assert c["n_ok"] == 3
        assert c["seeds"] == list(SEEDS)
        assert c["val_accuracy"]["mean"] == pytest.approx(vals.mean())
        assert c["val_accuracy"]["std"] == pytest.approx(vals.std(ddof=1))
        assert c["val_accuracy"]["min"] == pytest.approx(vals.min())
        assert c["val_accuracy"]["max"] == pytest.approx(vals.max())
        assert c["test_accuracy"]["mean"] == pytest.approx(vals.mean() - 0.001)
        gaps = [r["metrics"]["gap"] for r in recs if r["config"]["l2"] == c["l2"]
                and r["config"]["dropout"] == c["dropout"] and r["status"] == "ok"]  # fmt: skip
        assert c["gap"]["mean"] == pytest.approx(np.mean(gaps))
    counts = {(c["l2"], c["dropout"]): (c["n_failed"], c["n_diverged"]) for c in cs}
    assert counts[(1e-3, 0.3)] == (1, 0)
    assert counts[(0.0, 0.3)] == (0, 1)
    assert counts[(0.0, 0.0)] == (0, 0)
    one = cells([record(1e-4, 0.3, 0)])[0]
    assert one["val_accuracy"]["std"] is None
    assert one["val_accuracy"]["n"] == 1


def test_report_figures_and_text(tmp_path):
    recs = [*grid(), record(1e-3, 0.3, 7, status="failed")]
    summary = write_report(
        tmp_path, recs, title="Test sweep", command="pyreg sweep --l2 0,1e-4,1e-3"
    )
    for name in FIGURES:
        width, height = png_size(tmp_path / name)
        assert width > 300
        assert height > 200
        assert f"]({name})" in (tmp_path / "report.md").read_text()
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Test sweep")
    assert "pyreg sweep --l2 0,1e-4,1e-3" in report
    best = summary["best"][0]
    assert (best["l2"], best["dropout"]) == (1e-4, 0.3)
    assert "The best cell on validation is λ = 0.0001, dropout 0.3" in report
    # unregularised: mean over seeds 0.95 + 0.002 = 95.20%; best beats it by 1.60 pp
    assert "The unregularised net (λ = 0, dropout 0) reaches 95.20 ± 0.20%" in report
    assert "by +1.60 pp" in report
    # the best combination (1e-4, 0.3) beats the best single remedy (1e-4, 0) by 0.60 pp
    assert "beats the best single remedy (λ = 0.0001, dropout 0): +0.60 pp" in report
    assert "ValueError: boom" in report
    assert "validation set, held out from the training data" in report
    assert "never used to choose" in report
    assert "Keras" not in report
    assert summary["trials"] == len(recs)
    assert summary["by_status"] == {"ok": 18, "diverged": 0, "failed": 1}
    table = [line for line in report.splitlines() if line.startswith("| 0.0001 | 0.3 |")]
    assert table == [
        "| 0.0001 | 0.3 | 96.80 ± 0.20 | 96.70 ± 0.20 | " + table[0].split(" | ")[4] + " | 3 |"
    ]


def test_one_seed_has_no_plus_minus(tmp_path):
    recs = [record(l2, p, 0) for l2, p in itertools.product(L2S, RATES)]
    write_report(tmp_path, recs)
    report = (tmp_path / "report.md").read_text()
    assert "±" not in report
    assert "| 0.0001 | 0.3 | 96.60 | 96.50 |" in report
    assert "one seed in a cell" in report


def test_partial_grid_and_single_value_axes(tmp_path):
    recs = [r for r in grid() if (r["config"]["l2"], r["config"]["dropout"]) != (1e-3, 0.0)]
    recs += [record(1e-3, 0.0, 0, status="diverged")]  # a cell with no ok trial
    summary = write_report(tmp_path / "partial", recs)
    assert set(summary["figures"]) == set(FIGURES)
    for name in FIGURES:
        png_size(tmp_path / "partial" / name)
    only_l2 = [record(l2, 0.3, s) for l2, s in itertools.product(L2S, SEEDS)]
    summary = write_report(tmp_path / "l2", only_l2)
    assert png_size(tmp_path / "l2" / "heatmap_val_accuracy.png")[0] > 200
    assert "learning_curves.png" in summary["figures"]  # dropout-only and combination cells
    single = write_report(tmp_path / "one", [record(1e-4, 0.0, 0)])
    assert single["best"][0]["l2"] == 1e-4
    assert (tmp_path / "one" / "heatmap_gap.png").is_file()
    empty = write_report(tmp_path / "none", [record(0.0, 0.0, 0, status="failed")])
    assert empty["figures"] == {}
    assert "ValueError: boom" in (tmp_path / "none" / "report.md").read_text()


def test_other_axes_give_panels(tmp_path):
    recs = [record(l2, p, 0, units=u) for l2, p, u in itertools.product(L2S, RATES, range(1, 9))]
    summary = write_report(tmp_path, recs)
    info = summary["figures"]["heatmap_val_accuracy.png"]
    assert info["panels"] == [f"units {u}" for u in range(1, 7)]
    assert info["left_out"] == ["units 7", "units 8"]
    assert (
        "Panels left out (more than 6): units 7; units 8." in (tmp_path / "report.md").read_text()
    )


def test_failed_list_is_capped(tmp_path):
    recs = [record(1e-4, 0.0, s, status="failed") for s in range(10, 35)] + grid()
    write_report(tmp_path, recs)
    report = (tmp_path / "report.md").read_text()
    assert report.count("ValueError: boom") == 20
    assert "… and 5 more" in report


def test_keras_cell_by_cell(tmp_path):
    keras_vals = {}
    recs = grid()
    for l2, p, s in itertools.product(L2S, RATES, SEEDS):
        v = val_of(l2, p, s) - 0.001  # pyreg = keras + 0.001 everywhere...
        if (l2, p) == (1e-3, 0.0):
            v -= 0.02  # ...but one cell, where the difference is far outside the seed spread
        keras_vals.setdefault((l2, p), []).append(v)
        recs.append(record(l2, p, s, framework="keras", val=v))
    summary = write_report(tmp_path, recs)
    report = (tmp_path / "report.md").read_text()
    assert "## pyreg against Keras, cell by cell" in report
    rows = [line for line in report.splitlines() if line.startswith("| λ = ")]
    assert len(rows) == len(L2S) * len(RATES)
    row = next(r for r in rows if r.startswith("| λ = 0.0001, dropout 0.3 |"))
    cols = [c.strip() for c in row.strip("|").split("|")]
    assert cols[3] == "+0.10"
    se = np.sqrt(2 * np.var([0.0, 0.002, 0.004], ddof=1) / 3) * 100
    assert cols[4] == f"{se:.2f}"
    assert cols[5] == "within 2 SE"
    far = next(r for r in rows if r.startswith("| λ = 0.001, dropout 0 |"))
    assert far.rstrip(" |").endswith("outside")
    assert summary["keras"]["within_2se"] == 5
    assert summary["keras"]["same_best"] is True
    keys = sorted(keras_vals)
    p_means = np.array([np.mean([val_of(l2, p, s) for s in SEEDS]) for l2, p in keys])
    k_means = np.array([np.mean(keras_vals[k]) for k in keys])
    rp, rk = p_means.argsort().argsort(), k_means.argsort().argsort()
    rho = np.corrcoef(rp, rk)[0, 1]
    assert rho < 1  # the shifted cell changes the ranking
    assert summary["keras"]["spearman"] == pytest.approx(rho)
    assert f"Spearman rho = {rho:.2f}" in report
    # the figures stay pyreg's: the best cell is pyreg's
    assert summary["best"][0]["framework"] == "pyreg"


def test_spearman_against_numpy_ranks():
    rng = np.random.default_rng(0)
    a, b = rng.random(12), rng.random(12)
    expected = np.corrcoef(a.argsort().argsort(), b.argsort().argsort())[0, 1]
    assert spearman(a, b) == pytest.approx(expected)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(
        np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1]
    )
    assert spearman([1.0], [2.0]) is None


def test_retried_trial_counts_once():
    recs = [record(1e-4, 0.3, 0, status="failed"), record(1e-4, 0.3, 0)]
    assert recs[0]["id"] == recs[1]["id"]
    (cell,) = cells(recs)
    assert (cell["n_ok"], cell["n_failed"]) == (1, 0)
