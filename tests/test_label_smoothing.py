"""Label smoothing of CategoricalCrossentropy: the smoothed targets in training and evaluate."""

from __future__ import annotations

import numpy as np
import pytest
from constraint_helpers import data, parity, two_layer

import pyreg
from pyreg import losses


def test_reference_function_gives_keras_value():
    # Keras 3: CategoricalCrossentropy(label_smoothing=.1)([[0,1,0]], [[.2,.7,.1]]) = 0.46329743,
    # and the same for unnormalised [.4, 1.4, .2]
    for p in ([[0.2, 0.7, 0.1]], [[0.4, 1.4, 0.2]]):
        assert losses.categorical_crossentropy([[0, 1, 0]], p, label_smoothing=0.1)[
            0
        ] == pytest.approx(0.46329743, abs=1e-7)


def smoothed_loss(z, y, ls):
    """float64 reference: -sum y' log_softmax(z), y' = onehot (1 - ls) + ls / K."""
    z = np.asarray(z, np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    t = np.eye(z.shape[1])[y] * (1 - ls) + ls / z.shape[1]
    return -(t * logp).sum(1)


@pytest.mark.parametrize("out_act", ["softmax", None])
def test_evaluate_uses_the_smoothed_targets_on_the_logits(out_act):
    m = two_layer(pyreg, {}, {}, out_act=out_act)
    m.compile(
        optimizer="sgd",
        loss=losses.CategoricalCrossentropy(from_logits=out_act is None, label_smoothing=0.2),
    )
    x, y = data(steps=3, bs=4)
    k0, b0, k1, b1 = (w.astype(np.float64) for w in m.get_weights())
    z = np.maximum(x @ k0 + b0, 0) @ k1 + b1
    want = smoothed_loss(z, y, 0.2).mean()
    assert m.evaluate(x, np.eye(3)[y], verbose=0) == pytest.approx(want, rel=1e-6)


def test_a_gradient_step_follows_softmax_minus_smoothed_targets():
    # one layer, SGD(lr): W -= lr * x^T (softmax - y') / B, b -= lr * mean(softmax - y')
    m = pyreg.Sequential(
        [pyreg.layers.Input(shape=(5,)), pyreg.layers.Dense(4, activation="softmax")]
    )
    m.compile(
        optimizer=pyreg.optimizers.SGD(0.5),
        loss=losses.CategoricalCrossentropy(label_smoothing=0.3),
    )
    x, y = data(steps=1, bs=6, IN=5, K=4)
    k, b = (w.astype(np.float64) for w in m.get_weights())
    z = x @ k + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = (p - (np.eye(4)[y] * 0.7 + 0.3 / 4)) / len(x)
    m.fit(x, np.eye(4)[y], batch_size=6, epochs=1, verbose=0)
    np.testing.assert_allclose(m.get_weights()[0], k - 0.5 * x.T @ d, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.5 * d.sum(0), atol=1e-6)


def test_zero_smoothing_trains_bitwise_as_before():
    x, y = data(steps=10, bs=4)
    out = []
    for loss in ("categorical_crossentropy", losses.CategoricalCrossentropy(label_smoothing=0.0)):
        pyreg.utils.set_random_seed(2)
        m = two_layer(pyreg, {}, {})
        m.compile(optimizer="adam", loss=loss)
        m.fit(x, np.eye(3)[y], batch_size=4, epochs=2, verbose=0)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_thread_count_does_not_change_the_result():
    x, y = data(steps=12, bs=8)
    out = []
    for t in (1, 2):
        pyreg.utils.set_random_seed(4)
        m = two_layer(pyreg, {}, {}, H=200)
        m.compile(optimizer="adam", loss=losses.CategoricalCrossentropy(label_smoothing=0.1))
        m.fit(x, np.eye(3)[y], batch_size=8, epochs=2, verbose=0, threads=t)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(TypeError, match="unexpected keyword argument 'label_smoothing'"):
        losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]; got 1.5"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="label_smoothing must be a real number"):
        losses.CategoricalCrossentropy(label_smoothing="0.1")


@pytest.mark.keras
def test_keras_values_and_refusals(keras_mod):
    cce = keras_mod.losses.CategoricalCrossentropy(label_smoothing=0.1)
    assert float(cce([[0.0, 1.0, 0.0]], [[0.2, 0.7, 0.1]])) == pytest.approx(0.46329743, abs=1e-7)
    with pytest.raises(TypeError, match="unexpected keyword argument 'label_smoothing'"):
        keras_mod.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)


@pytest.mark.keras
@pytest.mark.parametrize(("ls", "out_act"), [(0.1, "softmax"), (0.25, None), (1.0, "softmax")])
def test_20_steps_match_keras(keras_mod, ls, out_act):
    x, y = data()
    km = two_layer(keras_mod, {}, {}, out_act=out_act)
    pm = two_layer(pyreg, {}, {}, out_act=out_act)
    kl = keras_mod.losses.CategoricalCrossentropy(from_logits=out_act is None, label_smoothing=ls)
    pl = losses.CategoricalCrossentropy(from_logits=out_act is None, label_smoothing=ls)
    dw, dl = parity(keras_mod, km, pm, kl, pl, x, np.eye(3, dtype=np.float32)[y])
    assert dw < 1e-5, (dw, dl)
    assert dl < 1e-5, (dw, dl)
