"""The examples run as written (a smoke run of each on a small subset)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, OUTSIDE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_dropout_maxnorm_on_fashion_mnist():
    from pyreg.datasets import fashion_mnist

    try:
        fashion_mnist.load_data()
    except (OSError, ValueError) as e:  # no source reachable from this machine
        if IN_CI:
            pytest.fail(
                f"CI installs Debian's dataset-fashion-mnist; Fashion-MNIST did not load: {e}"
            )
        pytest.skip(f"Fashion-MNIST is not available here ({e})")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "dropout_maxnorm_fashion.py")], capture_output=True,
                          text=True, cwd=OUTSIDE, timeout=600, env=dict(os.environ, PYREG_EXAMPLE_QUICK="1"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", proc.stdout).group(1))
    assert 0.6 < accuracy <= 1.0  # two epochs on 3,000 images; chance is 0.1
