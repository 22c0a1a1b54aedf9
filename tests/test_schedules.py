"""Learning-rate schedules (pyreg.optimizers.schedules): their float32 values against documented
numbers and TensorFlow's schedule objects, training with them against Keras, and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import layers, models, optimizers
from pyreg.optimizers import schedules

F32 = np.float32

# (pyreg/keras class name, args, kwargs), each evaluated at steps 0..40 against keras
CASES = [
    ("ExponentialDecay", (0.1, 2, 0.5), {}),
    ("ExponentialDecay", (0.1, 2, 0.5), {"staircase": True}),
    ("ExponentialDecay", (0.01, 3, 0.96), {}),
    ("InverseTimeDecay", (0.1, 2, 1.0), {}),
    ("InverseTimeDecay", (0.05, 3, 0.7), {"staircase": True}),
    ("PiecewiseConstantDecay", ([1, 3], [0.1, 0.05, 0.01]), {}),
    ("PiecewiseConstantDecay", ([2.7, 5, 9], [0.3, 0.2, 0.1, 0.001]), {}),
    ("CosineDecay", (0.1, 4), {"alpha": 0.1}),
    ("CosineDecay", (0.1, 7), {}),
    ("CosineDecay", (0.0, 4), {"alpha": 0.1, "warmup_target": 0.1, "warmup_steps": 2}),
    ("CosineDecay", (0.01, 5), {"warmup_target": 0.05, "warmup_steps": 3, "alpha": 0.2}),
    ("CosineDecay", (0.1, 4), {"warmup_steps": 3}),  # no warmup_target: warmup_steps is ignored
]


def make(name, args, kwargs, module=schedules):
    return getattr(module, name)(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# values


def test_documented_values():
    """Keras' float32 values for steps 0..4, written out (checked against TensorFlow once)."""
    cases = [
        (schedules.ExponentialDecay(0.1, 2, 0.5), [0.1, 0.0707106814, 0.05, 0.0353553407, 0.025]),
        (schedules.ExponentialDecay(0.1, 2, 0.5, staircase=True), [0.1, 0.1, 0.05, 0.05, 0.025]),
        (schedules.CosineDecay(0.1, 4, alpha=0.1), [0.1, 0.0868198127, 0.0549999960, 0.0231801961, 0.0100000007]),
        (schedules.CosineDecay(0.0, 4, alpha=0.1, warmup_target=0.1, warmup_steps=2), [0.0, 0.05, 0.1, 0.0868198127]),
        (schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]), [0.1, 0.1, 0.05, 0.05, 0.01]),
        (schedules.InverseTimeDecay(0.1, 2, 1.0), [0.1, 0.0666666701, 0.05, 0.0399999991]),
    ]  # fmt: skip
    for sched, expected in cases:
        got = [sched(k) for k in range(len(expected))]
        assert all(isinstance(v, np.float32) for v in got)
        np.testing.assert_array_equal(
            np.array(got), np.array(expected, np.float32), err_msg=repr(sched)
        )
    # float32 matters: the double-precision cosine at step 1 is 0.0868198052
    assert schedules.CosineDecay(0.1, 4, alpha=0.1)(1) != F32(0.0868198052)
    # after decay_steps the cosine stays at alpha * lr0; the piecewise one at its last value
    assert schedules.CosineDecay(0.1, 4, alpha=0.1)(100) == schedules.CosineDecay(
        0.1, 4, alpha=0.1
    )(4)
    assert schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01])(10**12) == F32(0.01)


def test_values_against_a_float64_reference():
    """Each formula in float64 (an independent reference): within float32 rounding for 0..40."""
    steps = np.arange(41, dtype=np.float64)
    refs = [
        (schedules.ExponentialDecay(0.1, 3, 0.9), 0.1 * 0.9 ** (steps / 3)),
        (schedules.ExponentialDecay(0.1, 3, 0.9, staircase=True), 0.1 * 0.9 ** np.floor(steps / 3)),
        (schedules.InverseTimeDecay(0.1, 4, 0.5), 0.1 / (1 + 0.5 * steps / 4)),
        (schedules.InverseTimeDecay(0.1, 4, 0.5, staircase=True), 0.1 / (1 + 0.5 * np.floor(steps / 4))),
        (schedules.CosineDecay(0.2, 30, alpha=0.05),
         0.2 * (0.95 * 0.5 * (1 + np.cos(np.pi * np.minimum(steps, 30) / 30)) + 0.05)),
        (schedules.PiecewiseConstantDecay([5, 20], [0.3, 0.2, 0.1]),
         np.where(steps <= 5, 0.3, np.where(steps <= 20, 0.2, 0.1))),
    ]  # fmt: skip
    warm = np.minimum(steps, 10 + 30)
    cos_ref = np.where(
        warm < 10,
        0.01 + (0.1 - 0.01) * warm / 10,
        0.1 * (0.5 * (1 + np.cos(np.pi * (warm - 10) / 30))),
    )
    refs.append((schedules.CosineDecay(0.01, 30, warmup_target=0.1, warmup_steps=10), cos_ref))
    for sched, ref in refs:
        got = np.array([sched(int(k)) for k in steps], np.float64)
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-9, err_msg=repr(sched))


@pytest.mark.keras
@pytest.mark.parametrize(("name", "args", "kwargs"), CASES)
def test_values_match_keras_bitwise(keras_mod, name, args, kwargs):
    ks = make(name, args, kwargs, keras_mod.optimizers.schedules)
    ps = make(name, args, kwargs)
    for k in range(41):
        expected = F32(
            keras_mod.ops.convert_to_numpy(ks(keras_mod.ops.convert_to_tensor(k, dtype="int64")))
        )
        assert ps(k) == expected, (k, ps(k), expected)
    assert ps.get_config() == ks.get_config()


# ----------------------------------------------------------------------------------------------
# training against keras


def data(n=80, d=12, k=4, sparse=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    if sparse:  # mostly zeros: layer 0 takes the fused sparse sweep
        x = np.where(rng.random((n, d)) < 0.8, 0.0, np.abs(x)).astype(np.float32)
    return x, rng.integers(0, k, size=n)


def keras_optimizer(keras, kind, sched, **kw):
    return {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "adamw": keras.optimizers.AdamW,
    }[kind](learning_rate=sched, **kw)


def pyreg_optimizer(kind, sched, **kw):
    return {"adam": optimizers.Adam, "sgd": optimizers.SGD, "adamw": optimizers.AdamW}[kind](
        learning_rate=sched, **kw
    )


def twin_models(keras, hidden, d, k, seed=0):
    """A keras model and a pyreg model of the same layers and initial weights."""
    keras.utils.set_random_seed(seed)
    km = keras.Sequential([keras.Input(shape=(d,))] + [keras.layers.Dense(h, activation="relu") for h in hidden]
                          + [keras.layers.Dense(k, activation="softmax")])  # fmt: skip
    pm = models.Sequential([layers.Input(shape=(d,))] + [layers.Dense(h, activation="relu") for h in hidden]
                           + [layers.Dense(k, activation="softmax")])  # fmt: skip
    pm.set_weights(km.get_weights())
    return km, pm


TRAIN_CASES = [
    ("ExponentialDecay", (0.05, 3, 0.7), {}, "adam", {}),
    ("ExponentialDecay", (0.1, 4, 0.5), {"staircase": True}, "sgd", {"momentum": 0.9}),
    ("InverseTimeDecay", (0.05, 2, 1.0), {}, "adam", {}),
    ("InverseTimeDecay", (0.1, 3, 0.5), {}, "sgd", {"weight_decay": 0.05}),
    ("PiecewiseConstantDecay", ([4, 11], [0.05, 0.01, 0.002]), {}, "adam", {"weight_decay": 0.02}),
    ("PiecewiseConstantDecay", ([4, 11], [0.2, 0.1, 0.02]), {}, "sgd", {}),
    (
        "CosineDecay",
        (0.0, 12),
        {"alpha": 0.1, "warmup_target": 0.05, "warmup_steps": 5},
        "adamw",
        {},
    ),
    ("CosineDecay", (0.2, 15), {"alpha": 0.05}, "sgd", {"nesterov": True, "momentum": 0.5}),
]


@pytest.mark.keras
@pytest.mark.parametrize("sparse", ["dense", "sparse"])
@pytest.mark.parametrize(("name", "args", "kwargs", "kind", "opt_kw"), TRAIN_CASES)
def test_training_matches_keras(keras_mod, name, args, kwargs, kind, opt_kw, sparse):
    """20 steps (2 epochs of 10) with the same weights and batches: weights and losses within 1e-5.
    'sparse' input goes through the fused first-layer sweep (and the narrow-top step), 'dense' through
    the general step with a second hidden layer."""
    keras = keras_mod
    hidden = (16,) if sparse == "sparse" else (16, 8)
    x, y = data(sparse=sparse == "sparse", n=40)
    km, pm = twin_models(keras, hidden, x.shape[1], 4)
    km.compile(optimizer=keras_optimizer(keras, kind, make(name, args, kwargs, keras.optimizers.schedules), **opt_kw),
               loss="sparse_categorical_crossentropy")  # fmt: skip
    pm.compile(
        optimizer=pyreg_optimizer(kind, make(name, args, kwargs), **opt_kw),
        loss="sparse_categorical_crossentropy",
    )
    hk = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hp = pm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, sparse=sparse)
    assert pm.optimizer.iterations == int(km.optimizer.iterations.numpy()) == 20
    diff = max(float(np.abs(a - b).max()) for a, b in zip(pm.get_weights(), km.get_weights()))
    assert diff < 1e-5
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=0, atol=1e-5)
    # between steps, learning_rate is the next step's rate, sched(iterations), as keras reads it
    assert pm.optimizer.learning_rate == F32(keras.ops.convert_to_numpy(km.optimizer.learning_rate))


def test_step_k_uses_sched_k():
    """One weight, loss from a single-unit linear model: with SGD the update of step k is lr_k * g,
    and the first step uses sched(0) (a warm-up from 0 does not move the weights at all)."""
    x = np.ones((1, 1), np.float32)
    y = np.zeros(1, np.int64)
    sched = schedules.CosineDecay(0.0, 4, warmup_target=0.1, warmup_steps=2)
    m = models.Sequential([layers.Input(shape=(1,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(sched), loss="sparse_categorical_crossentropy")
    w0 = [w.copy() for w in m.get_weights()]
    m.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(w0, m.get_weights()))
    assert m.optimizer.iterations == 1
    assert m.optimizer.learning_rate == sched(1) == F32(0.05)
    m.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert not np.array_equal(w0[0], m.get_weights()[0])
    assert m.optimizer.learning_rate == sched(2)


@pytest.mark.parametrize("sparse", ["dense", "sparse"])
def test_thread_count_does_not_change_the_result(sparse):
    x, y = data(n=400, d=130, k=10, sparse=sparse == "sparse", seed=3)
    out = []
    for threads in (1, 2):
        m = models.Sequential([layers.Input(shape=(130,)), layers.Dense(200, activation="relu"),
                               layers.Dense(10, activation="softmax")])  # fmt: skip
        m.compile(optimizer=optimizers.Adam(schedules.CosineDecay(0.01, 30, alpha=0.1, warmup_target=0.02,
                                                                  warmup_steps=5), weight_decay=0.01),
                  loss="sparse_categorical_crossentropy")  # fmt: skip
        m.set_weights([np.full_like(w, 0.01) + 0.001 * np.arange(w.size).reshape(w.shape) % 0.05
                       for w in m.get_weights()])  # fmt: skip
        m.fit(
            x, y, batch_size=16, epochs=2, verbose=0, threads=threads, sparse=sparse, shuffle=False
        )
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_constant_learning_rate_is_unchanged():
    """A constant rate keeps its number (no float32 rounding on read) and its native path."""
    opt = optimizers.Adam(0.1)
    assert opt.learning_rate == 0.1
    assert type(opt.learning_rate) is float
    assert opt._native_args()["learning_rate"] == 0.1
    assert "schedule" not in opt._native_args()
    assert optimizers.SGD(1).learning_rate == 1.0  # integers stay accepted, as before


def test_config_round_trip():
    for name, args, kwargs in CASES:
        s = make(name, args, kwargs)
        s2 = type(s).from_config(s.get_config())
        assert [s(k) for k in range(10)] == [s2(k) for k in range(10)]
        assert schedules.deserialize(schedules.serialize(s)).get_config() == s.get_config()
    opt = optimizers.Adam(schedules.ExponentialDecay(0.1, 2, 0.5), weight_decay=0.01)
    cfg = opt.get_config()
    assert cfg["learning_rate"]["class_name"] == "ExponentialDecay"
    opt2 = optimizers.Adam.from_config(cfg)
    assert isinstance(opt2._learning_rate, schedules.ExponentialDecay)
    assert opt2.learning_rate == F32(0.1)
    assert "ExponentialDecay" in repr(opt)


def test_setting_the_learning_rate_between_fits_keeps_the_state():
    """optimizer.learning_rate = x applies from the next step and keeps moments and iterations: two
    fits with the rate changed between them equal one fit with a piecewise schedule."""
    x, y = data(n=40, seed=5)

    def model(opt):
        m = models.Sequential([layers.Input(shape=(12,)), layers.Dense(8, activation="relu"),
                               layers.Dense(4, activation="softmax")])  # fmt: skip
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(1)
        m.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in m.get_weights()])
        return m

    a = model(optimizers.Adam(0.01))
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    a.optimizer.learning_rate = 0.002
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    b = model(optimizers.Adam(schedules.PiecewiseConstantDecay([9], [0.01, 0.002])))
    b.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert a.optimizer.iterations == b.optimizer.iterations == 20
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # a schedule may replace a constant rate, and it reads the counter where it stands
    a.optimizer.learning_rate = schedules.ExponentialDecay(0.1, 10, 0.5)
    assert a.optimizer.learning_rate == F32(0.025)  # 20 steps: 0.1 * 0.5 ** 2


# ----------------------------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize(
    ("make_it", "exc", "match"),
    [
        (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps must be > 0; got 0"),
        (lambda: schedules.InverseTimeDecay(0.1, -2, 0.5), ValueError, "decay_steps must be > 0; got -2"),
        (lambda: schedules.CosineDecay(0.1, 0), ValueError, "decay_steps must be > 0"),
        (lambda: schedules.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=-1), ValueError, "warmup_steps"),
        (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), ValueError, "boundaries should be 1 less"),
        (lambda: schedules.PiecewiseConstantDecay([], [0.1]), ValueError, "boundaries must hold"),
        (lambda: schedules.PiecewiseConstantDecay([1], [0.1, "a"]), TypeError, r"values\[1\] must be a real"),
        (lambda: schedules.PiecewiseConstantDecay(1, [0.1, 0.2]), TypeError, "boundaries must be a list"),
        (lambda: schedules.ExponentialDecay("0.1", 2, 0.5), TypeError, "initial_learning_rate must be a real"),
        (lambda: schedules.ExponentialDecay(0.1, 2, 0.5, staircase=1), TypeError, "staircase"),
        (lambda: schedules.ExponentialDecay(0.1, 2, 0.5)(1.5), TypeError, "step must be an integer"),
        (lambda: optimizers.Adam(learning_rate=lambda: 0.1), NotImplementedError, "plain callable"),
        (lambda: optimizers.SGD(learning_rate="0.1"), TypeError, "learning_rate must be a number or a"),
        (lambda: optimizers.SGD(learning_rate=-0.1), ValueError, "learning_rate must be >= 0"),
    ],
)  # fmt: skip
def test_bad_arguments(make_it, exc, match):
    with pytest.raises(exc, match=match):
        make_it()


def test_a_python_subclass_is_refused():
    class Mine(schedules.ExponentialDecay):
        def __call__(self, step):
            return 0.1

    with pytest.raises(NotImplementedError, match="learning_rate: only the schedules"):
        optimizers.Adam(Mine(0.1, 2, 0.5))


def test_assigning_a_number_to_a_schedule_optimizer_raises():
    opt = optimizers.SGD(schedules.ExponentialDecay(0.1, 2, 0.5))
    with pytest.raises(TypeError, match="created with a LearningRateSchedule"):
        opt.learning_rate = 0.01


@pytest.mark.keras
def test_from_keras_and_to_keras_carry_the_schedule(keras_mod):
    import pyreg

    keras = keras_mod
    km = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")])
    km.compile(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 8, alpha=0.2)),
               loss="sparse_categorical_crossentropy")  # fmt: skip
    pm = pyreg.from_keras(km)
    assert isinstance(pm.optimizer._learning_rate, schedules.CosineDecay)
    assert pm.optimizer._learning_rate.get_config() == km.optimizer._learning_rate.get_config()
    back = pyreg.to_keras(pm)
    assert back.optimizer._learning_rate.get_config() == km.optimizer._learning_rate.get_config()
    km.compile(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.PolynomialDecay(0.1, 8)),
               loss="sparse_categorical_crossentropy")  # fmt: skip
    with pytest.raises(ValueError, match="schedule PolynomialDecay is not supported"):
        pyreg.from_keras(km)
