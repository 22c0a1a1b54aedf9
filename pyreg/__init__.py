"""pyreg: fast, Keras-faithful training of regularised MLPs on the CPU.

The API mirrors ``tensorflow.keras`` so a Keras MLP script ports by changing its imports::

    from pyreg import layers, models, regularizers
    from pyreg.datasets import mnist

Layers: C++ kernels (``pyreg.kernels``) -> native trainer (``pyreg._core.Mlp``) -> Keras-shaped API
(``pyreg.models``, ``pyreg.layers``, ...); studies and comparisons with Keras live in ``pyreg.study``
(the ``pyreg`` command).
"""

from __future__ import annotations

from pathlib import Path as _Path

try:
    from . import _core  # noqa: F401 - first, so that a missing extension is explained here
except ImportError as _e:  # no compiled extension beside this file
    _here = _Path(__file__).resolve().parent
    if (_here.parent / "pyproject.toml").is_file() and (_here.parent / "cpp").is_dir():
        raise ImportError(
            f"pyreg was imported from its source tree ({_here}), which has no compiled extension "
            "(pyreg._core). Run Python from another folder to use the installed pyreg, or "
            "install the source tree in development mode, which builds the extension: "
            "pip install -e . (see CONTRIBUTING.md)."
        ) from None  # the original error ("partially initialized module") only misleads
    raise ImportError(
        f"pyreg's compiled extension pyreg._core could not be loaded ({_e}); reinstall pyreg "
        "(pip install --force-reinstall pyreg) so that it is built for this Python and machine."
    ) from _e

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
