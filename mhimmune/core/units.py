"""Units at the boundary: one pint registry and helpers that parse user quantities.

Inside mhimmune every number is a bare float in one documented unit system:

==================  =================================================
quantity            internal unit
==================  =================================================
time                hour (``h``); results report days
temperature         degree Celsius
field amplitude     kA/m
field frequency     kHz
particle dose       mg Fe per cm³ of tumour
concentrations      µM inside cells; nM for antibody in plasma
tumour size         mm³ (cells are counted as volume, see parameters)
immune cells        10⁶ cells
==================  =================================================

Public functions and files take pint-parsable strings (``"30 min"``, ``"20 kA/m"``,
``"300 kHz"``, ``"10 mg/kg"``) or :class:`pint.Quantity` objects and convert them here.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pint

from mhimmune.core.errors import UnitError

ureg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.define("fraction = [] = frac")
ureg.define("percent_ = 0.01 fraction")
ureg.define("cell = [] ")
ureg.define("Mcell = 1e6 cell")
Q_ = ureg.Quantity

__all__ = ["ureg", "Q_", "to_quantity", "convert", "parse_unit", "cached_unit"]


@functools.lru_cache(maxsize=512)
def cached_unit(text: str) -> pint.Unit:
    """The pint unit of *text* (``"kA/m"``), parsed once and remembered.

    ``ureg.Quantity(x, cached_unit("h"))`` and ``q.to(cached_unit("kA/m"))`` give the
    same quantities as passing the strings, without pint's unit parser (about 0.1 ms per
    call); for code that builds many quantities in the same few units (protocol
    templates, conversions of protocol fields).
    """
    return ureg.Unit(text)


def parse_unit(unit: str, field: str = "unit") -> pint.Unit:
    """Parse a unit string such as ``"1/M/s"``; raise :class:`UnitError` naming *field*."""
    try:
        return ureg.Unit(str(unit).strip() or "dimensionless")
    except Exception as exc:  # pint raises several unrelated types
        raise UnitError(f"{field}: unknown unit {unit!r} ({exc})") from None


def to_quantity(value: Any, field: str, default_unit: str | None = None) -> pint.Quantity:
    """Turn a user value into a pint quantity.

    Parameters
    ----------
    value
        A string with a unit (``"30 min"``), a :class:`pint.Quantity`, or a bare number
        when *default_unit* is given.
    field
        The name of the field, used in error messages.
    default_unit
        Unit given to bare numbers; when ``None`` a bare number is an error.
    """
    if isinstance(value, pint.Quantity):
        q = value
    elif isinstance(value, str):
        try:
            q = ureg.Quantity(value.strip())
        except Exception:
            raise UnitError(
                f"{field}: cannot parse {value!r} as a quantity with a unit "
                f"(e.g. '30 min', '20 kA/m')"
            ) from None
        if not isinstance(q, pint.Quantity):  # a bare number in a string
            q = ureg.Quantity(q)
        if q.dimensionless and default_unit is not None and not _has_units(value):
            q = ureg.Quantity(q.magnitude, default_unit)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if default_unit is None:
            raise UnitError(f"{field}: {value!r} needs a unit (e.g. '{value} min')")
        q = ureg.Quantity(float(value), _target_unit(default_unit))
    else:
        raise UnitError(f"{field}: expected a quantity such as '30 min', got {value!r}")
    return q


def _has_units(text: str) -> bool:
    return any(ch.isalpha() or ch in "%°µ" for ch in text.replace("e", "").replace("E", ""))


def convert(value: Any, unit: str, field: str, default_unit: str | None = None) -> float:
    """Convert a user value to a bare float in *unit*.

    Raises :class:`UnitError` naming *field* when the value has no unit (and no
    *default_unit*), the unit is unknown, or its dimension differs from *unit*'s.
    Strings (``"0.25 d"``) are parsed once and remembered: simulations repeat the same
    few option strings, and pint's parser costs about a millisecond per call.
    """
    if isinstance(value, str):
        return _convert_text(value, unit, field, default_unit)
    return _convert(value, unit, field, default_unit)


@functools.lru_cache(maxsize=1024)
def _convert_text(value: str, unit: str, field: str, default_unit: str | None) -> float:
    return _convert(value, unit, field, default_unit)


def _target_unit(text: str) -> Any:
    """*text* as a cached pint unit, or the text itself when pint cannot parse it (pint's
    conversion then raises its own error, as before)."""
    try:
        return cached_unit(text)
    except Exception:  # pint raises several unrelated types
        return text


@functools.lru_cache(maxsize=1024)
def _scale_factor(units: pint.Unit, unit: str) -> float | None:
    """The factor that converts a number in *units* to *unit* when the conversion is a
    pure scaling (1 for equal units), else ``None`` (offset units such as degC, other
    dimensions, units pint cannot parse: those take pint's own conversion)."""
    try:
        target = _target_unit(unit)
        one = float(ureg.Quantity(1.0, units).to(target).magnitude)
        two = float(ureg.Quantity(2.0, units).to(target).magnitude)
    except Exception:  # pint raises several unrelated types
        return None
    return one if one != 0.0 and two == 2.0 * one else None


def _convert(value: Any, unit: str, field: str, default_unit: str | None) -> float:
    q = to_quantity(value, field, default_unit)
    magnitude = q.magnitude
    if isinstance(magnitude, float | int) and not isinstance(magnitude, bool):
        factor = _scale_factor(q.units, unit)
        if factor is not None:  # a scaling: no pint conversion per call
            out = magnitude * factor
            if math.isnan(out):
                raise UnitError(f"{field}: value is NaN")
            return float(out)
    try:
        out = float(q.to(_target_unit(unit)).magnitude)
    except pint.DimensionalityError:
        raise UnitError(
            f"{field}: {value!s} cannot be converted to {unit} "
            f"(dimension {q.dimensionality} is not {ureg.Unit(unit).dimensionality})"
        ) from None
    if math.isnan(out):
        raise UnitError(f"{field}: value is NaN")
    return out


#: hours in a day: the engine's time unit is the hour; tables and plots speak in days
HOURS_PER_DAY = 24.0


def days_to_hours(days: Any) -> Any:
    """Convert a time in days (float or array) to the engine's hours."""
    return days * HOURS_PER_DAY


def hours_to_days(hours: Any) -> Any:
    """Convert the engine's hours (float or array) to days, for tables and plots."""
    return hours / HOURS_PER_DAY
