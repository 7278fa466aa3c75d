"""Checks of the inputs of the trial statistics (numbers, arrays, volumes, survival data).

Each function returns its input converted (a float, an int, a float array, ...) or raises
:class:`~mhimmune.core.errors.ParameterError` naming the argument and its allowed range;
no value is silently clipped or dropped. Used by :mod:`~mhimmune.studies.proportions` and
:mod:`~mhimmune.studies.survival`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError

__all__ = [
    "BOUNDARY_RTOL",
    "finite_scalar",
    "confidence_level",
    "float_array",
    "index_text",
    "volume_array",
    "survival_data",
    "group_codes",
    "count_value",
]

#: relative tolerance of the RECIST and median comparisons, so that a value written
#: exactly on a boundary in decimal (34.3 mm³ from 100 mm³) is classified as on it
BOUNDARY_RTOL = 1e-9


# ----------------------------------------------------------------------- validation


def finite_scalar(
    value,
    name: str,
    *,
    lower: float | None = None,
    lower_open: bool = False,
    upper: float | None = None,
    upper_open: bool = False,
) -> float:
    """*value* as a finite float within the given bounds, else a ParameterError."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ParameterError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    lo = "-inf" if lower is None else f"{lower:g}"
    hi = "inf" if upper is None else f"{upper:g}"
    left = "(" if lower is None or lower_open else "["
    right = ")" if upper is None or upper_open else "]"
    rng = f"{left}{lo}, {hi}{right}"
    if not math.isfinite(v):
        raise ParameterError(f"{name}: must be a finite number in {rng}, got {v}")
    if lower is not None and (v < lower or (lower_open and v == lower)):
        raise ParameterError(f"{name}: must be in {rng}, got {v:g}")
    if upper is not None and (v > upper or (upper_open and v == upper)):
        raise ParameterError(f"{name}: must be in {rng}, got {v:g}")
    return v


def confidence_level(confidence) -> float:
    return finite_scalar(
        confidence, "confidence", lower=0.0, lower_open=True, upper=1.0, upper_open=True
    )


def float_array(values, name: str) -> np.ndarray:
    """*values* as a float array; text or other non-numbers raise a ParameterError."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: expected numbers, got {values!r:.80}") from None
    return arr


def index_text(mask: np.ndarray) -> str:
    """The first True position of *mask*, as ``5`` (1-D) or ``(2, 7)`` (n-D)."""
    if mask.ndim == 0:
        return "0"
    pos = tuple(int(i) for i in np.argwhere(mask)[0])
    return str(pos[0]) if len(pos) == 1 else str(pos)


def volume_array(values, name: str) -> np.ndarray:
    """Tumour volumes: finite and >= 0 (NaN is an error, never classified)."""
    arr = float_array(values, name)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(
            f"{name}: must be finite volumes >= 0 (mm^3); got {arr[bad][0]} at index "
            f"{index_text(bad)} ({int(bad.sum())} non-finite value(s))"
        )
    neg = arr < 0
    if neg.any():
        raise ParameterError(
            f"{name}: volumes must be >= 0 mm^3; got {arr[neg][0]:g} at index "
            f"{index_text(neg)} ({int(neg.sum())} negative value(s))"
        )
    return arr


def survival_data(times, events) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-D (times, events): times finite >= 0, events bool (or 0/1)."""
    t = float_array(times, "times")
    if t.ndim != 1:
        raise ParameterError(f"times: expected a 1-D array, got shape {t.shape}")
    if t.size == 0:
        raise ParameterError("times: need at least one subject, got an empty array")
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"times: must be finite and >= 0; got {t[i]} at index {i}")
    e_raw = np.asarray(events)
    if e_raw.dtype == bool:
        e = e_raw
    else:
        e_num = float_array(events, "events")
        if e_num.ndim == 1 and not np.isin(e_num, (0.0, 1.0)).all():
            i = int(np.flatnonzero(~np.isin(e_num, (0.0, 1.0)))[0])
            raise ParameterError(
                f"events: must be booleans or 0/1 (1 = event, 0 = censored); "
                f"got {e_num[i]} at index {i}"
            )
        e = e_num == 1.0
    if e.ndim != 1 or e.shape != t.shape:
        raise ParameterError(
            f"events: expected a 1-D array of the length of times ({t.size}), got shape {e.shape}"
        )
    return t, e


def group_codes(groups, n: int) -> tuple[np.ndarray, pd.Index]:
    """Integer codes 0..k-1 and the labels of *groups* (sorted, or category order)."""
    g = (
        groups
        if isinstance(groups, (pd.Categorical, pd.Series, pd.Index, np.ndarray))
        else np.asarray(groups, dtype=object)
    )
    if np.ndim(g) != 1 or len(g) != n:
        raise ParameterError(
            f"groups: expected a 1-D array of the length of times ({n}), got shape {np.shape(g)}"
        )
    try:
        codes, labels = pd.factorize(g, sort=True)
    except TypeError:  # labels that cannot be sorted: order of appearance
        codes, labels = pd.factorize(g, sort=False)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise ParameterError(f"groups: missing label (NaN/None) at index {i}")
    return np.asarray(codes, dtype=np.intp), pd.Index(labels, name="group")


# ----------------------------------------------------------------------- proportions


def count_value(value, name: str) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{name}: expected an integer count, got {value!r}")
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(math.trunc(value))
    raise ParameterError(f"{name}: expected an integer count, got {value!r}")
