"""Argument checks shared by the magnetic-hyperthermia physics formulas.

Every public formula in :mod:`mhimmune.mh.magnetism`, :mod:`mhimmune.mh.field_safety`,
:mod:`mhimmune.mh.thermal_dose` and :mod:`mhimmune.mh.bioheat` validates its inputs here:
numbers become float arrays checked against their allowed range (a
:class:`~mhimmune.core.errors.ParameterError` names the argument, its unit and the range),
and 0-d results are returned as Python floats.
"""

from __future__ import annotations

import numpy as np

from mhimmune.core.errors import ParameterError

__all__ = ["as_array", "scalar_or_array", "temperature_history"]


def as_array(
    value,
    name: str,
    unit: str,
    *,
    lo: float | None = None,
    lo_open: bool = False,
    hi: float | None = None,
    hi_open: bool = False,
) -> np.ndarray:
    """Convert *value* to a float array, raising ParameterError naming *name* when out of range."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: expected a number in {unit}, got {value!r}") from None
    if np.any(np.isnan(arr)):
        raise ParameterError(f"{name}: NaN is not allowed ({unit})")
    lo_txt = "" if lo is None else f"{'>' if lo_open else '≥'} {lo:g}"
    hi_txt = "" if hi is None else f"{'<' if hi_open else '≤'} {hi:g}"
    allowed = " and ".join(t for t in (lo_txt, hi_txt) if t) or "finite"
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr <= lo) if lo_open else (arr < lo)
    if hi is not None:
        bad |= (arr >= hi) if hi_open else (arr > hi)
    if np.any(bad):
        first = arr[bad].flat[0]
        unit_txt = (f" ({unit})" if allowed == "finite" else f" {unit}") if unit else ""
        raise ParameterError(f"{name}: must be {allowed}{unit_txt}, got {first:g}")
    return arr


def scalar_or_array(arr: np.ndarray):
    """Return a Python float for 0-d results and the array otherwise."""
    arr = np.asarray(arr)
    return float(arr) if arr.ndim == 0 else arr


def temperature_history(
    time, temperature_C, time_name: str, time_unit: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a sampled temperature history (1-D, same length, non-decreasing time)."""
    t = as_array(time, time_name, time_unit)
    temp = as_array(temperature_C, "temperature_C", "°C", lo=-273.15, lo_open=True)
    if t.ndim != 1 or temp.ndim != 1 or t.size != temp.size or t.size == 0:
        raise ParameterError(
            f"{time_name} and temperature_C: must be 1-D sequences of the same "
            f"non-zero length, got shapes {t.shape} and {temp.shape}"
        )
    if not np.all(np.isfinite(t)) or not np.all(np.isfinite(temp)):
        raise ParameterError(f"{time_name} and temperature_C: must be finite")
    if np.any(np.diff(t) < 0):
        raise ParameterError(
            f"{time_name}: must be non-decreasing ({time_unit}); repeat a time "
            f"to encode a step change of temperature"
        )
    return t, temp
