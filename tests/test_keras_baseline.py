"""The Keras baseline: the study's models built in Keras and the timed runner (TensorFlow-marked), and the error without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import OUTSIDE


def test_importing_without_tensorflow_says_how_to_install_the_extra():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "sys.modules['keras'] = None\n"
        "try:\n"
        "    import pyreg.study.keras_baseline\n"
        "except ImportError as e:\n"
        "    print(e)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=OUTSIDE
    ).stdout
    assert 'pip install "pyreg[keras]"' in out
    # the rest of pyreg works without tensorflow
    code2 = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; import pyreg; print('ok')"
    ok = subprocess.run(
        [sys.executable, "-c", code2], capture_output=True, text=True, check=True, cwd=OUTSIDE
    ).stdout
    assert ok.strip() == "ok"


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["l2", "dropout"])
def test_reference_models_have_the_study_architecture(keras_mod, kind):
    from pyreg.study.definition import build_keras

    keras = keras_mod
    model = build_keras(kind)
    assert model.count_params() == 101_770
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == (
        ["Flatten", "Dense", "Dense"] if kind == "l2" else ["Flatten", "Dense", "Dropout", "Dense"]
    )
    hidden, out = model.layers[1], model.layers[-1]
    assert hidden.units == 128
    assert hidden.activation.__name__ == "relu"
    assert out.units == 10
    assert out.activation.__name__ == "softmax"
    assert model.input_shape == (None, 28, 28)
    if kind == "l2":
        assert isinstance(hidden.kernel_regularizer, keras.regularizers.L2)
        assert hidden.kernel_regularizer.get_config()["l2"] == pytest.approx(0.001)
        assert hidden.bias_regularizer is None
        assert out.kernel_regularizer is None
    else:
        assert hidden.kernel_regularizer is None
        assert model.layers[2].rate == 0.5
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "sparse_categorical_crossentropy"


@pytest.mark.keras
def test_runner_returns_history_and_epoch_times(keras_mod, mnist_data):
    from pyreg.study.definition import build_keras, load_mnist
    from pyreg.study.keras_baseline import train_reference

    data = load_mnist(2048, 512)
    keras_mod.utils.set_random_seed(0)
    run = train_reference(build_keras("dropout"), data, epochs=2, batch_size=32)
    assert set(run.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in run.history.values())
    assert len(run.epoch_times) == 2
    assert all(t > 0 for t in run.epoch_times)
    assert len(run.kernel_norms) == 2
    assert run.history["val_accuracy"][-1] > 0.7  # learns something on 2048 images
    assert np.isfinite(run.history["loss"]).all()


@pytest.mark.keras
def test_runner_rejects_bad_arguments(keras_mod):
    from pyreg.study.definition import build_keras
    from pyreg.study.keras_baseline import train_reference

    with pytest.raises(ValueError, match="batch_size must be positive; got 0"):
        train_reference(build_keras("l2"), ((None, None), (None, None)), batch_size=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_keras("l3")
