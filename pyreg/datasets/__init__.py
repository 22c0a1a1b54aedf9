"""Data sets, shaped like ``keras.datasets``: ``pyreg.datasets.mnist.load_data()``."""

from __future__ import annotations

from . import mnist

__all__ = ["mnist"]
