"""One trial of a sweep, run in a worker process: build the cell's model, train it on its subset,
measure it, and return its record (``records.py``) to the driver, which alone writes the store.

A trial never raises: an exception becomes a ``failed`` record with its reason, a NaN/Inf loss a
``diverged`` one. Its results depend only on its config (pyreg's training is bitwise the same for
any thread count and seeded by the config's seed), so where and when it runs does not matter.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import warnings

import numpy as np

from ... import __version__
from ..._build import build_info
from ...callbacks import Callback
from ..definition import ModelSpec, build_keras, build_pyreg
from .data import dataset_digest, split

__all__ = ["TRIAL_SEMANTICS", "run_trial", "trial_id"]

# bump when what a trial computes changes (model, split, metrics): ids change, old stores are refused
TRIAL_SEMANTICS = 1


def trial_id(config: dict, semantics: dict) -> str:
    """16 hex digits of SHA-256 over the config, its data set's digest and the training semantics."""
    key = {"config": config, "data": dataset_digest(config["dataset"]), "semantics": semantics}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _finite(values) -> list:
    """Floats for JSON: NaN/Inf become None (strict JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _model_spec(config: dict) -> ModelSpec:
    return ModelSpec(units=config["units"], l2=config["l2"], dropout=config["dropout"],
                     weight_decay=config["weight_decay"], learning_rate=config["learning_rate"])  # fmt: skip


def run_trial(trial: str, config: dict, semantics: dict, threads: int) -> dict:
    """Trains one trial and returns its record (without ``finished``, which the driver stamps)."""
    record = {"id": trial, "config": config, "status": "ok", "reason": None, "history": {},
              "metrics": None, "wall_s": 0.0, "threads": threads, "host": socket.gethostname(),
              "pid": os.getpid(), "pyreg": __version__}  # fmt: skip
    t0 = time.perf_counter()
    try:
        data = split(config["dataset"], semantics["validation_size"])
        train = _train_keras if config["framework"] == "keras" else _train_pyreg
        train(record, config, data, threads)
    except Exception as e:  # recorded, never raised: the sweep goes on
        record["status"], record["reason"] = "failed", f"{type(e).__name__}: {e}".splitlines()[0]
        record["metrics"] = None
    record["wall_s"] = time.perf_counter() - t0
    return record


def _train_pyreg(record: dict, config: dict, data, threads: int) -> None:
    x, y = data.train(config["train_size"])
    model = build_pyreg(_model_spec(config), config["seed"], input_shape=(x.shape[1],))
    batch = config["batch_size"]
    train_eval: dict[str, list] = {"train_eval_loss": [], "train_eval_accuracy": []}

    class _TrainEval(Callback):  # the training subset measured like validation (dropout off)
        def on_epoch_end(self, epoch, logs=None):
            loss, acc = model.evaluate(x, y, batch_size=batch, verbose=0, threads=threads)
            train_eval["train_eval_loss"].append(loss)
            train_eval["train_eval_accuracy"].append(acc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        history = model.fit(x, y, epochs=config["epochs"], batch_size=batch, verbose=0, threads=threads,
                            validation_data=(data.x_val, data.y_val), callbacks=[_TrainEval()]).history  # fmt: skip
    record["history"] = {k: _finite(v) for k, v in {**history, **train_eval}.items()}
    record["isa"] = build_info()["isa_active"]
    nonfinite = [str(w.message) for w in caught if "invalid loss" in str(w.message)]
    if nonfinite or not all(math.isfinite(v) for v in history["loss"]):
        record["status"] = "diverged"
        record["reason"] = (
            nonfinite[0] if nonfinite else "the loss became NaN or Inf"
        ).splitlines()[0]
        return
    record["metrics"] = _metrics(
        model.evaluate(data.x_test, data.y_test, batch_size=batch, verbose=0, threads=threads),
        history,
        train_eval,
        [w for w in model.get_weights() if w.ndim == 2],
    )


def _train_keras(record: dict, config: dict, data, threads: int) -> None:
    import keras

    from ..keras_baseline import set_tf_threads

    set_tf_threads(threads)
    x, y = data.train(config["train_size"])
    keras.utils.set_random_seed(config["seed"])
    model = build_keras(_model_spec(config), input_shape=(x.shape[1],))
    batch = config["batch_size"]
    train_eval: dict[str, list] = {"train_eval_loss": [], "train_eval_accuracy": []}

    class _TrainEval(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loss, acc = self.model.evaluate(x, y, batch_size=batch, verbose=0)
            train_eval["train_eval_loss"].append(float(loss))
            train_eval["train_eval_accuracy"].append(float(acc))

    history = model.fit(x, y, epochs=config["epochs"], batch_size=batch, verbose=0,
                        validation_data=(data.x_val, data.y_val), callbacks=[_TrainEval()]).history  # fmt: skip
    history = {k: [float(v) for v in vals] for k, vals in history.items()}
    record["history"] = {k: _finite(v) for k, v in {**history, **train_eval}.items()}
    record["keras"] = keras.__version__
    if not all(math.isfinite(v) for v in history["loss"]):
        record["status"], record["reason"] = "diverged", "the loss became NaN or Inf"
        return
    test = model.evaluate(data.x_test, data.y_test, batch_size=batch, verbose=0)
    kernels = [w for w in model.get_weights() if w.ndim == 2]
    record["metrics"] = _metrics(test, history, train_eval, kernels)


def _metrics(test, history: dict, train_eval: dict, kernels: list) -> dict:
    """The final epoch's numbers (validation and training measured alike, dropout off)."""
    train_acc, val_acc = train_eval["train_eval_accuracy"][-1], history["val_accuracy"][-1]
    return {
        "val_accuracy": float(val_acc),
        "val_loss": float(history["val_loss"][-1]),
        "train_accuracy": float(train_acc),
        "train_loss": float(train_eval["train_eval_loss"][-1]),
        "gap": float(train_acc - val_acc),
        "test_accuracy": float(test[1]),
        "test_loss": float(test[0]),
        "kernel_norms": [float(np.linalg.norm(k)) for k in kernels],
    }
