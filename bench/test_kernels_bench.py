"""Kernel benchmarks on the study's shapes: pyreg against the NumPy expression and the TensorFlow op.

Groups: dense forward (MNIST batch, random batch, 32x128x10, the 10000-image evaluation batch),
dense backward, Adam+L2 update of the study's 101,770 parameters, dropout mask+apply, softmax
cross-entropy. Targets (kernels issue): forward at 32x784x128 no slower than NumPy on MNIST batches
and within 1.5x on random input; Adam+L2 at least 5x NumPy; dropout at least 3x NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import kernels

IMPLS = ["keras", "numpy", "pyreg"]


def tf_impl(build):
    """build(tf) -> a zero-argument function doing the group's work in TensorFlow; None without it."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return build(tf)


def _dense_case(mnist, kind, rng):
    x_train, _, x_test, _ = mnist
    if kind == "mnist":
        x, fan_in, units = x_train[:32], 784, 128
    elif kind == "random":
        x, fan_in, units = rng.random((32, 784), dtype=np.float32), 784, 128
    elif kind == "hidden":
        x, fan_in, units = np.maximum(rng.standard_normal((32, 128)), 0).astype(np.float32), 128, 10
    else:  # the evaluation batch: the whole test set
        x, fan_in, units = x_test, 784, 128
    limit = np.sqrt(6 / (fan_in + units))
    w = rng.uniform(-limit, limit, (fan_in, units)).astype(np.float32)
    b = rng.uniform(-0.1, 0.1, units).astype(np.float32)
    return np.ascontiguousarray(x), w, b


def _dense_impls(x, w, b):
    def build_tf(tf):
        xt, wt, bt = tf.constant(x), tf.constant(w), tf.constant(b)
        return tf.function(lambda: tf.nn.relu(tf.matmul(xt, wt) + bt))

    return {"numpy": lambda: np.maximum(x @ w + b, 0), "pyreg": lambda: kernels.dense_forward(x, w, b, "relu"),
            "keras": tf_impl(build_tf)}  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["mnist", "random", "hidden", "evaluation"])
def test_dense_forward(benchmark, baselines, request, mnist, case, impl):
    rng = np.random.default_rng(0)
    x, w, b = _dense_case(mnist, case, rng)
    if impl == "keras":
        request.getfixturevalue("keras_mod")
    fns = _dense_impls(x, w, b)
    group = f"dense_forward {x.shape[0]}x{x.shape[1]}x{w.shape[1]} ({case})"
    benchmark.group = group
    result = benchmark(fns[impl])
    np.testing.assert_allclose(
        np.asarray(result), np.maximum(x.astype(np.float64) @ w + b, 0), rtol=1e-4, atol=1e-4
    )
    flops = 2.0 * x.shape[0] * x.shape[1] * w.shape[1]
    baselines.record(benchmark, group, impl, {"keras": fns["keras"], "numpy": fns["numpy"]},
                     shape=[x.shape[0], x.shape[1], w.shape[1]], density=float(np.count_nonzero(x) / x.size),
                     gflops=flops / benchmark.stats.stats.median / 1e9 if benchmark.stats else None)  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
def test_dense_backward(benchmark, baselines, request, mnist, impl):
    rng = np.random.default_rng(1)
    x, w, b = _dense_case(mnist, "mnist", rng)
    y = kernels.dense_forward(x, w, b, "relu")
    dy = rng.standard_normal(y.shape).astype(np.float32)

    def numpy_fn():
        dz = dy * (y > 0)
        return dz @ w.T, x.T @ dz, dz.sum(0)

    def build_tf(tf):
        xt, wt, yt, dyt = (tf.constant(a) for a in (x, w, y, dy))

        @tf.function
        def tf_fn():
            dz = dyt * tf.cast(yt > 0, tf.float32)
            return (
                tf.matmul(dz, wt, transpose_b=True),
                tf.matmul(xt, dz, transpose_a=True),
                tf.reduce_sum(dz, 0),
            )

        return tf_fn

    fns = {
        "numpy": numpy_fn,
        "pyreg": lambda: kernels.dense_backward(dy, y, x, w, "relu"),
        "keras": tf_impl(build_tf),
    }
    if impl == "keras":
        request.getfixturevalue("keras_mod")
    group = "dense_backward 32x784x128 (mnist)"
    benchmark.group = group
    _dx, dw, _db = (np.asarray(a) for a in benchmark(fns[impl]))
    ref = numpy_fn()
    np.testing.assert_allclose(dw, ref[1], rtol=1e-4, atol=1e-4)
    baselines.record(benchmark, group, impl, {"keras": fns["keras"], "numpy": fns["numpy"]}, shape=[32, 784, 128],
                     gflops=3 * 2 * 32 * 784 * 128 / benchmark.stats.stats.median / 1e9 if benchmark.stats else None)  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
def test_adam_l2_update(benchmark, baselines, request, impl):
    """One Adam step with the L2 gradient over the study's 100,480 + 1,290 parameters."""
    rng = np.random.default_rng(2)
    p = 101_770
    w0 = rng.uniform(-0.08, 0.08, p).astype(np.float32)
    g = (rng.standard_normal(p) * 1e-3).astype(np.float32)
    f = np.float32
    state = {"w": w0.copy(), "m": np.zeros(p, f), "v": np.zeros(p, f), "t": 0}

    def numpy_fn():  # keras' formula in float32, as the NumPy trainer does it
        s = state
        s["t"] += 1
        gg = g + f(0.001) * (f(2) * s["w"])
        alpha = f(0.001) * np.sqrt(f(1) - f(0.999) ** f(s["t"])) / (f(1) - f(0.9) ** f(s["t"]))
        s["m"] += (gg - s["m"]) * f(0.1)
        s["v"] += (gg * gg - s["v"]) * f(0.001)
        s["w"] -= (s["m"] * alpha) / (np.sqrt(s["v"]) + f(1e-7))

    pstate = {"w": w0.copy(), "m": np.zeros(p, f), "v": np.zeros(p, f), "t": 0}

    def pyreg_fn():
        kernels.adam_update(
            pstate["w"], g, pstate["m"], pstate["v"], iterations=pstate["t"], l2=0.001
        )
        pstate["t"] += 1

    def build_tf(tf):
        import keras

        var, gt = tf.Variable(w0), tf.constant(g)
        opt = keras.optimizers.Adam()
        opt.build([var])

        @tf.function
        def tf_fn():  # the l2 regularizer's gradient joins the loss gradient, then keras' Adam
            opt.apply_gradients([(gt + 0.001 * (2.0 * var), var)])

        return tf_fn

    fns = {"numpy": numpy_fn, "pyreg": pyreg_fn, "keras": tf_impl(build_tf)}
    if impl == "keras":
        request.getfixturevalue("keras_mod")
    group = "adam_l2_update 101,770 parameters"
    benchmark.group = group
    benchmark(fns[impl])
    if impl == "pyreg":  # the same number of steps of the numpy formula gives the same weights
        ref = {"w": w0.copy(), "m": np.zeros(p, f), "v": np.zeros(p, f), "t": 0}
        state.update(ref)
        for _ in range(pstate["t"]):
            numpy_fn()
        np.testing.assert_allclose(pstate["w"], state["w"], rtol=1e-5, atol=1e-7)
    baselines.record(benchmark, group, impl, {"keras": fns["keras"], "numpy": fns["numpy"]}, parameters=p,
                     gbps=p * 28 / benchmark.stats.stats.median / 1e9 if benchmark.stats else None)  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
def test_dropout_forward(benchmark, baselines, request, impl):
    rng = np.random.default_rng(3)
    h = rng.random((32, 128), dtype=np.float32)
    gen = np.random.default_rng(4)

    def numpy_fn():  # generator-based mask, as a NumPy trainer draws it
        mask = gen.random(h.shape, dtype=np.float32) >= 0.5
        return h * np.float32(2.0) * mask, mask

    step = iter(range(10**9))

    def build_tf(tf):
        ht = tf.constant(h)
        return tf.function(lambda: tf.nn.dropout(ht, 0.5))

    fns = {"numpy": numpy_fn, "pyreg": lambda: kernels.dropout_forward(h, 0.5, seed=7, step=next(step)),
           "keras": tf_impl(build_tf)}  # fmt: skip
    if impl == "keras":
        request.getfixturevalue("keras_mod")
    group = "dropout_forward 32x128 (rate 0.5)"
    benchmark.group = group
    out = benchmark(fns[impl])
    y = np.asarray(out[0] if isinstance(out, tuple) else out)
    assert set(np.unique(y[y != 0] / h[y != 0]).round(5)) <= {2.0}
    baselines.record(
        benchmark,
        group,
        impl,
        {"keras": fns["keras"], "numpy": fns["numpy"]},
        shape=[32, 128],
        rate=0.5,
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_softmax_cross_entropy(benchmark, baselines, request, impl):
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((32, 10)) * 3).astype(np.float32)
    y = rng.integers(0, 10, 32)

    def numpy_fn():
        s = z - z.max(1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(1, keepdims=True))
        p = np.exp(logp)
        p[np.arange(32), y] -= 1
        return -logp[np.arange(32), y].mean(), p / 32

    def build_tf(tf):
        zt, yt = tf.constant(z), tf.constant(y.astype(np.int32))

        @tf.function
        def tf_fn():
            with tf.GradientTape() as tape:
                tape.watch(zt)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yt, zt))
            return loss, tape.gradient(loss, zt)

        return tf_fn

    fns = {"numpy": numpy_fn, "pyreg": lambda: (kernels.softmax_cross_entropy(z, y)[0],
                                                 kernels.softmax_cross_entropy_backward(z, y)),
           "keras": tf_impl(build_tf)}  # fmt: skip
    if impl == "keras":
        request.getfixturevalue("keras_mod")
    group = "softmax_xent 32x10"
    benchmark.group = group
    loss, grad = benchmark(fns[impl])
    ref = numpy_fn()
    assert float(loss) == pytest.approx(float(ref[0]), rel=1e-5)
    np.testing.assert_allclose(np.asarray(grad), ref[1], rtol=1e-4, atol=1e-6)
    baselines.record(
        benchmark, group, impl, {"keras": fns["keras"], "numpy": fns["numpy"]}, shape=[32, 10]
    )
