"""The fused first-layer sweep (cpp/sweep.h): with sparse input, layer 0's weight gradient, its
optimizer update and the next batch's layer-0 output are computed in one pass. It must give the
same weights, history and penalty as the unfused dense-input path, bit for bit, for every optimizer,
regularizer, layer width, batch size and thread count it serves."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import callbacks, layers, models, optimizers, regularizers, utils


def sparse_data(n, features=100, classes=5, zero_fraction=0.8, seed=0):
    """Inputs with most entries exactly zero (so the sparse path is chosen), labels from a linear rule."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype(np.float32)
    x[rng.random((n, features)) < zero_fraction] = 0.0
    y = (x @ rng.standard_normal((features, classes))).argmax(1)
    return x, y


def build(
    features,
    units,
    *,
    activation="relu",
    regularizer=None,
    dropout=None,
    optimizer="adam",
    classes=5,
    seed=0,
):
    """Input -> [Dense(units, activation) -> Dropout] -> Dense(classes, softmax); units=None: one softmax layer."""
    utils.set_random_seed(seed)
    stack = [layers.Input(shape=(features,))]
    if units is not None:
        stack.append(layers.Dense(units, activation=activation, kernel_regularizer=regularizer))
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(
        layers.Dense(
            classes, activation="softmax", kernel_regularizer=regularizer if units is None else None
        )
    )
    model = models.Sequential(stack)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(config, x, y, *, sparse, threads, batch_size, epochs=2, extra_callbacks=()):
    model = build(x.shape[1], **config)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, threads=threads, sparse=sparse,
                        callbacks=list(extra_callbacks))  # fmt: skip
    return model, history.history


CONFIGS = {
    "l2-relu": dict(units=128, regularizer=regularizers.l2(1e-3)),
    "dropout": dict(units=128, dropout=0.5),
    "partial-panel-l1l2-sgd": dict(
        units=100,
        regularizer=regularizers.l1_l2(1e-4, 1e-3),
        optimizer=optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    ),
    "adamw-amsgrad-linear": dict(
        units=70,
        activation="linear",
        optimizer=optimizers.Adam(2e-3, amsgrad=True, weight_decay=0.01),
    ),
    "plain-sgd": dict(units=64, optimizer=optimizers.SGD(0.1)),
    # adam on full 64-column panels takes the fused gradient + update kernel: with l1 and l2 here
    "full-panel-l1l2-adam": dict(units=64, regularizer=regularizers.l1_l2(1e-4, 1e-3)),
    "single-softmax-layer": dict(units=None, regularizer=regularizers.l2(1e-3)),
    # 3 panels: a thread owning two adjacent full panels updates them in one walk (with avx-512), the
    # third alone; amsgrad's vhat and decoupled decay on both
    "three-panels-amsgrad-l1l2": dict(
        units=192,
        regularizer=regularizers.l1_l2(1e-4, 1e-3),
        optimizer=optimizers.Adam(2e-3, amsgrad=True, weight_decay=0.01),
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(("threads", "batch_size"), [(1, 32), (2, 100), (3, 7), (2, 1), (2, 2000)])
def test_sweep_equals_the_dense_path_bitwise(name, threads, batch_size):
    # 1050 samples: a partial last batch for every batch size; 100 rows need two bitmap words per feature
    x, y = sparse_data(1050)
    fused, h_fused = train(
        CONFIGS[name], x, y, sparse="sparse", threads=threads, batch_size=batch_size
    )
    plain, h_plain = train(
        CONFIGS[name], x, y, sparse="dense", threads=threads, batch_size=batch_size
    )
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h_fused == h_plain  # losses include the penalty summed by the sweep
    assert fused._mlp.penalty() == plain._mlp.penalty()
    # and the sweep did run (so the comparison above tested it)
    res = fused._mlp.train_epoch(
        x[:64], y[:64].astype(np.int32), batch_size, True, 9, threads, "sparse"
    )
    assert res["sweep"]
    assert not plain._mlp.train_epoch(x[:64], y[:64].astype(np.int32), 32, sparse="dense")["sweep"]


def test_sweep_on_mnist_equals_the_dense_path(mnist_flat):
    x, y = mnist_flat[0][:3000], mnist_flat[1][:3000]
    runs = []
    for sparse in ("auto", "dense"):
        model, hist = train(
            {**CONFIGS["l2-relu"], "classes": 10},
            x,
            y,
            sparse=sparse,
            threads=2,
            batch_size=32,
            epochs=1,
        )
        runs.append((model.get_weights(), hist))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_lookahead_off_and_on_agree():
    x, y = sparse_data(640)
    out = []
    for lookahead in (True, False):
        model = build(x.shape[1], units=96, regularizer=regularizers.l2(1e-3))
        res = model._mlp.train_epoch(
            x, y.astype(np.int32), 32, True, 0, 2, "sparse", None, 0.1, True, lookahead
        )
        assert res["sweep"]
        out.append((model.get_weights(), res["loss"], res["accuracy"]))
    for a, b in zip(out[0][0], out[1][0]):
        np.testing.assert_array_equal(a, b)
    assert out[0][1:] == out[1][1:]


def test_batch_hooks_turn_lookahead_off_with_the_same_results():
    """With batch hooks the trainer re-enters Python after every batch and computes no layer-0 output
    ahead of it; the results must not change, and every batch must reach the hook."""
    x, y = sparse_data(640)
    seen = []
    runs = []
    for hooks in (
        [],
        [callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))],
    ):
        model = build(x.shape[1], units=96, regularizer=regularizers.l2(1e-3))
        h = model.fit(x, y, batch_size=32, epochs=2, verbose=0, sparse="sparse", callbacks=hooks)
        runs.append((model.get_weights(), h.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    assert seen == list(range(20)) * 2
