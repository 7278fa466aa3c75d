"""Time to event and survival analysis of a virtual trial.

:func:`time_to_event` (first crossing of a volume threshold, interpolated, with censoring
at the end of follow-up); :func:`kaplan_meier` (product-limit estimator with Greenwood
log(-log) intervals), :func:`median_time`, :func:`logrank_test` (k-sample Mantel–Cox
test) and :func:`pairwise_logrank` (with Holm or Bonferroni correction,
:func:`adjust_pvalues`). Times are in days and volumes in mm³.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
from scipy import stats as sps

from mhimmune.core.errors import ParameterError
from mhimmune.studies.stat_inputs import (
    BOUNDARY_RTOL,
    confidence_level,
    finite_scalar,
    float_array,
    group_codes,
    survival_data,
    volume_array,
)

__all__ = [
    "time_to_event",
    "kaplan_meier",
    "median_time",
    "LogRankResult",
    "logrank_test",
    "adjust_pvalues",
    "pairwise_logrank",
]

_CORRECTIONS = ("holm", "bonferroni", "none")


def time_to_event(
    time_day, volume_mm3, threshold_mm3: float, *, start_day: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Time from *start_day* until the volume first reaches a threshold, with censoring.

    The event is the first time ``t >= start_day`` at which ``volume >= threshold``.
    Between grid points the volume is taken as linear in time, so a crossing between
    ``t_i`` (volume ``v_i < threshold``) and ``t_(i+1)`` (``v_(i+1) >= threshold``)
    happens at ``t_i + (threshold - v_i) / (v_(i+1) - v_i) * (t_(i+1) - t_i)``. The volume
    at *start_day* is interpolated the same way when *start_day* is not a grid point;
    if it is already ``>= threshold`` the event is at time 0. A subject that never
    reaches the threshold is censored at the last time of the grid.

    Parameters
    ----------
    time_day : array_like
        Recording times (d), 1-D, finite and strictly increasing, length ``n_times >= 1``.
    volume_mm3 : array_like
        Volumes (mm³), shape ``(n_subjects, n_times)``, or ``(n_times,)`` for one
        subject; finite and ``>= 0``.
    threshold_mm3 : float
        Event threshold (mm³), finite and ``>= 0`` (e.g. a humane end-point volume, or
        a multiple of the volume at treatment for time to progression).
    start_day : float, optional
        Time origin (d), within ``[time_day[0], time_day[-1]]``; default 0. Crossings
        before it are ignored.

    Returns
    -------
    times : numpy.ndarray of float
        Shape ``(n_subjects,)`` (``(1,)`` for 1-D *volume_mm3*): time from *start_day*
        to the event, or to censoring (``time_day[-1] - start_day``).
    events : numpy.ndarray of bool
        ``True`` where the threshold was reached, ``False`` where censored.

    Raises
    ------
    ParameterError
        If *time_day* is not 1-D, finite and strictly increasing, *volume_mm3* has the
        wrong shape or a NaN/infinite/negative value, or *threshold_mm3* or
        *start_day* is out of range.
    """
    t = float_array(time_day, "time_day")
    if t.ndim != 1 or t.size == 0:
        raise ParameterError(f"time_day: expected a non-empty 1-D array, got shape {t.shape}")
    if not np.isfinite(t).all():
        i = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ParameterError(f"time_day: must be finite; got {t[i]} at index {i}")
    if t.size > 1 and not (np.diff(t) > 0).all():
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise ParameterError(
            f"time_day: must be strictly increasing; time_day[{i + 1}] = {t[i + 1]:g} "
            f"<= time_day[{i}] = {t[i]:g}"
        )
    v = volume_array(volume_mm3, "volume_mm3")
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != t.size:
        raise ParameterError(
            f"volume_mm3: expected shape (n_subjects, {t.size}) matching time_day "
            f"(or ({t.size},) for one subject), got {np.shape(volume_mm3)}"
        )
    thr = finite_scalar(threshold_mm3, "threshold_mm3", lower=0.0)
    if (
        isinstance(start_day, bool)
        or not isinstance(start_day, Real)
        or not math.isfinite(start_day)
        or not t[0] <= start_day <= t[-1]
    ):
        raise ParameterError(
            f"start_day: must be a number within time_day [{t[0]:g}, {t[-1]:g}] d, "
            f"got {start_day!r}"
        )
    start = float(start_day)

    # grid from start_day on: the (interpolated) volume at start_day, then later points
    later = t > start
    i_hi = int(np.searchsorted(t, start, side="left"))
    if i_hi < t.size and t[i_hi] == start:
        v_start = v[:, i_hi]
    else:  # t[i_hi - 1] < start < t[i_hi]
        w = (start - t[i_hi - 1]) / (t[i_hi] - t[i_hi - 1])
        v_start = v[:, i_hi - 1] + w * (v[:, i_hi] - v[:, i_hi - 1])
    tg = np.concatenate(([start], t[later]))
    vg = np.concatenate((v_start[:, None], v[:, later]), axis=1)

    above = vg >= thr
    events = above.any(axis=1)
    first = np.argmax(above, axis=1)
    times = np.full(v.shape[0], t[-1] - start)
    at0 = events & (first == 0)
    times[at0] = 0.0
    cross = events & (first > 0)
    if cross.any():
        j = first[cross]
        rows = np.flatnonzero(cross)
        v0, v1 = vg[rows, j - 1], vg[rows, j]
        t0, t1 = tg[j - 1], tg[j]
        frac = (thr - v0) / (v1 - v0)  # v0 < thr <= v1, so 0 < frac <= 1
        times[cross] = t0 + frac * (t1 - t0) - start
    return times, events


# ----------------------------------------------------------------------- Kaplan–Meier


def kaplan_meier(times, events, confidence: float = 0.95) -> pd.DataFrame:
    """Kaplan–Meier (product-limit) survival estimate with log(-log) confidence bands.

    At each distinct time ``t_j`` with ``n_j`` subjects at risk and ``d_j`` events,
    ``S(t_j) = prod_{i <= j} (1 - d_i / n_i)``. A subject censored at ``t_j`` is still
    at risk at ``t_j`` (events precede censorings at tied times, the standard
    convention). The pointwise interval transforms ``S`` by ``log(-log S)`` with the
    Greenwood variance ``Var(log S) = sum_{i <= j} d_i / (n_i (n_i - d_i))``, as R's
    ``survfit(..., conf.type = "log-log")``::

        se = sqrt(Var(log S)) / |log S|
        lower = S ** exp(+z se),   upper = S ** exp(-z se)

    with ``z`` the ``(1 + confidence) / 2`` normal quantile. Where this is undefined:
    while ``S = 1`` (no event yet, zero variance) the bounds are 1, the point value;
    where ``S = 0`` (every subject at risk had the event) both bounds are NaN (R
    gives NA there too).

    Parameters
    ----------
    times : array_like
        Follow-up times, 1-D, finite and ``>= 0`` (e.g. from :func:`time_to_event`).
    events : array_like of bool
        ``True`` (or 1) for an event, ``False`` (or 0) for censoring; same length.
    confidence : float, optional
        Level of the pointwise interval, in (0, 1); default 0.95.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time (of an event or a censoring), preceded by a row at
        time 0, with columns ``time``, ``at_risk`` (at risk just before ``time``),
        ``events``, ``censored``, ``survival`` (right-continuous: ``S(time)``),
        ``lower``, ``upper``. The first row is time 0 with survival 1, unless events
        happen at time 0 (subjects already past the threshold at the start), in which
        case that row holds them and its survival is ``1 - d_0 / n``.

    Raises
    ------
    ParameterError
        If *times* is empty, not 1-D, negative or not finite; *events* is not
        boolean/0-1 or of another length; or *confidence* is outside (0, 1).
    """
    conf = confidence_level(confidence)
    t, e = survival_data(times, events)
    n = t.size
    uniq, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=uniq.size).astype(np.int64)
    total = np.bincount(inv, minlength=uniq.size).astype(np.int64)
    if uniq[0] > 0.0:  # a row at time 0 with nothing happening
        uniq = np.concatenate(([0.0], uniq))
        d = np.concatenate(([0], d))
        total = np.concatenate(([0], total))
    c = total - d
    at_risk = n - np.concatenate(([0], np.cumsum(total)[:-1]))
    surv_factor = 1.0 - d / at_risk
    survival = np.cumprod(surv_factor)
    # Greenwood: sum d / (n (n - d)); infinite once n == d (S = 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(d > 0, d / (at_risk * (at_risk - d).astype(float)), 0.0)
        var_log = np.cumsum(term)
        z = float(sps.norm.isf((1.0 - conf) / 2.0))
        log_s = np.log(survival)
        se = np.sqrt(var_log) / np.abs(log_s)
        lower = survival ** np.exp(z * se)
        upper = survival ** np.exp(-z * se)
    one = d.cumsum() == 0  # S == 1 exactly
    zero = survival == 0.0
    lower[one] = 1.0
    upper[one] = 1.0
    lower[zero] = np.nan
    upper[zero] = np.nan
    return pd.DataFrame(
        {
            "time": uniq,
            "at_risk": at_risk,
            "events": d,
            "censored": c,
            "survival": survival,
            "lower": lower,
            "upper": upper,
        }
    )


def median_time(km: pd.DataFrame) -> float:
    """Median survival time of a Kaplan–Meier table: the first time with ``S <= 0.5``.

    This is the smallest time at which the estimated survival is at or below one half
    (with a relative tolerance of 1e-9, so that ``S = 0.5`` computed with rounding
    counts). Where the curve is flat at exactly 0.5 this returns the start of the flat
    part, whereas R's ``survfit`` prints the midpoint of it.

    Parameters
    ----------
    km : pandas.DataFrame
        A table from :func:`kaplan_meier` (columns ``time`` and ``survival`` are used).

    Returns
    -------
    float
        The median time, or ``numpy.inf`` if the survival never falls to 0.5 during
        follow-up (the median is not reached; more than half the subjects are
        event-free at the last time).

    Raises
    ------
    ParameterError
        If *km* is not a DataFrame with ``time`` and ``survival`` columns.
    """
    if not isinstance(km, pd.DataFrame) or not {"time", "survival"} <= set(km.columns):
        raise ParameterError(
            "km: expected the DataFrame returned by kaplan_meier (columns time and survival)"
        )
    s = km["survival"].to_numpy(dtype=float)
    hit = np.flatnonzero(s <= 0.5 * (1.0 + BOUNDARY_RTOL))
    if hit.size == 0:
        return math.inf
    return float(km["time"].to_numpy(dtype=float)[hit[0]])


# ----------------------------------------------------------------------- log-rank


@dataclass(frozen=True)
class LogRankResult:
    """Result of a k-sample log-rank test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic ``(O - E)' V^-1 (O - E)`` over all groups but one.
    df : int
        Degrees of freedom: the number of groups with a non-zero expected count,
        minus one (``k - 1`` unless a group has no subject at risk at any event time).
    p_value : float
        Upper tail of the chi-square distribution with *df* degrees of freedom.
    observed : pandas.Series
        Observed events per group (indexed by group label).
    expected : pandas.Series
        Expected events per group under the null hypothesis of equal hazards.
    """

    statistic: float
    df: int
    p_value: float
    observed: pd.Series
    expected: pd.Series


def _logrank_core(
    t: np.ndarray, e: np.ndarray, codes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected (length k) and variance-covariance (k x k) of the log-rank test."""
    uniq, inv = np.unique(t, return_inverse=True)
    m = uniq.size
    cell = inv * k + codes
    total = np.bincount(cell, minlength=m * k).reshape(m, k)  # leaving at t_j
    d = np.bincount(cell, weights=e, minlength=m * k).reshape(m, k)  # events at t_j
    n_g = total.sum(axis=0) - np.vstack((np.zeros((1, k)), np.cumsum(total, axis=0)[:-1]))
    keep = d.sum(axis=1) > 0  # event times only
    d, n_g = d[keep], n_g[keep]
    d_all = d.sum(axis=1)
    n_all = n_g.sum(axis=1)
    frac = n_g / n_all[:, None]
    observed = d.sum(axis=0)
    expected = (frac * d_all[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_all > 1, d_all * (n_all - d_all) / (n_all - 1.0), 0.0)
    var = np.diag((w[:, None] * frac).sum(axis=0)) - (w[:, None] * frac).T @ frac
    return observed, expected, var


def logrank_test(times, events, groups) -> LogRankResult:
    """k-sample log-rank (Mantel–Cox) test of equal survival across groups.

    At each distinct event time ``t_j`` with ``n_j`` at risk (``n_gj`` in group g) and
    ``d_j`` events, the expected events of group g are ``d_j n_gj / n_j``; ``O_g`` and
    ``E_g`` sum observed and expected events over event times. The hypergeometric
    variance-covariance is ``V_gh = sum_j d_j (n_j - d_j) / (n_j - 1) * n_gj / n_j *
    (delta_gh - n_hj / n_j)``, and the statistic ``(O - E)' V^-1 (O - E)`` drops the last
    group (V is singular) and is chi-square with ``k - 1`` degrees of freedom under the
    null. This is R's ``survdiff(..., rho = 0)``, including its handling of groups with
    zero expected events (no subject at risk at any event time): they are left out and
    *df* shrinks accordingly. If V is still singular (e.g. every event time empties the
    risk set), a pseudo-inverse is used and *df* is its rank. If there are no events
    at all the test has no information: statistic 0, df 0, p-value 1.

    Parameters
    ----------
    times : array_like
        Follow-up times, 1-D, finite and ``>= 0``.
    events : array_like of bool
        ``True`` (or 1) for an event, ``False`` (or 0) for censoring.
    groups : array_like
        Group label of each subject (any hashable labels; NaN/None are errors). The
        result is indexed by the labels, sorted (or in category order for a
        ``pandas.Categorical``; in order of appearance if they cannot be sorted).
        A group without events is allowed.

    Returns
    -------
    LogRankResult
        Statistic, degrees of freedom, p-value, and observed and expected events per group.

    Raises
    ------
    ParameterError
        On invalid *times*/*events* (see :func:`kaplan_meier`), *groups* of the wrong
        length or with missing labels, or fewer than two distinct groups.
    """
    t, e = survival_data(times, events)
    codes, labels = group_codes(groups, t.size)
    k = labels.size
    if k < 2:
        raise ParameterError(
            f"groups: the log-rank test needs at least 2 groups, got {k} "
            f"({', '.join(map(str, labels))})"
        )
    observed, expected, var = _logrank_core(t, e, codes, k)
    obs = pd.Series(observed.astype(np.int64), index=labels, name="observed")
    exp = pd.Series(expected, index=labels, name="expected")
    use = np.flatnonzero(expected > 0)
    if use.size < 2:
        return LogRankResult(0.0, 0, 1.0, obs, exp)
    diff = (observed - expected)[use][:-1]
    vv = var[np.ix_(use, use)][:-1, :-1]
    df = use.size - 1
    rank = int(np.linalg.matrix_rank(vv))
    if rank == df:
        stat = float(diff @ np.linalg.solve(vv, diff))
    else:  # singular: generalised inverse, df = rank
        df = rank
        stat = float(diff @ np.linalg.pinv(vv) @ diff) if rank > 0 else 0.0
    if -1e-12 < stat < 0.0:  # V is positive semi-definite: rounding only
        stat = 0.0
    p = float(sps.chi2.sf(stat, df)) if df > 0 else 1.0
    return LogRankResult(stat, int(df), p, obs, exp)


def adjust_pvalues(p: np.ndarray, correction: str) -> np.ndarray:
    """Holm step-down or Bonferroni adjusted p-values (capped at 1)."""
    m = p.size
    if correction == "none" or m == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj_sorted
    return out


def pairwise_logrank(
    times, events, groups, reference=None, correction: str = "holm"
) -> pd.DataFrame:
    """Two-sample log-rank tests between groups, with multiple-testing correction.

    Each test uses only the subjects of its two groups (as R's
    ``survminer::pairwise_survdiff``), via :func:`logrank_test`.

    Parameters
    ----------
    times, events, groups : array_like
        As for :func:`logrank_test`.
    reference : label, optional
        If given, every other group is tested against it (``group_a`` = the group,
        ``group_b`` = *reference*), e.g. each arm against the untreated control. If
        ``None`` (default), every pair of groups in label order.
    correction : {"holm", "bonferroni", "none"}, optional
        Adjustment of the p-values for the number of tests: Holm's step-down
        (default; controls the family-wise error, uniformly more powerful than
        Bonferroni), Bonferroni, or none. Adjusted p-values are capped at 1.

    Returns
    -------
    pandas.DataFrame
        One row per test with columns ``group_a``, ``group_b``, ``statistic`` (chi-square,
        1 df), ``p_value`` and ``p_adjusted``.

    Raises
    ------
    ParameterError
        As :func:`logrank_test`; also if *reference* is not one of the groups or
        *correction* is unknown.
    """
    if correction not in _CORRECTIONS:
        raise ParameterError(
            f"correction: must be one of {', '.join(_CORRECTIONS)}; got {correction!r}"
        )
    t, e = survival_data(times, events)
    codes, labels = group_codes(groups, t.size)
    if labels.size < 2:
        raise ParameterError(
            f"groups: pairwise log-rank tests need at least 2 groups, got {labels.size}"
        )
    if reference is None:
        pairs: Sequence[tuple[int, int]] = list(itertools.combinations(range(labels.size), 2))
    else:
        matches = [i for i, lab in enumerate(labels) if lab == reference]
        if not matches:
            raise ParameterError(
                f"reference: {reference!r} is not one of the groups "
                f"({', '.join(map(repr, labels))})"
            )
        r = matches[0]
        pairs = [(i, r) for i in range(labels.size) if i != r]
    rows = []
    for a, b in pairs:
        sel = (codes == a) | (codes == b)
        res = logrank_test(t[sel], e[sel], np.where(codes[sel] == a, 0, 1))
        rows.append((labels[a], labels[b], res.statistic, res.p_value))
    out = pd.DataFrame(rows, columns=["group_a", "group_b", "statistic", "p_value"])
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(dtype=float), correction)
    return out
