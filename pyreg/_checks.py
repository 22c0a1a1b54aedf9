"""Argument checks shared by the public API: each raises ValueError or TypeError naming the
argument, what was expected and what was received. Conversions happen once per call, never per batch."""

from __future__ import annotations

import numbers
import operator

import numpy as np

__all__ = [
    "as_features",
    "as_labels",
    "check_bool",
    "check_choice",
    "check_float",
    "check_fraction",
    "check_int",
    "check_nonneg_float",
    "check_positive_float",
    "describe",
]


def describe(value) -> str:
    """A short description of a received value for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(
    value, name: str, *, minimum: int | None = None, allow_none: bool = False
) -> int | None:
    """An integer (bool excluded) at least `minimum`."""
    if type(value) is int and (minimum is None or value >= minimum):
        return value  # the common case, cheaply (these checks sit on kernel-call paths)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {describe(value)}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def _as_float(value, name: str) -> float:
    if type(value) is float and value - value == 0.0:  # a finite python float: the common case
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def check_float(value, name: str) -> float:
    """A finite real number."""
    return _as_float(value, name)


def check_nonneg_float(value, name: str) -> float:
    value = _as_float(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return value


def check_positive_float(value, name: str) -> float:
    value = _as_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    return value


def check_fraction(value, name: str, *, closed_right: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with closed_right)."""
    value = _as_float(value, name)
    if value < 0 or value > 1 or (value == 1 and not closed_right):
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}; got {value}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {describe(value)}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {describe(value)}")
    return value


def _as_numeric_array(x, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"{name} must be an array; got None")
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(
            f"{name} must be a rectangular numeric array; could not convert it ({e})"
        ) from e
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must have a numeric dtype (bool, int, uint or float); got dtype {a.dtype}"
        )
    return a


def as_features(x, name: str, sample_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Converts x (N, *sample_shape) to float32 (N, prod(sample_shape)), C-contiguous, finite.

    Accepts any numeric dtype and any memory layout (strided, Fortran, read-only): the data are
    copied only when dtype or layout require it, once.
    """
    return features_maybe_unchecked(x, name, sample_shape, check_finite=True)[0]


def features_maybe_unchecked(
    x,
    name: str,
    sample_shape: tuple[int, ...] | None = None,
    *,
    check_finite: bool,
    threads: int = 0,
) -> tuple[np.ndarray, bool]:
    """as_features, returning (features, checked). With check_finite=False, float32 input, whose
    NaN/Inf check would be a pass over the data of its own, is left unchecked (checked False) for the
    caller to check, e.g. the trainer while it scans the rows (Sequential.fit); other dtypes are
    checked while they are converted, and raise as in as_features. The check runs on `threads`
    threads (0: all cores), the caller's budget.
    """
    a = _as_numeric_array(x, name)
    if a.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis and at least one feature axis (ndim >= 2); got shape {a.shape}"
        )
    flat_ok = sample_shape is not None and a.ndim == 2 and a.shape[1] == int(np.prod(sample_shape))
    if sample_shape is not None and tuple(a.shape[1:]) != tuple(sample_shape) and not flat_ok:
        flat = int(np.prod(sample_shape))
        raise ValueError(
            f"{name} must have samples of shape {tuple(sample_shape)} (or {flat} features); "
            f"got shape {a.shape}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample; got shape {a.shape}")
    n = a.shape[0]
    features = int(np.prod(a.shape[1:]))
    if features == 0:
        raise ValueError(f"{name} must have at least one feature per sample; got shape {a.shape}")
    flat = a.reshape(n, features)
    if a.dtype.kind == "f":
        from . import _core

        if a.dtype not in (np.float32, np.float64):  # float16, longdouble: through float64
            flat = flat.astype(np.float64)
        flat = np.ascontiguousarray(flat)
        if flat.dtype == np.float32 and not check_finite:
            return flat, False
        # checks NaN/Inf (and float32 overflow) in one threaded pass
        out, bad = _core.prepare_features(flat, threads=threads)
        if bad >= 0:
            where = np.unravel_index(int(bad), a.shape)
            value = a[where]
            what = "finite" if not np.isfinite(value) else "within float32's range (|x| <= 3.4e38)"
            raise ValueError(
                f"{name} must be {what}; got {value} at index {tuple(map(int, where))}"
            )
        return out, True
    return np.ascontiguousarray(flat, dtype=np.float32), True


def as_labels(y, name: str, n: int, num_classes: int, *, one_hot: bool = False) -> np.ndarray:
    """Converts integer class labels (N,) or (N, 1) -- or one-hot rows (N, K) when one_hot -- to int32."""
    a = _as_numeric_array(y, name)
    if one_hot:
        if a.ndim != 2 or a.shape[1] != num_classes:
            raise ValueError(
                f"{name} must be one-hot rows of shape ({n}, {num_classes}); got shape {a.shape}"
            )
        if not (np.isin(a, (0, 1)).all() and (a.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{name} must be one-hot (exactly one 1 per row, zeros elsewhere) for categorical_crossentropy; "
                "soft labels are not supported"
            )
        a = np.argmax(a, axis=1)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be integer class labels of shape ({n},); got shape {a.shape}"
        )
    if a.shape[0] != n:
        raise ValueError(
            f"x and {name} must have the same number of samples; got {n} and {a.shape[0]}"
        )
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must be finite class indices; got NaN or Inf")
        if not (a == np.floor(a)).all():
            i = int(np.argmax(a != np.floor(a)))
            raise ValueError(f"{name} must hold integer class indices; got {a[i]} at index {i}")
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    lo, hi = (a.min(), a.max()) if a.size else (0, 0)
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        i = int(np.argmax(a == bad))
        raise ValueError(
            f"{name} must be class indices in [0, {num_classes}); got {bad} at index {i}"
        )
    return np.ascontiguousarray(a, dtype=np.int32)
