"""Segment-by-segment integration of a model under a schedule.

The schedule's breakpoints split the time axis into segments within which every input
is constant (:class:`~mhimmune.core.schedule.Schedule`). Each segment is integrated
separately, by default with the model's compiled variable-order BDF integrator
(sparse analytic Jacobian, no Python per step), optionally by LSODA (scipy ``odeint``);
the schedule's jumps (doses) are applied between segments. Nothing is smoothed and no
pulse can be stepped over. A failed segment raises
:class:`~mhimmune.core.errors.SolverError`; results never contain silent NaN.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.integrate import odeint

from mhimmune.core.errors import ProtocolError, SolverError
from mhimmune.core.identity_cache import IdentityCache
from mhimmune.core.model import Model
from mhimmune.core.schedule import Schedule
from mhimmune.core.units import hours_to_days

__all__ = ["integrate", "Trajectories", "SolverStatus", "output_grid", "METHODS", "NEWTON_TOL"]

#: integrators :func:`integrate` knows
METHODS = ("bdf", "lsoda")

#: the BDF integrator's Newton stopping fraction of the local error tolerance when
#: :func:`integrate` is given none (``NLSCOEF`` of ``_bdf_kernel.c`` / ``_bdf_kernel.py``)
NEWTON_TOL = 0.03


@dataclass
class SolverStatus:
    """What the integrator did: success, segments, steps, right-hand-side and Jacobian calls.

    A failed segment raises :class:`~mhimmune.core.errors.SolverError`, so a status that
    is returned has ``success`` true.
    """

    success: bool = True
    segments: int = 0
    steps: int = 0
    rhs_evaluations: int = 0
    jacobian_evaluations: int = 0
    lu_factorisations: int = 0
    linear_solves: int = 0
    rejected_steps: int = 0


@dataclass
class Trajectories:
    """Recorded states and derived quantities of one integration.

    Attributes
    ----------
    time_h : numpy.ndarray
        Recorded times in hours.
    states, derived : numpy.ndarray
        State variables and derived quantities (observables and named expressions), one
        row per recorded time.
    breakpoint_states : dict[float, numpy.ndarray]
        The state just before the jumps of each breakpoint (hours), and at the end.
    status : SolverStatus
        What the integrator did.
    """

    time_h: np.ndarray
    states: np.ndarray
    derived: np.ndarray
    breakpoint_states: dict[float, np.ndarray]
    status: SolverStatus


def output_grid(schedule: Schedule, step_h: float, fine_step_h: float) -> np.ndarray:
    """Recorded times (hours): every *step_h*, every *fine_step_h* in the fine windows."""
    duration = schedule.duration_h
    grid: list[Any] = [np.arange(0.0, duration, step_h), [duration]]
    for t0, t1 in schedule.fine_windows:
        grid.append(np.arange(t0, t1, fine_step_h))
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


def _segment_bdf(c, y, t0, t1, tout, p, rtol, atol, hmax, max_steps, out, newton_tol=0.0):
    """One segment with the compiled NDF/BDF integrator (no Python per step), its
    recorded states written into *out* (one row per time in *tout*)."""
    # segment-local time: the model is autonomous, and small steps after a dose stay exact
    into = getattr(c.module, "integrate_into", None)
    if into is not None:  # C backend: the library writes into out directly
        code, stats = into(y, t1 - t0, tout - t0, p, rtol, atol, hmax, max_steps, out, newton_tol)
    else:
        Y, _y_end, code, stats, _h = c.integrate(
            y, 0.0, t1 - t0, tout - t0, p, rtol, atol, hmax, max_steps, 0.0, newton_tol
        )
        out[:] = Y
    ok = code == 0
    message = "" if ok else _BDF_MESSAGES.get(int(code), "non-finite output")
    reached = t1 if ok else t0
    return ok, message, reached, stats[:6].tolist()


def _segment_lsoda(c, y, t0, t1, tout, p, rtol, atol, hmax, max_steps, out, newton_tol=0.0):
    """One segment with scipy's odeint (LSODA, Fortran) and the compiled dense Jacobian
    (LSODA's own Newton test: *newton_tol* is not used)."""
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
    out[:] = Y
    return ok, info["message"].strip(), reached, counts


def _failure(k: int, t0: float, t1: float, reached: float, message: str, params) -> SolverError:
    """The error of a failed segment *k* (t0-t1 h), naming it, the time and the overrides."""
    return SolverError(
        f"integration failed in segment {k} (day {hours_to_days(t0):.4f}-"
        f"{hours_to_days(t1):.4f}) at day {hours_to_days(reached):.4f}: "
        f"{message}; parameter overrides: {params or 'none'}",
        segment=k,
        time_h=reached,
        overrides=params,
    )


def _set_counts(status: SolverStatus, counts) -> None:
    """The integrator's six counters (steps, right-hand sides, Jacobians, LU
    factorisations, linear solves, rejected steps) into *status*."""
    (
        status.steps,
        status.rhs_evaluations,
        status.jacobian_evaluations,
        status.lu_factorisations,
        status.linear_solves,
        status.rejected_steps,
    ) = counts


class _Work(NamedTuple):
    """What the two segment loops of :func:`integrate` share: the schedule, the overrides,
    the parameter vector (inputs are written into it), the dose scales, the input
    parameters, the initial state, the segment bounds (h), the first recorded row of each
    segment, the recorded times, the step and tolerance limits, and the arrays of states
    and derived quantities they fill."""

    schedule: Schedule
    params: dict
    p: np.ndarray
    scales: np.ndarray
    inputs: list
    y: np.ndarray
    bounds: np.ndarray
    starts: np.ndarray
    time_h: np.ndarray
    limits: tuple
    states: np.ndarray
    derived: np.ndarray


def _segment_by_segment(c, segment, work: _Work) -> tuple[SolverStatus, dict[float, np.ndarray]]:
    """The segment loop of :func:`integrate` in Python, one *segment* call
    (:func:`_segment_bdf` or :func:`_segment_lsoda`) per segment: fills *states* and
    *derived*; returns the solver status and the states before each segment's jumps."""
    schedule, params, p, scales, inputs, y, bounds, starts, time_h, limits, states, derived = work
    hmax, hmax_fine, rtol, atol, max_steps_per_segment, newton_tol = limits
    status = SolverStatus()
    counts_total = [0, 0, 0, 0, 0, 0]
    pre_jump: dict[float, np.ndarray] = {}
    derived_into = getattr(c.module, "derived_into", None)
    seg_inputs = []
    for k, seg in enumerate(schedule.segments):
        t0, t1 = float(bounds[k, 0]), float(bounds[k, 1])
        pre_jump[t0] = y.copy()
        seg.apply_jumps(y, scales)
        values = [seg.inputs.get(n, 0.0) for n, _i in inputs]
        for (_n, i), v in zip(inputs, values):
            p[i] = v
        seg_inputs.append(values)
        i0, i1 = int(starts[k]), int(starts[k + 1])
        h = hmax_fine if seg.fine else hmax
        # rows i0..i1: the segment's recorded times and its end (overwritten by the next
        # segment's start, after the jumps)
        rows = states[i0 : i1 + 1]
        tout = time_h[i0 : i1 + 1].copy()
        tout[-1] = t1
        ok, message, reached, counts = segment(
            c, y, t0, t1, tout, p, rtol, atol, h, max_steps_per_segment, rows, newton_tol
        )
        status.segments += 1
        for j, n in enumerate(counts):
            counts_total[j] += n
        if ok and not np.isfinite(rows).all():
            ok, message, reached = False, "non-finite output", t0
        if not ok:
            raise _failure(k, t0, t1, reached, message, params)
        # the next segment continues from the unrounded state
        y = rows[-1].copy()
    _set_counts(status, counts_total)
    # a value below zero by less than the absolute tolerance is zero within the
    # integration's accuracy (an interpolant or a step overshooting a state that
    # decays to 0 by a rounding error): recorded as 0, so that amounts stay >= 0
    states[(states < 0.0) & (states > -atol)] = 0.0
    # derived quantities with each segment's inputs
    for k, values in enumerate(seg_inputs):
        for (_n, i), v in zip(inputs, values):
            p[i] = v
        i0, i1 = int(starts[k]), int(starts[k + 1])
        if derived_into is not None:
            derived_into(states[i0:i1], p, derived[i0:i1])
        else:
            derived[i0:i1] = c.derived_series(states[i0:i1], p)
    pre_jump[schedule.duration_h] = y.copy()
    for _n, i in inputs:
        p[i] = 0.0
    derived[-1] = c.derived_series(states[-1:], p)[0]
    return status, pre_jump


def _whole_schedule(run, work: _Work) -> tuple[SolverStatus, dict[float, np.ndarray]]:
    """The segment loop of :func:`integrate` in one call into the C library
    (``integrate_schedule``, the same operations in the same order): fills *states* and
    *derived*; returns the solver status and the states before each segment's jumps."""
    schedule, params, p, scales, inputs, y, bounds, starts, time_h, limits, states, derived = work
    hmax, hmax_fine, rtol, atol, max_steps, newton_tol = limits
    segments = schedule.segments
    nseg = len(segments)
    bounds = np.ascontiguousarray(bounds, dtype=np.float64).ravel()
    arrays = _SCHEDULE_ARRAYS.get(
        (schedule,),
        lambda: _schedule_arrays(schedule, inputs, hmax, hmax_fine),
        (tuple(inputs), hmax, hmax_fine),
    )
    input_idx, input_val, jump_ptr, jump_state, jump_amount, jump_dose, jump_topup, h = arrays
    pre_jump = np.empty((nseg + 1, len(y)))
    stats = np.zeros(6, dtype=np.int64)
    code, failed = run(
        bounds,
        np.ascontiguousarray(starts, dtype=np.int64),
        time_h,
        np.array(y, dtype=np.float64),
        np.array(p, dtype=np.float64),
        input_idx,
        input_val,
        jump_ptr,
        jump_state,
        jump_amount * scales[jump_dose],  # each amount in its dose's unit times its scale
        jump_topup,
        h,
        rtol,
        atol,
        max_steps,
        states,
        derived,
        pre_jump,
        stats,
        newton_tol,
    )
    if code != 0:
        seg = segments[failed]
        message = _BDF_MESSAGES.get(code, "non-finite output")
        raise _failure(failed, seg.t0_h, seg.t1_h, seg.t0_h, message, params)
    status = SolverStatus()
    status.segments = nseg
    _set_counts(status, stats.tolist())
    breakpoints = dict(zip(bounds[0::2].tolist(), pre_jump[:nseg]))
    breakpoints[schedule.duration_h] = pre_jump[nseg]
    return status, breakpoints


#: the input parameters of a compiled model with their indices, by identity of the model
_INPUTS: IdentityCache[list[tuple[str, int]]] = IdentityCache(8)

#: the schedule's arrays of :func:`_whole_schedule`, by identity of the schedule
#: (immutable), the input parameters and the step limits
_SCHEDULE_ARRAYS: IdentityCache[tuple[np.ndarray, ...]] = IdentityCache(64)


def _schedule_arrays(
    schedule: Schedule, inputs: list[tuple[str, int]], hmax: float, hmax_fine: float
) -> tuple[np.ndarray, ...]:
    """What ``integrate_schedule`` reads of *schedule*: the input parameters' indices and
    values per segment, the first jump of each segment, each jump's state, amount (in its
    dose's unit), dose and mode (1: top-up), and each segment's largest step."""
    segments = schedule.segments
    nseg, n_in = len(segments), len(inputs)
    jumps = [(k, jump) for k, seg in enumerate(segments) for jump in seg.jumps]
    jump_ptr = np.zeros(nseg + 1, dtype=np.int64)
    np.cumsum(np.bincount([k for k, _j in jumps], minlength=nseg), out=jump_ptr[1:])
    input_val = [[seg.inputs.get(n, 0.0) for n, _i in inputs] for seg in segments]
    arrays = (
        np.array([i for _n, i in inputs], dtype=np.int32),
        np.array(input_val, dtype=np.float64).reshape(nseg, n_in),
        jump_ptr,
        np.array([j.state for _k, j in jumps], dtype=np.int32),
        np.array([j.amount for _k, j in jumps], dtype=np.float64),
        np.array([j.dose for _k, j in jumps], dtype=np.intp),
        np.array([j.mode == "top_up" for _k, j in jumps], dtype=np.int32),
        np.array([hmax_fine if seg.fine else hmax for seg in segments], dtype=np.float64),
    )
    for array in arrays:
        array.setflags(write=False)
    return arrays


#: recorded-time layouts of the schedules integrated last, by identity of the schedule
#: (immutable) and the output steps
_LAYOUTS: IdentityCache[tuple[np.ndarray, np.ndarray, np.ndarray]] = IdentityCache(64)


def _layout(
    schedule: Schedule, step_h: float, fine_step_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment bounds (h; one row per segment), the first recorded row of each segment
    (and the row count before the end), and the recorded times of *schedule*: each
    segment's start and the output grid inside it (its end is the next segment's start,
    recorded after that segment's jumps), then the schedule's end. Reused for the same
    schedule object and steps (ensemble rows that differ only in model parameters)."""
    return _LAYOUTS.get(
        (schedule,), lambda: _compute_layout(schedule, step_h, fine_step_h), (step_h, fine_step_h)
    )


def _compute_layout(
    schedule: Schedule, step_h: float, fine_step_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pairs = [(seg.t0_h, seg.t1_h) for seg in schedule.segments]
    bounds = np.array(pairs, dtype=float).reshape(-1, 2)
    end = 0.0  # where the segments read so far end, while they tile [0, duration]
    for t0, t1 in pairs:
        if not (t0 == end and t1 > t0):
            break
        end = t1
    else:
        windows = schedule.fine_windows
        if pairs and end == schedule.duration_h and all(0 <= a and b <= end for a, b in windows):
            layout = _tiled_layout(schedule, bounds, step_h, fine_step_h)
            for array in layout:
                array.setflags(write=False)
            return layout
    layout = _segment_layout(schedule, bounds, step_h, fine_step_h)
    for array in layout:
        array.setflags(write=False)
    return layout


def _tiled_layout(
    schedule: Schedule, bounds: np.ndarray, step_h: float, fine_step_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_segment_layout` of segments that tile [0, duration] (each starts where the
    previous one ends) with fine windows inside it: every time of the output grid before
    the end lies in one segment, so the recorded times are the grid and the segment
    starts, one row per time."""
    duration = schedule.duration_h
    parts: list[Any] = [np.arange(0.0, duration, step_h), [duration], bounds[:, 0]]
    parts += [np.arange(t0, t1, fine_step_h) for t0, t1 in schedule.fine_windows]
    time_h: np.ndarray = np.unique(np.concatenate(parts))
    starts = np.empty(len(bounds) + 1, dtype=np.int64)
    starts[:-1] = np.searchsorted(time_h, bounds[:, 0])
    starts[-1] = len(time_h) - 1
    time_h[starts[:-1]] = bounds[:, 0]  # the starts' own values (signed zeros)
    return bounds, starts, time_h


def _segment_layout(
    schedule: Schedule, bounds: np.ndarray, step_h: float, fine_step_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layout of :func:`_layout`, segment by segment, for any segments."""
    grid = output_grid(schedule, step_h, fine_step_h)
    a = np.searchsorted(grid, bounds[:, 0], side="right")  # grid is sorted
    b = np.searchsorted(grid, bounds[:, 1], side="left")
    sizes = 1 + np.maximum(b - a, 0)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    # row j of segment k: its start for j = 0, else grid[a[k] + j - 1]
    seg = np.repeat(np.arange(len(bounds)), sizes)
    j = np.arange(int(starts[-1])) - starts[:-1][seg]
    time_h = np.empty(int(starts[-1]) + 1)
    time_h[:-1] = np.where(j == 0, bounds[seg, 0], grid[a[seg] + j - 1])
    time_h[-1] = schedule.duration_h
    return bounds, starts, time_h


def integrate(
    model: Model,
    schedule: Schedule,
    params: Mapping[str, Any] | None = None,
    *,
    output_step_h: float = 6.0,
    fine_output_step_h: float = 1.0 / 60.0,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_step_h: float = 0.0,
    fine_max_step_h: float | None = None,
    max_steps_per_segment: int = 100_000,
    method: str = "bdf",
    newton_tol: float | None = None,
) -> Trajectories:
    """Integrate *model* through *schedule* with parameter *params* overrides.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    schedule
        Segments with their inputs and jumps.
    params
        Parameter overrides by name, in the table's unit or as strings with a unit.
    output_step_h, fine_output_step_h
        Spacing of recorded time points overall and in the schedule's fine windows,
        hours. Integration accuracy does not depend on them: every segment is
        integrated adaptively.
    rtol, atol
        Relative and absolute tolerances. Recorded values in (-atol, 0), zero within the
        integration's accuracy, are recorded as 0.
    max_step_h
        Largest step the integrator may take, hours; 0 = unlimited.
    fine_max_step_h
        Largest step in ``fine`` segments, hours (``None``: *max_step_h*).
    max_steps_per_segment
        Maximal steps per segment; exceeding it is reported as a solver failure.
    method
        ``"bdf"``: the compiled variable-order NDF/BDF integrator with a sparse LU
        (:mod:`mhimmune.core._bdf_kernel`); ``"lsoda"``: scipy's ``odeint`` (LSODA) with
        the compiled dense Jacobian, as a cross-check.
    newton_tol
        ``"bdf"`` only: the Newton iteration stops when its estimated remaining error is
        below this fraction of the local error tolerance, in (0, 1]; ``None``: the
        integrator's default :data:`NEWTON_TOL` (0.03). CVODE's 0.1 saves iterations
        at looser accuracy (ensembles use it: :mod:`mhimmune.runs.evaluator`).

    Raises
    ------
    SolverError
        When a segment fails, naming the segment, the time and the overrides.
    """
    if method not in METHODS:
        raise ProtocolError(f"method: must be 'bdf' or 'lsoda', got {method!r}")
    if newton_tol is not None and not 0.0 < newton_tol <= 1.0:
        raise ProtocolError(f"newton_tol: must be in (0, 1] or None, got {newton_tol!r}")
    hmax = max_step_h
    hmax_fine = hmax if fine_max_step_h is None else fine_max_step_h
    params = dict(params or {})
    c = model.compiled
    p = model.parameter_vector(params)
    scales = c.bolus_scales(p)
    inputs = _INPUTS.get((model, c), lambda: [(n, c.parameters.index(n)) for n in model.inputs])
    inputs = list(inputs)  # the caller's; the cached list stays unchanged
    y = np.asarray(c.init(p), dtype=float)
    bounds, starts, time_h = _layout(schedule, output_step_h, fine_output_step_h)
    time_h = time_h.copy()  # the caller's; the cached layout stays unchanged
    states = np.empty((len(time_h), len(y)))
    derived = np.empty((len(time_h), len(c.derived_names)))
    # 0.0: the integrator's own default (NEWTON_TOL)
    limits = (hmax, hmax_fine, rtol, atol, max_steps_per_segment, float(newton_tol or 0.0))
    work = _Work(
        schedule, params, p, scales, inputs, y, bounds, starts, time_h, limits, states, derived
    )
    whole = getattr(c.module, "integrate_schedule", None) if method == "bdf" else None
    if whole is not None:  # C backend: every segment, jump and derived row in one call
        status, pre_jump = _whole_schedule(whole, work)
    else:  # the numba backend and LSODA: one segment at a time
        segment = _segment_bdf if method == "bdf" else _segment_lsoda
        status, pre_jump = _segment_by_segment(c, segment, work)
    return Trajectories(
        time_h=time_h,
        states=states,
        derived=derived,
        breakpoint_states=pre_jump,
        status=status,
    )
