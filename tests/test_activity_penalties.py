"""Activity and bias penalties on Dense: Keras 3's scaling, in the loss, val_loss and evaluate."""

from __future__ import annotations

import numpy as np
import pytest
from constraint_helpers import data, parity, trained_weights, two_layer

import pyreg
from pyreg import layers, regularizers


def test_evaluate_adds_the_mean_activity_penalty_of_the_output_after_the_activation():
    # numpy float64 reference: mean cross-entropy + l1 * sum|relu(xK + b)| / N (+ the bias penalty)
    m = two_layer(
        pyreg,
        {"activity_regularizer": regularizers.L1(0.1), "bias_regularizer": regularizers.L2(0.5)},
        {"activity_regularizer": regularizers.L2(0.2)},
        out_act=None,
    )
    rng = np.random.default_rng(0)
    m.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.3 for w in m.get_weights()])
    m.compile(optimizer="sgd", loss=pyreg.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data(steps=3, bs=4)
    k0, b0, k1, b1 = (w.astype(np.float64) for w in m.get_weights())
    h = np.maximum(x @ k0 + b0, 0)
    z = h @ k1 + b1
    ce = pyreg.losses.sparse_categorical_crossentropy(y, z, from_logits=True).mean()
    want = (
        ce
        + 0.1 * np.abs(h).sum() / len(x)
        + 0.2 * np.square(z).sum() / len(x)
        + 0.5 * np.square(b0).sum()
    )
    for bs in (4, 5, 12):  # each batch divides by its own size: the weighted mean is the same
        assert m.evaluate(x, y, batch_size=bs, verbose=0) == pytest.approx(want, rel=1e-6)


def test_thread_count_does_not_change_the_result():
    x, y = data(steps=12, bs=8)

    def make():
        pyreg.utils.set_random_seed(5)
        m = pyreg.Sequential(
            [
                layers.Input(shape=(12,)),
                layers.Dense(200, "tanh", activity_regularizer="l2"),
                layers.Dropout(0.3),
                layers.Dense(3, activity_regularizer=regularizers.L1L2(0.01, 0.01)),
            ]
        )
        return m

    loss = pyreg.losses.SparseCategoricalCrossentropy(from_logits=True)
    w1, w2 = (trained_weights(make, x, y, t, loss=loss) for t in (1, 2))
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_what_is_refused():
    with pytest.raises(NotImplementedError, match="activity_regularizer on a softmax output"):
        two_layer(pyreg, {}, {"activity_regularizer": "l2"})
    with pytest.raises(NotImplementedError, match="activity_regularizer applies to its own"):
        pyreg.Sequential(
            [
                layers.Input(shape=(4,)),
                layers.Dense(3, activity_regularizer="l1"),
                layers.Activation("relu"),
                layers.Dense(2),
            ]
        )
    with pytest.raises(ValueError, match="regularizer must be None"):
        layers.Dense(3, activity_regularizer="l3")


CASES = {
    "l1 hidden": ({"activity_regularizer": ("L1", 0.05)}, {}, "relu", "softmax"),
    "l1l2 hidden + bias l2": (
        {"activity_regularizer": ("L1L2", 0.01, 0.02), "bias_regularizer": ("L2", 0.5)},
        {},
        "relu",
        "softmax",
    ),
    "tanh, logits l1": (
        {"activity_regularizer": ("L2", 0.05), "bias_regularizer": ("L1", 0.1)},
        {"activity_regularizer": ("L1", 0.03)},
        "tanh",
        None,
    ),
    "sigmoid, logits l2": (
        {"activity_regularizer": ("L2", 0.05)},
        {"activity_regularizer": ("L2", 0.01)},
        "sigmoid",
        None,
    ),
}


def build(mod, spec):
    return {k: getattr(mod.regularizers, v[0])(*v[1:]) for k, v in spec.items()}


@pytest.mark.keras
@pytest.mark.parametrize("case", list(CASES))
def test_20_steps_match_keras(keras_mod, case):
    hidden, out, act, out_act = CASES[case]
    x, y = data()
    km = two_layer(
        keras_mod, build(keras_mod, hidden), build(keras_mod, out), act=act, out_act=out_act
    )
    pm = two_layer(pyreg, build(pyreg, hidden), build(pyreg, out), act=act, out_act=out_act)
    logits = out_act is None
    kl = keras_mod.losses.SparseCategoricalCrossentropy(from_logits=logits)
    pl = pyreg.losses.SparseCategoricalCrossentropy(from_logits=logits)
    dw, dl = parity(keras_mod, km, pm, kl, pl, x, y)
    assert dw < 1e-5, (dw, dl)
    assert dl < 1e-5, (dw, dl)


def test_a_noise_layer_after_an_activity_penalty_is_refused():
    from pyreg import layers, models

    with pytest.raises(
        NotImplementedError, match="after a Dense layer with an activity_regularizer"
    ):
        models.Sequential([layers.Input(shape=(8,)), layers.Dense(4, activity_regularizer="l2"),
                           layers.GaussianNoise(0.1), layers.Dense(2, activation="softmax")])  # fmt: skip
