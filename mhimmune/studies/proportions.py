"""Response rates and tumour response categories of a virtual trial.

:func:`responders` (volume at or below a threshold) and :func:`proportion_ci` (a binomial
proportion with a Wilson, Clopper–Pearson or Jeffreys interval);
:func:`recist_categories` (CR/PR/SD/PD from volumes, :data:`RECIST_CATEGORIES`).
Volumes are in mm³, as in simulation results.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from mhimmune.core.errors import ParameterError
from mhimmune.studies.stat_inputs import (
    BOUNDARY_RTOL,
    confidence_level,
    count_value,
    finite_scalar,
    index_text,
    volume_array,
)

__all__ = ["proportion_ci", "responders", "recist_categories", "RECIST_CATEGORIES"]

#: RECIST-like response categories, best to worst: complete response, partial response,
#: stable disease, progressive disease.
RECIST_CATEGORIES: tuple[str, ...] = ("CR", "PR", "SD", "PD")

_CI_METHODS = ("wilson", "clopper-pearson", "jeffreys")


def proportion_ci(
    k, n, confidence: float = 0.95, method: str = "wilson"
) -> tuple[float, float, float]:
    """A binomial proportion *k*/*n* and its two-sided confidence interval.

    Parameters
    ----------
    k : int
        Number of successes (e.g. responders), ``0 <= k <= n``.
    n : int
        Number of trials (subjects), ``n >= 1``.
    confidence : float, optional
        Confidence level in (0, 1); default 0.95.
    method : {"wilson", "clopper-pearson", "jeffreys"}, optional
        ``"wilson"``: Wilson (1927) score interval (default; good coverage for small n).
        ``"clopper-pearson"``: the exact interval from beta quantiles (conservative),
        ``Beta(a/2; k, n-k+1)`` to ``Beta(1-a/2; k+1, n-k)``.
        ``"jeffreys"``: equal-tailed interval of the ``Beta(k+1/2, n-k+1/2)`` posterior,
        with the lower bound set to 0 when ``k = 0`` and the upper to 1 when ``k = n``
        (Brown, Cai & DasGupta 2001, Stat. Sci. 16:101).

    Returns
    -------
    tuple of float
        ``(p_hat, lower, upper)`` with ``p_hat = k / n``. For ``k = 0`` the lower bound
        is exactly 0 and for ``k = n`` the upper bound exactly 1 (all methods).

    Raises
    ------
    ParameterError
        If *k* or *n* is not an integer, ``n < 1``, *k* is outside ``[0, n]``,
        *confidence* is outside (0, 1), or *method* is unknown.
    """
    k = count_value(k, "k")
    n = count_value(n, "n")
    if n < 1:
        raise ParameterError(f"n: the number of trials must be an integer >= 1, got {n}")
    if not 0 <= k <= n:
        raise ParameterError(f"k: must be an integer in [0, n] = [0, {n}], got {k}")
    conf = confidence_level(confidence)
    if method not in _CI_METHODS:
        raise ParameterError(f"method: must be one of {', '.join(_CI_METHODS)}; got {method!r}")
    alpha = 1.0 - conf
    p = k / n
    if method == "wilson":
        z = float(sps.norm.isf(alpha / 2.0))
        z2 = z * z
        denom = 1.0 + z2 / n
        centre = (p + z2 / (2.0 * n)) / denom
        half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
        lower, upper = centre - half, centre + half
    elif method == "clopper-pearson":
        lower = float(sps.beta.ppf(alpha / 2.0, k, n - k + 1)) if k > 0 else 0.0
        upper = float(sps.beta.isf(alpha / 2.0, k + 1, n - k)) if k < n else 1.0
    else:  # jeffreys
        lower = float(sps.beta.ppf(alpha / 2.0, k + 0.5, n - k + 0.5))
        upper = float(sps.beta.isf(alpha / 2.0, k + 0.5, n - k + 0.5))
    # the bounds at k = 0 and k = n are exactly 0 and 1 (Wilson: algebraically; the
    # others: by definition); set them so rounding cannot give 1e-17 or 0.9999999999
    if k == 0:
        lower = 0.0
    if k == n:
        upper = 1.0
    return float(p), float(lower), float(upper)


def responders(volume_mm3, threshold_mm3: float = 10.0) -> np.ndarray:
    """Which subjects respond: volume at or below a threshold, element-wise.

    Parameters
    ----------
    volume_mm3 : array_like
        Tumour volumes (mm³), any shape; finite and ``>= 0``.
    threshold_mm3 : float, optional
        Response threshold (mm³), finite and ``>= 0``; default 10 mm³. A subject with
        ``volume <= threshold`` is a responder.

    Returns
    -------
    numpy.ndarray of bool
        Same shape as *volume_mm3*.

    Raises
    ------
    ParameterError
        If a volume is NaN, infinite or negative (a failed simulation must be dealt
        with, never silently classified), or the threshold is negative or not finite.
    """
    thr = finite_scalar(threshold_mm3, "threshold_mm3", lower=0.0)
    v = volume_array(volume_mm3, "volume_mm3")
    return np.asarray(v <= thr)


def recist_categories(
    baseline_mm3,
    final_mm3,
    *,
    cr_threshold_mm3: float = 10.0,
    pr_change: float = -0.657,
    pd_change: float = 0.728,
) -> pd.Categorical:
    """RECIST-like response categories from tumour volumes.

    RECIST 1.1 (Eisenhauer et al. 2009, Eur. J. Cancer 45:228) classifies by the
    change in the longest tumour *diameter*: partial response is a decrease of at
    least 30 %, progressive disease an increase of at least 20 %. For a tumour that
    keeps its shape, volume scales with the cube of the diameter, so on *volume*

    * a 30 % diameter decrease is a relative volume change of ``0.7**3 - 1 = -0.657``
      (65.7 % smaller), the default *pr_change*;
    * a 20 % diameter increase is ``1.2**3 - 1 = +0.728`` (72.8 % larger), the
      default *pd_change*.

    With ``change = final / baseline - 1`` each subject is, in this order of precedence,

    * ``"CR"`` (complete response) if ``final <= cr_threshold_mm3`` (the tumour is
      below what can be measured; a model has no exact zero);
    * ``"PR"`` (partial response) if ``change <= pr_change``;
    * ``"PD"`` (progressive disease) if ``change >= pd_change``;
    * ``"SD"`` (stable disease) otherwise.

    The comparisons with *pr_change* and *pd_change* allow a relative tolerance of
    1e-9, so a volume written exactly on a boundary (100 -> 34.3 mm³) counts as on it.
    RECIST's absolute 5-mm rule and new lesions have no analogue here.

    Parameters
    ----------
    baseline_mm3 : array_like
        Volumes at baseline (mm³), scalar or 1-D, finite and ``> 0``.
    final_mm3 : array_like
        Volumes at assessment (mm³), scalar or 1-D, finite and ``>= 0``; broadcast
        against *baseline_mm3*.
    cr_threshold_mm3 : float, optional
        Volume (mm³) at or below which the response is complete; finite, ``>= 0``.
    pr_change : float, optional
        Relative volume change at or below which the response is partial; in
        ``[-1, 0)``. Default -0.657 (30 % diameter decrease).
    pd_change : float, optional
        Relative volume change at or above which the disease progresses; finite and
        ``> 0``. Default 0.728 (20 % diameter increase).

    Returns
    -------
    pandas.Categorical
        One category per subject, ordered with categories :data:`RECIST_CATEGORIES`
        (``CR < PR < SD < PD``, best to worst), all four categories present even if
        unused (so ``value_counts`` lists every one).

    Raises
    ------
    ParameterError
        On NaN, infinite or negative volumes, a baseline ``<= 0``, arrays that do not
        broadcast or have more than one dimension, or thresholds out of range.
    """
    cr = finite_scalar(cr_threshold_mm3, "cr_threshold_mm3", lower=0.0)
    prc = finite_scalar(pr_change, "pr_change", lower=-1.0, upper=0.0, upper_open=True)
    pdc = finite_scalar(pd_change, "pd_change", lower=0.0, lower_open=True)
    base = volume_array(baseline_mm3, "baseline_mm3")
    final = volume_array(final_mm3, "final_mm3")
    if (base <= 0).any():
        raise ParameterError(
            f"baseline_mm3: baseline volumes must be > 0 mm^3; got "
            f"{base[base <= 0][0]:g} at index {index_text(base <= 0)}"
        )
    try:
        base, final = np.broadcast_arrays(base, final)
    except ValueError:
        raise ParameterError(
            f"final_mm3: shape {final.shape} does not broadcast with "
            f"baseline_mm3 shape {base.shape}"
        ) from None
    if base.ndim > 1:
        raise ParameterError(
            f"final_mm3, baseline_mm3: expected scalars or 1-D arrays, got shape {base.shape}"
        )
    base = np.atleast_1d(base)
    final = np.atleast_1d(final)
    change = final / base - 1.0
    codes = np.full(change.shape, 2, dtype=np.int8)  # SD
    codes[change >= pdc - BOUNDARY_RTOL * abs(pdc)] = 3  # PD
    codes[change <= prc + BOUNDARY_RTOL * abs(prc)] = 1  # PR
    codes[final <= cr] = 0  # CR
    return pd.Categorical.from_codes(codes, categories=list(RECIST_CATEGORIES), ordered=True)
