"""Virtual-trial statistics checked against published answers and hand computations.

Sources:

* Freireich et al. (1963, Blood 21:699) 6-MP leukaemia remission data as tabulated by
  Gehan (1965, Biometrika 52:203) and worked through in Kleinbaum & Klein, *Survival
  Analysis: A Self-Learning Text* (3rd ed. 2012), ch. 2 (Kaplan–Meier curves and the
  log-rank test): S(t) of the 6-MP group, median 8 weeks of the placebo group, log-rank
  chi-square 16.79 with O/E 9/19.25 (6-MP) and 21/10.75 (placebo).
* Newcombe (1998, Stat. Med. 17:857), illustrative 95 % intervals for 81/263, 15/148,
  0/20 and 1/29 by the Wilson score (method 3) and exact Clopper–Pearson (method 5) methods.
* Everything else: hand computations written out in the tests, or an independent,
  deliberately plain (loop-per-event-time) implementation of the k-sample log-rank test.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import special

from mhimmune.core.errors import ParameterError
from mhimmune.studies import stats as st

# Freireich 6-MP data (weeks of remission; False = censored, "+" in the textbooks)
MP_TIMES = [6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
MP_EVENTS = [True] * 9 + [False] * 12
PLACEBO_TIMES = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
PLACEBO_EVENTS = [True] * 21
Z975 = 1.959963984540054  # standard normal 97.5 % quantile


def _km_at(km: pd.DataFrame, t: float, column: str = "survival") -> float:
    return float(km.loc[km["time"] == t, column].iloc[0])


# ================================================================= Kaplan–Meier


def test_kaplan_meier_6mp_group_matches_kleinbaum_table():
    """6-MP arm of Freireich et al. (Kleinbaum & Klein ch. 2): S(t) to 3 decimals and n at risk."""
    km = st.kaplan_meier(MP_TIMES, MP_EVENTS)
    published = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    at_risk = {6: 21, 7: 17, 10: 15, 13: 12, 16: 11, 22: 7, 23: 6}
    events = {6: 3, 7: 1, 10: 1, 13: 1, 16: 1, 22: 1, 23: 1}
    for t, s in published.items():
        assert _km_at(km, t) == pytest.approx(s, abs=5e-4), t
        assert _km_at(km, t, "at_risk") == at_risk[t]
        assert _km_at(km, t, "events") == events[t]
    # censorings at 6 and 10 are tied with events: the subject is still at risk (21, 15)
    assert _km_at(km, 6, "censored") == 1 and _km_at(km, 10, "censored") == 1
    assert list(km.columns) == [
        "time",
        "at_risk",
        "events",
        "censored",
        "survival",
        "lower",
        "upper",
    ]
    # one row per distinct time plus time 0; first row time 0, S = 1
    assert len(km) == len(set(MP_TIMES)) + 1
    assert km.iloc[0].to_dict() == {
        "time": 0.0,
        "at_risk": 21,
        "events": 0,
        "censored": 0,
        "survival": 1.0,
        "lower": 1.0,
        "upper": 1.0,
    }
    assert km["events"].sum() == 9 and km["censored"].sum() == 12
    assert _km_at(km, 35) == pytest.approx(0.448, abs=5e-4)  # flat after the last event
    assert st.median_time(km) == 23.0  # Kleinbaum: median 23 weeks


def test_kaplan_meier_placebo_group_and_median_8():
    """Placebo arm (no censoring): S(t) = fraction still in remission; median 8 weeks (Kleinbaum & Klein)."""
    km = st.kaplan_meier(PLACEBO_TIMES, PLACEBO_EVENTS)
    for t, still in {
        1: 19,
        2: 17,
        3: 16,
        4: 14,
        5: 12,
        8: 8,
        11: 6,
        12: 4,
        15: 3,
        17: 2,
        22: 1,
    }.items():
        assert _km_at(km, t) == pytest.approx(still / 21, rel=1e-12)
    assert _km_at(km, 23) == 0.0
    assert st.median_time(km) == 8.0
    # S = 0 at the last time: Greenwood variance undefined -> NaN bounds (documented)
    assert np.isnan(_km_at(km, 23, "lower")) and np.isnan(_km_at(km, 23, "upper"))


def test_greenwood_loglog_interval_by_hand_at_t6_and_t23():
    """Greenwood + log(-log) 95 % CI of the 6-MP arm, computed by hand.

    t = 6: n = 21, d = 3, S = 18/21. Var(log S) = 3 / (21 * 18) = 1/126.
    se of log(-log S) = sqrt(1/126) / |log(18/21)|;  bounds S ** exp(±1.96 se).
    This is R's survfit(conf.type = "log-log"), the default transform of Stata's
    sts list and SAS PROC LIFETEST.
    """
    km = st.kaplan_meier(MP_TIMES, MP_EVENTS)
    s6 = 18 / 21
    var6 = 3 / (21 * 18)
    se6 = math.sqrt(var6) / abs(math.log(s6))  # 0.0891 / 0.1542 = 0.5779
    lo6 = s6 ** math.exp(Z975 * se6)
    hi6 = s6 ** math.exp(-Z975 * se6)
    assert (lo6, hi6) == pytest.approx((0.6197, 0.9516), abs=1e-4)
    assert _km_at(km, 6, "lower") == pytest.approx(lo6, rel=1e-12)
    assert _km_at(km, 6, "upper") == pytest.approx(hi6, rel=1e-12)

    # t = 23: all event times so far, (n, d) = (21,3) (17,1) (15,1) (12,1) (11,1) (7,1) (6,1)
    steps = [(21, 3), (17, 1), (15, 1), (12, 1), (11, 1), (7, 1), (6, 1)]
    s23 = math.prod((n - d) / n for n, d in steps)
    var23 = sum(d / (n * (n - d)) for n, d in steps)
    se23 = math.sqrt(var23) / abs(math.log(s23))
    assert s23 == pytest.approx(0.448, abs=5e-4)
    assert _km_at(km, 23, "lower") == pytest.approx(s23 ** math.exp(Z975 * se23), rel=1e-12)
    assert _km_at(km, 23, "upper") == pytest.approx(s23 ** math.exp(-Z975 * se23), rel=1e-12)
    assert (_km_at(km, 23, "lower"), _km_at(km, 23, "upper")) == pytest.approx(
        (0.188, 0.680), abs=1e-3
    )
    # a 90 % interval is narrower, inside the 95 % one
    km90 = st.kaplan_meier(MP_TIMES, MP_EVENTS, confidence=0.90)
    z95 = 1.6448536269514722
    assert _km_at(km90, 6, "lower") == pytest.approx(s6 ** math.exp(z95 * se6), rel=1e-12)
    assert (km90["lower"] >= km["lower"]).all() and (km90["upper"] <= km["upper"]).all()


def test_kaplan_meier_ties_events_before_censorings_and_event_at_time_zero():
    """Hand example: times 2, 2+, 3, 3, 5+ -> S(2) = 4/5, S(3) = 4/5 * 1/3."""
    km = st.kaplan_meier([2, 2, 3, 3, 5], [1, 0, 1, 1, 0])
    assert km["time"].tolist() == [0.0, 2.0, 3.0, 5.0]
    assert km["at_risk"].tolist() == [5, 5, 3, 1]
    assert km["survival"].tolist() == pytest.approx([1.0, 0.8, 0.8 / 3, 0.8 / 3], rel=1e-12)
    # events at time 0 (already past a threshold at the start): that row holds them
    km0 = st.kaplan_meier([0.0, 0.0, 1.0, 2.0], [True, False, True, False])
    assert km0["time"].tolist() == [0.0, 1.0, 2.0]
    assert km0["survival"].tolist() == pytest.approx([0.75, 0.75 * 1 / 2, 0.75 * 1 / 2], rel=1e-12)
    assert km0["at_risk"].tolist() == [4, 2, 1]
    # no event at all: survival 1 throughout, bounds 1, median not reached
    km1 = st.kaplan_meier([3.0, 4.0], [False, False])
    assert km1["survival"].tolist() == [1.0, 1.0, 1.0]
    assert km1["lower"].tolist() == [1.0, 1.0, 1.0] and km1["upper"].tolist() == [1.0, 1.0, 1.0]
    assert st.median_time(km1) == math.inf


def test_median_time_exactly_one_half_and_not_reached():
    """S = 0.5 exactly counts (two subjects, one event at 4); S > 0.5 at the end -> inf."""
    assert st.median_time(st.kaplan_meier([4.0, 9.0], [True, False])) == 4.0
    # (1 - 1/4)(1 - 1/3) = 0.5 in exact arithmetic, possibly 0.5000000000000001 in floats
    assert st.median_time(st.kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0])) == 2.0
    assert (
        st.median_time(st.kaplan_meier([1, 2, 3, 4, 5], [1, 1, 0, 0, 0])) == math.inf
    )  # S(2) = 4/5 * 3/4
    assert st.median_time(st.kaplan_meier([1, 2, 3], [1, 0, 0])) == math.inf
    with pytest.raises(ParameterError, match="km"):
        st.median_time(pd.DataFrame({"t": [0.0]}))


def test_kaplan_meier_10000_subjects_under_50_ms():
    """Vectorised: 10,000 subjects with ties and censoring in well under 50 ms."""
    rng = np.random.default_rng(1)
    t = np.round(rng.exponential(20.0, 10_000), 1)
    e = rng.random(10_000) < 0.7
    km = st.kaplan_meier(t, e)
    best = min(_timed(st.kaplan_meier, t, e) for _ in range(5))
    assert best < 0.05
    assert km["events"].sum() == e.sum() and km["censored"].sum() == (~e).sum()
    assert np.all(np.diff(km["survival"]) <= 0)
    inner = km["survival"].between(0, 1, inclusive="neither")
    assert (km.loc[inner, "lower"] <= km.loc[inner, "survival"]).all()
    assert (km.loc[inner, "upper"] >= km.loc[inner, "survival"]).all()


def _timed(f, *args) -> float:
    t0 = time.perf_counter()
    f(*args)
    return time.perf_counter() - t0


@pytest.mark.parametrize(
    ("times", "events", "kwargs", "match"),
    [
        ([], [], {}, "times"),
        ([1.0, -1.0], [1, 1], {}, "times"),
        ([1.0, np.nan], [1, 1], {}, "times"),
        ([1.0, np.inf], [1, 1], {}, "times"),
        ([[1.0, 2.0]], [[1, 1]], {}, "times"),
        ([1.0, 2.0], [1], {}, "events"),
        ([1.0, 2.0], [1, 2], {}, "events"),
        ([1.0, 2.0], [1, np.nan], {}, "events"),
        ([1.0, 2.0], ["yes", "no"], {}, "events"),
        ([1.0, 2.0], [1, 0], {"confidence": 1.0}, "confidence"),
        ([1.0, 2.0], [1, 0], {"confidence": 0.0}, "confidence"),
        ([1.0, 2.0], [1, 0], {"confidence": np.nan}, "confidence"),
    ],
)
def test_kaplan_meier_bad_input(times, events, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        st.kaplan_meier(times, events, **kwargs)


# ================================================================= log-rank


def _logrank_by_hand(times, events, groups):
    """Plain k-sample log-rank: loop over event times, full V, drop the last group."""
    times = list(map(float, times))
    labels = sorted(set(groups))
    k = len(labels)
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    for tj in sorted({t for t, e in zip(times, events) if e}):
        n_g = np.array(
            [sum(1 for t, g in zip(times, groups) if g == lab and t >= tj) for lab in labels],
            dtype=float,
        )
        d_g = np.array(
            [
                sum(1 for t, e, g in zip(times, events, groups) if g == lab and t == tj and e)
                for lab in labels
            ],
            dtype=float,
        )
        n, d = n_g.sum(), d_g.sum()
        obs += d_g
        exp += d * n_g / n
        if n > 1:
            for a in range(k):
                for b in range(k):
                    var[a, b] += d * (n - d) / (n - 1) * n_g[a] / n * ((a == b) - n_g[b] / n)
    diff = (obs - exp)[:-1]
    stat = float(diff @ np.linalg.solve(var[:-1, :-1], diff))
    return stat, obs, exp


def test_logrank_6mp_vs_placebo_matches_kleinbaum():
    """Freireich 6-MP vs placebo (Kleinbaum & Klein ch. 2): chi² = 16.79, 1 df, p ≈ 4.2e-5;
    O/E = 9/19.25 (6-MP) and 21/10.75 (placebo)."""
    res = st.logrank_test(
        MP_TIMES + PLACEBO_TIMES, MP_EVENTS + PLACEBO_EVENTS, ["6-MP"] * 21 + ["placebo"] * 21
    )
    assert res.statistic == pytest.approx(16.79, abs=0.005)
    assert res.df == 1
    assert res.p_value == pytest.approx(4.2e-5, rel=0.02)
    assert res.observed.to_dict() == {"6-MP": 9, "placebo": 21}
    assert res.expected["6-MP"] == pytest.approx(19.25, abs=0.005)
    assert res.expected["placebo"] == pytest.approx(10.75, abs=0.005)
    assert res.observed.sum() == pytest.approx(res.expected.sum(), rel=1e-12)
    # the same by the plain implementation
    stat, _, _ = _logrank_by_hand(
        MP_TIMES + PLACEBO_TIMES, MP_EVENTS + PLACEBO_EVENTS, ["6-MP"] * 21 + ["placebo"] * 21
    )
    assert res.statistic == pytest.approx(stat, rel=1e-12)


def _three_groups(seed: int = 3, n: int = 40):
    rng = np.random.default_rng(seed)
    groups = np.repeat(["a", "b", "c"], n)
    scale = np.repeat([10.0, 14.0, 25.0], n)
    t = np.round(rng.exponential(scale), 0)  # rounding makes plenty of ties
    e = rng.random(3 * n) < 0.75
    return t, e, groups


def test_logrank_three_groups_matches_plain_implementation():
    """3 groups with ties and censoring: equal to the loop implementation above (2 df)."""
    t, e, g = _three_groups()
    res = st.logrank_test(t, e, g)
    stat, obs, exp = _logrank_by_hand(t, e, list(g))
    assert res.df == 2
    assert res.statistic == pytest.approx(stat, rel=1e-10)
    assert res.observed.to_numpy() == pytest.approx(obs)
    assert res.expected.to_numpy() == pytest.approx(exp, rel=1e-12)
    assert res.p_value == pytest.approx(
        math.exp(-stat / 2), rel=1e-10
    )  # chi² 2 df survival function
    assert list(res.observed.index) == ["a", "b", "c"]


def test_logrank_invariant_to_labels_and_subject_order():
    """Renaming/permuting group labels or shuffling subjects leaves the statistic unchanged."""
    t, e, g = _three_groups(seed=11)
    ref = st.logrank_test(t, e, g)
    for perm in itertools.permutations(["x", "y", "z"]):
        mapping = dict(zip(["a", "b", "c"], perm))
        res = st.logrank_test(t, e, [mapping[x] for x in g])
        assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)
        assert res.p_value == pytest.approx(ref.p_value, rel=1e-10)
    order = np.random.default_rng(0).permutation(t.size)
    res = st.logrank_test(t[order], e[order], g[order])
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)
    # integer labels and a Categorical (category order is kept)
    res = st.logrank_test(t, e, pd.Categorical(g, categories=["c", "a", "b"]))
    assert list(res.observed.index) == ["c", "a", "b"]
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)


def test_logrank_identical_groups_give_zero():
    """Three groups with identical data: O = E in every group, statistic 0, p = 1."""
    t = np.array(MP_TIMES * 3, dtype=float)
    e = np.array(MP_EVENTS * 3)
    res = st.logrank_test(t, e, np.repeat([1, 2, 3], 21))
    assert res.statistic == pytest.approx(0.0, abs=1e-12)
    assert res.p_value == pytest.approx(1.0, abs=1e-10)
    assert res.df == 2
    assert res.observed.to_numpy() == pytest.approx(res.expected.to_numpy(), rel=1e-12)


def test_logrank_group_without_events_and_degenerate_cases():
    """A group without events is fine; a group never at risk at an event time drops out
    of the df (as R survdiff); no events at all gives statistic 0, p 1."""
    t = [1, 2, 3, 4, 5, 6, 7, 8]
    e = [1, 1, 1, 1, 0, 0, 0, 0]
    g = ["a", "a", "a", "a", "b", "b", "b", "b"]  # b: no events, always at risk
    res = st.logrank_test(t, e, g)
    stat, _, exp = _logrank_by_hand(t, e, g)
    assert res.statistic == pytest.approx(stat, rel=1e-12)
    assert res.observed["b"] == 0 and res.expected["b"] == pytest.approx(exp[1])
    # group c censored before the first event: expected 0, left out -> df 1
    res3 = st.logrank_test(t + [0.5], e + [0], g + ["c"])
    assert res3.df == 1
    assert res3.expected["c"] == 0.0
    assert res3.statistic == pytest.approx(stat, rel=1e-12)
    none = st.logrank_test([1, 2, 3], [0, 0, 0], ["a", "b", "a"])
    assert (none.statistic, none.df, none.p_value) == (0.0, 0, 1.0)


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        (["a"] * 4, "at least 2 groups"),
        (["a", "b", None, "a"], "groups: missing label"),
        (["a", "b"], "groups"),
    ],
)
def test_logrank_bad_groups(groups, match):
    with pytest.raises(ParameterError, match=match):
        st.logrank_test([1, 2, 3, 4], [1, 1, 0, 1], groups)


def test_pairwise_logrank_reference_all_pairs_and_corrections():
    """Pairwise two-sample tests use only the two groups; Holm and Bonferroni by hand."""
    t, e, g = _three_groups(seed=5)
    pw = st.pairwise_logrank(t, e, g, reference="a", correction="holm")
    assert list(pw.columns) == ["group_a", "group_b", "statistic", "p_value", "p_adjusted"]
    assert pw[["group_a", "group_b"]].values.tolist() == [["b", "a"], ["c", "a"]]
    for _, row in pw.iterrows():
        sel = np.isin(g, [row["group_a"], row["group_b"]])
        stat, _, _ = _logrank_by_hand(t[sel], e[sel], list(g[sel]))
        assert row["statistic"] == pytest.approx(stat, rel=1e-10)
    p = pw["p_value"].to_numpy()
    lo, hi = np.argmin(p), np.argmax(p)
    # Holm with m = 2: smallest p * 2, then max(that, largest p * 1)
    assert pw["p_adjusted"].iloc[lo] == pytest.approx(min(1, 2 * p[lo]))
    assert pw["p_adjusted"].iloc[hi] == pytest.approx(min(1, max(2 * p[lo], p[hi])))

    allp = st.pairwise_logrank(t, e, g, correction="bonferroni")
    assert allp[["group_a", "group_b"]].values.tolist() == [["a", "b"], ["a", "c"], ["b", "c"]]
    assert allp["p_adjusted"].to_numpy() == pytest.approx(
        np.minimum(1, 3 * allp["p_value"].to_numpy())
    )
    raw = st.pairwise_logrank(t, e, g, correction="none")
    assert raw["p_adjusted"].tolist() == raw["p_value"].tolist()
    two = st.pairwise_logrank(
        MP_TIMES + PLACEBO_TIMES,
        MP_EVENTS + PLACEBO_EVENTS,
        ["6-MP"] * 21 + ["placebo"] * 21,
        reference="placebo",
    )
    assert two["statistic"].iloc[0] == pytest.approx(16.79, abs=0.005)


def test_holm_three_tests_by_hand():
    """Holm step-down for p = (0.01, 0.04, 0.03): sorted 0.01*3, 0.03*2, max(0.06, 0.04*1)."""
    adj = st.adjust_pvalues(np.array([0.01, 0.04, 0.03]), "holm")
    assert adj == pytest.approx([0.03, 0.06, 0.06])
    assert st.adjust_pvalues(np.array([0.5, 0.6]), "holm") == pytest.approx([1.0, 1.0])


def test_pairwise_logrank_bad_input():
    with pytest.raises(ParameterError, match="reference"):
        st.pairwise_logrank([1, 2], [1, 1], ["a", "b"], reference="control")
    with pytest.raises(ParameterError, match="correction"):
        st.pairwise_logrank([1, 2], [1, 1], ["a", "b"], correction="fdr")


# ================================================================= proportions


def test_wilson_and_clopper_pearson_8_of_10():
    """8/10: Wilson 95 % (0.490, 0.943); Clopper–Pearson (0.444, 0.975)."""
    p, lo, hi = st.proportion_ci(8, 10)
    assert p == 0.8
    assert (lo, hi) == pytest.approx((0.490, 0.943), abs=5e-4)
    # Wilson by hand: z² = 3.8415; centre (0.8 + z²/20)/(1 + z²/10); half z/(1+z²/10) sqrt(0.016 + z²/400)
    z2 = Z975**2
    centre = (0.8 + z2 / 20) / (1 + z2 / 10)
    half = Z975 / (1 + z2 / 10) * math.sqrt(0.8 * 0.2 / 10 + z2 / 400)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), rel=1e-12)
    _, lo, hi = st.proportion_ci(8, 10, method="clopper-pearson")
    assert (lo, hi) == pytest.approx((0.444, 0.975), abs=5e-4)


@pytest.mark.parametrize(
    ("k", "n", "wilson", "exact"),
    [
        (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
        (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
        (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
    ],
)
def test_proportion_ci_newcombe_1998_table(k, n, wilson, exact):
    """Newcombe (1998) Stat. Med. 17:857, illustrative examples: methods 3 (Wilson score) and 5 (exact)."""
    assert st.proportion_ci(k, n)[1:] == pytest.approx(wilson, abs=5e-5)
    assert st.proportion_ci(k, n, method="clopper-pearson")[1:] == pytest.approx(exact, abs=5e-5)


def test_proportion_ci_edges_and_jeffreys():
    """k = 0 and k = n give bounds of exactly 0 and 1; Jeffreys = Beta(k+1/2, n-k+1/2) quantiles."""
    for method in ("wilson", "clopper-pearson", "jeffreys"):
        p, lo, hi = st.proportion_ci(0, 12, method=method)
        assert (p, lo) == (0.0, 0.0) and 0 < hi < 1
        p, lo, hi = st.proportion_ci(12, 12, method=method)
        assert (p, hi) == (1.0, 1.0) and 0 < lo < 1
    # Clopper–Pearson at k = 0 has the closed form 1 - (alpha/2)^(1/n)
    assert st.proportion_ci(0, 20, method="clopper-pearson")[2] == pytest.approx(
        1 - 0.025 ** (1 / 20), rel=1e-10
    )
    assert st.proportion_ci(20, 20, method="clopper-pearson")[1] == pytest.approx(
        0.025 ** (1 / 20), rel=1e-10
    )
    _, lo, hi = st.proportion_ci(3, 17, confidence=0.9, method="jeffreys")
    assert lo == pytest.approx(special.betaincinv(3.5, 14.5, 0.05), rel=1e-10)
    assert hi == pytest.approx(special.betaincinv(3.5, 14.5, 0.95), rel=1e-10)
    # numpy integer counts are accepted (e.g. a sum of a boolean array)
    assert st.proportion_ci(np.sum([True, False, True]), np.int64(3))[0] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("k", "n", "kwargs", "match"),
    [
        (0, 0, {}, "n: .*>= 1"),
        (5, 4, {}, r"k: .*\[0, 4\]"),
        (-1, 4, {}, "k: "),
        (1.5, 4, {}, "k: "),
        (1, 4.2, {}, "n: "),
        (1, 4, {"confidence": 1.2}, "confidence"),
        (1, 4, {"method": "wald"}, "method"),
    ],
)
def test_proportion_ci_bad_input(k, n, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        st.proportion_ci(k, n, **kwargs)


# ================================================================= responders, RECIST


def test_responders_threshold_inclusive_and_shape_kept():
    v = np.array([[0.0, 9.99, 10.0], [10.01, 500.0, 3.0]])
    assert st.responders(v).tolist() == [[True, True, True], [False, False, True]]
    assert st.responders([0.5, 1.0, 1.5], threshold_mm3=1.0).tolist() == [True, True, False]
    assert st.responders(5.0).shape == ()
    assert st.responders([0.0], threshold_mm3=0.0).tolist() == [True]


@pytest.mark.parametrize(
    ("volume", "kwargs", "match"),
    [
        ([1.0, np.nan], {}, r"volume_mm3: .*finite.* index 1"),
        ([1.0, -0.5], {}, r"volume_mm3: .*>= 0"),
        ([1.0, np.inf], {}, "volume_mm3"),
        ([1.0], {"threshold_mm3": -1.0}, "threshold_mm3"),
        ([1.0], {"threshold_mm3": np.nan}, "threshold_mm3"),
        (["big"], {}, "volume_mm3"),
    ],
)
def test_responders_bad_input(volume, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        st.responders(volume, **kwargs)


def test_recist_categories_hand_cases_and_boundaries():
    """Baseline 100 mm³: CR at <= 10; PR at <= 34.3 (0.7³); PD at >= 172.8 (1.2³); else SD."""
    assert 1 - 0.7**3 == pytest.approx(0.657) and 1.2**3 - 1 == pytest.approx(0.728)
    final = [0.0, 10.0, 10.01, 34.3, 34.31, 100.0, 172.79, 172.8, 1000.0]
    cats = st.recist_categories(100.0, final)
    assert list(cats) == ["CR", "CR", "PR", "PR", "SD", "SD", "SD", "PD", "PD"]
    assert isinstance(cats, pd.Categorical)
    assert tuple(cats.categories) == st.RECIST_CATEGORIES == ("CR", "PR", "SD", "PD")
    assert cats.ordered and cats.min() == "CR"
    # per-subject baselines; CR takes precedence even for a small baseline
    cats = st.recist_categories([5.0, 50.0, 50.0, 200.0], [4.0, 17.15, 86.4, 150.0])
    assert list(cats) == ["CR", "PR", "PD", "SD"]
    # custom thresholds with exactly representable boundaries
    cats = st.recist_categories(
        64.0, [32.0, 32.5, 96.0, 95.5, 0.5], cr_threshold_mm3=0.5, pr_change=-0.5, pd_change=0.5
    )
    assert list(cats) == ["PR", "SD", "PD", "SD", "CR"]
    assert pd.Series(st.recist_categories(100.0, [50.0])).value_counts().to_dict() == {
        "CR": 0,
        "PR": 0,
        "SD": 1,
        "PD": 0,
    }


@pytest.mark.parametrize(
    ("baseline", "final", "kwargs", "match"),
    [
        (0.0, 5.0, {}, "baseline_mm3: .*> 0"),
        ([100.0, np.nan], [1.0, 2.0], {}, "baseline_mm3"),
        (100.0, [np.nan], {}, "final_mm3"),
        (100.0, [-1.0], {}, "final_mm3"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], {}, "final_mm3: .*broadcast"),
        (np.ones((2, 2)), np.ones((2, 2)), {}, "1-D"),
        (100.0, 50.0, {"pr_change": 0.1}, "pr_change"),
        (100.0, 50.0, {"pr_change": -1.5}, "pr_change"),
        (100.0, 50.0, {"pd_change": 0.0}, "pd_change"),
        (100.0, 50.0, {"cr_threshold_mm3": -1.0}, "cr_threshold_mm3"),
    ],
)
def test_recist_bad_input(baseline, final, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        st.recist_categories(baseline, final, **kwargs)


# ================================================================= time to event


def test_time_to_event_exponential_growth_linear_interpolation():
    """V = 10 exp(0.1 t) crosses 100 at ln(10)/0.1 = 23.026 d. On a 1-day grid the crossing
    is interpolated between V(23) = 99.742 and V(24) = 110.232:
    23 + (100 - 99.742) / (110.232 - 99.742) = 23.0246 d."""
    t = np.arange(0.0, 41.0)
    v = 10.0 * np.exp(0.1 * t)
    v23, v24 = 10 * math.exp(2.3), 10 * math.exp(2.4)
    by_hand = 23 + (100 - v23) / (v24 - v23)
    assert by_hand == pytest.approx(23.0246, abs=1e-4)
    times, events = st.time_to_event(t, v, 100.0)
    assert times.shape == (1,) and events.dtype == bool
    assert times[0] == pytest.approx(by_hand, rel=1e-12) and events[0]
    # a fine grid converges to the exact crossing
    tf = np.linspace(0, 40, 40_001)
    times, _ = st.time_to_event(tf, 10.0 * np.exp(0.1 * tf), 100.0)
    assert times[0] == pytest.approx(math.log(10) / 0.1, abs=1e-6)


def test_time_to_event_censoring_start_day_and_event_at_start():
    t = np.arange(0.0, 41.0)
    grow = 10.0 * np.exp(0.1 * t)
    flat = np.full(t.size, 50.0)
    dip = np.interp(t, [0, 5, 10, 40], [200.0, 50.0, 150.0, 150.0])  # above, below, above again
    v = np.vstack([grow, flat, dip])
    times, events = st.time_to_event(t, v, 100.0)
    assert events.tolist() == [True, False, True]
    assert times[1] == 40.0  # censored at the last time
    assert times[2] == 0.0  # already above at the start
    # start on a grid point: times from day 10; dip is 150 at day 10 -> event at 0
    times, events = st.time_to_event(t, v, 100.0, start_day=10.0)
    assert times.tolist() == pytest.approx([23.0246 - 10, 30.0, 0.0], abs=1e-4)
    assert events.tolist() == [True, False, True]
    # start between grid points: dip at day 5.5 is 60 (linear), crosses 100 at day 7.5
    times, events = st.time_to_event(t, v[2], 100.0, start_day=5.5)
    assert times[0] == pytest.approx(7.5 - 5.5, rel=1e-12) and events[0]
    times, _ = st.time_to_event(t, v[1:2], 100.0, start_day=40.0)
    assert times.tolist() == [0.0]
    # reaching the threshold exactly at a grid point counts
    times, events = st.time_to_event([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], 2.0)
    assert (times[0], events[0]) == (1.0, True)


@pytest.mark.parametrize(
    ("time_day", "volume", "kwargs", "match"),
    [
        ([0.0, 2.0, 1.0], [1.0, 1.0, 1.0], {}, "time_day: must be strictly increasing"),
        ([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], {}, "time_day"),
        ([0.0, np.nan, 1.0], [1.0, 1.0, 1.0], {}, "time_day"),
        ([[0.0, 1.0]], [1.0, 1.0], {}, "time_day"),
        ([0.0, 1.0, 2.0], [1.0, 1.0], {}, r"volume_mm3: expected shape \(n_subjects, 3\)"),
        ([0.0, 1.0, 2.0], [[1.0, np.nan, 1.0]], {}, r"volume_mm3: .*index \(0, 1\)"),
        ([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], {"start_day": 3.0}, "start_day"),
        ([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], {"start_day": -0.1}, "start_day"),
        ([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], {"threshold_mm3": -1.0}, "threshold_mm3"),
    ],
)
def test_time_to_event_bad_input(time_day, volume, kwargs, match):
    kwargs = {"threshold_mm3": 2.0} | kwargs
    with pytest.raises(ParameterError, match=match):
        st.time_to_event(time_day, volume, **kwargs)


def test_time_to_event_feeds_kaplan_meier_and_logrank():
    """End to end: two arms of exponential growth with different rates, censored at day 30."""
    t = np.arange(0.0, 31.0)
    rates = np.r_[np.linspace(0.08, 0.2, 20), np.linspace(0.0, 0.12, 20)]
    v = 10.0 * np.exp(rates[:, None] * t[None, :])
    times, events = st.time_to_event(t, v, 100.0)
    # a subject crosses by day 30 iff 10 exp(30 r) >= 100, i.e. r >= ln(10)/30 = 0.0768
    assert events.tolist() == (rates >= math.log(10) / 30).tolist()
    arm = np.repeat(["fast", "slow"], 20)
    res = st.logrank_test(times, events, arm)
    assert res.observed["fast"] == 20 and res.expected["fast"] < 20 and res.p_value < 0.01
    km = st.kaplan_meier(times[arm == "fast"], events[arm == "fast"])
    # 20 events, no censoring: S <= 0.5 at the 10th crossing, that of the 10th-fastest rate
    assert st.median_time(km) == pytest.approx(math.log(10) / rates[10], rel=0.01)
