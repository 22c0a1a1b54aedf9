"""Weight constraints, as in ``keras.constraints``: applied to a weight after every optimizer update.

``Dense(kernel_constraint=..., bias_constraint=...)`` takes an instance or a name ('max_norm',
'non_neg', 'unit_norm', 'min_max_norm' or the class names). As in Keras 3, a constraint is applied
inside the training step, after the optimizer's (decoupled) weight decay and its update, on every
step, even when the gradient is zero; it is not applied to the initial weights, by ``set_weights``,
or in ``evaluate``/``predict``. The norms are float32 column norms ``n = sqrt(sum(w**2, axis))``
with ``eps = 1e-7``: ``MaxNorm`` computes ``w * (clip(n, 0, max_value) / (eps + n))``, ``UnitNorm``
``w / (eps + n)``, ``MinMaxNorm`` ``w * ((rate*clip(n, min, max) + (1-rate)*n) / (eps + n))`` and
``NonNeg`` ``max(w, 0)``. ``axis=0`` (the default) constrains the weights into each output unit of a
``(input_dim, units)`` kernel. The trainer applies them natively (cpp/constraints.h).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_fraction, check_nonneg_float, check_positive_float, describe

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "unit_norm",
]

_EPS = np.float32(1e-7)

# the native kinds (cpp/constraints.h ConstraintKind) and norm extents (NormAxis)
_KIND = {"MaxNorm": 1, "UnitNorm": 2, "NonNeg": 3, "MinMaxNorm": 4}
_COLUMNS, _ROWS, _ALL = 0, 1, 2


def _check_axis(axis, name: str = "axis"):
    """Keras' axis for a 2-D kernel: an int in [-2, 1], or a list/tuple of them."""
    items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not items or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in items):
        raise TypeError(f"{name} must be an integer or a list of integers; got {describe(axis)}")
    if any(not -2 <= int(a) <= 1 for a in items):
        raise ValueError(
            f"{name} must be 0, 1, -1 or -2 (a Dense kernel has 2 axes); got {describe(axis)}"
        )
    return list(axis) if isinstance(axis, (list, tuple)) else int(axis)


def _axes(axis, ndim: int) -> set[int]:
    items = axis if isinstance(axis, list) else [axis]
    return {int(a) % ndim for a in items}


class Constraint:
    """Base class: ``constraint(w)`` returns the constrained weight (a NumPy float32 reference)."""

    axis = 0

    def __call__(self, w):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _norms(self, w):
        w = np.asarray(w, dtype=np.float32)
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        return w, np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True, dtype=np.float32))

    def _native(self, ndim: int, what: str) -> dict:
        """The native trainer's dict for a weight with ndim axes (2: kernel, 1: bias)."""
        axes = _axes(self.axis, 2) if not isinstance(self, NonNeg) else {0}
        if ndim == 1:
            if any(
                int(a) not in (0, -1)
                for a in (self.axis if isinstance(self.axis, list) else [self.axis])
            ):
                raise ValueError(
                    f"{what}: axis must be 0 or -1 for a bias (1 axis); got {describe(self.axis)}"
                )
            extent = _ALL
        else:
            extent = {frozenset({0}): _COLUMNS, frozenset({1}): _ROWS}.get(frozenset(axes), _ALL)
        cfg = self.get_config()
        return {
            "kind": _KIND[type(self).__name__],
            "axis": extent,
            "min_value": float(cfg.get("min_value", 0.0)),
            "max_value": float(cfg.get("max_value", 0.0)),
            "rate": float(cfg.get("rate", 1.0)),
        }


class MaxNorm(Constraint):
    """Scales each weight group down to a norm of at most ``max_value`` (Keras: ``max_norm``)."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = check_positive_float(max_value, "max_value")
        self.axis = _check_axis(axis)

    def __call__(self, w):
        w, n = self._norms(w)
        desired = np.clip(n, np.float32(0), np.float32(self.max_value))
        return w * (desired / (_EPS + n))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    """Divides each weight group by its norm (plus 1e-7) (Keras: ``unit_norm``)."""

    def __init__(self, axis=0):
        self.axis = _check_axis(axis)

    def __call__(self, w):
        w, n = self._norms(w)
        return w / (_EPS + n)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to 0 (Keras: ``non_neg``)."""

    def __call__(self, w):
        return np.maximum(np.asarray(w, dtype=np.float32), np.float32(0))


class MinMaxNorm(Constraint):
    """Moves each group's norm towards [min_value, max_value] by ``rate`` (Keras: ``min_max_norm``)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = check_nonneg_float(min_value, "min_value")
        self.max_value = check_nonneg_float(max_value, "max_value")
        if self.min_value > self.max_value:
            raise ValueError(
                f"min_value must be <= max_value; got min_value={self.min_value}, max_value={self.max_value}"
            )
        self.rate = check_fraction(rate, "rate", closed_right=True)
        self.axis = _check_axis(axis)

    def __call__(self, w):
        w, n = self._norms(w)
        clipped = np.clip(n, np.float32(self.min_value), np.float32(self.max_value))
        desired = np.float32(self.rate) * clipped + np.float32(1 - self.rate) * n
        return w * (desired / (_EPS + n))

    def get_config(self) -> dict:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


max_norm, unit_norm, non_neg, min_max_norm = MaxNorm, UnitNorm, NonNeg, MinMaxNorm

_BY_NAME = {
    "max_norm": MaxNorm,
    "MaxNorm": MaxNorm,
    "unit_norm": UnitNorm,
    "UnitNorm": UnitNorm,
    "non_neg": NonNeg,
    "NonNeg": NonNeg,
    "min_max_norm": MinMaxNorm,
    "MinMaxNorm": MinMaxNorm,
}


def get(identifier, name: str = "constraint") -> Constraint | None:
    """None, a Constraint (or its class), or a Keras name -> a Constraint (or None)."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"Could not interpret constraint identifier for {name}: expected None, 'max_norm', 'non_neg', "
        f"'unit_norm', 'min_max_norm' (or a class name) or a pyreg.constraints instance; got {describe(identifier)}"
    )
