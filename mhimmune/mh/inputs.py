"""Protocol to schedule: the MH inputs of each segment and the doses at each breakpoint.

:func:`protocol_schedule` translates a :class:`~mhimmune.mh.protocol.Protocol` for one
model into the engine's :class:`~mhimmune.core.schedule.Schedule`: the protocol's
breakpoints become segments, an active MH session sets the model's heating inputs
(SAR of the agent at the session's field and frequency, field, frequency, feedback
target), drug doses and particle injections become state jumps on the model's dose
targets. The agent's SAR is looked up here once per session (:func:`session_heating`)
and kept for the session table of the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from mhimmune.core.errors import ProtocolError
from mhimmune.core.model import Model
from mhimmune.core.schedule import Jump, Schedule, Segment
from mhimmune.mh.agents import get_agent
from mhimmune.mh.events import Bolus, MHSession
from mhimmune.mh.protocol import Protocol

__all__ = [
    "MH_INPUTS",
    "FINE_AFTER_SESSION_H",
    "SessionHeating",
    "session_heating",
    "protocol_schedule",
    "dose_kind",
]

#: inputs a heating link declares: SAR (W/g), field (kA/m), frequency (kHz), feedback
#: target (°C) and feedback switch (0/1)
MH_INPUTS = ("mh_sar_W_per_g", "mh_field_kA_per_m", "mh_freq_kHz", "mh_target_C", "mh_feedback")

#: hours of cooling after each session recorded at the fine output step
FINE_AFTER_SESSION_H = 1.0


@dataclass(frozen=True)
class SessionHeating:
    """The heating of one MH session.

    Parameters
    ----------
    session
        The session.
    sar_W_per_g
        Specific absorption rate of its agent at its field and frequency, W/g Fe.
    sar_method
        How the SAR was obtained (measured point, interpolation, model; see
        :meth:`mhimmune.mh.agents.Agent.heating_at`).
    """

    session: MHSession
    sar_W_per_g: float
    sar_method: str


@lru_cache(maxsize=4096)
def _heating_at(agent: str, field_kA_per_m: float, freq_kHz: float) -> tuple[float, str]:
    """SAR (W/g) and method of *agent* at a field and frequency (the catalogue is read-only,
    so repeated sessions and ensemble rows look each combination up once)."""
    sar, method = get_agent(agent).heating_at(field_kA_per_m, freq_kHz)
    return float(sar), method


def session_heating(protocol: Protocol) -> tuple[SessionHeating, ...]:
    """SAR of every MH session of *protocol*, looked up in the agent catalogue."""
    return tuple(
        SessionHeating(s, *_heating_at(s.agent, s.field_kA_per_m, s.freq_kHz))
        for s in protocol.mh_sessions()
    )


def dose_kind(bolus: Bolus) -> str:
    """The model's dose kind a bolus targets (``"cdt:fe"`` for a CDT dose with iron)."""
    metal = (bolus.options or {}).get("metal")
    return f"{bolus.kind}:{metal}" if metal else bolus.kind


def _session_inputs(model: Model, heating: SessionHeating | None) -> dict[str, float]:
    """Input values during a segment: zero, or the active session's."""
    values = {n: 0.0 for n in model.inputs}
    if heating is not None:
        s = heating.session
        values["mh_sar_W_per_g"] = heating.sar_W_per_g
        values["mh_field_kA_per_m"] = s.field_kA_per_m
        values["mh_freq_kHz"] = s.freq_kHz
        if s.target_C is not None:
            values["mh_target_C"] = s.target_C
            values["mh_feedback"] = 1.0
    return values


def _doses(model: Model, protocol: Protocol) -> dict[float, list[tuple[int, float]]]:
    """``(dose target, amount)`` pairs by time; fail early and clearly on missing targets."""
    targets: dict[str, list[int]] = {}
    for i, k in enumerate(model.compiled.bolus_kinds):
        targets.setdefault(k, []).append(i)
    plan: dict[float, list[tuple[int, float]]] = {}
    for b in protocol.boluses():
        kind = dose_kind(b)
        if kind not in targets:
            raise ProtocolError(
                f"{b.kind}[{b.index}]: this model has no target for dose kind {kind!r} "
                f"(model links: {', '.join(model.links)}; dose kinds it accepts: "
                f"{', '.join(sorted(targets)) or 'none'})"
            )
        plan.setdefault(b.time_h, []).extend((i, b.amount) for i in targets[kind])
    sessions = protocol.mh_sessions()
    if sessions:
        missing = [n for n in MH_INPUTS if n not in model.inputs]
        if missing or "mh_particles" not in targets or "mh_particles_per_kg" not in targets:
            raise ProtocolError(
                f"mh_session: this model has no heating link (links: {', '.join(model.links)})"
            )
        for s in sessions:
            if s.dose_unit == "mg/kg":
                kind, amount = "mh_particles_per_kg", s.dose * (s.uptake_fraction or 0.0)
            else:
                kind, amount = "mh_particles", s.dose
            plan.setdefault(s.start_h, []).extend((i, amount) for i in targets[kind])
    return plan


def protocol_schedule(
    model: Model, protocol: Protocol, heating: Sequence[SessionHeating] | None = None
) -> Schedule:
    """The engine's schedule of *protocol* on *model*.

    Parameters
    ----------
    model
        The model whose inputs and dose targets the schedule sets.
    protocol
        The treatment protocol.
    heating
        The sessions' heating from :func:`session_heating` (looked up when ``None``).

    Returns
    -------
    Schedule
        One segment per protocol segment; session segments carry the heating inputs and
        are ``fine``; each session and the following hour is a fine output window. The
        jumps at one instant are additions (drug doses) before top-ups (particle iron).

    Raises
    ------
    ProtocolError
        When the model has no target for a dose kind or no heating link for a session.
    """
    plan = _doses(model, protocol)
    c = model.compiled
    if heating is None:
        heating = session_heating(protocol)
    by_start = {h.session.start_h: h for h in heating}
    modes, species = c.bolus_modes, c.bolus_species
    idle = dict.fromkeys(model.inputs, 0.0)  # the inputs between sessions
    segments = []
    for seg in protocol.segments():
        active = None if seg.session is None else by_start[seg.session.start_h]
        doses = plan.get(seg.t0_h, ())
        if len(doses) > 1:
            doses = sorted(doses, key=lambda d: modes[d[0]] == "top_up")
        jumps = tuple([Jump(species[i], a, modes[i], i) for i, a in doses]) if doses else ()
        inputs = dict(idle) if active is None else _session_inputs(model, active)
        segments.append(Segment(seg.t0_h, seg.t1_h, inputs, jumps, active is not None))
    duration = protocol.duration_h
    windows = tuple(
        (h.session.start_h, min(h.session.end_h + FINE_AFTER_SESSION_H, duration)) for h in heating
    )
    return Schedule(duration, tuple(segments), windows)
