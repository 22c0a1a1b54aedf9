"""Conversion between keras and pyreg models, weights included (needs TensorFlow/Keras 3).

``from_keras(keras_model)`` builds the equivalent :class:`pyreg.models.Sequential` with the same
weights (and, when the keras model is compiled, the same optimizer settings and loss), refusing with
a clear message any layer or option pyreg cannot represent. ``to_keras(model)`` is the reverse.
"""

from __future__ import annotations

import numpy as np

from . import constraints, layers, losses, optimizers, regularizers
from .models import Sequential

__all__ = ["from_keras", "to_keras"]


def _keras():
    try:
        import keras
    except ImportError as e:
        raise ImportError(
            'converting to or from keras needs TensorFlow/Keras 3: pip install "pyreg[keras]"'
        ) from e
    return keras


def _regularizer(keras_reg, what: str):
    if keras_reg is None:
        return None
    cfg = keras_reg.get_config()
    if set(cfg) - {"l1", "l2"}:
        raise ValueError(
            f"{what}: cannot represent keras regularizer {type(keras_reg).__name__} with {cfg}"
        )
    l1, l2 = float(cfg.get("l1", 0.0)), float(cfg.get("l2", 0.0))
    if l1 == 0.0:
        return regularizers.L2(l2)
    return regularizers.L1(l1) if l2 == 0.0 else regularizers.L1L2(l1=l1, l2=l2)


def _constraint(keras_constraint, what: str):
    """A keras constraint as pyreg's of the same class and config (MaxNorm, UnitNorm, NonNeg, MinMaxNorm)."""
    if keras_constraint is None:
        return None
    cls = getattr(constraints, type(keras_constraint).__name__, None)
    if not (isinstance(cls, type) and issubclass(cls, constraints.Constraint)):
        raise ValueError(
            f"{what}: cannot represent keras constraint {type(keras_constraint).__name__}"
        )
    return cls(**keras_constraint.get_config())


def _activation_name(fn, what: str) -> str:
    name = getattr(fn, "__name__", str(fn))
    if name not in ("relu", "linear", "sigmoid", "tanh", "softmax"):
        raise ValueError(f"{what}: activation {name!r} is not supported by pyreg")
    return name


def _convert_layer(kl, keras):
    kind = type(kl).__name__
    what = f"layer {kl.name!r} ({kind})"
    if isinstance(kl, keras.layers.InputLayer):
        return None
    if isinstance(kl, keras.layers.Flatten):
        return layers.Flatten(name=kl.name)
    if isinstance(kl, keras.layers.Dropout):
        if getattr(kl, "noise_shape", None) is not None:
            raise ValueError(f"{what}: noise_shape is not supported by pyreg")
        return layers.Dropout(float(kl.rate), name=kl.name)
    if isinstance(kl, keras.layers.GaussianNoise):
        return layers.GaussianNoise(float(kl.stddev), name=kl.name)
    if isinstance(kl, keras.layers.GaussianDropout):
        return layers.GaussianDropout(float(kl.rate), name=kl.name)
    if isinstance(kl, keras.layers.AlphaDropout):
        if getattr(kl, "noise_shape", None) is not None:
            raise ValueError(f"{what}: noise_shape is not supported by pyreg")
        return layers.AlphaDropout(float(kl.rate), name=kl.name)
    if isinstance(kl, keras.layers.Activation):
        return layers.Activation(_activation_name(kl.activation, what), name=kl.name)
    if type(kl) is keras.layers.Dense:
        if getattr(kl, "lora_rank", None):
            raise ValueError(f"{what}: LoRA is not supported by pyreg")
        return layers.Dense(
            kl.units,
            activation=_activation_name(kl.activation, what),
            use_bias=kl.use_bias,
            kernel_regularizer=_regularizer(kl.kernel_regularizer, what),
            bias_regularizer=_regularizer(kl.bias_regularizer, what),
            activity_regularizer=_regularizer(getattr(kl, "activity_regularizer", None), what),
            kernel_constraint=_constraint(kl.kernel_constraint, what),
            bias_constraint=_constraint(kl.bias_constraint, what),
            name=kl.name,
        )
    raise ValueError(
        f"cannot convert {what}: pyreg represents only InputLayer, Flatten, Dense, Dropout, "
        "Activation, GaussianNoise, GaussianDropout and AlphaDropout layers"
    )


def _optimizer_from_keras(opt, keras):
    cfg = opt.get_config()
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        if cfg.get(key) is not None:
            raise ValueError(f"optimizer {type(opt).__name__}: {key} is not supported by pyreg")
    if cfg.get("use_ema"):
        raise ValueError(f"optimizer {type(opt).__name__}: use_ema is not supported by pyreg")
    lr = cfg["learning_rate"]
    if isinstance(lr, dict):
        name = lr.get("class_name")
        if name not in (
            "ExponentialDecay",
            "InverseTimeDecay",
            "PiecewiseConstantDecay",
            "CosineDecay",
        ):
            raise ValueError(
                f"optimizer {type(opt).__name__}: learning-rate schedule {name} is not supported by pyreg"
            )
        lr = optimizers.schedules.deserialize({"class_name": name, "config": lr["config"]})
    else:
        lr = float(lr)
    wd = cfg.get("weight_decay")
    if isinstance(opt, keras.optimizers.AdamW):
        return optimizers.AdamW(learning_rate=lr, weight_decay=float(wd), beta_1=cfg["beta_1"],
                                beta_2=cfg["beta_2"], epsilon=cfg["epsilon"], amsgrad=cfg["amsgrad"])  # fmt: skip
    if isinstance(opt, keras.optimizers.Adam):
        return optimizers.Adam(learning_rate=lr, beta_1=cfg["beta_1"], beta_2=cfg["beta_2"],
                               epsilon=cfg["epsilon"], amsgrad=cfg["amsgrad"], weight_decay=wd)  # fmt: skip
    if isinstance(opt, keras.optimizers.SGD):
        return optimizers.SGD(learning_rate=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                              weight_decay=wd)  # fmt: skip
    raise ValueError(
        f"optimizer {type(opt).__name__} is not supported by pyreg (Adam, AdamW and SGD are)"
    )


def _loss_from_keras(loss):
    if isinstance(loss, str):
        return losses.get(loss)
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    from_logits = (
        bool(getattr(loss, "get_config", dict)().get("from_logits", False))
        if hasattr(loss, "get_config")
        else False
    )
    if name == "categorical_crossentropy":
        smoothing = (
            float(loss.get_config().get("label_smoothing", 0.0))
            if hasattr(loss, "get_config")
            else 0.0
        )
        return losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    if name == "sparse_categorical_crossentropy":
        return losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    raise ValueError(f"loss {loss!r} is not supported by pyreg")


def from_keras(keras_model) -> Sequential:
    """Builds the pyreg equivalent of a keras Sequential model, with the same weights.

    When the keras model is compiled, the pyreg model is compiled with the same optimizer settings
    (fresh state), loss and accuracy metric.

    Raises:
        ValueError: the model holds a layer or option pyreg cannot represent (named in the message).
    """
    keras = _keras()
    if not isinstance(keras_model, keras.Sequential):
        raise ValueError(
            f"from_keras converts keras.Sequential models; got {type(keras_model).__name__}"
        )
    if not keras_model.built:
        raise ValueError("from_keras needs a built keras model (give it an Input or call build())")
    converted = [
        c for c in (_convert_layer(kl, keras) for kl in keras_model.layers) if c is not None
    ]
    model = Sequential(
        [layers.Input(shape=tuple(keras_model.input_shape[1:])), *converted], name=keras_model.name
    )
    dense = [kl for kl in keras_model.layers if type(kl) is keras.layers.Dense]
    model.set_weights([np.asarray(w) for kl in dense for w in kl.get_weights()])
    if getattr(keras_model, "optimizer", None) is not None and getattr(
        keras_model, "compiled", False
    ):
        loss = keras_model.loss
        metrics = ["accuracy"]
        model.compile(optimizer=_optimizer_from_keras(keras_model.optimizer, keras), loss=_loss_from_keras(loss),
                      metrics=metrics)  # fmt: skip
    return model


def _loss_to_keras(loss, keras):
    smoothing = getattr(loss, "label_smoothing", 0.0)
    if not loss.from_logits and not smoothing:
        return loss.name
    if loss.name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(
            from_logits=loss.from_logits, label_smoothing=smoothing
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=loss.from_logits)


def to_keras(model: Sequential):
    """The keras.Sequential equivalent of a built pyreg model, with the same weights (compiled alike)."""
    keras = _keras()
    model._require_built("convert to keras")
    klayers = [keras.Input(shape=model._sample_shape)]
    for lay in model.layers:
        if isinstance(lay, layers.Flatten):
            klayers.append(keras.layers.Flatten(name=lay.name))
        elif isinstance(lay, layers.Dropout):
            klayers.append(keras.layers.Dropout(lay.rate, name=lay.name))
        elif isinstance(lay, layers.Activation):
            klayers.append(keras.layers.Activation(lay.activation, name=lay.name))
        elif isinstance(lay, layers.GaussianNoise):
            klayers.append(keras.layers.GaussianNoise(lay.stddev, name=lay.name))
        elif isinstance(lay, layers.GaussianDropout):
            klayers.append(keras.layers.GaussianDropout(lay.rate, name=lay.name))
        elif isinstance(lay, layers.AlphaDropout):
            klayers.append(keras.layers.AlphaDropout(lay.rate, name=lay.name))
        elif isinstance(lay, layers.Dense):

            def reg(r):
                return None if r is None else keras.regularizers.L1L2(l1=r.l1, l2=r.l2)

            def con(c):
                return (
                    None
                    if c is None
                    else getattr(keras.constraints, type(c).__name__)(**c.get_config())
                )

            klayers.append(keras.layers.Dense(lay.units, activation=lay.activation, use_bias=lay.use_bias,
                                              kernel_regularizer=reg(lay.kernel_regularizer),
                                              bias_regularizer=reg(lay.bias_regularizer),
                                              activity_regularizer=reg(lay.activity_regularizer),
                                              kernel_constraint=con(lay.kernel_constraint),
                                              bias_constraint=con(lay.bias_constraint), name=lay.name))  # fmt: skip
    km = keras.Sequential(klayers, name=model.name)
    km.set_weights(model.get_weights())
    if model.optimizer is not None:
        opt = model.optimizer
        cfg = {k: v for k, v in opt.get_config().items() if k != "name"}
        if isinstance(cfg["learning_rate"], dict):  # a schedule: keras' class of the same name
            sched = cfg["learning_rate"]
            cfg["learning_rate"] = getattr(keras.optimizers.schedules, sched["class_name"])(
                **sched["config"]
            )
        kopt = {
            "adam": keras.optimizers.Adam,
            "adamw": keras.optimizers.AdamW,
            "sgd": keras.optimizers.SGD,
        }[opt.kind]
        km.compile(optimizer=kopt(**cfg), loss=_loss_to_keras(model.loss, keras),
                   metrics=model._metric_names or None)  # fmt: skip
    return km
