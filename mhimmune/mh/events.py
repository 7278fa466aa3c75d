"""Expanded events of a protocol: MH sessions, boluses and segments, and their checks.

:func:`expand_sessions` and :func:`expand_boluses` unroll the repeats of validated
:class:`~mhimmune.mh.kinds.Entry` tables into :class:`MHSession` and :class:`Bolus`
events (hours, kA/m, kHz); :func:`check_timing` and :func:`check_hf` check the entries
against the protocol's duration and the field limits (H·f, Brezovich and Hergt–Dutz).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from mhimmune.core.errors import ProtocolError
from mhimmune.core.units import hours_to_days
from mhimmune.mh.kinds import (
    KIND_SPECS,
    KINDS,
    Entry,
    day_text,
    format_number,
    format_time,
)

__all__ = [
    "MHSession",
    "Bolus",
    "Segment",
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
    "check_timing",
    "check_hf",
    "expand_sessions",
    "expand_boluses",
    "format_sci",
]

#: Brezovich (1988) tolerability limit of H·f in A m^-1 s^-1; above it a warning is issued.
BREZOVICH_LIMIT = 4.85e8
#: Hergt & Dutz (2007) upper limit of H·f in A m^-1 s^-1; above it a protocol is rejected.
HERGT_LIMIT = 5e9


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


def format_sci(x: float) -> str:
    """Compact scientific notation: ``3e9``, ``4.85e8``."""
    text = f"{x:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def check_timing(entries: tuple[Entry, ...], duration_h: float) -> None:
    """Every event must start before the end of the protocol; sessions must end by it."""
    for e in entries:
        t0, count, every = e[KIND_SPECS[e.kind].time_key], e["count"], e["every"] or 0.0
        last = t0 + (count - 1) * every
        rep = "" if count == 1 else f" (repeat {count} of {count})"
        if last >= duration_h:
            key = KIND_SPECS[e.kind].time_key if count == 1 else "count"
            raise ProtocolError(
                f"{e.path}.{key}: starts at {day_text(last)}{rep}, at or after the end of the "
                f"protocol; events must start before {day_text(duration_h)} "
                f"(duration {format_time(duration_h)})"
            )
        if e.kind == "mh_session" and last + e["duration"] > duration_h:
            raise ProtocolError(
                f"{e.path}.duration: session{rep} ends at {day_text(last + e['duration'])}, after "
                f"the end of the protocol; sessions must end by {day_text(duration_h)} "
                f"(duration {format_time(duration_h)})"
            )


def check_hf(entries: tuple[Entry, ...], allow_above_hergt: bool) -> list[tuple[Entry, float]]:
    """Reject H·f above the Hergt limit (unless allowed); return entries above Brezovich."""
    flags = []
    for e in entries:
        if e.kind != "mh_session":
            continue
        hf = e["field"] * 1e3 * e["frequency"] * 1e3
        if hf > HERGT_LIMIT and not allow_above_hergt:
            raise ProtocolError(
                f"{e.path}.field: H·f = {format_sci(hf)} A m^-1 s^-1 "
                f"({format_number(e['field'])} kA/m × "
                f"{format_number(e['frequency'])} kHz) exceeds the Hergt & Dutz (2007) limit "
                f"{format_sci(HERGT_LIMIT)} A m^-1 s^-1; lower field or frequency so that "
                f"H·f ≤ {format_sci(HERGT_LIMIT)}, or set allow_above_hergt = true"
            )
        if hf > BREZOVICH_LIMIT:
            flags.append((e, hf))
    return flags


def expand_sessions(entries: tuple[Entry, ...]) -> tuple[MHSession, ...]:
    """Unroll the repeats of all MH sessions, sort them by start and reject overlaps."""
    occurrences = []
    for e in entries:
        if e.kind == "mh_session":
            dur, dose = e["duration"], e["dose"]
            hf = e["field"] * 1e3 * e["frequency"] * 1e3
            rest: tuple = (e["field"], e["frequency"], e["agent"], dose.value, dose.unit, hf)
            rest += (e["uptake"], e["target"])  # the MHSession fields after the end
            occurrences += [(t, t + dur, e, k, dur, rest) for k, t in enumerate(e.times())]
    occurrences.sort(key=lambda o: (o[0], o[2].index, o[3]))
    for (a0, a1, a, ka, *_), (b0, b1, b, kb, *_) in zip(occurrences, occurrences[1:]):
        if b0 < a1:
            key = "every" if a is b else "start"
            raise ProtocolError(
                f"{b.path}.{key}: {a.label(ka)} ({day_text(a0)}–{hours_to_days(a1):.2f}) "
                f"overlaps {b.label(kb)} ({day_text(b0)}–{hours_to_days(b1):.2f}); "
                f"MH sessions must not overlap "
                f"(each must start at or after the end of the previous one)"
            )
    return tuple(
        MHSession(i, t0, dur, t1, *rest)
        for i, (t0, t1, _e, _k, dur, rest) in enumerate(occurrences)
    )


def expand_boluses(entries: tuple[Entry, ...]) -> tuple[Bolus, ...]:
    """Unroll the repeats of all instantaneous interventions, sorted by time then kind."""
    raw = []
    for e in entries:
        if e.kind == "mh_session":
            continue
        spec = KIND_SPECS[e.kind]
        skip = (spec.time_key, spec.amount_key, "every", "count")
        options = {k: v for k, v in e.items if k not in skip}
        shared = (e.kind, e[spec.amount_key], spec.amount_unit, options)
        order = KINDS.index(e.kind)
        raw += [(t, order, shared) for t in e.times()]
    raw.sort(key=lambda r: (r[0], r[1]))
    seen: dict[str, int] = {}
    out = []
    for t, _order, (kind, amount, unit, options) in raw:
        index = seen.get(kind, 0)
        out.append(Bolus(t, kind, amount, unit, dict(options), index))
        seen[kind] = index + 1
    return tuple(out)
