"""Callbacks, as in ``keras.callbacks``: History, EarlyStopping, TerminateOnNaN, LambdaCallback,
and the learning-rate callbacks LearningRateScheduler and ReduceLROnPlateau (pyreg/lr_callbacks.py).

Epoch hooks run in Python between native epochs. Batch hooks (``on_train_batch_begin/end``) are
honoured too, but a callback that overrides them makes the native loop re-enter Python after every
batch (both hooks are then called after the batch has run); leave them out for full speed.
"""

from __future__ import annotations

import warnings

from ._checks import check_float, check_int, describe

__all__ = [
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


class Callback:
    """Base class; override any hook. ``self.model`` is the model being trained."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...

    # keras aliases
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def _wants_batches(self) -> bool:
        """True when a batch hook is overridden (the trainer then reports every batch)."""
        names = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
        return any(getattr(type(self), n) is not getattr(Callback, n) for n in names)


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    @property
    def wants_batches(self) -> bool:
        return any(cb._wants_batches() for cb in self.callbacks)

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for cb in self.callbacks:
            if cb._wants_batches():
                cb.on_train_batch_begin(batch, None)
                cb.on_batch_begin(batch, None)
                cb.on_train_batch_end(batch, logs)
                cb.on_batch_end(batch, logs)


class History(Callback):
    """Records every epoch's logs: ``history.history['val_accuracy']`` and so on."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        self.model.history = self


class TerminateOnNaN(Callback):
    """Stops training when the loss becomes NaN or Inf.

    pyreg does this by default inside the native loop, at the offending batch (``fit(...,
    terminate_on_nan=False)`` switches it off); passing this callback keeps it on either way.
    """


class LambdaCallback(Callback):
    """Callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):  # fmt: skip
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)  # fmt: skip
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not hasattr(Callback, name) or not callable(fn):
                raise ValueError(
                    f"LambdaCallback: {name} must be a callable hook of Callback; got {describe(fn)}"
                )
            setattr(self, name, fn)

    def _wants_batches(self) -> bool:
        return any(n in self.__dict__ for n in ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin",
                                                "on_batch_end"))  # fmt: skip


class EarlyStopping(Callback):
    """Stops training when a monitored quantity stops improving (keras 3 semantics).

    Args:
        monitor: the logs key to watch, e.g. ``"val_loss"`` (default) or ``"val_accuracy"``.
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1 prints when it stops and when it restores weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (losses minimised, accuracies maximised).
        baseline: a value the quantity must beat to reset the patience count.
        restore_best_weights: at the end of training, put back the weights of the best epoch.
        start_from_epoch: epochs to wait before monitoring starts.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):  # fmt: skip
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(
                f"monitor must be a logs key such as 'val_loss'; got {describe(monitor)}"
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {describe(mode)}")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(check_float(min_delta, "min_delta"))
        self.patience = check_int(patience, "patience", minimum=0)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", minimum=0)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def _lower_is_better(self) -> bool:
        if self.mode != "auto":
            return self.mode == "min"
        name = self.monitor.removeprefix("val_")
        if name == "loss" or name.endswith("loss"):
            return True
        if "acc" in name:
            return False
        raise ValueError(
            f"EarlyStopping cannot tell whether {self.monitor!r} should go up or down; pass mode='min' or 'max'"
        )

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        if self._lower_is_better():  # keras: less(value - (-min_delta), reference)
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)


from .lr_callbacks import LearningRateScheduler, ReduceLROnPlateau  # noqa: E402
