"""Segment-by-segment integration of a model under a protocol.

The protocol's breakpoints (session starts and ends, dose times) split the time axis
into segments within which every input is constant. Each segment is integrated
separately, by default with the model's compiled variable-order BDF integrator
(sparse analytic Jacobian, no Python per step), optionally by LSODA (scipy ``odeint``);
doses are applied between segments as state jumps. Nothing is
smoothed and no pulse can be stepped over. A failed segment raises
:class:`~mhimmune.core.errors.SolverError`; results never contain silent NaN.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.integrate import odeint

from mhimmune.core.errors import ProtocolError, SolverError
from mhimmune.core.model import Model
from mhimmune.core.units import convert
from mhimmune.mh.agents import get_agent
from mhimmune.mh.protocol import Protocol

__all__ = ["simulate", "SimulationResult", "SolverStatus"]

_MH_INPUTS = ("mh_sar_W_per_g", "mh_field_kA_per_m", "mh_freq_kHz", "mh_target_C", "mh_feedback")


@dataclass
class SolverStatus:
    """What the integrator did: success, segments, right-hand-side and Jacobian calls."""

    success: bool = True
    segments: int = 0
    steps: int = 0
    rhs_evaluations: int = 0
    jacobian_evaluations: int = 0
    messages: list[str] = field(default_factory=list)


def _bolus_kind(b) -> str:
    metal = (b.options or {}).get("metal")
    return f"{b.kind}:{metal}" if metal else b.kind


def _dose_plan(model: Model, protocol: Protocol):
    """Map the protocol's doses and sessions onto model species; fail early and clearly."""
    targets: dict[str, list[int]] = {}
    for i, k in enumerate(model.compiled.bolus_kinds):
        targets.setdefault(k, []).append(i)
    plan: dict[float, list[tuple[int, float]]] = {}
    for b in protocol.boluses():
        kind = _bolus_kind(b)
        if kind not in targets:
            raise ProtocolError(
                f"{b.kind}[{b.index}]: this model has no target for dose kind {kind!r} "
                f"(model links: {', '.join(model.links)}; dose kinds it accepts: "
                f"{', '.join(sorted(targets)) or 'none'})"
            )
        plan.setdefault(b.time_h, []).extend((i, b.amount) for i in targets[kind])
    sessions = protocol.mh_sessions()
    if sessions:
        missing = [n for n in _MH_INPUTS if n not in model.inputs]
        if missing or "mh_particles" not in targets or "mh_particles_per_kg" not in targets:
            raise ProtocolError(
                f"mh_session: this model has no heating link (links: {', '.join(model.links)})"
            )
        for s in sessions:
            if s.dose_unit == "mg/kg":
                kind, amount = "mh_particles_per_kg", s.dose * s.uptake_fraction
            else:
                kind, amount = "mh_particles", s.dose
            plan.setdefault(s.start_h, []).extend((i, amount) for i in targets[kind])
    return plan


def _output_grid(protocol: Protocol, step_h: float, session_step_h: float) -> np.ndarray:
    grid = [np.arange(0.0, protocol.duration_h, step_h), [protocol.duration_h]]
    for s in protocol.mh_sessions():
        # fine sampling during the session and the hour of cooling after it
        grid.append(np.arange(s.start_h, min(s.end_h + 1.0, protocol.duration_h), session_step_h))
    return np.unique(np.concatenate(grid))


@contextlib.contextmanager
def _quiet_fortran():
    """Silence LSODA's Fortran messages (we report failures ourselves)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


_BDF_MESSAGES = {
    1: "too many steps (max_steps_per_segment)",
    2: "step size became too small",
    3: "the state became non-finite",
}


def _segment_bdf(c, y, t0, t1, tout, p, rtol, atol, hmax, max_steps):
    """One segment with the compiled NDF/BDF integrator (no Python per step)."""
    # segment-local time: the model is autonomous, and small steps after a dose stay exact
    Y, y_end, code, stats, _h = c.integrate(
        y, 0.0, t1 - t0, tout - t0, p, rtol, atol, hmax, max_steps, 0.0
    )
    ok = code == 0 and bool(np.all(np.isfinite(Y)))
    message = "" if ok else _BDF_MESSAGES.get(int(code), "non-finite output")
    reached = t1 if ok else t0
    return Y, ok, message, reached, (int(stats[0]), int(stats[1]), int(stats[2]))


def _segment_lsoda(c, y, t0, t1, tout, p, rtol, atol, hmax, max_steps):
    """One segment with scipy's odeint (LSODA, Fortran) and the compiled dense Jacobian."""
    with warnings.catch_warnings(), _quiet_fortran():
        warnings.simplefilter("ignore")
        Y, info = odeint(
            c.rhs,
            y,
            tout,
            args=(p,),
            Dfun=c.jac,
            full_output=True,
            rtol=rtol,
            atol=atol,
            hmax=hmax,
            mxstep=max_steps,
        )
    ok = info["message"] == "Integration successful." and bool(np.all(np.isfinite(Y)))
    reached = float(info["tcur"][np.nonzero(info["tcur"])[0][-1]]) if np.any(info["tcur"]) else t0
    reached = min(max(reached, t0), t1)
    counts = tuple(int(info[k][-1]) if len(info[k]) else 0 for k in ("nst", "nfe", "nje"))
    return Y, ok, info["message"].strip(), reached, counts


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
) -> SimulationResult:
    """Simulate *model* under *protocol* with parameter *params* overrides.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    protocol
        The treatment schedule (:class:`mhimmune.Protocol`).
    params
        Parameter overrides by name, in the table's unit or as strings with a unit.
    output_step, session_output_step
        Spacing of recorded time points overall (default 6 h) and during MH sessions
        and the hour after each (default 1 min). Integration accuracy does not depend
        on them: every segment is integrated adaptively.
    rtol, atol
        Relative and absolute tolerances of LSODA.
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

    Returns
    -------
    SimulationResult
        Trajectories (tidy and wide), per-session heating table, summary readouts and
        the solver status.

    Raises
    ------
    SolverError
        When a segment fails, naming the segment, the time and the overrides.
    """
    if method not in ("bdf", "lsoda"):
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
        hmax if session_max_step is None else convert(session_max_step, "h", "session_max_step")
    )
    params = dict(params or {})
    c = model.compiled
    p = model.parameter_vector(params)
    scales = c.bolus_scales(p)
    plan = _dose_plan(model, protocol)
    grid = _output_grid(protocol, step_h, session_step_h)
    idx_in = {n: c.parameters.index(n) for n in model.inputs}
    y = np.asarray(c.init(p), dtype=float)
    status = SolverStatus()
    times, states, derived = [], [], []
    pre_jump: dict[float, np.ndarray] = {}
    segments = protocol.segments()
    for k, seg in enumerate(segments):
        t0, t1 = seg.t0_h, seg.t1_h
        pre_jump[t0] = y.copy()
        for i, amount in plan.get(t0, []):
            target = amount * scales[i]
            if c.bolus_modes[i] == "top_up":
                y[c.bolus_species[i]] = max(y[c.bolus_species[i]], target)
            else:
                y[c.bolus_species[i]] += target
        for n in idx_in:
            p[idx_in[n]] = 0.0
        s = seg.session
        if s is not None:
            p[idx_in["mh_sar_W_per_g"]] = get_agent(s.agent).heating_at(
                s.field_kA_per_m, s.freq_kHz
            )[0]
            p[idx_in["mh_field_kA_per_m"]] = s.field_kA_per_m
            p[idx_in["mh_freq_kHz"]] = s.freq_kHz
            if s.target_C is not None:
                p[idx_in["mh_target_C"]] = s.target_C
                p[idx_in["mh_feedback"]] = 1.0
        inner = grid[(grid > t0) & (grid < t1)]
        tout = np.concatenate([[t0], inner, [t1]])
        h = hmax_session if s is not None else hmax
        if method == "bdf":
            Y, ok, message, reached, counts = _segment_bdf(
                c, y, t0, t1, tout, p, rtol, atol, h, max_steps_per_segment
            )
        else:
            Y, ok, message, reached, counts = _segment_lsoda(
                c, y, t0, t1, tout, p, rtol, atol, h, max_steps_per_segment
            )
        status.segments += 1
        status.steps += counts[0]
        status.rhs_evaluations += counts[1]
        status.jacobian_evaluations += counts[2]
        if not ok:
            status.success = False
            status.messages.append(message)
            raise SolverError(
                f"integration failed in segment {k} (day {t0 / 24:.4f}-{t1 / 24:.4f}) at day {reached / 24:.4f}: "
                f"{message}; parameter overrides: {params or 'none'}",
                segment=k,
                time_h=reached,
                overrides=params,
            )
        times.append(tout[:-1])
        states.append(Y[:-1])
        derived.append(c.derived_series(Y[:-1], p))  # with this segment's inputs
        y = Y[-1].copy()
    pre_jump[protocol.duration_h] = y.copy()
    times.append([protocol.duration_h])
    states.append(y[None, :])
    for n in idx_in:
        p[idx_in[n]] = 0.0
    derived.append(c.derived_series(y[None, :], p))
    return SimulationResult(
        model=model,
        protocol=protocol,
        params=params,
        time_h=np.concatenate(times),
        states=np.vstack(states),
        derived=np.vstack(derived),
        breakpoint_states=pre_jump,
        status=status,
    )


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
    """

    def __init__(self, model, protocol, params, time_h, states, derived, breakpoint_states, status):
        self.model = model
        self.protocol = protocol
        self.params = params
        self.time_h = time_h
        self.states = states
        self.derived = derived
        self.breakpoint_states = breakpoint_states
        self.status = status
        self._wide = None

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
                index=pd.Index(self.time_h / 24.0, name="time_day"),
            )
        return self._wide

    def to_frame(self, variables: list[str] | None = None) -> pd.DataFrame:
        """Tidy long table with columns ``time_day, variable, value``."""
        w = self.wide if variables is None else self.wide[self._check(variables)]
        return w.reset_index().melt(id_vars="time_day", var_name="variable", value_name="value")

    def __getitem__(self, name: str) -> pd.Series:
        return self.wide[self._check([name])[0]]

    def _check(self, names):
        unknown = [n for n in names if n not in self.wide.columns]
        if unknown:
            import difflib

            hints = {n: difflib.get_close_matches(n, self.wide.columns, n=3) for n in unknown}
            raise KeyError(f"unknown variable(s) {unknown}; close matches: {hints}")
        return list(names)

    # ---------------------------------------------------------- readouts
    def sessions(self) -> pd.DataFrame:
        """Per MH session: mode, field, H·f, SAR and how it was obtained, peak and mean
        temperature, minutes above 42 °C, CEM43.

        Temperatures (volume means of the heated region) come from the recorded points
        (default every minute during the session); CEM43 is exact (a state of the model)
        and counts the session and the cooling until the next session (or the end). In
        feedback mode the field is turned down as the target is reached: the table gives
        the maximal field, its H·f, and the time-averaged effective field H·√u.
        """
        rows = []
        w = self.wide
        sessions = self.protocol.mh_sessions()
        cem_idx = self.model.species.index("CEM43") if "CEM43" in self.model.species else None
        t = w.index.values * 24.0
        for i, s in enumerate(sessions):
            during = (t >= s.start_h - 1e-9) & (t <= s.end_h + 1e-9)
            temp = w["temperature_C"].values[during]
            tt = t[during]
            span = tt[-1] - tt[0] if len(tt) > 1 else np.nan

            def mean(x):
                return float(np.trapezoid(x, tt) / span) if len(tt) > 1 else np.nan

            above = np.trapezoid((temp > 42).astype(float), tt) * 60 if len(tt) > 1 else 0.0
            nxt = sessions[i + 1].start_h if i + 1 < len(sessions) else self.protocol.duration_h
            cem = np.nan
            if cem_idx is not None:
                cem = (
                    self.breakpoint_states[nxt][cem_idx]
                    - self.breakpoint_states[s.start_h][cem_idx]
                )
            sar, method = get_agent(s.agent).heating_at(s.field_kA_per_m, s.freq_kHz)
            u = (
                w["heating_power_fraction"].values[during]
                if "heating_power_fraction" in w
                else np.ones(len(tt))
            )
            rows.append(
                dict(
                    session=i,
                    start_day=s.start_h / 24,
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
                )
            )
        return pd.DataFrame(rows)

    def summary(self) -> pd.Series:
        """Scalar readouts: tumour volumes, temperature, thermal dose, DAMPs, immune peaks,
        and the experiment-like readouts of :mod:`mhimmune.mh.readouts` (CRT-positive
        fraction, extracellular ATP and HMGB1, mature DCs, CTL infiltration, Treg and MDSC
        fractions, M1/M2, phagocytosis, PD-L1 occupancy; values at day 8 or 14).

        AUCs are trapezoids over the recorded points (units · day). Fold changes against
        an untreated arm: :func:`mhimmune.mh.readouts.compare`.
        """
        from mhimmune.mh.readouts import experiment_readouts

        w = self.wide
        t = w.index.values
        out: dict[str, float] = {}

        def auc(col):
            return float(np.trapezoid(w[col].values, t))

        for site in ("treated", "distant"):
            col = f"tumour_volume_{site}"
            if col in w:
                out[f"final_volume_{site}_mm3"] = float(w[col].iloc[-1])
                out[f"min_volume_{site}_mm3"] = float(w[col].min())
        if "temperature_C" in w:
            out["peak_temperature_C"] = float(w["temperature_C"].max())
        if "cem43_min" in w:
            out["cem43_total_min"] = float(w["cem43_min"].iloc[-1])
        for col, name in (
            ("atp_e_treated", "auc_atp_treated"),
            ("hmgb1_treated", "auc_hmgb1_treated"),
            ("hsp70_e_treated", "auc_hsp70e_treated"),
            ("damp_signal", "auc_damp_signal"),
        ):
            if col in w:
                out[name] = auc(col)
        if "crt_fraction_treated" in w:
            out["peak_crt_fraction"] = float(w["crt_fraction_treated"].max())
        if "mature_dc_fraction" in w:
            out["peak_mature_dc_fraction"] = float(w["mature_dc_fraction"].max())
        if "cd8_effectors_total" in w:
            out["peak_cd8_effectors_Mcell"] = float(w["cd8_effectors_total"].max())
            out["auc_cd8_effectors"] = auc("cd8_effectors_total")
        if "m1_m2_ratio" in w:
            out["peak_m1_m2_ratio"] = float(w["m1_m2_ratio"].max())
        if "pdl1_occupancy" in w:
            out["peak_pdl1_occupancy"] = float(w["pdl1_occupancy"].max())
        for name, value in experiment_readouts(self).items():
            out.setdefault(name, float(value))
        return pd.Series(out, name=self.protocol.name, dtype=float)

    def plot(self, variables: list[str] | None = None, **kwargs):
        """Plot tumour volumes and key readouts (seaborn); returns the matplotlib figure."""
        from mhimmune.mh.plotting import plot_result

        return plot_result(self, variables=variables, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<SimulationResult {self.protocol.name!r}: {len(self.time_h)} time points, "
            f"{self.status.segments} segments, success={self.status.success}>"
        )
