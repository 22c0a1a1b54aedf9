"""The harness: ``pyreg compare`` and ``pyreg bench-report`` run for real and their outputs are
checked; the bench suites run in a fast mode so that they cannot rot."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OUTSIDE

from pyreg.study import plots
from pyreg.study.compare import Run

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "pyreg", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=OUTSIDE)  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_outputs(out: Path, models, frameworks, epochs, seeds):
    result = json.loads((out / "results.json").read_text())
    assert result["config"]["epochs"] == epochs
    assert result["config"]["seeds"] == seeds
    assert len(result["runs"]) == len(models) * len(frameworks) * seeds
    for run in result["runs"]:
        assert run["framework"] in frameworks
        assert run["model"] in models
        assert (
            len(run["history"]["val_accuracy"])
            == epochs
            == len(run["epoch_times"])
            == len(run["kernel_norms"])
        )
        assert 0.5 < run["final_val_accuracy"] <= 1.0
        assert all(t > 0 for t in run["epoch_times"])
        assert all(n > 0 for n in run["kernel_norms"])
    for s in result["summary"]:
        assert s["model"] in models
        assert s["pyreg_epoch_s"] > 0
        if "keras" in frameworks:
            assert s["speedup"] > 1.0
            assert abs(s["val_acc_diff"]) < 0.1
        else:
            assert s["speedup"] is None
    env = result["environment"]
    assert env["build"]["isa_active"]
    assert env["python"]
    assert env["date"]
    assert env["pyreg_threads"] >= 1
    curves = len(models) * len(frameworks)
    assert result["figures"]["val_accuracy.png"] == {"curves": curves, "axes": 1}
    assert result["figures"]["gap_and_norm.png"] == {"curves": 2 * curves, "axes": 2}
    for name in ("val_accuracy.png", "gap_and_norm.png"):
        width, height = png_size(out / name)
        assert width > 300
        assert height > 200
    report = (out / "report.md").read_text()
    assert "![validation accuracy](val_accuracy.png)" in report
    assert "gap_and_norm.png" in report
    for model in models:
        assert any(
            model_title in report
            for model_title in (model, model.capitalize(), "L2", "Dropout", "None")
        )
    return result


def test_compare_quick_without_keras(tmp_path):
    out = tmp_path / "results"
    proc = run_cli(
        "compare",
        "--quick",
        "--no-keras",
        "--epochs",
        "2",
        "--models",
        "l2,none,both",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "pyreg l2 seed 0: epoch 2/2" in proc.stdout  # progress while it runs
    assert "| model" in proc.stdout
    assert "written to" in proc.stdout
    check_outputs(out, ["l2", "none", "both"], ["pyreg"], epochs=2, seeds=1)
    # one seed: no "± 0.00" as if there were no seed-to-seed noise, and a word on how large it is
    assert "±" not in proc.stdout
    assert "varies across seeds by about 0.08-0.37 pp" in proc.stdout
    assert "varies across seeds" in (out / "report.md").read_text()


@pytest.mark.keras
def test_compare_quick_with_keras_and_seeds(keras_mod, tmp_path):
    out = tmp_path / "results"
    proc = run_cli("compare", "--quick", "--epochs", "2", "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = check_outputs(out, ["l2", "dropout"], ["pyreg", "keras"], epochs=2, seeds=2)
    assert result["environment"]["tensorflow"]


def test_readme_block_is_rewritten_by_the_tool(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    proc = run_cli("compare", "--quick", "--no-keras", "--epochs", "1", "--models", "dropout", "--out",
                   str(tmp_path / "r"), "--readme", str(readme))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:start -->\n")
    assert text.endswith("<!-- results:end -->\noutro\n")
    assert "old" not in text
    assert "| Dropout (0.5)" in text
    assert "val_accuracy.png" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--epochs", "0"], "expected a positive integer; got 0"),
        (["compare", "--models", "l3"], "choose from l2, dropout, none, both"),
        (["compare", "--threads", "-1"], "expected an integer >= 0; got -1"),
        (
            ["bench-report", "/nonexistent/results.json"],
            "no benchmark results at /nonexistent/results.json",
        ),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def _fake_benchmark_json(path: Path, disabled=False):
    def bench(group, impl, median, extra=None):
        entry = {"group": group, "name": f"test[{impl}]", "fullname": f"bench::test[{impl}]", "params": {"impl": impl},
                 "param": impl, "extra_info": extra or {}, "options": {}}  # fmt: skip
        if not disabled:
            entry["stats"] = {"min": median * 0.9, "max": median * 1.2, "mean": median, "stddev": 0.0, "rounds": 5,
                              "median": median, "iqr": median * 0.05, "q1": median, "q3": median, "iterations": 1,
                              "data": [median] * 5}  # fmt: skip
        return entry

    data = {"machine_info": {}, "commit_info": {}, "datetime": "2026-11-26", "version": "5.3.1", "benchmarks": [
        bench("epoch l2 model", "keras", 4.8), bench("epoch l2 model", "numpy", 0.9),
        bench("epoch l2 model", "pyreg", 0.2, {"val_accuracy": 0.97, "phases_us_per_step": [
            {"forward_1": 1.5, "backward_0": 36.0, "row_scans": 0.0, "wait": 1.0},
            {"forward_1": 0.0, "backward_0": 35.0, "row_scans": 5.5, "wait": 2.5}]}),
        bench("epoch l2 model", "pyreg-1thread", 0.3, {"phases_us_per_step": "not a profile"}),
        bench("dense_forward 32x784x128 (mnist)", "numpy", 50e-6),
        bench("dense_forward 32x784x128 (mnist)", "pyreg", 25e-6, {"gflops": 200.0}),
    ]}  # fmt: skip
    path.write_text(json.dumps(data))


def test_bench_report_charts_and_table(tmp_path):
    results = tmp_path / "results.json"
    _fake_benchmark_json(results)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:start -->\n<!-- bench:end -->\n")
    proc = run_cli(
        "bench-report", str(results), "--out", str(tmp_path / "rep"), "--readme", str(readme)
    )
    assert proc.returncode == 0, proc.stderr
    width, height = png_size(tmp_path / "rep" / "speedup.png")
    assert width > 300
    assert height > 100
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| epoch l2 model | pyreg | 200 ms | 10 ms | 5 | 24.0x | 4.5x | — | 0.9700 |" in md
    assert "| dense_forward 32x784x128 (mnist) | pyreg | 25 µs |" in md
    assert "200.0 GFLOP/s" in md
    assert "| epoch l2 model | pyreg | 200 ms | 24.0x | 4.5x |" in readme.read_text()
    assert "dense_forward" not in readme.read_text()  # the README shows the end-to-end rows only
    # the compact record: every benchmark, none of the raw rounds
    record = json.loads((tmp_path / "rep" / "bench.json").read_text())
    assert len(record["benchmarks"]) == 6
    assert all("data" not in b["stats"] and b["stats"]["median"] > 0 for b in record["benchmarks"])
    # the profiled epochs, per thread and phase; a malformed profile is left out, not rendered
    profile = md[md.index("## Where the time goes") :]
    assert "### epoch l2 model, pyreg\n" in profile
    assert "| phase (µs per step) | thread 0 | thread 1 |" in profile
    assert "| backward_0 | 36.0 | 35.0 |" in profile
    assert "| row_scans | 0.0 | 5.5 |" in profile
    assert "| total | 38.5 | 43.0 |" in profile
    assert "pyreg-1thread" not in profile


def test_bench_report_refuses_files_without_timings(tmp_path):
    results = tmp_path / "disabled.json"
    _fake_benchmark_json(results, disabled=True)
    proc = run_cli("bench-report", str(results))
    assert proc.returncode == 2
    assert "holds no timed benchmarks" in proc.stderr
    (tmp_path / "bad.json").write_text("{not json")
    proc = run_cli("bench-report", str(tmp_path / "bad.json"))
    assert proc.returncode == 2
    assert "is not a JSON file" in proc.stderr


def test_plot_functions_draw_one_curve_per_model_and_framework(tmp_path):
    runs = [Run(fw, m, s, {"accuracy": [0.9, 0.95], "val_accuracy": [0.91, 0.93]}, [1.0, 1.0], [10.0, 11.0])
            for fw in ("pyreg", "keras") for m in ("l2", "dropout", "none") for s in (0, 1)]  # fmt: skip
    assert plots.plot_val_accuracy(runs, tmp_path / "a.png") == {"curves": 6, "axes": 1}
    assert plots.plot_gap_and_norm(runs, tmp_path / "b.png") == {"curves": 12, "axes": 2}


@pytest.mark.slow
def test_bench_suites_run_in_fast_mode():
    """The benchmark suites, each benchmark once on small data, so that they cannot rot (CI)."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "bench"), "--benchmark-disable", "--bench-quick",
                           "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=1200, cwd=OUTSIDE,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    if os.environ.get("CI", "").lower() == "true":
        assert "skipped" not in summary  # keras baselines included in CI
