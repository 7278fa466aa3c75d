"""The design of a virtual trial: its arms, the responder rule and the recorded readouts.

:class:`Arm` is one arm (protocol factors of a template, or a fixed protocol);
:data:`STANDARD_ARMS` names the usual ones (control, MH, anti-PD-L1, their combination,
with or without CDT, BSO or an HSP inhibitor). :class:`ResponderRule` says how animals
are classified, :data:`MECHANISM_READOUTS` which mechanistic readouts each animal records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mhimmune.core.errors import ParameterError, ProtocolError

__all__ = [
    "Arm",
    "STANDARD_ARMS",
    "standard_arms",
    "ResponderRule",
    "RESPONDER_SITES",
    "MECHANISM_READOUTS",
    "ASSAY_MECHANISMS",
    "TRIAL_VOLUMES",
    "VOLUME_ZERO_TOLERANCE_MM3",
]


@dataclass(frozen=True)
class Arm:
    """One arm of a virtual trial.

    Parameters
    ----------
    name
        Label of the arm (unique within a trial).
    factors
        Protocol factors of the trial's :class:`~mhimmune.mh.template.ScheduleTemplate`
        (bare numbers in the factor units; e.g. ``{"n_sessions": 0}``) ...
    protocol
        ... or a fixed :class:`~mhimmune.Protocol` (then *factors* must be empty).
    description
        What the arm is, for tables and reports.
    """

    name: str
    factors: Mapping[str, float] = field(default_factory=dict)
    protocol: Any = None
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"arm.name: must be non-empty text (got {self.name!r})")
        if self.protocol is not None and self.factors:
            raise ParameterError(f"arm {self.name}: give factors or a protocol, not both")
        object.__setattr__(self, "factors", dict(self.factors))

    def build(self, template):
        """The protocol of this arm (its own, or *template* built with its factors)."""
        if self.protocol is not None:
            return self.protocol
        try:
            return template.build(self.factors)
        except ProtocolError as exc:
            raise ProtocolError(f"arm {self.name}: {exc}") from None


_OFF_MH = {"n_sessions": 0}
_OFF_AB = {"pdl1_count": 0}

#: The standard arms by name: factors relative to the template's defaults.
STANDARD_ARMS: Mapping[str, Arm] = {
    "control": Arm("control", {**_OFF_MH, **_OFF_AB}, description="untreated"),
    "mh": Arm("mh", dict(_OFF_AB), description="MH alone"),
    "anti_pdl1": Arm("anti_pdl1", dict(_OFF_MH), description="anti-PD-L1 alone"),
    "mh+anti_pdl1": Arm("mh+anti_pdl1", {}, description="MH + anti-PD-L1"),
    "anti_pd1": Arm(
        "anti_pd1", {**_OFF_MH, **_OFF_AB, "pd1_count": 3}, description="anti-PD-1 alone"
    ),
    "mh+anti_pd1": Arm("mh+anti_pd1", {**_OFF_AB, "pd1_count": 3}, description="MH + anti-PD-1"),
    "anti_ctla4": Arm(
        "anti_ctla4", {**_OFF_MH, **_OFF_AB, "ctla4_count": 3}, description="anti-CTLA-4 alone"
    ),
    "mh+anti_ctla4": Arm(
        "mh+anti_ctla4", {**_OFF_AB, "ctla4_count": 3}, description="MH + anti-CTLA-4"
    ),
    "mh+cdt": Arm("mh+cdt", {**_OFF_AB, "cdt": 1}, description="MH + chemodynamic agent"),
    "mh+bso": Arm("mh+bso", {**_OFF_AB, "bso": 1}, description="MH + BSO"),
    "mh+hsp_inhibitor": Arm(
        "mh+hsp_inhibitor", {**_OFF_AB, "hsp_inhibitor": 1}, description="MH + HSP inhibitor"
    ),
    "mh+anti_pdl1+cdt": Arm(
        "mh+anti_pdl1+cdt", {"cdt": 1}, description="MH + anti-PD-L1 + chemodynamic agent"
    ),
    "mh+anti_pdl1+bso": Arm("mh+anti_pdl1+bso", {"bso": 1}, description="MH + anti-PD-L1 + BSO"),
    "mh+anti_pdl1+hsp_inhibitor": Arm(
        "mh+anti_pdl1+hsp_inhibitor",
        {"hsp_inhibitor": 1},
        description="MH + anti-PD-L1 + HSP inhibitor",
    ),
}


def standard_arms(*names: str) -> list[Arm]:
    """Arms of :data:`STANDARD_ARMS` by name (default control, MH, anti-PD-L1, combination)."""
    names = names or ("control", "mh", "anti_pdl1", "mh+anti_pdl1")
    bad = [n for n in names if n not in STANDARD_ARMS]
    if bad:
        raise ParameterError(f"arms {bad}: unknown; standard arms: {', '.join(STANDARD_ARMS)}")
    return [STANDARD_ARMS[n] for n in names]


# ========================================================================= responders


#: tumours a responder rule can read: the treated, the distant, or both summed
RESPONDER_SITES = ("treated", "distant", "total")


@dataclass(frozen=True)
class ResponderRule:
    """How animals are classified.

    Parameters
    ----------
    threshold_mm3
        Responder: the tumour of *site* ≤ this at the responder day.
    day_after_first_treatment
        Responder day, counted from the first treatment of the trial (the earliest
        treatment of any arm; the control arm is read on the same day).
    endpoint_mm3
        Humane endpoint on the animal's whole burden, whatever *site* is: the event of
        the time-to-event analysis is the total tumour reaching this volume, and a mouse
        that reaches it before the responder day is culled there, so it is no responder
        even if its simulated tumour shrinks later. Default 2000 mm³ (assumed: limits on
        subcutaneous tumour burden are set by each institution's animal-welfare rules, and
        the studies the model is compared with do not state theirs in the text read; raise
        it to follow animals past any volume).
    site
        The tumour the responder and RECIST-like classification read: ``"treated"``,
        ``"distant"`` or ``"total"`` (treated + distant, the default).
    """

    threshold_mm3: float = 10.0
    day_after_first_treatment: float = 50.0
    endpoint_mm3: float = 2000.0
    site: str = "total"

    def __post_init__(self):
        if self.site not in RESPONDER_SITES:
            raise ParameterError(
                f"responder.site: must be one of {', '.join(RESPONDER_SITES)} (got {self.site!r})"
            )
        for name, lo in (
            ("threshold_mm3", 0.0),
            ("day_after_first_treatment", 0.0),
            ("endpoint_mm3", 0.0),
        ):
            x = getattr(self, name)
            if (
                isinstance(x, bool)
                or not isinstance(x, (int, float))
                or not math.isfinite(x)
                or x < lo
            ):
                raise ParameterError(
                    f"responder.{name}: must be a finite number ≥ {lo:g} (got {x!r})"
                )
        if self.endpoint_mm3 <= self.threshold_mm3:
            raise ParameterError(
                f"responder.endpoint_mm3 ({self.endpoint_mm3:g}) must exceed "
                f"threshold_mm3 ({self.threshold_mm3:g})"
            )

    @property
    def site_text(self) -> str:
        """The tumour the rule reads, in words (``"total tumour (treated + distant)"``)."""
        return {
            "total": "total tumour (treated + distant)",
            "treated": "treated tumour",
            "distant": "distant tumour",
        }[self.site]


#: Mechanistic readouts recorded per animal, in the order of the chain, with the link
#: they speak for: (column, readout spec, link, label). ``@+D`` days count from each
#: arm's first MH session (arms without MH: their first treatment; untreated: the
#: earliest first MH session of the trial, else its first treatment) — sampling days like
#: an experiment's, not peaks (peaks over 60 days would pick up the late necrosis of large
#: untreated tumours).
MECHANISM_READOUTS: tuple[tuple[str, str, str, str], ...] = (
    ("cem43_total_min", "cem43_total_min", "heating", "thermal dose CEM43 (min, all sessions)"),
    (
        "cem43_t90_min",
        "cem43_t90_min",
        "heating",
        "thermal dose CEM43T90 of the coolest 90 % of the heated region (min)",
    ),
    (
        "gsh_d1",
        "gsh_uM_mid@+1",
        "stress: glutathione",
        "glutathione of mid-load treated cells 1 d after the first MH session (µM)",
    ),
    (
        "oxidative_d1",
        "oxidative_damage_relative@+1",
        "stress: lipid peroxidation",
        "oxidative (lipid-peroxide) damage 1 d after the first MH session (of half-lethal)",
    ),
    ("damp_d1", "damp_signal@+1", "death (ICD)", "DAMP signal 1 d after the first MH session"),
    (
        "mature_dc_d7",
        "mature_dc_fraction@+7",
        "immune: DC maturation",
        "mature DC fraction at +7 d",
    ),
    (
        "cd8_effectors_d7",
        "cd8_effectors_total@+7",
        "immune: T-cell priming",
        "CD8 effector cells at +7 d (Mcell)",
    ),
    (
        "pdl1_occupancy_d7",
        "pdl1_occupancy@+7",
        "immune: checkpoint blockade",
        "anti-PD-L1 target occupancy at +7 d",
    ),
    (
        "pd1_occupancy_d7",
        "pd1_occupancy@+7",
        "immune: checkpoint blockade",
        "anti-PD-1 target occupancy at +7 d",
    ),
    (
        "ctla4_occupancy_d7",
        "ctla4_occupancy@+7",
        "immune: checkpoint blockade",
        "anti-CTLA-4 target occupancy at +7 d",
    ),
    ("m1_m2_d7", "m1_m2_ratio@+7", "immune: macrophage polarisation", "M1/M2 ratio at +7 d"),
    ("treg_fraction_d7", "treg_fraction@+7", "immune: suppression", "Treg fraction at +7 d"),
)
#: the same links as flow cytometry reports them (percentages of the parent gate from the
#: model's cell numbers; approximations in :mod:`mhimmune.mh.readouts`), at +7 d
ASSAY_MECHANISMS: tuple[tuple[str, str, str, str], ...] = (
    (
        "cd8_pct_cd45_d7",
        "cd8_pct_of_cd45_treated@+7",
        "assay: CD8 infiltration",
        "CD8+ % of CD45+ in the treated tumour at +7 d",
    ),
    ("treg_pct_cd4_d7", "treg_pct_of_cd4@+7", "assay: Treg", "Treg % of CD4+ at +7 d"),
    (
        "mature_dc_pct_d7",
        "mature_dc_pct_of_dc@+7",
        "assay: DC maturation",
        "mature DC % of CD11c+ at +7 d",
    ),
    ("m1_pct_d7", "m1_pct_of_macrophages@+7", "assay: macrophages", "M1 % of macrophages at +7 d"),
)
#: the tumour volumes whose sum is the total tumour of an animal
TRIAL_VOLUMES = ("tumour_volume_treated", "tumour_volume_distant")
#: tumour volumes down to this far below 0 (mm³) are numerically zero and read as 0;
#: below it a run is marked failed (the integrator's absolute tolerance is 1e-9)
VOLUME_ZERO_TOLERANCE_MM3 = 1e-6
