"""Validation experiments of the redox chemistry: exogenous H2O2, glutathione depletion
and the iron-driven lipid peroxidation (ferroptosis) it unmasks.

Each function is registered under its own name in
:data:`mhimmune.studies.validation_experiments.EXPERIMENTS` and returns one number that a
row of ``analyses/validation/targets.tsv`` compares with a published value. Cells are the
stress link alone held at a temperature (:func:`cell_history`); mice are the default
model (:func:`mouse_run`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.studies.validation_experiments import cell_history, experiment, mouse_run

__all__ = [
    "bso_alone_tumour_volume_ratio",
    "bso_h2o2_sensitisation",
    "bso_lethal_gsh_fraction",
    "cumulative_hazard",
    "h2o2_membrane_gradient_fold",
]

#: the stress link's fates: apoptosis, immunogenic death, necrosis
FATES = ("apop", "icd", "necr")


def cumulative_hazard(t: np.ndarray, v: Mapping[str, np.ndarray], cls: str = "mid") -> float:
    """Integrated death hazard of cell class *cls* over the history (survival exp(-H))."""
    hazard = sum(v[f"hazard_{f}_{cls}"] for f in FATES)
    return float(np.trapezoid(hazard, t))


@experiment
def h2o2_membrane_gradient_fold(extracellular_uM: float = 10.0, hours: float = 1.0) -> float:
    """Extracellular over cytosolic H2O2 (fold) once cells held in *extracellular_uM* of
    H2O2 reach steady state (stress link, 37 °C, basal production subtracted)."""
    if extracellular_uM <= 0:
        raise ParameterError(f"extracellular_uM: must be > 0 (got {extracellular_uM})")
    _t, basal = cell_history([(hours, 37.0)])
    _t, v = cell_history([(hours, 37.0)], signals={"h2o2_extracellular": extracellular_uM})
    rise = float(v["h2o2_uM_mid"][-1] - basal["h2o2_uM_mid"][-1])
    return extracellular_uM / rise


def _bso_course(bso_effect: float, hours: float, extra: Mapping[str, float] | None = None):
    return cell_history([(hours, 37.0)], signals={"bso_effect": bso_effect, **(extra or {})})


@experiment
def bso_lethal_gsh_fraction(hours: float = 168.0, death: float = 0.5) -> float:
    """Glutathione (fraction of control) at which cells held in BSO for *hours* reach a
    *death* fraction: BSO inhibition is stepped up until the cells die, and the GSH level
    reached at that point is interpolated (stress link, 37 °C)."""
    if not 0 < death < 1:
        raise ParameterError(f"death: must be > 0 and < 1 (got {death})")
    target = -np.log(1.0 - death)
    _t, control = _bso_course(0.0, hours)
    g0 = float(control["gsh_uM_mid"][-1])
    gsh, hazard = [], []
    for effect in 1.0 - np.geomspace(0.5, 1e-3, 25):
        t, v = _bso_course(float(effect), hours)
        gsh.append(float(v["gsh_uM_mid"][-1]) / g0)
        hazard.append(cumulative_hazard(t, v))
    h = np.asarray(hazard)
    if h[-1] < target:
        return 0.0  # GSH synthesis fully blocked and the cells still survive
    if h[0] >= target:
        return gsh[0]
    i = int(np.argmax(h >= target))
    w = (np.log(target) - np.log(h[i - 1])) / (np.log(h[i]) - np.log(h[i - 1]))
    return float(gsh[i - 1] + w * (gsh[i] - gsh[i - 1]))


def _h2o2_lethal_dose(bso_effect: float, pre_h: float, exposure_h: float) -> float:
    """Extracellular H2O2 (µM) killing half the cells in *exposure_h* after *pre_h* hours
    with BSO at *bso_effect* (bisection on the log dose)."""
    lo, hi = 1.0, 1e6
    for _ in range(30):
        mid = float(np.sqrt(lo * hi))
        t, v = cell_history(
            [(pre_h, 37.0), (exposure_h, 37.0, {"h2o2_extracellular": mid})],
            signals={"bso_effect": bso_effect},
        )
        after = t >= pre_h
        h = cumulative_hazard(t[after], {k: x[after] for k, x in v.items()})
        lo, hi = (mid, hi) if h < np.log(2.0) else (lo, mid)
        if hi / lo < 1.01:
            break
    return float(np.sqrt(lo * hi))


@experiment
def bso_h2o2_sensitisation(
    bso_effect: float = 0.95, pre_h: float = 24.0, exposure_h: float = 24.0
) -> float:
    """Fold drop of the half-lethal extracellular H2O2 dose after *pre_h* hours of BSO
    (synthesis inhibited by *bso_effect*) against untreated cells (stress link, 37 °C)."""
    if not 0 <= bso_effect <= 1:
        raise ParameterError(f"bso_effect: must be ≥ 0 and ≤ 1 (got {bso_effect})")
    return _h2o2_lethal_dose(0.0, pre_h, exposure_h) / _h2o2_lethal_dose(
        bso_effect, pre_h, exposure_h
    )


@experiment
def bso_alone_tumour_volume_ratio(
    dose_mg_per_kg: float, count: int = 1, every_d: float = 1.0, day: float = 14.0
) -> float:
    """Treated-tumour volume with BSO alone (i.p. from day 7) over the untreated volume,
    *day* days after the first dose (mouse, default model)."""
    duration = 7.0 + day + 1.0
    control = mh.Protocol(duration=f"{duration} d", name="control")
    plan = control.bso(
        time="7 d", dose=f"{dose_mg_per_kg} mg/kg", every=f"{every_d} d", count=count
    )
    volume = []
    for p in (plan, control):
        res = mouse_run(p)
        v = res["tumour_volume_treated"]
        volume.append(float(np.interp(7.0 + day, v.index.values, v.values)))
    return volume[0] / volume[1]
