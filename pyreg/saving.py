"""Weight files: ``Sequential.save_weights`` / ``load_weights`` in pyreg's ``.npz`` format.

As ``keras.src.saving.saving_api`` does for keras' ``Model.save_weights``, this module writes and
reads the files; the model only delegates. A file holds every weight as ``w0``, ``w1``, ... (keras'
``get_weights`` order) and a ``__meta__`` JSON string with the format marker, the layer names and
every shape. Writes are atomic (temporary file, then rename); a load changes nothing unless the
whole file checks out against the model.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ._checks import check_bool
from ._io import write_atomic

__all__ = ["load_weights", "save_weights"]

_WEIGHTS_FORMAT = "pyreg-weights-v1"


def save_weights(model, filepath, overwrite: bool = True) -> None:
    """Saves every weight of ``model`` to an ``.npz`` file, atomically (temporary file, then rename).

    The file records the format, the layer names and every shape, which load_weights checks.
    """
    model._require_built("save weights")
    path = Path(os.fspath(filepath))
    if path.suffix == ".h5":
        raise ValueError(
            f"pyreg saves weights as .npz, not HDF5; use a name like 'model.weights.npz' (got {str(path)!r})"
        )
    if path.suffix != ".npz":
        raise ValueError(
            f"filepath must end with '.npz' (e.g. 'model.weights.npz'); got {str(path)!r}"
        )
    if not check_bool(overwrite, "overwrite") and path.exists():
        raise FileExistsError(f"{path} exists and overwrite=False; nothing was written")
    weights = model.get_weights()
    meta = {
        "format": _WEIGHTS_FORMAT,
        "layers": [
            [lay.name, [list(w.shape) for w in lay.weights]] for lay in model.layers if lay.weights
        ],
    }
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    write_atomic(path, lambda f: np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays))


def load_weights(model, filepath) -> None:
    """Loads weights saved by save_weights; the model is unchanged unless everything checks out."""
    model._require_built("load weights")
    path = Path(os.fspath(filepath))
    if not path.exists():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"])) if "__meta__" in f.files else None
            if meta is None or meta.get("format") != _WEIGHTS_FORMAT:
                raise ValueError(
                    f"{path} is not a pyreg weights file (no '{_WEIGHTS_FORMAT}' marker)"
                )
            n = len([k for k in f.files if k.startswith("w")])
            weights = [f[f"w{i}"] for i in range(n)]
    except ValueError:
        raise
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"{path} is not a readable weights file (truncated or corrupt: {e})"
        ) from e
    views = model._weight_views()
    if len(weights) != len(views):
        raise ValueError(f"{path} holds {len(weights)} weight arrays; this model has {len(views)}")
    for i, (w, v) in enumerate(zip(weights, views)):
        if w.shape != v.shape:
            raise ValueError(
                f"{path}: weight {i} has shape {w.shape}; this model expects {v.shape}"
            )
    model.set_weights(weights)
