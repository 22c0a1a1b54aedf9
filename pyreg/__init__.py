"""pyreg: fast, Keras-faithful training of regularised MLPs on the CPU.

The API mirrors ``tensorflow.keras`` so a Keras MLP script ports by changing its imports::

    from pyreg import layers, models, regularizers
    from pyreg.datasets import mnist

Layers: C++ kernels (``pyreg.kernels``) -> native trainer (``pyreg._core.Mlp``) -> Keras-shaped API
(``pyreg.models``, ``pyreg.layers``, ...) -> harness (``pyreg compare``) and Keras reference
(``pyreg.reference``, needs TensorFlow).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version

from . import (
    activations,
    callbacks,
    datasets,
    initializers,
    kernels,
    layers,
    losses,
    models,
    optimizers,
    regularizers,
    utils,
)
from ._build import build_info
from .interop import from_keras, to_keras
from .models import Sequential

try:
    __version__ = _pkg_version("pyreg")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Sequential",
    "__version__",
    "activations",
    "build_info",
    "callbacks",
    "datasets",
    "from_keras",
    "initializers",
    "kernels",
    "layers",
    "losses",
    "models",
    "optimizers",
    "regularizers",
    "to_keras",
    "utils",
]
