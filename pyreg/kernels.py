"""Public wrappers of the C++ kernels, with argument checks and documented conversions.

Conversion rules:

* Read-only inputs (``x``, ``w``, ``b``, ``dy``, ``g``, ...) may have any real dtype and any memory
  layout; they are converted once to float32, C-contiguous (a copy only when needed).
* Arrays updated in place (the optimizer's ``w``, ``m``, ``v``; ``out=``) must already be float32,
  C-contiguous and writeable: converting them would silently update a copy, so a TypeError or
  ValueError is raised instead.
* Labels may have any integer dtype (or integral floats) and are converted to int32.

Every kernel runs without the GIL on ``threads`` threads (None: pyreg's setting, 0: all cores);
results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._checks import (
    check_bool,
    check_fraction,
    check_int,
    check_nonneg_float,
    check_positive_float,
    describe,
)
from .utils import resolve_threads

__all__ = [
    "adam_update",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "noise_forward",
    "sgd_update",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
]

_ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh")


def _input(a, name: str, ndim: int) -> np.ndarray:
    """A read-only input as float32, C-contiguous (converted once if needed)."""
    if type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == ndim and a.flags.c_contiguous:
        return a  # the common case, without further work
    if a is None:
        raise TypeError(f"{name} must be an array; got None")
    arr = np.asarray(a)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must have a real numeric dtype; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got {arr.ndim}-D array of shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _inplace(a, name: str, shape: tuple | None = None) -> np.ndarray:
    """An array written in place: must be float32, C-contiguous, writeable (never converted)."""
    if type(a) is np.ndarray and a.dtype == np.float32:
        flags = a.flags
        if flags.c_contiguous and flags.writeable and (shape is None or a.shape == tuple(shape)):
            return a  # the common case, without further work
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} is updated in place and must be a numpy array; got {describe(a)}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} is updated in place and must have dtype float32; got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(
            f"{name} is updated in place and must be C-contiguous; got a strided or Fortran-ordered array"
        )
    if not a.flags.writeable:
        raise ValueError(f"{name} is updated in place and must be writeable; got a read-only array")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {a.shape}")
    return a


def _labels(labels, n: int, k: int) -> np.ndarray:
    a = np.asarray(labels)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise TypeError(f"labels must be integer class indices; got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match logits; got {a.shape}")
    if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.floor(a)).all()):
        raise ValueError("labels must hold integer class indices; got non-integer values")
    if n and (a.min() < 0 or a.max() >= k):
        bad = a.min() if a.min() < 0 else a.max()
        raise ValueError(f"labels must be in [0, {k}); got {bad}")
    return np.ascontiguousarray(a, dtype=np.int32)


def _activation(activation) -> str:
    if activation is None:
        return "linear"
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(map(repr, _ACTIVATIONS))}; got {describe(activation)}"
        )
    return activation


def _dense_shapes(x: np.ndarray, w: np.ndarray) -> tuple[int, int, int]:
    if w.shape[0] != x.shape[1]:
        raise ValueError(
            f"w must have shape ({x.shape[1]}, units) to match x of shape {x.shape}; got {w.shape}"
        )
    return x.shape[0], x.shape[1], w.shape[1]


# -------------------------------------------------------------------------------------------------
# dense


def dense_forward(
    x, w, b=None, activation="relu", *, out=None, threads=None, sparse="auto"
) -> np.ndarray:
    """Fused dense layer: ``y = act(x @ w + b)``; bias and ReLU are applied in the GEMM's epilogue.

    Args:
        x: (B, IN) input.
        w: (IN, OUT) kernel, stored as keras stores it.
        b: (OUT,) bias or None.
        activation: 'relu', 'linear' (fused), 'sigmoid' or 'tanh' (second pass).
        out: optional (B, OUT) float32 output array.
        threads: None (pyreg's setting), 0 (all cores) or a count.
        sparse: skip zero inputs: True, False, or "auto" (when under 40% of the inputs are non-zero, as
            MNIST pixels are). Same sums either way (skipped terms are exact zeros).

    Returns:
        y (B, OUT) float32.
    """
    x = _input(x, "x", 2)
    w = _input(w, "w", 2)
    n, _, units = _dense_shapes(x, w)
    if b is not None:
        b = _input(b, "b", 1)
        if b.shape != (units,):
            raise ValueError(
                f"b must have shape ({units},) to match w of shape {w.shape}; got {b.shape}"
            )
    act = _activation(activation)
    y = np.empty((n, units), np.float32) if out is None else _inplace(out, "out", (n, units))
    use_sparse = (
        _core.input_is_sparse(x)
        if isinstance(sparse, str) and sparse == "auto"
        else check_bool(sparse, "sparse")
    )
    _core.dense_forward(y, x, w, b, act, resolve_threads(threads), use_sparse)
    return y


def dense_backward(dy, y, x, w, activation="relu", *, need_dx=True, threads=None):
    """Backward of :func:`dense_forward`, with the activation's derivative taken from its output.

    ``dz = dy * act'(y)``; ``dw = x.T @ dz``; ``db = dz.sum(0)``; ``dx = dz @ w.T``.

    Args:
        dy: (B, OUT) gradient of the loss w.r.t. the layer's output.
        y: (B, OUT) the forward output (ReLU's mask is y > 0).
        x: (B, IN) the forward input.
        w: (IN, OUT) the kernel.
        activation: the forward activation.
        need_dx: compute dx (False for a first layer, whose input needs no gradient).

    Returns:
        (dx or None, dw, db): (B, IN), (IN, OUT), (OUT,) float32.
    """
    x = _input(x, "x", 2)
    w = _input(w, "w", 2)
    n, fan_in, units = _dense_shapes(x, w)
    dy = _input(dy, "dy", 2)
    y = _input(y, "y", 2)
    for name, a in (("dy", dy), ("y", y)):
        if a.shape != (n, units):
            raise ValueError(
                f"{name} must have shape ({n}, {units}) to match x and w; got {a.shape}"
            )
    act = _activation(activation)
    dw = np.empty((fan_in, units), np.float32)
    db = np.empty(units, np.float32)
    dx = np.empty((n, fan_in), np.float32) if check_bool(need_dx, "need_dx") else None
    _core.dense_backward(dx, dw, db, dy, y, x, w, act, False, resolve_threads(threads))
    return dx, dw, db


# -------------------------------------------------------------------------------------------------
# dropout


def dropout_forward(x, rate, *, seed, step=0, layer=0, training=True, threads=None):
    """Inverted dropout with a counter-based (Philox) mask keyed by (seed, step, layer, element).

    Training: keep each element with probability ``1 - rate``, scale kept ones by ``1/(1-rate)``.
    Inference: identity. The same key always gives the same mask, for any thread count.

    Returns:
        (y, mask): y (B, OUT) float32 and mask (B, OUT) uint8 (1 = kept); mask is all ones at inference.
    """
    if (training is True and type(rate) is float and 0.0 < rate < 1.0 and type(seed) is int and type(step) is int
            and type(layer) is int and 0 <= seed < 2**64 and 0 <= step < 2**64 and 0 <= layer < 2**32 - 1):  # fmt: skip
        try:  # the common call, straight to C++ (which checks the array itself)
            return _core.dropout_apply(x, rate, seed, layer, step, resolve_threads(threads))
        except TypeError:
            pass  # not a float32 C-contiguous array: the path below converts it
    x = _input(x, "x", 2)
    rate = check_fraction(rate, "rate")
    for name, value, limit in (
        ("seed", seed, 2**64),
        ("step", step, 2**64),
        ("layer", layer, 2**32 - 1),
    ):
        if type(value) is not int or not 0 <= value < limit:  # the common case is one comparison
            value = check_int(value, name, minimum=0)
            if value >= limit:
                raise ValueError(f"{name} must be < {limit}; got {value}")
    if (training is not True and not check_bool(training, "training")) or rate == 0.0:
        return x.copy(), np.ones(x.shape, np.uint8)
    return _core.dropout_apply(x, rate, int(seed), int(layer), int(step), resolve_threads(threads))


def dropout_backward(dy, mask, rate, *, threads=None) -> np.ndarray:
    """``dx = dy * mask / (1 - rate)``: the gradient through the mask of :func:`dropout_forward`."""
    dy = _input(dy, "dy", 2)
    m = np.asarray(mask)
    if m.shape != dy.shape:
        raise ValueError(f"mask must have the shape of dy {dy.shape}; got {m.shape}")
    if m.dtype not in (np.uint8, np.bool_):
        raise TypeError(f"mask must be uint8 or bool (from dropout_forward); got dtype {m.dtype}")
    m = np.ascontiguousarray(m, dtype=np.uint8)
    rate = check_fraction(rate, "rate")
    dx = np.empty_like(dy)
    _core.dropout_backward(dx, dy, m, rate, resolve_threads(threads))
    return dx


# -------------------------------------------------------------------------------------------------
# noise layers

_NOISE_KINDS = ("gaussian_noise", "gaussian_dropout", "alpha_dropout")


def noise_forward(x, kind, param, *, seed, step=0, site=0, training=True, threads=None):
    """A noise layer's transform as the trainer applies it (``pyreg.layers.GaussianNoise``,
    ``GaussianDropout``, ``AlphaDropout``), keyed by (seed, site, step, element).

    ``site`` is where the trainer applies it: 0 on the input, ``l + 1`` after Dense layer ``l``;
    ``step`` the model's step counter (``Mlp.dropout_step``). The same key always gives the same
    noise, for any thread count.

    Args:
        kind: ``"gaussian_noise"`` (param: stddev >= 0), ``"gaussian_dropout"`` or
            ``"alpha_dropout"`` (param: rate in [0, 1)).

    Returns:
        (y, factor): y (B, OUT) float32 and factor (B, OUT) float32, ``d y / d x`` per element (the
        backward multiplies the incoming gradient by it); at inference y is a copy of x and factor ones.
    """
    x = _input(x, "x", 2)
    if kind not in _NOISE_KINDS:
        raise ValueError(
            f"kind must be one of {', '.join(map(repr, _NOISE_KINDS))}; got {describe(kind)}"
        )
    if kind == "gaussian_noise":
        param = check_nonneg_float(param, "stddev")
    else:
        param = check_fraction(param, "rate")
    for name, value, limit in (("seed", seed, 2**64), ("step", step, 2**64), ("site", site, 2**32)):
        value = check_int(value, name, minimum=0)
        if value >= limit:
            raise ValueError(f"{name} must be < {limit}; got {value}")
    if not check_bool(training, "training"):
        return x.copy(), np.ones(x.shape, np.float32)
    return _core.noise_apply(
        x, kind, param, int(seed), int(site), int(step), resolve_threads(threads)
    )


# -------------------------------------------------------------------------------------------------
# optimizers


def adam_update(w, g, m, v, *, iterations, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                l1=0.0, l2=0.0, weight_decay=0.0, vhat=None, threads=None) -> None:  # fmt: skip
    """One Adam step in place on w, m, v (and vhat for AMSGrad), keras 3's float32 arithmetic.

    ``g`` is the loss gradient; the coupled regularizer gradient ``l1*sign(w) + 2*l2*w`` is added
    (keras' ``l1``/``l2`` regularizers), and decoupled ``weight_decay`` applies ``w -= w*wd*lr``
    before the step (keras' ``weight_decay=``, AdamW). ``iterations`` is the number of steps taken
    so far (0 on the first step).
    """
    w = _inplace(w, "w")
    g = _input(g, "g", w.ndim)
    if g.shape != w.shape:
        raise ValueError(f"g must have the shape of w {w.shape}; got {g.shape}")
    m = _inplace(m, "m", w.shape)
    v = _inplace(v, "v", w.shape)
    if vhat is not None:
        vhat = _inplace(vhat, "vhat", w.shape)
    _core.optimizer_update(
        "adam", w, g, m, v, vhat, check_int(iterations, "iterations", minimum=0),
        check_nonneg_float(learning_rate, "learning_rate"), check_fraction(beta_1, "beta_1"),
        check_fraction(beta_2, "beta_2"), check_positive_float(epsilon, "epsilon"), 0.0, False,
        check_nonneg_float(l1, "l1"), check_nonneg_float(l2, "l2"), check_nonneg_float(weight_decay, "weight_decay"),
        resolve_threads(threads),
    )  # fmt: skip


def sgd_update(w, g, *, learning_rate=0.01, momentum=0.0, nesterov=False, momentums=None, l1=0.0, l2=0.0,
               weight_decay=0.0, threads=None) -> None:  # fmt: skip
    """One SGD step in place (keras' formulation, optional Nesterov momentum in ``momentums``)."""
    w = _inplace(w, "w")
    g = _input(g, "g", w.ndim)
    if g.shape != w.shape:
        raise ValueError(f"g must have the shape of w {w.shape}; got {g.shape}")
    momentum = check_fraction(momentum, "momentum", closed_right=True)
    if momentum != 0.0:
        if momentums is None:
            raise ValueError("momentums (an array like w) is required when momentum != 0")
        momentums = _inplace(momentums, "momentums", w.shape)
    _core.optimizer_update(
        "sgd", w, g, momentums if momentum != 0.0 else None, None, None, 0,
        check_nonneg_float(learning_rate, "learning_rate"), 0.9, 0.999, 1e-7, momentum,
        check_bool(nesterov, "nesterov"), check_nonneg_float(l1, "l1"), check_nonneg_float(l2, "l2"),
        check_nonneg_float(weight_decay, "weight_decay"), resolve_threads(threads),
    )  # fmt: skip


# -------------------------------------------------------------------------------------------------
# loss


def softmax_cross_entropy(logits, labels, *, threads=None) -> tuple[float, int]:
    """Mean sparse categorical cross-entropy of softmax(logits) and the number of correct argmaxes.

    Numerically stable for large logits (log-sum-exp around the row maximum).

    Returns:
        (loss, correct): the mean loss over the batch (float) and correct predictions (int).
    """
    z = _input(logits, "logits", 2)
    if z.shape[1] == 0:
        raise ValueError(f"logits must have at least one class column; got shape {z.shape}")
    y = _labels(labels, z.shape[0], z.shape[1])
    if z.shape[0] == 0:
        raise ValueError("logits must contain at least one row")
    loss_rows, correct = _core.softmax_xent(z, y, None, 1.0, resolve_threads(threads))
    return float(np.sum(loss_rows, dtype=np.float64) / z.shape[0]), int(correct.sum())


def softmax_cross_entropy_backward(logits, labels, *, grad_scale=None, threads=None) -> np.ndarray:
    """``(softmax(logits) - onehot(labels)) * grad_scale``; grad_scale defaults to 1/B (the mean)."""
    z = _input(logits, "logits", 2)
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(
            f"logits must have at least one row and one class column; got shape {z.shape}"
        )
    y = _labels(labels, z.shape[0], z.shape[1])
    scale = 1.0 / z.shape[0] if grad_scale is None else check_nonneg_float(grad_scale, "grad_scale")
    d = np.empty_like(z)
    _core.softmax_xent(z, y, d, scale, resolve_threads(threads))
    return d
