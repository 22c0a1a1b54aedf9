"""Every validation rule of the kernel wrappers (and of the raw bindings behind them): the exception
type and a message that names the argument, what was expected and what was received."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyreg import _core, kernels

f32 = np.float32


@pytest.fixture
def dense_args(rng):
    x = rng.standard_normal((32, 784)).astype(f32)
    w = rng.standard_normal((784, 128)).astype(f32)
    b = np.zeros(128, f32)
    return x, w, b


def raises(exc, pattern):
    return pytest.raises(
        exc, match=re.escape(pattern) if not pattern.startswith("re:") else pattern[3:]
    )


# ---------------------------------------------------------------------------------------------
# dense_forward


def test_dense_ndim(dense_args):
    x, w, b = dense_args
    with raises(ValueError, "x must be 2-D; got 1-D array of shape (784,)"):
        kernels.dense_forward(x[0], w, b)
    with raises(ValueError, "w must be 2-D; got 3-D"):
        kernels.dense_forward(x, w[None], b)


def test_dense_shapes_must_agree(dense_args):
    x, w, b = dense_args
    with raises(
        ValueError, "w must have shape (784, units) to match x of shape (32, 784); got (783, 128)"
    ):
        kernels.dense_forward(x, w[:783], b)
    with raises(ValueError, "b must have shape (128,) to match w of shape (784, 128); got (127,)"):
        kernels.dense_forward(x, w, b[:127])


@pytest.mark.parametrize(
    "bad", [np.array([["a"]]), np.array([[1 + 2j]]), np.array([[None]], dtype=object)]
)
def test_dense_dtype(bad, dense_args):
    _, w, _ = dense_args
    with raises(TypeError, "x must have a real numeric dtype; got dtype"):
        kernels.dense_forward(bad, w[:1])


def test_dense_converts_strided_fortran_readonly_and_float64_inputs(dense_args):
    x, w, b = dense_args
    expected = kernels.dense_forward(x, w, b)
    xf = np.asfortranarray(x.astype(np.float64))
    ws = np.zeros((784, 256), f32)
    ws[:, ::2] = w
    ro = b.copy()
    ro.setflags(write=False)
    np.testing.assert_allclose(kernels.dense_forward(xf, ws[:, ::2], ro), expected, rtol=1e-6)


def test_dense_out_rules(dense_args):
    x, w, b = dense_args
    with raises(TypeError, "out is updated in place and must have dtype float32; got float64"):
        kernels.dense_forward(x, w, b, out=np.empty((32, 128)))
    with raises(ValueError, "out is updated in place and must be C-contiguous"):
        kernels.dense_forward(x, w, b, out=np.empty((32, 256), f32)[:, ::2])
    ro = np.empty((32, 128), f32)
    ro.setflags(write=False)
    with raises(ValueError, "out is updated in place and must be writeable; got a read-only array"):
        kernels.dense_forward(x, w, b, out=ro)
    with raises(ValueError, "out must have shape (32, 128); got (32, 127)"):
        kernels.dense_forward(x, w, b, out=np.empty((32, 127), f32))
    with raises(TypeError, "out is updated in place and must be a numpy array; got [1, 2]"):
        kernels.dense_forward(x, w, b, out=[1, 2])


@pytest.mark.parametrize("act", ["softmax", "gelu", 3])
def test_dense_activation(act, dense_args):
    x, w, b = dense_args
    with raises(ValueError, "activation must be one of 'relu', 'linear', 'sigmoid', 'tanh'; got"):
        kernels.dense_forward(x, w, b, act)


def test_threads_must_be_non_negative(dense_args):
    x, w, b = dense_args
    with raises(ValueError, "threads must be >= 0; got -1"):
        kernels.dense_forward(x, w, b, threads=-1)
    with raises(TypeError, "threads must be an integer; got 1.5"):
        kernels.dense_forward(x, w, b, threads=1.5)


def test_dense_backward_shapes(dense_args):
    x, w, b = dense_args
    y = kernels.dense_forward(x, w, b)
    with raises(ValueError, "dy must have shape (32, 128) to match x and w; got (32, 127)"):
        kernels.dense_backward(y[:, :127], y, x, w)
    with raises(ValueError, "y must have shape (32, 128) to match x and w; got (31, 128)"):
        kernels.dense_backward(y, y[:31], x, w)


def test_raw_binding_refuses_what_the_wrapper_would_convert(dense_args):
    """The C++ layer is safe on its own: no conversion of written arrays, shapes checked."""
    x, w, b = dense_args
    with pytest.raises(TypeError):
        _core.dense_forward(np.empty((32, 128)), x, w, b, "relu")  # float64 output: refused
    with raises(ValueError, "y must have shape (32, 128); got (32, 64)"):
        _core.dense_forward(np.empty((32, 64), f32), x, w, b, "relu")
    with raises(
        ValueError, "w must have shape (784, units) to match x's 784 features; got (100, 128)"
    ):
        _core.dense_forward(np.empty((32, 128), f32), x, w[:100], b, "relu")
    with raises(ValueError, "b must have shape (128,); got (3,)"):
        _core.dense_forward(np.empty((32, 128), f32), x, w, b[:3], "relu")


# ---------------------------------------------------------------------------------------------
# dropout


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_dropout_rate(rate):
    with raises(ValueError, "re:rate must (be in \\[0, 1\\)|be finite)"):
        kernels.dropout_forward(np.ones((2, 2), f32), rate, seed=0)


def test_dropout_seed_and_mask_rules():
    with raises(ValueError, "seed must be >= 0; got -1"):
        kernels.dropout_forward(np.ones((2, 2), f32), 0.5, seed=-1)
    with raises(TypeError, "seed must be an integer; got '1'"):
        kernels.dropout_forward(np.ones((2, 2), f32), 0.5, seed="1")
    with raises(ValueError, "mask must have the shape of dy (2, 2); got (2, 3)"):
        kernels.dropout_backward(np.ones((2, 2), f32), np.ones((2, 3), np.uint8), 0.5)
    with raises(TypeError, "mask must be uint8 or bool (from dropout_forward); got dtype float32"):
        kernels.dropout_backward(np.ones((2, 2), f32), np.ones((2, 2), f32), 0.5)
    with raises(ValueError, "rate must be in [0, 1); got 1"):
        _core.dropout_forward(np.ones((2, 2), f32), np.ones((2, 2), np.uint8), 1.0, 0)


# ---------------------------------------------------------------------------------------------
# optimizer update


@pytest.fixture
def adam_state():
    return np.ones(100, f32), np.ones(100, f32), np.zeros(100, f32), np.zeros(100, f32)


def test_adam_in_place_arrays(adam_state):
    w, g, m, v = adam_state
    with raises(TypeError, "w is updated in place and must have dtype float32; got float64"):
        kernels.adam_update(w.astype(np.float64), g, m, v, iterations=0)
    with raises(ValueError, "m is updated in place and must be C-contiguous"):
        kernels.adam_update(w, g, np.zeros(200, f32)[::2], v, iterations=0)
    ro = v.copy()
    ro.setflags(write=False)
    with raises(ValueError, "v is updated in place and must be writeable; got a read-only array"):
        kernels.adam_update(w, g, m, ro, iterations=0)
    with raises(ValueError, "m must have shape (100,); got (99,)"):
        kernels.adam_update(w, g, m[:99], v, iterations=0)
    with raises(ValueError, "g must be 1-D; got 2-D array of shape (10, 10)"):
        kernels.adam_update(w, g.reshape(10, 10), m, v, iterations=0)
    with raises(ValueError, "g must have the shape of w (100,); got (99,)"):
        kernels.adam_update(w, g[:99], m, v, iterations=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(l2=-1e-3), "l2 must be >= 0; got -0.001"),
        (dict(l1=-1.0), "l1 must be >= 0; got -1.0"),
        (dict(weight_decay=-0.1), "weight_decay must be >= 0; got -0.1"),
        (dict(learning_rate=-1.0), "learning_rate must be >= 0; got -1.0"),
        (dict(beta_1=1.0), "beta_1 must be in [0, 1); got 1.0"),
        (dict(beta_2=-0.5), "beta_2 must be in [0, 1); got -0.5"),
        (dict(epsilon=0.0), "epsilon must be > 0; got 0.0"),
        (dict(l2=float("nan")), "l2 must be finite; got nan"),
    ],
)
def test_adam_hyperparameters(adam_state, kwargs, message):
    w, g, m, v = adam_state
    before = w.copy()
    with raises(ValueError, message):
        kernels.adam_update(w, g, m, v, iterations=0, **kwargs)
    np.testing.assert_array_equal(w, before)  # nothing changed


def test_adam_iterations_and_raw_binding(adam_state):
    w, g, m, v = adam_state
    with raises(ValueError, "iterations must be >= 0; got -1"):
        kernels.adam_update(w, g, m, v, iterations=-1)
    with raises(ValueError, "l2 must be >= 0; got -1"):
        _core.optimizer_update(
            "adam", w, g, m, v, None, 0, 0.001, 0.9, 0.999, 1e-7, 0.0, False, 0.0, -1.0
        )
    with raises(ValueError, "m must have the same shape as w (100,); got (5,)"):
        _core.optimizer_update("adam", w, g, m[:5], v, None, 0, 0.001)


def test_sgd_rules():
    w = np.ones(10, f32)
    with raises(ValueError, "momentums (an array like w) is required when momentum != 0"):
        kernels.sgd_update(w, w.copy(), momentum=0.9)
    with raises(ValueError, "momentum must be in [0, 1]; got 1.5"):
        kernels.sgd_update(w, w.copy(), momentum=1.5)


# ---------------------------------------------------------------------------------------------
# loss


@pytest.mark.parametrize(
    ("labels", "exc", "message"),
    [
        ([0, 10], ValueError, "labels must be in [0, 10); got 10"),
        ([-1, 0], ValueError, "labels must be in [0, 10); got -1"),
        ([0.5, 1], ValueError, "labels must hold integer class indices; got non-integer values"),
        ([0, 1, 2], ValueError, "labels must have shape (2,) to match logits; got (3,)"),
        (["a", "b"], TypeError, "labels must be integer class indices; got dtype <U1"),
    ],
)
def test_loss_labels(labels, exc, message):
    with raises(exc, message):
        kernels.softmax_cross_entropy(np.zeros((2, 10), f32), labels)


def test_loss_raw_binding_checks_label_range():
    with raises(ValueError, "labels must be in [0, 10); got 12 at index 1"):
        _core.softmax_xent(np.zeros((2, 10), f32), np.array([0, 12], np.int32))
    with raises(ValueError, "logits must be 2-D; got 1-D"):
        _core.softmax_xent(np.zeros(10, f32), np.array([0], np.int32))
