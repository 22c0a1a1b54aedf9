"""Learning-rate schedules, as in ``keras.optimizers.schedules``, evaluated natively at every step.

Pass one as an optimizer's ``learning_rate=``. As in keras 3, step k of training (k = 0 first)
uses ``schedule(k)``, where k is ``optimizer.iterations`` before the step, for the update and the
decoupled weight decay alike. The trainer computes the value in C++ at every step (no Python per
batch); calling a schedule from Python returns the same float32 value.

=======================  ========================================================================
ExponentialDecay         lr0 · rate^(step / decay_steps)  (the exponent floored with staircase)
InverseTimeDecay         lr0 / (1 + rate · step / decay_steps)  (the quotient floored with staircase)
PiecewiseConstantDecay   values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step
                         <= boundaries[i], values[-1] for step > boundaries[-1]
CosineDecay              lr0 · ((1 - alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha);
                         with ``warmup_target``: linear from lr0 to warmup_target over warmup_steps,
                         then the cosine from warmup_target (``warmup_steps`` alone is ignored)
=======================  ========================================================================

All arithmetic is float32, in keras' order of operations.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_bool, check_float, describe

__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "deserialize",
    "serialize",
]


def _decay_steps(value) -> float:
    value = check_float(value, "decay_steps")
    if value <= 0:
        raise ValueError(f"decay_steps must be > 0; got {value}")
    return value


class LearningRateSchedule:
    """Base class of the native schedules. Calling it with a step gives the float32 learning rate.

    Only the four schedules of this module run natively; a subclass that overrides ``__call__``
    is refused by the optimizers (pyreg does not call Python per batch).
    """

    def _native_args(self) -> dict:
        raise NotImplementedError

    def __call__(self, step) -> np.float32:
        integral = isinstance(step, numbers.Integral) and not isinstance(step, bool)
        if not integral and not (
            isinstance(step, np.ndarray) and step.ndim == 0 and step.dtype.kind in "iu"
        ):
            raise TypeError(f"step must be an integer; got {describe(step)}")
        from .. import _core

        return np.float32(_core.lr_schedule_value(self._native_args(), int(step)))

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class _RateDecay(LearningRateSchedule):
    """The shared arguments of ExponentialDecay and InverseTimeDecay; `_kind` names the formula."""

    _kind = ""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _decay_steps(decay_steps)
        self.decay_rate = check_float(decay_rate, "decay_rate")
        self.staircase = check_bool(staircase, "staircase")
        self.name = name or type(self).__name__

    def _native_args(self) -> dict:
        return dict(kind=self._kind, initial_learning_rate=self.initial_learning_rate,
                    decay_steps=self.decay_steps, decay_rate=self.decay_rate, staircase=self.staircase)  # fmt: skip

    def get_config(self) -> dict:
        return dict(initial_learning_rate=self.initial_learning_rate, decay_steps=self.decay_steps,
                    decay_rate=self.decay_rate, staircase=self.staircase, name=self.name)  # fmt: skip


class ExponentialDecay(_RateDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored exponent with staircase)."""

    _kind = "exponential"

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):  # fmt: skip
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)


class InverseTimeDecay(_RateDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored quotient with staircase)."""

    _kind = "inverse_time"

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):  # fmt: skip
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` on the i-th interval of ``boundaries`` (``boundaries[i-1] < step <= boundaries[i]``).

    As in keras the boundaries are compared with the integer step (float boundaries are truncated)
    and the result is the float32 sum of indicator · value over the intervals.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if not isinstance(boundaries, (list, tuple)):
            raise TypeError(f"boundaries must be a list of steps; got {describe(boundaries)}")
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"values must be a list of learning rates; got {describe(values)}")
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values; got "
                f"boundaries of length {len(boundaries)} and values of length {len(values)}"
            )
        if not boundaries:
            raise ValueError("boundaries must hold at least one step; got []")
        for i, b in enumerate(boundaries):
            if isinstance(b, numbers.Integral) and not isinstance(b, bool):
                continue
            check_float(b, f"boundaries[{i}]")
        for i, v in enumerate(values):
            check_float(v, f"values[{i}]")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    def _native_args(self) -> dict:
        return dict(kind="piecewise", boundaries=[int(b) for b in self.boundaries],
                    values=[float(v) for v in self.values])  # fmt: skip

    def get_config(self) -> dict:
        return dict(boundaries=self.boundaries, values=self.values, name=self.name)


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha`` times it over ``decay_steps``, with an
    optional linear warm-up to ``warmup_target`` over ``warmup_steps`` first.

    As in keras, ``warmup_steps`` has no effect unless ``warmup_target`` is given; with it, the
    cosine decays from ``warmup_target`` after the warm-up.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):  # fmt: skip
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _decay_steps(decay_steps)
        self.alpha = check_float(alpha, "alpha")
        self.name = name
        self.warmup_target = (
            None if warmup_target is None else check_float(warmup_target, "warmup_target")
        )
        self.warmup_steps = check_float(warmup_steps, "warmup_steps")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; got {self.warmup_steps}")

    def _native_args(self) -> dict:
        return dict(kind="cosine", initial_learning_rate=self.initial_learning_rate, decay_steps=self.decay_steps,
                    alpha=self.alpha, warmup_target=self.warmup_target, warmup_steps=self.warmup_steps)  # fmt: skip

    def get_config(self) -> dict:
        return dict(initial_learning_rate=self.initial_learning_rate, decay_steps=self.decay_steps,
                    alpha=self.alpha, name=self.name, warmup_target=self.warmup_target,
                    warmup_steps=self.warmup_steps)  # fmt: skip


_CLASSES = {
    c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": ...}``, as keras serialises a schedule."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """The schedule ``serialize`` described."""
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise ValueError(
            f"a schedule config must be {{'class_name': one of {sorted(_CLASSES)}, 'config': {{...}}}}; "
            f"got {describe(config)}"
        )
    return _CLASSES[config["class_name"]].from_config(config["config"])


def is_native(schedule) -> bool:
    """True for an instance of one of this module's schedules whose __call__ is the native one."""
    return isinstance(schedule, LearningRateSchedule) and type(schedule).__call__ is LearningRateSchedule.__call__ \
        and type(schedule)._native_args is not LearningRateSchedule._native_args  # fmt: skip
