"""What one finished trial is: the record the sweep appends to ``DIR/trials.jsonl``, one JSON line.

Every line is a dict::

    id        16 hex digits: sha256 of the trial's config, its data set's digest and the training
              semantics (not of the grid it came from): the same trial has the same id in any sweep
    config    {"framework": "pyreg" | "keras", "dataset": "mnist", "l2": float, "dropout": float,
               "weight_decay": float, "units": int, "epochs": int, "train_size": int,
               "batch_size": int, "learning_rate": float, "seed": int}
    status    "ok", "diverged" (the loss became NaN/Inf; training stopped) or "failed" (raised)
    reason    None for "ok"; otherwise one line saying what happened
    history   per epoch, as Keras' History: "loss", "accuracy" (training batches, dropout on),
              "val_loss", "val_accuracy" (the held-out validation set), and "train_eval_loss",
              "train_eval_accuracy" (the whole training subset in inference mode, dropout off,
              measured like validation); shorter than `epochs` when training stopped early,
              empty when the trial failed before its first epoch
    metrics   None when failed; else the final epoch's: "val_accuracy", "val_loss",
              "train_accuracy", "train_loss" (inference mode, like validation), "gap"
              (train_accuracy - val_accuracy: the generalisation gap), "test_accuracy",
              "test_loss" (the test set: recorded and reported, never used to choose),
              "kernel_norms" (Frobenius norm of each Dense kernel, input layer first)
    wall_s    seconds the trial took in its worker (data already loaded)
    threads   threads the trial trained with
    host, pid the worker that ran it
    pyreg     pyreg's version; "isa": the kernels a pyreg trial ran; "keras": Keras' version for a
              Keras trial
    finished  ISO 8601 UTC time the driver received it

A *cell* is a config without its seed; its seeds give the spread.
"""

from __future__ import annotations

__all__ = ["AXES", "CELL_KEYS", "METRICS", "STATUSES", "cell_key"]

# the grid's axes, in the order the CLI lists them (each a list of values in a spec)
AXES = (
    "dataset",
    "l2",
    "dropout",
    "weight_decay",
    "units",
    "epochs",
    "train_size",
    "batch_size",
    "learning_rate",
)
CELL_KEYS = ("framework", *AXES)  # a config minus its seed
STATUSES = ("ok", "diverged", "failed")
METRICS = (
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "gap",
    "test_accuracy",
    "test_loss",
)


def cell_key(config: dict) -> tuple:
    """The cell a trial belongs to: its config without the seed, as a hashable tuple."""
    return tuple(config[k] for k in CELL_KEYS)
