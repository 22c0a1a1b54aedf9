"""A sweep's specification: the grid's axes, seeds and held-out validation size, from command-line
strings, a dict or a TOML file, checked before any trial starts.

Every check raises ``ValueError`` with one line naming the axis (as the CLI spells it) and what was
expected, so ``pyreg sweep`` can print it and exit before it trains anything.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from .records import AXES

__all__ = ["DEFAULT_AXES", "SweepSpec", "load_spec_file", "parse_axis"]

# the default study: an unregularised net that overfits 3,000 training images, and its cures
DEFAULT_AXES: dict[str, list] = {
    "dataset": ["mnist"],
    "l2": [0.0, 1e-4, 3e-4, 1e-3, 3e-3],
    "dropout": [0.0, 0.2, 0.4, 0.6],
    "weight_decay": [0.0],
    "units": [128],
    "epochs": [80],
    "train_size": [3_000],
    "batch_size": [32],
    "learning_rate": [0.001],
}
DEFAULT_SEEDS = 5
DEFAULT_VALIDATION_SIZE = 10_000

_INT_AXES = ("units", "epochs", "train_size", "batch_size")
_FLOAT_AXES = ("l2", "dropout", "weight_decay", "learning_rate")
_SETTINGS = ("seeds", "validation_size", "keras")


def _flag(axis: str) -> str:
    return "--" + axis.replace("_", "-")


def _number(value, axis: str):
    """One value of a numeric axis, converted and range-checked."""
    flag = _flag(axis)
    if axis in _INT_AXES:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{flag}: expected positive integers; got {value!r}")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            raise ValueError(f"{flag}: expected positive integers; got {value!r}")
        if number < 1:
            raise ValueError(f"{flag}: expected positive integers; got {number}")
        return number
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{flag}: expected numbers; got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{flag}: expected numbers; got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{flag}: expected finite numbers; got {value!r}")
    if axis == "dropout" and not 0.0 <= number < 1.0:
        raise ValueError(f"{flag}: a dropout rate must be in [0, 1); got {number:g}")
    if axis in ("l2", "weight_decay") and number < 0:
        raise ValueError(f"{flag}: must be >= 0; got {number:g}")
    if axis == "learning_rate" and number <= 0:
        raise ValueError(f"{flag}: must be > 0; got {number:g}")
    return number


def parse_axis(axis: str, values) -> list:
    """An axis' values from a comma-separated string or a list, converted, checked, de-duplicated."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; the axes are {', '.join(AXES)}")
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    if not values:
        raise ValueError(f"{_flag(axis)}: no values given (the grid would be empty)")
    if axis == "dataset":
        from .data import DATASETS

        out = []
        for v in values:
            if v not in DATASETS:
                raise ValueError(
                    f"--dataset: unknown data set {v!r}; available: {', '.join(DATASETS)}"
                )
            out.append(str(v))
    else:
        out = [_number(v, axis) for v in values]
    return list(dict.fromkeys(out))  # keep the order given, drop repeats


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer; got {value!r}")
    return value


@dataclass
class SweepSpec:
    """The grid (one list of values per axis), seeds per cell and the held-out validation size.

    A sweep chooses on validation data held out from the training set: the first
    ``validation_size`` images of a fixed permutation of the training set; the training subsets
    are the next ``train_size`` images (nested: a smaller subset is part of a larger one).
    """

    axes: dict[str, list] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_AXES.items()}
    )
    seeds: int = DEFAULT_SEEDS
    validation_size: int = DEFAULT_VALIDATION_SIZE
    keras: bool = False

    @classmethod
    def from_dict(cls, values: dict | None = None, **settings) -> SweepSpec:
        """A spec from ``{axis: values}`` (unnamed axes keep their defaults) and settings
        (``seeds``, ``validation_size``, ``keras``); everything is checked."""
        values = dict(values or {})
        values.update(settings)
        spec = cls()
        for key, value in values.items():
            if key in _SETTINGS:
                continue
            spec.axes[key] = parse_axis(key, value)
        if "seeds" in values:
            spec.seeds = _positive_int(values["seeds"], "--seeds")
        if "validation_size" in values:
            spec.validation_size = _positive_int(values["validation_size"], "--validation-size")
        if "keras" in values:
            if not isinstance(values["keras"], bool):
                raise ValueError(f"keras: expected true or false; got {values['keras']!r}")
            spec.keras = values["keras"]
        spec.check_sizes()
        return spec

    def check_sizes(self) -> None:
        """Each data set must hold the validation set plus the largest training subset."""
        from .data import train_rows

        for name in self.axes["dataset"]:
            rows = train_rows(name)
            if self.validation_size >= rows:
                raise ValueError(
                    f"--validation-size: {name} has {rows} training images; got {self.validation_size}"
                )
            room = rows - self.validation_size
            too_big = [n for n in self.axes["train_size"] if n > room]
            if too_big:
                raise ValueError(
                    f"--train-size: {name} has {rows} training images, {self.validation_size} held out "
                    f"for validation, so at most {room}; got {max(too_big)}"
                )

    def cells(self) -> list[dict]:
        """Every combination of the axes' values (a config without seed or framework)."""
        keys = list(AXES)
        return [
            dict(zip(keys, combo)) for combo in itertools.product(*(self.axes[k] for k in keys))
        ]

    def configs(self) -> list[dict]:
        """Every trial: each cell for each seed and framework (pyreg first, then Keras if asked)."""
        frameworks = ("pyreg", "keras") if self.keras else ("pyreg",)
        return [{"framework": fw, **cell, "seed": seed}
                for fw in frameworks for cell in self.cells() for seed in range(self.seeds)]  # fmt: skip

    def describe(self) -> str:
        varying = {k: v for k, v in self.axes.items() if len(v) > 1}
        fixed = {k: v[0] for k, v in self.axes.items() if len(v) == 1}
        parts = [f"{k}={','.join(f'{x:g}' if isinstance(x, float) else str(x) for x in v)}"
                 for k, v in varying.items()]  # fmt: skip
        parts += [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in fixed.items()]
        return f"{len(self.cells())} cells x {self.seeds} seeds: " + " ".join(parts)


def load_spec_file(path) -> dict:
    """The values of a TOML spec file: axes (lists or single values) and settings, top level or
    under ``[sweep]``. Raises ValueError for an unreadable or malformed file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib

    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read the spec file {path}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a valid TOML spec: {e}") from None
    if "sweep" in data:
        if not isinstance(data["sweep"], dict) or len(data) > 1:
            raise ValueError(f"{path}: put everything under one [sweep] table, or nothing")
        data = data["sweep"]
    unknown = [k for k in data if k not in AXES and k not in _SETTINGS]
    if unknown:
        raise ValueError(
            f"{path}: unknown key {unknown[0]!r}; the axes are {', '.join(AXES)} and the settings "
            f"{', '.join(_SETTINGS)}"
        )
    return data
