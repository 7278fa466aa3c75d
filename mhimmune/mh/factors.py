"""Protocol factors of the MH schedule template: names, units, defaults and ranges.

:data:`PROTOCOL_FACTORS` lists the factors :class:`~mhimmune.mh.template.ScheduleTemplate`
understands (field, frequency, session count and timing, feedback, anti-PD-L1, anti-PD-1
and anti-CTLA-4 series, BSO / HSP-inhibitor / chemodynamic agents); each is a
:class:`FactorInfo`. The antibody series share one pattern: ``<ab>_delay_day`` (first dose
relative to the first MH session), ``<ab>_dose_mg_per_kg``, ``<ab>_interval_day`` and
``<ab>_count`` (0: none) for ``ab`` in :data:`ANTIBODY_SERIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FactorInfo", "PROTOCOL_FACTORS", "ANTIBODY_SERIES"]

#: antibody series of the template: factor prefix -> (protocol builder, name in messages);
#: anti-PD-L1 is on by default (3 doses), anti-PD-1 and anti-CTLA-4 are off (count 0)
ANTIBODY_SERIES: Mapping[str, tuple[str, str]] = {
    "pdl1": ("anti_pdl1", "anti-PD-L1"),
    "pd1": ("anti_pd1", "anti-PD-1"),
    "ctla4": ("anti_ctla4", "anti-CTLA-4"),
}


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


def _antibody_factors(prefix: str, default_count: int) -> dict[str, FactorInfo]:
    """The four factors of one antibody series of :data:`ANTIBODY_SERIES` (delay, dose,
    interval, count); the same defaults and ranges for every antibody but the count."""
    name = ANTIBODY_SERIES[prefix][1]
    off = " (0, the default: no antibody)" if default_count == 0 else " (0: no antibody)"
    return {
        f"{prefix}_delay_day": FactorInfo(
            f"{prefix}_delay",
            "d",
            "quantity",
            0.0,
            -3.0,
            6.0,
            "uniform",
            f"first {name} dose relative to the first MH session start",
        ),
        f"{prefix}_dose_mg_per_kg": FactorInfo(
            f"{prefix}_dose",
            "mg/kg",
            "quantity",
            10.0,
            2.5,
            20.0,
            "loguniform",
            f"{name} dose per injection",
        ),
        f"{prefix}_interval_day": FactorInfo(
            f"{prefix}_interval",
            "d",
            "quantity",
            3.0,
            2.0,
            6.0,
            "uniform",
            f"interval between {name} doses",
        ),
        f"{prefix}_count": FactorInfo(
            f"{prefix}_count",
            "1",
            "count",
            default_count,
            min(default_count, 1),
            5,
            "integer",
            f"number of {name} doses{off}",
        ),
    }


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
    **_antibody_factors("pdl1", default_count=3),
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
    **_antibody_factors("pd1", default_count=0),
    **_antibody_factors("ctla4", default_count=0),
}
