"""Validation experiments of the tumour and host presets (:mod:`mhimmune.mh.presets`).

Each function simulates the default mouse model with a tumour preset (and a host preset)
named in the protocol, and returns the number a publication on that tumour line or host
reports: an untreated growth rate, the growth inhibition by anti-PD-(L)1 alone, a ratio of
two lines. They are registered in
:data:`~mhimmune.studies.validation_experiments.EXPERIMENTS` (``analyses/validation/
targets.tsv`` names them in its ``experiment`` column) when this module is imported, as
:mod:`mhimmune.studies.validation` does.

Anti-PD-(L)1 alone is the model's anti-PD-L1 antibody, 10 mg/kg on days 7, 10 and 13 (the
shipped ``anti_pdl1`` protocol, after Kosinsky et al. 2018); publications that gave
anti-PD-1 are compared with it, as the model has one checkpoint antibody.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import mhimmune as mh
from mhimmune.studies.validation_experiments import experiment, mouse_run

__all__ = [
    "preset_growth_rate",
    "preset_doubling_time",
    "preset_pdl1_inhibition",
    "preset_pdl1_inhibition_ratio",
    "preset_ctl_infiltration_ratio",
    "host_cd8_effectors_peak",
]


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
def preset_pdl1_inhibition(tumour: str, day: float = 21.0, host: str | None = None) -> float:
    """Growth inhibition by anti-PD-L1 alone: 1 - V_treated/V_untreated of the treated-site
    tumour on *day* (0 = no effect, 1 = eradication)."""
    untreated = mouse_run(_plan(day + 1.0, tumour, host))["tumour_volume_treated"]
    treated = mouse_run(_anti_pdl1(_plan(day + 1.0, tumour, host)))["tumour_volume_treated"]
    return 1.0 - _at(treated, day) / _at(untreated, day)


@experiment
def preset_pdl1_inhibition_ratio(better: str, worse: str, day: float = 21.0) -> float:
    """Growth inhibition by anti-PD-L1 alone of tumour *better* over that of *worse*
    (> 1 when *better* responds more)."""
    return preset_pdl1_inhibition(better, day) / preset_pdl1_inhibition(worse, day)


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
    plan = mh.Protocol(duration="40 d", name="MH + anti-PD-L1", tumour=tumour, host=host)
    with warnings.catch_warnings():  # H·f 3e9 A/m/s: above Brezovich, below Hergt
        warnings.simplefilter("ignore", mh.HfWarning)
        plan = plan.mh_session(
            start="7 d",
            duration="30 min",
            field="15 kA/m",
            frequency="200 kHz",
            agent="fe3o4_19nm_mpeg",
            dose="3.5 mg/cm^3",
            every="2 d",
            count=3,
        )
    return float(mouse_run(_anti_pdl1(plan))["cd8_effectors_total"].max())
