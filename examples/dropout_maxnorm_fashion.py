"""Dropout with a max-norm constraint on Fashion-MNIST: the recipe of the dropout paper
(Srivastava et al., 2014: dropout on the input and hidden layers, each hidden unit's incoming weight
vector kept within a max-norm ball), trained with pyreg. The same script runs on Keras with its
imports changed to tensorflow.keras.

    python examples/dropout_maxnorm_fashion.py            # 20 epochs, all 60,000 images
    PYREG_EXAMPLE_QUICK=1 python examples/dropout_maxnorm_fashion.py   # a smoke run
"""

import os

from pyreg.constraints import MaxNorm
from pyreg.datasets import fashion_mnist
from pyreg.layers import Dense, Dropout, Flatten, Input
from pyreg.models import Sequential
from pyreg.optimizers import SGD
from pyreg.utils import set_random_seed

quick = os.environ.get("PYREG_EXAMPLE_QUICK") == "1"
epochs = 2 if quick else 20
set_random_seed(0)

(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
if quick:
    x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
x_train, x_test = x_train / 255.0, x_test / 255.0

model = Sequential([
    Input(shape=(28, 28)),
    Flatten(),
    Dropout(0.2),
    Dense(512, activation="relu", kernel_constraint=MaxNorm(3)),
    Dropout(0.5),
    Dense(512, activation="relu", kernel_constraint=MaxNorm(3)),
    Dropout(0.5),
    Dense(10, activation="softmax"),
])
model.compile(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=epochs, batch_size=128, validation_split=0.1, verbose=2)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy {accuracy:.4f}, test loss {loss:.4f}")
