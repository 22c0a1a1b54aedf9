"""Weight regularizers, as in ``keras.regularizers``: coupled penalties added to the loss.

``l2(λ)`` adds ``λ·ΣW²`` to the loss (no 1/2, no division by the batch size) and so ``2λW`` to the
kernel's gradient; ``l1(λ)`` adds ``λ·Σ|W|`` (gradient ``λ·sign(W)``). Not to be confused with an
optimizer's decoupled ``weight_decay`` (see :mod:`pyreg.optimizers`).
"""

from __future__ import annotations

import numpy as np

from ._checks import check_nonneg_float, describe

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2"]


class Regularizer:
    """Base class: a penalty ``l1·Σ|W| + l2·ΣW²`` on one weight."""

    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, x) -> float:
        x = np.asarray(x, dtype=np.float64)
        return float(self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum())

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Regularizer) and (self.l1, self.l2) == (other.l1, other.l2)

    def __hash__(self) -> int:
        return hash((self.l1, self.l2))


class L1(Regularizer):
    """``l1·Σ|W|``; keras' default factor is 0.01."""

    def __init__(self, l1: float = 0.01):
        self.l1 = check_nonneg_float(l1, "l1")

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2·ΣW²``; keras' default factor is 0.01."""

    def __init__(self, l2: float = 0.01):
        self.l2 = check_nonneg_float(l2, "l2")

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1·Σ|W| + l2·ΣW²``; both factors default to 0 as in keras."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_nonneg_float(l1, "l1")
        self.l2 = check_nonneg_float(l2, "l2")

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


def l1(l1: float = 0.01) -> L1:
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """keras' ``l1_l2`` shortcut: both factors default to 0.01 (unlike ``L1L2``)."""
    return L1L2(l1, l2)


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": L1L2}


def get(identifier) -> Regularizer | None:
    """None, a Regularizer, or a name ('l1', 'l2', 'l1_l2') -> a Regularizer (or None)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        f"regularizer must be None, 'l1', 'l2', 'l1_l2' or a pyreg.regularizers instance; got {describe(identifier)}"
    )
