"""Virtual cohorts and virtual trials of MH, anti-PD-L1 and their combinations.

A *virtual cohort* is a table with one row per virtual animal and one column per model
parameter that differs between animals. :func:`sample_cohort` draws it from a
variability table (``parameters/cohort.tsv``: each parameter log-normal (or logit-normal
for fractions) around its value in the model's parameter table, with a spread σ on the
log (logit) scale and a source for σ), optionally correlated through a Gaussian copula.
The same seed gives the same cohort.

A *virtual trial* (:func:`run_trial`) gives every animal of the cohort every arm
(control, MH, anti-PD-L1, MH + anti-PD-L1, with or without CDT, BSO or an HSP inhibitor;
see :data:`STANDARD_ARMS`) and classifies each animal:

* **responder**: total tumour (treated + distant) ≤ 10 mm³ at day 50 after the first
  treatment of the trial (Kosinsky et al. 2018's definition; both configurable);
* optionally **RECIST-like** categories (CR/PR/SD/PD from the change in total volume
  between the first treatment and the responder day);
* **time to event**: days from the first treatment until the total tumour reaches the
  humane endpoint volume (default 2000 mm³ for treated + distant tumour together,
  assumed), censored at the end; a mouse that reaches it before the responder day is
  culled there and is no responder, even if its simulated tumour shrinks later.

:class:`TrialResult` gives responder fractions per arm with Wilson intervals,
Kaplan–Meier curves with log-rank tests against a reference arm, the mechanistic
readouts of each arm (which links of the chain move), and the figures.

Model outputs are predictions of a hypothesis-generating model; cohort spreads are
assumed where the variability table says so.

This module is the public face of cohorts and trials; the code lives in
:mod:`~mhimmune.studies.virtual_cohort` (sampling and checking cohorts),
:mod:`~mhimmune.studies.trial_design` (arms, responder rule, readouts),
:mod:`~mhimmune.studies.trial` (:func:`run_trial`) and
:mod:`~mhimmune.studies.trial_result` (:class:`TrialResult`).
"""

from mhimmune.studies.trial import run_trial
from mhimmune.studies.trial_design import (
    MECHANISM_READOUTS,
    STANDARD_ARMS,
    TRIAL_VOLUMES,
    VOLUME_ZERO_TOLERANCE_MM3,
    Arm,
    ResponderRule,
    standard_arms,
)
from mhimmune.studies.trial_result import TrialResult
from mhimmune.studies.virtual_cohort import (
    check_cohort,
    load_variability,
    nominal_cohort,
    sample_cohort,
)

__all__ = [
    "load_variability",
    "sample_cohort",
    "check_cohort",
    "nominal_cohort",
    "Arm",
    "STANDARD_ARMS",
    "standard_arms",
    "ResponderRule",
    "MECHANISM_READOUTS",
    "TRIAL_VOLUMES",
    "VOLUME_ZERO_TOLERANCE_MM3",
    "run_trial",
    "TrialResult",
]
