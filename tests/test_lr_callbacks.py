"""LearningRateScheduler and ReduceLROnPlateau: their learning-rate sequences (written out and against
Keras), the weights they lead to against Keras, and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import callbacks, layers, models, optimizers
from pyreg.optimizers import schedules

F32 = np.float32
# keras' callbacks read the rate through np.array(variable), which numpy 2 warns about (keras' own code)
KERAS_WARNING = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def data(n=24, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def pyreg_model(opt, d=6, k=3, weights=None):
    m = models.Sequential([layers.Input(shape=(d,)), layers.Dense(5, activation="relu"),
                           layers.Dense(k, activation="softmax")])  # fmt: skip
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if weights is None:
        rng = np.random.default_rng(7)
        weights = [rng.normal(0, 0.4, w.shape).astype(np.float32) for w in m.get_weights()]
    m.set_weights(weights)
    return m


def keras_model(keras, opt, weights, d=6, k=3):
    km = keras.Sequential([keras.Input(shape=(d,)), keras.layers.Dense(5, activation="relu"),
                           keras.layers.Dense(k, activation="softmax")])  # fmt: skip
    km.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    km.set_weights(weights)
    return km


def flat_lrs(epochs=7, **kw):
    """History['learning_rate'] of a fit whose monitored loss never improves (min_delta huge)."""
    x, y = data()
    m = pyreg_model(optimizers.SGD(1.0))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, min_delta=1e9, **kw)
    h = m.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=[cb])
    return h.history["learning_rate"]


def test_reduce_lr_on_plateau_sequences():
    """Keras' sequences for a flat loss, factor .5, lr0 = 1 (including its off-by-ones). History
    holds the rate each epoch used: the first epoch sets the best value, so the first reduction
    comes at the end of epoch `patience` and shows from the next one."""
    assert flat_lrs(patience=1) == [1.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    assert flat_lrs(patience=1, cooldown=2) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert flat_lrs(patience=2) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert flat_lrs(patience=1, min_lr=0.3) == [1.0, 1.0, 0.5] + [float(F32(0.3))] * 4
    assert flat_lrs(patience=1, cooldown=1) == flat_lrs(
        patience=1, cooldown=0
    )  # cooldown=1 acts as 0
    assert flat_lrs(patience=0) == flat_lrs(patience=1)  # patience=0 acts as 1


def test_reduce_lr_on_plateau_compares_in_float32():
    """Keras compares float32(current + min_delta) < float32(best): a gain below float32 resolution
    is no improvement."""
    cb = callbacks.ReduceLROnPlateau(monitor="loss", min_delta=0.0)
    cb.model = pyreg_model(optimizers.SGD(0.1))
    cb.on_train_begin()
    assert cb._is_improvement(1.0, None)
    assert not cb._is_improvement(1.0 - 1e-9, 1.0)  # an improvement in float64, none in float32
    assert cb._is_improvement(1.0 - 1e-7, 1.0)
    cb = callbacks.ReduceLROnPlateau(monitor="val_accuracy", min_delta=0.0)
    cb.model = pyreg_model(optimizers.SGD(0.1))
    assert cb._is_improvement(0.6, 0.5)
    assert not cb._is_improvement(0.5, 0.6)


@pytest.mark.keras
@KERAS_WARNING
@pytest.mark.parametrize(
    "kw",
    [
        dict(monitor="loss", factor=0.5, patience=1, min_delta=1e9),
        dict(monitor="loss", factor=0.5, patience=0, min_delta=1e9, cooldown=1),
        dict(monitor="loss", factor=0.2, patience=2, min_delta=1e9, cooldown=2, min_lr=0.01),
        dict(monitor="val_loss", factor=0.5, patience=1, min_delta=1e-3),
        dict(monitor="val_accuracy", factor=0.3, patience=1, min_delta=0.0, mode="max"),
    ],
)
def test_reduce_lr_on_plateau_matches_keras(keras_mod, kw):
    keras = keras_mod
    x, y = data()
    xv, yv = data(seed=1)
    pm = pyreg_model(optimizers.SGD(0.5, momentum=0.5))
    km = keras_model(keras, keras.optimizers.SGD(0.5, momentum=0.5), pm.get_weights())
    fit_kw = dict(batch_size=8, epochs=6, shuffle=False, verbose=0, validation_data=(xv, yv))
    hk = km.fit(x, y, callbacks=[keras.callbacks.ReduceLROnPlateau(**kw)], **fit_kw)
    hp = pm.fit(x, y, callbacks=[callbacks.ReduceLROnPlateau(**kw)], **fit_kw)
    assert hp.history["learning_rate"] == hk.history["learning_rate"]
    assert len(set(hp.history["learning_rate"])) > 1  # the rate did change
    diff = max(float(np.abs(a - b).max()) for a, b in zip(pm.get_weights(), km.get_weights()))
    assert diff < 1e-5
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=0, atol=1e-5)


@pytest.mark.keras
@KERAS_WARNING
@pytest.mark.parametrize(
    "schedule",
    [
        lambda epoch, lr: lr * 0.5 if epoch > 0 else lr,
        lambda epoch: 0.1 * 0.5**epoch,  # keras' one-argument form
        lambda epoch, lr: np.float32(0.3 / (1 + epoch)),
    ],
)
def test_learning_rate_scheduler_matches_keras(keras_mod, schedule):
    keras = keras_mod
    x, y = data()
    pm = pyreg_model(optimizers.Adam(0.1))
    km = keras_model(keras, keras.optimizers.Adam(0.1), pm.get_weights())
    fit_kw = dict(batch_size=8, epochs=5, shuffle=False, verbose=0)
    hk = km.fit(x, y, callbacks=[keras.callbacks.LearningRateScheduler(schedule)], **fit_kw)
    hp = pm.fit(x, y, callbacks=[callbacks.LearningRateScheduler(schedule)], **fit_kw)
    assert hp.history["learning_rate"] == hk.history["learning_rate"]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(pm.get_weights(), km.get_weights()))
    assert diff < 1e-5
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=0, atol=1e-5)


def test_learning_rate_scheduler_calls_and_applies():
    """schedule(epoch, lr) gets the float32 rate; the rate applies from the epoch's first batch:
    equal to a piecewise-constant schedule over the same steps."""
    x, y = data()
    seen = []

    def halve(epoch, lr):
        seen.append((epoch, lr))
        return 0.1 * 0.5**epoch

    a = pyreg_model(optimizers.SGD(0.1))
    h = a.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(halve)])  # fmt: skip
    assert seen == [(0, float(F32(0.1))), (1, float(F32(0.1))), (2, float(F32(0.05)))]
    assert h.history["learning_rate"] == [float(F32(v)) for v in (0.1, 0.05, 0.025)]
    b = pyreg_model(optimizers.SGD(schedules.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.025])))
    b.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # epoch counts from initial_epoch
    seen.clear()
    a.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        initial_epoch=3,
        verbose=0,
        callbacks=[callbacks.LearningRateScheduler(halve)],
    )
    assert [e for e, _ in seen] == [3, 4]


def test_lr_callbacks_bad_arguments_and_schedule_optimizers():
    with pytest.raises(ValueError, match=r"factor >= 1\.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(TypeError, match="factor must be a real"):
        callbacks.ReduceLROnPlateau(factor="0.5")
    with pytest.raises(TypeError, match="patience must be an integer"):
        callbacks.ReduceLROnPlateau(patience=1.5)
    with pytest.raises(TypeError, match="schedule must be a callable"):
        callbacks.LearningRateScheduler(0.1)
    with pytest.warns(UserWarning, match="mode 'up' is unknown"):
        assert callbacks.ReduceLROnPlateau(mode="up").mode == "auto"
    x, y = data()
    m = pyreg_model(optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"should be a float\. Got: 1"):
        m.fit(
            x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 1)]
        )
    sched = schedules.ExponentialDecay(0.1, 2, 0.5)
    m = pyreg_model(optimizers.SGD(sched))
    with pytest.raises(TypeError, match="created with a LearningRateSchedule"):
        m.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 0.1)],
        )
    assert m.optimizer.iterations == 0  # raised before any step
    # ReduceLROnPlateau runs (logging sched(iterations)) until it reduces, then raises
    m = pyreg_model(optimizers.SGD(sched))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", patience=2, min_delta=1e9)
    with pytest.raises(TypeError, match="created with a LearningRateSchedule"):
        m.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[cb])
    assert m.optimizer.iterations == 9  # raised at the end of the third epoch (3 steps each)
