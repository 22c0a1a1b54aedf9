"""Activation functions by name, as in ``keras.activations`` (NumPy versions for reference use)."""

from __future__ import annotations

import numpy as np

from ._checks import describe

__all__ = ["NAMES", "get", "linear", "relu", "sigmoid", "softmax", "tanh"]

NAMES = ("linear", "relu", "sigmoid", "tanh", "softmax")


def linear(x):
    return np.asarray(x)


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x)))


def tanh(x):
    return np.tanh(x)


def softmax(x, axis=-1):
    z = np.asarray(x) - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def get(identifier) -> str:
    """None, a name, or one of this module's (or keras') functions -> the activation's name."""
    if identifier is None:
        return "linear"
    name = identifier if isinstance(identifier, str) else getattr(identifier, "__name__", None)
    if isinstance(name, str) and name.lower() in NAMES:
        return name.lower()
    raise ValueError(
        f"activation must be one of {', '.join(map(repr, NAMES))} or None; got {describe(identifier)}"
    )
