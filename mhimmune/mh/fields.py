"""Fields of protocol intervention kinds: their specifications, parsing and text output.

:class:`FieldSpec` says how one key of an intervention is parsed (unit, range, default),
:class:`KindSpec` describes one intervention kind; :func:`parse_quantity` and
:func:`parse_field` turn user values into internal units (every error a
:class:`~mhimmune.core.errors.ProtocolError` starting with the field's path), and
:func:`format_time` / :func:`format_value` write internal values back as text.
:mod:`mhimmune.mh.kinds` lists the kinds themselves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pint

from mhimmune.core.errors import ProtocolError, UnitError
from mhimmune.core.units import HOURS_PER_DAY, convert, hours_to_days, to_quantity
from mhimmune.mh.agents import get_agent

__all__ = [
    "FieldSpec",
    "KindSpec",
    "Dose",
    "MAX_DURATION_H",
    "day_text",
    "format_number",
    "parse_quantity",
    "parse_field",
    "quick_field",
    "NOT_QUICK",
    "format_time",
    "format_value",
]

_REQUIRED = object()


@dataclass(frozen=True)
class FieldSpec:
    """How one key of an intervention is parsed and which values it accepts.

    Parameters
    ----------
    kind
        ``"quantity"`` (a value with a unit), ``"agent"`` (a catalogue name),
        ``"choice"`` (one of *choices*) or ``"count"`` (an integer ≥ 1).
    unit
        Internal unit a quantity is converted to (e.g. ``"h"``, ``"kA/m"``).
    example
        Example value shown in error messages (``"7 d"``).
    minimum, maximum
        Allowed range in *unit*; *min_open* makes the lower bound strict (``> minimum``).
    choices
        Allowed strings for ``"choice"`` fields.
    default
        Value used when the key is absent; required keys have no default.
    alt_unit
        A second accepted unit of a different dimension (a particle dose in mg/kg
        instead of mg/cm³); such fields parse into a :class:`Dose`.
    """

    kind: str
    unit: str | None = None
    example: str = ""
    minimum: float | None = None
    min_open: bool = True
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    default: Any = _REQUIRED
    alt_unit: str | None = None

    @property
    def required(self) -> bool:
        """True when the key must be given."""
        return self.default is _REQUIRED


@dataclass(frozen=True)
class Dose:
    """A quantity that may come in one of two units (value in *unit*)."""

    value: float
    unit: str

    def __str__(self) -> str:
        return f"{format_number(self.value)} {self.unit}"


@dataclass(frozen=True)
class KindSpec:
    """Description of one intervention kind.

    Parameters
    ----------
    fields
        Keys of the kind mapped to their :class:`FieldSpec`, in documentation order.
    time_key
        Key holding the start time of the event (``"start"`` or ``"time"``).
    amount_key
        Key holding the amount (dose or volume).
    amount_unit
        Internal unit of the amount (``"mg/cm^3"``, ``"mg/kg"``, ``"mm^3"``).
    summary
        One line of what the builder method of the kind does.
    docs
        ``(keys, description)`` pairs documenting the builder's parameters; *keys* may
        name several keys (``"every, count"``).
    """

    fields: Mapping[str, FieldSpec]
    time_key: str
    amount_key: str
    amount_unit: str
    summary: str = ""
    docs: tuple[tuple[str, str], ...] = ()

    def docstring(self) -> str:
        """Numpydoc docstring of the kind's builder method."""
        lines = [self.summary, "", "Parameters", "----------"]
        for keys, text in self.docs:
            lines += [keys, *(f"    {line}" for line in text.splitlines())]
        return "\n".join(lines) + "\n"

    def annotation(self, key: str) -> str:
        """Type annotation of *key* in the builder's signature."""
        spec = self.fields[key]
        if spec.kind in ("agent", "choice"):
            return "str"
        if spec.kind == "count":
            return "int"
        if spec.kind == "fraction":
            return "float | None"
        return "Any"


#: longest protocol (and any time in it): 5 years, in hours; a mouse lives about 2-3 years
MAX_DURATION_H = 5 * 365.25 * HOURS_PER_DAY


# ----------------------------------------------------------------------------- parsing


def day_text(t_h: float) -> str:
    """``day 7.00`` for a time in hours."""
    return f"day {hours_to_days(t_h):.2f}"


def format_number(x: float) -> str:
    """Shortest exact text of a float, without a trailing ``.0``."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _range_text(spec: FieldSpec) -> str:
    """The allowed range of a quantity field, e.g. ``> 0 kA/m and ≤ 100 kA/m``."""
    parts = []
    if spec.minimum is not None:
        parts.append(f"{'>' if spec.min_open else '≥'} {format_number(spec.minimum)} {spec.unit}")
    if spec.maximum is not None:
        years = f" ({spec.maximum / HOURS_PER_DAY / 365.25:g} years)" if spec.unit == "h" else ""
        parts.append(f"≤ {format_number(spec.maximum)} {spec.unit}{years}")
    return " and ".join(parts)


def parse_quantity(value: Any, spec: FieldSpec, path: str) -> Any:
    """Convert *value* to a float in ``spec.unit`` and check its range; errors name *path*."""
    unit_hint = spec.example.split(" ", 1)[1]
    if isinstance(value, bool) or not isinstance(value, (str, int, float, pint.Quantity)):
        raise ProtocolError(
            f"{path}: expected a quantity with a unit such as '{spec.example}', got {value!r}"
        )
    if isinstance(value, (int, float)):
        shown = str(value) if isinstance(value, int) else format_number(value)
        raise ProtocolError(f"{path}: {shown} needs a unit, e.g. '{shown} {unit_hint}'")
    try:
        q = to_quantity(value, path)
    except UnitError as exc:
        raise ProtocolError(str(exc)) from None
    magnitude = q.magnitude
    if not isinstance(magnitude, numbers.Real):
        raise ProtocolError(
            f"{path}: expected a single number with a unit such as '{spec.example}', got {value!r}"
        )
    if not list(q.unit_items()):
        shown = value.strip() if isinstance(value, str) else format_number(float(magnitude))
        raise ProtocolError(f"{path}: {shown} needs a unit, e.g. '{shown} {unit_hint}'")
    if not math.isfinite(magnitude):
        raise ProtocolError(f"{path}: must be a finite number {_range_text(spec)} (got {q})")
    unit = str(spec.unit)
    try:
        x = convert(value, unit, path)
    except UnitError as exc:
        if spec.alt_unit is None:
            raise ProtocolError(
                f"{exc}; give it in {spec.unit}-compatible units, e.g. '{spec.example}'"
            ) from None
        try:
            unit, x = spec.alt_unit, convert(value, spec.alt_unit, path)
        except UnitError:
            raise ProtocolError(
                f"{path}: {value!s} is neither {spec.unit} nor {spec.alt_unit}; "
                f"e.g. '{spec.example}' or '10 {spec.alt_unit}'"
                + (" with an uptake fraction" if spec.alt_unit == "mg/kg" else "")
            ) from None
    low_bad = spec.minimum is not None and (
        x <= spec.minimum if spec.min_open else x < spec.minimum
    )
    high_bad = spec.maximum is not None and x > spec.maximum
    if low_bad or high_bad:
        raise ProtocolError(f"{path}: must be {_range_text(spec)} (got {q})")
    return Dose(x, unit) if spec.alt_unit is not None else x


def parse_field(value: Any, spec: FieldSpec, path: str) -> Any:
    """Parse one user value according to *spec*; errors name *path*."""
    if spec.kind == "quantity":
        return parse_quantity(value, spec, path)
    if spec.kind == "fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1):
            raise ProtocolError(f"{path}: must be a fraction in (0, 1] (got {value!r})")
        return float(value)
    if spec.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProtocolError(f"{path}: must be an integer ≥ 1 (got {value!r})")
        return int(value)
    if spec.kind == "agent":
        if not isinstance(value, str):
            raise ProtocolError(
                f"{path}: must be an agent name such as '{spec.example}' (got {value!r})"
            )
        try:
            get_agent(value)
        except ProtocolError as exc:
            raise ProtocolError(f"{path}: {str(exc).removeprefix('agent: ')}") from None
        return value
    if spec.kind == "choice":
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in spec.choices:
            raise ProtocolError(
                f"{path}: unknown value {value!r}; allowed: {', '.join(spec.choices)}"
            )
        return text
    raise AssertionError(f"unknown field kind {spec.kind!r}")


#: what :func:`quick_field` returns for a value it leaves to :func:`parse_field`
NOT_QUICK: Any = object()


def quick_field(value: Any, spec: FieldSpec) -> Any:
    """What :func:`parse_field` returns for *value*, a number already in the field's
    internal unit (quantities: a float in ``spec.unit``; counts: an int), without pint;
    :data:`NOT_QUICK` for a value out of range or of another type (the caller then
    parses the value with its unit by :func:`parse_field`, which raises the error)."""
    kind = spec.kind
    if kind == "quantity":
        if type(value) is not float or not math.isfinite(value):
            return NOT_QUICK
        low, high = spec.minimum, spec.maximum
        if low is not None and (value <= low if spec.min_open else value < low):
            return NOT_QUICK
        if high is not None and value > high:
            return NOT_QUICK
        return Dose(value, str(spec.unit)) if spec.alt_unit is not None else value
    if kind == "count":
        return value if type(value) is int and value >= 1 else NOT_QUICK
    if kind == "fraction":
        ok = type(value) in (int, float) and 0 < value <= 1
        return float(value) if ok else NOT_QUICK
    if kind == "agent":
        if type(value) is not str:
            return NOT_QUICK
        try:
            get_agent(value)  # cached: one look-up per name and process
        except ProtocolError:
            return NOT_QUICK
        return value
    if kind == "choice":
        return value if type(value) is str and value in spec.choices else NOT_QUICK
    return NOT_QUICK


# ----------------------------------------------------------------------------- output


def format_time(x_h: float) -> str:
    """Write *x_h* hours in days, hours or minutes, preferring short whole numbers.

    The text always converts back to exactly *x_h*; hours are the fallback.
    """
    candidates = []
    for unit, factor in (("d", HOURS_PER_DAY), ("h", 1.0), ("min", 1.0 / 60.0)):
        exact = x_h / factor
        for magnitude in (float(f"{exact:.12g}"), exact):
            text = f"{format_number(magnitude)} {unit}"
            if convert(text, "h", "time") == x_h:
                candidates.append((not magnitude.is_integer(), len(text), text))
    return min(candidates)[2] if candidates else f"{format_number(x_h)} h"


def format_value(value: Any, spec: FieldSpec) -> Any:
    """An internal value written back as user input (quantities as strings with units)."""
    if isinstance(value, Dose):
        return str(value)
    if spec.kind != "quantity" or value is None:
        return value
    if spec.unit == "h":
        return format_time(value)
    return f"{format_number(value)} {spec.unit}"
