"""Simulating a treatment protocol: :func:`simulate` and its :class:`SimulationResult`.

:func:`simulate` translates a :class:`~mhimmune.mh.protocol.Protocol` into the engine's
schedule (:func:`mhimmune.mh.inputs.protocol_schedule`), integrates it with
:func:`mhimmune.core.simulate.integrate` and wraps the trajectories in a
:class:`SimulationResult`: tidy and wide tables, the per-session heating table, the
summary readouts and plots.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError, ProtocolError
from mhimmune.core.identity_cache import IdentityCache
from mhimmune.core.model import Model
from mhimmune.core.params import OutOfRangeWarning
from mhimmune.core.schedule import Schedule
from mhimmune.core.simulate import METHODS, SolverStatus, Trajectories, integrate
from mhimmune.core.units import convert, days_to_hours, hours_to_days
from mhimmune.mh.catalogue import SUMMARY_READOUTS
from mhimmune.mh.inputs import SessionHeating, protocol_schedule, session_heating
from mhimmune.mh.presets import protocol_overrides
from mhimmune.mh.protocol import Protocol
from mhimmune.runs.readout import evaluate

__all__ = ["simulate", "select_variables", "SimulationResult", "SolverStatus"]


def simulate(
    model: Model,
    protocol: Protocol,
    params: Mapping[str, Any] | None = None,
    *,
    output_step: Any = "0.25 d",
    session_output_step: Any = "1 min",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_step: Any = None,
    session_max_step: Any = None,
    max_steps_per_segment: int = 100_000,
    method: str = "bdf",
    strict: bool | None = False,
    newton_tol: float | None = None,
) -> SimulationResult:
    """Simulate *model* under *protocol* with parameter *params* overrides.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    protocol
        The treatment schedule (:class:`mhimmune.Protocol`).
    params
        Parameter overrides by name, in the table's unit or as strings with a unit; they
        apply on top of the tumour and host presets the protocol names
        (:func:`~mhimmune.mh.presets.protocol_overrides`).
    output_step, session_output_step
        Spacing of recorded time points overall (default 6 h) and during MH sessions
        and the hour after each (default 1 min). Integration accuracy does not depend
        on them: every segment is integrated adaptively.
    rtol, atol
        Relative and absolute tolerances of the integrator.
    max_step
        Largest step the integrator may take (e.g. ``"1 h"``); ``None`` = unlimited.
    session_max_step
        Largest step during MH sessions (e.g. ``"1 s"`` for a finely resolved reference).
    max_steps_per_segment
        Maximal steps per segment; exceeding it is reported as a solver failure.
    method
        ``"bdf"`` (default): the compiled variable-order NDF/BDF integrator with a sparse
        LU (:mod:`mhimmune.core._bdf_kernel`), no Python per step; ``"lsoda"``: scipy's
        ``odeint`` (LSODA) with the compiled dense Jacobian, as a cross-check.
    strict
        Overrides outside their parameter's [lower, upper] range in the table:
        ``True`` refuses them (:class:`~mhimmune.core.errors.ParameterError`), ``None``
        uses them with an :class:`~mhimmune.core.params.OutOfRangeWarning` (the command
        line's default), ``False`` (default) uses them silently, as ensembles and
        cohorts that sample beyond the range need. Values outside a parameter's
        physical domain are refused in every case.
    newton_tol
        ``"bdf"`` only: the Newton iteration of each step stops when its estimated
        remaining error is below this fraction of the local error tolerance, in (0, 1];
        ``None`` (default): the integrator's 0.03. Ensemble runs at their looser
        tolerances use 0.1 (:data:`mhimmune.runs.evaluator.ENSEMBLE_NEWTON_TOL`).

    Returns
    -------
    SimulationResult
        Trajectories (tidy and wide), per-session heating table, summary readouts and
        the solver status.

    Raises
    ------
    SolverError
        When a segment fails, naming the segment, the time and the overrides.
    ParameterError
        For an unknown or invalid override, or with *strict* one outside its range.
    """
    if not isinstance(model, Model):
        raise ProtocolError(
            f"model: expected a model from mhimmune.load_model(), got {type(model).__name__}"
        )
    if strict not in (True, False, None):
        raise ParameterError(f"strict: must be True, False or None, got {strict!r}")
    if method not in METHODS:
        raise ProtocolError(f"method: must be 'bdf' or 'lsoda', got {method!r}")
    if not isinstance(protocol, Protocol):
        raise ProtocolError(
            f"protocol: expected a mhimmune.Protocol, got {type(protocol).__name__}"
        )
    step_h = convert(output_step, "h", "output_step")
    session_step_h = convert(session_output_step, "h", "session_output_step")
    if not (step_h > 0 and session_step_h > 0):
        raise ProtocolError("output_step and session_output_step must be > 0")
    hmax = 0.0 if max_step is None else convert(max_step, "h", "max_step")
    hmax_session = (
        None if session_max_step is None else convert(session_max_step, "h", "session_max_step")
    )
    if params is not None and not isinstance(params, Mapping):
        raise ParameterError(
            f"params: expected a mapping of parameter overrides (name -> value), "
            f"got {type(params).__name__}"
        )
    params = {**protocol_overrides(model, protocol), **dict(params or {})}
    problems = (
        []
        if strict is False
        else model.table.range_problems(
            {k: v for k, v in params.items() if k not in model.inputs and k not in model.stubs}
        )
    )
    if problems and strict:
        raise ParameterError("; ".join(problems) + " (strict: refused)")
    for text in problems:
        warnings.warn(text + "; simulated anyway", OutOfRangeWarning, stacklevel=2)
    heating, schedule = _heating_and_schedule(model, protocol)
    trajectories = integrate(
        model,
        schedule,
        params,
        output_step_h=step_h,
        fine_output_step_h=session_step_h,
        rtol=rtol,
        atol=atol,
        max_step_h=hmax,
        fine_max_step_h=hmax_session,
        max_steps_per_segment=max_steps_per_segment,
        method=method,
        newton_tol=newton_tol,
    )
    return SimulationResult(model, protocol, params, trajectories, heating)


#: the heating and engine schedules of the protocols simulated last, by identity of model
#: and protocol (both immutable for this purpose): a schedule template hands out one
#: protocol object per factor combination, and ensemble rows that differ only in model
#: parameters repeat it
_SCHEDULES: IdentityCache[tuple[tuple[SessionHeating, ...], Schedule]] = IdentityCache(16)


def _heating_and_schedule(
    model: Model, protocol: Protocol
) -> tuple[tuple[SessionHeating, ...], Schedule]:
    """:func:`~mhimmune.mh.inputs.session_heating` and
    :func:`~mhimmune.mh.inputs.protocol_schedule` of *protocol* on *model*, reused for the
    same two objects (the last 16 pairs)."""

    def compute() -> tuple[tuple[SessionHeating, ...], Schedule]:
        heating = session_heating(protocol)
        return heating, protocol_schedule(model, protocol, heating)

    return _SCHEDULES.get((model, protocol), compute)


def select_variables(model: Model, names: list[str] | None = None) -> list[str]:
    """Trajectory variables to write: *names* checked against the model, or by default
    the observables and named expressions (the model's derived quantities, without
    names starting with ``_``), not the internal species of the reaction network.

    Raises
    ------
    ParameterError
        A name that is neither a species nor a derived quantity (with close matches).
    """
    derived = list(dict.fromkeys(model.compiled.derived_names))
    if names is None:
        return [n for n in derived if not n.startswith("_")]
    known = list(dict.fromkeys([*model.species, *derived]))
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = "; ".join(
            f"{n}: did you mean {', '.join(m)}?"
            if (m := difflib.get_close_matches(n, known, n=3))
            else f"{n}: no close match"
            for n in unknown
        )
        raise ParameterError(f"--variables: unknown variable(s) {', '.join(unknown)} ({hints})")
    return list(dict.fromkeys(names))


class SimulationResult:
    """Trajectories and readouts of one simulation.

    Attributes
    ----------
    time_h : numpy.ndarray
        Recorded times in hours (``time_day`` in the tables).
    states, derived : numpy.ndarray
        State variables and derived quantities (observables and named expressions).
    status : SolverStatus
        What the integrator did.
    heating : tuple of SessionHeating
        SAR of each MH session's agent at its field and frequency.
    """

    def __init__(
        self,
        model: Model,
        protocol: Protocol,
        params: dict[str, Any],
        trajectories: Trajectories,
        heating: tuple[SessionHeating, ...] | None = None,
    ):
        self.model = model
        self.protocol = protocol
        self.params = params
        self.time_h = trajectories.time_h
        self.states = trajectories.states
        self.derived = trajectories.derived
        self.breakpoint_states = trajectories.breakpoint_states
        self.status = trajectories.status
        self.heating = session_heating(protocol) if heating is None else heating
        self._wide: pd.DataFrame | None = None

    # ------------------------------------------------------------ tables
    @property
    def variables(self) -> list[str]:
        """Names of every recorded variable (species, then derived quantities)."""
        return list(self.model.species) + list(self.model.compiled.derived_names)

    @property
    def wide(self) -> pd.DataFrame:
        """One row per recorded time (index ``time_day``), one column per variable."""
        if self._wide is None:
            data = np.hstack([self.states, self.derived])
            names = self.variables
            seen, keep = set(), []
            for i, n in enumerate(names):  # an observable may share a species' name
                if n not in seen:
                    seen.add(n)
                    keep.append(i)
            self._wide = pd.DataFrame(
                data[:, keep],
                columns=[names[i] for i in keep],
                index=pd.Index(hours_to_days(self.time_h), name="time_day"),
            )
        return self._wide

    def to_frame(self, variables: list[str] | None = None) -> pd.DataFrame:
        """Tidy long table with columns ``arm, time_day, variable, value`` (``arm``: the
        protocol name)."""
        w = self.wide if variables is None else self.wide[self._check(variables)]
        frame = w.reset_index().melt(id_vars="time_day", var_name="variable", value_name="value")
        frame.insert(0, "arm", self.protocol.name)
        return frame

    def __getitem__(self, name: str) -> pd.Series:
        return self.wide[self._check([name])[0]]

    def _check(self, names):
        unknown = [n for n in names if n not in self.wide.columns]
        if unknown:
            hints = {n: difflib.get_close_matches(n, self.wide.columns, n=3) for n in unknown}
            raise KeyError(f"unknown variable(s) {unknown}; close matches: {hints}")
        return list(names)

    # ---------------------------------------------------------- readouts
    def sessions(self) -> pd.DataFrame:
        """Per MH session: mode, field, H·f, SAR and how it was obtained, peak and mean
        temperature, minutes above 42 °C, CEM43 of the mean temperature and of T90 (the
        temperature 90 % of the heated region exceeds).

        Temperatures (volume means of the heated region) come from the recorded points
        (default every minute during the session); CEM43 is exact (a state of the model)
        and counts the session and the cooling until the next session (or the end). In
        feedback mode the field is turned down as the target is reached: the table gives
        the maximal field, its H·f, and the time-averaged effective field H·√u.
        """
        rows = []
        w = self.wide
        sessions = [h.session for h in self.heating]
        species = list(self.model.species)
        cem_idx = species.index("CEM43") if "CEM43" in species else None
        t90_idx = species.index("CEM43T90") if "CEM43T90" in species else None
        t = days_to_hours(w.index.values)
        for i, s in enumerate(sessions):
            during = (t >= s.start_h - 1e-9) & (t <= s.end_h + 1e-9)
            temp = w["temperature_C"].values[during]
            tt = t[during]
            span = tt[-1] - tt[0] if len(tt) > 1 else np.nan

            def mean(x, tt=tt, span=span):
                return float(np.trapezoid(x, tt) / span) if len(tt) > 1 else np.nan

            above = np.trapezoid((temp > 42).astype(float), tt) * 60 if len(tt) > 1 else 0.0
            nxt = sessions[i + 1].start_h if i + 1 < len(sessions) else self.protocol.duration_h

            def dose(idx, nxt=nxt, start=s.start_h):
                if idx is None:
                    return np.nan
                return self.breakpoint_states[nxt][idx] - self.breakpoint_states[start][idx]

            cem, cem_t90 = dose(cem_idx), dose(t90_idx)
            sar, method = self.heating[i].sar_W_per_g, self.heating[i].sar_method
            u = (
                w["heating_power_fraction"].values[during]
                if "heating_power_fraction" in w
                else np.ones(len(tt))
            )
            rows.append(
                dict(
                    session=i,
                    start_day=hours_to_days(s.start_h),
                    duration_min=s.duration_h * 60,
                    mode="feedback" if s.target_C is not None else "fixed field",
                    target_C=np.nan if s.target_C is None else s.target_C,
                    agent=s.agent,
                    dose=s.dose,
                    dose_unit=s.dose_unit,
                    field_kA_per_m=s.field_kA_per_m,
                    mean_field_kA_per_m=s.field_kA_per_m * mean(np.sqrt(np.clip(u, 0, None))),
                    freq_kHz=s.freq_kHz,
                    hf_A_per_m_s=s.hf_A_per_m_s,
                    sar_W_per_g=sar,
                    sar_method=method,
                    peak_temperature_C=float(np.max(temp)) if len(temp) else np.nan,
                    mean_temperature_C=mean(temp),
                    minutes_above_42C=float(above),
                    cem43_min=float(cem),
                    cem43_t90_min=float(cem_t90),
                )
            )
        return pd.DataFrame(rows)

    def summary(self) -> pd.Series:
        """Scalar readouts: tumour volumes, temperature, thermal dose, DAMPs, immune peaks,
        and the experiment-like readouts of :mod:`mhimmune.mh.readouts` (CRT-positive
        fraction, extracellular ATP and HMGB1, mature DCs, CTL infiltration, Treg and MDSC
        fractions, M1/M2, phagocytosis, PD-L1 occupancy; values at day 8 or 14) and the
        flow-cytometry percentages of :data:`mhimmune.mh.readouts.ASSAY_RATIOS` on day 14
        (e.g. ``cd8_pct_of_cd45_treated_day14``, ``treg_pct_of_cd4_day14``).

        The readouts are those of :data:`mhimmune.mh.catalogue.SUMMARY_READOUTS` (the
        same ones ensembles compute) that this model has. Tumour volumes below one cell
        (1e-6 mm³) read 0: such a tumour is extinct. Thermal dose is given for the mean
        temperature (``cem43_total_min``), for T90, the temperature 90 % of the heated
        region exceeds (``cem43_t90_min``, as clinical reports give it), and for each
        particle-load region. AUCs are trapezoids over the recorded points (units · day).
        Fold changes against an untreated arm: :func:`mhimmune.mh.readouts.compare`.
        """
        names = set(self.variables)
        end_day = hours_to_days(self.protocol.duration_h)
        chosen = [
            r
            for r in SUMMARY_READOUTS.values()
            if set(r.all_variables) <= names and (r.day is None or r.day <= end_day + 1e-9)
        ]
        w = self.wide
        out = evaluate(
            chosen,
            lambda variables: sum(w[v].to_numpy() for v in variables),
            w.index.to_numpy(),
            end_day,
            None,
        )
        return pd.Series(out, name=self.protocol.name, dtype=float)

    def plot(self, variables: list[str] | None = None, **kwargs):
        """Plot tumour volumes and key readouts (seaborn); returns the matplotlib figure."""
        from mhimmune.mh.plotting import plot_result  # matplotlib, imported on first plot

        return plot_result(self, variables=variables, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<SimulationResult {self.protocol.name!r}: {len(self.time_h)} time points, "
            f"{self.status.segments} segments, success={self.status.success}>"
        )
