"""``pyreg sweep``'s spec: every bad spec fails before any trial starts, with one clear line; a TOML
file and flags give the same grid."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import OUTSIDE

from pyreg.study import cli
from pyreg.study.sweep.spec import DEFAULT_AXES, SweepSpec, load_spec_file


def run_main(capsys, *args):
    try:
        status = cli.main(["sweep", *args])
    except SystemExit as e:  # argparse's own checks exit as the pyreg command does
        status = e.code
    err = capsys.readouterr().err.strip()
    return status, err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--l2", "-0.001"], "--l2: must be >= 0; got -0.001"),
        (["--l2", "nan"], "--l2: expected finite numbers; got 'nan'"),
        (["--l2", "x"], "--l2: expected numbers; got 'x'"),
        (["--dropout", "1"], "--dropout: a dropout rate must be in [0, 1); got 1"),
        (["--dropout", "-0.1"], "--dropout: a dropout rate must be in [0, 1); got -0.1"),
        (["--weight-decay", "-1"], "--weight-decay: must be >= 0; got -1"),
        (["--learning-rate", "0"], "--learning-rate: must be > 0; got 0"),
        (["--epochs", "0"], "--epochs: expected positive integers; got 0"),
        (["--batch-size", "-32"], "--batch-size: expected positive integers; got -32"),
        (["--units", "1.5"], "--units: expected positive integers; got '1.5'"),
        (["--units", "64,0"], "--units: expected positive integers; got 0"),
        (["--train-size", "0"], "--train-size: expected positive integers; got 0"),
        (
            ["--train-size", "55000"],
            "--train-size: mnist has 60000 training images, 10000 held out for validation, so at "
            "most 50000; got 55000",
        ),
        (
            ["--validation-size", "60000"],
            "--validation-size: mnist has 60000 training images; got 60000",
        ),
        (["--dataset", "cifar"], "--dataset: unknown data set 'cifar'; available: mnist"),
        (["--l2", ","], "--l2: no values given (the grid would be empty)"),
        (["--seeds", "0"], "argument --seeds: expected a positive integer; got 0"),
    ],
)
def test_bad_flags_fail_before_any_trial(capsys, tmp_path, flags, message):
    out = tmp_path / "sweep"
    status, err = run_main(capsys, *flags, "--out", str(out))
    assert status == 2
    assert message in err
    assert len(err.splitlines()) == 1
    assert not out.exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("l3 = [1]\n", "unknown key 'l3'; the axes are dataset, l2, dropout"),
        ("l2 = [0, 0.001\n", "is not a valid TOML spec"),
        ("[sweep]\ndropout = [0.5, 1.5]\n", "--dropout: a dropout rate must be in [0, 1); got 1.5"),
        ("[sweep]\nl2 = []\n", "--l2: no values given"),
        ("seeds = 'three'\n", "--seeds: expected a positive integer; got 'three'"),
        ("[sweep]\nl2 = [0]\n[other]\nx = 1\n", "put everything under one [sweep] table"),
    ],
)
def test_bad_spec_files_fail_before_any_trial(capsys, tmp_path, text, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    status, err = run_main(capsys, str(spec), "--out", str(tmp_path / "o"))
    assert status == 2
    assert message in err
    assert not (tmp_path / "o").exists()


def test_unreadable_spec_file(capsys, tmp_path):
    status, err = run_main(capsys, str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o"))
    assert status == 2
    assert "cannot read the spec file" in err


def test_out_holding_other_training_semantics_is_refused(capsys, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"format": "pyreg-sweep-v1", "semantics": {
        "trial": 1, "split_seed": 1, "validation_size": 5000}}))  # fmt: skip
    (out / "trials.jsonl").write_text("")
    status, err = run_main(capsys, "--l2", "0", "--dropout", "0", "--out", str(out))
    assert status == 2
    assert "holds a sweep with other training semantics" in err
    assert (out / "trials.jsonl").read_text() == ""


def test_spec_file_and_flags_give_one_grid(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("[sweep]\nl2 = [0, 1e-3, 1e-3]\ndropout = 0.5\nseeds = 2\nunits = [64, 128]\n")
    values = load_spec_file(spec)
    values["units"] = "32"  # a flag overrides the file
    s = SweepSpec.from_dict(values)
    assert s.axes["l2"] == [0.0, 0.001]  # repeats dropped, order kept
    assert s.axes["dropout"] == [0.5]
    assert s.axes["units"] == [32]
    assert s.axes["epochs"] == DEFAULT_AXES["epochs"]
    assert s.seeds == 2
    configs = s.configs()
    assert len(configs) == 2 * 1 * 1 * 2
    assert {c["seed"] for c in configs} == {0, 1}
    assert all(c["framework"] == "pyreg" for c in configs)


def test_default_grid_has_the_unregularised_net_and_both_remedies():
    s = SweepSpec()
    cells = s.cells()
    assert 0.0 in s.axes["l2"]
    assert 0.0 in s.axes["dropout"]
    assert any(c["l2"] > 0 and c["dropout"] > 0 for c in cells)
    assert s.seeds >= 3


def test_unreachable_scheduler_is_a_timeout_not_a_hang(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pyreg", "sweep", "--l2", "0", "--dropout", "0", "--epochs", "1",
         "--train-size", "100", "--seeds", "1", "--out", str(tmp_path / "o"),
         "--scheduler", "tcp://127.0.0.1:9", "--timeout", "3", "--no-progress"],
        capture_output=True, text=True, timeout=120, cwd=OUTSIDE,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no Dask scheduler answered at tcp://127.0.0.1:9 within 3 s" in proc.stderr
    assert time.perf_counter() - t0 < 60


def test_dask_missing_is_a_clear_error(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "from pyreg.study import cli\n"
        f"sys.exit(cli.main(['sweep', '--dask', '--l2', '0', '--dropout', '0', '--epochs', '1', "
        f"'--train-size', '100', '--seeds', '1', '--out', {str(tmp_path / 'o')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=OUTSIDE)  # fmt: skip
    assert proc.returncode == 2
    assert "pip install 'pyreg[dask]'" in proc.stderr
