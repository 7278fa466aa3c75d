"""Field, particle and tissue-heating formulas of magnetic hyperthermia (MH).

Pure numpy/scipy functions that can be used on their own. Arguments carry their
unit in their name; the units match :mod:`mhimmune.core.units` at the boundary
(field in kA/m, frequency in kHz, temperature in °C) and SI inside the formulas.

Contents
--------
- heating efficiency: :func:`ilp`, :func:`sar_from_ilp`;
- field safety: :func:`hf_product`, :func:`check_hf`, :data:`BREZOVICH_LIMIT`,
  :data:`HERGT_LIMIT`;
- thermal dose and heat kill: :func:`cem43`, :func:`cem43_rate`,
  :func:`arrhenius_damage`;
- Rosensweig (2002) linear-response losses: :func:`neel_time`, :func:`brown_time`,
  :func:`effective_time`, :func:`rosensweig_slp`, :class:`LinearResponseWarning`;
- Pennes bioheat: :func:`perfusion_coefficient`, :func:`lumped_time_constant`,
  :func:`lumped_tumour_temperature`, :func:`sphere_conduction_coefficient`,
  :func:`sphere_steady_state`, :func:`radial_pennes`.

The formulas live in :mod:`mhimmune.mh.magnetism`, :mod:`mhimmune.mh.field_safety`,
:mod:`mhimmune.mh.thermal_dose` and :mod:`mhimmune.mh.bioheat`; this module re-exports
them so that ``from mhimmune.mh import physics as ph; ph.cem43(...)`` keeps working.

Bad inputs raise :class:`mhimmune.core.errors.ParameterError` (a ``ValueError``) whose
message names the argument and its allowed range.
"""

from mhimmune.mh.bioheat import (
    TISSUE_CONDUCTIVITY_W_PER_M_K,
    TISSUE_DENSITY_KG_PER_M3,
    TISSUE_HEAT_CAPACITY_J_PER_KG_K,
    TUMOUR_PERFUSION_W_PER_M3_K,
    RadialPennesResult,
    lumped_time_constant,
    lumped_tumour_temperature,
    perfusion_coefficient,
    radial_pennes,
    sphere_conduction_coefficient,
    sphere_steady_state,
)
from mhimmune.mh.field_safety import BREZOVICH_LIMIT, HERGT_LIMIT, check_hf, hf_product
from mhimmune.mh.magnetism import (
    FE_MASS_FRACTION_MAGNETITE,
    K_B,
    MU0,
    LinearResponseWarning,
    brown_time,
    effective_time,
    ilp,
    neel_time,
    rosensweig_slp,
    sar_from_ilp,
)
from mhimmune.mh.thermal_dose import R_GAS, arrhenius_damage, cem43, cem43_rate

__all__ = [
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
    "MU0",
    "K_B",
    "R_GAS",
    "FE_MASS_FRACTION_MAGNETITE",
    "TISSUE_DENSITY_KG_PER_M3",
    "TISSUE_HEAT_CAPACITY_J_PER_KG_K",
    "TISSUE_CONDUCTIVITY_W_PER_M_K",
    "TUMOUR_PERFUSION_W_PER_M3_K",
    "LinearResponseWarning",
    "RadialPennesResult",
    "ilp",
    "sar_from_ilp",
    "hf_product",
    "check_hf",
    "cem43",
    "cem43_rate",
    "arrhenius_damage",
    "neel_time",
    "brown_time",
    "effective_time",
    "rosensweig_slp",
    "perfusion_coefficient",
    "lumped_time_constant",
    "lumped_tumour_temperature",
    "sphere_conduction_coefficient",
    "sphere_steady_state",
    "radial_pennes",
]
