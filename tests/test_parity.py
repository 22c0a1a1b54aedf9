"""Parity with Keras 3 itself (TensorFlow-marked): forward, trajectory, statistics, the study.

What can and cannot agree is set out in docs/KERAS_SEMANTICS.md: with the same weights, batches
and no dropout, float32 rounding only; otherwise, accuracy agrees statistically across seeds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import pyreg
from pyreg import utils

pytestmark = pytest.mark.keras
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def study(mnist_data):
    """MNIST as the study feeds it (float32 here: keras casts float64 input to float32 anyway)."""
    from pyreg.study.definition import scale_images

    (x_train, y_train), (x_test, y_test) = mnist_data
    return (scale_images(x_train), y_train), (scale_images(x_test), y_test)


def keras_model(keras, kind, seed):
    from pyreg.study.definition import build_keras

    keras.utils.set_random_seed(seed)
    return build_keras(kind)


def test_forward_of_a_converted_keras_model(keras_mod, study):
    """(a) a keras model trained one epoch, converted: predict within 1e-5, identical argmax."""
    (x_train, y_train), (x_test, _) = study
    km = keras_model(keras_mod, "dropout", 0)
    km.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    pm = pyreg.from_keras(km)
    expected = km.predict(x_test, batch_size=1000, verbose=0)
    got = pm.predict(x_test, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_trajectory_of_the_l2_model(keras_mod, study):
    """(b) same initial weights, no shuffling: 20 steps within 1e-5 everywhere; 100 steps: 99% of
    weights within 1e-4 and argmax agreement >= 99.9%; one epoch: val_accuracy within 0.3 pp."""
    (x_train, y_train), (x_test, y_test) = study
    for steps in (20, 100):
        km = keras_model(keras_mod, "l2", 1)
        pm = pyreg.from_keras(km)
        n = steps * 32
        km.fit(x_train[:n], y_train[:n], batch_size=32, epochs=1, shuffle=False, verbose=0)
        pm.fit(x_train[:n], y_train[:n], batch_size=32, epochs=1, shuffle=False, verbose=0)
        assert pm.optimizer.iterations == int(km.optimizer.iterations.numpy()) == steps
        diff = np.concatenate(
            [np.abs(a - b).ravel() for a, b in zip(pm.get_weights(), km.get_weights())]
        )
        agree = (
            pm.predict(x_test, verbose=0).argmax(1) == km.predict(x_test, verbose=0).argmax(1)
        ).mean()
        if steps == 20:
            assert diff.max() < 1e-5
        else:
            assert (diff <= 1e-4).mean() >= 0.99
            assert agree >= 0.999
    km = keras_model(keras_mod, "l2", 2)
    pm = pyreg.from_keras(km)
    fit_kw = dict(
        batch_size=32, epochs=1, shuffle=False, validation_data=(x_test, y_test), verbose=0
    )
    hk = km.fit(x_train, y_train, **fit_kw)
    hp = pm.fit(x_train, y_train, **fit_kw)
    assert abs(hp.history["val_accuracy"][0] - hk.history["val_accuracy"][0]) <= 0.003
    assert hp.history["loss"][0] == pytest.approx(hk.history["loss"][0], rel=0.01)
    assert hp.history["val_loss"][0] == pytest.approx(hk.history["val_loss"][0], rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["l2", "dropout"])
def test_final_accuracy_statistics_match_keras(keras_mod, study, kind):
    """(c) full MNIST, the study's settings, 5 seeds a side: mean final val_accuracy agrees within
    3 standard errors (from both samples) and within 0.5 pp."""
    from pyreg.study.keras_baseline import train_reference

    (x_train, y_train), (x_test, y_test) = study
    seeds = range(5)
    keras_acc, pyreg_acc = [], []
    for seed in seeds:
        run = train_reference(keras_model(keras_mod, kind, seed), ((x_train, y_train), (x_test, y_test)),
                                        epochs=5, batch_size=32, seed=seed)  # fmt: skip
        keras_acc.append(run.history["val_accuracy"][-1])
        pm = pyreg_study_model(kind, seed)  # pyreg's own seeded initialisation, shuffling and masks
        h = pm.fit(
            x_train, y_train, epochs=5, batch_size=32, validation_data=(x_test, y_test), verbose=0
        )
        pyreg_acc.append(h.history["val_accuracy"][-1])
    k, p = np.array(keras_acc), np.array(pyreg_acc)
    se = np.sqrt(k.var(ddof=1) / len(k) + p.var(ddof=1) / len(p))
    diff = p.mean() - k.mean()
    print(
        f"{kind}: keras {k.mean():.4f} ± {k.std(ddof=1):.4f}, pyreg {p.mean():.4f} ± {p.std(ddof=1):.4f}"
    )
    assert abs(diff) <= 3 * se + 1e-12
    assert abs(diff) <= 0.005


def pyreg_study_model(kind, seed):
    from pyreg.study.definition import build_pyreg

    return build_pyreg(kind, seed)


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")
def test_the_study_runs_with_only_its_imports_swapped(keras_mod, mnist_data, monkeypatch):
    """(d) the notebook's code, imports swapped, trains both models and yields keras' history structure."""
    import matplotlib

    matplotlib.use("Agg")
    keras_src = (EXAMPLES / "study_keras.py").read_text()
    pyreg_src = (EXAMPLES / "study_pyreg.py").read_text()
    code_lines = [
        line for line in keras_src.splitlines() if not line.startswith(("#", "from tensorflow"))
    ]
    assert code_lines == [
        line for line in pyreg_src.splitlines() if not line.startswith(("#", "from pyreg"))
    ]

    pyreg_ns: dict = {}
    exec(compile(pyreg_src, "study_pyreg.py", "exec"), pyreg_ns)
    # keras' own run, on a subset (its data source swapped: the usual download host is unreachable).
    (x_train, y_train), (x_test, y_test) = mnist_data
    import pyreg.datasets.mnist as pmnist

    monkeypatch.setattr(
        pmnist,
        "load_data",
        lambda: ((x_train[:2000], y_train[:2000]), (x_test[:500], y_test[:500])),
    )
    keras_ns: dict = {}
    exec(compile(keras_src.replace("from tensorflow.keras.datasets import mnist", "from pyreg.datasets import mnist"),
                 "study_keras.py", "exec"), keras_ns)  # fmt: skip
    for name in ("history_l2", "history_dropout"):
        ph, kh = pyreg_ns[name].history, keras_ns[name].history
        assert set(ph) == set(kh) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        for key in kh:
            assert len(ph[key]) == len(kh[key]) == 5
            assert all(isinstance(v, float) for v in ph[key])
            assert all(isinstance(v, float) for v in kh[key])
        assert ph["val_accuracy"][-1] > 0.96  # full MNIST, 5 epochs
    assert re.search(r"def |class ", pyreg_src) is None  # plain notebook code, nothing added


def test_to_keras_round_trip(keras_mod, study):
    (x_train, y_train), (x_test, _) = study
    utils.set_random_seed(0)
    from pyreg import layers, models, regularizers

    pm = models.Sequential([layers.Flatten(input_shape=(28, 28)),
                            layers.Dense(64, activation="relu", kernel_regularizer=regularizers.l2(0.001)),
                            layers.Dropout(0.3), layers.Dense(10, activation="softmax")])  # fmt: skip
    pm.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pm.fit(x_train[:3000], y_train[:3000], epochs=1, verbose=0)
    km = pm.to_keras()
    assert km.count_params() == pm.count_params()
    np.testing.assert_allclose(
        km.predict(x_test[:500], verbose=0), pm.predict(x_test[:500], verbose=0), atol=1e-5
    )
    assert km.layers[1].kernel_regularizer.get_config()["l2"] == pytest.approx(0.001)
    back = pyreg.from_keras(km)
    for a, b in zip(back.get_weights(), pm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_from_keras_refuses_what_it_cannot_represent(keras_mod):
    keras = keras_mod
    conv = keras.Sequential([keras.Input(shape=(28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    with pytest.raises(ValueError, match=r"cannot convert layer 'conv2d.*' \(Conv2D\)"):
        pyreg.from_keras(conv)
    act = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="gelu")])
    with pytest.raises(ValueError, match="activation 'gelu' is not supported"):
        pyreg.from_keras(act)
    reg = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(3, kernel_regularizer=keras.regularizers.OrthogonalRegularizer()),
        ]
    )
    with pytest.raises(
        ValueError, match="cannot represent keras regularizer OrthogonalRegularizer"
    ):
        pyreg.from_keras(reg)
    with pytest.raises(ValueError, match=r"converts keras\.Sequential models"):
        pyreg.from_keras(object())


def test_constraints_activity_penalties_and_label_smoothing_convert_both_ways(keras_mod):
    keras = keras_mod
    km = keras.Sequential([
        keras.Input(shape=(6,)),
        keras.layers.Dense(5, activation="relu", kernel_constraint=keras.constraints.MaxNorm(1.5),
                           bias_constraint=keras.constraints.NonNeg(), activity_regularizer=keras.regularizers.L2(0.01)),
        keras.layers.Dense(3, activation="softmax", kernel_constraint=keras.constraints.MinMaxNorm(0.2, 0.9, 0.5)),
    ])  # fmt: skip
    km.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    pm = pyreg.from_keras(km)
    hidden, out = pm.layers
    assert isinstance(hidden.kernel_constraint, pyreg.constraints.MaxNorm)
    assert hidden.kernel_constraint.max_value == pytest.approx(1.5)
    assert isinstance(hidden.bias_constraint, pyreg.constraints.NonNeg)
    assert hidden.activity_regularizer.l2 == pytest.approx(0.01)
    assert out.kernel_constraint.get_config() == pytest.approx(
        {"min_value": 0.2, "max_value": 0.9, "rate": 0.5, "axis": 0}
    )
    assert pm.loss.label_smoothing == pytest.approx(0.1)
    back = pm.to_keras()
    assert isinstance(back.layers[0].kernel_constraint, keras.constraints.MaxNorm)
    assert isinstance(back.layers[0].bias_constraint, keras.constraints.NonNeg)
    assert back.layers[0].activity_regularizer.get_config()["l2"] == pytest.approx(0.01)
    assert back.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


def test_from_keras_carries_the_compiled_optimizer(keras_mod):
    keras = keras_mod
    km = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(4, activation="softmax")])
    km.compile(optimizer=keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.02),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    pm = pyreg.from_keras(km)
    assert isinstance(pm.optimizer, pyreg.optimizers.AdamW)
    assert pm.optimizer.learning_rate == pytest.approx(0.01)
    assert pm.optimizer.weight_decay == pytest.approx(0.02)
