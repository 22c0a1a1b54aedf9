"""Runtime dispatch: every instruction-set path this CPU can run gives the same results."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OUTSIDE

import pyreg
from pyreg import _core, kernels

ISAS = pyreg.build_info()["isa_available"]


@pytest.fixture
def restore_isa():
    before = _core.get_isa()
    yield
    _core.set_isa(before)


def relu_logits_model(features, units, seed, dropout=None):
    """Input(features) -> Dense(units, relu) [-> Dropout] -> Dense(4) logits, Adam: the trainer's sweep
    path; with dropout, its mask is applied in the backward pass of the layer above, fused with the
    relu derivative."""
    pyreg.utils.set_random_seed(seed)
    hidden = [pyreg.layers.Dense(units, activation="relu")]
    if dropout:
        hidden.append(pyreg.layers.Dropout(dropout))
    model = pyreg.models.Sequential(
        [pyreg.layers.Input(shape=(features,)), *hidden, pyreg.layers.Dense(4)]
    )
    model.compile(
        optimizer="adam", loss=pyreg.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def run_all_kernels(rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((37, 300)).astype(np.float32)
    x[rng.random(x.shape) < 0.7] = 0
    w = (rng.standard_normal((300, 75)) * 0.05).astype(np.float32)
    b = rng.standard_normal(75).astype(np.float32)
    out = {
        "dense": kernels.dense_forward(x, w, b, "relu"),
        "sparse": kernels.dense_forward(x, w, b, "relu", sparse=True),
    }
    dy = rng.standard_normal((37, 75)).astype(np.float32)
    out["dx"], out["dw"], out["db"] = kernels.dense_backward(dy, out["dense"], x, w, "relu")
    wa, ma, va = w.ravel().copy(), np.zeros(w.size, np.float32), np.zeros(w.size, np.float32)
    for t in range(3):
        kernels.adam_update(wa, out["dw"].ravel(), ma, va, iterations=t, l2=0.001)
    out["adam"] = wa
    out["dropout"], out["dropout_mask"] = kernels.dropout_forward(x, 0.4, seed=3, step=1)
    # the trainer's fused first-layer sweep (sparse input, 37-row batches)
    y = rng.integers(0, 4, 37 * 5)
    xs = rng.random((37 * 5, 300)).astype(np.float32)
    xs[rng.random(xs.shape) < 0.8] = 0
    model = relu_logits_model(300, 75, seed=rng_seed)
    model.fit(xs, y, batch_size=37, epochs=2, verbose=0, sparse="sparse", threads=2)
    out["sweep"] = model.get_weights()[0]
    # 100-row batches (and a partial last one, 85 rows): bitmaps of two 64-bit words per feature,
    # built 32 rows at a time
    model = relu_logits_model(300, 75, seed=rng_seed)
    model.fit(xs, y, batch_size=100, epochs=2, verbose=0, sparse="sparse", threads=2)
    out["sweep_100_rows"] = model.get_weights()[0]
    # 192 units on 2 threads: thread 0 owns two full panels (updated together with avx-512, one after
    # the other elsewhere), thread 1 one
    model = relu_logits_model(300, 192, seed=rng_seed)
    model.fit(xs, y, batch_size=37, epochs=2, verbose=0, sparse="sparse", threads=2)
    out["sweep_two_panels"] = model.get_weights()[0]
    # 75 units: whole vectors of the dropout mask and a partial last one, on both input paths (and
    # the element-by-element mask); 128 units: the mask drawn in whole vectors, as in the study
    for path in ("dense", "sparse"):
        for units in (75, 128):
            model = relu_logits_model(300, units, seed=rng_seed, dropout=0.5)
            model.fit(xs, y, batch_size=37, epochs=2, verbose=0, sparse=path, threads=2)
            out[f"dropout_backward_{path}_{units}"] = model.get_weights()[0]
    return out


def test_generic_path_is_always_available():
    assert "generic" in ISAS
    assert _core.get_isa() in ISAS


@pytest.mark.parametrize("isa", ISAS)
def test_each_path_agrees_with_generic(isa, restore_isa):
    _core.set_isa("generic")
    ref = run_all_kernels()
    _core.set_isa(isa)
    assert _core.get_isa() == isa
    got = run_all_kernels()
    for k in ref:
        # generic has no fused multiply-add: differences are float32 rounding only
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5, err_msg=f"{isa}: {k}")


def test_vector_paths_are_bitwise_identical(restore_isa):
    fused = [isa for isa in ISAS if isa != "generic"]
    if len(fused) < 2:
        pytest.skip(
            f"this CPU runs only {fused} among the fused-multiply-add paths; nothing to compare"
        )
    results = []
    for isa in fused:
        _core.set_isa(isa)
        results.append(run_all_kernels())
    for k in results[0]:
        np.testing.assert_array_equal(results[1][k], results[0][k], err_msg=k)


def test_unknown_isa_is_refused(restore_isa):
    with pytest.raises(
        ValueError, match="isa must be one of the instruction sets this build and CPU support"
    ):
        _core.set_isa("sse9")


def test_environment_variable_caps_the_choice(tmp_path):
    import subprocess
    import sys

    code = "import pyreg; print(pyreg.build_info()['isa_active'])"
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "PYREG_ISA": "generic"},
                         capture_output=True, text=True, check=True, cwd=OUTSIDE)  # fmt: skip
    assert out.stdout.strip() == "generic"


@pytest.mark.parametrize("isa", ISAS)
def test_each_path_finds_the_first_nonfinite_input(isa, restore_isa):
    # the fit-time input check: vector body (64/32 floats a step), tails, and chunk borders (65,536).
    _core.set_isa(isa)
    rng = np.random.default_rng(1)
    for n in (1, 15, 31, 63, 64, 65, 1000, 65_536 * 2 + 7):
        clean = rng.standard_normal(n).astype(np.float32)
        clean[:: max(1, n // 5)] = np.float32(3.4e38)  # finite extremes, subnormals and -0 are fine
        if n > 3:
            clean[1], clean[2] = np.float32(1e-45), np.float32(-0.0)
        assert _core.prepare_features(clean)[1] == -1, (isa, n)
        for where in sorted({0, n // 2, n - 1}):
            for bad in (np.nan, np.inf, -np.inf):
                a = clean.copy()
                a[where] = bad
                a[-1] = np.nan  # a later one does not hide the first
                assert _core.prepare_features(a)[1] == where, (isa, n, where, bad)


@pytest.mark.parametrize("isa", ISAS)
def test_each_path_finds_nonfinite_rows_while_scanning(isa, restore_isa):
    # the trainer's row scans double as fit's input check (tests/test_input_check.py): 64-float words
    # [0, 128) of a 180-feature row, then 32-float (generic) or 16/8-float (avx-512/avx2) pieces, then
    # the scalar tail; the first batch's rows (scanned in its own step) and a later batch's (scanned
    # one step ahead). -0 and subnormals are finite.
    _core.set_isa(isa)
    rng = np.random.default_rng(2)
    x = rng.random((203, 180)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0
    x[3, 7], x[4, 140] = np.float32(-0.0), np.float32(1e-45)
    y = rng.integers(0, 4, len(x)).astype(np.int32)
    model = relu_logits_model(180, 16, seed=0)
    for row in (3, 100):
        for col in (5, 70, 130, 150, 165, 177, 179):
            for bad in (np.nan, np.inf, -np.inf):
                xb = x.copy()
                xb[row, col] = bad
                res = model._mlp.train_epoch(xb, y, 32, sparse="sparse", threads=2, stop_on_nonfinite=False,
                                             check_input=True)  # fmt: skip
                assert res["bad_input"], (isa, row, col, bad)
                assert res["sweep"]
    assert not model._mlp.train_epoch(x, y, 32, sparse="sparse", threads=2, check_input=True)[
        "bad_input"
    ]
