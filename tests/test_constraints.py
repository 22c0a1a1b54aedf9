"""Weight constraints (pyreg.constraints): formulas, where the step applies them, Keras parity."""

from __future__ import annotations

import numpy as np
import pytest
from constraint_helpers import data, parity, trained_weights, two_layer

import pyreg
from pyreg import constraints as C
from pyreg import layers

W = np.array([[3, 0.3, 0], [4, 0.4, 0]], dtype=np.float32)  # column norms 5, .5 and 0


def test_formulas_give_keras_values():
    # the values Keras 3 gives for W (float32, printed to 10 digits)
    np.testing.assert_allclose(
        C.MaxNorm(2)(W),
        [[1.2000000477, 0.2999999523, 0], [1.6000000238, 0.3999999166, 0]],
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        C.UnitNorm()(W),
        [[0.6000000238, 0.5999999046, 0], [0.8000000119, 0.7999998331, 0]],
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        C.MinMaxNorm(0.6, 1, rate=0.5)(W)[:, 0], [1.8000000715, 2.4000000954], atol=1e-9
    )
    np.testing.assert_array_equal(C.NonNeg()([[-1.0, 2.0]]), [[0.0, 2.0]])


def reference(kind, w, axis=0, max_value=2.0, min_value=0.0, rate=1.0):
    """An independent float32 reference of one constraint (sequential sums in index order)."""
    w = np.asarray(w, dtype=np.float32)
    if kind == "non_neg":
        return np.maximum(w, np.float32(0))
    v = np.moveaxis(w, axis, 0) if w.ndim == 2 and axis is not None else w.reshape(-1, 1)
    sq = np.zeros(v.shape[1:], dtype=np.float32)
    for row in v:
        sq = (sq + row * row).astype(np.float32)
    n = np.sqrt(sq)
    eps = np.float32(1e-7)
    if kind == "unit_norm":
        out = v / (eps + n)
    else:
        lo, hi = (
            (np.float32(0), np.float32(max_value))
            if kind == "max_norm"
            else (np.float32(min_value), np.float32(max_value))
        )
        c = np.maximum(np.minimum(n, hi), lo)
        desired = c if kind == "max_norm" else np.float32(rate) * c + np.float32(1 - rate) * n
        out = v * (desired / (eps + n))
    return (
        np.moveaxis(out, 0, axis) if w.ndim == 2 and axis is not None else out.reshape(w.shape)
    ).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "kernel", "bias", "kref", "bref"),
    [
        ("max_norm", C.MaxNorm(0.5), "non_neg", ("max_norm", 0, 0.5), ("non_neg",)),
        ("unit_norm", "unit_norm", C.MaxNorm(0.1), ("unit_norm", 0), ("max_norm", None, 0.1)),
        (
            "min_max",
            C.MinMaxNorm(0.3, 0.6, rate=0.5),
            None,
            ("min_max_norm", 0, 0.6, 0.3, 0.5),
            None,
        ),
        ("rows", C.MaxNorm(0.5, axis=1), C.UnitNorm(), ("max_norm", 1, 0.5), ("unit_norm", None)),
    ],
)
def test_a_step_with_zero_learning_rate_applies_the_constraint_once(name, kernel, bias, kref, bref):
    # lr = 0: the update leaves the weights as they are, the constraint still applies (every step)
    pyreg.utils.set_random_seed(1)
    m = two_layer(pyreg, {"kernel_constraint": kernel, "bias_constraint": bias}, {}, H=130)
    rng = np.random.default_rng(3)
    w0 = [rng.normal(size=w.shape).astype(np.float32) * 0.2 for w in m.get_weights()]
    m.set_weights(w0)
    # neither set_weights nor evaluate applies it
    m.compile(optimizer=pyreg.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x, y = data(steps=1, bs=4)
    m.evaluate(x, y, verbose=0)
    for a, b in zip(m.get_weights(), w0):
        np.testing.assert_array_equal(a, b)
    m.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    k, b = m.get_weights()[:2]
    np.testing.assert_allclose(k, reference(kref[0], w0[0], *kref[1:]), rtol=2e-7, atol=1e-9)
    np.testing.assert_allclose(
        b, w0[1] if bref is None else reference(bref[0], w0[1], *bref[1:]), rtol=2e-7, atol=1e-9
    )
    np.testing.assert_array_equal(m.get_weights()[2], w0[2])  # the unconstrained layer is untouched
    # applied on every step, to the already constrained weights
    m.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(
        m.get_weights()[0], reference(kref[0], k, *kref[1:]), rtol=2e-7, atol=1e-9
    )


def test_max_norm_with_zero_gradient_still_shrinks_by_n_over_n_plus_eps():
    m = two_layer(pyreg, {"kernel_constraint": C.MaxNorm(10.0)}, {})
    m.compile(optimizer=pyreg.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    k0 = m.get_weights()[0]
    x, y = data(steps=3, bs=4)
    m.fit(x, y, batch_size=4, epochs=1, verbose=0)
    k = k0
    for _ in range(3):
        k = reference("max_norm", k, 0, 10.0)
    np.testing.assert_allclose(m.get_weights()[0], k, rtol=2e-7)
    assert not np.array_equal(m.get_weights()[0], k0)


@pytest.mark.parametrize("sparse", [False, True])
def test_thread_count_does_not_change_the_result(sparse):
    x, y = data(steps=12, bs=8, sparse=sparse)

    def make():
        pyreg.utils.set_random_seed(5)
        return two_layer(
            pyreg,
            {"kernel_constraint": C.MaxNorm(0.3), "bias_constraint": C.MaxNorm(0.05)},
            {"kernel_constraint": C.UnitNorm(axis=1), "bias_constraint": "non_neg"},
            H=200,
        )

    mode = "sparse" if sparse else "dense"
    w1, w2 = (trained_weights(make, x, y, t, sparse=mode) for t in (1, 2))
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"kernel_constraint.*got 'max_nrom'"):
        layers.Dense(4, kernel_constraint="max_nrom")
    with pytest.raises(
        ValueError, match="Could not interpret constraint identifier for bias_constraint"
    ):
        layers.Dense(4, bias_constraint=3)
    with pytest.raises(ValueError, match=r"max_value must be > 0; got 0\.0"):
        C.MaxNorm(0)
    with pytest.raises(ValueError, match=r"min_value must be <= max_value"):
        C.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match=r"rate must be in"):
        C.MinMaxNorm(rate=1.5)
    with pytest.raises(ValueError, match="axis must be 0, 1, -1 or -2"):
        C.UnitNorm(axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        C.UnitNorm(axis="0")
    with pytest.raises(ValueError, match="axis must be 0 or -1 for a bias"):
        two_layer(pyreg, {"bias_constraint": C.MaxNorm(1.0, axis=1)}, {})
    for name, cls in [
        ("max_norm", C.MaxNorm),
        ("NonNeg", C.NonNeg),
        ("unit_norm", C.UnitNorm),
        ("MinMaxNorm", C.MinMaxNorm),
    ]:
        assert type(layers.Dense(4, kernel_constraint=name).kernel_constraint) is cls


@pytest.mark.keras
def test_keras_refuses_the_same_unknown_name(keras_mod):
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        keras_mod.layers.Dense(4, kernel_constraint="max_nrom")


CASES = {
    "max_norm+non_neg": (
        {"kernel_constraint": "max_norm", "bias_constraint": "non_neg"},
        {},
        None,
        "sgd",
    ),
    "max_norm(.5)+decay": ({"kernel_constraint": ("MaxNorm", 0.5)}, {}, 0.5, "sgd"),
    "unit+min_max": (
        {"kernel_constraint": "unit_norm", "bias_constraint": ("MaxNorm", 0.1)},
        {"kernel_constraint": ("MinMaxNorm", 0.3, 0.6, 0.5)},
        0.01,
        "sgd",
    ),
    "rows+whole": (
        {"kernel_constraint": ("MaxNorm", 0.5, 1)},
        {"kernel_constraint": ("UnitNorm", [0, 1])},
        None,
        "adam",
    ),
}


def build(mod, spec):
    out = {}
    for k, v in spec.items():
        out[k] = v if isinstance(v, str) else getattr(mod.constraints, v[0])(*v[1:])
    return out


@pytest.mark.keras
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_20_steps_match_keras(keras_mod, case, sparse):
    hidden, out, wd, opt = CASES[case]
    x, y = data(sparse=sparse)
    km = two_layer(keras_mod, build(keras_mod, hidden), build(keras_mod, out))
    pm = two_layer(pyreg, build(pyreg, hidden), build(pyreg, out))
    dw, dl = parity(
        keras_mod,
        km,
        pm,
        "sparse_categorical_crossentropy",
        "sparse_categorical_crossentropy",
        x,
        y,
        wd=wd,
        optimizer=opt,
        sparse="sparse" if sparse else "dense",
    )
    assert dw < 1e-5, (dw, dl)
    assert dl < 1e-5, (dw, dl)
