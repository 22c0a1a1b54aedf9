"""The fused optimizer update: Adam (coupled L2 / decoupled weight decay) and SGD, against a NumPy
float32 transcription of keras' formulas and against keras' optimizers themselves."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import kernels

P_KERNEL, P_BIAS = 784 * 128, 128  # the study's hidden layer


def numpy_adam(w, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7, l2=0.0, wd=0.0, amsgrad=False):
    """keras' adam.py in float32, one step per gradient."""
    f = np.float32
    w = w.astype(f).copy()
    m, v, vh = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + f(l2) * (f(2) * w)
        if wd:
            w = w - w * f(wd) * f(lr)
        alpha = f(lr) * np.sqrt(f(1) - f(b2) ** f(t)) / (f(1) - f(b1) ** f(t))
        m = m + (g - m) * f(1 - b1)
        v = v + (g * g - v) * f(1 - b2)
        vv = v
        if amsgrad:
            vh = np.maximum(vh, v)
            vv = vh
        w = w - (m * alpha) / (np.sqrt(vv) + f(eps))
    return w, m, v


def run_pyreg_adam(w0, grads, **kw):
    w = w0.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    vhat = np.zeros_like(w) if kw.pop("amsgrad", False) else None
    for t, g in enumerate(grads):
        kernels.adam_update(w, g, m, v, iterations=t, vhat=vhat, **kw)
    return w, m, v


@pytest.fixture(scope="module")
def trajectory():
    rng = np.random.default_rng(11)
    w0 = rng.uniform(-0.08, 0.08, P_KERNEL).astype(np.float32)
    grads = [(rng.standard_normal(P_KERNEL) * 1e-2).astype(np.float32) for _ in range(100)]
    return w0, grads


@pytest.mark.parametrize(
    "case", [dict(), dict(l2=0.001), dict(weight_decay=0.004), dict(amsgrad=True, l2=0.01)]
)
def test_adam_matches_numpy_transcription(trajectory, case):
    w0, grads = trajectory
    w, m, v = run_pyreg_adam(w0, grads[:20], **case)
    ref = numpy_adam(w0, grads[:20], l2=case.get("l2", 0.0), wd=case.get("weight_decay", 0.0),
                     amsgrad=case.get("amsgrad", False))  # fmt: skip
    np.testing.assert_allclose(w, ref[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(m, ref[1], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(v, ref[2], rtol=1e-6, atol=1e-12)


def test_adam_matches_the_naive_reference_kernel(trajectory):
    from pyreg import _core

    w0, grads = trajectory
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(grads[:10]):
        _core.adam_update_ref(w, g, m, v, t, l2=0.001, weight_decay=0.004)
    fast = run_pyreg_adam(w0, grads[:10], l2=0.001, weight_decay=0.004)
    for a, b in zip(fast, (w, m, v)):
        np.testing.assert_array_equal(a, b)  # the same float32 sequence, vectorised or not


def test_adam_thread_count_does_not_change_results(trajectory):
    w0, grads = trajectory
    one = run_pyreg_adam(w0, grads[:5], l2=0.001, threads=1)
    two = run_pyreg_adam(w0, grads[:5], l2=0.001, threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_sgd_momentum_and_nesterov_match_keras_formulas(rng):
    w0 = rng.standard_normal(1000).astype(np.float32)
    grads = [rng.standard_normal(1000).astype(np.float32) for _ in range(10)]
    f = np.float32
    for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
        w, mom = w0.copy(), np.zeros_like(w0)
        ref_w, ref_m = w0.copy(), np.zeros_like(w0)
        for g in grads:
            kernels.sgd_update(
                w,
                g,
                learning_rate=0.01,
                momentum=momentum,
                nesterov=nesterov,
                momentums=mom,
                l2=0.01,
            )
            gg = g + f(0.01) * (f(2) * ref_w)
            if momentum:
                ref_m = ref_m * f(momentum) - gg * f(0.01)
                ref_w = ref_w + (ref_m * f(momentum) - gg * f(0.01)) if nesterov else ref_w + ref_m
            else:
                ref_w = ref_w - gg * f(0.01)
        np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("mode", ["l2", "weight_decay", "adamw"])
def test_adam_100_steps_equal_keras(keras_mod, trajectory, mode):
    """100 steps from the same weights and gradients as keras' Adam (with an l2 regularizer, or with
    weight_decay=, or AdamW): equal within 1e-6 relative."""
    import tensorflow as tf

    keras = keras_mod
    w0, grads = trajectory
    var = tf.Variable(w0)
    if mode == "l2":
        opt, reg = keras.optimizers.Adam(), keras.regularizers.l2(0.001)
    elif mode == "weight_decay":
        opt, reg = keras.optimizers.Adam(weight_decay=0.004), None
    else:
        opt, reg = keras.optimizers.AdamW(weight_decay=0.01), None
    for g in grads:
        if reg is not None:
            with tf.GradientTape() as tape:
                penalty = reg(var)
            g = tf.constant(g) + tape.gradient(penalty, var)
        opt.apply_gradients([(tf.convert_to_tensor(g), var)])
    kw = {
        "l2": dict(l2=0.001),
        "weight_decay": dict(weight_decay=0.004),
        "adamw": dict(weight_decay=0.01),
    }[mode]
    w, _, _ = run_pyreg_adam(w0, grads, **kw)
    np.testing.assert_allclose(w, var.numpy(), rtol=1e-6, atol=1e-9)
