"""Weight initializers with keras' distributions (``keras.initializers``), drawn with NumPy.

``glorot_uniform`` (keras' Dense default): U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
Values follow keras' distributions, not its random streams: the same seed gives different numbers
than keras (see docs/KERAS_SEMANTICS.md: parity is statistical there).
"""

from __future__ import annotations

import numpy as np

from ._checks import describe

__all__ = ["Initializer", "get"]


class Initializer:
    """Base class: ``init(shape, rng) -> float32 array``."""

    name = "initializer"

    def __call__(self, shape, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


def _fans(shape) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return int(shape[0]), int(shape[1])


class GlorotUniform(Initializer):
    name = "glorot_uniform"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class GlorotNormal(Initializer):
    name = "glorot_normal"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        std = (
            np.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
        )  # keras: truncated normal at 2 std
        return _truncated_normal(rng, std, shape)


class HeUniform(Initializer):
    name = "he_uniform"

    def __call__(self, shape, rng):
        limit = np.sqrt(6.0 / _fans(shape)[0])
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class HeNormal(Initializer):
    name = "he_normal"

    def __call__(self, shape, rng):
        std = np.sqrt(2.0 / _fans(shape)[0]) / 0.87962566103423978
        return _truncated_normal(rng, std, shape)


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    name = "ones"

    def __call__(self, shape, rng):
        return np.ones(shape, np.float32)


def _truncated_normal(rng, std, shape) -> np.ndarray:
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():  # redraw outside two standard deviations, as keras' truncated normal does
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out.astype(np.float32)


_ALL = {c.name: c for c in (GlorotUniform, GlorotNormal, HeUniform, HeNormal, Zeros, Ones)}


def get(identifier) -> Initializer:
    """A name ('glorot_uniform', 'zeros', ...) or an Initializer -> an Initializer."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _ALL:
        return _ALL[identifier.lower()]()
    raise ValueError(
        f"initializer must be one of {', '.join(map(repr, _ALL))}; got {describe(identifier)}"
    )
