"""Validation experiments of the tumour and host presets (:mod:`mhimmune.mh.presets`).

Each function simulates the default mouse model with a tumour preset (and a host preset)
named in the protocol, and returns the number a publication on that tumour line or host
reports: an untreated growth rate, the growth inhibition by anti-PD-(L)1 alone, a ratio of
two lines. They are registered in
:data:`~mhimmune.studies.validation_experiments.EXPERIMENTS` (``analyses/validation/
targets.tsv`` names them in its ``experiment`` column) when this module is imported, as
:mod:`mhimmune.studies.validation` does.

Antibody monotherapy experiments give anti-PD-L1, anti-PD-1 or anti-CTLA-4 (:data:`ANTIBODIES`)
to one-tumour mice from the day the untreated tumour reaches a size, as studies randomise
mice at a tumour size; :func:`host_cd8_effectors_peak` runs the shipped MH arm with
anti-PD-L1 on days 7, 10 and 13 (after Kosinsky et al. 2018).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.studies.trial_design import ResponderRule
from mhimmune.studies.validation_experiments import (
    culled_at_endpoint,
    experiment,
    mouse_run,
    preset_cohort,
)

__all__ = [
    "ANTIBODIES",
    "preset_growth_rate",
    "preset_days_to_volume",
    "preset_log_growth_rate",
    "preset_antibody_inhibition",
    "preset_antibody_responders",
    "preset_antibody_volume_fold",
    "preset_antibody_fold",
    "preset_volume_after_inoculation",
    "preset_days_after_inoculation",
    "preset_immune_percent",
    "preset_immune_percent_change",
    "preset_antibody_percent_fold",
    "POPULATIONS",
    "preset_doubling_time",
    "preset_antibody_inhibition_ratio",
    "preset_ctl_infiltration_ratio",
    "host_cd8_effectors_peak",
    "day_reaching",
]


#: antibody name in the experiments -> Protocol builder method
ANTIBODIES: dict[str, str] = {"pdl1": "anti_pdl1", "pd1": "anti_pd1", "ctla4": "anti_ctla4"}

#: one-tumour mouse: the model's distant tumour is absent (experiments on single implants)
ONE_TUMOUR: dict[str, float] = {"tumour_initial_distant": 0.0}


def _plan(days: float, tumour: str | None, host: str | None = None) -> mh.Protocol:
    return mh.Protocol(duration=f"{days} d", name="untreated", tumour=tumour, host=host)


def _anti_pdl1(plan: mh.Protocol) -> mh.Protocol:
    return plan.anti_pdl1(time="7 d", dose="10 mg/kg", every="3 d", count=3)


def _at(series, day: float) -> float:
    return float(np.interp(day, series.index.values, series.values))


@experiment
def preset_growth_rate(tumour: str, day_from: float = 1.0, day_to: float = 7.0) -> float:
    """Early exponential growth rate (1/d) of the untreated tumour of a preset."""
    v = mouse_run(_plan(max(day_to + 1.0, 10.0), tumour))["tumour_volume_treated"]
    return math.log(_at(v, day_to) / _at(v, day_from)) / (day_to - day_from)


@experiment
def preset_doubling_time(tumour: str, day_from: float = 7.0, day_to: float = 14.0) -> float:
    """Volume doubling time (d) of the untreated tumour of a preset between two days."""
    return math.log(2.0) / preset_growth_rate(tumour, day_from, day_to)


@experiment
def preset_ctl_infiltration_ratio(better: str, worse: str, day: float = 14.0) -> float:
    """CD8 T cells among the immune cells of the untreated tumour on *day*: preset *better*
    over preset *worse*."""

    def level(tumour: str) -> float:
        return _at(mouse_run(_plan(day + 1.0, tumour))["ctl_infiltration_treated"], day)

    return level(better) / level(worse)


@experiment
def host_cd8_effectors_peak(host: str = "nude", tumour: str | None = None) -> float:
    """Largest number of effector CD8 T cells (blood and both tumours, 10⁶ cells) over 40
    days under the shipped MH + anti-PD-L1 protocol (three 30-min sessions at 15 kA/m,
    200 kHz, days 7, 9, 11; anti-PD-L1 days 7, 10, 13) in a host preset."""
    with warnings.catch_warnings():  # H·f 3e9 A/m/s: above Brezovich, below Hergt
        warnings.simplefilter("ignore", mh.HfWarning)
        plan = mh.Protocol.shipped("mh", name="MH + anti-PD-L1", tumour=tumour, host=host)
    return float(mouse_run(_anti_pdl1(plan))["cd8_effectors_total"].max())


def day_reaching(v, volume_mm3: float, tumour: str) -> float:
    """First day the recorded volume series *v* reaches *volume_mm3* (linear in log V)."""
    t, y = v.index.values, v.values
    above = np.nonzero(y >= volume_mm3)[0]
    if volume_mm3 <= y[0]:
        raise ParameterError(
            f"start_volume: {volume_mm3:g} mm³ is not above the {tumour} tumour's initial "
            f"{y[0]:.3g} mm³"
        )
    if not len(above):
        raise ParameterError(
            f"start_volume: the untreated {tumour} tumour never reaches {volume_mm3:g} mm³ "
            f"(largest {y.max():.3g} mm³)"
        )
    i = int(above[0])
    f = math.log(volume_mm3 / y[i - 1]) / math.log(y[i] / y[i - 1])
    return float(t[i - 1] + f * (t[i] - t[i - 1]))


def _untreated(tumour: str, days: float, host: str | None, params=None):
    return mouse_run(_plan(days, tumour, host), {**ONE_TUMOUR, **(params or {})})


@experiment
def preset_days_to_volume(tumour: str, start_volume: float, end_volume: float) -> float:
    """Days an untreated one-tumour mouse's tumour of a preset takes to grow from
    *start_volume* to *end_volume* (mm³)."""
    v = _untreated(tumour, 120.0, None)["tumour_volume_treated"]
    return day_reaching(v, end_volume, tumour) - day_reaching(v, start_volume, tumour)


@experiment
def preset_log_growth_rate(
    tumour: str, start_volume: float = 100.0, end_volume: float = 1500.0
) -> float:
    """Exponential growth rate (1/d) of an untreated one-tumour mouse's tumour of a preset
    while it grows from *start_volume* to *end_volume* (mm³): the least-squares slope of
    ln V against time, sampled evenly between the two days, as a log-linear fit to one
    mouse's caliper volumes in that size window estimates it."""
    if not 0.0 < start_volume < end_volume:
        raise ParameterError(
            f"start_volume/end_volume: need 0 < start_volume < end_volume mm³ "
            f"(got {start_volume:g}, {end_volume:g})"
        )
    v = _untreated(tumour, 120.0, None)["tumour_volume_treated"]
    t0, t1 = day_reaching(v, start_volume, tumour), day_reaching(v, end_volume, tumour)
    days = np.linspace(t0, t1, 41)
    log_v = np.interp(days, v.index.values, np.log(np.maximum(v.values, 1e-12)))
    return float(np.polyfit(days, log_v, 1)[0])


def _treated_plan(
    tumour: str,
    antibody: str,
    dose_mg_per_kg: float,
    first_day: float,
    every_day: float,
    count: int,
    days: float,
    host: str | None,
) -> mh.Protocol:
    if antibody not in ANTIBODIES and antibody != "none":
        raise ParameterError(
            f"antibody: {antibody!r} is not one of {', '.join(ANTIBODIES)} or none"
        )
    plan = _plan(days, tumour, host)
    if antibody == "none":
        return plan
    return getattr(plan, ANTIBODIES[antibody])(
        time=f"{first_day} d", dose=f"{dose_mg_per_kg} mg/kg", every=f"{every_day} d", count=count
    )


def _antibody_course(
    tumour: str,
    antibody: str,
    dose_mg_per_kg: float,
    start_volume: float,
    every_day: float,
    count: int,
    days_after: float,
    host: str | None = None,
    extra_days: float | None = 1.0,
):
    """The untreated mouse's run (120 days), the day of the first dose (when its tumour
    reaches *start_volume*), the readout day *days_after* it, and the treated plan (to the
    readout day plus *extra_days*; ``None``: also through every dose of the course, even
    when the readout comes first)."""
    untreated = _untreated(tumour, 120.0, host)
    first = day_reaching(untreated["tumour_volume_treated"], start_volume, tumour)
    end = first + days_after
    if extra_days is None:
        extra_days = max(1.0, (count - 1) * every_day + 1.0 - days_after)
    plan = _treated_plan(
        tumour, antibody, dose_mg_per_kg, first, every_day, count, end + extra_days, host
    )
    return untreated, first, end, plan


@experiment
def preset_antibody_inhibition(
    tumour: str,
    antibody: str = "pdl1",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    days_after: float = 14.0,
    host: str | None = None,
) -> float:
    """Growth inhibition by one antibody alone in a one-tumour mouse of a preset:
    1 - V_treated/V_untreated *days_after* days after the first dose, which is given on
    the day the untreated tumour reaches *start_volume* (mm³), as studies randomise
    mice at a tumour size (0 = no effect, 1 = eradication)."""
    untreated, _, end, plan = _antibody_course(
        tumour, antibody, dose_mg_per_kg, start_volume, every_day, count, days_after, host
    )
    treated = mouse_run(plan, ONE_TUMOUR)["tumour_volume_treated"]
    return 1.0 - _at(treated, end) / _at(untreated["tumour_volume_treated"], end)


@experiment
def preset_antibody_inhibition_ratio(
    better: str,
    worse: str,
    antibody: str = "pdl1",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    days_after: float = 14.0,
) -> float:
    """Growth inhibition by one antibody alone of preset *better* over that of preset
    *worse*, each as :func:`preset_antibody_inhibition` measures it (> 1 when *better*
    responds more)."""
    course = dict(
        antibody=antibody,
        dose_mg_per_kg=dose_mg_per_kg,
        start_volume=start_volume,
        every_day=every_day,
        count=count,
        days_after=days_after,
    )
    low = preset_antibody_inhibition(worse, **course)
    high = preset_antibody_inhibition(better, **course)
    return high / low if low > 0 else math.inf


@experiment
def preset_antibody_volume_fold(
    tumour: str,
    antibody: str = "pdl1",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    days_after: float = 14.0,
) -> float:
    """Volume of a one-tumour mouse's tumour *days_after* days after the first antibody
    dose over its volume at that dose (< 1: the tumour regressed), the first dose given
    when the untreated tumour reaches *start_volume* (mm³)."""
    _, _, end, plan = _antibody_course(
        tumour, antibody, dose_mg_per_kg, start_volume, every_day, count, days_after
    )
    treated = mouse_run(plan, ONE_TUMOUR)["tumour_volume_treated"]
    return _at(treated, end) / start_volume


@experiment
def preset_antibody_fold(
    tumour: str,
    variable: str,
    antibody: str = "ctla4",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    days_after: float = 3.0,
) -> float:
    """A model variable of a one-tumour mouse *days_after* days after the first dose of
    one antibody alone, over its value in the untreated mouse on the same day; the first
    dose is given when the untreated tumour reaches *start_volume* (mm³)."""
    untreated, _, end, plan = _antibody_course(
        tumour, antibody, dose_mg_per_kg, start_volume, every_day, count, days_after, None, None
    )
    treated = mouse_run(plan, ONE_TUMOUR)
    if variable not in treated.variables:
        raise ParameterError(f"variable: {variable!r} is not a variable of the model")
    base = _at(untreated[variable], end)
    return _at(treated[variable], end) / base if base > 0 else math.inf


#: how :func:`preset_antibody_responders` classifies an animal
RESPONSES: tuple[str, ...] = ("complete", "regression")


@experiment
def preset_antibody_responders(
    tumour: str,
    antibody: str = "pdl1",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    follow_days: float = 40.0,
    response: str = "complete",
    animals: int = 40,
    seed: int = 2026,
    endpoint_mm3: float = ResponderRule.endpoint_mm3,
) -> float:
    """Fraction of responders in a virtual cohort of one-tumour mice (varied around the
    preset) *follow_days* after the first antibody dose (``antibody="none"``: untreated),
    given when the typical untreated tumour reaches *start_volume* (mm³).

    *response* ``complete``: the tumour is gone (below 1 mm³); ``regression``: it is
    smaller than at the first dose. A mouse whose tumour reaches *endpoint_mm3* (the
    humane endpoint of :class:`~mhimmune.studies.trial_design.ResponderRule`, assumed
    2000 mm³) after the first dose is culled there and counts as no responder, as in an
    experiment, even if its simulated tumour shrinks later.
    """
    if response not in RESPONSES:
        raise ParameterError(f"response: {response!r} is not one of {', '.join(RESPONSES)}")
    if not math.isfinite(endpoint_mm3) or endpoint_mm3 <= max(start_volume, 1.0):
        raise ParameterError(
            f"endpoint_mm3: {endpoint_mm3:g} must be finite and above start_volume "
            f"({start_volume:g} mm³)"
        )
    _, first, _, plan = _antibody_course(
        tumour, antibody, dose_mg_per_kg, start_volume, every_day, count, follow_days,
        extra_days=0.0,
    )  # fmt: skip
    cohort = preset_cohort(tumour, animals, seed)
    responders = 0
    for _, row in cohort.iterrows():
        v = mouse_run(plan, {**row.to_dict(), **ONE_TUMOUR})["tumour_volume_treated"]
        limit = 1.0 if response == "complete" else _at(v, first)
        responders += bool(v.iloc[-1] < limit) and not culled_at_endpoint(v, first, endpoint_mm3)
    return responders / len(cohort)


def _inoculated(tumour: str, cells: float, days: float):
    if not 1e3 <= cells <= 1e8:
        raise ParameterError(f"cells: {cells:g} is outside 1e3-1e8 inoculated cells")
    params = {"tumour_initial_treated": cells * 1e-6}
    return _untreated(tumour, days, None, params)["tumour_volume_treated"]


@experiment
def preset_volume_after_inoculation(tumour: str, cells: float, day: float) -> float:
    """Volume (mm³) of an untreated one-tumour mouse's tumour of a preset *day* days after
    inoculating *cells* tumour cells (1e6 cells = 1 mm³; growth without an implantation lag,
    as the model has none)."""
    return _at(_inoculated(tumour, cells, day + 1.0), day)


@experiment
def preset_days_after_inoculation(tumour: str, cells: float, volume: float) -> float:
    """Days an untreated one-tumour mouse's tumour of a preset takes to reach *volume*
    (mm³) after inoculating *cells* tumour cells (as :func:`preset_volume_after_inoculation`)."""
    return day_reaching(_inoculated(tumour, cells, 150.0), volume, tumour)


#: flow-cytometry gates of :func:`preset_immune_percent`: population -> model variables
POPULATIONS: dict[str, tuple[str, ...]] = {
    "cd8": ("cd8_effector_treated", "cd8_exhausted_treated"),
    "cd45": ("immune_cells_treated",),
}
#: denominators of :func:`preset_immune_percent` (``live``: tumour cells, 1 Mcell per mm³,
#: plus immune cells)
DENOMINATORS = ("cd45", "live")


def _check_gate(population: str, of: str) -> None:
    if population not in POPULATIONS or of not in DENOMINATORS:
        raise ParameterError(
            f"population/of: {population!r} of {of!r}; allowed population "
            f"{' or '.join(POPULATIONS)}, of {' or '.join(DENOMINATORS)}"
        )


def _percent(res, population: str, of: str, day: float) -> float:
    """*population* as a percentage *of* ``cd45`` or ``live`` cells of the treated tumour
    of run *res* on *day* (linear interpolation of each cell number)."""
    top = sum(_at(res[v], day) for v in POPULATIONS[population])
    cd45 = _at(res["immune_cells_treated"], day)
    below = cd45 if of == "cd45" else _at(res["tumour_volume_treated"], day) + cd45
    return 100.0 * top / below


@experiment
def preset_immune_percent(
    tumour: str, population: str = "cd8", of: str = "cd45", at_volume: float = 500.0
) -> float:
    """A flow-cytometry percentage of the untreated one-tumour mouse's tumour of a preset
    when it reaches *at_volume* (mm³): *population* ``cd8`` (effector and exhausted CD8
    T cells) or ``cd45`` (all modelled immune cells) as a percentage *of* ``cd45`` or
    ``live`` cells (tumour cells at 1 Mcell per mm³ plus immune cells)."""
    _check_gate(population, of)
    res = _untreated(tumour, 120.0, None)
    day = day_reaching(res["tumour_volume_treated"], at_volume, tumour)
    return _percent(res, population, of, day)


@experiment
def preset_immune_percent_change(
    tumour: str,
    population: str = "cd8",
    of: str = "cd45",
    start_volume: float = 100.0,
    days_later: float = 21.0,
) -> float:
    """How a flow-cytometry percentage of an untreated one-tumour mouse's tumour changes as
    it grows: the percentage (as :func:`preset_immune_percent`) *days_later* days after the
    tumour reaches *start_volume* (mm³), over the percentage then (< 1: it falls)."""
    _check_gate(population, of)
    if not math.isfinite(days_later) or days_later <= 0:
        raise ParameterError(f"days_later: {days_later:g} must be a positive number of days")
    res = _untreated(tumour, 120.0, None)
    first = day_reaching(res["tumour_volume_treated"], start_volume, tumour)
    if first + days_later > res["tumour_volume_treated"].index[-1]:
        raise ParameterError(
            f"days_later: {days_later:g} d after {start_volume:g} mm³ is past the 120-d run"
        )
    return _percent(res, population, of, first + days_later) / _percent(res, population, of, first)


@experiment
def preset_antibody_percent_fold(
    tumour: str,
    antibody: str = "pdl1",
    population: str = "cd8",
    of: str = "live",
    dose_mg_per_kg: float = 10.0,
    start_volume: float = 100.0,
    every_day: float = 3.0,
    count: int = 3,
    days_after: float = 14.0,
) -> float:
    """A flow-cytometry percentage (as :func:`preset_immune_percent`) of a one-tumour
    mouse's tumour *days_after* days after the first dose of one antibody alone, over the
    same percentage of the untreated mouse's tumour that day; the first dose is given when
    the untreated tumour reaches *start_volume* (mm³)."""
    _check_gate(population, of)
    untreated, _, end, plan = _antibody_course(
        tumour, antibody, dose_mg_per_kg, start_volume, every_day, count, days_after, None, None
    )
    treated = mouse_run(plan, ONE_TUMOUR)
    return _percent(treated, population, of, end) / _percent(untreated, population, of, end)
