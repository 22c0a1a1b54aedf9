"""``pyreg.models.Sequential``: keras' Sequential API over the native trainer.

A stack of Flatten / Dense / Dropout (/ Activation) layers becomes one native ``_core.Mlp``: its
parameter arena holds every weight (in keras' ``get_weights`` order) and a whole epoch runs in C++
without Python or allocation per batch. What keras does and pyreg mirrors is listed in
../shared/KERAS_SEMANTICS.md; deliberate differences are noted where they occur.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import _core
from . import layers as layers_mod
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from ._arena import ArenaWeight, arena_weights
from ._checks import (
    as_labels,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    describe,
    features_maybe_unchecked,
)
from ._io import write_atomic
from .callbacks import Callback, CallbackList, History, TerminateOnNaN
from .progbar import Progbar, format_logs
from .utils import draw_seed, resolve_threads

__all__ = ["Sequential"]

_METRICS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")
_WEIGHTS_FORMAT = "pyreg-weights-v1"


def _verbosity(verbose) -> int:
    if verbose == "auto":
        return 1
    v = check_int(verbose, "verbose", minimum=0)
    if v > 2:
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'; got {v}")
    return v


def _combine_rates(r1: float, r2: float) -> float:
    """Two dropouts in a row keep a unit with probability (1-r1)(1-r2): one dropout of this rate."""
    return 1.0 - (1.0 - r1) * (1.0 - r2)


class Sequential:
    """A linear stack of layers, trained natively. Mirrors ``keras.Sequential``.

    Example::

        model = Sequential([
            layers.Flatten(input_shape=(28, 28)),
            layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(0.001)),
            layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train / 255.0, y_train, epochs=5, validation_data=(x_test / 255.0, y_test))
    """

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string; got {describe(name)}")
        if not check_bool(trainable, "trainable"):
            raise NotImplementedError("trainable=False is not supported by pyreg's trainer")
        self.name = name or "sequential"
        self._layers: list[layers_mod.Layer] = []
        self._sample_shape: tuple[int, ...] | None = None
        self._mlp = None
        self._seed: int | None = None
        self._views: list[ArenaWeight] | None = None
        self.optimizer: optimizers_mod.Optimizer | None = None
        self.loss: losses_mod.Loss | None = None
        self._metric_names: list[str] = []
        self.stop_training = False
        self.history: History | None = None
        self._epochs_seen = 0  # every epoch ever run: keys the shuffle so no two epochs repeat
        if layers is not None:
            if isinstance(layers, layers_mod.Layer) or not hasattr(layers, "__iter__"):
                raise TypeError(f"layers must be a list of layers; got {describe(layers)}")
            for layer in layers:
                self.add(layer)

    # ------------------------------------------------------------------------------------------
    # structure

    @property
    def layers(self) -> list[layers_mod.Layer]:
        """The layers, without the input layer (as keras lists them)."""
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self._mlp is not None

    @property
    def input_shape(self) -> tuple | None:
        return None if self._sample_shape is None else (None, *self._sample_shape)

    @property
    def output_shape(self) -> tuple | None:
        dense = [lay for lay in self._layers if isinstance(lay, layers_mod.Dense)]
        return (None, dense[-1].units) if dense else None

    def add(self, layer) -> None:
        """Appends a layer (an InputLayer only first). A built model is rebuilt, keeping its weights."""
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(
                f"Sequential accepts pyreg.layers instances (Input, Flatten, Dense, Dropout, Activation); "
                f"got {describe(layer)}"
            )
        self._check_not_busy("add a layer")
        if isinstance(layer, layers_mod.InputLayer):
            if self._layers or self._sample_shape is not None:
                raise ValueError("an Input layer must come first in a Sequential model")
            self._sample_shape = layer.shape
            return
        if layer._model is not None and layer._model is not self:
            raise ValueError(f"layer {layer.name!r} already belongs to another model")
        if layer in self._layers:
            raise ValueError(f"layer {layer.name!r} is already in this model")
        if not self._layers and self._sample_shape is None and layer._input_shape is not None:
            self._sample_shape = layer._input_shape
        kept = self._snapshot()
        self._layers.append(layer)
        self._plan(self._sample_shape)  # refuse an unsupported stack at once
        if self._sample_shape is not None:
            self._build(self._sample_shape, kept)

    def pop(self) -> layers_mod.Layer:
        """Removes the last layer (the model is rebuilt, keeping the other layers' weights)."""
        if not self._layers:
            raise ValueError("there is no layer to pop")
        self._check_not_busy("pop a layer")
        kept = self._snapshot()
        layer = self._layers.pop()
        layer._model = None
        layer._weight_index = None
        self._mlp = None
        self._views = None
        if self._sample_shape is not None and any(
            isinstance(lay, layers_mod.Dense) for lay in self._layers
        ):
            self._build(self._sample_shape, kept)
        return layer

    def _plan(self, sample_shape):
        """The native spec of the layer stack: (input_dropout, [dense spec dicts], [Dense layers]).

        Raises ValueError/NotImplementedError for stacks the trainer cannot represent.
        """
        input_dropout = 0.0
        specs: list[dict] = []
        denses: list[layers_mod.Dense] = []
        flattened = sample_shape is None or len(sample_shape) == 1
        last_was_dense = False
        for layer in self._layers:
            if isinstance(layer, layers_mod.Flatten):
                flattened = True
                last_was_dense = False
            elif isinstance(layer, layers_mod.Dropout):
                if not specs:
                    input_dropout = _combine_rates(input_dropout, layer.rate)
                else:
                    specs[-1]["dropout"] = _combine_rates(specs[-1]["dropout"], layer.rate)
                last_was_dense = False
            elif isinstance(layer, layers_mod.Activation):
                if not (last_was_dense and specs[-1]["activation"] == "linear"):
                    raise NotImplementedError(
                        f"Activation layer {layer.name!r} must directly follow a Dense layer with a linear "
                        "activation (pyreg folds it into that layer)"
                    )
                specs[-1]["activation"] = layer.activation
                last_was_dense = False
            elif isinstance(layer, layers_mod.Dense):
                if not flattened:
                    raise ValueError(
                        f"Dense layer {layer.name!r} receives samples of shape {tuple(sample_shape)}; add a "
                        "Flatten() layer before it (pyreg's Dense works on flat samples)"
                    )
                if specs and specs[-1]["activation"] == "softmax":
                    raise NotImplementedError(
                        "softmax is supported only as the last Dense layer's activation"
                    )
                specs.append(self._dense_spec(layer))
                denses.append(layer)
                last_was_dense = True
            else:
                raise TypeError(
                    f"pyreg's Sequential cannot run layer {layer.name!r} of type {type(layer).__name__}"
                )
        return input_dropout, specs, denses

    def _check_complete(self) -> None:
        """Checks that apply to a finished stack (not while layers are still being added)."""
        specs = self._plan(self._sample_shape)[1]
        if not specs:
            raise ValueError("the model needs at least one Dense layer")
        if specs[-1]["dropout"] > 0:
            raise NotImplementedError(
                "Dropout after the output layer is not supported (it would drop output probabilities)"
            )

    @staticmethod
    def _dense_spec(layer: layers_mod.Dense) -> dict:
        kr, br = layer.kernel_regularizer, layer.bias_regularizer
        return {
            "units": layer.units,
            "activation": layer.activation,
            "use_bias": layer.use_bias,
            "kernel_l1": kr.l1 if kr else 0.0,
            "kernel_l2": kr.l2 if kr else 0.0,
            "bias_l1": br.l1 if br else 0.0,
            "bias_l2": br.l2 if br else 0.0,
            "dropout": 0.0,
        }

    def build(self, input_shape=None) -> None:
        """Creates the weights for samples of ``input_shape`` (with or without the batch axis)."""
        if input_shape is None:
            input_shape = self._sample_shape
            if input_shape is None:
                raise ValueError("build() needs input_shape, e.g. build((None, 28, 28))")
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        shape = layers_mod._shape_tuple(shape, "input_shape")
        if self.built and shape == self._sample_shape:
            return
        self._sample_shape = shape
        self._build(shape, self._snapshot())

    def _snapshot(self) -> dict:
        """Current weights by layer, to carry over when the stack is rebuilt."""
        if self._mlp is None:
            return {}
        return {lay: lay.get_weights() for lay in self._layers if lay.weights}

    def _build(self, sample_shape, kept: dict) -> None:
        input_dropout, specs, denses = self._plan(sample_shape)
        if not specs:
            return  # nothing to build until a Dense layer arrives
        if self._seed is None:
            self._seed = draw_seed()
        mlp = _core.Mlp(int(np.prod(sample_shape)), specs, input_dropout, self._seed)
        self._mlp, self._views = mlp, None
        info = mlp.param_info()
        index = 0
        for li, layer in enumerate(denses):
            layer._model, layer._weight_index = self, index
            kernel_shape = tuple(info[index][3])
            index += 2 if layer.use_bias else 1
            if layer in kept and [w.shape for w in layer.weights] == [w.shape for w in kept[layer]]:
                layer.set_weights(kept[layer])
                continue
            rng = np.random.default_rng([self._seed, li])
            layer.kernel.assign(layer.kernel_initializer(kernel_shape, rng))
            if layer.use_bias:
                layer.bias.assign(layer.bias_initializer((layer.units,), rng))
        if self.optimizer is not None:
            self._check_output_for_loss()
            mlp.set_optimizer(**self.optimizer._native_args())

    def _weight_views(self) -> list[ArenaWeight]:
        """Every weight in the arena (read/write in keras' layout), keras order; cached per build."""
        if self._views is None:
            self._views = arena_weights(self._mlp)
        return self._views

    def _require_built(self, what: str) -> None:
        if self._mlp is None:
            raise ValueError(
                f"cannot {what}: the model has no weights yet; give it an input shape (Input(shape=...) or "
                "input_shape=...) or call build(), fit() or predict() first"
            )

    def _check_not_busy(self, what: str) -> None:
        if self._mlp is not None and self._mlp.busy:
            raise RuntimeError(
                f"cannot {what} while this model is training or predicting in another thread"
            )

    # ------------------------------------------------------------------------------------------
    # compile

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):  # fmt: skip
        """Sets the optimizer, loss and metrics; resets the optimizer state (as keras does).

        Args:
            optimizer: 'adam', 'adamw', 'sgd' or a pyreg.optimizers instance (keras' default
                'rmsprop' is not implemented).
            loss: 'sparse_categorical_crossentropy' or 'categorical_crossentropy' (or an instance).
            metrics: None or a list of 'accuracy' (also 'acc', 'sparse_categorical_accuracy',
                'categorical_accuracy').
        """
        if isinstance(optimizer, str) and optimizer.lower() == "rmsprop":
            raise NotImplementedError(
                "optimizer 'rmsprop' (keras' default) is not implemented; use 'adam', 'adamw' or 'sgd'"
            )
        opt = optimizers_mod.get(optimizer)
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        loss_obj = losses_mod.get(loss)
        for arg, value in (("loss_weights", loss_weights), ("weighted_metrics", weighted_metrics)):
            if value is not None:
                raise NotImplementedError(
                    f"compile({arg}=...) is not supported by pyreg; got {describe(value)}"
                )
        names: list[str] = []
        if metrics is not None:
            if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
                raise TypeError(
                    f"metrics must be a list such as ['accuracy']; got {describe(metrics)}"
                )
            for m in metrics:
                check_choice(m, "each metric", _METRICS)
                if m not in names:
                    names.append(m)
        self._check_not_busy("compile")
        self.optimizer, self.loss, self._metric_names = opt, loss_obj, names
        opt._model = self
        if self._mlp is not None:
            self._check_output_for_loss()
            self._mlp.set_optimizer(**opt._native_args())

    def _check_output_for_loss(self) -> None:
        self._check_complete()
        out = self._plan(self._sample_shape)[1][-1]["activation"]
        want = "linear" if self.loss.from_logits else "softmax"
        if out != want:
            hint = (
                "use a linear last layer with from_logits=True"
                if self.loss.from_logits
                else "use activation='softmax' on the last Dense layer, or from_logits=True with a linear one"
            )
            raise ValueError(
                f"{self.loss.name}(from_logits={self.loss.from_logits}) needs a {want} output layer; the last "
                f"Dense layer has activation {out!r} ({hint})"
            )

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(
                f"you must compile the model before calling {what}(): call model.compile(...) first"
            )

    # ------------------------------------------------------------------------------------------
    # data

    def _features(
        self, x, name: str = "x", *, check_finite: bool = True
    ) -> tuple[np.ndarray, bool]:
        """(features, checked): see features_maybe_unchecked; always checked unless check_finite=False."""
        if self._sample_shape is None:
            arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
            if getattr(arr, "ndim", 0) < 2:
                raise ValueError(
                    f"{name} must have a batch axis and at least one feature axis; got {describe(x)}"
                )
            self.build((None, *arr.shape[1:]))
        return features_maybe_unchecked(x, name, self._sample_shape, check_finite=check_finite)

    def _labels(self, y, n: int, name: str = "y") -> np.ndarray:
        return as_labels(y, name, n, self.output_shape[1], one_hot=self.loss.one_hot)

    def _logs(self, loss: float, accuracy: float, prefix: str = "") -> dict:
        logs = {f"{prefix}loss": float(loss)}
        for m in self._metric_names:
            logs[f"{prefix}{m}"] = float(accuracy)
        return logs

    # ------------------------------------------------------------------------------------------
    # training

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, *,
            threads=None, sparse="auto", terminate_on_nan=True):  # fmt: skip
        """Trains for ``epochs`` epochs; returns a :class:`pyreg.callbacks.History`.

        Keras' arguments and semantics (fresh shuffle each epoch, partial last batch, running
        batch-weighted means in the logs, validation with dropout off, ``validation_split`` taking the
        last rows before shuffling). pyreg extras: ``threads`` (0 = all cores), ``sparse``
        ('auto', 'dense', 'sparse': how the first layer reads its input; results agree within float32
        rounding) and ``terminate_on_nan`` (stop at a NaN/Inf batch loss, without applying that
        batch's update; on by default).
        """
        self._require_compiled("fit")
        for arg, value in (("class_weight", class_weight), ("sample_weight", sample_weight),
                           ("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):  # fmt: skip
            if value is not None:
                raise NotImplementedError(
                    f"fit({arg}=...) is not supported by pyreg; got {describe(value)}"
                )
        if y is None:
            raise ValueError("fit() needs labels y (datasets and generators are not supported)")
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        epochs = check_int(epochs, "epochs", minimum=0)
        initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
        verbose = _verbosity(verbose)
        if shuffle == "batch":
            raise NotImplementedError(
                "shuffle='batch' is not supported by pyreg; use shuffle=True or False"
            )
        shuffle = check_bool(shuffle, "shuffle")
        terminate_on_nan = check_bool(terminate_on_nan, "terminate_on_nan")
        sparse = check_choice(sparse, "sparse", ("auto", "dense", "sparse"))
        threads = resolve_threads(threads)
        if isinstance(validation_freq, int) and not isinstance(validation_freq, bool):
            freq = check_int(validation_freq, "validation_freq", minimum=1)

            def should_validate(e):
                return (e + 1) % freq == 0
        elif isinstance(validation_freq, (list, tuple, set)):
            wanted = {check_int(v, "validation_freq entry", minimum=1) for v in validation_freq}

            def should_validate(e):
                return e + 1 in wanted
        else:
            raise TypeError(
                f"validation_freq must be an int or a list of epochs; got {describe(validation_freq)}"
            )
        user_callbacks = list(callbacks or [])
        for cb in user_callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be pyreg.callbacks.Callback instances; got {describe(cb)}"
                )
        if any(isinstance(cb, TerminateOnNaN) for cb in user_callbacks):
            terminate_on_nan = True

        # the NaN/Inf check of x: in the first epoch's row scans (free; a pass of its own costs ~5% of an
        # MNIST epoch) when nothing can see that epoch before it ends (no callbacks, no output), as a
        # failed check puts the model back; else now. the labels and the validation data, including
        # the rows validation_split takes from x (the scans never read them): now.
        defer_check = (
            not user_callbacks and verbose == 0 and epochs > initial_epoch and not validation_split
        )
        xf, x_checked = self._features(x, "x", check_finite=not defer_check)
        yl = self._labels(y, xf.shape[0], "y")
        xv = yv = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    f"validation_data must be a tuple (x_val, y_val); got {describe(validation_data)}"
                )
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise NotImplementedError("validation sample weights are not supported by pyreg")
            xv = self._features(validation_data[0], "validation_data[0]")[0]
            yv = self._labels(validation_data[1], xv.shape[0], "validation_data[1]")
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
        val_batch = batch_size if validation_batch_size is None else check_int(
            validation_batch_size, "validation_batch_size", minimum=1)  # fmt: skip

        steps = -(-xf.shape[0] // batch_size)
        history_before, stop_before = self.history, self.stop_training
        self.history = history = History()
        cbs = CallbackList(
            [*user_callbacks, history], self, {"verbose": verbose, "epochs": epochs, "steps": steps}
        )
        wants_batches = cbs.wants_batches
        self.stop_training = False
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = Progbar(steps, verbose)

            def progress(step, steps_, seen, loss, acc, bar=bar):
                logs = self._logs(loss, acc)
                bar.update(step, seen, logs)
                if wants_batches:
                    cbs.on_train_batch_end(step - 1, logs)
                return not self.stop_training

            interval = 0.0 if wants_batches else (0.05 if bar.live else 0.5)
            # batch hooks may change the weights: no first-layer lookahead past them (sweep.h)
            check_input = not x_checked and epoch == initial_epoch
            res = self._mlp.train_epoch(xf, yl, batch_size, shuffle, self._epochs_seen, threads, sparse, progress,
                                        interval, terminate_on_nan, lookahead=not wants_batches,
                                        check_input=check_input)  # fmt: skip
            if res["bad_input"]:  # nothing was trained: raise as the up-front check does
                self.history, self.stop_training = history_before, stop_before
                self._features(x, "x")
                raise ValueError("x must be finite")  # not reached: the check above raises
            self._epochs_seen += 1
            logs = self._logs(res["loss"], res["accuracy"])
            if res["nonfinite"]:
                warnings.warn(
                    f"Batch {res['nonfinite_step']}: invalid loss (NaN or Inf), terminating training; that "
                    "batch's update was not applied",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.stop_training = True
            if xv is not None and should_validate(epoch):
                vloss, vacc = self._mlp.evaluate(xv, yv, val_batch, threads, sparse)
                logs.update(self._logs(vloss, vacc, "val_"))
            bar.finish(res["steps"], res["seen"], logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return history

    # ------------------------------------------------------------------------------------------
    # inference

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, *, threads=None, sparse="auto"):  # fmt: skip
        """Loss (cross-entropy mean + regularisation penalty) and metrics in inference mode.

        Returns ``loss`` alone when no metric was compiled, else ``[loss, accuracy, ...]``, or a dict
        with ``return_dict=True`` (keras' conventions).
        """
        self._require_compiled("evaluate")
        for arg, value in (("sample_weight", sample_weight), ("steps", steps)):
            if value is not None:
                raise NotImplementedError(
                    f"evaluate({arg}=...) is not supported by pyreg; got {describe(value)}"
                )
        if y is None:
            raise ValueError("evaluate() needs labels y")
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        verbose = _verbosity(verbose)
        return_dict = check_bool(return_dict, "return_dict")
        sparse = check_choice(sparse, "sparse", ("auto", "dense", "sparse"))
        threads = resolve_threads(threads)
        xf = self._features(x, "x")[0]
        yl = self._labels(y, xf.shape[0], "y")
        t0 = time.perf_counter()
        loss, acc = self._mlp.evaluate(xf, yl, batch_size, threads, sparse)
        logs = self._logs(loss, acc)
        if verbose:
            steps_ = -(-xf.shape[0] // batch_size)
            print(
                f"{steps_}/{steps_} - {time.perf_counter() - t0:.2f}s - {format_logs(logs)}",
                flush=True,
            )
        if return_dict:
            return logs
        if not self._metric_names:
            return logs["loss"]
        return list(logs.values())

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, *, threads=None,
                sparse="auto") -> np.ndarray:  # fmt: skip
        """The model's output (N, units) float32 in inference mode (dropout off)."""
        if steps is not None:
            raise NotImplementedError(
                f"predict(steps=...) is not supported by pyreg; got {describe(steps)}"
            )
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        verbose = _verbosity(verbose)
        sparse = check_choice(sparse, "sparse", ("auto", "dense", "sparse"))
        threads = resolve_threads(threads)
        xf = self._features(x, "x")[0]
        self._require_built("predict")
        t0 = time.perf_counter()
        out = self._mlp.predict(xf, batch_size, threads, sparse)
        if verbose:
            steps_ = -(-xf.shape[0] // batch_size)
            print(f"{steps_}/{steps_} - {time.perf_counter() - t0:.2f}s", flush=True)
        return out

    def __call__(self, x, training=False):
        if training:
            raise NotImplementedError(
                "calling a pyreg model with training=True is not supported; use fit()"
            )
        return self.predict(x, verbose=0)

    # ------------------------------------------------------------------------------------------
    # weights

    @property
    def weights(self) -> list[layers_mod.Variable]:
        return [w for lay in self._layers for w in lay.weights]

    trainable_weights = weights

    @property
    def non_trainable_weights(self) -> list:
        return []

    def count_params(self) -> int:
        self._require_built("count parameters")
        return int(self._mlp.num_params)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, in keras' order ([kernel_0, bias_0, kernel_1, bias_1, ...])."""
        if self._mlp is None:
            return []
        self._check_not_busy("read the weights")
        return [v.read() for v in self._weight_views()]

    def set_weights(self, weights) -> None:
        """Sets every weight from a list in keras' order; checks count and shapes before changing any."""
        self._require_built("set weights")
        self._check_not_busy("set the weights")
        if isinstance(weights, np.ndarray) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights must be a list of arrays; got {describe(weights)}")
        weights = list(weights)
        views = self._weight_views()
        if len(weights) != len(views):
            raise ValueError(
                f"set_weights expects a list of {len(views)} arrays for this model; got {len(weights)}"
            )
        arrays = []
        for i, (w, v) in enumerate(zip(weights, views)):
            try:
                a = np.asarray(w, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise TypeError(f"weights[{i}] must be a numeric array; got {describe(w)}") from e
            if a.shape != v.shape:
                raise ValueError(f"weights[{i}] must have shape {v.shape}; got {a.shape}")
            arrays.append(a)
        for a, v in zip(arrays, views):
            v.write(a)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Saves every weight to an ``.npz`` file, atomically (temporary file, then rename).

        The file records the format, the layer names and every shape, which load_weights checks.
        """
        self._require_built("save weights")
        path = Path(os.fspath(filepath))
        if path.suffix == ".h5":
            raise ValueError(
                f"pyreg saves weights as .npz, not HDF5; use a name like 'model.weights.npz' (got {str(path)!r})"
            )
        if path.suffix != ".npz":
            raise ValueError(
                f"filepath must end with '.npz' (e.g. 'model.weights.npz'); got {str(path)!r}"
            )
        if not check_bool(overwrite, "overwrite") and path.exists():
            raise FileExistsError(f"{path} exists and overwrite=False; nothing was written")
        weights = self.get_weights()
        meta = {
            "format": _WEIGHTS_FORMAT,
            "layers": [
                [lay.name, [list(w.shape) for w in lay.weights]]
                for lay in self._layers
                if lay.weights
            ],
        }
        arrays = {f"w{i}": w for i, w in enumerate(weights)}
        write_atomic(path, lambda f: np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays))

    def load_weights(self, filepath) -> None:
        """Loads weights saved by save_weights; the model is unchanged unless everything checks out."""
        self._require_built("load weights")
        path = Path(os.fspath(filepath))
        if not path.exists():
            raise FileNotFoundError(f"no weights file at {path}")
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
                meta = json.loads(str(f["__meta__"])) if "__meta__" in f.files else None
                if meta is None or meta.get("format") != _WEIGHTS_FORMAT:
                    raise ValueError(
                        f"{path} is not a pyreg weights file (no '{_WEIGHTS_FORMAT}' marker)"
                    )
                n = len([k for k in f.files if k.startswith("w")])
                weights = [f[f"w{i}"] for i in range(n)]
        except ValueError:
            raise
        except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"{path} is not a readable weights file (truncated or corrupt: {e})"
            ) from e
        views = self._weight_views()
        if len(weights) != len(views):
            raise ValueError(
                f"{path} holds {len(weights)} weight arrays; this model has {len(views)}"
            )
        for i, (w, v) in enumerate(zip(weights, views)):
            if w.shape != v.shape:
                raise ValueError(
                    f"{path}: weight {i} has shape {w.shape}; this model expects {v.shape}"
                )
        self.set_weights(weights)

    # ------------------------------------------------------------------------------------------
    # description

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs) -> None:
        """Prints a table of layers, output shapes and parameter counts."""
        print_fn = print_fn or print
        rows = []
        shape = self._sample_shape
        for lay in self._layers:
            if isinstance(lay, layers_mod.Flatten) and shape is not None:
                shape = (int(np.prod(shape)),)
            elif isinstance(lay, layers_mod.Dense):
                shape = (lay.units,)
            out = "?" if shape is None else str((None, *shape))
            params = lay.count_params() if self.built else 0
            rows.append((f"{lay.name} ({type(lay).__name__})", out, f"{params:,}"))
        w = (34, 26, 12)
        rule = "─" * (sum(w) + 2)
        print_fn(f'Model: "{self.name}"')
        print_fn(rule)
        print_fn(f"{'Layer (type)':<{w[0]}} {'Output Shape':<{w[1]}} {'Param #':>{w[2]}}")
        print_fn(rule)
        for r in rows:
            print_fn(f"{r[0]:<{w[0]}} {r[1]:<{w[1]}} {r[2]:>{w[2]}}")
        print_fn(rule)
        total = self._mlp.num_params if self.built else 0
        print_fn(f" Total params: {total:,} ({total * 4 / 1024:.2f} KB)")
        print_fn(f" Trainable params: {total:,} ({total * 4 / 1024:.2f} KB)")
        print_fn(" Non-trainable params: 0 (0.00 B)")

    def get_config(self) -> dict:
        return {"name": self.name, "layers": [{"class_name": type(lay).__name__, "config": lay.get_config()}
                                              for lay in self._layers]}  # fmt: skip

    def __repr__(self) -> str:
        kinds = ", ".join(type(lay).__name__ for lay in self._layers)
        return f"<Sequential name={self.name}, layers=[{kinds}], built={self.built}>"

    def to_keras(self):
        """The equivalent keras.Sequential with the same weights (needs TensorFlow)."""
        from .interop import to_keras

        return to_keras(self)
