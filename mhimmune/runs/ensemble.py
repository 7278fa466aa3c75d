"""Many runs: (protocol, parameter set) tasks on local processes or a Dask cluster.

A *design* is a table with one row per run and one column per factor (protocol
factors of a :class:`ScheduleTemplate` and model parameters by name, mixed freely).
An *evaluator* turns one row into outputs; :class:`ModelEvaluator` builds the
protocol, simulates the model and computes readouts (and, for time-resolved
sensitivity analysis, trajectories on a fixed time grid), but any picklable callable
``f(values: dict) -> float | dict`` works too (it is shipped with cloudpickle, so
functions defined in a notebook are fine).

:func:`run_ensemble` runs the design in chunks:

* ``n_jobs=1`` in this process, ``n_jobs>1`` in a :class:`~concurrent.futures.ProcessPoolExecutor`
  whose initializer sets the evaluator up once per worker (the compiled model is loaded
  from the disk cache once per process, never pickled), ``pool=`` a :class:`WorkerPool`
  kept alive across calls (workers set each evaluator up once and keep it, so callers
  that make many calls pay the worker start-up once), or ``client=`` a Dask
  distributed client (or scheduler address) where the same happens once per worker;
* failures are data: a run that fails gets a ``status`` other than ``"ok"`` and its
  error message, keeps its factor values, is counted and reported (a warning and
  :attr:`EnsembleResult.failures`); outputs are NaN only in such rows;
* with ``out=DIR`` each finished chunk is written atomically as a parquet file, so a
  run killed half-way resumes (``resume=True``) without recomputing finished runs;
  runs are identified by their row number and a hash of the design and evaluator;
* results depend only on the design: the same seed (of the sampler that made the
  design) gives identical results, whatever ``n_jobs`` or chunking.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from mhimmune.core.errors import (
    HfWarning,
    MhimmuneError,
    ParameterError,
    ProtocolError,
    SolverError,
)
from mhimmune.mh.readouts import summary_specs as _experiment_specs

__all__ = [
    "ScheduleTemplate",
    "PROTOCOL_FACTORS",
    "FactorInfo",
    "Readout",
    "DEFAULT_READOUTS",
    "ModelEvaluator",
    "EnsembleResult",
    "EnsembleFailureWarning",
    "run_ensemble",
    "WorkerPool",
    "check_pool",
    "pool_for",
    "grid_design",
    "schedule_scan",
    "STATUS_OK",
]

#: status of a run that succeeded
STATUS_OK = "ok"
_FORMAT_VERSION = 1


class EnsembleFailureWarning(UserWarning):
    """Some runs of an ensemble failed; they are listed in :attr:`EnsembleResult.failures`."""


# =============================================================================== schedules


@dataclass(frozen=True)
class FactorInfo:
    """A protocol factor of :class:`ScheduleTemplate`.

    Parameters
    ----------
    keyword
        Keyword of :class:`ScheduleTemplate` holding its default (given with a unit).
    unit
        Unit of the bare factor value (also in the factor's name); ``"1"`` for counts
        and 0/1 switches.
    kind
        ``"quantity"``, ``"count"`` (integer ≥ 0) or ``"switch"`` (0 or 1).
    default
        Default value in *unit*.
    lower, upper
        Default range for sensitivity analysis, in *unit*.
    dist
        Default distribution for sensitivity analysis: ``uniform``, ``loguniform`` or
        ``integer``.
    description
        What the factor is.
    """

    keyword: str
    unit: str
    kind: str
    default: float
    lower: float
    upper: float
    dist: str
    description: str


#: The protocol factors a :class:`ScheduleTemplate` understands, by factor name.
PROTOCOL_FACTORS: Mapping[str, FactorInfo] = {
    "mh_start_day": FactorInfo(
        "mh_start", "d", "quantity", 7.0, 5.0, 10.0, "uniform", "start of the first MH session"
    ),
    "field_kA_per_m": FactorInfo(
        "field", "kA/m", "quantity", 15.0, 8.0, 18.0, "uniform", "field amplitude H"
    ),
    "frequency_kHz": FactorInfo(
        "frequency", "kHz", "quantity", 200.0, 150.0, 270.0, "uniform", "field frequency f"
    ),
    "session_duration_min": FactorInfo(
        "session_duration",
        "min",
        "quantity",
        30.0,
        15.0,
        60.0,
        "uniform",
        "length of one MH session",
    ),
    "feedback": FactorInfo(
        "feedback",
        "1",
        "switch",
        0,
        0,
        1,
        "integer",
        "feedback-controlled sessions: the field (then the maximal field) is "
        "turned down once the tumour reaches target_temperature_C: 0 or 1",
    ),
    "target_temperature_C": FactorInfo(
        "target_temperature",
        "degC",
        "quantity",
        43.0,
        41.0,
        46.0,
        "uniform",
        "target temperature of feedback sessions",
    ),
    "n_sessions": FactorInfo(
        "n_sessions", "1", "count", 3, 1, 5, "integer", "number of MH sessions (0: no MH)"
    ),
    "session_interval_day": FactorInfo(
        "session_interval",
        "d",
        "quantity",
        2.0,
        1.0,
        4.0,
        "uniform",
        "interval between MH session starts",
    ),
    "particle_dose_mg_per_cm3": FactorInfo(
        "particle_dose",
        "mg/cm^3",
        "quantity",
        3.5,
        1.5,
        7.0,
        "uniform",
        "particle dose (mg Fe per cm³ of tumour)",
    ),
    "pdl1_delay_day": FactorInfo(
        "pdl1_delay",
        "d",
        "quantity",
        0.0,
        -3.0,
        6.0,
        "uniform",
        "first anti-PD-L1 dose relative to the first MH session start",
    ),
    "pdl1_dose_mg_per_kg": FactorInfo(
        "pdl1_dose",
        "mg/kg",
        "quantity",
        10.0,
        2.5,
        20.0,
        "loguniform",
        "anti-PD-L1 dose per injection",
    ),
    "pdl1_interval_day": FactorInfo(
        "pdl1_interval",
        "d",
        "quantity",
        3.0,
        2.0,
        6.0,
        "uniform",
        "interval between anti-PD-L1 doses",
    ),
    "pdl1_count": FactorInfo(
        "pdl1_count",
        "1",
        "count",
        3,
        1,
        5,
        "integer",
        "number of anti-PD-L1 doses (0: no antibody)",
    ),
    "bso": FactorInfo(
        "bso",
        "1",
        "switch",
        0,
        0,
        1,
        "integer",
        "BSO (GSH-synthesis inhibitor) before each MH session: 0 or 1",
    ),
    "bso_dose_mg_per_kg": FactorInfo(
        "bso_dose", "mg/kg", "quantity", 200.0, 50.0, 400.0, "loguniform", "BSO dose per injection"
    ),
    "bso_lead_h": FactorInfo(
        "bso_lead",
        "h",
        "quantity",
        2.0,
        0.5,
        24.0,
        "uniform",
        "BSO given this long before each MH session",
    ),
    "hsp_inhibitor": FactorInfo(
        "hsp_inhibitor",
        "1",
        "switch",
        0,
        0,
        1,
        "integer",
        "HSP inhibitor before each MH session: 0 or 1",
    ),
    "hsp_inhibitor_dose_mg_per_kg": FactorInfo(
        "hsp_inhibitor_dose",
        "mg/kg",
        "quantity",
        50.0,
        15.0,
        100.0,
        "loguniform",
        "HSP-inhibitor dose per injection",
    ),
    "hsp_inhibitor_lead_h": FactorInfo(
        "hsp_inhibitor_lead",
        "h",
        "quantity",
        2.0,
        0.5,
        24.0,
        "uniform",
        "HSP inhibitor given this long before each session",
    ),
    "cdt": FactorInfo(
        "cdt",
        "1",
        "switch",
        0,
        0,
        1,
        "integer",
        "chemodynamic (iron Fenton) agent before each MH session: 0 or 1",
    ),
    "cdt_dose_mg_per_kg": FactorInfo(
        "cdt_dose",
        "mg/kg",
        "quantity",
        5.0,
        1.0,
        20.0,
        "loguniform",
        "CDT-agent dose per injection",
    ),
    "cdt_lead_h": FactorInfo(
        "cdt_lead",
        "h",
        "quantity",
        2.0,
        0.5,
        24.0,
        "uniform",
        "CDT agent given this long before each MH session",
    ),
}
_BY_KEYWORD = {f.keyword: name for name, f in PROTOCOL_FACTORS.items()}


class ScheduleTemplate:
    """A family of MH + anti-PD-L1 (+ BSO / HSP inhibitor) schedules built from factor values.

    The template holds one default per factor of :data:`PROTOCOL_FACTORS`; :meth:`build`
    replaces some by bare numbers in the unit of the factor's name and returns a
    validated :class:`~mhimmune.Protocol`. The MH series starts at ``mh_start`` with
    ``n_sessions`` sessions every ``session_interval``; the antibody series starts
    ``pdl1_delay`` after the first session (negative: before it); with ``feedback = 1``
    sessions are thermostatted at ``target_temperature`` (the thermal dose per session
    is then set by its length: at 43 °C, CEM43 ≈ minutes above target); BSO, the HSP
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
        from mhimmune.core.units import convert
        from mhimmune.mh.agents import get_agent
        from mhimmune.mh.protocol import Protocol

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
        return f"<ScheduleTemplate {self.name!r}: {self.duration_h / 24:g} d, agent {self.agent}>"

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = lru_cache(maxsize=4096)(self._build_key)

    # ---------------------------------------------------------------------- build
    @staticmethod
    def _check(v: Mapping[str, float], where: str) -> None:
        for name, info in PROTOCOL_FACTORS.items():
            x = v[name]
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
        self._check(v, "factor")
        return v

    def build(self, factors: Mapping[str, Any] | None = None):
        """Build the protocol for *factors* (name -> number in the unit of the name).

        Returns a :class:`~mhimmune.Protocol`; bad values raise
        :class:`~mhimmune.core.errors.ProtocolError` naming the factor. Results are cached,
        so repeated factor combinations cost nothing.
        """
        v = self.values(factors)
        return self._cache(tuple(v[n] for n in PROTOCOL_FACTORS))

    def _build_key(self, key: tuple[float, ...]):
        from mhimmune.core.units import ureg
        from mhimmune.mh.protocol import Protocol

        v = dict(zip(PROTOCOL_FACTORS, key))
        Q = ureg.Quantity
        end = self.duration_h
        start = v["mh_start_day"] * 24.0
        interval = v["session_interval_day"] * 24.0
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
        plan = Protocol(Q(end, "h"), name=self.name, allow_above_hergt=self.allow_above_hergt)
        session_starts = [start + k * interval for k in range(n_mh)]
        if n_mh:
            plan = plan.mh_session(
                start=Q(start, "h"),
                duration=Q(dur, "h"),
                field=Q(v["field_kA_per_m"], "kA/m"),
                frequency=Q(v["frequency_kHz"], "kHz"),
                agent=self.agent,
                dose=Q(v["particle_dose_mg_per_cm3"], "mg/cm^3"),
                target=Q(v["target_temperature_C"], "degC") if v["feedback"] == 1.0 else None,
                every=Q(interval, "h") if n_mh > 1 else None,
                count=n_mh,
            )
        n_ab = int(v["pdl1_count"])
        t_ab = start + v["pdl1_delay_day"] * 24.0
        every_ab = v["pdl1_interval_day"] * 24.0
        if n_ab > 0:
            if t_ab < 0:
                raise ProtocolError(
                    f"factor.pdl1_delay_day: the first anti-PD-L1 dose would be "
                    f"at day {t_ab / 24:g} < 0 (mh_start_day {v['mh_start_day']:g}"
                    f" + pdl1_delay_day {v['pdl1_delay_day']:g})"
                )
            if n_ab > 1 and every_ab <= 0:
                raise ProtocolError(
                    f"factor.pdl1_interval_day: must be > 0 (got {v['pdl1_interval_day']:g})"
                )
            if self.truncate:
                n_ab = sum(1 for k in range(n_ab) if t_ab + k * every_ab < end)
            if n_ab:
                plan = plan.anti_pdl1(
                    time=Q(t_ab, "h"),
                    dose=Q(v["pdl1_dose_mg_per_kg"], "mg/kg"),
                    every=Q(every_ab, "h") if n_ab > 1 else None,
                    count=n_ab,
                )
        for switch, method, dose_key, lead_key in (
            ("bso", "bso", "bso_dose_mg_per_kg", "bso_lead_h"),
            (
                "hsp_inhibitor",
                "hsp_inhibitor",
                "hsp_inhibitor_dose_mg_per_kg",
                "hsp_inhibitor_lead_h",
            ),
            ("cdt", "cdt", "cdt_dose_mg_per_kg", "cdt_lead_h"),
        ):
            if v[switch] != 1.0 or not session_starts:
                continue
            lead = v[lead_key]
            first = session_starts[0] - lead
            if first < 0:
                raise ProtocolError(
                    f"factor.{lead_key}: {switch} {lead:g} h before the first "
                    f"MH session (day {session_starts[0] / 24:g}) would be before "
                    f"day 0"
                )
            plan = getattr(plan, method)(
                time=Q(first, "h"),
                dose=Q(v[dose_key], "mg/kg"),
                every=Q(interval, "h") if n_mh > 1 else None,
                count=n_mh,
            )
        return plan


# ================================================================================ readouts


@dataclass(frozen=True)
class Readout:
    """A scalar computed from one simulation's arrays.

    Parameters
    ----------
    name
        Column name of the readout.
    kind
        ``final``, ``min``, ``max``, ``auc`` (trapezoid over the recorded points,
        units·day), ``at`` (value at *day*, linear interpolation) or ``cure`` (1 if the
        summed variables are ≤ *threshold* at *day*, or at the end, else 0).
    variables
        Recorded variable names; several are summed (``tumour_volume_treated +
        tumour_volume_distant``).
    day
        Time in days for ``at`` and ``cure``; ``None`` = the end of the protocol.
    threshold
        Cure threshold in the variables' unit (mm³ for tumour volumes).
    relative
        *day* counts from the start of the first treatment of each run's protocol
        (:attr:`mhimmune.Protocol.first_treatment_h`) instead of from day 0; such a
        readout fails (as a run failure) for an untreated protocol.
    """

    name: str
    kind: str
    variables: tuple[str, ...]
    day: float | None = None
    threshold: float | None = None
    relative: bool = False

    _KINDS = ("final", "min", "max", "auc", "at", "cure")

    @classmethod
    def cure(
        cls,
        threshold_mm3: float = 1.0,
        day: float | None = None,
        name: str = "cure",
        relative: bool = False,
    ) -> Readout:
        """Cure flag: total tumour (treated + distant) ≤ *threshold_mm3* (mm³) at *day* (d; end
        if None; counted from the first treatment if *relative*)."""
        return cls(
            name,
            "cure",
            ("tumour_volume_treated", "tumour_volume_distant"),
            day,
            float(threshold_mm3),
            bool(relative),
        )

    @classmethod
    def parse(cls, spec: str | Readout, name: str | None = None) -> Readout:
        """A readout from text: a summary name (``final_volume_treated_mm3``), ``final:VAR``,
        ``min:VAR``, ``max:VAR`` (or ``peak:VAR``), ``auc:VAR``, ``VAR@DAY`` (value at a day),
        ``cure``, ``cure@DAY`` or ``cure<=THRESHOLD`` (combined: ``cure<=10@57``); VAR may
        be ``A+B`` (a sum). ``@+DAY`` counts days from the first treatment of each run
        (``cure<=10@+50``: total tumour ≤ 10 mm³ 50 days after the first treatment).
        """
        if isinstance(spec, Readout):
            return (
                spec
                if name is None
                else Readout(
                    name, spec.kind, spec.variables, spec.day, spec.threshold, spec.relative
                )
            )
        if not isinstance(spec, str) or not spec.strip():
            raise ParameterError(
                f"readout: expected text such as 'auc:cd8_effectors_total', got {spec!r}"
            )
        text = spec.strip().replace(" ", "")
        label = name or text
        if text in _SUMMARY_READOUTS:
            r = _SUMMARY_READOUTS[text]
            return Readout(label, r.kind, r.variables, r.day, r.threshold)
        if text.startswith("cure"):
            rest, day, threshold, relative = text[4:], None, 1.0, False
            if "@" in rest:
                rest, d = rest.split("@", 1)
                relative = d.startswith("+")
                day = _float(d.removeprefix("+"), spec)
            if rest.startswith("<="):
                threshold = _float(rest[2:], spec)
            elif rest:
                raise ParameterError(f"readout {spec!r}: write cure, cure@DAY or cure<=THRESHOLD")
            return Readout(
                label,
                "cure",
                ("tumour_volume_treated", "tumour_volume_distant"),
                day,
                threshold,
                relative,
            )
        if ":" in text:
            kind, var = text.split(":", 1)
            kind = {"peak": "max"}.get(kind, kind)
            if kind not in ("final", "min", "max", "auc"):
                raise ParameterError(
                    f"readout {spec!r}: unknown kind {kind!r}; use final, min, "
                    f"max (peak), auc, VAR@DAY or cure"
                )
            return Readout(label, kind, tuple(var.split("+")))
        if "@" in text:
            var, d = text.split("@", 1)
            return Readout(
                label,
                "at",
                tuple(var.split("+")),
                _float(d.removeprefix("+"), spec),
                relative=d.startswith("+"),
            )
        raise ParameterError(
            f"readout {spec!r}: not a summary name ({', '.join(_SUMMARY_READOUTS)}) "
            f"nor final:VAR, min:VAR, max:VAR, auc:VAR, VAR@DAY or cure"
        )


def _float(text: str, spec: str) -> float:
    try:
        x = float(text.removesuffix("d"))
    except ValueError:
        raise ParameterError(f"readout {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(x) or x < 0:
        raise ParameterError(f"readout {spec!r}: {text!r} must be a finite number ≥ 0")
    return x


#: readouts named as in :meth:`mhimmune.SimulationResult.summary`, computed from arrays
_SUMMARY_READOUTS: dict[str, Readout] = {
    "final_volume_treated_mm3": Readout(
        "final_volume_treated_mm3", "final", ("tumour_volume_treated",)
    ),
    "min_volume_treated_mm3": Readout("min_volume_treated_mm3", "min", ("tumour_volume_treated",)),
    "final_volume_distant_mm3": Readout(
        "final_volume_distant_mm3", "final", ("tumour_volume_distant",)
    ),
    "min_volume_distant_mm3": Readout("min_volume_distant_mm3", "min", ("tumour_volume_distant",)),
    "peak_temperature_C": Readout("peak_temperature_C", "max", ("temperature_C",)),
    "cem43_total_min": Readout("cem43_total_min", "final", ("cem43_min",)),
    "auc_atp_treated": Readout("auc_atp_treated", "auc", ("atp_e_treated",)),
    "auc_hmgb1_treated": Readout("auc_hmgb1_treated", "auc", ("hmgb1_treated",)),
    "auc_hsp70e_treated": Readout("auc_hsp70e_treated", "auc", ("hsp70_e_treated",)),
    "auc_damp_signal": Readout("auc_damp_signal", "auc", ("damp_signal",)),
    "peak_crt_fraction": Readout("peak_crt_fraction", "max", ("crt_fraction_treated",)),
    "peak_mature_dc_fraction": Readout("peak_mature_dc_fraction", "max", ("mature_dc_fraction",)),
    "peak_cd8_effectors_Mcell": Readout(
        "peak_cd8_effectors_Mcell", "max", ("cd8_effectors_total",)
    ),
    "auc_cd8_effectors": Readout("auc_cd8_effectors", "auc", ("cd8_effectors_total",)),
    "peak_m1_m2_ratio": Readout("peak_m1_m2_ratio", "max", ("m1_m2_ratio",)),
    "peak_pdl1_occupancy": Readout("peak_pdl1_occupancy", "max", ("pdl1_occupancy",)),
}

# the experiment-comparable readouts of SimulationResult.summary() (values at fixed days)
_SUMMARY_READOUTS.update(
    {k: Readout(k, kind, (var,), day) for k, kind, var, day in _experiment_specs()}
)

#: default readouts: the scalars of ``SimulationResult.summary()`` (those the model has)
#: plus a cure flag (total tumour ≤ 1 mm³ at the end)
DEFAULT_READOUTS: tuple[str, ...] = tuple(_SUMMARY_READOUTS) + ("cure",)


# =============================================================================== evaluator

_MODELS: dict[tuple, Any] = {}


def _get_model(links, parameters, standalone):
    """The model for this process, loaded once (from the compiled-model disk cache)."""
    key = (tuple(links) if links else None, _freeze(parameters), bool(standalone))
    if key not in _MODELS:
        from mhimmune.core.model import load_model

        _MODELS[key] = load_model(
            links=links, parameters=parameters, standalone=standalone, verbose=False
        )
    return _MODELS[key]


def _freeze(x):
    if x is None or isinstance(x, (str, Path)):
        return None if x is None else str(x)
    return tuple(str(i) for i in x)


def _fast_model(model, names: Iterable[str]):
    """A view of *model* whose ``parameter_vector`` skips unit parsing for *names*.

    For each parameter the map from the table value to the internal value is measured
    once with the model's own :meth:`~mhimmune.Model.parameter_vector` (an affine map,
    checked at a third point). Values inside the table's [lower, upper] use it
    (everything in that range passed validation when the table was loaded); other
    values, strings with units and other names go through the model's own,
    validating method.
    """
    from mhimmune.core.model import Model

    class FastModel(Model):  # a view sharing the model's state; only parameter_vector differs
        def parameter_vector(self, overrides=None):
            if overrides:
                fast = self._mh_fast
                p = None
                for k, x in overrides.items():
                    f = fast.get(k)
                    if f is None or isinstance(x, (str, bool)) or not (f[3] <= x <= f[4]):
                        return Model.parameter_vector(self, overrides)
                    if p is None:
                        p = self._mh_base.copy()
                    p[f[0]] = f[1] * x + f[2]
                if p is not None:
                    return p
            return Model.parameter_vector(self, overrides)

    view = object.__new__(FastModel)
    view.__dict__.update(model.__dict__)
    base = model.parameter_vector({})
    fast = {}
    frame = model.table.frame
    for name in names:
        if name not in frame.index or frame.at[name, "distribution"] == "fixed":
            continue
        lo, hi = float(frame.at[name, "lower"]), float(frame.at[name, "upper"])
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            continue
        x1, x2, x3 = lo, hi, lo + 0.37 * (hi - lo)
        try:
            p1, p2, p3 = (model.parameter_vector({name: x}) for x in (x1, x2, x3))
        except MhimmuneError:
            continue
        idx = np.nonzero(p1 != p2)[0]
        if len(idx) != 1:
            continue
        i = int(idx[0])
        a = (p2[i] - p1[i]) / (x2 - x1)
        b = p1[i] - a * x1
        if not np.isclose(a * x3 + b, p3[i], rtol=1e-12, atol=0.0):
            continue
        fast[name] = (i, a, b, lo, hi)
    view._mh_fast = fast
    view._mh_base = base
    return view


class ModelEvaluator:
    """Evaluate one design row: build the protocol, simulate, compute readouts.

    Parameters
    ----------
    protocol
        A :class:`ScheduleTemplate` (its factors may be design columns) or a fixed
        :class:`~mhimmune.Protocol` (then every column is a model parameter).
    readouts
        Readout specifications (see :meth:`Readout.parse`) or a mapping name -> spec;
        default :data:`DEFAULT_READOUTS`.
    trajectories
        Variables to record on *time_grid_day* for time-resolved analysis.
    time_grid_day
        Times (days) of the trajectories; default every day of the protocol.
    params
        Fixed parameter overrides for every run (design columns take precedence).
    links, parameters, standalone
        How each worker builds the model (:func:`mhimmune.load_model`); default the
        full model with its default parameter tables.
    simulate_options
        Keyword arguments of :func:`mhimmune.core.simulate` (tolerances, output steps).
    """

    def __init__(
        self,
        protocol,
        readouts: Sequence[str | Readout] | Mapping[str, str] | None = None,
        *,
        trajectories: Sequence[str] = (),
        time_grid_day: Sequence[float] | None = None,
        params: Mapping[str, Any] | None = None,
        links: Sequence[str] | None = None,
        parameters: Any = None,
        standalone: bool = False,
        simulate_options: Mapping[str, Any] | None = None,
    ):
        from mhimmune.mh.protocol import Protocol

        if not isinstance(protocol, (Protocol, ScheduleTemplate)):
            raise ProtocolError(
                f"protocol: expected a mhimmune.Protocol or ScheduleTemplate, "
                f"got {type(protocol).__name__}"
            )
        self.protocol = protocol
        self._default_readouts = readouts is None
        if readouts is None:
            readouts = DEFAULT_READOUTS
        if isinstance(readouts, Mapping):
            self.readouts = [Readout.parse(v, name=k) for k, v in readouts.items()]
        else:
            self.readouts = [Readout.parse(r) for r in readouts]
        names = [r.name for r in self.readouts]
        if len(set(names)) != len(names):
            raise ParameterError(
                f"readouts: duplicate names {sorted({n for n in names if names.count(n) > 1})}"
            )
        self.trajectory_names = list(trajectories)
        duration_d = self._duration_h() / 24.0
        if time_grid_day is None:
            grid = np.arange(0.0, math.floor(duration_d) + 1.0)
            grid = grid[grid <= duration_d]
        else:
            grid = np.asarray(time_grid_day, dtype=float)
        if (
            grid.ndim != 1
            or len(grid) == 0
            or not np.all(np.isfinite(grid))
            or grid.min() < 0
            or grid.max() > duration_d + 1e-9
            or np.any(np.diff(grid) <= 0)
        ):
            raise ProtocolError(
                f"time_grid_day: must be increasing days within [0, {duration_d:g}]"
            )
        self.time_grid_day = grid if self.trajectory_names else None
        self.params = dict(params or {})
        self.links = list(links) if links else None
        self.parameters = parameters
        self.standalone = bool(standalone)
        self.simulate_options = dict(simulate_options or {})
        self._model = None
        self._source_hash = _source_fingerprint()

    @classmethod
    def from_model(cls, model, protocol, readouts=None, **kwargs) -> ModelEvaluator:
        """An evaluator whose workers rebuild *model* (its links; default parameter tables).

        Raises :class:`~mhimmune.core.errors.ParameterError` when *model* carries a custom
        parameter table that workers cannot rebuild (pass ``parameters=`` files then).
        """
        from mhimmune.core.model import DEFAULT_LINKS

        kwargs.setdefault(
            "links", None if tuple(model.links) == tuple(DEFAULT_LINKS) else list(model.links)
        )
        kwargs.setdefault("standalone", model.standalone)
        ev = cls(protocol, readouts, **kwargs)
        fresh = _get_model(ev.links, ev.parameters, ev.standalone)
        if fresh is not model and not np.array_equal(
            fresh.parameter_vector({}), model.parameter_vector({})
        ):
            raise ParameterError(
                "model: its parameter values differ from the tables workers load; "
                "pass parameters=<table files> or the differences as params="
            )
        return ev

    def _duration_h(self) -> float:
        return self.protocol.duration_h

    # ------------------------------------------------------------------ identity
    @property
    def output_names(self) -> list[str]:
        """Names of the scalar outputs, in order (after :meth:`setup`, only those the model has)."""
        return [r.name for r in self.readouts]

    def fingerprint(self) -> str:
        """Text identifying what this evaluator computes (for resume checks)."""
        proto = self.protocol.to_dict()
        return json.dumps(
            {
                "protocol": proto,
                "template": isinstance(self.protocol, ScheduleTemplate),
                "readouts": [
                    (r.name, r.kind, r.variables, r.day, r.threshold, r.relative)
                    for r in self.readouts
                ],
                "trajectories": self.trajectory_names,
                "grid": None if self.time_grid_day is None else list(self.time_grid_day),
                "params": {k: str(v) for k, v in sorted(self.params.items())},
                "links": self.links,
                "parameters": _freeze(self.parameters),
                "standalone": self.standalone,
                "simulate": {k: str(v) for k, v in sorted(self.simulate_options.items())},
                "source": self._source_hash,
            },
            sort_keys=True,
            default=str,
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_model", "_index", "_fast_model"):
            state.pop(k, None)
        state["_model"] = None
        return state

    # --------------------------------------------------------------------- setup
    def setup(self, factor_names: Sequence[str] = ()) -> None:
        """Load the model once in this process and resolve readouts and variables."""
        if self._model is not None:
            return
        model = _get_model(self.links, self.parameters, self.standalone)
        variables = list(model.species) + list(model.compiled.derived_names)
        index: dict[str, tuple[int, int]] = {}
        n_species = len(model.species)
        for i, v in enumerate(variables):
            if v not in index:
                index[v] = (0, i) if i < n_species else (1, i - n_species)
        if self._default_readouts:  # like summary(): only readouts whose variables exist
            self.readouts = [r for r in self.readouts if all(v in index for v in r.variables)]
        missing = sorted(
            {v for r in self.readouts for v in r.variables if v not in index}
            | {v for v in self.trajectory_names if v not in index}
        )
        if missing:
            import difflib

            hints = {m: difflib.get_close_matches(m, variables, n=3) for m in missing}
            raise ParameterError(
                f"unknown variable(s) in readouts/trajectories: {missing}; close matches: {hints}"
            )
        self._index = index
        param_names = set(factor_names) | set(self.params)
        self._fast_model = _fast_model(
            model, [n for n in param_names if n in model.table.frame.index]
        )
        self._model = model

    def validate(self, factor_names: Sequence[str]) -> None:
        """Check design columns before any run: protocol factors or model parameter names."""
        self.setup(factor_names)
        protocol_factors = (
            set(PROTOCOL_FACTORS) if isinstance(self.protocol, ScheduleTemplate) else set()
        )
        known = set(self._model.parameter_names) | set(self._model.stubs)
        bad = [n for n in factor_names if n not in protocol_factors and n not in known]
        if bad:
            import difflib

            hints = {
                n: difflib.get_close_matches(n, sorted(known | protocol_factors), n=3) for n in bad
            }
            where = (
                "protocol factors or model parameters"
                if protocol_factors
                else "model parameters (the protocol is fixed: use a ScheduleTemplate for protocol factors)"
            )
            raise ParameterError(f"design columns {bad} are not {where}; close matches: {hints}")
        self._model.parameter_vector(self.params)  # fixed overrides are valid

    # ---------------------------------------------------------------------- call
    def __call__(self, values: Mapping[str, float]) -> dict[str, Any]:
        """Outputs of one run: readouts (floats) and trajectories (arrays on the grid)."""
        from mhimmune.mh.simulation import simulate

        if self._model is None:
            self.setup(list(values))
        if isinstance(self.protocol, ScheduleTemplate):
            pf = {k: v for k, v in values.items() if k in PROTOCOL_FACTORS}
            overrides = dict(self.params)
            overrides.update((k, v) for k, v in values.items() if k not in PROTOCOL_FACTORS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HfWarning)
                plan = self.protocol.build(pf)
        else:
            plan = self.protocol
            overrides = dict(self.params)
            overrides.update(values)
        res = simulate(self._fast_model, plan, overrides, **self.simulate_options)
        return self.readouts_of(
            res.time_h, res.states, res.derived, plan.duration_h, plan.first_treatment_h
        )

    def readouts_of(
        self,
        time_h: np.ndarray,
        states: np.ndarray,
        derived: np.ndarray,
        duration_h: float,
        first_treatment_h: float | None = None,
    ) -> dict[str, Any]:
        """Readouts and trajectories from a simulation's arrays (time in h).

        *first_treatment_h* is the start of the first treatment, needed by readouts whose
        day counts from it (``relative``).
        """
        t = time_h / 24.0
        arrays = (states, derived)
        index = self._index
        cache: dict[tuple[str, ...], np.ndarray] = {}

        def series(variables):
            if variables not in cache:
                y = None
                for v in variables:
                    which, i = index[v]
                    col = arrays[which][:, i]
                    y = col if y is None else y + col
                cache[variables] = y
            return cache[variables]

        out: dict[str, Any] = {}
        end_d = duration_h / 24.0
        for r in self.readouts:
            y = series(r.variables)
            if r.kind == "final":
                out[r.name] = float(y[-1])
            elif r.kind == "min":
                out[r.name] = float(y.min())
            elif r.kind == "max":
                out[r.name] = float(y.max())
            elif r.kind == "auc":
                out[r.name] = float(np.trapezoid(y, t))
            else:
                day = end_d if r.day is None else r.day
                if r.relative and r.day is not None:
                    if first_treatment_h is None:
                        raise ValueError(
                            f"readout {r.name}: its day counts from the first "
                            f"treatment, but the protocol has no treatment"
                        )
                    day = r.day + first_treatment_h / 24.0
                if day > end_d + 1e-9:
                    raise ValueError(
                        f"readout {r.name}: day {day:g} is after the end of the "
                        f"protocol (day {end_d:g})"
                    )
                value = float(y[-1]) if r.day is None else float(np.interp(day, t, y))
                out[r.name] = value if r.kind == "at" else float(value <= r.threshold)
        for v in self.trajectory_names:
            out[v] = np.interp(self.time_grid_day, t, series((v,)))
        return out


def _source_fingerprint() -> str:
    """Hash of the model files and parameter tables (a model change invalidates resume)."""
    from mhimmune.core.resources import resource_dir

    h = hashlib.sha256()
    for name, pattern in (("models", "*.py"), ("parameters", "**/*.tsv")):
        try:
            folder = resource_dir(name)
        except MhimmuneError:
            continue
        for f in sorted(folder.glob(pattern)):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ================================================================================== runner


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, SolverError):
        return "solver_error"
    if isinstance(exc, ProtocolError):
        return "protocol_error"
    if isinstance(exc, ParameterError):
        return "parameter_error"
    return "error"


def _evaluate_chunk(evaluator, names: list[str], runs: np.ndarray, X: np.ndarray) -> dict:
    """Evaluate rows *X* (runs *runs*) with *evaluator*; failures are recorded, not raised."""
    status, message, seconds, values = [], [], [], []
    for row in X:
        t0 = time.perf_counter()
        try:
            out = evaluator(dict(zip(names, row.tolist())))
            if isinstance(out, Mapping):
                out = dict(out)
            elif isinstance(out, (int, float, np.integer, np.floating)) and not isinstance(
                out, bool
            ):
                out = {"y": float(out)}
            else:
                raise TypeError(
                    f"evaluator returned {type(out).__name__}; expected a number or "
                    f"a mapping name -> number/array"
                )
            status.append(STATUS_OK)
            message.append("")
            values.append(out)
        except Exception as exc:  # failures are data; KeyboardInterrupt etc. still stop
            status.append(_status_of(exc))
            message.append(f"{type(exc).__name__}: {exc}"[:2000])
            values.append(None)
        seconds.append(time.perf_counter() - t0)
    return {
        "runs": runs,
        "status": status,
        "message": message,
        "seconds": seconds,
        "values": values,
    }


_WORKER: dict[str, Any] = {}


def _worker_init(payload: bytes, names: list[str]) -> None:
    """Process-pool initializer: unpickle and set up the evaluator once per worker."""
    warnings.simplefilter("ignore", HfWarning)
    ev = cloudpickle.loads(payload)
    if hasattr(ev, "setup"):
        ev.setup(names) if _accepts_names(ev) else ev.setup()
    _WORKER["evaluator"] = ev


def _worker_chunk(names: list[str], runs: np.ndarray, X: np.ndarray) -> dict:
    return _evaluate_chunk(_WORKER["evaluator"], names, runs, X)


def _dask_chunk(
    key: str, payload: bytes, names: list[str], runs: np.ndarray, X: np.ndarray
) -> dict:
    """Dask task: the evaluator is unpickled and set up once per worker process (cached by key)."""
    cache = _WORKER.setdefault("dask", {})
    if key not in cache:
        warnings.simplefilter("ignore", HfWarning)
        ev = cloudpickle.loads(payload)
        if hasattr(ev, "setup"):
            ev.setup(names) if _accepts_names(ev) else ev.setup()
        cache.clear()
        cache[key] = ev
    return _evaluate_chunk(cache[key], names, runs, X)


def _accepts_names(ev) -> bool:
    import inspect

    try:
        return len(inspect.signature(ev.setup).parameters) >= 1
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------- worker pool

#: evaluators a :class:`WorkerPool` worker keeps set up (least recently used dropped first)
POOL_CACHE_SIZE = 8
#: pickled evaluators up to this size travel with every task; larger ones are written
#: once to the pool's temporary folder and read by each worker that lacks them
_INLINE_PAYLOAD_MAX = 256 * 1024


def _pool_worker_init(cache_size: int) -> None:
    """Initializer of a :class:`WorkerPool` process: an empty evaluator cache."""
    warnings.simplefilter("ignore", HfWarning)
    _WORKER["pool"] = OrderedDict()
    _WORKER["pool_size"] = int(cache_size)


def _pool_chunk(
    key: str, ref: bytes | str, names: list[str], runs: np.ndarray, X: np.ndarray
) -> dict:
    """WorkerPool task: evaluate a chunk with the evaluator *key*, set up once per worker.

    *ref* is the pickled evaluator (bytes) or the path of a file holding it; it is
    unpickled and set up only when this worker does not hold *key* yet.
    """
    cache = _WORKER.get("pool")
    if cache is None:  # a pool process whose initializer did not run: should not happen
        _pool_worker_init(POOL_CACHE_SIZE)
        cache = _WORKER["pool"]
    ev = cache.get(key)
    if ev is None:
        payload = ref if isinstance(ref, bytes) else Path(ref).read_bytes()
        ev = cloudpickle.loads(payload)
        if hasattr(ev, "setup"):
            ev.setup(names) if _accepts_names(ev) else ev.setup()
        cache[key] = ev
        while len(cache) > _WORKER.get("pool_size", POOL_CACHE_SIZE):
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return _evaluate_chunk(ev, names, runs, X)


def _shutdown_pool(executor: ProcessPoolExecutor, tmpdir: list) -> None:
    executor.shutdown(wait=True, cancel_futures=True)
    if tmpdir:
        shutil.rmtree(tmpdir.pop(), ignore_errors=True)


def check_pool(pool, client=None) -> None:
    """Raise :class:`~mhimmune.core.errors.ParameterError` unless *pool* is ``None`` or an open,
    working :class:`WorkerPool` given without a Dask *client*."""
    if pool is None:
        return
    if client is not None:
        raise ParameterError(
            "pool, client: give a WorkerPool (local processes) or a Dask client, not both"
        )
    if not isinstance(pool, WorkerPool):
        raise ParameterError(
            f"pool: expected a mhimmune.runs.ensemble.WorkerPool, got {type(pool).__name__}"
        )
    pool._check()


@contextmanager
def pool_for(n_jobs: int = 1, client: Any = None, pool: WorkerPool | None = None):
    """Context manager giving the pool a caller with several ensembles should use: *pool*
    itself, ``None`` (serial, or *client*), or — for ``n_jobs > 1`` without either — a
    :class:`WorkerPool` opened here and closed on exit."""
    check_pool(pool, client)
    if pool is None and client is None and int(n_jobs) > 1:
        with WorkerPool(int(n_jobs)) as own:
            yield own
    else:
        yield pool


class WorkerPool:
    """Local worker processes kept alive across :func:`run_ensemble` calls.

    ``run_ensemble(..., n_jobs=4)`` starts four processes and sets the evaluator up in
    each (with the ``spawn`` start method, the default on macOS and Windows, that means
    importing mhimmune and loading the compiled model, seconds per call). A
    ``WorkerPool`` starts its processes once; every call that is given ``pool=`` sends
    its chunks to them. Each worker keeps the evaluators it has seen, keyed by a hash of
    the pickled evaluator and the design's column names, and calls an evaluator's
    ``setup()`` once, so different evaluators can share one pool (the last
    :data:`POOL_CACHE_SIZE` per worker are kept by default). Results are identical to
    ``n_jobs=1`` and to ``n_jobs>1`` without a pool.

    Parameters
    ----------
    n_jobs
        Number of worker processes, an integer ≥ 1 (1 still runs in a separate process).
    cache_size
        Evaluators each worker keeps set up; the least recently used is dropped first.
    start_method
        ``"fork"``, ``"spawn"`` or ``"forkserver"`` (see :mod:`multiprocessing`);
        ``None`` uses the default of the platform, as ``run_ensemble(n_jobs=...)`` does.

    Raises
    ------
    ParameterError
        *n_jobs*, *cache_size* or *start_method* out of range (the message names it).

    Notes
    -----
    Use it as a context manager, or call :meth:`close` when done::

        with WorkerPool(4) as pool:
            for design in designs:
                run_ensemble(evaluator, design, pool=pool)

    With the ``fork`` start method (the Linux default) the processes start at the first
    task and inherit what this process has loaded then (the compiled model after
    :meth:`ModelEvaluator.validate`). A worker that dies (killed, out of memory, a crash
    in native code) breaks the pool: the running call raises
    :class:`~mhimmune.core.errors.MhimmuneError` and later calls refuse the pool; close it
    and create a new one (with ``out=`` checkpoints, ``resume=True`` continues).
    The pool can be shared by threads of this process, but not pickled.
    """

    def __init__(
        self, n_jobs: int, *, cache_size: int = POOL_CACHE_SIZE, start_method: str | None = None
    ):
        if (
            isinstance(n_jobs, bool)
            or not isinstance(n_jobs, (int, np.integer, float))
            or not math.isfinite(n_jobs)
            or int(n_jobs) != n_jobs
            or n_jobs < 1
        ):
            raise ParameterError(
                f"n_jobs: a WorkerPool needs an integer number of processes ≥ 1 (got {n_jobs!r})"
            )
        if (
            isinstance(cache_size, bool)
            or not isinstance(cache_size, (int, np.integer))
            or cache_size < 1
        ):
            raise ParameterError(f"cache_size: must be an integer ≥ 1 (got {cache_size!r})")
        methods = multiprocessing.get_all_start_methods()
        if start_method is not None and start_method not in methods:
            raise ParameterError(
                f"start_method: must be one of {', '.join(methods)} or None (got {start_method!r})"
            )
        self._n_jobs = int(n_jobs)
        self._cache_size = int(cache_size)
        self._start_method = start_method
        context = multiprocessing.get_context(start_method)
        self._executor = ProcessPoolExecutor(
            max_workers=self._n_jobs,
            mp_context=context,
            initializer=_pool_worker_init,
            initargs=(self._cache_size,),
        )
        self._tmpdir: list[str] = []
        self._spilled: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._broken: str | None = None
        self._finalizer = weakref.finalize(self, _shutdown_pool, self._executor, self._tmpdir)

    # -------------------------------------------------------------------- state
    @property
    def n_jobs(self) -> int:
        """Number of worker processes."""
        return self._n_jobs

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def broken(self) -> bool:
        """Whether a worker died, so the pool cannot run anything more."""
        return self._broken is not None

    def close(self) -> None:
        """Stop the workers (queued chunks are cancelled, running ones finish) and free
        the temporary folder. Calling it again does nothing."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "broken" if self._broken else "open"
        method = f", {self._start_method}" if self._start_method else ""
        plural = "es" if self._n_jobs != 1 else ""
        return f"<WorkerPool: {self._n_jobs} process{plural}{method}, {state}>"

    def __reduce__(self):
        raise TypeError(
            "a WorkerPool cannot be pickled; pass it to run_ensemble(pool=...) in "
            "the process that created it"
        )

    def _check(self) -> None:
        """Raise if the pool cannot take work."""
        if self._closed:
            raise ParameterError(
                "pool: the WorkerPool is closed; create a new WorkerPool (or "
                "use it inside its `with` block)"
            )
        if self._broken is not None:
            raise MhimmuneError(
                f"pool: the WorkerPool is broken ({self._broken}); close it and "
                f"create a new WorkerPool"
            )

    # --------------------------------------------------------------------- work
    def _reference(self, key: str, payload: bytes) -> bytes | str:
        """What a task carries to find the evaluator: the bytes, or a file for large ones."""
        if len(payload) <= _INLINE_PAYLOAD_MAX:
            return payload
        with self._lock:
            if not self._tmpdir:
                self._tmpdir.append(tempfile.mkdtemp(prefix="mhimmune-pool-"))
            path = os.path.join(self._tmpdir[0], f"{key}.pkl")
            if key not in self._spilled:
                from mhimmune.core.io import atomic_path

                with atomic_path(Path(path)) as tmp:
                    Path(tmp).write_bytes(payload)
                self._spilled.add(key)
        return path

    def _run(self, evaluator, names: list[str], X: np.ndarray, chunks):
        """Yield raw chunk results as they finish (used by :func:`run_ensemble`)."""
        self._check()
        payload = cloudpickle.dumps(evaluator)
        h = hashlib.sha256(payload)
        h.update(json.dumps(list(names)).encode())
        key = h.hexdigest()[:32]
        ref = self._reference(key, payload)
        pending: set = set()
        try:
            for runs in chunks:
                pending.add(self._executor.submit(_pool_chunk, key, ref, names, runs, X[runs]))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        except BrokenProcessPool as exc:
            self._broken = "a worker process died: killed, out of memory or a crash in native code"
            raise MhimmuneError(
                f"pool: a worker process of the WorkerPool died while running "
                f"the ensemble (killed, out of memory or a crash in native "
                f"code: {exc}); the pool cannot be used any more: close it and "
                f"create a new WorkerPool (with out=, resume=True keeps the "
                f"finished chunks)"
            ) from None
        except RuntimeError as exc:
            if self._closed:  # closed by another thread while this call ran
                raise ParameterError(
                    "pool: the WorkerPool was closed while the ensemble ran"
                ) from exc
            raise
        finally:
            for fut in pending:
                fut.cancel()


@dataclass
class EnsembleResult:
    """Outcome of :func:`run_ensemble`.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per run (sorted by ``run``): ``run``, ``status`` (``"ok"`` or the kind
        of failure), ``message`` (error text, empty when ok), ``seconds`` (wall time of
        the run), the design columns, then one column per scalar output (NaN only
        where ``status != "ok"``).
    factor_names, output_names, trajectory_names : list of str
        Design columns, scalar outputs and trajectory variables.
    time_grid_day : numpy.ndarray or None
        Times (days) of the trajectories.
    trajectory_arrays : dict
        Variable -> array (runs × times); rows of failed runs are NaN.
    design_hash : str
        Identity of design + evaluator (the checkpoint key).
    n_computed : int
        Runs computed by this call (the others were resumed from disk).
    elapsed_s : float
        Wall time of this call in seconds.
    out : pathlib.Path or None
        Checkpoint folder.
    """

    results: pd.DataFrame
    factor_names: list[str]
    output_names: list[str]
    trajectory_names: list[str] = field(default_factory=list)
    time_grid_day: np.ndarray | None = None
    trajectory_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    design_hash: str = ""
    n_computed: int = 0
    elapsed_s: float = 0.0
    out: Path | None = None

    @property
    def n_runs(self) -> int:
        """Number of runs in the design."""
        return len(self.results)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the runs that succeeded."""
        return (self.results["status"] == STATUS_OK).to_numpy()

    @property
    def n_failed(self) -> int:
        """Number of runs that failed."""
        return int((~self.ok).sum())

    @property
    def failures(self) -> pd.DataFrame:
        """The failed runs: run, status, message and their factor values."""
        cols = ["run", "status", "message", *self.factor_names]
        return self.results.loc[~self.ok, cols].reset_index(drop=True)

    def output(self, name: str) -> np.ndarray:
        """One scalar output as an array over all runs (NaN for failed runs)."""
        if name not in self.output_names:
            raise KeyError(f"unknown output {name!r}; outputs: {self.output_names}")
        return self.results[name].to_numpy(dtype=float)

    def trajectories(self, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Tidy trajectories of the successful runs: run, variable, time_day, value."""
        frames = []
        runs = self.results["run"].to_numpy()[self.ok]
        for v in variables or self.trajectory_names:
            a = self.trajectory_arrays[v][self.ok]
            frames.append(
                pd.DataFrame(
                    {
                        "run": np.repeat(runs, a.shape[1]),
                        "variable": v,
                        "time_day": np.tile(self.time_grid_day, len(runs)),
                        "value": a.ravel(),
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=["run", "variable", "time_day", "value"])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        """One line: runs, failures by status, computed/resumed, wall time."""
        counts = self.results.loc[~self.ok, "status"].value_counts()
        failed = ", ".join(f"{k}: {v}" for k, v in counts.items())
        rate = self.n_computed / self.elapsed_s if self.elapsed_s > 0 else float("nan")
        return (
            f"{self.n_runs} runs, {self.n_runs - self.n_failed} ok, {self.n_failed} failed"
            f"{f' ({failed})' if failed else ''}; {self.n_computed} computed in "
            f"{self.elapsed_s:.1f} s ({rate:.1f} runs/s), "
            f"{self.n_runs - self.n_computed} resumed"
        )

    def __repr__(self) -> str:
        return f"<EnsembleResult: {self.summary()}>"


# ------------------------------------------------------------------------------ storage


class _Store:
    """Checkpoint folder: manifest.json, design.parquet, chunks/chunk-FIRST-LAST.parquet."""

    def __init__(self, out: Path, design_hash: str, design: pd.DataFrame, resume: bool, meta: dict):
        self.out = Path(out)
        self.chunks = self.out / "chunks"
        manifest = self.out / "manifest.json"
        if manifest.is_file():
            old = json.loads(manifest.read_text())
            if not resume:
                raise MhimmuneError(
                    f"{self.out} already holds ensemble results; pass resume=True "
                    f"(--resume) to continue them, or choose another folder"
                )
            if old.get("design_hash") != design_hash:
                raise MhimmuneError(
                    f"{self.out} holds results of a different design or model "
                    f"(hash {old.get('design_hash')} != {design_hash}); choose "
                    f"another folder to start a new run"
                )
            self.manifest = old
        else:
            if self.chunks.is_dir() and any(self.chunks.glob("chunk-*.parquet")):
                raise MhimmuneError(
                    f"{self.out}/chunks holds files without a manifest; choose another folder"
                )
            self.manifest = {
                "format": _FORMAT_VERSION,
                "design_hash": design_hash,
                "n_runs": len(design),
                **meta,
            }
            self.chunks.mkdir(parents=True, exist_ok=True)
            _write_parquet(design.reset_index(drop=True), self.out / "design.parquet")
            self.write_manifest()
        self.chunks.mkdir(parents=True, exist_ok=True)
        for stale in self.chunks.glob(".chunk-*"):  # temporary files of a killed writer
            stale.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        from mhimmune.core.io import atomic_path

        with atomic_path(self.out / "manifest.json") as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=1, default=str))

    def load(self) -> list[pd.DataFrame]:
        frames = []
        for f in sorted(self.chunks.glob("chunk-*.parquet")):
            frames.append(pd.read_parquet(f))
        return frames

    def save(self, frame: pd.DataFrame) -> None:
        first, last = int(frame["run"].iloc[0]), int(frame["run"].iloc[-1])
        _write_parquet(frame, self.chunks / f"chunk-{first:09d}-{last:09d}.parquet")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    from mhimmune.core.io import atomic_path

    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


# ------------------------------------------------------------------------------- runner


def _design_frame(design) -> pd.DataFrame:
    if isinstance(design, pd.DataFrame):
        df = design.reset_index(drop=True)
    elif isinstance(design, Mapping):
        df = pd.DataFrame(design)
    else:
        df = pd.DataFrame(list(design))
    if df.shape[1] == 0 and len(df) == 0:
        raise ParameterError("design: no runs")
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise ParameterError(f"design: column names must be factor names (text), got {bad}")
    reserved = {"run", "status", "message", "seconds"} & set(df.columns)
    if reserved:
        raise ParameterError(f"design: reserved column names {sorted(reserved)}")
    try:
        df = df.astype(float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"design: every value must be a number ({exc})") from None
    if not np.all(np.isfinite(df.to_numpy())):
        rows = np.nonzero(~np.all(np.isfinite(df.to_numpy()), axis=1))[0][:5].tolist()
        raise ParameterError(f"design: NaN or infinite values in rows {rows}")
    return df


def _hash(design: pd.DataFrame, evaluator) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(list(design.columns)).encode())
    h.update(np.ascontiguousarray(design.to_numpy(dtype=float)).tobytes())
    fp = (
        evaluator.fingerprint()
        if hasattr(evaluator, "fingerprint")
        else f"{getattr(evaluator, '__module__', '')}.{getattr(evaluator, '__qualname__', type(evaluator).__qualname__)}"
    )
    h.update(fp.encode())
    return h.hexdigest()[:24]


def _progress_disabled(progress: bool | None) -> bool:
    if progress is False:
        return True
    env = os.environ.get("TQDM_DISABLE", "")
    return env.strip().lower() not in ("", "0", "false", "no")


def run_ensemble(
    evaluator: Callable[[dict], Any],
    design,
    *,
    n_jobs: int = 1,
    client: Any = None,
    pool: WorkerPool | None = None,
    chunk_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool | None = None,
    desc: str = "runs",
    warn: bool = True,
) -> EnsembleResult:
    """Run every row of *design* through *evaluator*, in parallel, with checkpoints.

    Parameters
    ----------
    evaluator
        A :class:`ModelEvaluator` or any picklable callable ``f(values) -> number |
        mapping`` taking a dict factor -> float; mapping values may be numbers (scalar
        outputs) or 1-D arrays (trajectories on the evaluator's ``time_grid_day``).
        An optional ``setup()`` method runs once per worker (per evaluator and worker
        of a *pool*), an optional
        ``validate(names)`` once here before any run, an optional ``fingerprint()``
        identifies what it computes for resume.
    design
        DataFrame (or list of dicts) with one row per run and one numeric column per factor.
    n_jobs
        Local worker processes, started for this call; 1 runs in this process.
    client
        A ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``); when
        given, runs go to that Dask cluster and *n_jobs* is ignored.
    pool
        A :class:`WorkerPool` whose processes run the chunks and stay alive for the next
        call (callers making many calls save the worker start-up); *n_jobs* is ignored.
        Not together with *client*.
    chunk_size
        Runs per task (and per checkpoint file); default balances per-task overhead
        against load balancing (at most 128).
    out
        Folder for checkpoints (parquet chunks, design, manifest); ``None`` keeps results in memory.
    resume
        Continue the run stored in *out* (same design and evaluator), computing only
        runs that are not on disk.
    retry_failed
        With *resume*, also recompute runs stored as failed.
    progress
        Show a tqdm bar; ``None`` shows it unless ``TQDM_DISABLE`` is set.
    desc
        Label of the progress bar.
    warn
        Issue an :class:`EnsembleFailureWarning` when runs failed.

    Returns
    -------
    EnsembleResult
        Per-run table (status, message, factors, outputs), trajectories, failures.

    Raises
    ------
    ParameterError
        A bad design or chunk size; *pool* together with *client*, not a
        :class:`WorkerPool`, or closed.
    MhimmuneError
        A checkpoint folder that does not match; a worker of *pool* died (the pool is
        then broken).
    """
    from tqdm import tqdm

    t_start = time.perf_counter()
    check_pool(pool, client)
    df = _design_frame(design)
    names = list(df.columns)
    if hasattr(evaluator, "validate"):
        evaluator.validate(names)
    n = len(df)
    X = df.to_numpy(dtype=float)
    dhash = _hash(df, evaluator)
    out_path = Path(out) if out is not None else None
    meta = {
        "factor_names": names,
        "output_names": list(getattr(evaluator, "output_names", []) or []),
        "trajectory_names": list(getattr(evaluator, "trajectory_names", []) or []),
    }
    store = _Store(out_path, dhash, df, resume, meta) if out_path is not None else None

    collected: list[pd.DataFrame] = []
    done = np.zeros(n, dtype=bool)
    if store is not None:
        for frame in store.load():
            frame = frame[(frame["run"] >= 0) & (frame["run"] < n)]
            if retry_failed:
                frame = frame[frame["status"] == STATUS_OK]
            frame = frame[~done[frame["run"].to_numpy()]]
            frame = frame.drop_duplicates("run")
            done[frame["run"].to_numpy()] = True
            collected.append(frame)
    pending = np.nonzero(~done)[0]

    schema = _Schema(
        meta["output_names"], meta["trajectory_names"], getattr(evaluator, "time_grid_day", None)
    )
    if store is not None and store.manifest.get("output_names"):
        schema.outputs = list(store.manifest["output_names"])
        schema.trajectories = list(store.manifest.get("trajectory_names") or [])
        schema.known = True  # else the first computed chunk would add the names again

    client, owns_client = _client(client) if client is not None else (None, False)
    if pool is not None:
        workers = pool.n_jobs
    else:
        workers = max(1, int(n_jobs)) if client is None else _dask_workers(client)
    if chunk_size is None:
        chunk_size = int(min(128, max(1, math.ceil(len(pending) / (workers * 16)))))
    if chunk_size < 1:
        raise ParameterError(f"chunk_size: must be ≥ 1 (got {chunk_size})")
    chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]

    bar = tqdm(
        total=n,
        initial=int(done.sum()),
        desc=desc,
        unit="run",
        disable=_progress_disabled(progress),
        dynamic_ncols=True,
    )
    n_computed = 0
    try:
        for raw in _execute(
            evaluator, names, X, chunks, n_jobs=max(1, int(n_jobs)), client=client, pool=pool
        ):
            frame = schema.frame(raw)
            if store is not None:
                if not store.manifest.get("output_names") and schema.known:
                    store.manifest["output_names"] = schema.outputs
                    store.manifest["trajectory_names"] = schema.trajectories
                    store.write_manifest()
                store.save(frame)
            collected.append(frame)
            n_computed += len(frame)
            bar.update(len(frame))
    finally:
        bar.close()
        if owns_client:
            client.close()

    result = _assemble(collected, df, names, schema, n)
    result.design_hash = dhash
    result.n_computed = n_computed
    result.elapsed_s = time.perf_counter() - t_start
    result.out = out_path
    if warn and result.n_failed:
        counts = result.results.loc[~result.ok, "status"].value_counts()
        first = result.failures.iloc[0]
        warnings.warn(
            f"{result.n_failed} of {n} runs failed "
            f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); e.g. run "
            f"{int(first['run'])}: {first['message'][:200]}; all failed runs with their "
            f"factor values are in result.failures",
            EnsembleFailureWarning,
            stacklevel=2,
        )
    return result


class _Schema:
    """Output names discovered from the evaluator or its first successful run."""

    def __init__(self, outputs, trajectories, grid):
        self.outputs = list(outputs)
        self.trajectories = list(trajectories)
        self.grid = None if grid is None else np.asarray(grid, dtype=float)
        self.known = bool(self.outputs or self.trajectories)

    def learn(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            if np.ndim(v) == 0:
                self.outputs.append(k)
            else:
                self.trajectories.append(k)
        self.known = True

    def frame(self, raw: dict) -> pd.DataFrame:
        status = list(raw["status"])
        message = list(raw["message"])
        if not self.known:
            first = next((v for v in raw["values"] if v is not None), None)
            if first is not None:
                self.learn(first)
        m = len(status)
        cols = {o: np.full(m, np.nan) for o in self.outputs}
        trajs: dict[str, list] = {v: [None] * m for v in self.trajectories}
        for j, values in enumerate(raw["values"]):
            if values is None:
                continue
            problem = None
            missing = [k for k in self.outputs + self.trajectories if k not in values]
            extra = [k for k in values if k not in cols and k not in trajs]
            if missing or extra:
                problem = f"evaluator returned outputs {sorted(values)}; expected {self.outputs + self.trajectories}"
            else:
                try:
                    scal = {o: float(values[o]) for o in self.outputs}
                    arr = {v: np.asarray(values[v], dtype=float).ravel() for v in self.trajectories}
                except (TypeError, ValueError) as exc:
                    scal, arr, problem = {}, {}, f"non-numeric output ({exc})"
                if problem is None:
                    bad = [o for o, x in scal.items() if not math.isfinite(x)] + [
                        v for v, a in arr.items() if not np.all(np.isfinite(a))
                    ]
                    if bad:
                        status[j] = "nonfinite"
                        message[j] = f"non-finite output(s): {', '.join(bad)}"
                        continue
                    if self.grid is not None:
                        short = [v for v, a in arr.items() if len(a) != len(self.grid)]
                        if short:
                            problem = f"trajectory length differs from the time grid: {short}"
            if problem:
                status[j] = "bad_output"
                message[j] = problem
                continue
            for o, x in scal.items():
                cols[o][j] = x
            for v, a in arr.items():
                trajs[v][j] = a
        frame = pd.DataFrame(
            {
                "run": np.asarray(raw["runs"], dtype=np.int64),
                "status": status,
                "message": message,
                "seconds": np.asarray(raw["seconds"], dtype=float),
                **cols,
            }
        )
        for v in self.trajectories:
            frame[f"trajectory:{v}"] = pd.Series(trajs[v], dtype=object)
        return frame


def _assemble(collected, design: pd.DataFrame, names, schema: _Schema, n: int) -> EnsembleResult:
    if collected:
        allr = pd.concat(collected, ignore_index=True).sort_values("run").drop_duplicates("run")
    else:
        allr = pd.DataFrame({"run": np.arange(0)})
    allr = allr.set_index("run").reindex(np.arange(n))
    for o in schema.outputs:
        if o not in allr:
            allr[o] = np.nan
    table = pd.DataFrame(
        {
            "run": np.arange(n, dtype=np.int64),
            "status": allr["status"].fillna("not_run").to_numpy(),
            "message": allr["message"].fillna("").to_numpy(),
            "seconds": allr["seconds"].to_numpy(dtype=float),
        }
    )
    table = pd.concat([table, design.reset_index(drop=True)], axis=1)
    for o in schema.outputs:
        table[o] = allr[o].to_numpy(dtype=float)
    ok = (table["status"] == STATUS_OK).to_numpy()
    trajectories = {}
    grid = schema.grid
    for v in schema.trajectories:
        col = allr.get(f"trajectory:{v}")
        length = (
            len(grid)
            if grid is not None
            else max(
                (len(a) for a in col if a is not None and not (isinstance(a, float))), default=0
            )
        )
        arr = np.full((n, length), np.nan)
        if col is not None:
            for i in np.nonzero(ok)[0]:
                arr[i] = np.asarray(col.iloc[i], dtype=float)
        trajectories[v] = arr
    if grid is None and schema.trajectories:
        grid = np.arange(max((a.shape[1] for a in trajectories.values()), default=0), dtype=float)
    return EnsembleResult(
        results=table,
        factor_names=list(names),
        output_names=list(schema.outputs),
        trajectory_names=list(schema.trajectories),
        time_grid_day=grid,
        trajectory_arrays=trajectories,
    )


def _dask_workers(client) -> int:
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # an unusual client object: assume a small cluster
        return 2


def _client(client):
    """(client, owned): a distributed.Client from a client or an address."""
    if isinstance(client, str):
        from distributed import Client

        return Client(client), True
    return client, False


def _execute(evaluator, names, X, chunks, *, n_jobs: int, client, pool=None):
    """Yield raw chunk results as they finish (serial, process pool, WorkerPool or Dask)."""
    if not chunks:
        return
    if pool is not None:
        yield from pool._run(evaluator, names, X, chunks)
        return
    if client is not None:
        yield from _execute_dask(evaluator, names, X, chunks, client)
        return
    if n_jobs <= 1:
        if hasattr(evaluator, "setup"):
            evaluator.setup(names) if _accepts_names(evaluator) else evaluator.setup()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HfWarning)
            for runs in chunks:
                yield _evaluate_chunk(evaluator, names, runs, X[runs])
        return
    payload = cloudpickle.dumps(evaluator)
    pool = ProcessPoolExecutor(
        max_workers=n_jobs, initializer=_worker_init, initargs=(payload, names)
    )
    try:
        pending = {pool.submit(_worker_chunk, names, runs, X[runs]) for runs in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_dask(evaluator, names, X, chunks, client):
    from distributed import as_completed

    payload = cloudpickle.dumps(evaluator)
    key = hashlib.sha256(payload).hexdigest()[:16]
    [payload_future] = client.scatter([payload], broadcast=True)
    futures = [
        client.submit(_dask_chunk, key, payload_future, names, runs, X[runs], pure=False)
        for runs in chunks
    ]
    try:
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.cancel(futures)


# ================================================================================= grids


def grid_design(**axes: Sequence[float]) -> pd.DataFrame:
    """Full-factorial design: one row per combination of the given factor values.

    Parameters
    ----------
    **axes
        Factor name -> values (bare numbers in the factor's unit).
    """
    if not axes:
        raise ParameterError(
            "grid_design: give at least one factor, e.g. session_interval_day=[1, 2, 3]"
        )
    names = list(axes)
    values = [list(np.atleast_1d(np.asarray(v, dtype=float))) for v in axes.values()]
    return pd.DataFrame(list(itertools.product(*values)), columns=names)


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
    """Run a two-factor grid of schedules through :func:`run_ensemble`.

    Parameters
    ----------
    template
        The schedule family (other factors stay at its defaults).
    x, y
        ``(factor name, values)`` of the two axes (numbers in the factors' units).
    readouts
        Readouts to compute (default :data:`DEFAULT_READOUTS`).
    params
        Fixed parameter overrides.
    evaluator
        Use this evaluator instead of a :class:`ModelEvaluator` built from the above.
    **run_kwargs
        Passed to :func:`run_ensemble` (``n_jobs``, ``client``, ``out``, ``progress``...).

    Returns
    -------
    pandas.DataFrame
        One row per grid point: run, status, message, the two factors and the readouts.
    """
    design = grid_design(**{x[0]: x[1], y[0]: y[1]})
    ev = evaluator or ModelEvaluator(template, readouts, params=params)
    res = run_ensemble(ev, design, **run_kwargs)
    return res.results.drop(columns=["seconds"])
