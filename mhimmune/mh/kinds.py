"""Intervention kinds of a treatment protocol: their fields, parsing and validation.

Each intervention kind (``mh_session``, ``anti_pdl1``, ...) is one entry of
:data:`KIND_SPECS`: its keys with their :class:`FieldSpec` (unit, range, default), the
keys holding its time and amount, and the documentation of the builder method of
:class:`~mhimmune.mh.protocol.Protocol` generated from it. This module turns one user
table of a kind into a validated :class:`Entry` in internal units (hours, kA/m, kHz,
mg/cm³, mg/kg, mm³), every error a :class:`~mhimmune.core.errors.ProtocolError` that
starts with the path of the offending field; the field machinery (:class:`FieldSpec`,
parsing and writing values back as text) is in :mod:`mhimmune.mh.fields`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mhimmune.core.errors import ProtocolError
from mhimmune.core.units import to_quantity
from mhimmune.mh.fields import (
    MAX_DURATION_H,
    NOT_QUICK,
    Dose,
    FieldSpec,
    KindSpec,
    day_text,
    format_number,
    format_time,
    format_value,
    parse_field,
    parse_quantity,
    quick_field,
)

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
    "VACCINE_MAX_MM3",
    "CELLS_PER_MM3",
    "parse_quantity",
    "parse_entry",
    "quick_entry",
    "coerce_entries",
    "format_time",
    "format_value",
    "format_number",
    "day_text",
]

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
#: Anti-PD-1 and anti-CTLA-4 are given at 5-10 mg/kg (100-200 µg per mouse; Selby et al.
#: 2013 [selby2013], Simpson et al. 2013 [simpson2013]), with the same 5-fold margin.
DRUG_DOSE_LIMITS: Mapping[str, float] = MappingProxyType(
    {
        "anti_pdl1": 50.0,
        "anti_pd1": 50.0,
        "anti_ctla4": 50.0,
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


#: largest vaccine dose, in mm³ of killed tumour cells (10⁶ cells per mm³): 5e8 cells,
#: 50 times the 10⁷ cells of usual whole-cell vaccines (assumed plausibility limit)
VACCINE_MAX_MM3 = 500.0
#: tumour cells per mm³ (the model's convention, about 10⁶)
CELLS_PER_MM3 = 1e6

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
        "anti_pd1": _drug_kind(
            "anti_pd1",
            "Return a copy with anti-PD-1 antibody doses added (blocks PD-1 on T cells).",
        ),
        "anti_ctla4": _drug_kind(
            "anti_ctla4",
            "Return a copy with anti-CTLA-4 antibody doses added (raises priming and depletes "
            "intratumoural Tregs through Fc receptors).",
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
        "vaccination": KindSpec(
            MappingProxyType(
                {
                    "time": _TIME,
                    "dose": FieldSpec("quantity", "mm^3", "5 mm^3", minimum=0.0, alt_unit="cell"),
                    **_REPEAT,
                }
            ),
            "time",
            "dose",
            "mm^3",
            "Return a copy with a vaccination by MH-killed (heat-killed) tumour cells added: "
            "antigen and danger signals delivered to the draining node.",
            (
                ("time", "Time of the (first) vaccination, ≥ 0."),
                (
                    "dose",
                    'Killed tumour cells, as a volume (``"5 mm^3"``) or a number of cells\n'
                    f'(``"5e6 cell"``; 10⁶ cells per mm³), > 0 and ≤ {VACCINE_MAX_MM3:g} mm³.',
                ),
                (
                    "every, count",
                    "Repeat interval (time) and number of vaccinations (integer ≥ 1).",
                ),
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
    "anti_pd1",
    "anti_ctla4",
    "vaccination",
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

    @functools.cached_property
    def _fields(self) -> dict[str, Any]:
        return dict(self.items)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def times(self) -> list[float]:
        """Start times of all repeats, in hours."""
        t0 = self[KIND_SPECS[self.kind].time_key]
        every = self["every"] or 0.0
        return [t0 + k * every for k in range(self["count"])]

    def label(self, repeat: int) -> str:
        """Human name of one repeat: ``mh_session[0]`` or ``mh_session[0] repeat 2``."""
        return self.path if self["count"] == 1 else f"{self.path} repeat {repeat + 1}"


# ----------------------------------------------------------------------------- parsing


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
            values[key] = parse_field(given, spec, f"{path}.{key}")
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
    if kind == "vaccination":
        dose = values["dose"]
        if dose.unit == "cell" and "cell" not in str(to_quantity(raw["dose"], path).units):
            raise ProtocolError(
                f"{path}.dose: must be killed cells in mm^3 ('5 mm^3') or a number of cells "
                f"('5e6 cell'), got {raw['dose']!r}"
            )
        mm3 = dose.value / CELLS_PER_MM3 if dose.unit == "cell" else dose.value
        if mm3 > VACCINE_MAX_MM3:
            raise ProtocolError(
                f"{path}.dose: must be > 0 mm^3 and ≤ {VACCINE_MAX_MM3:g} mm^3 "
                f"({VACCINE_MAX_MM3 * CELLS_PER_MM3:g} cell) (got {dose})"
            )
        values["dose"] = mm3
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


def quick_entry(kind: str, index: int, given: Mapping[str, Any]) -> Entry | None:
    """The :class:`Entry` that :func:`parse_entry` makes of *given*, whose values are
    numbers already in internal units (quantities as floats in their field's unit, counts
    as ints; absent keys missing or ``None``), without pint; ``None`` when a value is out
    of range or of another type, or the kind needs more than range checks (vaccination),
    so that the caller parses the values with their units by :func:`parse_entry`, which
    raises its error. A schedule template builds one protocol per factor combination."""
    specs = KIND_SPECS[kind].fields
    if kind == "vaccination" or not given.keys() <= specs.keys():
        return None
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        x = given.get(key)
        if x is None:
            if spec.required:
                return None
            values[key] = spec.default
        else:
            values[key] = value = quick_field(x, spec)
            if value is NOT_QUICK:
                return None
    if values["count"] > 1 and (values["every"] is None or values["every"] <= 0):
        return None
    if kind == "mh_session" and values["uptake"] is not None:  # a dose in mg/cm^3
        return None
    return Entry(kind, index, tuple(values.items()))


def coerce_entries(kind: str, value: Any) -> list[Any]:
    """The tables given for *kind*: a list of tables, or one table standing alone."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ProtocolError(f"{kind}: must be an array of tables ([[{kind}]]), got {value!r}")
