"""The study, defined once: its models, their names and colours, its data, and builders for pyreg,
Keras and the plain NumPy trainer.

The classic study compares two ways to fight overfitting on MNIST (``x / 255``), both trained with
Adam on the sparse categorical cross-entropy, 5 epochs, batch 32, validated on the test set::

    L2:      Flatten(28, 28) -> Dense(128, relu, kernel_regularizer=l2(0.001)) -> Dense(10, softmax)
    Dropout: Flatten(28, 28) -> Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax)

``none`` (neither) and ``both`` complete the square. A :class:`ModelSpec` generalises the four kinds
(any L2 factor, dropout rate, decoupled weight decay, width and learning rate): the sweep builds its
cells from it, ``pyreg compare`` its four kinds. Everything that builds, names or feeds a study model
(``pyreg compare``, ``pyreg sweep``, the benchmarks, the tests) comes here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "BATCH_SIZE",
    "COLORS",
    "EPOCHS",
    "KINDS",
    "SHORT_NAMES",
    "TITLES",
    "ModelSpec",
    "build_keras",
    "build_numpy",
    "build_pyreg",
    "load_mnist",
    "scale_images",
    "spec_of",
]

KINDS = ("l2", "dropout", "none", "both")
TITLES = {
    "l2": "L2 (λ=0.001)",
    "dropout": "Dropout (0.5)",
    "none": "No regularisation",
    "both": "L2 + Dropout",
}
SHORT_NAMES = {"l2": "L2", "dropout": "Dropout", "none": "None", "both": "L2+Dropout"}
COLORS = {"l2": "tab:blue", "dropout": "tab:orange", "none": "tab:gray", "both": "tab:green"}
EPOCHS, BATCH_SIZE = 5, 32
INPUT_SHAPE, CLASSES = (28, 28), 10


@dataclass(frozen=True)
class ModelSpec:
    """One study model: Flatten -> Dense(units, relu, l2) [-> Dropout(dropout)] -> Dense(10, softmax).

    ``l2`` is Keras' coupled ``kernel_regularizer=l2(λ)`` on the hidden kernel (0: none), ``dropout``
    the rate of the Dropout after the hidden layer (0: no layer), ``weight_decay`` Adam's decoupled
    ``weight_decay`` (0: none), ``learning_rate`` Adam's.
    """

    units: int = 128
    l2: float = 0.0
    dropout: float = 0.0
    weight_decay: float = 0.0
    learning_rate: float = 0.001


_KIND_SPECS = {
    "l2": ModelSpec(l2=0.001),
    "dropout": ModelSpec(dropout=0.5),
    "none": ModelSpec(),
    "both": ModelSpec(l2=0.001, dropout=0.5),
}


def spec_of(kind: str, **changes) -> ModelSpec:
    """The :class:`ModelSpec` of one of the study's kinds, with `changes` applied (e.g. ``l2=0.01``)."""
    if kind not in _KIND_SPECS:
        raise ValueError(f"model kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return replace(_KIND_SPECS[kind], **changes)


def _spec(model) -> ModelSpec:
    return spec_of(model) if isinstance(model, str) else model


# ------------------------------------------------------------------------------------------------
# data


def scale_images(x: np.ndarray, *, flat: bool = False) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] (``x / 255``, as the study scales them); (N, 784) if `flat`.

    ``x / np.float32(255)`` rounds exactly as the study's float64 ``x / 255.0`` does once converted to
    float32 (double rounding of a quotient is exact here), so either feeds the same bits.
    """
    out = np.asarray(x) / np.float32(255.0)
    out = out.astype(np.float32, copy=False)
    return out.reshape(len(out), -1) if flat else out


def load_mnist(train: int | None = None, test: int | None = None, *, flat: bool = False):
    """MNIST scaled as the study does: ``((x_train, y_train), (x_test, y_test))``.

    Args:
        train, test: keep only the first `train` / `test` images (None: all).
        flat: images as (N, 784) rows instead of (N, 28, 28).

    Returns:
        float32 images in [0, 1] and uint8 labels.
    """
    from ..datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train, x_test, y_test = (
        x_train[:train],
        y_train[:train],
        x_test[:test],
        y_test[:test],
    )
    return (scale_images(x_train, flat=flat), y_train), (scale_images(x_test, flat=flat), y_test)


# ------------------------------------------------------------------------------------------------
# builders: the same model in pyreg, Keras and NumPy


def build_pyreg(model="l2", seed: int = 0, *, input_shape=INPUT_SHAPE, name: str | None = None):
    """The study model `model` (a kind or a :class:`ModelSpec`) in pyreg, seeded and compiled.

    ``pyreg.utils.set_random_seed(seed)`` runs first, so the initial weights, the shuffles and the
    dropout masks are a function of `seed`.
    """
    from .. import layers, models, optimizers, regularizers, utils

    spec = _spec(model)
    utils.set_random_seed(seed)
    stack = [
        layers.Input(shape=tuple(input_shape)),
        layers.Flatten(),
        layers.Dense(spec.units, activation="relu",
                     kernel_regularizer=regularizers.l2(spec.l2) if spec.l2 else None),
    ]  # fmt: skip
    if spec.dropout:
        stack.append(layers.Dropout(spec.dropout))
    stack.append(layers.Dense(CLASSES, activation="softmax"))
    net = models.Sequential(stack, name=name or _model_name(model))
    net.compile(optimizer=_optimizer(optimizers, spec), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])  # fmt: skip
    return net


def build_keras(model="l2", *, input_shape=INPUT_SHAPE, name: str | None = None):
    """The study model `model` (a kind or a :class:`ModelSpec`) in Keras, compiled (needs TensorFlow).

    Seed it by calling ``keras.utils.set_random_seed(seed)`` first.
    """
    import keras

    spec = _spec(model)
    stack = [
        keras.Input(shape=tuple(input_shape)),
        keras.layers.Flatten(),
        keras.layers.Dense(spec.units, activation="relu",
                           kernel_regularizer=keras.regularizers.l2(spec.l2) if spec.l2 else None),
    ]  # fmt: skip
    if spec.dropout:
        stack.append(keras.layers.Dropout(spec.dropout))
    stack.append(keras.layers.Dense(CLASSES, activation="softmax"))
    net = keras.Sequential(stack, name=name or _model_name(model))
    net.compile(optimizer=_optimizer(keras.optimizers, spec), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])  # fmt: skip
    return net


def build_numpy(model="l2", seed: int = 0, *, inputs: int = 784):
    """The study model `model` as the plain NumPy trainer (no weight decay there)."""
    from .numpy_baseline import NumpyMLP

    spec = _spec(model)
    if spec.weight_decay:
        raise ValueError("the NumPy trainer has no weight decay; use weight_decay=0")
    return NumpyMLP(inputs=inputs, hidden=spec.units, classes=CLASSES, l2=spec.l2, dropout=spec.dropout,
                    seed=seed, learning_rate=spec.learning_rate)  # fmt: skip


def _optimizer(optimizers, spec: ModelSpec):
    """The study's "adam", or Adam with the spec's learning rate and weight decay."""
    if spec.learning_rate == 0.001 and not spec.weight_decay:
        return "adam"
    return optimizers.Adam(learning_rate=float(spec.learning_rate),
                           weight_decay=float(spec.weight_decay) or None)  # fmt: skip


def _model_name(model) -> str:
    return f"study_{model}" if isinstance(model, str) else "study"
