"""Small sweeps for the sweep's tests: a few trials on a small subset, seconds each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, OUTSIDE

# 2 x 2 cells x 2 seeds = 8 trials of 2 epochs on 400 images (validation 500)
SMALL = {"l2": [0.0, 0.001], "dropout": [0.0, 0.5], "units": [32], "epochs": [2],
         "train_size": [400], "seeds": 2, "validation_size": 500}  # fmt: skip
SMALL_FLAGS = ["--l2", "0,0.001", "--dropout", "0,0.5", "--units", "32", "--epochs", "2",
               "--train-size", "400", "--seeds", "2", "--validation-size", "500"]  # fmt: skip

# what depends on where and when a trial ran, not on the trial
_CIRCUMSTANCES = ("wall_s", "host", "pid", "finished", "threads")


def results(records) -> dict:
    """id -> the record without where/when it ran: what must be bitwise the same everywhere."""
    return {r["id"]: {k: v for k, v in r.items() if k not in _CIRCUMSTANCES} for r in records}


def read_lines(out: Path) -> list[dict]:
    path = Path(out) / "trials.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pyreg_cli(*args, timeout=300, **kw):
    """The pyreg command in a subprocess (from outside the source tree)."""
    return subprocess.run([sys.executable, "-m", "pyreg", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=OUTSIDE, **kw)  # fmt: skip


def start_cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pyreg", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=OUTSIDE, **kw)  # fmt: skip


def require_dask():
    """Dask distributed for a test: in CI (CI=true) its absence fails the test, elsewhere skips it."""
    try:
        import distributed
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"Dask distributed is required in CI (the test extra installs it): {e}")
        pytest.skip(f"Dask distributed not installed ({e}); pip install 'pyreg[dask]'")
    return distributed
