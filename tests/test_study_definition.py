"""The study's one definition: its kinds build the same networks in pyreg, Keras and NumPy, its data
scaling is the study's ``x / 255.0``, and the trainer itself needs nothing but NumPy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import OUTSIDE

from pyreg.study import definition as study


@pytest.mark.parametrize("kind", study.KINDS)
def test_pyreg_models_have_the_kinds_layers(kind):
    model = study.build_pyreg(kind, seed=0)
    spec = study.spec_of(kind)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["Flatten", "Dense", *(["Dropout"] if spec.dropout else []), "Dense"]
    hidden = model.layers[1]
    assert hidden.units == 128
    assert (hidden.kernel_regularizer is not None) == (kind in ("l2", "both"))
    if hidden.kernel_regularizer is not None:
        assert hidden.kernel_regularizer.l2 == pytest.approx(0.001)
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10
    assert model.input_shape == (None, 28, 28)


def test_the_same_seed_builds_the_same_weights_and_specs_generalise_kinds():
    a, b = study.build_pyreg("dropout", seed=3), study.build_pyreg(study.spec_of("dropout"), seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    wide = study.build_pyreg(study.ModelSpec(units=64, l2=0.01, dropout=0.25, weight_decay=0.004,
                                             learning_rate=0.01), seed=0)  # fmt: skip
    assert wide.layers[1].units == 64
    assert wide.layers[2].rate == 0.25
    assert wide.optimizer.learning_rate == pytest.approx(0.01)
    assert wide.optimizer.weight_decay == pytest.approx(0.004)
    with pytest.raises(
        ValueError, match="model kind must be one of l2, dropout, none, both; got 'l3'"
    ):
        study.spec_of("l3")


def test_numpy_trainer_from_the_definition():
    net = study.build_numpy("both", seed=0)
    assert [p.shape for p in net.params] == [(784, 128), (128,), (128, 10), (10,)]
    assert net.l2 == np.float32(0.001)
    assert net.dropout == 0.5
    with pytest.raises(ValueError, match="no weight decay"):
        study.build_numpy(study.ModelSpec(weight_decay=0.1))


@pytest.mark.keras
@pytest.mark.parametrize("kind", study.KINDS)
def test_keras_models_match_pyreg_layer_for_layer(keras_mod, kind):
    km = study.build_keras(kind)
    pm = study.build_pyreg(kind, seed=0)
    assert [type(layer).__name__ for layer in km.layers] == [
        type(layer).__name__ for layer in pm.layers
    ]
    assert km.count_params() == pm.count_params()
    assert km.input_shape == pm.input_shape


def test_scaling_is_the_studys_x_over_255():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    scaled = study.scale_images(x)
    assert scaled.dtype == np.float32
    assert scaled.shape == (1, 16, 16)
    assert np.array_equal(scaled, (x / 255.0).astype(np.float32))  # bitwise the float64 route
    assert study.scale_images(x, flat=True).shape == (1, 256)


def test_the_trainer_imports_and_trains_with_numpy_alone():
    """matplotlib, tqdm, TensorFlow, Keras, Dask and pandas are extras: blocked here."""
    code = (
        "import sys\n"
        "for m in ('matplotlib', 'tqdm', 'tensorflow', 'keras', 'distributed', 'dask', 'pandas'):\n"
        "    sys.modules[m] = None\n"
        "import numpy as np\n"
        "import pyreg\n"
        "from pyreg import layers, models\n"
        "x = np.random.default_rng(0).random((64, 8)).astype(np.float32)\n"
        "y = (x.sum(1) > 4).astype(np.int32)\n"
        "m = models.Sequential([layers.Input(shape=(8,)), layers.Dense(4, activation='relu'),\n"
        "                       layers.Dense(2, activation='softmax')])\n"
        "m.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "h = m.fit(x, y, epochs=2, verbose=0)\n"
        "print(len(h.history['loss']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=OUTSIDE).stdout  # fmt: skip
    assert out.strip() == "2"


def test_figures_without_matplotlib_say_which_extra_to_install():
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "from pyreg.study.plots import matplotlib_figure\n"
        "try:\n"
        "    matplotlib_figure()\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=OUTSIDE).stdout  # fmt: skip
    assert "pip install 'pyreg[study]'" in out


def test_importing_the_source_tree_without_the_extension_says_what_to_do():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", "import pyreg"], capture_output=True, text=True,
                          cwd=root, env={"PATH": "", "PYTHONPATH": str(root)})  # fmt: skip
    if proc.returncode == 0:  # an editable install maps the extension into the source tree
        pytest.skip("this environment has an editable install: the source tree imports")
    assert "ImportError: pyreg was imported from its source tree" in proc.stderr
    assert "pip install -e ." in proc.stderr
    assert "circular import" not in proc.stderr
