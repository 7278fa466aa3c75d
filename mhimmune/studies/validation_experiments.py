"""The experiments of the validation suite, each a function returning one model value.

Every function re-creates, with the default model and parameters, the experiment of one
kind of published observation and returns the number the publication reports (a time in
hours, a fold change, a fraction...). Targets in ``analyses/validation/targets.tsv`` name
their experiment and its arguments in the ``experiment`` column, e.g.
``hsp70_peak_time(temperature_C=42.5, hours=1)``.

Two kinds of set-up are used:

* **cells** (in vitro): the intracellular stress link alone (:func:`mhimmune.load_model`
  with ``links=["stress"], standalone=True``), the cells held at a temperature history
  (uniform over the three particle-load classes, as in a water bath) and drug effects given
  as constant signals;
* **mouse**: the full default model under a :class:`~mhimmune.Protocol` (MH sessions with
  the thermostat, drugs), read through the simulation's variables and summary.

Where an experiment needs a choice the publication does not state (an agent, a dose, a
threshold), the choice is an argument with a default and is written in the target's notes.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from scipy.integrate import odeint

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.core.units import HOURS_PER_DAY
from mhimmune.mh.presets import preset_overrides
from mhimmune.studies.trial_design import ResponderRule

__all__ = [
    "EXPERIMENTS",
    "experiment",
    "cell_history",
    "parameter_overrides",
    "current_overrides",
    "mouse_run",
    "culled_at_endpoint",
    "mh_plan",
    "MH_DAY",
    "preset_cohort",
]

#: experiment name -> function(**arguments) -> model value
EXPERIMENTS: dict[str, Callable[..., float]] = {}

CLASSES = ("low", "mid", "high")
#: one tumour cell is about 1e-6 mm³ (a cell of ~12 µm diameter)
CELL_VOLUME_MM3 = 1e-6


#: parameter overrides every experiment applies (set by :func:`parameter_overrides`)
_OVERRIDES: dict[str, float] = {}


@contextlib.contextmanager
def parameter_overrides(params: Mapping[str, float]):
    """Run the experiments inside the ``with`` block with *params* overriding the table
    (cells and mice alike); used to score or fit candidate parameter values."""
    saved = dict(_OVERRIDES)
    _OVERRIDES.update(params)
    try:
        yield
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(saved)


def current_overrides() -> dict[str, float]:
    """The overrides :func:`parameter_overrides` applies now (a copy; empty outside it)."""
    return dict(_OVERRIDES)


def preset_cohort(tumour: str | None, animals: int, seed: int, host: str | None = None):
    """A virtual cohort of *animals* (:func:`mhimmune.cohort.sample_cohort`, *seed*)
    varied around the *tumour* and *host* presets and around the values being scored or
    fitted (:func:`parameter_overrides`)."""
    base = {**preset_overrides(tumour=tumour, host=host), **_OVERRIDES}
    return mh.cohort.sample_cohort(animals, seed=seed, base=base)


def experiment(fn: Callable[..., float]) -> Callable[..., float]:
    """Register *fn* as a validation experiment under its own name."""
    EXPERIMENTS[fn.__name__] = fn
    return fn


# ----------------------------------------------------------------------------- set-ups
@cache
def _cells():
    return mh.load_model(links=["stress"], standalone=True, verbose=False)


@cache
def _mouse():
    return mh.load_model(verbose=False)


def _cem43_rate(temperature_C: float) -> float:
    """Sapareto-Dewey CEM43 rate in excess of 37 °C, as the heating link provides it."""
    r = 0.5 if temperature_C >= 43 else 0.25
    return r ** (43 - temperature_C) - 0.25**6


def _held_at(temperature_C: float, signals: Mapping[str, float]) -> dict[str, float]:
    out = dict(signals)
    for cls in CLASSES:
        out[f"temperature_C_{cls}"] = temperature_C
        out[f"cem43_rate_{cls}"] = _cem43_rate(temperature_C)
    return out


def cell_history(
    segments: Sequence[tuple[float, float] | tuple[float, float, Mapping[str, float]]],
    signals: Mapping[str, float] | None = None,
    step_h: float = 0.1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cells held at a piecewise-constant temperature history (a water bath).

    Parameters
    ----------
    segments
        ``[(hours, temperature_C), ...]`` in order, starting at time 0; a third item, a
        mapping of stub signals, applies to that segment only (e.g. the field of a session).
    signals
        Stub signals of the stress link held for the whole history (e.g.
        ``{"bso_effect": 0.9}``).
    step_h
        Spacing of the recorded points, hours.

    Returns
    -------
    time_h, variables
        Recorded times (hours) and every derived variable of the stress link by name.
    """
    model = _cells()
    c = model.compiled
    base = {**_OVERRIDES, **(signals or {})}
    y = np.asarray(c.init(model.parameter_vector(_held_at(37.0, base))), dtype=float)
    t0, times, derived = 0.0, [], []
    for hours, temperature, *extra in segments:
        p = model.parameter_vector(_held_at(temperature, {**base, **(extra[0] if extra else {})}))
        tt = np.linspace(t0, t0 + hours, max(2, int(round(hours / step_h)) + 1))
        Y = odeint(c.rhs, y, tt, args=(p,), Dfun=c.jac, rtol=1e-8, atol=1e-12, mxstep=200_000)
        if not np.all(np.isfinite(Y)):
            raise ParameterError(f"cell_history: integration failed in the segment at {t0:g} h")
        times.append(tt[:-1])
        derived.append(c.derived_series(Y[:-1], p))
        y, t0 = Y[-1].copy(), t0 + hours
    times.append(np.array([t0]))
    derived.append(c.derived_series(y[None, :], p))
    D = np.vstack(derived)
    names = c.derived_names
    return np.concatenate(times), {n: D[:, i] for i, n in enumerate(names)}


def _cumulative_death(t: np.ndarray, v: Mapping[str, np.ndarray], cls: str = "mid") -> float:
    hazard = sum(v[f"hazard_{f}_{cls}"] for f in ("apop", "icd", "necr"))
    return float(np.trapezoid(hazard, t))


def _hsp_course(temperature_C: float, hours: float, follow_h: float = 96.0):
    return cell_history([(hours, temperature_C), (follow_h, 37.0)])


# ------------------------------------------------------------------ heat-shock response
@experiment
def hsp70_peak_time(temperature_C: float, hours: float) -> float:
    """Hours from the end of heating to the HSP70 peak (cells, water bath)."""
    t, v = _hsp_course(temperature_C, hours)
    return _vertex(t, v["hsp70_relative"]) - hours


@experiment
def hsp70_peak_fold(temperature_C: float, hours: float) -> float:
    """Peak HSP70 relative to the unheated level (cells, water bath)."""
    _t, v = _hsp_course(temperature_C, hours)
    return float(np.max(v["hsp70_relative"]) / v["hsp70_relative"][0])


@experiment
def hsp70_back_to_baseline(temperature_C: float, hours: float, within: float = 0.1) -> float:
    """Hours after heating until HSP70 stays within *within* of the fold rise above baseline."""
    t, v = _hsp_course(temperature_C, hours, follow_h=240.0)
    h = v["hsp70_relative"] / v["hsp70_relative"][0]
    excess = h - 1.0
    peak = int(np.argmax(h))
    above = np.nonzero(np.abs(excess[peak:]) > within * excess[peak])[0]
    return float(t[peak + above[-1]] - hours) if len(above) else float(t[peak] - hours)


# ------------------------------------------------------------------------ thermotolerance
def _test_death(prime: tuple[float, float] | None, interval_h: float, test: tuple[float, float]):
    """Cumulative death hazard of a test heating, after an optional priming heating."""
    segs: list[tuple[float, float]] = []
    if prime is not None:
        segs += [(prime[1], prime[0]), (interval_h, 37.0)]
    start = sum(s[0] for s in segs)
    segs += [(test[1], test[0]), (24.0, 37.0)]
    t, v = cell_history(segs, step_h=0.05)
    after = t >= start - 1e-9
    return _cumulative_death(t[after], {k: x[after] for k, x in v.items()})


def _protection(prime, test, intervals) -> np.ndarray:
    alone = _test_death(None, 0.0, test)
    return np.array([alone / _test_death(prime, dt, test) for dt in intervals])


_INTERVALS = np.array([1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 30, 36, 48, 60, 72], float)


def _vertex(x: np.ndarray, y: np.ndarray) -> float:
    """Abscissa of the maximum of *y*, refined by the parabola through it and its
    neighbours (so that the answer varies smoothly with the parameters)."""
    k = int(np.argmax(y))
    if k == 0 or k == len(x) - 1:
        return float(x[k])
    (x0, x1, x2), (y0, y1, y2) = x[k - 1 : k + 2], y[k - 1 : k + 2]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
    return float(-b / (2 * a)) if a < 0 else float(x1)


@experiment
def thermotolerance_peak_interval(
    prime_C: float, prime_h: float, test_C: float = 43.0, test_h: float = 1.0
) -> float:
    """Interval (h) after a priming heating at which a test heating kills least
    (protection = death hazard of the test alone / after priming)."""
    ratio = _protection((prime_C, prime_h), (test_C, test_h), _INTERVALS)
    return _vertex(_INTERVALS, ratio)


@experiment
def thermotolerance_ratio(
    prime_C: float, prime_h: float, interval_h: float, test_C: float = 43.0, test_h: float = 1.0
) -> float:
    """Protection (death hazard of the test alone / after priming) at *interval_h*; the
    ratio of cumulative hazards stands for the ratio of D0 of a survival curve."""
    return float(_protection((prime_C, prime_h), (test_C, test_h), [interval_h])[0])


@experiment
def thermotolerance_decay_halftime(
    prime_C: float, prime_h: float, test_C: float = 43.0, test_h: float = 1.0
) -> float:
    """Half-time (h) of the decay of protection after its maximum: the excess protection
    (ratio - 1) fitted by a log-linear line over the intervals after the peak while it
    stays positive. Returns 0 when protection is gone by the next interval."""
    ratio = _protection((prime_C, prime_h), (test_C, test_h), _INTERVALS)
    k = int(np.argmax(ratio))
    excess = ratio[k:] - 1.0
    keep = np.nonzero(excess > 0.02 * excess[0])[0]
    if len(keep) < 2 or excess[0] <= 0:
        return 0.0
    n = int(keep[-1]) + 1 if np.all(np.diff(keep) == 1) else int(np.argmin(np.diff(keep) == 1)) + 1
    x, y = _INTERVALS[k : k + n], np.log(excess[:n])
    slope = np.polyfit(x, y, 1)[0]
    return float(math.log(2) / -slope) if slope < 0 else math.inf


@experiment
def thermotolerance_lost_interval(
    prime_C: float, prime_h: float, test_C: float = 43.0, test_h: float = 1.0, within: float = 0.1
) -> float:
    """Interval (h) after a priming heating from which the excess protection (ratio - 1)
    stays below *within* of its maximum (crossing interpolated linearly between the
    sampled intervals, up to 120 h); infinite if it is still above at 120 h."""
    intervals = np.concatenate([_INTERVALS, [84.0, 96.0, 120.0]])
    excess = _protection((prime_C, prime_h), (test_C, test_h), intervals) - 1.0
    k = int(np.argmax(excess))
    above = np.nonzero(excess[k:] > within * excess[k])[0]
    last = k + int(above[-1])
    if last == len(intervals) - 1:
        return math.inf
    x0, x1, y0, y1 = intervals[last], intervals[last + 1], excess[last], excess[last + 1]
    level = within * excess[k]
    return float(x0 + (x1 - x0) * (y0 - level) / (y0 - y1))


# ------------------------------------------------------------------ glutathione and BSO
@contextlib.contextmanager
def _no_field_warning():
    """The field-safety (H·f) warning is not what is validated: keep reports quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mh.HfWarning)
        yield


def _mouse_run(plan: mh.Protocol, params: Mapping[str, Any] | None = None):
    with _no_field_warning():
        return mh.simulate(_mouse(), plan, {**_OVERRIDES, **(params or {})}, output_step="1 h")


def mouse_run(plan: mh.Protocol, params: Mapping[str, Any] | None = None):
    """The default mouse model simulated under *plan* (hourly output), with the overrides
    of :func:`parameter_overrides` and then *params* on top; the presets the protocol
    names (tumour, host) apply beneath both. The H·f warning is silenced."""
    return _mouse_run(plan, params)


def _bso_plan(dose_mg_per_kg: float, count: int, every_h: float, hours: float) -> mh.Protocol:
    plan = mh.Protocol(duration=f"{hours} h", name="BSO")
    return plan.bso(time="1 h", dose=f"{dose_mg_per_kg} mg/kg", every=f"{every_h} h", count=count)


@experiment
def bso_gsh_fraction(
    dose_mg_per_kg: float, at_h: float, count: int = 1, every_h: float = 4.0
) -> float:
    """Tumour-cell glutathione relative to untreated at *at_h* hours after the first BSO
    dose (mouse, i.p. BSO as the model's pharmacokinetic link gives it)."""
    res = _mouse_run(_bso_plan(dose_mg_per_kg, count, every_h, at_h + 2.0))
    g = res["gsh_uM_mid"]
    t_h = g.index.values * HOURS_PER_DAY
    return float(np.interp(1.0 + at_h, t_h, g.values) / g.values[0])


@experiment
def bso_gsh_nadir_time(dose_mg_per_kg: float) -> float:
    """Hours after one BSO dose at which tumour-cell glutathione is lowest (mouse)."""
    res = _mouse_run(_bso_plan(dose_mg_per_kg, 1, 4.0, 72.0))
    g = res["gsh_uM_mid"]
    return float(g.index.values[int(np.argmin(g.values))] * HOURS_PER_DAY - 1.0)


# --------------------------------------------------------------- redox state of the cell
@experiment
def basal_level(variable: str, scale: float = 1.0) -> float:
    """A variable of unstressed cells at 37 °C after 24 h (stress link alone), times
    *scale* (e.g. 1000 to read µM as nM); ``"a+b"`` sums two variables."""
    _t, v = cell_history([(24.0, 37.0)])
    total = 0.0
    for name in variable.split("+"):
        if name not in v:
            raise ParameterError(f"basal_level: unknown variable {name!r}")
        total += float(v[name][-1])
    return total * scale


@experiment
def gox_atp_drop_percent(gox_effect: float = 1.0) -> float:
    """Drop of cellular ATP (%) with glucose oxidase at full effect (stress link)."""
    _t, v = cell_history([(6.0, 37.0)], signals={"gox_effect": gox_effect})
    return float(100.0 * (1.0 - v["atp_relative"][-1]))


# ------------------------------------------------------- MH against exogenous heating
@experiment
def mh_vs_bath_excess_death_percent(temperature_C: float, hours: float) -> float:
    """Extra cell death (% of the bath's) when the same temperature history is produced by
    an alternating field acting on particles in the cells rather than by a water bath.

    The field acts in the model only through the lysosomal field effect
    (``lysosomal_field_ros``), a documented hypothesis that is off by default."""
    bath = _mh_vs_bath_death(temperature_C, hours, field=False)
    field = _mh_vs_bath_death(temperature_C, hours, field=True)
    return float(100.0 * (field - bath) / bath) if bath > 0 else math.nan


@experiment
def mh_vs_bath_ratio(temperature_C: float, hours: float) -> float:
    """Cell death by magnetic heating / by exogenous heating at the same temperature."""
    bath = _mh_vs_bath_death(temperature_C, hours, field=False)
    return float(_mh_vs_bath_death(temperature_C, hours, field=True) / bath)


def _mh_vs_bath_death(temperature_C: float, hours: float, field: bool) -> float:
    """Death of particle-loaded cells (3.5 mg Fe/cm³) heated for *hours*, by a 15 kA/m,
    200 kHz field (*field*) or by a bath at the same temperature."""
    session = {"mh_field_kA_per_m": 15.0, "mh_freq_kHz": 200.0} if field else {}
    t, v = cell_history(
        [(hours, temperature_C, session), (24.0, 37.0)],
        signals={"particle_iron_mg_per_cm3": 3.5},
    )
    return _cumulative_death(t, v)


# --------------------------------------------------------------- immunogenic cell death
@experiment
def icd_threshold_temperature(hours: float = 1.0, share: float = 0.1) -> float:
    """Lowest temperature (41-47 °C in 0.5 K steps) at which *hours* of heating makes
    immunogenic death at least *share* of all heat-induced death (cells)."""
    for temperature in np.arange(41.0, 47.01, 0.5):
        t, v = cell_history([(hours, float(temperature)), (24.0, 37.0)])
        icd = float(np.trapezoid(v["hazard_icd_mid"], t))
        total = _cumulative_death(t, v)
        if total > 0 and icd / total >= share:
            return float(temperature)
    return math.inf


# --------------------------------------------------------------- mouse: MH sessions
#: day of the first MH session of the mouse experiments (after implantation)
MH_DAY = 7.0


def mh_plan(target_C: float, minutes: float, count: int, every_d: float, days: float, **kw):
    """A protocol of *count* thermostatted MH sessions (*minutes* at *target_C*, every
    *every_d* days) from day ``start_d`` (keyword; default :data:`MH_DAY`), *days* long,
    for the ``tumour`` and ``host`` presets given as keywords. The field cap (24 kA/m at
    200 kHz, H·f 4.8e9, below the Hergt-Dutz limit) lets 3.5 mg Fe/cm³ of 19-nm particles
    reach up to ~50 °C."""
    plan = mh.Protocol(
        duration=f"{days} d",
        name=f"MH {target_C} degC",
        tumour=kw.get("tumour"),
        host=kw.get("host"),
    )
    with _no_field_warning():
        return plan.mh_session(
            start=f"{kw.get('start_d', MH_DAY)} d",
            duration=f"{minutes} min",
            field=kw.get("field", "24 kA/m"),
            frequency=kw.get("frequency", "200 kHz"),
            agent=kw.get("agent", "fe3o4_19nm_mpeg"),
            dose=kw.get("dose", "3.5 mg/cm^3"),
            target=f"{target_C} degC",
            every=f"{every_d} d",
            count=count,
        )


def culled_at_endpoint(
    volume, since_day: float, endpoint_mm3: float = ResponderRule.endpoint_mm3
) -> bool:
    """Whether a mouse's tumour *volume* (a series indexed by day) reaches the humane
    endpoint (:class:`~mhimmune.studies.trial_design.ResponderRule`, assumed 2000 mm³) from
    *since_day* on: the mouse would have been culled then, so it counts as no responder
    and no cure, whatever its simulated tumour does later."""
    return bool((volume[volume.index >= since_day] >= endpoint_mm3).any())


@experiment
def mh_cure_fraction(
    target_C: float,
    minutes: float,
    count: int = 1,
    every_d: float = 1.0,
    animals: int = 20,
    seed: int = 2026,
    tumour: str | None = None,
) -> float:
    """Fraction of a virtual cohort whose treated tumour is extinct (below one cell) 30 days
    after thermostatted MH sessions starting on day 7 (distant tumour present); the
    animals vary around the *tumour* preset (default: the tables) and around the values
    being scored or fitted (:func:`parameter_overrides`). An animal whose treated tumour
    reaches the humane endpoint (:class:`~mhimmune.studies.trial_design.ResponderRule`,
    assumed 2000 mm³; the studies compared carry that tumour alone) after the first
    session is culled there and is no cure."""

    cohort = preset_cohort(tumour, animals, seed)
    plan = mh_plan(target_C, minutes, count, every_d, 37.0, tumour=tumour)
    cured = 0
    for _, row in cohort.iterrows():
        v = _mouse_run(plan, row.to_dict())["tumour_volume_treated"]
        cured += bool(v.iloc[-1] < CELL_VOLUME_MM3) and not culled_at_endpoint(v, MH_DAY)
    return cured / len(cohort)


@experiment
def mh_peak_temperature(
    agent: str,
    dose_mg_per_cm3: float,
    field_kA_per_m: float,
    frequency_kHz: float,
    minutes: float,
) -> float:
    """Mean tumour temperature (°C) at the end of a fixed-field MH session (mouse)."""
    with _no_field_warning():
        plan = mh.Protocol(duration="8 d", name="heating", allow_above_hergt=True).mh_session(
            start=f"{MH_DAY} d",
            duration=f"{minutes} min",
            field=f"{field_kA_per_m} kA/m",
            frequency=f"{frequency_kHz} kHz",
            agent=agent,
            dose=f"{dose_mg_per_cm3} mg/cm^3",
        )
    res = _mouse_run(plan)
    sessions = res.sessions()
    return float(sessions["peak_temperature_C"].iloc[0])


@experiment
def mild_mh_fold(variable: str, day_after: float, target_C: float = 44.0, minutes: float = 30.0):
    """Fold change of *variable* against an untreated mouse, *day_after* days after one
    thermostatted MH session on day 7."""
    treated = _mouse_run(mh_plan(target_C, minutes, 1, 1.0, MH_DAY + day_after + 1.0))
    control = _mouse_run(mh.Protocol(duration=f"{MH_DAY + day_after + 1.0} d", name="untreated"))
    day = MH_DAY + day_after
    a = float(np.interp(day, treated[variable].index.values, treated[variable].values))
    b = float(np.interp(day, control[variable].index.values, control[variable].values))
    return a / b if b > 0 else math.inf


@experiment
def damp_peak_time(variable: str, target_C: float = 42.0, minutes: float = 30.0) -> float:
    """Hours from the start of one thermostatted MH session (day 7) to the peak of *variable*."""
    res = _mouse_run(mh_plan(target_C, minutes, 1, 1.0, 12.0))
    s = res[variable]
    after = s.index.values >= MH_DAY
    t = s.index.values[after]
    return float((t[int(np.argmax(s.values[after]))] - MH_DAY) * HOURS_PER_DAY)


@experiment
def damp_cleared_time(
    variable: str, target_C: float = 42.0, minutes: float = 30.0, within: float = 0.1
) -> float:
    """Hours from the start of one MH session (day 7) until *variable* falls back within
    *within* of its peak excess over the pre-session level."""
    res = _mouse_run(mh_plan(target_C, minutes, 1, 1.0, 14.0))
    s = res[variable]
    t = s.index.values
    base = float(np.interp(MH_DAY, t, s.values))
    after = t >= MH_DAY
    x, tt = s.values[after] - base, t[after]
    k = int(np.argmax(x))
    still = np.nonzero(x[k:] > within * x[k])[0]
    return float((tt[k + still[-1]] - MH_DAY) * HOURS_PER_DAY) if len(still) else 0.0


@experiment
def abscopal_better_temperature(low_C: float = 44.0, high_C: float = 52.5) -> float:
    """Which of two thermostatted MH temperatures (one 30-min session on day 7) leaves the
    smaller distant tumour on day 21; returns that temperature (°C)."""
    vols = {}
    for target in (low_C, high_C):
        res = _mouse_run(mh_plan(target, 30.0, 1, 1.0, 21.0))
        vols[target] = float(res["tumour_volume_distant"].iloc[-1])
    return high_C if vols[high_C] < vols[low_C] else low_C


@experiment
def untreated_growth_rate(day_from: float = 1.0, day_to: float = 7.0) -> float:
    """Early exponential growth rate (1/d) of the untreated treated-site tumour (mouse)."""
    res = _mouse_run(mh.Protocol(duration="30 d", name="untreated"))
    v = res["tumour_volume_treated"]
    a = float(np.interp(day_from, v.index.values, v.values))
    b = float(np.interp(day_to, v.index.values, v.values))
    return math.log(b / a) / (day_to - day_from)


@experiment
def untreated_max_volume(days: float = 60.0) -> float:
    """Largest volume (mm³) the untreated tumour reaches within *days* (mouse)."""
    res = _mouse_run(mh.Protocol(duration=f"{days} d", name="untreated"))
    return float(res["tumour_volume_treated"].max())


@experiment
def mouse_level(
    variable: str,
    day_after: float,
    target_C: float | None = None,
    minutes: float = 30.0,
    scale: float = 1.0,
) -> float:
    """*variable* (times *scale*) *day_after* days after day 7 in an untreated mouse, or
    after one thermostatted MH session at *target_C* on day 7."""
    days = MH_DAY + day_after + 1.0
    if target_C is None:
        plan = mh.Protocol(duration=f"{days} d", name="untreated")
    else:
        plan = mh_plan(target_C, minutes, 1, 1.0, days)
    s = _mouse_run(plan)[variable]
    return float(np.interp(MH_DAY + day_after, s.index.values, s.values) * scale)
