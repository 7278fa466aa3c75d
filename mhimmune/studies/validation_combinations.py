"""Validation experiments of MH alone and with a checkpoint antibody in tumour presets.

Each function simulates mice of a tumour preset (:mod:`mhimmune.mh.presets`) given
thermostatted MH sessions (:func:`~mhimmune.studies.validation_experiments.mh_plan`:
19-nm particles, field capped at 24 kA/m, 200 kHz) on the day the typical untreated
tumour reaches a size, as studies randomise mice at a size, optionally with an antibody
course (:data:`~mhimmune.studies.validation_tumours.ANTIBODIES`) from a delay after the
first session, and returns what an MH-immunotherapy study reports: the fraction of
mice whose tumour(s) regressed completely, or the growth inhibition of the treated or
the distant (unheated) tumour against untreated mice, or the fraction of MH-cured
mice that reject a rechallenge. They are registered in
:data:`~mhimmune.studies.validation_experiments.EXPERIMENTS` when this module is
imported, as :mod:`mhimmune.studies.validation` does.
"""

from __future__ import annotations

import math

import numpy as np

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.studies.trial_design import ResponderRule
from mhimmune.studies.validation_experiments import (
    CELL_VOLUME_MM3,
    MH_DAY,
    culled_at_endpoint,
    experiment,
    mh_plan,
    mouse_run,
    preset_cohort,
)
from mhimmune.studies.validation_tumours import ANTIBODIES, ONE_TUMOUR, day_reaching

__all__ = [
    "MH_READOUTS",
    "mh_complete_fraction",
    "mh_inhibition",
    "mh_rechallenge_rejection",
    "mh_first_day",
]

#: what :func:`mh_complete_fraction` counts as a complete regression
MH_READOUTS: tuple[str, ...] = ("treated", "distant", "both")
#: sites whose growth inhibition :func:`mh_inhibition` reads
INHIBITION_SITES: tuple[str, ...] = ("treated", "distant")
#: a tumour below this volume (mm³) has regressed completely (below caliper detection)
COMPLETE_MM3 = 1.0


def _series_at(series, day: float) -> float:
    return float(np.interp(day, series.index.values, series.values))


def mh_first_day(tumour: str, start_volume: float, host: str | None = None) -> float:
    """Day on which the untreated treated-site tumour of a one-tumour mouse of the
    *tumour* preset reaches *start_volume* (mm³): the day of the first MH session."""
    if not math.isfinite(start_volume) or start_volume <= 0:
        raise ParameterError(f"start_volume: {start_volume:g} must be a positive volume in mm³")
    plan = mh.Protocol(duration="120 d", name="untreated", tumour=tumour, host=host)
    return day_reaching(mouse_run(plan, ONE_TUMOUR)["tumour_volume_treated"], start_volume, tumour)


def _plan(
    tumour: str,
    target_C: float,
    minutes: float,
    sessions: int,
    session_every_d: float,
    antibody: str,
    dose_mg_per_kg: float,
    antibody_delay_d: float,
    antibody_every_d: float,
    antibody_count: int,
    first: float,
    days: float,
    host: str | None,
) -> mh.Protocol:
    """MH sessions from day *first* (``target_C`` 0: no session, the antibody-alone or
    untreated arm) and the antibody course *antibody_delay_d* days after the first session."""
    if antibody not in ANTIBODIES and antibody != "none":
        raise ParameterError(
            f"antibody: {antibody!r} is not one of {', '.join(ANTIBODIES)} or none"
        )
    if sessions < 1:
        raise ParameterError(f"sessions: {sessions} must be at least 1")
    if target_C:
        plan = mh_plan(
            target_C, minutes, sessions, session_every_d, days,
            start_d=first, tumour=tumour, host=host,
        )  # fmt: skip
    else:
        plan = mh.Protocol(duration=f"{days} d", name="no MH", tumour=tumour, host=host)
    if antibody == "none":
        return plan
    start = first + antibody_delay_d
    if start < 0:
        raise ParameterError(
            f"antibody_delay_d: {antibody_delay_d:g} puts the first dose before day 0"
        )
    return getattr(plan, ANTIBODIES[antibody])(
        time=f"{start} d",
        dose=f"{dose_mg_per_kg} mg/kg",
        every=f"{antibody_every_d} d",
        count=antibody_count,
    )


@experiment
def mh_complete_fraction(
    tumour: str,
    target_C: float = 43.0,
    minutes: float = 30.0,
    sessions: int = 1,
    session_every_d: float = 1.0,
    antibody: str = "none",
    dose_mg_per_kg: float = 10.0,
    antibody_delay_d: float = 0.0,
    antibody_every_d: float = 3.0,
    antibody_count: int = 3,
    start_volume: float = 100.0,
    distant: bool = False,
    readout: str = "treated",
    follow_days: float = 30.0,
    animals: int = 40,
    seed: int = 2026,
    host: str | None = None,
    endpoint_mm3: float = ResponderRule.endpoint_mm3,
) -> float:
    """Fraction of a virtual cohort (varied around the *tumour* preset) whose tumour has
    regressed completely (below 1 mm³) *follow_days* after the first of *sessions*
    thermostatted MH sessions (*minutes* at *target_C*; ``target_C=0``: none), given on
    the day the typical untreated tumour reaches *start_volume* (mm³), with an optional
    *antibody* course from *antibody_delay_d* days after the first session.

    *distant*: the mouse carries the model's second, unheated tumour (inoculated with the
    first); *readout* ``treated``, ``distant`` or ``both`` says which must have regressed.
    A mouse whose tumours together reach *endpoint_mm3* (the humane endpoint of
    :class:`~mhimmune.studies.trial_design.ResponderRule`, assumed 2000 mm³) after the
    first session is culled there and counts as no responder.
    """
    if readout not in MH_READOUTS:
        raise ParameterError(f"readout: {readout!r} is not one of {', '.join(MH_READOUTS)}")
    if readout != "treated" and not distant:
        raise ParameterError(f"readout: {readout!r} needs distant=True (a second tumour)")
    if not math.isfinite(endpoint_mm3) or endpoint_mm3 <= start_volume:
        raise ParameterError(
            f"endpoint_mm3: {endpoint_mm3:g} must be finite and above start_volume "
            f"({start_volume:g} mm³)"
        )
    if follow_days <= 0:
        raise ParameterError(f"follow_days: {follow_days:g} must be positive")
    first = mh_first_day(tumour, start_volume, host)
    plan = _plan(
        tumour, target_C, minutes, sessions, session_every_d, antibody, dose_mg_per_kg,
        antibody_delay_d, antibody_every_d, antibody_count, first, first + follow_days, host,
    )  # fmt: skip
    cohort = preset_cohort(tumour, animals, seed, host)
    sites = ("treated", "distant") if readout == "both" else (readout,)
    responders = 0
    for _, row in cohort.iterrows():
        params = row.to_dict() if distant else {**row.to_dict(), **ONE_TUMOUR}
        res = mouse_run(plan, params)
        total = res["tumour_volume_treated"] + res["tumour_volume_distant"]
        gone = all(res[f"tumour_volume_{s}"].iloc[-1] < COMPLETE_MM3 for s in sites)
        responders += gone and not culled_at_endpoint(total, first, endpoint_mm3)
    return responders / len(cohort)


@experiment
def mh_inhibition(
    tumour: str,
    target_C: float = 43.0,
    minutes: float = 30.0,
    sessions: int = 1,
    session_every_d: float = 1.0,
    antibody: str = "none",
    dose_mg_per_kg: float = 10.0,
    antibody_delay_d: float = 0.0,
    antibody_every_d: float = 3.0,
    antibody_count: int = 3,
    start_volume: float = 100.0,
    site: str = "treated",
    days_after: float = 14.0,
    host: str | None = None,
) -> float:
    """Growth inhibition 1 - V_treated/V_untreated of the typical two-tumour mouse of the
    *tumour* preset at its *site* (``treated``: the heated tumour; ``distant``: the
    unheated one, an abscopal effect) *days_after* days after the first MH session, the
    sessions and antibody course as in :func:`mh_complete_fraction`; the untreated mouse
    carries the same two tumours."""
    if site not in INHIBITION_SITES:
        raise ParameterError(f"site: {site!r} is not one of {', '.join(INHIBITION_SITES)}")
    if days_after <= 0:
        raise ParameterError(f"days_after: {days_after:g} must be positive")
    first = mh_first_day(tumour, start_volume, host)
    end = first + days_after
    plan = _plan(
        tumour, target_C, minutes, sessions, session_every_d, antibody, dose_mg_per_kg,
        antibody_delay_d, antibody_every_d, antibody_count, first, end + 1.0, host,
    )  # fmt: skip
    control = mh.Protocol(duration=f"{end + 1.0} d", name="untreated", tumour=tumour, host=host)
    name = f"tumour_volume_{site}"
    treated = _series_at(mouse_run(plan)[name], end)
    untreated = _series_at(mouse_run(control)[name], end)
    return 1.0 - treated / untreated


@experiment
def mh_rechallenge_rejection(
    tumour: str,
    target_C: float = 46.0,
    minutes: float = 30.0,
    sessions: int = 2,
    session_every_d: float = 1.0,
    rechallenge_after_d: float = 30.0,
    cells: float = 1e6,
    follow_days: float = 30.0,
    animals: int = 40,
    seed: int = 2026,
    host: str | None = None,
) -> float:
    """Of the one-tumour mice (a cohort varied around the *tumour* preset) whose tumour
    thermostatted MH cured (below one cell *rechallenge_after_d* days after the first of
    *sessions* sessions on day :data:`~mhimmune.studies.validation_experiments.MH_DAY`,
    without reaching the humane endpoint), the fraction that reject a rechallenge of
    *cells* tumour cells implanted at the other flank then: the new tumour is below 1 mm³
    *follow_days* later. Raises when no mouse is cured (the fraction is undefined)."""
    if not 1e3 <= cells <= 1e8:
        raise ParameterError(f"cells: {cells:g} is outside 1e3-1e8 rechallenge cells")
    if rechallenge_after_d <= 0 or follow_days <= 0:
        raise ParameterError(
            f"rechallenge_after_d, follow_days: {rechallenge_after_d:g}, {follow_days:g} "
            "must be positive"
        )
    day = MH_DAY + rechallenge_after_d
    plan = mh_plan(
        target_C, minutes, sessions, session_every_d, day + follow_days, tumour=tumour, host=host
    ).rechallenge(time=f"{day} d", volume=f"{cells * CELL_VOLUME_MM3} mm^3")
    cohort = preset_cohort(tumour, animals, seed, host)
    cured = rejected = 0
    for _, row in cohort.iterrows():
        res = mouse_run(plan, {**row.to_dict(), **ONE_TUMOUR})
        treated = res["tumour_volume_treated"]
        if _series_at(treated, day) >= CELL_VOLUME_MM3 or culled_at_endpoint(treated, MH_DAY):
            continue
        cured += 1
        rejected += bool(res["tumour_volume_distant"].iloc[-1] < COMPLETE_MM3)
    if not cured:
        raise ParameterError(
            f"no mouse of {animals} cured by the sessions: the rejection fraction is undefined"
        )
    return rejected / cured
