"""Weight digests of short trainings over the trainer's paths: every instruction set this CPU runs,
1 and 2 threads, sparse and dense input, the study's four kinds, SGD with Nesterov, AMSGrad, two
hidden layers, tanh, input dropout, L1 and weight decay. One line per configuration.

Run it before and after a change that must keep results bitwise, from outside the source tree, and
diff the two outputs (they must be identical):

    cd /tmp && python /path/to/pyreg/bench/weight_digests.py > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import hashlib

import numpy as np

import pyreg
from pyreg import _core, layers, models, optimizers, regularizers, utils
from pyreg.study.definition import load_mnist


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def build(kind, opt="adam", units=128, depth=1, act="relu", input_dropout=0.0, l1=0.0, wd=None):
    utils.set_random_seed(7)
    stack = [layers.Input(shape=(784,))]
    if input_dropout:
        stack.append(layers.Dropout(input_dropout))
    for _ in range(depth):
        reg = regularizers.l1_l2(l1=l1, l2=0.001) if kind in ("l2", "both") else None
        stack.append(layers.Dense(units, activation=act, kernel_regularizer=reg))
        if kind in ("dropout", "both"):
            stack.append(layers.Dropout(0.5))
    stack.append(layers.Dense(10, activation="softmax"))
    model = models.Sequential(stack)
    optimizer = {"adam": optimizers.Adam(weight_decay=wd), "amsgrad": optimizers.Adam(amsgrad=True),
                 "sgd": optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)}[opt]  # fmt: skip
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    (x, y), (xt, yt) = load_mnist(6000, 1000, flat=True)
    variants = [("sgd", "dropout", {"opt": "sgd"}), ("amsgrad", "dropout", {"opt": "amsgrad"}),
                ("deep", "dropout", {"depth": 2, "units": 96}), ("tanh", "dropout", {"act": "tanh"}),
                ("idrop", "dropout", {"input_dropout": 0.2}), ("l1", "both", {"l1": 1e-4}),
                ("wd", "none", {"wd": 0.004}), ("wide", "dropout", {"units": 200})]  # fmt: skip
    for isa in [
        i for i in ("avx512", "avx2", "generic") if i in pyreg.build_info()["isa_available"]
    ]:
        _core.set_isa(isa)
        for kind in ("l2", "dropout", "none", "both"):
            for threads in (1, 2):
                for sparse in ("auto", "dense"):
                    m = build(kind)
                    h = m.fit(x, y, epochs=2, batch_size=32, validation_data=(xt, yt), verbose=0,
                              threads=threads, sparse=sparse)  # fmt: skip
                    print(
                        f"{isa} {kind} t{threads} {sparse}",
                        digest(m.get_weights()),
                        repr(h.history["val_loss"][-1]),
                    )
        for name, kind, kw in variants:
            for threads in (1, 2):
                m = build(kind, **kw)
                h = m.fit(
                    x,
                    y,
                    epochs=1,
                    batch_size=37,
                    validation_data=(xt, yt),
                    verbose=0,
                    threads=threads,
                )
                p = m.predict(xt[:100], threads=threads, verbose=0)
                print(
                    f"{isa} {name} t{threads}",
                    digest(m.get_weights()),
                    repr(h.history["loss"][-1]),
                    digest([p]),
                )


if __name__ == "__main__":
    main()
