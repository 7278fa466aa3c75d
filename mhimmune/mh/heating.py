"""Which field, particle and dose reach a target temperature safely? Fast steady-state maps.

The full model's heating link is a lumped Pennes balance; its steady state has a closed
form, T = T_body + Q/(W + G) with Q = SAR(H, f)·c_Fe, W = ω_b ρ_b c_b and G = s k/R² for
the particle-loaded region (a sphere of the table's ``heated_region_volume``). These
functions evaluate it over grids of H and f without simulating, with the same parameter
table and agent catalogue the model uses, and mark each point against the H·f limits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.params import ParameterTable
from mhimmune.core.units import ureg
from mhimmune.mh import physics
from mhimmune.mh.agents import get_agent

__all__ = ["heating_parameters", "steady_temperature", "temperature_map"]

_NEEDED = {
    "body_temperature": "degC",
    "tissue_conductivity": "W/m/K",
    "tumour_perfusion": "1/s",
    "blood_density": "kg/m^3",
    "blood_heat_capacity": "J/kg/K",
    "conduction_shape_factor": "1",
    "heated_region_volume": "m^3",
}


def heating_parameters(
    params: Mapping[str, Any] | None = None, table: ParameterTable | None = None
) -> dict[str, float]:
    """Heating parameters from the model's table (SI units), with overrides by name."""
    table = table or ParameterTable.load()
    params = dict(params or {})
    unknown = [k for k in params if k not in _NEEDED]
    for k in unknown:
        table.check_override(k, params[k])  # unknown names raise with suggestions
    out = {}
    for name, unit in _NEEDED.items():
        value = table.check_override(name, params[name]) if name in params else table.value(name)
        out[name] = float(ureg.Quantity(value, table.unit(name)).to(unit).magnitude)
    return out


def steady_temperature(
    agent: str,
    dose_mg_per_cm3: float,
    field_kA_per_m,
    freq_kHz,
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Steady mean temperature (°C) of the heated region under a continuous field.

    Parameters
    ----------
    agent
        Heating agent of the catalogue (SAR scaled to each field by its ILP).
    dose_mg_per_cm3
        Particle iron in the heated region, mg Fe/cm³ (> 0).
    field_kA_per_m, freq_kHz
        Field amplitude (kA/m) and frequency (kHz); arrays broadcast.
    params
        Overrides of heating parameters by name (table units).

    Reference: lumped Pennes balance (Pennes 1948 [pennes1948]), G = 5k/(2R²)
    (:func:`mhimmune.mh.physics.sphere_conduction_coefficient`).
    """
    if not (isinstance(dose_mg_per_cm3, (int, float)) and dose_mg_per_cm3 > 0):
        raise ValueError(f"dose_mg_per_cm3: must be > 0 mg/cm^3 (got {dose_mg_per_cm3!r})")
    hp = heating_parameters(params)
    a = get_agent(agent)
    h, f = np.broadcast_arrays(np.asarray(field_kA_per_m, float), np.asarray(freq_kHz, float))
    sar = np.vectorize(lambda hh, ff: a.heating_at(hh, ff)[0], otypes=[float])(h, f)
    q = sar * dose_mg_per_cm3 * 1e3  # W/g · mg/cm³ = 1e3 W/m³
    w = physics.perfusion_coefficient(
        hp["tumour_perfusion"], hp["blood_density"], hp["blood_heat_capacity"]
    )
    radius = (3 * hp["heated_region_volume"] / (4 * math.pi)) ** (1 / 3)
    g = hp["conduction_shape_factor"] * hp["tissue_conductivity"] / radius**2
    return hp["body_temperature"] + q / (w + g)


def temperature_map(
    agents: Sequence[str],
    dose_mg_per_cm3: float,
    fields_kA_per_m: Sequence[float],
    freqs_kHz: Sequence[float],
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Tidy table of steady temperatures over a grid of fields and frequencies, per agent.

    Columns: agent, field_kA_per_m, freq_kHz, hf_A_per_m_s, safety ("ok",
    "above_brezovich", "above_hergt"), steady_temperature_C.
    """
    rows = []
    H, F = np.meshgrid(
        np.asarray(fields_kA_per_m, float), np.asarray(freqs_kHz, float), indexing="ij"
    )
    for agent in agents:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", physics.LinearResponseWarning)
            temp = steady_temperature(agent, dose_mg_per_cm3, H, F, params)
        hf = H * F * 1e6
        safety = np.where(
            hf > physics.HERGT_LIMIT,
            "above_hergt",
            np.where(hf > physics.BREZOVICH_LIMIT, "above_brezovich", "ok"),
        )
        rows.append(
            pd.DataFrame(
                {
                    "agent": agent,
                    "field_kA_per_m": H.ravel(),
                    "freq_kHz": F.ravel(),
                    "hf_A_per_m_s": hf.ravel(),
                    "safety": safety.ravel(),
                    "steady_temperature_C": temp.ravel(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)
