"""The MH readout catalogue: the names the readout language knows for this model.

:data:`SUMMARY_READOUTS` computes the scalars of :meth:`mhimmune.SimulationResult.summary`
from a simulation's arrays (tumour volumes, read as 0 below one cell; peak temperature;
CEM43 of the mean temperature, of T90 and of each particle-load region; DAMP areas,
immune peaks, the experiment-comparable readouts of :mod:`mhimmune.mh.readouts` and its
flow-cytometry percentages on day 14);
:data:`VOCABULARY` is the table given to :mod:`mhimmune.runs.readout` (those names,
the ``total_tumour_volume`` alias, the ``cure`` flag: total tumour ≤ 1 mm³, and the
assay percentages of :data:`~mhimmune.mh.readouts.ASSAY_RATIOS`, e.g.
``cd8_pct_of_cd45_treated@14``);
:data:`DEFAULT_READOUTS` are the readouts an evaluator computes when none are given.
"""

from __future__ import annotations

from typing import ClassVar

from mhimmune.mh.cell_classes import CELL_CLASSES
from mhimmune.mh.readouts import ASSAY_RATIOS, CELL_READOUT_DAY, summary_specs
from mhimmune.runs import readout as generic
from mhimmune.runs.readout import Flag, Vocabulary

__all__ = [
    "CELL_VOLUME_MM3",
    "TUMOUR_VOLUMES",
    "SUMMARY_READOUTS",
    "VOCABULARY",
    "DEFAULT_READOUTS",
    "Readout",
    "parse_readout",
    "cure_readout",
]

#: volume of one tumour cell (mm³, about 10⁶ cells per mm³): a tumour below it is extinct,
#: and its volume readouts read 0
CELL_VOLUME_MM3 = 1e-6

#: the two tumour-volume variables (mm³): treated and distant tumour
TUMOUR_VOLUMES: tuple[str, str] = ("tumour_volume_treated", "tumour_volume_distant")

_R = generic.Readout

#: readouts named as in :meth:`mhimmune.SimulationResult.summary`, computed from arrays
SUMMARY_READOUTS: dict[str, generic.Readout] = {
    "final_volume_treated_mm3": _R(
        "final_volume_treated_mm3", "final", (TUMOUR_VOLUMES[0],), floor=CELL_VOLUME_MM3
    ),
    "min_volume_treated_mm3": _R(
        "min_volume_treated_mm3", "min", (TUMOUR_VOLUMES[0],), floor=CELL_VOLUME_MM3
    ),
    "final_volume_distant_mm3": _R(
        "final_volume_distant_mm3", "final", (TUMOUR_VOLUMES[1],), floor=CELL_VOLUME_MM3
    ),
    "min_volume_distant_mm3": _R(
        "min_volume_distant_mm3", "min", (TUMOUR_VOLUMES[1],), floor=CELL_VOLUME_MM3
    ),
    "peak_temperature_C": _R("peak_temperature_C", "max", ("temperature_C",)),
    "cem43_total_min": _R("cem43_total_min", "final", ("cem43_min",)),
    "cem43_t90_min": _R("cem43_t90_min", "final", ("cem43_t90_min",)),
    **{
        f"cem43_{cls}_min": _R(f"cem43_{cls}_min", "final", (f"cem43_min_{cls}",))
        for cls in CELL_CLASSES
    },
    "auc_atp_treated_mm3_day": _R("auc_atp_treated_mm3_day", "auc", ("atp_e_treated",)),
    "auc_hmgb1_treated_mm3_day": _R("auc_hmgb1_treated_mm3_day", "auc", ("hmgb1_treated",)),
    "auc_hsp70e_treated_mm3_day": _R("auc_hsp70e_treated_mm3_day", "auc", ("hsp70_e_treated",)),
    "auc_damp_signal_mm3_day": _R("auc_damp_signal_mm3_day", "auc", ("damp_signal",)),
    "peak_crt_fraction": _R("peak_crt_fraction", "max", ("crt_fraction_treated",)),
    "peak_mature_dc_fraction": _R("peak_mature_dc_fraction", "max", ("mature_dc_fraction",)),
    "peak_cd8_effectors_Mcell": _R("peak_cd8_effectors_Mcell", "max", ("cd8_effectors_total",)),
    "auc_cd8_effectors_Mcell_day": _R(
        "auc_cd8_effectors_Mcell_day", "auc", ("cd8_effectors_total",)
    ),
    "peak_m1_m2_ratio": _R("peak_m1_m2_ratio", "max", ("m1_m2_ratio",)),
    "peak_pdl1_occupancy": _R("peak_pdl1_occupancy", "max", ("pdl1_occupancy",)),
}
# the experiment-comparable readouts of SimulationResult.summary() (values at fixed days)
SUMMARY_READOUTS.update({k: _R(k, kind, (var,), day) for k, kind, var, day in summary_specs()})
# flow-cytometry percentages as gates report them, on the day the cell readouts are sampled
SUMMARY_READOUTS.update(
    {
        key: _R(key, "at", q.numerator, CELL_READOUT_DAY, denominator=q.denominator, scale=q.scale)
        for key, q in ((f"{name}_day{CELL_READOUT_DAY:g}", q) for name, q in ASSAY_RATIOS.items())
    }
)

#: the names the readout language knows for the MH model
VOCABULARY = Vocabulary(
    named=SUMMARY_READOUTS,
    aliases={"total_tumour_volume": TUMOUR_VOLUMES},
    flags={"cure": Flag(TUMOUR_VOLUMES, 1.0)},
    ratios=ASSAY_RATIOS,
)

#: default readouts: the scalars of ``SimulationResult.summary()`` (those the model has)
#: plus a cure flag (total tumour ≤ 1 mm³ at the end)
DEFAULT_READOUTS: tuple[str, ...] = tuple(SUMMARY_READOUTS) + ("cure",)


class Readout(generic.Readout):
    """:class:`mhimmune.runs.readout.Readout` whose :meth:`parse` knows :data:`VOCABULARY`
    (summary names, ``cure``, ``total_tumour_volume``)."""

    vocabulary: ClassVar[Vocabulary] = VOCABULARY


def parse_readout(spec: str | generic.Readout, name: str | None = None) -> generic.Readout:
    """A readout from text with the MH names (see :meth:`mhimmune.runs.readout.Readout.parse`)."""
    return generic.Readout.parse(spec, name, VOCABULARY)


def cure_readout(
    threshold_mm3: float = 1.0,
    day: float | None = None,
    name: str = "cure",
    relative: bool = False,
) -> generic.Readout:
    """Cure flag: total tumour (treated + distant) ≤ *threshold_mm3* (mm³) at *day* (d; end
    if None; counted from the first treatment if *relative*)."""
    return generic.Readout(name, "cure", TUMOUR_VOLUMES, day, float(threshold_mm3), bool(relative))
