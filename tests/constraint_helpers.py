"""Helpers of the constraint, activity-penalty and label-smoothing tests: the same two-layer model
in pyreg and Keras, the same initial weights and batches, 20 SGD steps."""

from __future__ import annotations

import numpy as np

import pyreg


def two_layer(mod, hidden: dict, out: dict, *, IN=12, H=70, K=3, act="relu", out_act="softmax"):
    L = mod.layers
    return mod.Sequential(
        [
            L.Input(shape=(IN,)),
            L.Dense(H, activation=act, **hidden),
            L.Dense(K, activation=out_act, **out),
        ]
    )


def data(steps=20, bs=4, IN=12, K=3, sparse=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps * bs, IN)).astype(np.float32)
    if sparse:  # mostly zeros: layer 0 takes the sparse path (its fused sweep, without look-ahead)
        x[rng.random(x.shape) < 0.8] = 0.0
    y = rng.integers(0, K, steps * bs)
    return x, y


def parity(
    keras,
    kmodel,
    pmodel,
    kloss,
    ploss,
    x,
    y,
    *,
    bs=4,
    optimizer="sgd",
    wd=None,
    threads=1,
    sparse="auto",
):
    """Trains both for one epoch of len(x)/bs steps (shuffle off, same initial weights); returns
    (max |weight diff|, max |loss diff| over evaluate before, fit's loss, val_loss, evaluate after)."""
    pmodel.set_weights(kmodel.get_weights())
    if optimizer == "sgd":
        kopt, popt = (
            keras.optimizers.SGD(0.1, weight_decay=wd),
            pyreg.optimizers.SGD(0.1, weight_decay=wd),
        )
    else:
        kopt, popt = (
            keras.optimizers.Adam(0.01, weight_decay=wd),
            pyreg.optimizers.Adam(0.01, weight_decay=wd),
        )
    kmodel.compile(optimizer=kopt, loss=kloss)
    pmodel.compile(optimizer=popt, loss=ploss)
    diffs = [
        abs(
            kmodel.evaluate(x, y, batch_size=bs, verbose=0)
            - pmodel.evaluate(x, y, batch_size=bs, verbose=0)
        )
    ]
    val = (x[:8], y[:8])
    hk = kmodel.fit(
        x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0, validation_data=val
    ).history
    hp = pmodel.fit(
        x,
        y,
        batch_size=bs,
        epochs=1,
        shuffle=False,
        verbose=0,
        validation_data=val,
        threads=threads,
        sparse=sparse,
    ).history
    diffs += [abs(hk[k][0] - hp[k][0]) for k in ("loss", "val_loss")]
    diffs.append(
        abs(
            kmodel.evaluate(x, y, batch_size=5, verbose=0)
            - pmodel.evaluate(x, y, batch_size=5, verbose=0)
        )
    )
    dw = max(float(np.abs(a - b).max()) for a, b in zip(kmodel.get_weights(), pmodel.get_weights()))
    return dw, max(diffs)


def trained_weights(
    pmodel_fn, x, y, threads, loss="sparse_categorical_crossentropy", sparse="auto", epochs=2
):
    m = pmodel_fn()
    m.compile(optimizer=pyreg.optimizers.Adam(0.01, weight_decay=0.01), loss=loss)
    m.fit(x, y, batch_size=8, epochs=epochs, verbose=0, threads=threads, sparse=sparse)
    return m.get_weights()
