"""Property tests: random shapes, dtypes, strides and values thrown at the kernel wrappers and the
model API. The only outcomes allowed are a correct result or a clean ValueError / TypeError /
NotImplementedError (never a crash, a hang or a silently wrong answer)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyreg import kernels, layers, models, utils

CLEAN = (ValueError, TypeError, NotImplementedError)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.int8,
    np.uint8,
    np.int64,
    np.bool_,
    np.complex64,
    object,
    "U3",
]


@st.composite
def arrays(draw, max_dim=6, ndim=None, finite=True):
    """An array of a random dtype, shape and memory layout (C, Fortran, strided, read-only)."""
    nd = draw(st.integers(0, 3)) if ndim is None else ndim
    shape = tuple(draw(st.integers(0, max_dim)) for _ in range(nd))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = rng.uniform(-3, 3, size=tuple(2 * s for s in shape) if shape else ())
    if not finite and base.size:
        base.flat[draw(st.integers(0, base.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 1e39])
        )
    if dtype == "U3":
        a = base.astype(str).astype("U3")
    elif dtype is object:
        a = base.astype(object)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            a = base.astype(dtype)
    layout = draw(st.sampled_from(["strided", "c", "f", "readonly"]))
    sl = tuple(slice(None, None, 2) for _ in shape)
    a = a[sl] if shape else a
    if layout == "c":
        a = np.ascontiguousarray(a)
    elif layout == "f":
        a = np.asfortranarray(a)
    elif layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


def is_real(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "biuf"


@SETTINGS
@given(x=arrays(ndim=2), w=arrays(ndim=2), b=st.one_of(st.none(), arrays(ndim=1)),
       act=st.sampled_from(["relu", "linear", "tanh", "sigmoid", "softmax", None, 3]), sparse=st.sampled_from([True, False, "auto"]))  # fmt: skip
def test_dense_forward_is_correct_or_refuses(x, w, b, act, sparse):
    try:
        y = kernels.dense_forward(x, w, b, act, sparse=sparse, threads=2)
    except CLEAN:
        valid = (is_real(x) and is_real(w) and (b is None or (is_real(b) and b.shape == (w.shape[1],)))
                 and x.shape[1] == w.shape[0] and act in ("relu", "linear", "tanh", "sigmoid", None))  # fmt: skip
        assert not valid, "a valid call was refused"
        return
    z = x.astype(np.float64) @ w.astype(np.float32).astype(np.float64)
    if b is not None:
        z = z + b.astype(np.float32)
    ref = {
        "relu": np.maximum(z, 0),
        "linear": z,
        None: z,
        "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)),
    }[act]
    assert y.shape == (x.shape[0], w.shape[1])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * max(1, x.shape[1]))


@SETTINGS
@pytest.mark.filterwarnings(
    "ignore:overflow encountered in cast:RuntimeWarning"
)  # 1e39 -> float32 inf, as numpy casts
@given(x=arrays(ndim=2, finite=False), rate=st.one_of(st.floats(-1, 2), st.sampled_from([0.0, 0.5, np.nan])),
       seed=st.integers(-2, 2**64 + 1), step=st.integers(-1, 2**64))  # fmt: skip
def test_dropout_is_correct_or_refuses(x, rate, seed, step):
    try:
        y, mask = kernels.dropout_forward(x, rate, seed=seed, step=step)
    except CLEAN:
        valid = is_real(x) and 0 <= rate < 1 and 0 <= seed < 2**64 and 0 <= step < 2**64
        assert not valid, "a valid call was refused"
        return
    x32 = x.astype(np.float32)
    assert y.shape == x.shape
    assert mask.shape == x.shape
    kept = mask == 1
    np.testing.assert_array_equal(y[kept], x32[kept] * np.float32(1 / (1 - rate)))
    assert (y[~kept] == 0).all()


@SETTINGS
@given(n=st.integers(0, 300), l2=st.floats(-1, 1), wd=st.floats(-1, 1), it=st.integers(-2, 50),
       layout=st.sampled_from(["ok", "f64", "strided", "readonly", "short"]))  # fmt: skip
def test_adam_update_is_correct_or_refuses(n, l2, wd, it, layout):
    rng = np.random.default_rng(n)
    w = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    target = {
        "ok": w,
        "f64": w.astype(np.float64),
        "strided": np.repeat(w, 2)[::2],
        "short": w[: max(0, n - 1)],
    }.get(layout)
    if layout == "readonly":
        target = w.copy()
        target.setflags(write=False)
    before = np.array(target, copy=True)
    try:
        kernels.adam_update(target, g, m, v, iterations=it, l2=l2, weight_decay=wd)
    except CLEAN:
        assert not (layout == "ok" and l2 >= 0 and wd >= 0 and it >= 0), "a valid call was refused"
        np.testing.assert_array_equal(np.asarray(target), before)  # nothing written on refusal
        return
    f = np.float32
    gg = g + f(l2) * (f(2) * before)
    ww = before - before * f(wd) * f(0.001)
    mm = (gg - 0) * f(0.1)
    vv = (gg * gg) * f(0.001)
    alpha = f(0.001) * np.sqrt(f(1) - f(0.999) ** f(it + 1)) / (f(1) - f(0.9) ** f(it + 1))
    np.testing.assert_allclose(
        target, ww - (mm * alpha) / (np.sqrt(vv) + f(1e-7)), rtol=1e-5, atol=1e-7
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 9), min_size=1, max_size=3), features=st.integers(1, 7),
       n=st.integers(0, 20), classes=st.integers(1, 4), batch=st.integers(-1, 40), epochs=st.integers(-1, 2),
       rate=st.floats(-0.5, 1.2), label_kind=st.sampled_from(["ok", "neg", "big", "float", "frac", "2d"]),
       xdtype=st.sampled_from([np.float32, np.float64, np.uint8, np.int16, object]))  # fmt: skip
def test_model_api_trains_or_refuses(
    widths, features, n, classes, batch, epochs, rate, label_kind, xdtype
):
    rng = np.random.default_rng(n * 7 + features)
    x = rng.uniform(0, 1, (n, features)).astype(xdtype)
    y = rng.integers(0, classes, n)
    y = {"ok": y, "neg": y - classes, "big": y + classes, "float": y.astype(np.float64), "frac": y + 0.5,
         "2d": np.stack([y, y], 1)}[label_kind]  # fmt: skip
    try:
        utils.set_random_seed(1)
        stack = [layers.Input(shape=(features,))]
        for w in widths:
            stack += [layers.Dense(w, activation="relu"), layers.Dropout(rate)]
        stack.append(layers.Dense(classes, activation="softmax"))
        model = models.Sequential(stack)
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        h = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    except CLEAN:
        valid = (0 <= rate < 1 and n > 0 and batch >= 1 and epochs >= 0 and label_kind in ("ok", "float")
                 and xdtype is not object)  # fmt: skip
        assert not valid, "a valid call was refused"
        return
    assert len(h.history.get("loss", [])) == epochs
    assert all(np.isfinite(h.history.get("loss", [])))
    p = model.predict(x, verbose=0)
    assert p.shape == (n, classes)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0)])
def test_empty_dimensions_give_empty_or_bias_results(shape):
    x = np.ones(shape, np.float32)
    w = np.ones((shape[1], 4), np.float32)
    b = np.arange(4, dtype=np.float32)
    y = kernels.dense_forward(x, w, b, "linear")
    assert y.shape == (shape[0], 4)
    np.testing.assert_array_equal(y, np.broadcast_to(b, y.shape))
