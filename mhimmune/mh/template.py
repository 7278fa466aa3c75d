"""The MH schedule factory: protocol factors and the template that builds protocols from them.

:data:`PROTOCOL_FACTORS` (in :mod:`mhimmune.mh.factors`) lists the factors (field, frequency,
session count and timing, feedback, anti-PD-L1 / anti-PD-1 / anti-CTLA-4 series, BSO /
HSP-inhibitor / chemodynamic agents) with their units, defaults and sensitivity ranges;
:class:`ScheduleTemplate` turns factor values (bare numbers in the factor units, e.g. one
design row of an ensemble) into a validated :class:`~mhimmune.Protocol`;
:func:`schedule_scan` runs a two-factor grid of schedules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ProtocolError
from mhimmune.core.units import cached_unit, convert, days_to_hours, hours_to_days, ureg
from mhimmune.mh.agents import get_agent
from mhimmune.mh.factors import ANTIBODY_SERIES, PROTOCOL_FACTORS, FactorInfo
from mhimmune.mh.kinds import KIND_SPECS, quick_entry
from mhimmune.mh.protocol import Protocol
from mhimmune.runs.designs import grid_design
from mhimmune.runs.ensemble import run_ensemble

__all__ = ["FactorInfo", "PROTOCOL_FACTORS", "ScheduleTemplate", "schedule_scan"]


_BY_KEYWORD = {f.keyword: name for name, f in PROTOCOL_FACTORS.items()}
_ORDER = {name: i for i, name in enumerate(PROTOCOL_FACTORS)}


class ScheduleTemplate:
    """A family of MH + anti-PD-L1 (+ BSO / HSP inhibitor) schedules built from factor values.

    The template holds one default per factor of :data:`PROTOCOL_FACTORS`; :meth:`build`
    replaces some by bare numbers in the unit of the factor's name and returns a
    validated :class:`~mhimmune.Protocol`. The MH series starts at ``mh_start`` with
    ``n_sessions`` sessions every ``session_interval``; each antibody series (anti-PD-L1,
    ``pdl1_*``; anti-PD-1, ``pd1_*``; anti-CTLA-4, ``ctla4_*``; only anti-PD-L1 is on by
    default) starts ``<ab>_delay`` after the first session (negative: before it); with
    ``feedback = 1`` sessions are thermostatted at ``target_temperature`` (the thermal
    dose per session is then set by its length: at 43 °C, CEM43 ≈ minutes above target);
    BSO, the HSP
    inhibitor and the chemodynamic (iron) agent, when switched on, are given ``*_lead``
    before each MH session.

    Parameters
    ----------
    duration
        Simulated period, a time with a unit (``"40 d"``).
    agent
        Heating agent of the catalogue (``"fe3o4_19nm_mpeg"``).
    name
        Name given to the protocols.
    allow_above_hergt
        Accept H·f above the Hergt–Dutz limit (otherwise such rows fail as protocol errors).
    truncate
        Drop repeats (sessions, doses) that would start or end after the simulated
        period (they cannot affect it) instead of rejecting the schedule.
    **defaults
        Defaults by keyword with units (``field="15 kA/m"``, ``n_sessions=3``,
        ``pdl1_delay="-1 d"``, ``bso=1``); see :data:`PROTOCOL_FACTORS`.
    """

    def __init__(
        self,
        duration: Any = "40 d",
        *,
        agent: str = "fe3o4_19nm_mpeg",
        name: str = "schedule",
        allow_above_hergt: bool = False,
        truncate: bool = True,
        **defaults: Any,
    ):
        Protocol(duration)  # validates the duration
        self.duration_h = convert(duration, "h", "duration")
        try:
            get_agent(agent)
        except ProtocolError as exc:
            raise ProtocolError(f"template.agent: {str(exc).removeprefix('agent: ')}") from None
        self.agent = agent
        self.name = str(name)
        self.allow_above_hergt = bool(allow_above_hergt)
        self.truncate = bool(truncate)
        values = {n: float(f.default) for n, f in PROTOCOL_FACTORS.items()}
        for key, raw in defaults.items():
            if key not in _BY_KEYWORD:
                raise ProtocolError(
                    f"template.{key}: unknown keyword; allowed: "
                    f"duration, agent, name, allow_above_hergt, truncate, "
                    f"{', '.join(_BY_KEYWORD)}"
                )
            fname = _BY_KEYWORD[key]
            info = PROTOCOL_FACTORS[fname]
            if info.kind == "quantity":
                values[fname] = convert(raw, info.unit, f"template.{key}")
            elif isinstance(raw, (int, float)):
                values[fname] = float(raw)
            else:
                raise ProtocolError(f"template.{key}: must be a number (got {raw!r})")
        self.defaults = values
        self._check(values, "template")
        self._cache = lru_cache(maxsize=4096)(self._build_key)
        self._empty: Protocol | None = None

    # ----------------------------------------------------------------------- info
    @property
    def factor_names(self) -> list[str]:
        """Names of the factors :meth:`build` accepts."""
        return list(PROTOCOL_FACTORS)

    def to_dict(self) -> dict[str, Any]:
        """The template as plain data (defaults as bare numbers in the factor units)."""
        return {
            "duration_h": self.duration_h,
            "agent": self.agent,
            "name": self.name,
            "allow_above_hergt": self.allow_above_hergt,
            "truncate": self.truncate,
            "defaults": dict(self.defaults),
        }

    def __repr__(self) -> str:
        days = hours_to_days(self.duration_h)
        return f"<ScheduleTemplate {self.name!r}: {days:g} d, agent {self.agent}>"

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cache", None)
        state["_empty"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = lru_cache(maxsize=4096)(self._build_key)
        self._empty = None

    # ---------------------------------------------------------------------- build
    @staticmethod
    def _check(v: Mapping[str, float], where: str, names: Any = None) -> None:
        """Check the factors *names* (default all), in the order of PROTOCOL_FACTORS."""
        order = PROTOCOL_FACTORS if names is None else sorted(names, key=_ORDER.__getitem__)
        for name in order:
            info, x = PROTOCOL_FACTORS[name], v[name]
            if not (isinstance(x, float) and math.isfinite(x)):
                raise ProtocolError(f"{where}.{name}: must be a finite number (got {x!r})")
            if info.kind == "count" and (x < 0 or x != int(x)):
                raise ProtocolError(f"{where}.{name}: must be an integer ≥ 0 (got {x:g})")
            if info.kind == "switch" and x not in (0.0, 1.0):
                raise ProtocolError(f"{where}.{name}: must be 0 or 1 (got {x:g})")

    def values(self, factors: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The defaults with *factors* (bare numbers in the factor units) replaced; validated."""
        v = dict(self.defaults)
        for k, x in (factors or {}).items():
            if k not in v:
                raise ProtocolError(
                    f"{k}: unknown protocol factor; known factors: {', '.join(PROTOCOL_FACTORS)}"
                )
            if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
                raise ProtocolError(
                    f"{k}: must be a number in {PROTOCOL_FACTORS[k].unit} (got {x!r})"
                )
            v[k] = float(x)
        self._check(v, "factor", factors or ())  # the defaults were checked by __init__
        return v

    def build(self, factors: Mapping[str, Any] | None = None) -> Protocol:
        """Build the protocol for *factors* (name -> number in the unit of the name).

        Returns a :class:`~mhimmune.Protocol`; bad values raise
        :class:`~mhimmune.core.errors.ProtocolError` naming the factor. Results are cached,
        so repeated factor combinations cost nothing.
        """
        v = self.values(factors)
        return self._cache(tuple(map(v.__getitem__, PROTOCOL_FACTORS)))

    def _build_key(self, key: tuple[float, ...]) -> Protocol:
        calls, error = self._calls(dict(zip(PROTOCOL_FACTORS, key)))
        # the entries straight from the numbers (in internal units), checked together once
        quick = [quick_entry(kind, 0, given) for kind, given in calls]  # one entry per kind
        entries = [e for e in quick if e is not None]
        if error is None and len(entries) == len(calls):
            try:
                return self._base().with_entries(entries)
            except ProtocolError:
                pass  # the builder methods below raise the error (the first they meet)
        # one builder call per intervention, the values as quantities: a value out of range
        # raises the builder's error naming its field
        plan = self._base()
        for kind, given in calls:
            fields = KIND_SPECS[kind].fields
            plan = getattr(plan, kind)(
                **{
                    k: ureg.Quantity(x, cached_unit(str(fields[k].unit)))
                    if fields[k].kind == "quantity" and x is not None
                    else x
                    for k, x in given.items()
                }
            )
        if error is not None:
            raise error
        return plan

    def _base(self) -> Protocol:
        """The protocol without interventions (made once per process)."""
        if self._empty is None:
            self._empty = Protocol(
                ureg.Quantity(self.duration_h, cached_unit("h")),
                name=self.name,
                allow_above_hergt=self.allow_above_hergt,
            )
        return self._empty

    def _calls(
        self, v: dict[str, float]
    ) -> tuple[list[tuple[str, dict[str, Any]]], ProtocolError | None]:
        """The builder calls of the protocol of factor values *v*, each (intervention
        kind, its keywords as numbers in the kind's internal units, ``None`` for absent),
        and the error of a bad factor combination met after them (else ``None``)."""
        end = self.duration_h
        start = days_to_hours(v["mh_start_day"])
        interval = days_to_hours(v["session_interval_day"])
        dur = v["session_duration_min"] / 60.0
        n_mh = int(v["n_sessions"])
        if n_mh > 0 and start < 0:
            raise ProtocolError(f"factor.mh_start_day: must be ≥ 0 (got {v['mh_start_day']:g})")
        if n_mh > 1 and interval < dur:
            raise ProtocolError(
                f"factor.session_interval_day: {v['session_interval_day']:g} d is "
                f"shorter than a session ({v['session_duration_min']:g} min)"
            )
        if self.truncate:
            n_mh = sum(1 for k in range(n_mh) if start + k * interval + dur <= end)
        calls: list[tuple[str, dict[str, Any]]] = []
        session_starts = [start + k * interval for k in range(n_mh)]
        if n_mh:
            calls.append(
                (
                    "mh_session",
                    dict(
                        start=start,
                        duration=dur,
                        field=v["field_kA_per_m"],
                        frequency=v["frequency_kHz"],
                        agent=self.agent,
                        dose=v["particle_dose_mg_per_cm3"],
                        target=v["target_temperature_C"] if v["feedback"] == 1.0 else None,
                        every=interval if n_mh > 1 else None,
                        count=n_mh,
                    ),
                )
            )
        for prefix, (method, label) in ANTIBODY_SERIES.items():
            n_ab = int(v[f"{prefix}_count"])
            t_ab = start + days_to_hours(v[f"{prefix}_delay_day"])
            every_ab = days_to_hours(v[f"{prefix}_interval_day"])
            if n_ab == 0:
                continue
            if t_ab < 0:
                return calls, ProtocolError(
                    f"factor.{prefix}_delay_day: the first {label} dose would be "
                    f"at day {hours_to_days(t_ab):g} < 0 (mh_start_day {v['mh_start_day']:g}"
                    f" + {prefix}_delay_day {v[f'{prefix}_delay_day']:g})"
                )
            if n_ab > 1 and every_ab <= 0:
                return calls, ProtocolError(
                    f"factor.{prefix}_interval_day: must be > 0 "
                    f"(got {v[f'{prefix}_interval_day']:g})"
                )
            if self.truncate:
                n_ab = sum(1 for k in range(n_ab) if t_ab + k * every_ab < end)
            if n_ab:
                calls.append(
                    (
                        method,
                        dict(
                            time=t_ab,
                            dose=v[f"{prefix}_dose_mg_per_kg"],
                            every=every_ab if n_ab > 1 else None,
                            count=n_ab,
                        ),
                    )
                )
        for switch, dose_key, lead_key in (
            ("bso", "bso_dose_mg_per_kg", "bso_lead_h"),
            ("hsp_inhibitor", "hsp_inhibitor_dose_mg_per_kg", "hsp_inhibitor_lead_h"),
            ("cdt", "cdt_dose_mg_per_kg", "cdt_lead_h"),
        ):
            if v[switch] != 1.0 or not session_starts:
                continue
            lead = v[lead_key]
            first = session_starts[0] - lead
            if first < 0:
                return calls, ProtocolError(
                    f"factor.{lead_key}: {switch} {lead:g} h before the first "
                    f"MH session (day {hours_to_days(session_starts[0]):g}) would be before "
                    f"day 0"
                )
            calls.append(
                (
                    switch,
                    dict(
                        time=first,
                        dose=v[dose_key],
                        every=interval if n_mh > 1 else None,
                        count=n_mh,
                    ),
                )
            )
        return calls, None


def schedule_scan(
    template: ScheduleTemplate,
    x: tuple[str, Sequence[float]],
    y: tuple[str, Sequence[float]],
    readouts: Sequence[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    evaluator: Callable | None = None,
    **run_kwargs,
) -> pd.DataFrame:
    """Run a two-factor grid of schedules through :func:`~mhimmune.runs.ensemble.run_ensemble`.

    Parameters
    ----------
    template
        The schedule family (other factors stay at its defaults).
    x, y
        ``(factor name, values)`` of the two axes (numbers in the factors' units).
    readouts
        Readouts to compute (default :data:`~mhimmune.mh.catalogue.DEFAULT_READOUTS`).
    params
        Fixed parameter overrides.
    evaluator
        Use this evaluator instead of a :class:`~mhimmune.mh.evaluator.ModelEvaluator`
        built from the above.
    **run_kwargs
        Passed to :func:`~mhimmune.runs.ensemble.run_ensemble` (``executor``, ``n_jobs``,
        ``client``, ``out``, ``progress``...).

    Returns
    -------
    pandas.DataFrame
        One row per grid point: run, status, message, the two factors and the readouts.
    """
    # import cycle: mh.evaluator checks protocols against ScheduleTemplate
    from mhimmune.mh.evaluator import ModelEvaluator

    design = grid_design(**{x[0]: x[1], y[0]: y[1]})
    ev = evaluator or ModelEvaluator(template, readouts, params=params)
    res = run_ensemble(ev, design, **run_kwargs)
    return res.results.drop(columns=["seconds"])
