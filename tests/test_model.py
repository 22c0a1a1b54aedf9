"""The Keras-shaped API over the native trainer: semantics of fit/evaluate/predict, history,
weights, callbacks, determinism and thread independence (no TensorFlow needed)."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout

import numpy as np
import pytest

import pyreg
from pyreg import callbacks, layers, losses, models, optimizers, regularizers, utils


def small_data(n=256, features=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)) * 2
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.standard_normal((n, features))).astype(np.float32)
    return x, y


def mlp(
    features=20,
    classes=4,
    hidden=(16,),
    l2=None,
    dropout=None,
    seed=0,
    optimizer="adam",
    **dense_kw,
):
    utils.set_random_seed(seed)
    stack = [layers.Input(shape=(features,))]
    for units in hidden:
        stack.append(
            layers.Dense(
                units, activation="relu", kernel_regularizer=l2 and regularizers.l2(l2), **dense_kw
            )
        )
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(classes, activation="softmax"))
    model = models.Sequential(stack)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def study_model(kind="l2", seed=0):
    from pyreg.study.definition import build_pyreg

    return build_pyreg(kind, seed)


def numpy_forward(model, x):
    """float64 forward pass from get_weights (relu hidden layers, softmax output)."""
    h = np.asarray(x, np.float64).reshape(len(x), -1)
    ws = model.get_weights()
    for i in range(0, len(ws), 2):
        h = h @ ws[i] + ws[i + 1]
        if i + 2 < len(ws):
            h = np.maximum(h, 0)
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# structure and initialisation


def test_study_models_have_keras_parameter_counts():
    for kind in ("l2", "dropout"):
        model = study_model(kind)
        assert model.count_params() == 101_770
        assert [w.shape for w in model.get_weights()] == [(784, 128), (128,), (128, 10), (10,)]


def test_glorot_uniform_kernels_and_zero_biases():
    w = study_model().get_weights()
    for kernel, limit in ((w[0], math.sqrt(6 / (784 + 128))), (w[2], math.sqrt(6 / (128 + 10)))):
        assert np.abs(kernel).max() <= np.float32(limit)
        assert np.abs(kernel).max() > 0.97 * limit  # the whole interval is used
        assert abs(kernel.mean()) < 0.05 * limit
        assert kernel.var() == pytest.approx(limit**2 / 3, rel=0.05)
    assert not w[1].any()
    assert not w[3].any()


def test_layers_expose_variables_like_keras():
    model = study_model()
    dense = model.layers[1]
    assert dense.kernel.shape == (784, 128)
    assert dense.bias.shape == (128,)
    np.testing.assert_array_equal(dense.kernel.numpy(), model.get_weights()[0])
    dense.bias.assign(np.ones(128))
    assert (model.get_weights()[1] == 1).all()
    assert [layer.name for layer in model.layers][1].startswith("dense")
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)


def test_summary_lists_layers_and_totals():
    out = io.StringIO()
    study_model().summary(print_fn=lambda s: out.write(s + "\n"))
    text = out.getvalue()
    assert "Total params: 101,770" in text
    assert "(None, 784)" in text
    assert "100,480" in text
    assert "1,290" in text


def test_model_builds_lazily_from_the_data():
    x, y = small_data()
    model = models.Sequential(
        [layers.Dense(8, activation="relu"), layers.Dense(4, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert not model.built
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built
    assert model.count_params() == 20 * 8 + 8 + 8 * 4 + 4


def test_add_after_build_keeps_existing_weights():
    model = models.Sequential([layers.Input(shape=(5,)), layers.Dense(3)])
    before = model.get_weights()
    model.add(layers.Dense(2, activation="softmax"))
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    assert len(after) == 4


# ---------------------------------------------------------------------------------------------
# fit semantics


def test_history_keys_and_lengths():
    x, y = small_data()
    h = mlp().fit(x, y, epochs=3, batch_size=32, validation_data=(x[:50], y[:50]), verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 and all(isinstance(e, float) for e in v) for v in h.history.values())
    assert h.epoch == [0, 1, 2]


def test_partial_last_batch_is_one_full_step():
    x, y = small_data(n=100)
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert model.optimizer.iterations == 2 * math.ceil(100 / 32)


def test_epoch_logs_are_batch_weighted_running_means_including_l2():
    """With a zero learning rate the weights never change, so the running mean of the batch losses
    (partial last batch weighted by its size) equals the loss of the whole set: CE + L2 penalty."""
    x, y = small_data(n=100)
    model = mlp(l2=0.01, optimizer=optimizers.SGD(learning_rate=0.0))
    h = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    p = numpy_forward(model, x)
    ce = -np.log(p[np.arange(len(y)), y]).mean()
    penalty = 0.01 * (model.get_weights()[0].astype(np.float64) ** 2).sum()
    assert h.history["loss"][0] == pytest.approx(ce + penalty, rel=1e-5)
    assert h.history["accuracy"][0] == pytest.approx((p.argmax(1) == y).mean())
    loss, _acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(ce + penalty, rel=1e-5)


def test_validation_runs_with_dropout_off_on_end_of_epoch_weights():
    x, y = small_data(n=300)
    model = mlp(dropout=0.5)
    h = model.fit(x[:200], y[:200], epochs=2, validation_data=(x[200:], y[200:]), verbose=0)
    loss, acc = model.evaluate(x[200:], y[200:], verbose=0)
    assert h.history["val_loss"][-1] == pytest.approx(loss, rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(acc)
    p = numpy_forward(model, x[200:])
    assert acc == pytest.approx((p.argmax(1) == y[200:]).mean())


def test_training_metrics_are_measured_with_dropout_on():
    x, y = small_data(n=512)
    model = mlp(dropout=0.9, hidden=(64,), optimizer=optimizers.SGD(learning_rate=0.0))
    h = model.fit(x, y, epochs=1, verbose=0)
    assert h.history["loss"][0] > model.evaluate(x, y, verbose=0)[0] + 0.01


def test_validation_split_takes_the_last_rows():
    x, y = small_data(n=200)
    model = mlp()
    h = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0, shuffle=False)
    split_at = math.floor(200 * 0.75)
    loss, _acc = model.evaluate(x[split_at:], y[split_at:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(loss, rel=1e-6)
    assert model.optimizer.iterations == math.ceil(split_at / 32)
    with pytest.raises(ValueError, match="not sufficient to split"):
        model.fit(x[:1], y[:1], validation_split=0.5, verbose=0)


def test_validation_freq():
    x, y = small_data()
    h = mlp().fit(x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0)
    assert len(h.history["loss"]) == 4
    assert len(h.history["val_loss"]) == 2


def test_fit_continues_weights_and_optimizer_state_and_compile_resets_it():
    x, y = small_data()
    a = mlp()
    a.fit(x, y, epochs=2, verbose=0, shuffle=False)
    b = mlp()
    b.fit(x, y, epochs=1, verbose=0, shuffle=False)
    b.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)  # one fit of two epochs == two fits of one
    assert b.optimizer.iterations == 2 * math.ceil(256 / 32)
    b.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert b.optimizer.iterations == 0


def test_initial_epoch_and_epochs_zero():
    x, y = small_data()
    model = mlp()
    assert model.fit(x, y, epochs=0, verbose=0).history == {}
    h = model.fit(x, y, epochs=3, initial_epoch=1, verbose=0)
    assert h.epoch == [1, 2]


def test_shuffle_changes_batches_every_epoch():
    x, y = small_data()
    shuffled, fixed = mlp(), mlp()
    shuffled.fit(x, y, epochs=2, verbose=0)
    fixed.fit(x, y, epochs=2, verbose=0, shuffle=False)
    assert not np.array_equal(shuffled.get_weights()[0], fixed.get_weights()[0])


# ---------------------------------------------------------------------------------------------
# determinism


def test_same_seed_bitwise_identical_for_any_thread_count():
    x, y = small_data(n=500)
    runs = []
    for threads in (1, 2, 1, 0):
        model = mlp(dropout=0.3, l2=0.001, seed=7, hidden=(64, 32))
        h = model.fit(x, y, epochs=2, verbose=0, threads=threads, validation_data=(x, y))
        runs.append((model.get_weights(), h.history))
    for weights, hist in runs[1:]:
        for a, b in zip(weights, runs[0][0]):
            np.testing.assert_array_equal(a, b)
        assert hist == runs[0][1]


@pytest.mark.parametrize("n", [1, 7, 1000, 2049])
@pytest.mark.parametrize("sparse", ["dense", "sparse"])
def test_inference_bitwise_identical_for_any_thread_count(n, sparse):
    # inference gives each thread whole chunks of rows: outputs and the loss (summed in row order)
    # must not depend on how many threads, chunks or partial chunks there are.
    x, y = small_data(n=n)
    model = mlp(dropout=0.3, l2=0.001, seed=5, hidden=(64, 32))
    model.fit(x, y, epochs=1, verbose=0)
    ref_p = model.predict(x, verbose=0, threads=1, sparse=sparse)
    ref_e = model.evaluate(x, y, verbose=0, threads=1, sparse=sparse)
    for threads in (2, 3, 4, 0):
        for batch_size in (32, 300):
            np.testing.assert_array_equal(
                model.predict(x, batch_size=batch_size, verbose=0, threads=threads, sparse=sparse),
                ref_p,
            )
            assert (
                model.evaluate(
                    x, y, batch_size=batch_size, verbose=0, threads=threads, sparse=sparse
                )
                == ref_e
            )


def test_different_seeds_differ():
    _x, _y = small_data()
    a, b = mlp(seed=1), mlp(seed=2)
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])


def test_sparse_and_dense_input_paths_agree(mnist_flat):
    x, y = mnist_flat[0][:2000], mnist_flat[1][:2000]
    results = []
    for sparse in ("dense", "sparse", "auto"):
        model = study_model("dropout", seed=3)
        model.fit(x, y, epochs=1, verbose=0, sparse=sparse)
        results.append(model.get_weights())
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# inputs keras accepts


@pytest.mark.parametrize(
    "label_dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64, np.float32]
)
def test_any_integer_label_dtype(label_dtype):
    x, y = small_data()
    ref = mlp()
    ref.fit(x, y.astype(np.int64), epochs=1, verbose=0, shuffle=False)
    model = mlp()
    model.fit(x, y.astype(label_dtype), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(model.get_weights()[0], ref.get_weights()[0])


def test_float64_uint8_and_image_shaped_inputs(mnist_data):
    (x_train, y_train), _ = mnist_data
    x8, y = x_train[:256], y_train[:256]
    a, b = study_model(seed=5), study_model(seed=5)
    a.fit(x8 / 255.0, y, epochs=1, verbose=0)  # float64 (N, 28, 28), as in the study
    b.fit((x8 / np.float32(255)).astype(np.float32).reshape(256, 28, 28), y, epochs=1, verbose=0)
    np.testing.assert_allclose(a.get_weights()[0], b.get_weights()[0], rtol=1e-5, atol=1e-7)
    assert study_model().predict(x8, verbose=0).shape == (256, 10)  # uint8 accepted


def test_labels_as_column_vector_and_categorical_crossentropy():
    x, y = small_data()
    a = mlp()
    a.fit(x, y[:, None], epochs=1, verbose=0, shuffle=False)
    utils.set_random_seed(0)
    b = models.Sequential([layers.Input(shape=(20,)), layers.Dense(16, activation="relu"),
                           layers.Dense(4, activation="softmax")])  # fmt: skip
    b.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    b.fit(x, utils.to_categorical(y, 4), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_from_logits_with_linear_output_matches_softmax_output():
    x, y = small_data()
    a = mlp()
    a.fit(x, y, epochs=1, verbose=0, shuffle=False)
    utils.set_random_seed(0)
    b = models.Sequential(
        [layers.Input(shape=(20,)), layers.Dense(16, activation="relu"), layers.Dense(4)]
    )
    b.compile(
        optimizer="adam",
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    b.fit(x, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    logits = b.predict(x, verbose=0)
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
        a.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "linear", "relu"])
def test_one_sgd_step_of_a_deep_stack_matches_numpy_float64(activation):
    """Backpropagation through three hidden layers (activation, l1 and l2 penalties, no bias on one
    layer), checked against a float64 NumPy implementation of the same step."""
    x, y = small_data(n=64)
    utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(20,)),
                               layers.Dense(32, activation=activation, kernel_regularizer=regularizers.l2(0.01)),
                               layers.Dense(24, activation=activation, use_bias=False,
                                            kernel_regularizer=regularizers.l1(0.01)),
                               layers.Dense(16), layers.Activation(activation), layers.Dense(4, activation="softmax")])  # fmt: skip
    model.compile(
        optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy"
    )
    w0 = [w.astype(np.float64) for w in model.get_weights()]
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)

    act = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "linear": lambda z: z,
           "relu": lambda z: np.maximum(z, 0)}[activation]  # fmt: skip
    dact = {"sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a**2, "linear": lambda a: np.ones_like(a),
            "relu": lambda a: (a > 0).astype(float)}[activation]  # fmt: skip
    k1, b1, k2, k3, b3, k4, b4 = w0
    h1 = act(x @ k1 + b1)
    h2 = act(h1 @ k2)
    h3 = act(h2 @ k3 + b3)
    z = h3 @ k4 + b4
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p.copy()
    dz[np.arange(64), y] -= 1
    dz /= 64
    g = {}
    g["k4"], g["b4"] = h3.T @ dz, dz.sum(0)
    d3 = (dz @ k4.T) * dact(h3)
    g["k3"], g["b3"] = h2.T @ d3, d3.sum(0)
    d2 = (d3 @ k3.T) * dact(h2)
    g["k2"] = h1.T @ d2 + 0.01 * np.sign(k2)
    d1 = (d2 @ k2.T) * dact(h1)
    g["k1"], g["b1"] = x.T @ d1 + 0.02 * k1, d1.sum(0)
    expected = [k1 - 0.1 * g["k1"], b1 - 0.1 * g["b1"], k2 - 0.1 * g["k2"], k3 - 0.1 * g["k3"],
                b3 - 0.1 * g["b3"], k4 - 0.1 * g["k4"], b4 - 0.1 * g["b4"]]  # fmt: skip
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_deeper_stacks_with_dropout_learn(activation):
    x, y = small_data(n=512)
    utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(20,)), layers.Dropout(0.1),
                               layers.Dense(64, activation=activation), layers.Dropout(0.2), layers.Dropout(0.1),
                               layers.Dense(32, activation=activation, kernel_regularizer=regularizers.l2(1e-4)),
                               layers.Dense(4, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=20, verbose=0, validation_data=(x, y))
    assert h.history["val_accuracy"][-1] > 0.8  # chance is 0.25
    assert np.isfinite(h.history["loss"]).all()


def test_optimizers_by_name_and_instance():
    x, y = small_data()
    for opt in (
        "adam",
        "adamw",
        "sgd",
        optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        optimizers.Adam(amsgrad=True),
    ):
        model = mlp(optimizer=opt)
        h = model.fit(x, y, epochs=5, verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0], opt


# ---------------------------------------------------------------------------------------------
# evaluate, predict, weights


def test_evaluate_return_forms():
    x, y = small_data()
    model = mlp()
    loss, acc = model.evaluate(x, y, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "accuracy": acc}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(loss)


def test_predict_is_softmax_of_the_forward_pass():
    x, _ = small_data()
    model = mlp(dropout=0.5)
    p = model.predict(x, verbose=0)
    assert p.dtype == np.float32
    assert p.shape == (256, 4)
    np.testing.assert_allclose(p, numpy_forward(model, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model(x), p)


def test_get_set_weights_round_trip_and_errors():
    model = mlp()
    w = model.get_weights()
    w[0][:] = 0.5
    model.set_weights(w)
    assert (model.get_weights()[0] == 0.5).all()
    with pytest.raises(
        ValueError, match="set_weights expects a list of 4 arrays for this model; got 3"
    ):
        model.set_weights(w[:3])
    bad = [a.copy() for a in w]
    bad[2] = bad[2][:, :3]
    with pytest.raises(ValueError, match=r"weights\[2\] must have shape \(16, 4\); got \(16, 3\)"):
        model.set_weights(bad)
    assert (model.get_weights()[0] == 0.5).all()  # unchanged by the failed call


def test_save_and_load_weights(tmp_path):
    x, y = small_data()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.weights.npz"
    model.save_weights(path)
    other = mlp(seed=9)
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not [
        p for p in tmp_path.iterdir() if p.name != "m.weights.npz"
    ]  # no temporary leftovers


def test_load_weights_checks_everything_before_changing_the_model(tmp_path):
    model = mlp()
    before = model.get_weights()
    wrong = mlp(hidden=(8,))
    wrong.save_weights(tmp_path / "wrong.npz")
    with pytest.raises(
        ValueError, match=r"weight 0 has shape \(20, 8\); this model expects \(20, 16\)"
    ):
        model.load_weights(tmp_path / "wrong.npz")
    model.save_weights(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable weights file"):
        model.load_weights(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="is not a pyreg weights file"):
        model.load_weights(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.npz")
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_save_weights_refuses_to_overwrite_when_asked(tmp_path):
    model = mlp()
    path = tmp_path / "keep.weights.npz"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        model.save_weights(path, overwrite=False)
    assert path.read_bytes() == b"precious"
    with pytest.raises(ValueError, match="not HDF5"):
        model.save_weights(tmp_path / "x.weights.h5")


# ---------------------------------------------------------------------------------------------
# verbosity and callbacks


def test_verbose_modes():
    x, y = small_data()
    for verbose, lines in ((0, 0), (2, 2)):
        out = io.StringIO()
        with redirect_stdout(out):
            mlp().fit(x, y, epochs=2, verbose=verbose)
        text = out.getvalue()
        assert text.count("\n") == lines * 2 if verbose else text == ""
        if verbose:
            assert "Epoch 2/2" in text
            assert "samples/s" in text
            assert "loss:" in text
            assert "accuracy:" in text


def test_progress_bar_updates_live_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    x = np.random.default_rng(0).standard_normal((20000, 20)).astype(np.float32)
    y = np.zeros(20000, np.int64)
    out = Tty()
    with redirect_stdout(out):
        mlp(hidden=(512,)).fit(x, y, epochs=1, verbose=1)
    text = out.getvalue()
    assert "\r" in text
    assert "━" in text
    assert "samples/s" in text


def test_early_stopping_restores_the_best_weights():
    x, y = small_data(n=300)
    saved = []
    keep = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: saved.append(model.get_weights())
    )
    model = mlp(optimizer=optimizers.SGD(learning_rate=3.0))  # too large: validation loss wanders
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    h = model.fit(
        x, y, epochs=30, verbose=0, validation_data=(x[:100], y[:100]), callbacks=[keep, stop]
    )
    best = int(np.argmin(h.history["val_loss"]))
    assert len(h.history["val_loss"]) < 30
    assert stop.stopped_epoch == len(h.history["val_loss"]) - 1
    for a, b in zip(model.get_weights(), saved[best]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_on_accuracy_and_batch_callbacks():
    x, y = small_data()
    batches = []
    cb = callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batches.append((batch, logs["loss"]))
    )
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[cb])
    assert [b for b, _ in batches] == [0, 1, 2, 3, 0, 1, 2, 3]

    class StopAfterTwoBatches(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    m2 = mlp()
    m2.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[StopAfterTwoBatches()])
    assert m2.optimizer.iterations == 2


def test_nan_loss_stops_training_at_that_batch_with_a_message():
    x, y = small_data()
    x = x * 1e20  # overflows the logits
    model = mlp(optimizer=optimizers.SGD(learning_rate=1e10))
    with pytest.warns(RuntimeWarning, match=r"Batch \d+: invalid loss"):
        h = model.fit(x, y, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1
    assert all(np.isfinite(w).all() for w in model.get_weights())  # the bad update was not applied


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["l2", "dropout"])
def test_nan_loss_in_a_later_batch_applies_no_update_of_that_batch(kind, threads):
    # sparse input: steps after the first are narrow-top steps (the output layer is updated before the
    # step's barrier); the weights must be those after the batches before the bad one, bitwise.
    rng = np.random.default_rng(3)
    x = (rng.random((256, 40)) * (rng.random((256, 40)) < 0.2)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    bad_batch = 3
    x_bad = x.copy()
    # finite, and layer 0's sums overflow: the logits and the loss are not
    x_bad[bad_batch * 32 : (bad_batch + 1) * 32] = np.float32(3e38)
    kw = dict(features=40, hidden=(24,), **({"l2": 0.001} if kind == "l2" else {"dropout": 0.5}))
    model = mlp(**kw)
    with pytest.warns(RuntimeWarning, match=rf"Batch {bad_batch}: invalid loss"):
        model.fit(x_bad, y, epochs=1, batch_size=32, shuffle=False, verbose=0, threads=threads, sparse="sparse")  # fmt: skip
    twin = mlp(**kw)
    twin.fit(x[: bad_batch * 32], y[: bad_batch * 32], epochs=1, batch_size=32, shuffle=False, verbose=0,
             threads=threads, sparse="sparse")  # fmt: skip
    assert model.optimizer.iterations == twin.optimizer.iterations == bad_batch
    for got, want in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_history_is_json_serialisable():
    x, y = small_data()
    h = mlp().fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    json.dumps(h.history)


def test_repr_and_config():
    model = study_model("dropout")
    assert "Dense" in repr(model)
    assert "Dropout" in repr(model)
    cfg = model.get_config()
    assert [c["class_name"] for c in cfg["layers"]] == ["Flatten", "Dense", "Dropout", "Dense"]
    assert cfg["layers"][2]["config"]["rate"] == 0.5
    assert pyreg.regularizers.l2(0.001) == regularizers.L2(0.001)


def test_training_flushes_denormals_as_tensorflow_and_restores_ieee_after():
    """TensorFlow's CPU kernels flush denormals to zero, so keras' fit never holds one; the trainer
    does the same, and leaves the caller's floating-point state as it was."""
    x = np.zeros((8, 3), np.float32)  # zero inputs: zero kernel gradient, so only the decay moves w
    y = np.zeros(8, np.int64)
    utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=optimizers.AdamW(learning_rate=0.1, weight_decay=0.5),
        loss="sparse_categorical_crossentropy",
    )
    w = model.get_weights()
    w[0][:] = np.float32(2e-38)
    model.set_weights(w)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    # keras' decay w - w * wd * lr: the product 1e-39 is a denormal, flushed, so w stays (ieee: 1.9e-38)
    np.testing.assert_array_equal(model.get_weights()[0], np.float32(2e-38))
    tiny = np.array([1e-38], np.float32) * np.float32(0.5)
    assert tiny[0] > 0  # this thread's denormals are back
