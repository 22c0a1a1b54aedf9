"""The Keras baseline: a study model (``pyreg.study.definition.build_keras``) trained and timed
exactly as the study trains it in Keras.

Needs TensorFlow (Keras 3): ``pip install "pyreg[keras]"``. ``python -m pyreg.study.keras_baseline``
trains the study's two models and prints their per-epoch accuracy.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "2"
)  # keep TensorFlow's start-up banner out of reports

try:
    import keras
    import tensorflow as tf
except (
    ImportError
) as e:  # pragma: no cover - exercised by tests in an environment without TensorFlow
    raise ImportError(
        "pyreg.study.keras_baseline needs TensorFlow with Keras 3, which is not installed. "
        'Install the extra with:  pip install "pyreg[keras]"   (or: pip install tensorflow-cpu)'
    ) from e

import numpy as np

from .definition import BATCH_SIZE, EPOCHS, build_keras, load_mnist

__all__ = ["ReferenceRun", "set_tf_threads", "train_reference"]


@dataclass
class ReferenceRun:
    """What one Keras training run produced."""

    history: dict[
        str, list[float]
    ]  # keras' History.history: loss, accuracy, val_loss, val_accuracy
    epoch_times: list[float] = field(
        default_factory=list
    )  # wall seconds per epoch, validation included
    kernel_norms: list[float] = field(
        default_factory=list
    )  # L2 norm of the hidden kernel after each epoch
    threads: int | None = None


class _EpochRecorder(keras.callbacks.Callback):
    """Times each epoch (training and validation) and records the hidden kernel's norm."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.norms: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)
        hidden = next(layer for layer in self.model.layers if isinstance(layer, keras.layers.Dense))
        self.norms.append(float(np.linalg.norm(hidden.get_weights()[0])))


def set_tf_threads(threads: int | None) -> None:
    """Limits TensorFlow's thread pools (must run before TensorFlow executes anything)."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised: the setting cannot change any more
        pass


def train_reference(
    model: keras.Model,
    data=None,
    *,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    seed: int | None = None,
    verbose: int = 0,
) -> ReferenceRun:
    """Trains a compiled Keras model as the study does and times every epoch.

    Args:
        model: a compiled model, e.g. ``build_keras("l2")``. Build it after
            ``keras.utils.set_random_seed(seed)`` for a repeatable run.
        data: ``((x_train, y_train), (x_test, y_test))``; default the study's MNIST.
        epochs: epochs to train (5 in the study).
        batch_size: batch size (32 in the study).
        seed: when given, ``keras.utils.set_random_seed(seed)`` before fitting (shuffle and dropout).
        verbose: Keras' verbosity.

    Returns:
        A :class:`ReferenceRun` with the history dict and per-epoch wall times.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0; got {epochs}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    (x_train, y_train), (x_test, y_test) = data if data is not None else load_mnist()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    recorder = _EpochRecorder()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_test, y_test),
        callbacks=[recorder],
        verbose=verbose,
    )
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return ReferenceRun(
        hist, recorder.times, recorder.norms, tf.config.threading.get_intra_op_parallelism_threads()
    )


def main(argv: list[str] | None = None) -> int:
    """Trains the study's two Keras models and prints their per-epoch accuracy."""
    p = argparse.ArgumentParser(
        prog="python -m pyreg.study.keras_baseline", description=main.__doc__
    )
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = load_mnist()
    for kind in ("l2", "dropout"):
        keras.utils.set_random_seed(args.seed)
        run = train_reference(
            build_keras(kind), data, epochs=args.epochs, batch_size=args.batch_size
        )
        print(f"Keras {kind} model (seed {args.seed}):")
        for e in range(len(run.epoch_times)):
            h = run.history
            print(
                f"  epoch {e + 1}: accuracy {h['accuracy'][e]:.4f}  val_accuracy {h['val_accuracy'][e]:.4f}"
                f"  loss {h['loss'][e]:.4f}  val_loss {h['val_loss'][e]:.4f}  ({run.epoch_times[e]:.2f} s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
