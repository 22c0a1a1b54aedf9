"""Data sets, shaped like ``keras.datasets``: ``pyreg.datasets.mnist.load_data()``,
``pyreg.datasets.fashion_mnist.load_data()``."""

from __future__ import annotations

from . import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]
