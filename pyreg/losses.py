"""Losses, as in ``keras.losses``; the trainer fuses them with the output softmax natively.

``sparse_categorical_crossentropy`` takes integer labels; ``categorical_crossentropy`` takes one-hot
rows. Both need a softmax output layer, or a linear one with ``from_logits=True``.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_bool, check_fraction, describe

__all__ = [
    "CategoricalCrossentropy",
    "Loss",
    "SparseCategoricalCrossentropy",
    "categorical_crossentropy",
    "get",
    "sparse_categorical_crossentropy",
]


class Loss:
    name = ""
    one_hot = False
    label_smoothing = 0.0

    def __init__(self, from_logits: bool = False, name: str | None = None):
        self.from_logits = check_bool(from_logits, "from_logits")
        if name is not None:
            self.name = name

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"


class CategoricalCrossentropy(Loss):
    """Cross-entropy from one-hot rows; ``label_smoothing=ls`` trains on ``y*(1-ls) + ls/K``.

    As in Keras, the smoothed targets are computed in float32 (``y*float32(1-ls) + float32(ls)/K``)
    and apply to the training loss and gradient and to ``evaluate``. pyreg requires 0 <= ls <= 1.
    """

    name = "categorical_crossentropy"
    one_hot = True

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, name: str | None = None
    ):
        super().__init__(from_logits=from_logits, name=name)
        self.label_smoothing = check_fraction(label_smoothing, "label_smoothing", closed_right=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}

    def __repr__(self) -> str:
        return f"CategoricalCrossentropy(from_logits={self.from_logits}, label_smoothing={self.label_smoothing})"


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> np.ndarray:
    """Per-sample cross-entropy (NumPy float64 reference) from labels (N,) and outputs (N, K)."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    logp = _log_softmax(y_pred) if from_logits else np.log(np.clip(y_pred, 1e-7, 1.0))
    return -logp[np.arange(len(logp)), np.asarray(y_true).astype(np.int64).ravel()]


def categorical_crossentropy(
    y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0
) -> np.ndarray:
    """Per-sample cross-entropy (NumPy float64 reference) from one-hot rows (N, K) and outputs (N, K).

    With label smoothing the targets are ``y*(1-ls) + ls/K``; probabilities are renormalised and
    clipped to [1e-7, 1-1e-7] first, as Keras does for a probability input.
    """
    ls = check_fraction(label_smoothing, "label_smoothing", closed_right=True)
    if ls == 0.0:
        return sparse_categorical_crossentropy(np.argmax(y_true, axis=-1), y_pred, from_logits)
    y = np.asarray(y_true, dtype=np.float64)
    y = y * (1.0 - ls) + ls / y.shape[-1]
    p = np.asarray(y_pred, dtype=np.float64)
    if from_logits:
        logp = _log_softmax(p)
    else:
        p = p / p.sum(axis=-1, keepdims=True)
        logp = np.log(np.clip(p, 1e-7, 1.0 - 1e-7))
    return -(y * logp).sum(axis=-1)


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
}


def get(identifier) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if identifier is sparse_categorical_crossentropy or identifier is categorical_crossentropy:
        return _BY_NAME[identifier.__name__]()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        "loss must be 'sparse_categorical_crossentropy', 'categorical_crossentropy' or a pyreg.losses "
        f"instance; got {describe(identifier)}"
    )
