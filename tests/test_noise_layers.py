"""Noise layers (GaussianNoise, GaussianDropout, AlphaDropout): the training transform's statistics
against Keras' formulas and TensorFlow itself, identity at inference, the backward against a NumPy
float64 step that uses the same noise, thread-count independence, training parity and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyreg import _core, kernels, layers, models, optimizers, utils

NOISE_STREAM = 0x4E000000  # cpp/noise.h: kNoiseStream
ALPHA, SCALE = 1.6732632423543772848, 1.0507009873554804934


def alpha_constants(rate):
    """Keras' AlphaDropout constants, in double (keras/src/layers/regularization/alpha_dropout.py)."""
    alpha_p = -ALPHA * SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    return alpha_p, a, -a * alpha_p * rate


def selu(x):
    return SCALE * np.where(x > 0, x, ALPHA * np.expm1(np.minimum(x, 0)))


def four_sigma_mean(n, sd):
    return 4.0 * sd / math.sqrt(n)


def four_sigma_std(n, sd):
    return 4.0 * sd / math.sqrt(2 * n)


# -------------------------------------------------------------------------------------------------
# the transform (pyreg.kernels.noise_forward: what the trainer applies)


def test_normals_are_box_muller_of_the_element_keyed_philox_words():
    # an independent float64 reference of the stream: element e reads block e // 4 of
    # (seed, kNoiseStream + site, step); words 0-1 give elements 4q, 4q+1 (cos, sin), 2-3 the others
    seed, site, step, B, OUT = 12345, 2, 7, 5, 13
    z, _ = kernels.noise_forward(
        np.zeros((B, OUT), np.float32), "gaussian_noise", 1.0, seed=seed, step=step, site=site
    )
    w = np.asarray(_core.philox_words(seed, NOISE_STREAM + site, step, 0, B * OUT + 4), np.float64)
    e = np.arange(B * OUT)
    pair = 4 * (e // 4) + 2 * ((e % 4) // 2)
    u1, u2 = (w[pair] + 1.0) * 2.0**-32, w[pair + 1] * 2.0**-32
    r = np.sqrt(-2.0 * np.log(u1))
    ref = np.where(e % 2 == 1, r * np.sin(2 * np.pi * u2), r * np.cos(2 * np.pi * u2)).astype(
        np.float32
    )
    np.testing.assert_allclose(z.ravel(), ref, rtol=0, atol=1e-6)


def test_gaussian_noise_mean_zero_std_stddev():
    x = np.zeros((1000, 300), np.float32)
    y, factor = kernels.noise_forward(x, "gaussian_noise", 0.5, seed=3, step=11, site=1)
    n = y.size
    assert abs(y.mean()) < four_sigma_mean(n, 0.5)
    assert abs(y.std() - 0.5) < four_sigma_std(n, 0.5)
    assert abs(np.mean(np.abs(y) < 0.5) - 0.682689492) < 4 * math.sqrt(
        0.25 / n
    )  # normal, not just its moments
    assert np.all(factor == 1.0)
    # additive: x + noise, the same noise for any x
    x2 = np.full_like(x, 2.5)
    y2, _ = kernels.noise_forward(x2, "gaussian_noise", 0.5, seed=3, step=11, site=1)
    np.testing.assert_array_equal(y2, x2 + y)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_gaussian_dropout_on_ones_has_keras_std(rate):
    sigma = math.sqrt(rate / (1 - rate))  # keras: math.sqrt(rate / (1 - rate)), then float32
    x = np.ones((1000, 300), np.float32)
    y, factor = kernels.noise_forward(x, "gaussian_dropout", rate, seed=9, step=2, site=1)
    n = y.size
    assert abs(y.mean() - 1.0) < four_sigma_mean(n, sigma)
    assert abs(y.std() - sigma) < four_sigma_std(n, sigma)
    np.testing.assert_array_equal(factor, y)  # d y / d x = the noise; on ones, y is the noise
    x3 = np.full_like(x, 3.0)
    y3, _ = kernels.noise_forward(x3, "gaussian_dropout", rate, seed=9, step=2, site=1)
    np.testing.assert_array_equal(y3, x3 * factor)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_alpha_dropout_keeps_selu_moments_and_exact_values(rng, rate):
    x = selu(rng.standard_normal((1000, 300))).astype(np.float32)
    y, factor = kernels.noise_forward(x, "alpha_dropout", rate, seed=4, step=0, site=1)
    alpha_p, a, b = alpha_constants(rate)
    a32, b32, ap32 = np.float32(a), np.float32(b), np.float32(alpha_p)
    kept = factor != 0
    # keras' float32 sequence: x' = x*k + alpha_p*(1-k), y = a*x' + b
    np.testing.assert_array_equal(y[kept], a32 * x[kept] + b32)
    np.testing.assert_array_equal(y[~kept], np.float32(a32 * ap32 + b32))
    np.testing.assert_array_equal(factor[kept], a32)
    n = y.size
    assert abs(kept.mean() - (1 - rate)) < 4 * math.sqrt(rate * (1 - rate) / n)
    # the point of alpha dropout: selu's fixed point (mean 0, variance 1) is kept
    assert abs(y.mean() - x.mean()) < 0.01
    assert abs(y.std() - x.std()) < 0.01


def test_alpha_dropout_rate_half_dropped_value():
    y, factor = kernels.noise_forward(np.zeros((64, 64), np.float32), "alpha_dropout", 0.5, seed=1)
    dropped = y[factor == 0]
    assert dropped.size > 0
    assert np.all(dropped == np.float32(-0.7791938186))


@pytest.mark.parametrize(
    ("kind", "param"), [("gaussian_noise", 0.3), ("gaussian_dropout", 0.4), ("alpha_dropout", 0.3)]
)
def test_transform_is_thread_count_independent_and_keyed(rng, kind, param):
    x = rng.standard_normal((37, 301)).astype(np.float32)
    runs = [
        kernels.noise_forward(x, kind, param, seed=5, step=3, site=2, threads=t) for t in (1, 2, 3)
    ]
    for y, f in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        np.testing.assert_array_equal(f, runs[0][1])
    other_step = kernels.noise_forward(x, kind, param, seed=5, step=4, site=2)[0]
    other_site = kernels.noise_forward(x, kind, param, seed=5, step=3, site=1)[0]
    other_seed = kernels.noise_forward(x, kind, param, seed=6, step=3, site=2)[0]
    for other in (other_step, other_site, other_seed):
        assert not np.array_equal(other, runs[0][0])


def test_transform_off_at_inference_and_at_zero():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for kind in ("gaussian_noise", "gaussian_dropout", "alpha_dropout"):
        y, f = kernels.noise_forward(x, kind, 0.3, seed=1, training=False)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(f, 1.0)
        y, _ = kernels.noise_forward(x, kind, 0.0, seed=1)
        np.testing.assert_array_equal(y, x)


# -------------------------------------------------------------------------------------------------
# models


def data(n=96, features=12, classes=4, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, features)).astype(np.float32)
    y = r.integers(0, classes, n).astype(np.int32)
    return x, y


NOISES = {
    "gaussian_noise": lambda: layers.GaussianNoise(0.4),
    "gaussian_dropout": lambda: layers.GaussianDropout(0.3),
    "alpha_dropout": lambda: layers.AlphaDropout(0.3),
}


def model_with(
    noise=None, *, act="tanh", hidden=16, features=12, classes=4, seed=0, where="hidden", lr=0.05
):
    utils.set_random_seed(seed)
    stack = [layers.Input((features,))]
    if noise is not None and where == "input":
        stack.append(noise)
    stack.append(layers.Dense(hidden, activation=act))
    if noise is not None and where == "hidden":
        stack.append(noise)
    stack.append(layers.Dense(classes, activation="softmax"))
    m = models.Sequential(stack)
    m.compile(
        optimizer=optimizers.SGD(learning_rate=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m


@pytest.mark.parametrize("kind", sorted(NOISES))
@pytest.mark.parametrize("where", ["hidden", "input"])
def test_off_in_evaluate_and_predict(kind, where):
    x, y = data()
    noisy, plain = model_with(NOISES[kind](), where=where), model_with(where=where)
    plain.set_weights(noisy.get_weights())
    np.testing.assert_array_equal(noisy.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert noisy.evaluate(x, y, verbose=0) == plain.evaluate(x, y, verbose=0)
    # in fit: the training loss sees the noise, val_loss does not
    hist = noisy.fit(
        x, y, batch_size=96, epochs=1, shuffle=False, validation_data=(x, y), verbose=0
    )
    hist_plain = plain.fit(x, y, batch_size=96, epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] != hist_plain.history["loss"][0]
    assert hist.history["val_loss"][0] == pytest.approx(
        noisy.evaluate(x, y, verbose=0)[0], abs=0, rel=1e-12
    )


@pytest.mark.parametrize("kind", sorted(NOISES))
def test_zero_rate_is_the_identity_in_training(kind):
    x, y = data()
    zero = {"gaussian_noise": layers.GaussianNoise(0.0), "gaussian_dropout": layers.GaussianDropout(0.0),
            "alpha_dropout": layers.AlphaDropout(0.0)}[kind]  # fmt: skip
    a, b = model_with(zero), model_with()
    b.set_weights(a.get_weights())
    a.fit(x, y, batch_size=16, epochs=2, verbose=0)
    b.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def reference_step(x, y, weights, noise_fn, act, lr, where):
    """One SGD step in float64 of Dense(act) -> noise -> Dense(softmax) (or noise on the input)."""
    w0, b0, w1, b1 = (np.asarray(w, np.float64) for w in weights)
    xin = noise_fn(x.astype(np.float64)) if where == "input" else x.astype(np.float64)
    z0 = xin @ w0 + b0
    h = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v}[act](z0)
    hn = noise_fn(h) if where == "hidden" else h
    logits = hn @ w1 + b1
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    dlog = p.copy()
    dlog[np.arange(n), y] -= 1
    dlog /= n
    gw1, gb1 = hn.T @ dlog, dlog.sum(0)
    dhn = dlog @ w1.T
    dh = dhn * noise_fn.factor if where == "hidden" else dhn
    dz0 = (
        dh * {"tanh": 1 - h**2, "relu": (z0 > 0).astype(np.float64), "linear": np.ones_like(h)}[act]
    )
    gw0, gb0 = xin.T @ dz0, dz0.sum(0)
    return loss, [w0 - lr * gw0, b0 - lr * gb0, w1 - lr * gw1, b1 - lr * gb1]


class SameNoise:
    """The trainer's noise for (seed, site, step) on a (B, OUT) batch, in float64."""

    def __init__(self, kind, param, shape, seed, site, step):
        zeros, ones = np.zeros(shape, np.float32), np.ones(shape, np.float32)
        self.kind, self.param = kind, param
        if kind == "gaussian_noise":
            self.add = kernels.noise_forward(zeros, kind, param, seed=seed, site=site, step=step)[
                0
            ].astype(np.float64)
            self.factor = np.ones(shape)
        elif kind == "gaussian_dropout":
            self.factor = kernels.noise_forward(ones, kind, param, seed=seed, site=site, step=step)[
                1
            ].astype(np.float64)
        else:
            f = kernels.noise_forward(ones, kind, param, seed=seed, site=site, step=step)[1]
            self.kept = f != 0
            alpha_p, self.a, self.b = alpha_constants(param)
            self.alpha_p = alpha_p
            self.factor = np.where(self.kept, self.a, 0.0)

    def __call__(self, v):
        if self.kind == "gaussian_noise":
            return v + self.add
        if self.kind == "gaussian_dropout":
            return v * self.factor
        return self.a * np.where(self.kept, v, self.alpha_p) + self.b


class NoNoise:
    factor = 1.0

    def __call__(self, v):
        return v


@pytest.mark.parametrize(
    ("kind", "param"), [("gaussian_noise", 0.4), ("gaussian_dropout", 0.3), ("alpha_dropout", 0.3)]
)
@pytest.mark.parametrize(
    ("act", "where"),
    [("tanh", "hidden"), ("relu", "hidden"), ("linear", "hidden"), ("relu", "input")],
)
def test_sgd_step_matches_float64_reference_with_the_same_noise(kind, param, act, where):
    x, y = data(n=24)
    noise = {"gaussian_noise": layers.GaussianNoise, "gaussian_dropout": layers.GaussianDropout,
             "alpha_dropout": layers.AlphaDropout}[kind](param)  # fmt: skip
    lr = 0.5
    m = model_with(noise, act=act, where=where, lr=lr)
    w_before = m.get_weights()
    mlp = m._mlp
    shape = (24, 12) if where == "input" else (24, 16)
    same = SameNoise(kind, param, shape, mlp.seed, 0 if where == "input" else 1, mlp.dropout_step)
    loss_ref, w_ref = reference_step(x, y, w_before, same, act, lr, where)
    hist = m.fit(x, y, batch_size=24, epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(loss_ref, abs=2e-6)
    for got, want, before in zip(m.get_weights(), w_ref, w_before):
        assert np.max(np.abs(got - want)) < 2e-6
        assert (
            np.max(np.abs(want - before)) > 1e-4
        )  # the step moved every array: the check can fail
    # the check can fail: the same step without the noise is measurably different
    plain = reference_step(x, y, w_before, NoNoise(), act, lr, where)[1]
    assert max(np.max(np.abs(g - p)) for g, p in zip(m.get_weights(), plain)) > 1e-4


@pytest.mark.parametrize("kind", sorted(NOISES))
@pytest.mark.parametrize("where", ["hidden", "input"])
def test_training_is_thread_count_independent_and_repeats(kind, where):
    x, y = data(n=200, features=70)
    runs = []
    for threads in (1, 2, 2):
        m = model_with(NOISES[kind](), hidden=130, features=70, where=where, seed=4)
        m.fit(x, y, batch_size=32, epochs=2, verbose=0, threads=threads)
        runs.append(m.get_weights())
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_sparse_input_with_noise_trains_like_dense_input():
    # mostly-zero rows take the sparse path unless the input noise fills them in
    r = np.random.default_rng(1)
    x = (r.random((128, 100)) * (r.random((128, 100)) < 0.1)).astype(np.float32)
    y = r.integers(0, 4, 128).astype(np.int32)
    for noise in (layers.GaussianNoise(0.2), layers.GaussianDropout(0.2), layers.AlphaDropout(0.2)):
        out = []
        for sparse in ("sparse", "dense"):
            m = model_with(
                type(noise)(noise.noise_param), act="relu", features=100, where="hidden", seed=2
            )
            m.fit(x, y, batch_size=32, epochs=1, verbose=0, sparse=sparse)
            out.append(m.get_weights())
        for a, b in zip(*out):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


# -------------------------------------------------------------------------------------------------
# layers: config and bad arguments


def test_get_config_and_defaults():
    assert layers.GaussianNoise(0.2, seed=3, name="gn").get_config() == {
        "name": "gn",
        "stddev": 0.2,
        "seed": 3,
    }
    assert layers.GaussianDropout(0.1, name="gd").get_config() == {
        "name": "gd",
        "rate": 0.1,
        "seed": None,
    }
    assert layers.AlphaDropout(0.5, name="ad").get_config() == {
        "name": "ad",
        "rate": 0.5,
        "seed": None,
    }
    assert layers.GaussianNoise.from_config({"stddev": 0.3}).stddev == 0.3


@pytest.mark.parametrize(
    ("make", "exc", "words"),
    [
        (lambda: layers.GaussianNoise(-0.1), ValueError, "stddev"),
        (lambda: layers.GaussianNoise(1.5), ValueError, "stddev must be in [0, 1]"),
        (lambda: layers.GaussianNoise(float("nan")), ValueError, "stddev"),
        (lambda: layers.GaussianNoise("0.1"), TypeError, "stddev"),
        (lambda: layers.GaussianDropout(1.0), ValueError, "rate must be in [0, 1); got 1.0"),
        (lambda: layers.GaussianDropout(-0.2), ValueError, "rate"),
        (lambda: layers.AlphaDropout(1.0), ValueError, "rate must be in [0, 1); got 1.0"),
        (lambda: layers.AlphaDropout(1.2), ValueError, "rate"),
        (
            lambda: layers.AlphaDropout(0.2, noise_shape=(None, 1)),
            NotImplementedError,
            "noise_shape",
        ),
        (lambda: layers.GaussianDropout(0.2, seed=-1), ValueError, "seed"),
        (lambda: layers.GaussianNoise(0.2, seed=1.5), TypeError, "seed"),
    ],
)
def test_bad_arguments(make, exc, words):
    with pytest.raises(exc, match=None) as info:
        make()
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("stack", "words"),
    [
        ([layers.Dense(8), layers.Dropout(0.2), layers.GaussianNoise(0.1), layers.Dense(2, "softmax")], "Dropout"),
        ([layers.Dense(8), layers.GaussianNoise(0.1), layers.Dropout(0.2), layers.Dense(2, "softmax")], "Dropout"),
        ([layers.Dense(8), layers.GaussianNoise(0.1), layers.AlphaDropout(0.2), layers.Dense(2, "softmax")], "one"),
        ([layers.Dropout(0.2), layers.GaussianDropout(0.1), layers.Dense(2, "softmax")], "input"),
        ([layers.Dense(8), layers.GaussianNoise(0.1), layers.Activation("relu"), layers.Dense(2, "softmax")],
         "Activation"),
    ],
)  # fmt: skip
def test_unsupported_stacks_are_refused(stack, words):
    with pytest.raises(NotImplementedError, match=words):
        models.Sequential([layers.Input((5,)), *stack])


def test_noise_after_the_output_layer_is_refused():
    m = models.Sequential(
        [layers.Input((5,)), layers.Dense(2, activation="softmax"), layers.GaussianNoise(0.1)]
    )
    with pytest.raises(NotImplementedError, match="output layer"):
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")


def test_kernel_wrapper_bad_arguments():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="kind"):
        kernels.noise_forward(x, "dropout", 0.1, seed=0)
    with pytest.raises(ValueError, match="rate"):
        kernels.noise_forward(x, "alpha_dropout", 1.0, seed=0)
    with pytest.raises(ValueError, match="stddev"):
        kernels.noise_forward(x, "gaussian_noise", -1.0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        kernels.noise_forward(x, "gaussian_noise", 0.1, seed=-1)


# -------------------------------------------------------------------------------------------------
# against TensorFlow


KERAS_NOISES = [("GaussianNoise", 0.5), ("GaussianDropout", 0.2), ("AlphaDropout", 0.3)]


@pytest.mark.keras
@pytest.mark.parametrize(("name", "param"), KERAS_NOISES)
def test_statistics_agree_with_keras(keras_mod, rng, name, param):
    keras = keras_mod
    x = selu(rng.standard_normal((500, 200))).astype(np.float32)
    ours, _ = kernels.noise_forward(x, {"GaussianNoise": "gaussian_noise", "GaussianDropout": "gaussian_dropout",
                                        "AlphaDropout": "alpha_dropout"}[name], param, seed=8)  # fmt: skip
    theirs = np.asarray(getattr(keras.layers, name)(param, seed=8)(x, training=True))
    n = x.size
    # two independent samples: their means and standard deviations (of the output and of the change
    # it makes) agree within sampling error
    for a, b in ((ours, theirs), (ours - x, theirs - x)):
        sd = max(a.std(), b.std())
        assert abs(a.mean() - b.mean()) < 2 * four_sigma_mean(n, sd)
        assert abs(a.std() - b.std()) < 2 * four_sigma_std(n, sd) + 1e-3
    if (
        name == "AlphaDropout"
    ):  # every element is a*x + b or the dropped value, in the same float32 arithmetic
        alpha_p, aa, bb = alpha_constants(param)
        dropped = np.float32(np.float32(aa) * np.float32(alpha_p) + np.float32(bb))
        for out in (ours, theirs):
            kept = out != dropped
            np.testing.assert_array_equal(out[kept], np.float32(aa) * x[kept] + np.float32(bb))
            assert abs(kept.mean() - (1 - param)) < 4 * math.sqrt(param * (1 - param) / n)
    # and at inference keras is the identity, as pyreg
    np.testing.assert_array_equal(
        np.asarray(getattr(keras.layers, name)(param)(x, training=False)), x
    )


@pytest.mark.keras
@pytest.mark.parametrize(("name", "param", "act"), [("GaussianDropout", 0.3, "relu"), ("GaussianNoise", 0.3, "relu"),
                                            ("AlphaDropout", 0.1, "tanh")])  # fmt: skip
def test_training_reaches_keras_accuracy(keras_mod, name, param, act):
    # pyreg has no selu: AlphaDropout is trained after tanh (keras the same)
    from pyreg.study.definition import load_mnist

    keras = keras_mod
    (x, y), (xt, yt) = load_mnist(2000, 1000, flat=True)
    epochs, seeds = 4, (0, 1, 2)
    ours, theirs = [], []
    for seed in seeds:
        utils.set_random_seed(seed)
        m = models.Sequential([layers.Input((784,)), layers.Dense(64, activation=act),
                               getattr(layers, name)(param), layers.Dense(10, activation="softmax")])  # fmt: skip
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        ours.append(m.evaluate(xt, yt, verbose=0)[1])
        keras.utils.set_random_seed(seed)
        k = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation=act),
                              getattr(keras.layers, name)(param), keras.layers.Dense(10, activation="softmax")])  # fmt: skip
        k.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        k.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        theirs.append(k.evaluate(xt, yt, verbose=0)[1])
    spread = max(np.std(ours), np.std(theirs), 0.005)
    assert abs(np.mean(ours) - np.mean(theirs)) < 3 * spread + 0.01, (ours, theirs)


@pytest.mark.keras
def test_interop_round_trip(keras_mod):
    from pyreg import interop

    stack = [layers.Input((6,)), layers.GaussianNoise(0.1, name="gn"), layers.Dense(8, activation="relu"),
             layers.GaussianDropout(0.2, name="gd"), layers.Dense(8), layers.AlphaDropout(0.3, name="ad"),
             layers.Dense(3, activation="softmax")]  # fmt: skip
    m = models.Sequential(stack)
    k = interop.to_keras(m)
    kinds = {lay.name: (type(lay).__name__, lay.get_config()) for lay in k.layers}
    assert kinds["gn"][0] == "GaussianNoise"
    assert kinds["gn"][1]["stddev"] == 0.1
    assert kinds["gd"][0] == "GaussianDropout"
    assert kinds["gd"][1]["rate"] == 0.2
    assert kinds["ad"][0] == "AlphaDropout"
    assert kinds["ad"][1]["rate"] == 0.3
    back = interop.from_keras(k)
    assert [type(lay).__name__ for lay in back.layers] == [type(lay).__name__ for lay in m.layers]
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
