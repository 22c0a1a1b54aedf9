"""Bad input everywhere a user can reach: each gets a ValueError or TypeError naming the argument,
what was expected and what was received (kernel wrappers: tests/test_bindings.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyreg import callbacks, layers, losses, models, optimizers, regularizers, utils


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


@pytest.fixture
def model():
    utils.set_random_seed(0)
    m = models.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(5, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)


# ---------------------------------------------------------------------------------------------
# layers and construction


@pytest.mark.parametrize(
    ("make", "exc", "text"),
    [
        (lambda: layers.Dense(0), ValueError, "units must be >= 1; got 0"),
        (lambda: layers.Dense(2.5), TypeError, "units must be an integer; got 2.5"),
        (
            lambda: layers.Dense(4, activation="gelu"),
            ValueError,
            "activation must be one of 'linear', 'relu', 'sigmoid', 'tanh', 'softmax' or None; got 'gelu'",
        ),
        (
            lambda: layers.Dense(4, kernel_regularizer="l3"),
            ValueError,
            "regularizer must be None, 'l1', 'l2', 'l1_l2'",
        ),
        (
            lambda: layers.Dense(4, kernel_initializer="orthogonal"),
            ValueError,
            "initializer must be one of",
        ),
        (
            lambda: layers.Dense(4, activity_regularizer="l3"),
            ValueError,
            "regularizer must be None, 'l1', 'l2', 'l1_l2'",
        ),
        (
            lambda: layers.Dense(4, use_bias="yes"),
            TypeError,
            "use_bias must be True or False; got 'yes'",
        ),
        (lambda: layers.Dense(4, bogus=1), TypeError, "unexpected keyword arguments: bogus"),
        (lambda: layers.Dropout(1.0), ValueError, "rate must be in [0, 1); got 1.0"),
        (lambda: layers.Dropout(-0.1), ValueError, "rate must be in [0, 1); got -0.1"),
        (lambda: layers.Dropout(float("nan")), ValueError, "rate must be finite; got nan"),
        (lambda: layers.Dropout("0.5"), TypeError, "rate must be a real number; got '0.5'"),
        (
            lambda: layers.Flatten(input_shape=(28, -1)),
            ValueError,
            "input_shape[1] must be >= 1; got -1",
        ),
        (lambda: layers.Input(shape=None), ValueError, "InputLayer needs shape="),
        (lambda: layers.Dense(3, dtype="float64"), ValueError, "dtype must be 'float32'"),
        (lambda: regularizers.l2(-0.001), ValueError, "l2 must be >= 0; got -0.001"),
        (lambda: regularizers.l1(float("inf")), ValueError, "l1 must be finite; got inf"),
        (
            lambda: optimizers.Adam(learning_rate=-1),
            ValueError,
            "learning_rate must be >= 0; got -1.0",
        ),
        (lambda: optimizers.Adam(beta_1=1.5), ValueError, "beta_1 must be in [0, 1); got 1.5"),
        (lambda: optimizers.Adam(epsilon=0), ValueError, "epsilon must be > 0; got 0.0"),
        (
            lambda: optimizers.Adam(weight_decay=-0.1),
            ValueError,
            "weight_decay must be >= 0; got -0.1",
        ),
        (
            lambda: optimizers.Adam(learning_rate=lambda: 0.1),
            NotImplementedError,
            "learning_rate as a plain callable is not supported",
        ),
        (lambda: optimizers.Adam(clipnorm=1.0), NotImplementedError, "clipnorm=1.0"),
        (lambda: optimizers.SGD(momentum=2.0), ValueError, "momentum must be in [0, 1]; got 2.0"),
        (lambda: optimizers.get("rmsprop"), ValueError, "optimizer must be 'adam', 'adamw', 'sgd'"),
        (lambda: losses.get("mse"), ValueError, "loss must be 'sparse_categorical_crossentropy'"),
        (
            lambda: callbacks.EarlyStopping(mode="up"),
            ValueError,
            "mode must be 'auto', 'min' or 'max'; got 'up'",
        ),
        (lambda: callbacks.EarlyStopping(patience=-1), ValueError, "patience must be >= 0; got -1"),
        (lambda: models.Sequential([layers.Dense(3), "relu"]), TypeError, "got 'relu'"),
        (lambda: models.Sequential(layers.Dense(3)), TypeError, "layers must be a list of layers"),
        (lambda: utils.set_random_seed(-1), ValueError, "seed must be >= 0; got -1"),
        (lambda: utils.set_num_threads(-2), ValueError, "threads must be >= 0; got -2"),
    ],
)
def test_constructors_validate_at_once(make, exc, text):
    with raises(exc, text):
        make()


def test_unsupported_stacks_are_refused():
    with raises(ValueError, "add a Flatten() layer before it"):
        models.Sequential([layers.Input(shape=(28, 28)), layers.Dense(3)])
    with raises(
        NotImplementedError, "softmax is supported only as the last Dense layer's activation"
    ):
        models.Sequential(
            [layers.Input(shape=(4,)), layers.Dense(3, activation="softmax"), layers.Dense(2)]
        )
    with raises(NotImplementedError, "must directly follow a Dense layer with a linear activation"):
        models.Sequential(
            [
                layers.Input(shape=(4,)),
                layers.Dense(3, activation="relu"),
                layers.Activation("tanh"),
            ]
        )
    m = models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(3, activation="softmax"), layers.Dropout(0.2)]
    )
    with raises(NotImplementedError, "Dropout after the output layer is not supported"):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with raises(ValueError, "an Input layer must come first"):
        models.Sequential([layers.Dense(3), layers.Input(shape=(4,))])


def test_compile_rules(model):
    with raises(NotImplementedError, "optimizer 'rmsprop' (keras' default) is not implemented"):
        model.compile(loss="sparse_categorical_crossentropy")
    with raises(ValueError, "compile() needs a loss"):
        model.compile(optimizer="adam")
    with raises(ValueError, "each metric must be one of 'accuracy', 'acc'"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["auc"])
    with raises(TypeError, "metrics must be a list such as ['accuracy']; got 'accuracy'"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics="accuracy")
    with raises(
        ValueError, "needs a linear output layer; the last Dense layer has activation 'softmax'"
    ):
        model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))


# ---------------------------------------------------------------------------------------------
# fit / evaluate / predict


def test_fit_before_compile(data):
    m = models.Sequential([layers.Input(shape=(6,)), layers.Dense(3, activation="softmax")])
    with raises(RuntimeError, "you must compile the model before calling fit()"):
        m.fit(*data)
    with raises(RuntimeError, "you must compile the model before calling evaluate()"):
        m.evaluate(*data)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        (dict(batch_size=0), ValueError, "batch_size must be >= 1; got 0"),
        (dict(batch_size=-3), ValueError, "batch_size must be >= 1; got -3"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an integer; got 2.0"),
        (dict(epochs=-1), ValueError, "epochs must be >= 0; got -1"),
        (dict(shuffle="yes"), TypeError, "shuffle must be True or False; got 'yes'"),
        (dict(validation_split=1.5), ValueError, "validation_split must be in [0, 1); got 1.5"),
        (
            dict(validation_data=(1, 2, 3, 4)),
            ValueError,
            "validation_data must be a tuple (x_val, y_val)",
        ),
        (
            dict(sample_weight=np.ones(40)),
            NotImplementedError,
            "fit(sample_weight=...) is not supported",
        ),
        (
            dict(class_weight={0: 1.0}),
            NotImplementedError,
            "fit(class_weight=...) is not supported",
        ),
        (dict(threads=-1), ValueError, "threads must be >= 0; got -1"),
        (
            dict(sparse="maybe"),
            ValueError,
            "sparse must be one of 'auto', 'dense', 'sparse'; got 'maybe'",
        ),
        (
            dict(callbacks=[print]),
            TypeError,
            "callbacks must be pyreg.callbacks.Callback instances",
        ),
        (dict(validation_freq=0), ValueError, "validation_freq must be >= 1; got 0"),
    ],
)
def test_fit_arguments(model, data, kwargs, exc, text):
    before = model.get_weights()
    with raises(exc, text):
        model.fit(*data, **{"verbose": 0, **kwargs})
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # nothing trained


@pytest.mark.parametrize(
    ("x", "exc", "text"),
    [
        (
            np.zeros(6, np.float32),
            ValueError,
            "x must have a batch axis and at least one feature axis",
        ),
        (
            np.zeros((40, 7), np.float32),
            ValueError,
            "x must have samples of shape (6,) (or 6 features); got shape (40, 7)",
        ),
        (
            np.zeros((0, 6), np.float32),
            ValueError,
            "x must contain at least one sample; got shape (0, 6)",
        ),
        (
            np.array([["a"] * 6] * 40),
            TypeError,
            "x must have a numeric dtype (bool, int, uint or float); got dtype <U1",
        ),
        (
            np.empty((40, 6), dtype=object),
            TypeError,
            "x must have a numeric dtype (bool, int, uint or float); got dtype object",
        ),
        (np.zeros((40, 6), np.complex64), TypeError, "got dtype complex64"),
        ([[1, 2], [3]], ValueError, "x must be a rectangular numeric array"),
        (None, TypeError, "x must be an array; got None"),
    ],
)
def test_bad_features(model, data, x, exc, text):
    with raises(exc, text):
        model.fit(x, data[1], verbose=0)


def test_nan_and_inf_in_x_are_named(model, data):
    x, y = data
    bad = x.astype(np.float64)
    bad[7, 2] = np.nan
    with raises(ValueError, "x must be finite; got nan at index (7, 2)"):
        model.fit(bad, y, verbose=0)
    bad[7, 2] = np.inf
    with raises(ValueError, "validation_data[0] must be finite; got inf at index (7, 2)"):
        model.fit(x, y, validation_data=(bad, y), verbose=0)
    with raises(ValueError, "x must be finite; got inf at index (7, 2)"):
        model.predict(bad, verbose=0)


@pytest.mark.parametrize(
    ("y", "exc", "text"),
    [
        (np.full(40, -1), ValueError, "y must be class indices in [0, 3); got -1 at index 0"),
        (np.full(40, 3), ValueError, "y must be class indices in [0, 3); got 3 at index 0"),
        (np.full(40, 1.5), ValueError, "y must hold integer class indices; got 1.5 at index 0"),
        (np.full(40, np.nan), ValueError, "y must be finite class indices; got NaN or Inf"),
        (
            np.zeros(39, int),
            ValueError,
            "x and y must have the same number of samples; got 40 and 39",
        ),
        (
            np.zeros((40, 2), int),
            ValueError,
            "y must be integer class labels of shape (40,); got shape (40, 2)",
        ),
        (np.array(["a"] * 40), TypeError, "y must have a numeric dtype"),
        (None, ValueError, "fit() needs labels y"),
    ],
)
def test_bad_labels(model, data, y, exc, text):
    with raises(exc, text):
        model.fit(data[0], y, verbose=0)


def test_one_hot_rules(data):
    utils.set_random_seed(0)
    m = models.Sequential([layers.Input(shape=(6,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    with raises(ValueError, "y must be one-hot (exactly one 1 per row, zeros elsewhere)"):
        m.fit(data[0], np.full((40, 3), 1 / 3), verbose=0)
    with raises(ValueError, "y must be one-hot rows of shape (40, 3); got shape (40,)"):
        m.fit(data[0], data[1], verbose=0)


def test_strided_fortran_readonly_inputs_are_accepted(model, data):
    x, y = data
    ref = model.predict(x, verbose=0)
    wide = np.zeros((40, 12), np.float32)
    wide[:, ::2] = x
    fortran = np.asfortranarray(x)
    ro = x.copy()
    ro.setflags(write=False)
    for variant in (wide[:, ::2], fortran, ro, x.astype(np.float64), x.tolist()):
        np.testing.assert_allclose(model.predict(variant, verbose=0), ref, rtol=1e-6)
    model.fit(fortran, y[::-1].copy()[::-1], epochs=1, verbose=0)  # negative strides too


def test_evaluate_and_predict_arguments(model, data):
    x, y = data
    with raises(ValueError, "verbose must be 0, 1, 2 or 'auto'; got 3"):
        model.fit(x, y, verbose=3)
    with raises(ValueError, "batch_size must be >= 1; got 0"):
        model.evaluate(x, y, batch_size=0)
    with raises(ValueError, "batch_size must be >= 1; got -1"):
        model.predict(x, batch_size=-1)
    with raises(TypeError, "return_dict must be True or False; got 1"):
        model.evaluate(x, y, return_dict=1, verbose=0)
    with raises(ValueError, "evaluate() needs labels y"):
        model.evaluate(x)


# ---------------------------------------------------------------------------------------------
# weights


def test_set_weights_rules(model):
    w = model.get_weights()
    with raises(ValueError, "set_weights expects a list of 4 arrays for this model; got 5"):
        model.set_weights([*w, w[0]])
    with raises(TypeError, "weights must be a list of arrays; got array"):
        model.set_weights(w[0])
    bad = list(w)
    bad[0] = np.zeros((6, 4))
    with raises(ValueError, "weights[0] must have shape (6, 5); got (6, 4)"):
        model.set_weights(bad)
    bad[0] = [["x"] * 5] * 6
    with raises(TypeError, "weights[0] must be a numeric array"):
        model.set_weights(bad)
    with raises(ValueError, "cannot assign a value of shape (2,) to variable"):
        model.layers[0].kernel.assign(np.zeros(2))
    with raises(ValueError, "layer 'dense"):
        model.layers[0].set_weights([np.zeros((6, 5))])


def test_weights_files(model, tmp_path):
    with raises(ValueError, "filepath must end with '.npz'"):
        model.save_weights(tmp_path / "w.bin")
    unbuilt = models.Sequential([layers.Dense(3)])
    with raises(ValueError, "cannot save weights: the model has no weights yet"):
        unbuilt.save_weights(tmp_path / "w.npz")
