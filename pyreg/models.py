"""``pyreg.models.Sequential``: keras' Sequential API over the native trainer.

A stack of Flatten / Dense / Dropout (/ Activation) layers becomes one native ``_core.Mlp``: its
parameter arena holds every weight (in keras' ``get_weights`` order) and a whole epoch runs in C++
without Python or allocation per batch. What keras does and pyreg mirrors is listed in
docs/KERAS_SEMANTICS.md; deliberate differences are noted where they occur.

This module is the Keras-facing class, as keras' ``models/sequential.py`` is: the layer structure,
compile, fit / evaluate / predict (which check their arguments and delegate), the weights, summary.
Elsewhere: the layer stack as the native spec (``_planning``), the fit loop and the calls into the
native trainer (``_trainer``), weight files (``saving``).
"""

from __future__ import annotations

import numpy as np

from . import _core, _planning, _trainer, saving
from . import layers as layers_mod
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from ._arena import ArenaWeight, arena_weights
from ._checks import check_bool, check_choice, check_int, describe
from .callbacks import Callback, History
from .utils import draw_seed, resolve_threads

__all__ = ["Sequential"]

_METRICS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


def _verbosity(verbose) -> int:
    if verbose == "auto":
        return 1
    v = check_int(verbose, "verbose", minimum=0)
    if v > 2:
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'; got {v}")
    return v


def _validation_schedule(validation_freq):
    """validation_freq (every n epochs, or a list of epochs) as a test of a 0-based epoch."""
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
    return should_validate


def _callback_list(callbacks) -> list[Callback]:
    user_callbacks = list(callbacks or [])
    for cb in user_callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks must be pyreg.callbacks.Callback instances; got {describe(cb)}"
            )
    return user_callbacks


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
        _planning.plan(self._layers, self._sample_shape)  # refuse an unsupported stack at once
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
        input_dropout, specs, denses = _planning.plan(self._layers, sample_shape)
        if not specs:
            return  # nothing to build until a Dense layer arrives
        if self._seed is None:
            self._seed = draw_seed()
        mlp = _core.Mlp(
            int(np.prod(sample_shape)),
            specs,
            input_dropout,
            self._seed,
            **_planning.input_noise(self._layers),
        )
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
            _planning.check_output_for_loss(self._layers, self._sample_shape, self.loss)
            mlp.set_optimizer(**self.optimizer._native_args())
            mlp.label_smoothing = self.loss.label_smoothing

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
            _planning.check_output_for_loss(self._layers, self._sample_shape, self.loss)
            self._mlp.set_optimizer(**opt._native_args())
            self._mlp.label_smoothing = self.loss.label_smoothing

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(
                f"you must compile the model before calling {what}(): call model.compile(...) first"
            )

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
        should_validate = _validation_schedule(validation_freq)
        user_callbacks = _callback_list(callbacks)
        return _trainer.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                            callbacks=user_callbacks, validation_split=validation_split,
                            validation_data=validation_data, validation_batch_size=validation_batch_size,
                            should_validate=should_validate, shuffle=shuffle, initial_epoch=initial_epoch,
                            threads=threads, sparse=sparse, terminate_on_nan=terminate_on_nan)  # fmt: skip

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
        logs = _trainer.evaluate(
            self, x, y, batch_size=batch_size, verbose=verbose, threads=threads, sparse=sparse
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
        return _trainer.predict(
            self, x, batch_size=batch_size, verbose=verbose, threads=threads, sparse=sparse
        )

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
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Loads weights saved by save_weights; the model is unchanged unless everything checks out."""
        saving.load_weights(self, filepath)

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
