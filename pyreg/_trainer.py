"""The bridge from ``Sequential.fit`` / ``evaluate`` / ``predict`` to the native ``_core.Mlp``.

``Sequential`` checks its Keras-signature arguments and calls in here with them normalised; this
module turns the data into what the native trainer reads, runs the epoch loop (one native call per
epoch, with callbacks, the progress bar and validation wired around it) and shapes the logs. The
role of keras' ``trainers/trainer.py`` and ``trainers/epoch_iterator.py``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ._checks import as_labels, check_fraction, check_int, describe, features_maybe_unchecked
from .callbacks import CallbackList, History, TerminateOnNaN
from .progbar import Progbar, format_logs

__all__ = ["evaluate", "features", "fit", "labels", "logs", "predict"]


# ----------------------------------------------------------------------------------------------
# data


def features(
    model, x, name: str = "x", *, check_finite: bool = True, threads: int = 0
) -> tuple[np.ndarray, bool]:
    """(features, checked): see features_maybe_unchecked; always checked unless check_finite=False,
    on the call's `threads` (a fit(threads=1) uses one thread for its checks too).

    An unbuilt model is built for x's sample shape first.
    """
    if model._sample_shape is None:
        arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if getattr(arr, "ndim", 0) < 2:
            raise ValueError(
                f"{name} must have a batch axis and at least one feature axis; got {describe(x)}"
            )
        model.build((None, *arr.shape[1:]))
    return features_maybe_unchecked(x, name, model._sample_shape, check_finite=check_finite,
                                    threads=threads)  # fmt: skip


def labels(model, y, n: int, name: str = "y") -> np.ndarray:
    return as_labels(y, name, n, model.output_shape[1], one_hot=model.loss.one_hot)


def logs(model, loss: float, accuracy: float, prefix: str = "") -> dict:
    """Keras' logs dict: the loss, then each compiled metric (all of them accuracy)."""
    out = {f"{prefix}loss": float(loss)}
    for m in model._metric_names:
        out[f"{prefix}{m}"] = float(accuracy)
    return out


def _validation_rows(model, xf, yl, validation_split, validation_data, threads: int):
    """(x, y, x_val, y_val): the validation data checked, or the last rows validation_split takes."""
    xv = yv = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                f"validation_data must be a tuple (x_val, y_val); got {describe(validation_data)}"
            )
        if len(validation_data) == 3 and validation_data[2] is not None:
            raise NotImplementedError("validation sample weights are not supported by pyreg")
        xv = features(model, validation_data[0], "validation_data[0]", threads=threads)[0]
        yv = labels(model, validation_data[1], xv.shape[0], "validation_data[1]")
    elif validation_split:
        split = check_fraction(validation_split, "validation_split")
        n = xf.shape[0]
        split_at = math.floor(n * (1.0 - split))  # keras: the last rows, before shuffling
        if split_at in (0, n):
            raise ValueError(
                f"Training data contains {n} samples, which is not sufficient to split it into a "
                f"validation and training set as specified by validation_split={split}"
            )
        xf, xv, yl, yv = xf[:split_at], xf[split_at:], yl[:split_at], yl[split_at:]
    return xf, yl, xv, yv


# ----------------------------------------------------------------------------------------------
# training


def fit(model, x, y, *, batch_size: int, epochs: int, verbose: int, callbacks: list,
        validation_split, validation_data, validation_batch_size, should_validate, shuffle: bool,
        initial_epoch: int, threads: int, sparse: str, terminate_on_nan: bool) -> History:  # fmt: skip
    """Runs ``Sequential.fit`` with its arguments checked; returns the History.

    Checks the data here (x and y, then the validation data), so that its errors come after the
    arguments' in the order keras raises them.
    """
    if any(isinstance(cb, TerminateOnNaN) for cb in callbacks):
        terminate_on_nan = True

    # the NaN/Inf check of x: in the first epoch's row scans (free, where a pass of its own is not)
    # when nothing can see that epoch before it ends (no callbacks, no output), as a failed check
    # puts the model back; else now. the labels and the validation data, including the rows
    # validation_split takes from x (the scans never read them): now.
    defer_check = not callbacks and verbose == 0 and epochs > initial_epoch and not validation_split
    xf, x_checked = features(model, x, "x", check_finite=not defer_check, threads=threads)
    yl = labels(model, y, xf.shape[0], "y")
    xf, yl, xv, yv = _validation_rows(model, xf, yl, validation_split, validation_data, threads)
    val_batch = batch_size if validation_batch_size is None else check_int(
        validation_batch_size, "validation_batch_size", minimum=1)  # fmt: skip

    steps = -(-xf.shape[0] // batch_size)
    history_before, stop_before = model.history, model.stop_training
    model.history = history = History()
    cbs = CallbackList(
        [*callbacks, history], model, {"verbose": verbose, "epochs": epochs, "steps": steps}
    )
    wants_batches = cbs.wants_batches
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        bar = Progbar(steps, verbose)

        def progress(step, steps_, seen, loss, acc, bar=bar):
            batch_logs = logs(model, loss, acc)
            bar.update(step, seen, batch_logs)
            if wants_batches:
                cbs.on_train_batch_end(step - 1, batch_logs)
            return not model.stop_training

        interval = 0.0 if wants_batches else (0.05 if bar.live else 0.5)
        # batch hooks may change the weights: no first-layer lookahead past them (sweep.h)
        check_input = not x_checked and epoch == initial_epoch
        res = model._mlp.train_epoch(xf, yl, batch_size, shuffle, model._epochs_seen, threads, sparse,
                                     progress, interval, terminate_on_nan, lookahead=not wants_batches,
                                     check_input=check_input)  # fmt: skip
        if res["bad_input"]:  # nothing was trained: raise as the up-front check does
            model.history, model.stop_training = history_before, stop_before
            features(model, x, "x", threads=threads)
            raise ValueError("x must be finite")  # not reached: the check above raises
        model._epochs_seen += 1
        epoch_logs = logs(model, res["loss"], res["accuracy"])
        if res["nonfinite"]:
            warnings.warn(
                f"Batch {res['nonfinite_step']}: invalid loss (NaN or Inf), terminating training; that "
                "batch's update was not applied",
                RuntimeWarning,
                stacklevel=3,  # the caller of Sequential.fit
            )
            model.stop_training = True
        if xv is not None and should_validate(epoch):
            vloss, vacc = model._mlp.evaluate(xv, yv, val_batch, threads, sparse)
            epoch_logs.update(logs(model, vloss, vacc, "val_"))
        bar.finish(res["steps"], res["seen"], epoch_logs)
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return history


# ----------------------------------------------------------------------------------------------
# inference


def evaluate(model, x, y, *, batch_size: int, verbose: int, threads: int, sparse: str) -> dict:
    """Runs ``Sequential.evaluate`` with its arguments checked; returns the logs dict."""
    xf = features(model, x, "x", threads=threads)[0]
    yl = labels(model, y, xf.shape[0], "y")
    t0 = time.perf_counter()
    loss, acc = model._mlp.evaluate(xf, yl, batch_size, threads, sparse)
    out = logs(model, loss, acc)
    if verbose:
        steps = -(-xf.shape[0] // batch_size)
        print(f"{steps}/{steps} - {time.perf_counter() - t0:.2f}s - {format_logs(out)}", flush=True)
    return out


def predict(model, x, *, batch_size: int, verbose: int, threads: int, sparse: str) -> np.ndarray:
    """Runs ``Sequential.predict`` with its arguments checked: the (N, units) float32 output."""
    xf = features(model, x, "x", threads=threads)[0]
    model._require_built("predict")
    t0 = time.perf_counter()
    out = model._mlp.predict(xf, batch_size, threads, sparse)
    if verbose:
        steps = -(-xf.shape[0] // batch_size)
        print(f"{steps}/{steps} - {time.perf_counter() - t0:.2f}s", flush=True)
    return out
