"""The learning-rate callbacks of ``keras.callbacks``: LearningRateScheduler and ReduceLROnPlateau.

Both change the optimizer's learning rate between epochs (``optimizer.learning_rate = ...``, which
keeps the moments and ``iterations``); the new rate applies from the next epoch's first batch, as
in keras, and both log the rate the epoch used as ``learning_rate`` (in ``History``). The rate is
a float32 in keras, so both read it as the float32 value and store what they set as one.
Exported by ``pyreg.callbacks``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._checks import check_float, check_int, describe
from .callbacks import Callback

__all__ = ["LearningRateScheduler", "ReduceLROnPlateau"]

_ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


def _current_lr(model) -> float:
    """The optimizer's learning rate as keras' float32 variable holds it (as a python float)."""
    return float(np.float32(model.optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch to ``schedule(epoch, lr)``.

    ``epoch`` is the 0-based epoch index (counting from ``initial_epoch``) and ``lr`` the current
    rate; a ``schedule`` that takes only ``epoch`` is called with it alone when the two-argument
    call raises TypeError (keras' older API). The result must be a float (python, np.float32 or
    np.float64) and applies to every batch of that epoch. An optimizer created with a learning-rate
    schedule cannot be changed (TypeError at the first epoch, as in keras).
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"schedule must be a callable (epoch, lr) -> float; got {describe(schedule)}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        try:
            lr = self.schedule(epoch, _current_lr(self.model))
        except TypeError:  # keras' fallback to the one-argument schedule(epoch)
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.float32, np.float64)):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {lr!r}"
            )
        self.model.optimizer.learning_rate = float(np.float32(lr))
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved for ``patience``
    epochs (keras 3 semantics, including its off-by-ones).

    An epoch improves when ``monitor`` beats the best value by more than ``min_delta``, compared in
    float32. After a reduction, ``cooldown`` - 1 epochs are not counted (keras decrements the
    counter before it checks it, so cooldown=1 acts as 0); patience=0 acts as 1. The rate never
    goes below ``min_lr`` and is not reduced once it is there. The rate of each epoch is logged as
    ``learning_rate``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):  # fmt: skip
        super().__init__()
        if kwargs:
            raise TypeError(
                f"ReduceLROnPlateau() got an unexpected keyword argument {next(iter(kwargs))!r}"
            )
        if not isinstance(monitor, str):
            raise TypeError(
                f"monitor must be a logs key such as 'val_loss'; got {describe(monitor)}"
            )
        self.factor = check_float(factor, "factor")
        if self.factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0: factor must be < 1; got {factor!r}"
            )
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"ReduceLROnPlateau mode '{mode}' is unknown, fallback to auto mode.", stacklevel=2
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(check_float(min_delta, "min_delta"))
        self.patience = check_int(patience, "patience")
        self.cooldown = check_int(cooldown, "cooldown")
        self.min_lr = check_float(min_lr, "min_lr")
        self.verbose = verbose
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def _lower_is_better(self) -> bool:
        if self.mode != "auto":
            return self.mode == "min"
        name = self.monitor.removeprefix("val_")
        if name == "loss":
            return True
        if name in _ACCURACY_NAMES:
            return False
        raise ValueError(
            f"ReduceLROnPlateau callback received monitor={self.monitor}, but cannot tell whether it should "
            "be maximized or minimized; pass mode='min' or mode='max'"
        )

    def _is_improvement(self, current, best) -> bool:
        if best is None:
            return True
        # keras: ops.less(current + min_delta, best) on float32 tensors of the python doubles
        if self._lower_is_better():
            return bool(np.float32(current + self.min_delta) < np.float32(best))
        return bool(np.float32(current - self.min_delta) > np.float32(best))

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _current_lr(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _current_lr(self.model)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = float(np.float32(new_lr))
                    if self.verbose > 0:
                        print(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
