"""The Keras baseline: the study's two models built and trained exactly as Keras does.

Needs TensorFlow (Keras 3): ``pip install "pyreg[keras]"``.

The study (MNIST, ``x / 255``, Adam, sparse categorical cross-entropy, 5 epochs, batch 32,
validated on the test set)::

    L2:      Flatten(28, 28) -> Dense(128, relu, kernel_regularizer=l2(0.001)) -> Dense(10, softmax)
    Dropout: Flatten(28, 28) -> Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax)

``python -m pyreg.reference`` trains both and prints their per-epoch accuracy.
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
        "pyreg.reference needs TensorFlow with Keras 3, which is not installed. "
        'Install the extra with:  pip install "pyreg[keras]"   (or: pip install tensorflow-cpu)'
    ) from e

import numpy as np

__all__ = [
    "MODEL_KINDS",
    "ReferenceRun",
    "build_dropout_model",
    "build_l2_model",
    "build_model",
    "load_study_data",
    "train_reference",
]

MODEL_KINDS = ("l2", "dropout", "none", "both")


def _compile(model: keras.Model) -> keras.Model:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_model(
    kind: str = "l2",
    *,
    l2: float = 0.001,
    rate: float = 0.5,
    units: int = 128,
    input_shape=(28, 28),
) -> keras.Sequential:
    """Builds and compiles one of the study's models (or its unregularised / combined variants).

    Args:
        kind: ``"l2"`` (L2 on the hidden kernel), ``"dropout"`` (dropout after the hidden layer),
            ``"none"`` (neither: the overfitting baseline) or ``"both"``.
        l2: the L2 factor (Keras ``l2(0.001)`` in the study).
        rate: the dropout rate (0.5 in the study).
        units: hidden units (128).
        input_shape: shape of one sample before flattening.

    Returns:
        A compiled ``keras.Sequential`` (Adam, sparse categorical cross-entropy, accuracy).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}; got {kind!r}")
    use_l2 = kind in ("l2", "both")
    use_dropout = kind in ("dropout", "both")
    layers = [
        keras.Input(shape=tuple(input_shape)),
        keras.layers.Flatten(),
        keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=keras.regularizers.l2(l2) if use_l2 else None,
        ),
    ]
    if use_dropout:
        layers.append(keras.layers.Dropout(rate))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return _compile(keras.Sequential(layers, name=f"study_{kind}"))


def build_l2_model(l2: float = 0.001) -> keras.Sequential:
    """The study's L2 model: Dense(128, relu, kernel_regularizer=l2(0.001)) -> Dense(10, softmax)."""
    return build_model("l2", l2=l2)


def build_dropout_model(rate: float = 0.5) -> keras.Sequential:
    """The study's dropout model: Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax)."""
    return build_model("dropout", rate=rate)


def load_study_data():
    """MNIST scaled as in the study (``x / 255.0``, float64 like the notebook), labels uint8."""
    from .datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return (x_train / 255.0, y_train), (x_test / 255.0, y_test)


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
    epochs: int = 5,
    batch_size: int = 32,
    seed: int | None = None,
    verbose: int = 0,
) -> ReferenceRun:
    """Trains a compiled Keras model as the study does and times every epoch.

    Args:
        model: a compiled model, e.g. from :func:`build_l2_model`. Build it after
            ``keras.utils.set_random_seed(seed)`` for a repeatable run.
        data: ``((x_train, y_train), (x_test, y_test))``; default :func:`load_study_data`.
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
    (x_train, y_train), (x_test, y_test) = data if data is not None else load_study_data()
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
    p = argparse.ArgumentParser(prog="python -m pyreg.reference", description=main.__doc__)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = load_study_data()
    for kind in ("l2", "dropout"):
        keras.utils.set_random_seed(args.seed)
        run = train_reference(
            build_model(kind), data, epochs=args.epochs, batch_size=args.batch_size
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
