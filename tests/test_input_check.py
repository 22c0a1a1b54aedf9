"""fit's NaN/Inf check of x. For float32 x with nothing watching the epoch (verbose=0, no callbacks)
it runs inside the first epoch: the trainer's row scans check each batch before it is trained on
(sparse input), or the trainer checks x first (dense input). Either way a bad x raises the same
ValueError as the up-front check and leaves the model exactly as it was."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyreg import callbacks, layers, models, regularizers, utils

FEATURES = 150  # vector paths: 64-float words [0, 128), 16-float vectors [128, 144), scalar tail
BATCH = 32


def make_model(kind: str) -> models.Sequential:
    utils.set_random_seed(0)
    hidden = {
        "l2": [layers.Dense(16, activation="relu", kernel_regularizer=regularizers.l2(0.001))],
        "dropout": [layers.Dense(16, activation="relu"), layers.Dropout(0.5)],
        # the trainer scans the input after its dropout: it checks x up front instead
        "input-dropout": [layers.Dropout(0.2), layers.Dense(16, activation="relu")],
    }[kind]
    m = models.Sequential(
        [layers.Input(shape=(FEATURES,)), *hidden, layers.Dense(4, activation="softmax")]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((203, FEATURES)).astype(np.float32)  # 7 batches, the last one partial
    x[rng.random(x.shape) < 0.8] = 0  # sparse enough for the sparse path
    return x, rng.integers(0, 4, len(x))


def fit(m, x, y, sparse, **kw):
    return m.fit(x, y, batch_size=BATCH, verbose=0, sparse=sparse, threads=2, **kw)


def assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 5), (100, 130), (202, 147)])
@pytest.mark.parametrize("kind", ["l2", "dropout", "input-dropout"])
@pytest.mark.parametrize("sparse", ["sparse", "dense"])
def test_nonfinite_x_raises_and_leaves_the_model_as_it_was(data, sparse, kind, where, bad):
    x, y = data
    model, twin = make_model(kind), make_model(kind)
    for m in (model, twin):
        fit(m, x, y, sparse)
    history, before = model.history, model.get_weights()
    xb = x.copy()
    xb[where] = bad
    with pytest.raises(
        ValueError, match=re.escape(f"x must be finite; got {xb[where]} at index {where}")
    ):
        fit(model, xb, y, sparse, epochs=2)
    assert model.history is history
    for u, v in zip(model.get_weights(), before):
        np.testing.assert_array_equal(u, v)
    # the optimizer's moments and the step and dropout counters too: training on agrees bit for bit
    for m in (model, twin):
        fit(m, x, y, sparse)
    assert_same_weights(model, twin)


def test_the_row_scans_find_it_on_the_sparse_path(data):
    x, y = data
    model = make_model("dropout")
    fit(model, x, y, "sparse")
    before = model.get_weights()
    xb = x.copy()
    xb[150, 140] = np.inf
    yl = y.astype(np.int32)
    # training on through NaN losses: only the scans can have found the bad row
    res = model._mlp.train_epoch(xb, yl, BATCH, sparse="sparse", threads=2, stop_on_nonfinite=False,
                                 check_input=True)  # fmt: skip
    assert res["bad_input"]
    assert res["sparse"]
    assert res["sweep"]
    assert res["steps"] == 0
    for u, v in zip(model.get_weights(), before):
        np.testing.assert_array_equal(u, v)
    # unchecked, the same epoch trains through (the flag above came from the check, not the loss)
    res = model._mlp.train_epoch(xb, yl, BATCH, sparse="sparse", threads=2, stop_on_nonfinite=False)
    assert not res["bad_input"]
    assert res["steps"] == -(-len(x) // BATCH)


@pytest.mark.parametrize("row", [10, 190])  # a training row, a row of the validation split
def test_rows_taken_by_validation_split_are_checked_too(data, row):
    x, y = data
    model = make_model("l2")
    before = model.get_weights()
    xb = x.copy()
    xb[row, 3] = np.nan
    with pytest.raises(
        ValueError, match=re.escape(f"x must be finite; got nan at index ({row}, 3)")
    ):
        fit(model, xb, y, "sparse", validation_split=0.2)
    for u, v in zip(model.get_weights(), before):
        np.testing.assert_array_equal(u, v)


def test_an_epoch_stopped_early_still_checks_every_row(data):
    # row 0 overflows the layers: the loss is NaN at the first batch and training stops there, before
    # the scans reach the last row; the rows left unscanned are then checked in one pass.
    x, y = data
    model = make_model("l2")
    before = model.get_weights()
    xb = x.copy()
    xb[0] = np.float32(3e38)
    xb[202, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("x must be finite; got nan at index (202, 0)")):
        fit(model, xb, y, "sparse")
    for u, v in zip(model.get_weights(), before):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("watch", ["callback", "verbose"])
def test_with_watchers_the_check_comes_first(data, watch, capsys):
    class Record(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_begin(self, logs=None):
            self.calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            self.calls.append("epoch_begin")

    x, y = data
    xb = x.copy()
    xb[7, 2] = np.nan
    model, rec = make_model("l2"), Record()
    kw = {"callbacks": [rec]} if watch == "callback" else {"verbose": 1}
    with pytest.raises(ValueError, match=re.escape("x must be finite; got nan at index (7, 2)")):
        model.fit(xb, y, batch_size=BATCH, **{"verbose": 0, **kw})
    assert rec.calls == []
    assert capsys.readouterr().out == ""
