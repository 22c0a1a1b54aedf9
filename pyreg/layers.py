"""Layers, as in ``keras.layers``: Input, InputLayer, Flatten, Dense, Dropout, Activation and the noise
layers GaussianNoise, GaussianDropout, AlphaDropout.

Layers describe the model; the weights live in the native model's parameter arena once the
``Sequential`` is built, and ``layer.kernel`` / ``layer.bias`` are :class:`Variable` views onto them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from . import activations, constraints, initializers, regularizers
from ._checks import check_bool, check_fraction, check_int, check_nonneg_float, describe

__all__ = [
    "Activation",
    "AlphaDropout",
    "Dense",
    "Dropout",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "Input",
    "InputLayer",
    "Layer",
    "Variable",
]

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)


def _unique_name(base: str) -> str:
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


def _shape_tuple(shape, name: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(
            f"{name} must be a tuple of positive integers such as (28, 28); got {describe(shape)}"
        )
    return tuple(check_int(d, f"{name}[{i}]", minimum=1) for i, d in enumerate(shape))


class Variable:
    """A weight of a built model (keras.Variable-like): a live view onto the native arena."""

    def __init__(self, model, index: int, name: str, path: str):
        self._model = model
        self._index = index
        self.name = name
        self.path = path

    def _weight(self):
        return self._model._weight_views()[self._index]

    @property
    def shape(self) -> tuple[int, ...]:
        return self._weight().shape

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def trainable(self) -> bool:
        return True

    def numpy(self) -> np.ndarray:
        """A copy of the current values."""
        return self._weight().read()

    @property
    def value(self) -> np.ndarray:
        return self.numpy()

    def assign(self, value) -> None:
        """Overwrites the weight (shape must match; converted to float32)."""
        self._model._check_not_busy("assign a variable")
        a = np.asarray(value, dtype=np.float32)
        if a.shape != self.shape:
            raise ValueError(
                f"cannot assign a value of shape {a.shape} to variable {self.path} of shape {self.shape}"
            )
        self._weight().write(a)

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype=float32>"


class Layer:
    """Base class of pyreg's layers."""

    _base_name = "layer"

    def __init__(self, name: str | None = None, input_shape=None, input_dim=None, dtype=None, trainable=True,
                 **kwargs):  # fmt: skip
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(kwargs)}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string; got {describe(name)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(
                f"dtype must be 'float32' (pyreg computes in float32); got {describe(dtype)}"
            )
        if not check_bool(trainable, "trainable"):
            raise NotImplementedError(
                "trainable=False (frozen layers) is not supported by pyreg's trainer"
            )
        self.name = name or _unique_name(self._base_name)
        self._input_shape = None
        if input_shape is not None:
            self._input_shape = _shape_tuple(input_shape, "input_shape")
        elif input_dim is not None:
            self._input_shape = (check_int(input_dim, "input_dim", minimum=1),)
        self._model = None
        self._weight_index = None  # index of this layer's first weight in the model's get_weights()

    @property
    def weights(self) -> list[Variable]:
        return []

    trainable_weights = weights

    def get_weights(self) -> list[np.ndarray]:
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights) -> None:
        mine = self.weights
        weights = list(weights)
        if len(weights) != len(mine):
            raise ValueError(
                f"layer {self.name!r} expects {len(mine)} weight arrays; got {len(weights)}"
            )
        arrays = [np.asarray(w, dtype=np.float32) for w in weights]
        for v, a in zip(mine, arrays):
            if a.shape != v.shape:
                raise ValueError(
                    f"layer {self.name!r}: weight {v.name} must have shape {v.shape}; got {a.shape}"
                )
        for v, a in zip(mine, arrays):
            v.assign(a)

    def count_params(self) -> int:
        return int(sum(np.prod(w.shape) for w in self.weights))

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """The model's input: samples of ``shape`` (without the batch axis)."""

    _base_name = "input_layer"

    def __init__(
        self, shape=None, batch_size=None, name=None, dtype=None, input_shape=None, **kwargs
    ):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs shape=, e.g. InputLayer(shape=(784,))")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.shape = _shape_tuple(shape, "shape")
        self._input_shape = self.shape
        self.batch_size = check_int(batch_size, "batch_size", minimum=1, allow_none=True)

    def get_config(self) -> dict:
        return {"name": self.name, "shape": self.shape}


def Input(shape=None, batch_size=None, name=None, dtype=None, **kwargs) -> InputLayer:
    """The model's input, as ``keras.Input(shape=(28, 28))``; place it first in a Sequential."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kwargs)


class Flatten(Layer):
    """Flattens each sample to one axis: (N, 28, 28) -> (N, 784)."""

    _base_name = "flatten"

    def __init__(self, data_format=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"data_format must be None or 'channels_last'; got {describe(data_format)}"
            )
        super().__init__(**kwargs)


class Dense(Layer):
    """``output = activation(input @ kernel + bias)``, kernel of shape (input_dim, units).

    Args:
        units: output width.
        activation: 'relu', 'linear' (None), 'sigmoid', 'tanh' or 'softmax' (last layer only).
        use_bias: whether to add a bias.
        kernel_initializer: default 'glorot_uniform'.
        bias_initializer: default 'zeros'.
        kernel_regularizer: e.g. ``pyreg.regularizers.l2(0.001)``: adds its penalty to the loss.
        bias_regularizer: the same for the bias.
        activity_regularizer: a penalty on the layer's output (after the activation), divided by the
            batch size, in the training loss and in evaluate's (Keras 3).
        kernel_constraint: e.g. ``pyreg.constraints.MaxNorm(3)``: applied after every update.
        bias_constraint: the same for the bias.

    Input shape: (batch, input_dim). Output shape: (batch, units).
    """

    _base_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.units = check_int(units, "units", minimum=1)
        self.activation = activations.get(activation)
        self.use_bias = check_bool(use_bias, "use_bias")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint, "kernel_constraint")
        self.bias_constraint = constraints.get(bias_constraint, "bias_constraint")
        if lora_rank is not None:
            raise NotImplementedError(
                f"Dense(lora_rank=...) is not supported by pyreg; got {describe(lora_rank)}"
            )

    @property
    def weights(self) -> list[Variable]:
        if self._model is None or self._weight_index is None:
            return []
        n = 2 if self.use_bias else 1
        names = ("kernel", "bias")[:n]
        return [
            Variable(self._model, self._weight_index + i, names[i], f"{self.name}/{names[i]}")
            for i in range(n)
        ]

    trainable_weights = weights

    @property
    def kernel(self) -> Variable | None:
        w = self.weights
        return w[0] if w else None

    @property
    def bias(self) -> Variable | None:
        w = self.weights
        return w[1] if len(w) > 1 else None

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.name,
            "bias_initializer": self.bias_initializer.name,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
        }


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each unit with probability ``rate`` and scales the
    others by ``1 / (1 - rate)``; identity at inference. Masks come from a counter-based generator
    keyed by (model seed, step, layer, element), so runs repeat exactly for a given seed.

    Args:
        rate: fraction to drop, in [0, 1).
        noise_shape: not supported (None only).
        seed: ignored beyond validation: masks follow the model's seed (pyreg.utils.set_random_seed).
    """

    _base_name = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_fraction(rate, "rate")
        if noise_shape is not None:
            raise NotImplementedError(
                f"Dropout(noise_shape=...) is not supported by pyreg; got {describe(noise_shape)}"
            )
        self.seed = check_int(seed, "seed", minimum=0, allow_none=True)

    def get_config(self) -> dict:
        return {"name": self.name, "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """Applies an activation; pyreg folds it into the Dense layer right before it (which must be linear)."""

    _base_name = "activation"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def get_config(self) -> dict:
        return {"name": self.name, "activation": self.activation}


# -------------------------------------------------------------------------------------------------
# noise layers (keras/src/layers/regularization/): active in training only, planned as the output
# transform of the Dense layer before them (or of the input), drawn natively (cpp/noise.h).


class _NoiseLayer(Layer):
    """Base of the noise layers: ``noise_kind`` names the native transform, ``noise_param`` its
    stddev or rate (0: the identity, also in training)."""

    noise_kind = ""

    @property
    def noise_param(self) -> float:
        raise NotImplementedError


def _noise_rate(rate) -> float:
    # keras accepts rate=1 and then fails with ZeroDivisionError at the first training call
    return check_fraction(rate, "rate")


def _noise_seed(seed):
    return check_int(seed, "seed", minimum=0, allow_none=True)


class GaussianNoise(_NoiseLayer):
    """Additive zero-centred Gaussian noise in training: ``x + N(0, stddev)``; identity at inference
    (evaluate, predict, validation).

    Args:
        stddev: the noise's standard deviation, in [0, 1] as Keras requires.
        seed: accepted for Keras compatibility; the noise follows the model's seed
            (pyreg.utils.set_random_seed) through pyreg's own counter-based streams, so it agrees with
            Keras in distribution, not bitwise.
    """

    _base_name = "gaussian_noise"
    noise_kind = "gaussian_noise"

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        stddev = check_nonneg_float(stddev, "stddev")
        if stddev > 1.0:
            raise ValueError(
                f"stddev must be in [0, 1] (as keras.layers.GaussianNoise); got {stddev}"
            )
        self.stddev = stddev
        self.seed = _noise_seed(seed)

    @property
    def noise_param(self) -> float:
        return self.stddev

    def get_config(self) -> dict:
        return {"name": self.name, "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_NoiseLayer):
    """Multiplicative one-centred Gaussian noise in training: ``x * N(1, sqrt(rate / (1 - rate)))``;
    identity at inference.

    Args:
        rate: drop probability that sets the noise's standard deviation, in [0, 1). Keras accepts 1
            and fails at the first training call; pyreg refuses it here.
        seed: as :class:`GaussianNoise`.
    """

    _base_name = "gaussian_dropout"
    noise_kind = "gaussian_dropout"

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _noise_rate(rate)
        self.seed = _noise_seed(seed)

    @property
    def noise_param(self) -> float:
        return self.rate

    def get_config(self) -> dict:
        return {"name": self.name, "rate": self.rate, "seed": self.seed}


class AlphaDropout(_NoiseLayer):
    """Alpha dropout in training, which keeps a SELU network's mean and variance: each unit is kept
    with probability ``1 - rate``, dropped units are set to SELU's negative saturation, then
    ``y = a * x' + b`` (Keras' constants); identity at inference.

    Args:
        rate: fraction to drop, in [0, 1). Keras accepts 1 and fails at the first training call;
            pyreg refuses it here.
        noise_shape: not supported (None only).
        seed: as :class:`GaussianNoise`.
    """

    _base_name = "alpha_dropout"
    noise_kind = "alpha_dropout"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _noise_rate(rate)
        if noise_shape is not None:
            raise NotImplementedError(
                f"AlphaDropout(noise_shape=...) is not supported by pyreg; got {describe(noise_shape)}"
            )
        self.seed = _noise_seed(seed)

    @property
    def noise_param(self) -> float:
        return self.rate

    def get_config(self) -> dict:
        return {"name": self.name, "rate": self.rate, "seed": self.seed}
