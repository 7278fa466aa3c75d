"""Treatment schedules as data: magnetic-hyperthermia sessions and drug boluses.

A :class:`Protocol` is an immutable, validated description of one treatment plan.
It is built either by chaining builder methods::

    plan = (Protocol(duration="40 d", name="MH + anti-PD-L1")
            .mh_session(start="7 d", duration="30 min", field="15 kA/m",
                        frequency="200 kHz", agent="fe3o4_19nm_mpeg",
                        dose="4 mg/cm^3", every="2 d", count=3)
            .anti_pdl1(time="7 d", dose="10 mg/kg", every="3 d", count=3))

or from a TOML file whose table arrays carry the same names as the builder methods
(``[[mh_session]]``, ``[[anti_pdl1]]``, ...). Quantities are strings with units or
:class:`pint.Quantity` objects; internally every number is a float in hours, kA/m,
kHz, mg Fe per cm³ of tumour, mg/kg or mm³.

Each intervention kind is described by one entry of :data:`KIND_SPECS`; parsing and
validation are driven by that table. Validation runs at construction, so an invalid
protocol cannot exist: every problem raises :class:`~mhimmune.core.errors.ProtocolError`
whose message starts with the path of the offending field
(``mh_session[1].duration: must be > 0 (got -5 minute)``).
"""

from __future__ import annotations

import math
import numbers
import sys
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import pint

from mhimmune.core.errors import ProtocolError, UnitError
from mhimmune.core.units import convert, to_quantity
from mhimmune.mh.agents import get_agent
from mhimmune.mh.field_safety import HfWarning

__all__ = [
    "Protocol",
    "MHSession",
    "Bolus",
    "Segment",
    "FieldSpec",
    "KindSpec",
    "KINDS",
    "TREATMENT_KINDS",
    "KIND_SPECS",
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
]

#: Brezovich (1988) tolerability limit of H·f in A m^-1 s^-1; above it a warning is issued.
BREZOVICH_LIMIT = 4.85e8
#: Hergt & Dutz (2007) upper limit of H·f in A m^-1 s^-1; above it a protocol is rejected.
HERGT_LIMIT = 5e9

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
        return f"{_num(self.value)} {self.unit}"


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
    """

    fields: Mapping[str, FieldSpec]
    time_key: str
    amount_key: str
    amount_unit: str


_TIME = FieldSpec("quantity", "h", "7 d", minimum=0.0, min_open=False)
_SPAN = FieldSpec("quantity", "h", "30 min", minimum=0.0)
_EVERY = FieldSpec("quantity", "h", "2 d", minimum=0.0, min_open=False, default=None)
_COUNT = FieldSpec("count", example="3", default=1)
_DRUG_DOSE = FieldSpec("quantity", "mg/kg", "10 mg/kg", minimum=0.0)
_REPEAT = {"every": _EVERY, "count": _COUNT}


def _drug_kind(**extra: FieldSpec) -> KindSpec:
    fields = {"time": _TIME, "dose": _DRUG_DOSE, **extra, **_REPEAT}
    return KindSpec(MappingProxyType(fields), "time", "dose", "mg/kg")


#: One specification per intervention kind; the keys are TOML table-array names and
#: builder-method names at once.
KIND_SPECS: Mapping[str, KindSpec] = MappingProxyType(
    {
        "mh_session": KindSpec(
            MappingProxyType(
                {
                    "start": _TIME,
                    "duration": _SPAN,
                    "field": FieldSpec("quantity", "kA/m", "20 kA/m", minimum=0.0, maximum=100.0),
                    "frequency": FieldSpec(
                        "quantity", "kHz", "300 kHz", minimum=1.0, min_open=False, maximum=10_000.0
                    ),
                    "agent": FieldSpec("agent", example="fe3o4_19nm_mpeg"),
                    "dose": FieldSpec(
                        "quantity", "mg/cm^3", "4 mg/cm^3", minimum=0.0, alt_unit="mg/kg"
                    ),
                    "uptake": FieldSpec("fraction", example="0.1", default=None),
                    "target": FieldSpec(
                        "quantity",
                        "degC",
                        "43 degC",
                        minimum=37.0,
                        min_open=False,
                        maximum=50.0,
                        default=None,
                    ),
                    **_REPEAT,
                }
            ),
            "start",
            "dose",
            "mg/cm^3",
        ),
        "anti_pdl1": _drug_kind(),
        "cdt": _drug_kind(
            metal=FieldSpec("choice", example="fe", choices=("fe", "cu", "mn"), default="fe")
        ),
        "bso": _drug_kind(),
        "hsp_inhibitor": _drug_kind(),
        "glucose_oxidase": _drug_kind(),
        "cd8_depletion": _drug_kind(),
        "rechallenge": KindSpec(
            MappingProxyType(
                {
                    "time": _TIME,
                    "volume": FieldSpec("quantity", "mm^3", "50 mm^3", minimum=0.0),
                    **_REPEAT,
                }
            ),
            "time",
            "volume",
            "mm^3",
        ),
    }
)

#: Names of all intervention kinds, in the order they are written to TOML.
KINDS: tuple[str, ...] = tuple(KIND_SPECS)

_TOP_KEYS = ("name", "duration", "description", "allow_above_hergt")


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MHSession:
    """One expanded magnetic-hyperthermia session.

    Parameters
    ----------
    index
        Position among all expanded sessions, sorted by start.
    start_h, duration_h, end_h
        Start, length and end in hours.
    field_kA_per_m
        Field amplitude H in kA/m.
    freq_kHz
        Field frequency f in kHz.
    agent
        Name of the heating agent (see :mod:`mhimmune.mh.agents`).
    dose, dose_unit
        Particle dose: mg Fe per cm³ of tumour (``"mg/cm^3"``), or mg Fe per kg body
        weight (``"mg/kg"``) of which *uptake_fraction* reaches the tumour.
    hf_A_per_m_s
        The product H·f in A m^-1 s^-1 (of the maximal field in feedback mode).
    uptake_fraction
        Fraction of an injected mg/kg dose that reaches the tumour, or ``None``.
    target_C
        Target temperature of feedback control (°C), or ``None`` for a fixed field;
        with a target, *field_kA_per_m* is the maximal field.
    """

    index: int
    start_h: float
    duration_h: float
    end_h: float
    field_kA_per_m: float
    freq_kHz: float
    agent: str
    dose: float
    dose_unit: str
    hf_A_per_m_s: float
    uptake_fraction: float | None = None
    target_C: float | None = None

    @property
    def dose_mg_per_cm3(self) -> float | None:
        """The dose in mg Fe per cm³ of tumour, when it was given that way (else ``None``)."""
        return self.dose if self.dose_unit == "mg/cm^3" else None


@dataclass(frozen=True)
class Bolus:
    """One expanded instantaneous intervention (drug dose or tumour rechallenge).

    Parameters
    ----------
    time_h
        Time of the bolus in hours.
    kind
        Intervention kind, one of :data:`KINDS` other than ``"mh_session"``.
    amount
        Dose in mg/kg, or implanted volume in mm³ for ``"rechallenge"``.
    unit
        ``"mg/kg"`` or ``"mm^3"``.
    options
        Further settings of the kind, e.g. ``{"metal": "fe"}`` for ``"cdt"``.
    index
        Position among the expanded boluses of the same kind, sorted by time.
    """

    time_h: float
    kind: str
    amount: float
    unit: str
    options: dict = dc_field(default_factory=dict, hash=False)
    index: int = 0


@dataclass(frozen=True)
class Segment:
    """A time interval [t0_h, t1_h) in hours between consecutive breakpoints.

    Parameters
    ----------
    t0_h, t1_h
        Interval bounds in hours.
    session
        The MH session active during the interval, or ``None``.
    """

    t0_h: float
    t1_h: float
    session: MHSession | None = None


@dataclass(frozen=True)
class _Entry:
    """One validated table of a kind, before repeats are expanded (internal units)."""

    kind: str
    index: int
    items: tuple[tuple[str, Any], ...]

    @property
    def path(self) -> str:
        """Field path of the table, e.g. ``mh_session[0]``."""
        return f"{self.kind}[{self.index}]"

    def __getitem__(self, key: str) -> Any:
        return dict(self.items)[key]

    def times(self) -> list[float]:
        """Start times of all repeats, in hours."""
        t0 = self[KIND_SPECS[self.kind].time_key]
        every = self["every"] or 0.0
        return [t0 + k * every for k in range(self["count"])]

    def label(self, repeat: int) -> str:
        """Human name of one repeat: ``mh_session[0]`` or ``mh_session[0] repeat 2``."""
        return self.path if self["count"] == 1 else f"{self.path} repeat {repeat + 1}"


# ----------------------------------------------------------------------------- parsing


def _day(t_h: float) -> str:
    """``day 7.00`` for a time in hours."""
    return f"day {t_h / 24:.2f}"


def _num(x: float) -> str:
    """Shortest exact text of a float, without a trailing ``.0``."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _range_text(spec: FieldSpec) -> str:
    """The allowed range of a quantity field, e.g. ``> 0 kA/m and ≤ 100 kA/m``."""
    parts = []
    if spec.minimum is not None:
        parts.append(f"{'>' if spec.min_open else '≥'} {_num(spec.minimum)} {spec.unit}")
    if spec.maximum is not None:
        parts.append(f"≤ {_num(spec.maximum)} {spec.unit}")
    return " and ".join(parts)


def _parse_quantity(value: Any, spec: FieldSpec, path: str) -> float:
    """Convert *value* to a float in ``spec.unit`` and check its range; errors name *path*."""
    unit_hint = spec.example.split(" ", 1)[1]
    if isinstance(value, bool) or not isinstance(value, (str, int, float, pint.Quantity)):
        raise ProtocolError(
            f"{path}: expected a quantity with a unit such as '{spec.example}', got {value!r}"
        )
    if isinstance(value, (int, float)):
        shown = str(value) if isinstance(value, int) else _num(value)
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
        shown = value.strip() if isinstance(value, str) else _num(magnitude)
        raise ProtocolError(f"{path}: {shown} needs a unit, e.g. '{shown} {unit_hint}'")
    if not math.isfinite(magnitude):
        raise ProtocolError(f"{path}: must be a finite number {_range_text(spec)} (got {q})")
    unit = spec.unit
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
                f"e.g. '{spec.example}' or '10 {spec.alt_unit}' with an uptake "
                f"fraction"
            ) from None
    low_bad = spec.minimum is not None and (
        x <= spec.minimum if spec.min_open else x < spec.minimum
    )
    high_bad = spec.maximum is not None and x > spec.maximum
    if low_bad or high_bad:
        raise ProtocolError(f"{path}: must be {_range_text(spec)} (got {q})")
    return Dose(x, unit) if spec.alt_unit is not None else x


def _parse_field(value: Any, spec: FieldSpec, path: str) -> Any:
    """Parse one user value according to *spec*; errors name *path*."""
    if spec.kind == "quantity":
        return _parse_quantity(value, spec, path)
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


def _parse_entry(kind: str, index: int, raw: Any) -> _Entry:
    """Validate one table of *kind* (the *index*-th of its kind) into an :class:`_Entry`."""
    path = f"{kind}[{index}]"
    if not isinstance(raw, Mapping):
        raise ProtocolError(
            f"{path}: must be a table of keys ({', '.join(KIND_SPECS[kind].fields)}), got {raw!r}"
        )
    specs = KIND_SPECS[kind].fields
    for key in raw:
        if key not in specs:
            raise ProtocolError(
                f"{path}.{key}: unknown key for {kind}; allowed keys: {', '.join(specs)}"
            )
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        given = raw.get(key)
        if given is None:
            if spec.required:
                raise ProtocolError(f"{path}.{key}: required, e.g. {key} = '{spec.example}'")
            values[key] = spec.default
        else:
            values[key] = _parse_field(given, spec, f"{path}.{key}")
    if values["count"] > 1:
        if values["every"] is None:
            raise ProtocolError(
                f"{path}.every: required when count = {values['count']} > 1, "
                f"e.g. every = '{_EVERY.example}'"
            )
        if values["every"] <= 0:
            raise ProtocolError(
                f"{path}.every: must be > 0 h when count > 1 "
                f"(got {to_quantity(raw['every'], 'every')})"
            )
    if kind == "mh_session":
        per_kg = values["dose"].unit == "mg/kg"
        if per_kg and values["uptake"] is None:
            raise ProtocolError(
                f"{path}.uptake: required with a dose in mg/kg (the fraction of the "
                f"injected particles that reaches the tumour, in (0, 1]), e.g. uptake = 0.1"
            )
        if not per_kg and values["uptake"] is not None:
            raise ProtocolError(
                f"{path}.uptake: only allowed with a dose in mg/kg; a dose in mg/cm^3 "
                f"is already the tumour concentration"
            )
    return _Entry(kind, index, tuple(values.items()))


def _coerce_entries(kind: str, value: Any) -> list[Any]:
    """The tables given for *kind*: a list of tables, or one table standing alone."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ProtocolError(f"{kind}: must be an array of tables ([[{kind}]]), got {value!r}")


# ----------------------------------------------------------------------------- output


def _fmt_time(x_h: float) -> str:
    """Write *x_h* hours in days, hours or minutes, preferring short whole numbers.

    The text always converts back to exactly *x_h*; hours are the fallback.
    """
    candidates = []
    for unit, factor in (("d", 24.0), ("h", 1.0), ("min", 1.0 / 60.0)):
        exact = x_h / factor
        for magnitude in (float(f"{exact:.12g}"), exact):
            text = f"{_num(magnitude)} {unit}"
            if convert(text, "h", "time") == x_h:
                candidates.append((not magnitude.is_integer(), len(text), text))
    return min(candidates)[2] if candidates else f"{_num(x_h)} h"


def _fmt_value(value: Any, spec: FieldSpec) -> Any:
    """An internal value written back as user input (quantities as strings with units)."""
    if isinstance(value, Dose):
        return str(value)
    if spec.kind != "quantity" or value is None:
        return value
    if spec.unit == "h":
        return _fmt_time(value)
    return f"{_num(value)} {spec.unit}"


def _toml_str(text: str) -> str:
    """A TOML basic string literal of *text*."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    """A TOML literal of a bool, int or string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    raise TypeError(f"cannot write {value!r} to TOML")


# ----------------------------------------------------------------------------- checks


def _sci(x: float) -> str:
    """Compact scientific notation: ``3e9``, ``4.85e8``."""
    text = f"{x:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def _check_timing(entries: tuple[_Entry, ...], duration_h: float) -> None:
    """Every event must start before the end of the protocol; sessions must end by it."""
    for e in entries:
        t0, count, every = e[KIND_SPECS[e.kind].time_key], e["count"], e["every"] or 0.0
        last = t0 + (count - 1) * every
        rep = "" if count == 1 else f" (repeat {count} of {count})"
        if last >= duration_h:
            key = KIND_SPECS[e.kind].time_key if count == 1 else "count"
            raise ProtocolError(
                f"{e.path}.{key}: starts at {_day(last)}{rep}, at or after the end of the "
                f"protocol; events must start before {_day(duration_h)} "
                f"(duration {_fmt_time(duration_h)})"
            )
        if e.kind == "mh_session" and last + e["duration"] > duration_h:
            raise ProtocolError(
                f"{e.path}.duration: session{rep} ends at {_day(last + e['duration'])}, after "
                f"the end of the protocol; sessions must end by {_day(duration_h)} "
                f"(duration {_fmt_time(duration_h)})"
            )


def _check_hf(entries: tuple[_Entry, ...], allow_above_hergt: bool) -> list[tuple[_Entry, float]]:
    """Reject H·f above the Hergt limit (unless allowed); return entries above Brezovich."""
    flags = []
    for e in entries:
        if e.kind != "mh_session":
            continue
        hf = e["field"] * 1e3 * e["frequency"] * 1e3
        if hf > HERGT_LIMIT and not allow_above_hergt:
            raise ProtocolError(
                f"{e.path}.field: H·f = {_sci(hf)} A m^-1 s^-1 ({_num(e['field'])} kA/m × "
                f"{_num(e['frequency'])} kHz) exceeds the Hergt & Dutz (2007) limit "
                f"{_sci(HERGT_LIMIT)} A m^-1 s^-1; lower field or frequency so that "
                f"H·f ≤ {_sci(HERGT_LIMIT)}, or set allow_above_hergt = true"
            )
        if hf > BREZOVICH_LIMIT:
            flags.append((e, hf))
    return flags


def _expand_sessions(entries: tuple[_Entry, ...]) -> tuple[MHSession, ...]:
    """Unroll the repeats of all MH sessions, sort them by start and reject overlaps."""
    occurrences = []
    for e in entries:
        if e.kind == "mh_session":
            occurrences += [(t, t + e["duration"], e, k) for k, t in enumerate(e.times())]
    occurrences.sort(key=lambda o: (o[0], o[2].index, o[3]))
    for (a0, a1, a, ka), (b0, b1, b, kb) in zip(occurrences, occurrences[1:]):
        if b0 < a1:
            key = "every" if a is b else "start"
            raise ProtocolError(
                f"{b.path}.{key}: {a.label(ka)} ({_day(a0)}–{a1 / 24:.2f}) overlaps "
                f"{b.label(kb)} ({_day(b0)}–{b1 / 24:.2f}); MH sessions must not overlap "
                f"(each must start at or after the end of the previous one)"
            )
    return tuple(
        MHSession(
            index=i,
            start_h=t0,
            duration_h=e["duration"],
            end_h=t1,
            field_kA_per_m=e["field"],
            freq_kHz=e["frequency"],
            agent=e["agent"],
            dose=e["dose"].value,
            dose_unit=e["dose"].unit,
            hf_A_per_m_s=e["field"] * 1e3 * e["frequency"] * 1e3,
            uptake_fraction=e["uptake"],
            target_C=e["target"],
        )
        for i, (t0, t1, e, _k) in enumerate(occurrences)
    )


def _expand_boluses(entries: tuple[_Entry, ...]) -> tuple[Bolus, ...]:
    """Unroll the repeats of all instantaneous interventions, sorted by time then kind."""
    raw = []
    for e in entries:
        if e.kind == "mh_session":
            continue
        spec = KIND_SPECS[e.kind]
        options = {
            k: v for k, v in e.items if k not in (spec.time_key, spec.amount_key, "every", "count")
        }
        raw += [(t, KINDS.index(e.kind), e, options) for t in e.times()]
    raw.sort(key=lambda r: (r[0], r[1]))
    seen: dict[str, int] = {}
    out = []
    for t, _order, e, options in raw:
        spec = KIND_SPECS[e.kind]
        out.append(
            Bolus(
                time_h=t,
                kind=e.kind,
                amount=e[spec.amount_key],
                unit=spec.amount_unit,
                options=dict(options),
                index=seen.get(e.kind, 0),
            )
        )
        seen[e.kind] = seen.get(e.kind, 0) + 1
    return tuple(out)


# ----------------------------------------------------------------------------- protocol


#: intervention kinds that count as treatment (for "day N after the first treatment")
TREATMENT_KINDS: tuple[str, ...] = (
    "mh_session",
    "anti_pdl1",
    "cdt",
    "bso",
    "hsp_inhibitor",
    "glucose_oxidase",
)


class Protocol:
    """An immutable, validated treatment schedule; builder methods return new protocols.

    Parameters
    ----------
    duration
        Length of the simulated period, a time with a unit (``"40 d"``); must be > 0.
    name
        Short name of the protocol.
    description
        Optional free text.
    allow_above_hergt
        Accept MH sessions with H·f above the Hergt–Dutz limit (5e9 A m^-1 s^-1),
        with a warning instead of an error.
    """

    __slots__ = (
        "_name",
        "_duration_h",
        "_description",
        "_allow",
        "_entries",
        "_sessions",
        "_boluses",
        "_hf_flags",
    )

    def __init__(
        self,
        duration: Any,
        *,
        name: str = "protocol",
        description: str | None = None,
        allow_above_hergt: bool = False,
    ):
        duration_h = _parse_quantity(duration, _SPAN, "duration")
        if not isinstance(name, str):
            raise ProtocolError(f"name: must be a string (got {name!r})")
        if description is not None and not isinstance(description, str):
            raise ProtocolError(f"description: must be a string (got {description!r})")
        if not isinstance(allow_above_hergt, bool):
            raise ProtocolError(
                f"allow_above_hergt: must be true or false (got {allow_above_hergt!r})"
            )
        self._init(name, duration_h, description, allow_above_hergt, (), parent=None)

    # -- construction ----------------------------------------------------------------

    def _init(
        self,
        name: str,
        duration_h: float,
        description: str | None,
        allow: bool,
        entries: tuple[_Entry, ...],
        parent: Protocol | None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_name", name)
        set_(self, "_duration_h", duration_h)
        set_(self, "_description", description)
        set_(self, "_allow", allow)
        set_(self, "_entries", tuple(sorted(entries, key=lambda e: (KINDS.index(e.kind), e.index))))
        self._validate(parent)

    def _derive(
        self, *, duration_h: float | None = None, entries: tuple[_Entry, ...] | None = None
    ) -> Protocol:
        new = object.__new__(Protocol)
        new._init(
            self._name,
            self._duration_h if duration_h is None else duration_h,
            self._description,
            self._allow,
            self._entries if entries is None else entries,
            parent=self,
        )
        return new

    def _validate(self, parent: Protocol | None) -> None:
        """Check the events against each other and the duration; expand repeats; warn on H·f."""
        _check_timing(self._entries, self._duration_h)
        flags = _check_hf(self._entries, self._allow)
        object.__setattr__(self, "_sessions", _expand_sessions(self._entries))
        object.__setattr__(self, "_boluses", _expand_boluses(self._entries))
        signature = tuple((e.index, hf) for e, hf in flags)
        object.__setattr__(self, "_hf_flags", signature)
        if flags and (parent is None or parent._hf_flags != signature):
            listed = "; ".join(
                f"{e.path} ({e['count']} session{'s' if e['count'] > 1 else ''} from "
                f"{_day(e['start'])}, H·f = {_sci(hf)})"
                for e, hf in flags
            )
            warnings.warn(
                f"protocol {self._name!r}: H·f above the Brezovich (1988) limit "
                f"{_sci(BREZOVICH_LIMIT)} A m^-1 s^-1 in {listed}",
                HfWarning,
                stacklevel=_caller_level(),
            )

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Protocol is immutable; builder methods return a new protocol")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("Protocol is immutable")

    def _add(self, kind: str, **kwargs: Any) -> Protocol:
        given = {k: v for k, v in kwargs.items() if v is not None}
        index = sum(1 for e in self._entries if e.kind == kind)
        entry = _parse_entry(kind, index, given)
        return self._derive(entries=self._entries + (entry,))

    # -- builders --------------------------------------------------------------------

    def mh_session(
        self,
        *,
        start: Any,
        duration: Any,
        field: Any,
        frequency: Any,
        agent: str,
        dose: Any,
        uptake: float | None = None,
        target: Any = None,
        every: Any = None,
        count: int = 1,
    ) -> Protocol:
        """Return a copy with a magnetic-hyperthermia session (or a series) added.

        Parameters
        ----------
        start
            Start time (``"7 d"``), ≥ 0.
        duration
            Session length (``"30 min"``), > 0.
        field
            Field amplitude, kA/m-compatible (``"15 kA/m"``), in (0, 100] kA/m.
        frequency
            Field frequency, Hz-compatible (``"200 kHz"``), in [1 kHz, 10 MHz].
        agent
            Heating agent name from the catalogue (``"fe3o4_19nm_mpeg"``).
        dose
            Particle dose in mg Fe per cm³ of tumour (``"4 mg/cm^3"``), or in mg Fe per kg
            body weight (``"10 mg/kg"``) together with *uptake*; > 0.
        uptake
            Fraction in (0, 1] of an mg/kg dose that reaches the tumour.
        target
            Target temperature for feedback control (``"43 degC"``, 37-50 °C); the field
            is then the maximal field and is turned down as the tumour reaches the target.
        every
            Interval between repeats (``"2 d"``); required and > 0 when *count* > 1.
        count
            Number of sessions, integer ≥ 1.
        """
        return self._add(
            "mh_session",
            start=start,
            duration=duration,
            field=field,
            frequency=frequency,
            agent=agent,
            dose=dose,
            uptake=uptake,
            target=target,
            every=every,
            count=count,
        )

    def anti_pdl1(self, *, time: Any, dose: Any, every: Any = None, count: int = 1) -> Protocol:
        """Return a copy with anti-PD-L1 antibody doses added.

        Parameters
        ----------
        time
            Time of the (first) dose (``"7 d"``), ≥ 0.
        dose
            Dose in mg/kg (``"10 mg/kg"``), > 0.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("anti_pdl1", time=time, dose=dose, every=every, count=count)

    def cdt(
        self, *, time: Any, dose: Any, metal: str = "fe", every: Any = None, count: int = 1
    ) -> Protocol:
        """Return a copy with chemodynamic-therapy (Fenton-agent) doses added.

        Parameters
        ----------
        time
            Time of the (first) dose, ≥ 0.
        dose
            Dose in mg/kg, > 0.
        metal
            Fenton-active metal: ``"fe"``, ``"cu"`` or ``"mn"``.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("cdt", time=time, dose=dose, metal=metal, every=every, count=count)

    def bso(self, *, time: Any, dose: Any, every: Any = None, count: int = 1) -> Protocol:
        """Return a copy with doses of the GSH-synthesis inhibitor BSO added.

        Parameters
        ----------
        time
            Time of the (first) dose, ≥ 0.
        dose
            Dose in mg/kg, > 0.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("bso", time=time, dose=dose, every=every, count=count)

    def hsp_inhibitor(self, *, time: Any, dose: Any, every: Any = None, count: int = 1) -> Protocol:
        """Return a copy with heat-shock-protein inhibitor doses added.

        Parameters
        ----------
        time
            Time of the (first) dose, ≥ 0.
        dose
            Dose in mg/kg, > 0.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("hsp_inhibitor", time=time, dose=dose, every=every, count=count)

    def glucose_oxidase(
        self, *, time: Any, dose: Any, every: Any = None, count: int = 1
    ) -> Protocol:
        """Return a copy with glucose-oxidase doses added.

        Parameters
        ----------
        time
            Time of the (first) dose, ≥ 0.
        dose
            Dose in mg/kg, > 0.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("glucose_oxidase", time=time, dose=dose, every=every, count=count)

    def cd8_depletion(self, *, time: Any, dose: Any, every: Any = None, count: int = 1) -> Protocol:
        """Return a copy with CD8-depleting antibody doses added.

        Parameters
        ----------
        time
            Time of the (first) dose, ≥ 0.
        dose
            Dose in mg/kg, > 0.
        every, count
            Repeat interval (time) and number of doses (integer ≥ 1).
        """
        return self._add("cd8_depletion", time=time, dose=dose, every=every, count=count)

    def rechallenge(self, *, time: Any, volume: Any, every: Any = None, count: int = 1) -> Protocol:
        """Return a copy with a tumour rechallenge (implant at the distant site) added.

        Parameters
        ----------
        time
            Time of the (first) implant, ≥ 0.
        volume
            Implanted tumour volume in mm³ (``"50 mm^3"``), > 0.
        every, count
            Repeat interval (time) and number of implants (integer ≥ 1).
        """
        return self._add("rechallenge", time=time, volume=volume, every=every, count=count)

    def with_duration(self, duration: Any) -> Protocol:
        """Return a copy with another protocol duration (a time such as ``"60 d"``, > 0)."""
        return self._derive(duration_h=_parse_quantity(duration, _SPAN, "duration"))

    # -- I/O -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        """Build a protocol from a mapping shaped like the TOML file.

        Parameters
        ----------
        data
            Top-level keys ``name``, ``duration`` (time, required), ``description``,
            ``allow_above_hergt`` and one list of tables per intervention kind.
        """
        if not isinstance(data, Mapping):
            raise ProtocolError(f"protocol: expected a table of keys, got {data!r}")
        for key, value in data.items():
            if key in _TOP_KEYS or key in KIND_SPECS:
                continue
            if isinstance(value, (list, tuple, Mapping)):
                raise ProtocolError(
                    f"{key}: unknown intervention kind; known kinds: {', '.join(KINDS)}"
                )
            raise ProtocolError(
                f"{key}: unknown top-level key; allowed keys: {', '.join(_TOP_KEYS + KINDS)}"
            )
        if "duration" not in data:
            raise ProtocolError("duration: required, e.g. duration = '40 d'")
        base = cls(
            data["duration"],
            name=data.get("name", "protocol"),
            description=data.get("description"),
            allow_above_hergt=data.get("allow_above_hergt", False),
        )
        entries: list[_Entry] = []
        for kind in KINDS:
            if kind in data:
                for i, raw in enumerate(_coerce_entries(kind, data[kind])):
                    entries.append(_parse_entry(kind, i, raw))
        if not entries:
            return base
        new = object.__new__(cls)
        new._init(
            base._name,
            base._duration_h,
            base._description,
            base._allow,
            tuple(entries),
            parent=None,
        )
        return new

    @classmethod
    def from_toml(cls, source: str | Path) -> Protocol:
        """Load a protocol from a TOML file or TOML text.

        Parameters
        ----------
        source
            A :class:`~pathlib.Path` or string naming an existing file, or TOML text.
            A one-line string without ``=`` is taken as a file name.
        """
        is_path = isinstance(source, Path) or ("\n" not in source and "=" not in source)
        origin = None
        if is_path:
            path = Path(source)
            if not path.is_file():
                raise ProtocolError(f"protocol file {str(path)!r} does not exist")
            text, origin = path.read_text(encoding="utf-8"), str(path)
        else:
            text = source
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"{origin or 'protocol'}: invalid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except ProtocolError as exc:
            if origin is None:
                raise
            raise ProtocolError(f"{exc} (in {origin})") from None

    def to_dict(self) -> dict[str, Any]:
        """Return the protocol as a plain mapping (quantities as strings in internal units).

        ``Protocol.from_dict(p.to_dict()) == p`` holds for every protocol.
        """
        out: dict[str, Any] = {"name": self._name, "duration": _fmt_time(self._duration_h)}
        if self._description is not None:
            out["description"] = self._description
        if self._allow:
            out["allow_above_hergt"] = True
        for kind in KINDS:
            tables = []
            for e in (x for x in self._entries if x.kind == kind):
                specs = KIND_SPECS[kind].fields
                table = {}
                for key, value in e.items:
                    if key == "count" and value == 1:
                        continue
                    if value is None:
                        continue
                    table[key] = _fmt_value(value, specs[key])
                tables.append(table)
            if tables:
                out[kind] = tables
        return out

    def to_toml(self) -> str:
        """Return the protocol as TOML text that :meth:`from_toml` reads back unchanged."""
        data = self.to_dict()
        lines = [f"{key} = {_toml_value(data[key])}" for key in _TOP_KEYS if key in data]
        for kind in KINDS:
            for table in data.get(kind, []):
                lines += ["", f"[[{kind}]]"]
                lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        return "\n".join(lines) + "\n"

    # -- accessors -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Name of the protocol."""
        return self._name

    @property
    def description(self) -> str | None:
        """Free-text description, or ``None``."""
        return self._description

    @property
    def allow_above_hergt(self) -> bool:
        """Whether H·f above the Hergt–Dutz limit is accepted (with a warning)."""
        return self._allow

    @property
    def duration_h(self) -> float:
        """Length of the protocol in hours."""
        return self._duration_h

    def mh_sessions(self) -> list[MHSession]:
        """All MH sessions with repeats expanded, sorted by start."""
        return list(self._sessions)

    @property
    def first_treatment_h(self) -> float | None:
        """Start of the first treatment in hours (MH session or dose of a kind in
        :data:`TREATMENT_KINDS`); ``None`` for an untreated protocol.

        Rechallenges and CD8 depletion are experimental manipulations, not treatments,
        and do not count.
        """
        times = [s.start_h for s in self._sessions]
        times += [b.time_h for b in self._boluses if b.kind in TREATMENT_KINDS]
        return min(times) if times else None

    def boluses(self) -> list[Bolus]:
        """All instantaneous interventions with repeats expanded, sorted by time."""
        return [
            Bolus(b.time_h, b.kind, b.amount, b.unit, dict(b.options), b.index)
            for b in self._boluses
        ]

    def breakpoints(self) -> list[float]:
        """Sorted unique times in hours: 0, the duration, session starts/ends, bolus times."""
        times = {0.0, self._duration_h}
        times.update(s.start_h for s in self._sessions)
        times.update(s.end_h for s in self._sessions)
        times.update(b.time_h for b in self._boluses)
        return sorted(times)

    def segments(self) -> list[Segment]:
        """Consecutive [t0, t1) intervals (hours) between breakpoints, with the active session."""
        points = self.breakpoints()
        out = []
        for t0, t1 in zip(points, points[1:]):
            active = next((s for s in self._sessions if s.start_h <= t0 < s.end_h), None)
            out.append(Segment(t0, t1, active))
        return out

    def to_frame(self) -> pd.DataFrame:
        """The expanded schedule as a table, one row per event, sorted by start.

        Columns: ``kind``, ``start_day``, ``end_day`` (NaN for boluses), ``amount``,
        ``unit``, ``field_kA_per_m``, ``freq_kHz``, ``hf_A_per_m_s`` (A m^-1 s^-1),
        ``agent`` (missing, shown as NaN, for boluses), ``target_C`` (feedback-controlled
        sessions only).
        """
        nan = math.nan
        rows = [
            dict(
                kind="mh_session",
                start_day=s.start_h / 24,
                end_day=s.end_h / 24,
                amount=s.dose,
                unit=s.dose_unit,
                field_kA_per_m=s.field_kA_per_m,
                freq_kHz=s.freq_kHz,
                hf_A_per_m_s=s.hf_A_per_m_s,
                agent=s.agent,
                target_C=nan if s.target_C is None else s.target_C,
            )
            for s in self._sessions
        ]
        rows += [
            dict(
                kind=b.kind,
                start_day=b.time_h / 24,
                end_day=nan,
                amount=b.amount,
                unit=b.unit,
                field_kA_per_m=nan,
                freq_kHz=nan,
                hf_A_per_m_s=nan,
                agent=None,
                target_C=nan,
            )
            for b in self._boluses
        ]
        columns = [
            "kind",
            "start_day",
            "end_day",
            "amount",
            "unit",
            "field_kA_per_m",
            "freq_kHz",
            "hf_A_per_m_s",
            "agent",
            "target_C",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        order = frame["kind"].map(KINDS.index)
        frame = frame.assign(_order=order).sort_values(["start_day", "_order"], kind="stable")
        return frame.drop(columns="_order").reset_index(drop=True)

    # -- dunder ----------------------------------------------------------------------

    def _key(self) -> tuple:
        return (self._name, self._duration_h, self._description, self._allow, self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Protocol):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for e in self._entries:
            counts[e.kind] = counts.get(e.kind, 0) + e["count"]
        events = ", ".join(f"{k}×{n}" for k, n in counts.items()) or "no interventions"
        return f"<Protocol {self._name!r}: {_fmt_time(self._duration_h)}, {events}>"

    def __reduce__(self):
        return (_restore, tuple(getattr(self, slot) for slot in self.__slots__))


def _restore(*state: Any) -> Protocol:
    """Rebuild a pickled protocol without validating (and warning) again."""
    new = object.__new__(Protocol)
    for slot, value in zip(Protocol.__slots__, state):
        object.__setattr__(new, slot, value)
    return new


def _caller_level() -> int:
    """Stack level of the first frame outside this module, for :func:`warnings.warn`."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level
