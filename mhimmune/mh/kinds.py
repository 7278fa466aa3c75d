"""Intervention kinds of a treatment protocol: their fields, parsing and validation.

Each intervention kind (``mh_session``, ``anti_pdl1``, ...) is one entry of
:data:`KIND_SPECS`: its keys with their :class:`FieldSpec` (unit, range, default), the
keys holding its time and amount, and the documentation of the builder method of
:class:`~mhimmune.mh.protocol.Protocol` generated from it. This module turns one user
table of a kind into a validated :class:`Entry` in internal units (hours, kA/m, kHz,
mg/cm³, mg/kg, mm³), every error a :class:`~mhimmune.core.errors.ProtocolError` that
starts with the path of the offending field, and writes internal values back as text.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pint

from mhimmune.core.errors import ProtocolError, UnitError
from mhimmune.core.units import HOURS_PER_DAY, convert, hours_to_days, to_quantity
from mhimmune.mh.agents import get_agent

__all__ = [
    "FieldSpec",
    "KindSpec",
    "Dose",
    "Entry",
    "KIND_SPECS",
    "KINDS",
    "TREATMENT_KINDS",
    "TOP_KEYS",
    "SPAN",
    "DURATION",
    "MAX_DURATION_H",
    "EVERY",
    "DRUG_DOSE_LIMITS",
    "parse_quantity",
    "parse_entry",
    "coerce_entries",
    "format_time",
    "format_value",
    "format_number",
    "day_text",
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

_TIME = FieldSpec("quantity", "h", "7 d", minimum=0.0, min_open=False, maximum=MAX_DURATION_H)
SPAN = FieldSpec("quantity", "h", "30 min", minimum=0.0, maximum=MAX_DURATION_H)
#: the protocol's own duration: > 0 and at most :data:`MAX_DURATION_H` (5 years)
DURATION = FieldSpec("quantity", "h", "40 d", minimum=0.0, maximum=MAX_DURATION_H)
EVERY = FieldSpec(
    "quantity", "h", "2 d", minimum=0.0, min_open=False, maximum=MAX_DURATION_H, default=None
)
_COUNT = FieldSpec("count", example="3", default=1)
_REPEAT = {"every": EVERY, "count": _COUNT}

#: Largest accepted dose per drug kind, in mg/kg per injection, so that a typo (1e6 mg/kg)
#: is refused rather than simulated. These are assumed plausibility limits, a few times the
#: highest doses of the studies the model cites: anti-PD-L1 10 mg/kg (Kosinsky et al. 2018
#: [kosinsky2018]); BSO two 5 mmol/kg (1112 mg/kg) doses (Skapek et al. 1988 [skapek1988])
#: and 400-1600 mg/kg i.v. ([bso_pk1989]). For CD8 depletion, HSP inhibitors, CDT and
#: glucose-oxidase agents the limits are assumed from the model's own dose ranges (1-20
#: mg/kg), with the same margin; the depleting antibodies (anti-CD8, -CD4, -NK1.1, -CD25)
#: are given at about 10 mg/kg (200 µg per mouse), clodronate liposomes at about 50 mg/kg
#: of clodronate (200 µL of a 5 mg/mL suspension per 20 g mouse), both with a 5-fold margin.
DRUG_DOSE_LIMITS: Mapping[str, float] = MappingProxyType(
    {
        "anti_pdl1": 50.0,
        "cdt": 100.0,
        "bso": 2000.0,
        "hsp_inhibitor": 200.0,
        "glucose_oxidase": 100.0,
        "cd8_depletion": 50.0,
        "cd4_depletion": 50.0,
        "nk_depletion": 50.0,
        "macrophage_depletion": 250.0,
        "treg_depletion": 50.0,
    }
)


_REPEAT_DOC = ("every, count", "Repeat interval (time) and number of doses (integer ≥ 1).")


def _drug_kind(
    name: str, summary: str, *, docs: tuple[tuple[str, str], ...] = (), **extra: FieldSpec
) -> KindSpec:
    limit = DRUG_DOSE_LIMITS[name]
    dose = FieldSpec("quantity", "mg/kg", "10 mg/kg", minimum=0.0, maximum=limit)
    fields = {"time": _TIME, "dose": dose, **extra, **_REPEAT}
    dose_doc = f'Dose in mg/kg (``"10 mg/kg"``), > 0 and ≤ {limit:g} mg/kg.'
    docs = tuple(("dose", dose_doc) if key == "dose" else (key, text) for key, text in docs) or (
        ("time", "Time of the (first) dose, ≥ 0."),
        ("dose", dose_doc),
        _REPEAT_DOC,
    )
    return KindSpec(MappingProxyType(fields), "time", "dose", "mg/kg", summary, docs)


#: One specification per intervention kind; the keys are TOML table-array names and
#: builder-method names at once.
KIND_SPECS: Mapping[str, KindSpec] = MappingProxyType(
    {
        "mh_session": KindSpec(
            MappingProxyType(
                {
                    "start": _TIME,
                    "duration": SPAN,
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
                        maximum=60.0,
                        default=None,
                    ),
                    **_REPEAT,
                }
            ),
            "start",
            "dose",
            "mg/cm^3",
            "Return a copy with a magnetic-hyperthermia session (or a series) added.",
            (
                ("start", 'Start time (``"7 d"``), ≥ 0.'),
                ("duration", 'Session length (``"30 min"``), > 0.'),
                ("field", 'Field amplitude, kA/m-compatible (``"15 kA/m"``), in (0, 100] kA/m.'),
                (
                    "frequency",
                    'Field frequency, Hz-compatible (``"200 kHz"``), in [1 kHz, 10 MHz].',
                ),
                ("agent", 'Heating agent name from the catalogue (``"fe3o4_19nm_mpeg"``).'),
                (
                    "dose",
                    'Particle dose in mg Fe per cm³ of tumour (``"4 mg/cm^3"``), or in mg Fe '
                    'per kg\nbody weight (``"10 mg/kg"``) together with *uptake*; > 0.',
                ),
                ("uptake", "Fraction in (0, 1] of an mg/kg dose that reaches the tumour."),
                (
                    "target",
                    'Target temperature for feedback control (``"43 degC"``, 37-60 °C: mild '
                    "hyperthermia\nup to thermoablation); the field is then the maximal "
                    "field and is turned down as\nthe tumour reaches the target.",
                ),
                (
                    "every",
                    'Interval between repeats (``"2 d"``); required and > 0 when *count* > 1.',
                ),
                ("count", "Number of sessions, integer ≥ 1."),
            ),
        ),
        "anti_pdl1": _drug_kind(
            "anti_pdl1",
            "Return a copy with anti-PD-L1 antibody doses added.",
            docs=(
                ("time", 'Time of the (first) dose (``"7 d"``), ≥ 0.'),
                ("dose", 'Dose in mg/kg (``"10 mg/kg"``), > 0.'),
                _REPEAT_DOC,
            ),
        ),
        "cdt": _drug_kind(
            "cdt",
            "Return a copy with chemodynamic-therapy (Fenton-agent) doses added.",
            docs=(
                ("time", "Time of the (first) dose, ≥ 0."),
                ("dose", "Dose in mg/kg, > 0."),
                ("metal", 'Fenton-active metal: ``"fe"``, ``"cu"`` or ``"mn"``.'),
                _REPEAT_DOC,
            ),
            metal=FieldSpec("choice", example="fe", choices=("fe", "cu", "mn"), default="fe"),
        ),
        "bso": _drug_kind(
            "bso", "Return a copy with doses of the GSH-synthesis inhibitor BSO added."
        ),
        "hsp_inhibitor": _drug_kind(
            "hsp_inhibitor", "Return a copy with heat-shock-protein inhibitor doses added."
        ),
        "glucose_oxidase": _drug_kind(
            "glucose_oxidase", "Return a copy with glucose-oxidase doses added."
        ),
        "cd8_depletion": _drug_kind(
            "cd8_depletion", "Return a copy with CD8-depleting antibody doses added."
        ),
        "cd4_depletion": _drug_kind(
            "cd4_depletion",
            "Return a copy with CD4-depleting antibody doses added (removes CD4 helper cells "
            "and Tregs).",
        ),
        "nk_depletion": _drug_kind(
            "nk_depletion", "Return a copy with NK-depleting antibody (anti-NK1.1) doses added."
        ),
        "macrophage_depletion": _drug_kind(
            "macrophage_depletion",
            "Return a copy with clodronate-liposome doses (mg clodronate/kg) added, which "
            "deplete macrophages.",
        ),
        "treg_depletion": _drug_kind(
            "treg_depletion",
            "Return a copy with Treg-depleting anti-CD25 doses added (partial depletion).",
        ),
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
            "Return a copy with a tumour rechallenge (implant at the distant site) added.",
            (
                ("time", "Time of the (first) implant, ≥ 0."),
                ("volume", 'Implanted tumour volume in mm³ (``"50 mm^3"``), > 0.'),
                ("every, count", "Repeat interval (time) and number of implants (integer ≥ 1)."),
            ),
        ),
    }
)

#: Names of all intervention kinds, in the order they are written to TOML.
KINDS: tuple[str, ...] = tuple(KIND_SPECS)

#: top-level keys of a protocol table besides the intervention kinds
TOP_KEYS = ("name", "duration", "description", "allow_above_hergt", "tumour", "host")


# ----------------------------------------------------------------------------- treatment


#: intervention kinds that count as treatment (for "day N after the first treatment")
TREATMENT_KINDS: tuple[str, ...] = (
    "mh_session",
    "anti_pdl1",
    "cdt",
    "bso",
    "hsp_inhibitor",
    "glucose_oxidase",
)


@dataclass(frozen=True)
class Entry:
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


def parse_entry(kind: str, index: int, raw: Any) -> Entry:
    """Validate one table of *kind* (the *index*-th of its kind) into an :class:`Entry`."""
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
                f"e.g. every = '{EVERY.example}'"
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
    return Entry(kind, index, tuple(values.items()))


def coerce_entries(kind: str, value: Any) -> list[Any]:
    """The tables given for *kind*: a list of tables, or one table standing alone."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ProtocolError(f"{kind}: must be an array of tables ([[{kind}]]), got {value!r}")


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
