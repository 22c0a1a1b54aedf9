"""Optimizers with keras 3's exact update rules (``keras.optimizers``), run natively.

=========  ===============================================================================
Adam       t = iterations + 1; alpha = lr·sqrt(1 - beta_2^t) / (1 - beta_1^t);
           m += (g - m)(1 - beta_1); v += (g² - v)(1 - beta_2); w -= m·alpha / (sqrt(v) + epsilon)
AdamW      Adam with decoupled ``weight_decay`` (default 0.004): w -= w·weight_decay·lr first
SGD        m = m·momentum - g·lr; w += m  (nesterov: w += m·momentum - g·lr); no momentum: w -= g·lr
=========  ===============================================================================

Every optimizer takes keras' ``weight_decay=`` (decoupled, applied to every weight before the
step, not part of the loss), unlike the coupled L2 penalty of ``pyreg.regularizers.l2``.
``epsilon`` defaults to 1e-7 and sits outside the square root ("epsilon hat"), as in keras.

``learning_rate`` is a number or a schedule of ``pyreg.optimizers.schedules``; with a schedule,
step k uses ``schedule(k)`` (k = ``iterations`` before the step), computed natively at every step.
Setting ``optimizer.learning_rate`` applies from the next step and keeps the optimizer's state.
"""

from __future__ import annotations

from .._checks import check_bool, check_fraction, check_nonneg_float, check_positive_float, describe
from . import schedules

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "get", "schedules"]

# keras options pyreg does not implement, with the values that mean "off" (accepted and ignored)
_UNSUPPORTED = {"clipnorm": (None,), "clipvalue": (None,), "global_clipnorm": (None,), "use_ema": (False,),
                "loss_scale_factor": (None,), "gradient_accumulation_steps": (None, 1)}  # fmt: skip


def _check_learning_rate(learning_rate):
    """A number >= 0 or one of pyreg.optimizers.schedules' schedules."""
    if isinstance(learning_rate, schedules.LearningRateSchedule):
        if not schedules.is_native(learning_rate):
            raise NotImplementedError(
                "learning_rate: only the schedules of pyreg.optimizers.schedules run natively (a subclass "
                f"with its own __call__ is not supported); got {describe(learning_rate)}"
            )
        return learning_rate
    if callable(learning_rate):
        raise NotImplementedError(
            "learning_rate as a plain callable is not supported; pass a number or a schedule from "
            f"pyreg.optimizers.schedules; got {describe(learning_rate)}"
        )
    if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool):
        raise TypeError(
            "learning_rate must be a number or a pyreg.optimizers.schedules schedule; got "
            f"{describe(learning_rate)}"
        )
    return check_nonneg_float(learning_rate, "learning_rate")


class Optimizer:
    """Base class. After ``model.compile(optimizer=...)`` its state lives in the native model."""

    kind = ""

    def __init__(self, learning_rate, weight_decay=None, name=None, **kwargs):
        for key, value in kwargs.items():
            if key in _UNSUPPORTED:
                if not any(
                    value is off or (type(value) is int and value == off)
                    for off in _UNSUPPORTED[key]
                ):
                    raise NotImplementedError(
                        f"pyreg's optimizers do not implement {key}={value!r}"
                    )
            elif key not in ("ema_momentum", "ema_overwrite_frequency"):
                raise TypeError(
                    f"{type(self).__name__}() got an unexpected keyword argument {key!r}"
                )
        self._learning_rate = _check_learning_rate(learning_rate)
        self.weight_decay = (
            None if weight_decay is None else check_nonneg_float(weight_decay, "weight_decay")
        )
        self.name = name or type(self).__name__.lower()
        self._model = None  # the Sequential that owns the state, once compiled

    @property
    def learning_rate(self):
        """The learning rate: the number given, or with a schedule its float32 value at
        ``iterations`` (the next step's, as keras reads it between steps)."""
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            return lr(self.iterations)
        return lr

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        """A new learning rate from the next step on; the moments and ``iterations`` are kept."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule) and not isinstance(
            value, schedules.LearningRateSchedule
        ):
            raise TypeError(
                "learning_rate: this optimizer was created with a LearningRateSchedule, so its learning "
                f"rate cannot be set to a number; got {describe(value)}"
            )
        value = _check_learning_rate(value)
        mlp = None if self._model is None else self._model._mlp
        if mlp is not None:
            if isinstance(value, schedules.LearningRateSchedule):
                mlp.set_learning_rate(0.0, value._native_args())
            else:
                mlp.set_learning_rate(value)
        self._learning_rate = value

    def _lr_args(self) -> dict:
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            return dict(learning_rate=0.0, schedule=lr._native_args())
        return dict(learning_rate=lr)

    def _lr_config(self):
        lr = self._learning_rate
        return schedules.serialize(lr) if isinstance(lr, schedules.LearningRateSchedule) else lr

    @property
    def iterations(self) -> int:
        """Optimizer steps taken (keras' ``optimizer.iterations``)."""
        if self._model is None or self._model._mlp is None:
            return 0
        return int(self._model._mlp.iterations)

    def _native_args(self) -> dict:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam (Kingma & Ba) exactly as keras 3 computes it (see the module docstring)."""

    kind = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, name=None, **kwargs):  # fmt: skip
        super().__init__(learning_rate, weight_decay, name, **kwargs)
        self.beta_1 = check_fraction(beta_1, "beta_1")
        self.beta_2 = check_fraction(beta_2, "beta_2")
        self.epsilon = check_positive_float(epsilon, "epsilon")
        self.amsgrad = check_bool(amsgrad, "amsgrad")

    def _native_args(self) -> dict:
        return dict(kind="adam", **self._lr_args(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon, amsgrad=self.amsgrad, weight_decay=self.weight_decay or 0.0)  # fmt: skip

    def get_config(self) -> dict:
        return dict(name=self.name, learning_rate=self._lr_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon, amsgrad=self.amsgrad, weight_decay=self.weight_decay)  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (keras' AdamW: ``weight_decay`` defaults to 0.004)."""

    kind = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name=None, **kwargs):  # fmt: skip
        if weight_decay is None:
            raise ValueError("weight_decay must be a number for AdamW; got None")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name, **kwargs
        )


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, keras' formulation."""

    kind = "sgd"

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate, weight_decay, name, **kwargs)
        self.momentum = check_fraction(momentum, "momentum", closed_right=True)
        self.nesterov = check_bool(nesterov, "nesterov")

    def _native_args(self) -> dict:
        return dict(kind="sgd", **self._lr_args(), momentum=self.momentum,
                    nesterov=self.nesterov, weight_decay=self.weight_decay or 0.0)  # fmt: skip

    def get_config(self) -> dict:
        return dict(name=self.name, learning_rate=self._lr_config(), momentum=self.momentum,
                    nesterov=self.nesterov, weight_decay=self.weight_decay)  # fmt: skip


_BY_NAME = {"adam": Adam, "adamw": AdamW, "sgd": SGD}


def get(identifier) -> Optimizer:
    """'adam', 'adamw', 'sgd' (keras' defaults) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        f"optimizer must be 'adam', 'adamw', 'sgd' or a pyreg.optimizers instance; got {describe(identifier)}"
    )
