"""A plain NumPy float32 trainer of the study's MLPs: the third corner of the benchmarks.

It does keras' maths with NumPy expressions (Glorot init, Adam with epsilon-hat, coupled L2,
inverted dropout, batch-weighted running means), one Python iteration per batch: what a careful
user would write without a framework. It is a baseline and an independent reference, not a product.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyMLP"]


class NumpyMLP:
    """Dense(hidden, relu) [+ Dropout(rate)] -> Dense(classes, softmax), Adam, sparse cross-entropy.

    Args:
        inputs, hidden, classes: layer widths.
        l2: coupled L2 factor on the hidden kernel (keras' ``l2(0.001)``).
        dropout: rate of the dropout after the hidden layer (0 = none).
        seed: seeds initialisation, shuffling and masks.
    """

    def __init__(
        self, inputs=784, hidden=128, classes=10, l2=0.0, dropout=0.0, seed=0, learning_rate=1e-3
    ):
        self.rng = np.random.default_rng(seed)
        f = np.float32

        def glorot(fan_in, fan_out):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return self.rng.uniform(-limit, limit, (fan_in, fan_out)).astype(f)

        self.params = [
            glorot(inputs, hidden),
            np.zeros(hidden, f),
            glorot(hidden, classes),
            np.zeros(classes, f),
        ]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.l2, self.dropout, self.lr = f(l2), float(dropout), f(learning_rate)

    def _forward(self, x, training):
        w1, b1, w2, b2 = self.params
        h = np.maximum(x @ w1 + b1, 0)  # (B, hidden)
        mask = None
        if training and self.dropout > 0:
            mask = (self.rng.random(h.shape, dtype=np.float32) >= self.dropout).astype(np.float32)
            h = h * np.float32(1.0 / (1.0 - self.dropout)) * mask
        z = h @ w2 + b2  # (B, classes)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return h, mask, p

    def _penalty(self) -> float:
        return float(self.l2 * np.square(self.params[0]).sum())

    def train_step(self, x, y) -> tuple[float, int]:
        """One Adam step on a batch; returns (batch loss with penalty, correct predictions)."""
        n = len(y)
        w1, _b1, w2, _b2 = self.params
        h, mask, p = self._forward(x, True)
        loss = float(-np.log(p[np.arange(n), y]).mean()) + self._penalty()
        correct = int((p.argmax(1) == y).sum())
        dz = p
        dz[np.arange(n), y] -= 1
        dz *= np.float32(1.0 / n)
        dh = dz @ w2.T
        if mask is not None:
            dh *= mask * np.float32(1.0 / (1.0 - self.dropout))
        dh *= h > 0
        grads = [x.T @ dh + self.l2 * (np.float32(2) * w1), dh.sum(0), h.T @ dz, dz.sum(0)]
        self.t += 1
        f = np.float32
        alpha = self.lr * np.sqrt(f(1) - f(0.999) ** f(self.t)) / (f(1) - f(0.9) ** f(self.t))
        for param, g, m, v in zip(self.params, grads, self.m, self.v):
            m += (g - m) * f(0.1)
            v += (g * g - v) * f(0.001)
            param -= (m * alpha) / (np.sqrt(v) + f(1e-7))
        return loss, correct

    def train_epoch(self, x, y, batch_size=32) -> dict:
        """One shuffled epoch; returns the running means keras reports (loss, accuracy)."""
        order = self.rng.permutation(len(y))
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            batch_loss, batch_correct = self.train_step(x[idx], y[idx])
            loss_sum += batch_loss * len(idx)
            correct += batch_correct
        return {"loss": loss_sum / len(y), "accuracy": correct / len(y)}

    def evaluate(self, x, y, batch_size=1000) -> dict:
        loss, correct = 0.0, 0
        for start in range(0, len(y), batch_size):
            _, _, p = self._forward(x[start : start + batch_size], False)
            yy = y[start : start + batch_size]
            loss += float(-np.log(p[np.arange(len(yy)), yy]).sum())
            correct += int((p.argmax(1) == yy).sum())
        return {"loss": loss / len(y) + self._penalty(), "accuracy": correct / len(y)}

    def predict(self, x, batch_size=1000) -> np.ndarray:
        return np.concatenate(
            [self._forward(x[s : s + batch_size], False)[2] for s in range(0, len(x), batch_size)]
        )
