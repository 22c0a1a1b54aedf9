"""The sweep's data: each data set loaded once per process, split into a held-out validation set and
nested training subsets, identified by a digest of its contents.

The split is a fixed function of the data set and ``validation_size``: a permutation of the training
images drawn from ``SPLIT_SEED``; its first ``validation_size`` images are the validation set, and
a trial's training subset is the next ``train_size`` (so a smaller subset lies inside a larger
one). The test set is kept whole; sweeps report it but never choose on it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from dataclasses import dataclass

import numpy as np

from ..definition import scale_images

__all__ = ["DATASETS", "SPLIT_SEED", "Split", "dataset_digest", "split", "train_rows"]

SPLIT_SEED = 20_261_206  # fixed: every sweep holds out the same validation images


def _keras_style(module: str, rows: int):
    """A data set in pyreg.datasets: (loader, training rows, digest of its published array digests)."""

    def load():
        return importlib.import_module(f"pyreg.datasets.{module}").load_data()

    def digest() -> str:  # no load needed
        return _digest_of(importlib.import_module(f"pyreg.datasets.{module}").SHA256)

    return load, rows, digest


# name -> (loader returning keras' ((x_train, y_train), (x_test, y_test)) uint8, training rows, digest)
DATASETS = {
    "mnist": _keras_style("mnist", 60_000),
    "fashion_mnist": _keras_style("fashion_mnist", 60_000),
}


def _digest_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def train_rows(name: str) -> int:
    """How many training images data set `name` has."""
    return DATASETS[name][1]


def dataset_digest(name: str) -> str:
    """SHA-256 identifying the contents of data set `name` (part of every trial's id)."""
    return DATASETS[name][2]()


@dataclass(frozen=True)
class Split:
    """One data set's held-out split, float32 rows in [0, 1] and uint8 labels.

    x_pool (N - V, IN), y_pool (N - V,): training images not held out, in the split's order;
    x_val (V, IN), y_val (V,): the validation set; x_test (T, IN), y_test (T,): the test set.
    """

    x_pool: np.ndarray
    y_pool: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def train(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The first `size` training images (views: no copy)."""
        return self.x_pool[:size], self.y_pool[:size]


@functools.lru_cache(maxsize=2)
def split(name: str, validation_size: int) -> Split:
    """Data set `name` split for a sweep; loaded once per process and kept (a worker reuses it)."""
    (x, y), (x_test, y_test) = DATASETS[name][0]()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    val, pool = order[:validation_size], order[validation_size:]
    return Split(scale_images(x[pool], flat=True), y[pool], scale_images(x[val], flat=True), y[val],
                 scale_images(x_test, flat=True), y_test)  # fmt: skip
