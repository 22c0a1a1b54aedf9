"""Utilities shaped like ``keras.utils``: seeding, one-hot labels, thread settings."""

from __future__ import annotations

import os
import random

import numpy as np

from ._checks import check_int

__all__ = ["draw_seed", "get_num_threads", "set_num_threads", "set_random_seed", "to_categorical"]

_seed_generator: np.random.Generator | None = None
_num_threads = 0  # 0 = all cores (OMP_NUM_THREADS if set)


def set_random_seed(seed: int) -> None:
    """Makes runs repeatable, like ``keras.utils.set_random_seed``.

    Seeds Python's ``random``, NumPy's global generator and pyreg's own generator, from which each
    model draws its seed when it is built (weight initialisation, shuffling and dropout masks).
    """
    seed = check_int(seed, "seed", minimum=0)
    global _seed_generator
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - keras seeds numpy's global generator too
    _seed_generator = np.random.default_rng(seed)


def draw_seed() -> int:
    """A 63-bit seed from pyreg's generator (set by set_random_seed), or from the OS when unset."""
    if _seed_generator is None:
        return int.from_bytes(os.urandom(8), "little") >> 1
    return int(_seed_generator.integers(0, 2**63 - 1))


def set_num_threads(threads: int) -> None:
    """Threads for pyreg's kernels and trainer; 0 means all cores (or OMP_NUM_THREADS)."""
    global _num_threads
    _num_threads = check_int(threads, "threads", minimum=0)


def get_num_threads() -> int:
    """The thread count in effect (resolving 0 to the actual default)."""
    from . import _core

    return _num_threads or _core.default_threads()


def resolve_threads(threads) -> int:
    """A per-call ``threads=`` argument, or the global setting when None (0 = all cores)."""
    if threads is None:
        return _num_threads
    return check_int(threads, "threads", minimum=0)


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """One-hot rows from integer labels, like ``keras.utils.to_categorical``."""
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and (y == np.floor(y)).all()):
        raise ValueError(f"y must hold integer class indices; got dtype {y.dtype}")
    y = y.astype(np.int64).ravel()
    if y.size and y.min() < 0:
        raise ValueError(f"y must hold non-negative class indices; got {y.min()}")
    k = (
        int(y.max()) + 1
        if num_classes is None
        else check_int(num_classes, "num_classes", minimum=1)
    )
    if y.size and y.max() >= k:
        raise ValueError(f"y holds class {y.max()}, which needs num_classes > {y.max()}; got {k}")
    out = np.zeros((y.size, k), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out
