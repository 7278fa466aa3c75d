"""Statistics for virtual trials: response rates, RECIST-like categories and survival.

Pure numpy/scipy/pandas functions that work on numbers already simulated (final
tumour volumes, volume trajectories); nothing here runs the model. A virtual trial is
an ensemble of simulated subjects per arm, and these functions turn its readouts into
the numbers a trial reports:

- response: :func:`responders` (volume at or below a threshold) and
  :func:`proportion_ci` (a binomial proportion with a Wilson, Clopper–Pearson or
  Jeffreys interval);
- tumour response categories: :func:`recist_categories` (CR/PR/SD/PD from volumes,
  :data:`RECIST_CATEGORIES`);
- time to progression: :func:`time_to_event` (first crossing of a volume threshold,
  interpolated, with censoring at the end of follow-up);
- survival analysis: :func:`kaplan_meier` (product-limit estimator with Greenwood
  log(-log) intervals), :func:`median_time`, :func:`logrank_test` (k-sample
  Mantel–Cox test) and :func:`pairwise_logrank` (with Holm or Bonferroni correction).

Times are in days and volumes in mm³, as in simulation results. Bad inputs raise
:class:`mhimmune.core.errors.ParameterError` (a ``ValueError``) whose message names the
argument and its allowed range; no value is silently clipped or dropped.

Example::

    import mhimmune.studies.stats as st
    t, e = st.time_to_event(time_day, volumes, threshold_mm3=1000.0, start_day=7.0)
    km = st.kaplan_meier(t, e)
    st.median_time(km)
    st.logrank_test(t, e, arm_labels)

The functions live in :mod:`~mhimmune.studies.proportions` (response) and
:mod:`~mhimmune.studies.survival` (time to event, survival); this module gathers them.
"""

from mhimmune.studies.proportions import (
    RECIST_CATEGORIES,
    proportion_ci,
    recist_categories,
    responders,
)
from mhimmune.studies.survival import (
    LogRankResult,
    adjust_pvalues,
    kaplan_meier,
    logrank_test,
    median_time,
    pairwise_logrank,
    time_to_event,
)

__all__ = [
    "proportion_ci",
    "responders",
    "recist_categories",
    "RECIST_CATEGORIES",
    "time_to_event",
    "kaplan_meier",
    "median_time",
    "LogRankResult",
    "logrank_test",
    "adjust_pvalues",
    "pairwise_logrank",
]
