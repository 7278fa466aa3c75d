"""Schedule optimisation: known optima of toy objectives, constraints, robustness, failures.

Toy evaluators (plain functions of protocol-factor values, with per-animal parameter
columns) keep these tests fast; one test runs the real model on two schedules.
"""

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from mhimmune.core.errors import MhimmuneError, ParameterError, ProtocolError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.template import ScheduleTemplate
from mhimmune.runs.ensemble import EnsembleFailureWarning
from mhimmune.runs.executor import make_executor
from mhimmune.studies.optimize import Constraints, OptimizationResult, optimize_schedule

GRID = {"n_sessions": [1, 2, 3, 4, 5], "session_interval_day": [1.0, 2.0, 2.5, 3.0, 4.0]}
RANGES = {"n_sessions": (1, 5), "session_interval_day": (1.0, 4.0)}


# ------------------------------------------------------------------ toy evaluators


def bump(v):
    """Responder probability peaking at 3 sessions every 2.5 d (+ the animal's shift)."""
    d = (v["n_sessions"] - 3) ** 2 + (v["session_interval_day"] - 2.5 - v.get("shift", 0.0)) ** 2
    return {"responder": math.exp(-d), "loss": d}


def field_score(v):
    """Raises for H·f above 3e9 A/(m·s): simulating an infeasible candidate is a failure."""
    if v["field_kA_per_m"] * v["frequency_kHz"] * 1e6 > 3e9:
        raise RuntimeError("simulated an infeasible field")
    return {"responder": v["field_kA_per_m"] + v["frequency_kHz"] / 100}


class Recording:
    """Appends each evaluated candidate to a file, then scores the total antibody dose."""

    def __init__(self, path):
        self.path = str(path)

    def __call__(self, v):
        with open(self.path, "a") as fh:
            fh.write(f"{v['pdl1_dose_mg_per_kg']:g} {v['pdl1_count']:g}\n")
        return {"total": v["pdl1_dose_mg_per_kg"] * v["pdl1_count"]}

    def calls(self):
        p = Path(self.path)
        lines = p.read_text().splitlines() if p.exists() else []
        return [tuple(float(x) for x in line.split()) for line in lines]


def noisy(v):
    """Candidate x has mean MU[x] plus the animal's own noise for x (cohort column e<x>)."""
    x = int(v["x"])
    return {"responder": v["mu"] * (x == 2) + [0.0, 0.02, 0.0][x] + v[f"e{x}"]}


def fragile_bump(v):
    """bump(), but fails for animals with shift > 0.1 and for every animal at 1 session / 1 d."""
    if v["n_sessions"] == 1 and v["session_interval_day"] == 1.0:
        raise RuntimeError("solver gave up")
    if v["shift"] > 0.1:
        raise RuntimeError("this animal's model is stiff")
    return bump(v)


def always_fails(v):
    raise RuntimeError("nothing works")


class WithTemplate:
    """A plain callable that carries a ScheduleTemplate: constraints use its defaults."""

    def __init__(self, template):
        self.protocol = template

    def __call__(self, v):
        return {"responder": v["frequency_kHz"]}


def cohort_of(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"shift": rng.normal(0.05, 0.1, n)})


def true_interval(cohort):
    """Interval maximising the cohort's mean responder at 3 sessions."""
    s = cohort["shift"].to_numpy()
    return minimize_scalar(
        lambda x: -np.mean(np.exp(-((x - 2.5 - s) ** 2))),
        bounds=(1, 4),
        method="bounded",
        options={"xatol": 1e-10},
    ).x


# ------------------------------------------------------------------- known optima


def test_grid_finds_the_known_optimum_and_ranks_every_candidate():
    cohort = cohort_of()
    res = optimize_schedule(bump, GRID, cohort=cohort, progress=False)
    assert isinstance(res, OptimizationResult)
    assert res.best == {"n_sessions": 3.0, "session_interval_day": 2.5}
    s = cohort["shift"].to_numpy()
    assert res.best_value == pytest.approx(np.mean(np.exp(-(s**2))), rel=1e-12)
    t = res.table
    assert len(t) == 25 and t["feasible"].all() and (t["n_ok"] == 12).all()
    assert (t["n_failed"] == 0).all() and res.n_simulations == 25 * 12 and res.n_batches == 1
    # objective of every candidate is the cohort mean; rank 1..25 follows it
    for _, row in t.iterrows():
        expect = np.mean(
            np.exp(-((row["n_sessions"] - 3) ** 2 + (row["session_interval_day"] - 2.5 - s) ** 2))
        )
        assert row["objective"] == pytest.approx(expect, rel=1e-12)
    # rank = 1 + number of better candidates (2 and 4 sessions tie)
    y = t["objective"].to_numpy()
    assert list(t["rank"]) == list((y[None, :] > y[:, None]).sum(axis=1) + 1)
    assert t["rank"].min() == 1 and t["rank"].nunique() == 15
    assert res.per_animal["responder"].to_numpy() == pytest.approx(np.exp(-(s**2)))
    assert list(res.per_animal.index) == list(cohort.index)


def test_random_search_finds_the_optimum_within_tolerance():
    cohort = cohort_of()
    res = optimize_schedule(
        bump, RANGES, cohort=cohort, method="random", budget=400, seed=5, progress=False
    )
    assert res.best["n_sessions"] == 3.0
    assert res.best["session_interval_day"] == pytest.approx(true_interval(cohort), abs=0.05)
    # counts are drawn as integers, ranges uniformly within bounds
    t = res.table
    assert set(t["n_sessions"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert t["session_interval_day"].between(1.0, 4.0).all()
    assert len(t) == 400


def test_differential_evolution_finds_the_continuous_optimum():
    cohort = cohort_of()
    res = optimize_schedule(
        bump,
        RANGES,
        cohort=cohort,
        method="differential_evolution",
        budget=1500,
        seed=2,
        progress=False,
    )
    assert res.best["n_sessions"] == 3.0
    assert res.best["session_interval_day"] == pytest.approx(true_interval(cohort), abs=1e-2)
    # one ensemble per generation, candidates proposed twice are simulated once
    assert res.n_batches == res.info["de_generations"] + 1
    assert res.n_simulations == len(res.table) * len(cohort) <= 1500 * len(cohort)
    assert not res.table.duplicated(list(RANGES)).any()


def test_differential_evolution_with_levels_and_a_constraint():
    """List factors become index variables; infeasible candidates are penalised, not run."""
    space = {"n_sessions": (1, 5), "session_interval_day": [1.0, 2.0, 2.5, 3.0, 4.0]}

    def guarded(v):
        if v["n_sessions"] > 2:
            raise RuntimeError("simulated an infeasible candidate")
        return bump(v)

    res = optimize_schedule(
        guarded,
        space,
        method="differential_evolution",
        budget=600,
        constraints=Constraints(max_sessions=2),
        seed=0,
        progress=False,
    )
    assert res.best == {"n_sessions": 2.0, "session_interval_day": 2.5}
    assert res.best_value == pytest.approx(math.exp(-1))
    t = res.table
    assert (t.loc[~t["feasible"], "n_sessions"] > 2).all() and (~t["feasible"]).any()
    assert (t["n_failed"] == 0).all()
    assert set(t["session_interval_day"]) <= set(space["session_interval_day"])


def test_minimisation():
    res = optimize_schedule(bump, GRID, objective="loss", maximize=False, progress=False)
    assert res.best == {"n_sessions": 3.0, "session_interval_day": 2.5}
    assert res.best_value == pytest.approx(0.0, abs=1e-12)
    worst = res.table.loc[res.table["rank"].idxmax()]
    assert worst["objective"] == pytest.approx(4 + 1.5**2)  # 1 or 5 sessions, 1 or 4 d
    assert res.robustness["n_boot"] == 0 and math.isnan(res.robustness["p_best"])


def test_quantile_and_median_aggregates():
    cohort = pd.DataFrame({"shift": [-0.6, -0.2, 0.0, 0.3, 0.9]})
    space = {"n_sessions": [3], "session_interval_day": [2.5, 3.0]}
    s = cohort["shift"].to_numpy()
    for agg, f in (("q0.25", lambda y: np.quantile(y, 0.25)), ("median", np.median)):
        res = optimize_schedule(bump, space, cohort=cohort, aggregate=agg, n_boot=0, progress=False)
        for _, row in res.table.iterrows():
            y = np.exp(-((row["session_interval_day"] - 2.5 - s) ** 2))
            assert row["objective"] == pytest.approx(f(y), rel=1e-12)


# -------------------------------------------------------------------- constraints


def test_hf_limit_excludes_high_fields_without_simulating_them():
    space = {"field_kA_per_m": [8.0, 12.0, 16.0, 20.0], "frequency_kHz": [200.0, 300.0]}
    res = optimize_schedule(field_score, space, constraints=Constraints(hf_max=3e9), progress=False)
    t = res.table.set_index(["field_kA_per_m", "frequency_kHz"])
    feasible = {(8.0, 200.0), (12.0, 200.0), (8.0, 300.0)}
    assert {k for k, f in t["feasible"].items() if f} == feasible
    assert (t["n_failed"] == 0).all() and (t.loc[~t["feasible"], "n_ok"] == 0).all()
    assert t.loc[~t["feasible"], "objective"].isna().all()
    assert t.loc[(16.0, 200.0), "violation"].startswith("H·f = 3.2e+09")
    assert res.best == {"field_kA_per_m": 12.0, "frequency_kHz": 200.0}
    assert res.best_value == pytest.approx(14.0) and res.n_simulations == 3


def test_total_antibody_limit_excludes_dose_count_combinations(tmp_path):
    ev = Recording(tmp_path / "calls.txt")
    space = {"pdl1_dose_mg_per_kg": [5.0, 10.0, 20.0], "pdl1_count": [1, 2, 3, 4]}
    res = optimize_schedule(
        ev,
        space,
        objective="total",
        constraints={"max_total_antibody_mg_per_kg": "30 mg/kg"},
        progress=False,
    )
    feasible = {
        (d, c) for d in space["pdl1_dose_mg_per_kg"] for c in space["pdl1_count"] if d * c <= 30
    }
    assert sorted(ev.calls()) == sorted(feasible)  # each feasible candidate once, nothing else
    assert int(res.table["feasible"].sum()) == len(feasible) == 8
    assert res.best == {"pdl1_dose_mg_per_kg": 10.0, "pdl1_count": 3.0}  # 30 is on the limit
    assert res.best_value == 30.0 and res.n_infeasible == 4
    assert (
        "× pdl1_count 4"
        in res.table.loc[
            res.table["pdl1_dose_mg_per_kg"].eq(10.0) & res.table["pdl1_count"].eq(4.0), "violation"
        ].iloc[0]
    )


def test_constraints_use_the_template_defaults_and_custom_predicates():
    ev = WithTemplate(ScheduleTemplate("40 d", field="20 kA/m"))
    space = {"frequency_kHz": [100.0, 150.0, 200.0]}
    # 20 kA/m · 150 kHz = 3e9 is feasible; the PROTOCOL_FACTORS default (15 kA/m) would allow 200
    res = optimize_schedule(ev, space, constraints=Constraints(hf_max=3e9), progress=False)
    assert list(res.table["feasible"]) == [True, True, False]
    assert res.best == {"frequency_kHz": 150.0}

    def not_150(values):
        return values["frequency_kHz"] != 150.0

    res = optimize_schedule(ev, space, constraints=Constraints(custom=(not_150,)), progress=False)
    assert list(res.table["feasible"]) == [True, False, True]
    assert res.table["violation"].iloc[1] == "custom constraint not_150 not met"
    assert res.best == {"frequency_kHz": 200.0}


def test_constraints_violations_and_from_dict():
    c = Constraints.from_dict(
        {"hf_max": "5e9 A/m/s", "max_sessions": 4, "max_total_antibody_mg_per_kg": 30}
    )
    assert c.hf_max == pytest.approx(5e9) and c.max_sessions == 4
    ok = {
        "field_kA_per_m": 15.0,
        "frequency_kHz": 300.0,
        "n_sessions": 4,
        "pdl1_dose_mg_per_kg": 10.0,
        "pdl1_count": 3,
    }
    assert c.violations(ok) == []
    bad = {**ok, "field_kA_per_m": 20.0, "n_sessions": 5, "pdl1_count": 4}
    reasons = c.violations(bad)
    assert len(reasons) == 3
    assert "6e+09" in reasons[0] and "n_sessions = 5 > max_sessions 4" == reasons[1]
    # without MH sessions the field is not applied
    assert c.violations({**bad, "n_sessions": 0, "pdl1_count": 3}) == []
    with pytest.raises(
        ParameterError, match="unknown key.*'hf'.*allowed keys: hf_max, max_sessions"
    ):
        Constraints.from_dict({"hf": 5e9})
    with pytest.raises(ParameterError, match="constraints.hf_max: must be a finite number > 0"):
        Constraints(hf_max=-1.0)
    with pytest.raises(ParameterError, match="constraints.max_sessions: must be an integer"):
        Constraints(max_sessions=2.5)
    with pytest.raises(ParameterError, match="constraints.custom"):
        Constraints(custom=(3,))
    with pytest.raises(ParameterError, match="every one of the 2 candidates is infeasible"):
        optimize_schedule(
            bump,
            {"n_sessions": [4, 5], "session_interval_day": [2.0]},
            constraints=Constraints(max_sessions=3),
            progress=False,
        )


# ------------------------------------------------------- determinism and robustness


def test_parallel_workers_give_the_same_table():
    serial = optimize_schedule(bump, GRID, cohort=cohort_of(), progress=False)
    with make_executor(n_jobs=2) as executor:
        parallel = optimize_schedule(
            bump, GRID, cohort=cohort_of(), executor=executor, progress=False
        )
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    assert serial.robustness == parallel.robustness


def test_same_seed_gives_the_same_table():
    cohort = cohort_of(8)
    for method, budget in (("random", 60), ("differential_evolution", 300)):
        a = optimize_schedule(
            bump,
            RANGES,
            cohort=cohort,
            method=method,
            budget=budget,
            seed=11,
            n_boot=50,
            progress=False,
        )
        b = optimize_schedule(
            bump,
            RANGES,
            cohort=cohort,
            method=method,
            budget=budget,
            seed=11,
            n_boot=50,
            progress=False,
        )
        pd.testing.assert_frame_equal(a.table, b.table)
        assert a.robustness == b.robustness
        if method == "random":
            c = optimize_schedule(
                bump,
                RANGES,
                cohort=cohort,
                method=method,
                budget=budget,
                seed=12,
                n_boot=50,
                progress=False,
            )
            assert len(c.table) == len(a.table) == 60
            assert not np.allclose(c.table["session_interval_day"], a.table["session_interval_day"])


def _noise_cohort(mu, n=30, seed=4):
    """Per-animal noise e0, e1, e2; e1 is a permutation of e0, so candidates 0 and 1 differ
    by exactly 0.02 on average but animal by animal by much more."""
    rng = np.random.default_rng(seed)
    e0 = rng.normal(0, 1, n)
    return pd.DataFrame({"mu": mu, "e0": e0, "e1": rng.permutation(e0), "e2": rng.normal(0, 1, n)})


def test_robustness_clear_optimum_versus_near_tie():
    clear = optimize_schedule(
        noisy, {"x": [0, 1, 2]}, cohort=_noise_cohort(3.0), n_boot=300, progress=False
    )
    assert clear.best == {"x": 2.0}
    r = clear.robustness
    assert r["p_best"] > 0.99 and r["runner_up_within_ci"] is False
    assert r["ci_low"] < clear.best_value < r["ci_high"]
    assert r["ci_high"] - r["ci_low"] == pytest.approx(2 * 1.96 / math.sqrt(30), rel=0.35)

    tied = optimize_schedule(
        noisy, {"x": [0, 1]}, cohort=_noise_cohort(0.0), n_boot=300, progress=False
    )
    r = tied.robustness
    assert tied.best == {"x": 1.0}
    assert tied.best_value - tied.robustness["runner_up_value"] == pytest.approx(0.02, abs=1e-12)
    assert 0.3 < r["p_best"] < 0.8
    assert r["runner_up_within_ci"] is True and r["n_within_ci"] == 1
    # with two candidates, one of them is the best in every resample
    assert tied.table["p_best"].sum() == pytest.approx(1.0, abs=1e-12)
    assert r["runner_up_p_best"] == pytest.approx(1 - r["p_best"], abs=1e-12)


# ------------------------------------------------------------------------ failures


def test_failed_runs_are_counted_and_the_optimum_stays_correct():
    cohort = cohort_of(12)
    fragile = cohort["shift"].to_numpy() > 0.1
    assert 0 < fragile.sum() < 12
    with pytest.warns(EnsembleFailureWarning, match="runs failed"):
        res = optimize_schedule(fragile_bump, GRID, cohort=cohort, progress=False)
    t = res.table
    dead = (t["n_sessions"] == 1) & (t["session_interval_day"] == 1.0)
    assert (t.loc[dead, "n_failed"] == 12).all() and t.loc[dead, "objective"].isna().all()
    assert t.loc[dead, "rank"].isna().all()
    assert (t.loc[~dead, "n_failed"] == fragile.sum()).all()
    assert (t.loc[~dead, "n_ok"] == 12 - fragile.sum()).all()
    assert res.best == {"n_sessions": 3.0, "session_interval_day": 2.5}
    ok_shift = cohort["shift"].to_numpy()[~fragile]
    assert res.best_value == pytest.approx(np.mean(np.exp(-(ok_shift**2))), rel=1e-12)
    assert (res.per_animal["status"] != "ok").sum() == fragile.sum()
    assert "25 with failed runs (1 all failed)" in res.summary()


def test_every_run_failing_is_an_error():
    with pytest.raises(MhimmuneError, match="every run of every feasible candidate failed"):
        optimize_schedule(always_fails, GRID, progress=False)


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"space": {}}, "space: empty"),
        ({"method": "anneal"}, "method: must be one of grid, random, differential_evolution"),
        ({"aggregate": "mode"}, "aggregate: must be 'mean', 'median' or a quantile"),
        ({"aggregate": "q25"}, "aggregate: quantile 25 must be in \\[0, 1\\]"),
        ({"objective": "cure"}, "objective: 'cure' is not an output of the evaluator"),
        (
            {"objective": "cure", "space": RANGES, "method": "differential_evolution"},
            "objective: 'cure' is not an output of the evaluator",
        ),
        (
            {"space": {"n_sessions": (3, 1)}},
            "space.n_sessions: range \\(low, high\\) needs finite low < high",
        ),
        ({"space": {"n_sessions": [1, 1]}}, "space.n_sessions: duplicate levels"),
        ({"space": {"n_sessions": 3}}, "space.n_sessions: expected a list of levels"),
        ({"budget": 0}, "budget: must be an integer ≥ 1"),
        ({"budget": 10}, "budget: the grid has 25 candidates > budget 10"),
        ({"fixed": {"n_sessions": 2}}, "fixed.n_sessions: also in space"),
        ({"cohort": pd.DataFrame({"shift": []})}, "cohort: no animals"),
        (
            {"cohort": pd.DataFrame({"shift": [0.1, np.nan]})},
            "cohort: NaN or infinite values in columns \\['shift'\\]",
        ),
        ({"n_boot": -1}, "n_boot: must be an integer ≥ 0"),
        (
            {"de_options": {"maxiter": 3}, "method": "differential_evolution"},
            "de_options: unknown option",
        ),
        (
            {"method": "differential_evolution", "budget": 20},
            "budget: differential_evolution evaluates populations of 30",
        ),
    ],
)
def test_bad_input_names_the_field(kwargs, match):
    args = {"space": GRID, **kwargs}
    with pytest.raises(ParameterError, match=match):
        optimize_schedule(bump, progress=False, **args)


def test_unknown_factor_of_a_template_evaluator_names_close_matches():
    ev = ModelEvaluator(ScheduleTemplate("60 d"), {"responder": "cure<=10@57"})
    with pytest.raises(
        ParameterError, match=r"space.n_session: unknown protocol factor.*'n_sessions'"
    ):
        optimize_schedule(ev, {"n_session": [1, 2]}, progress=False)
    with pytest.raises(ProtocolError, match="space.n_sessions: n_sessions is a count"):
        optimize_schedule(bump, {"n_sessions": [1, 2.5]}, progress=False)
    with pytest.raises(ProtocolError, match="range bounds must be integers"):
        optimize_schedule(bump, {"n_sessions": (1, 4.5)}, method="random", progress=False)


# --------------------------------------------------------------- summary and plot


def test_summary_repr_and_plot():
    import matplotlib.pyplot as plt

    res = optimize_schedule(
        bump,
        GRID,
        cohort=cohort_of(),
        constraints=Constraints(max_sessions=4),
        n_boot=100,
        progress=False,
    )
    text = res.summary()
    assert "n_sessions=3, session_interval_day=2.5" in text
    assert "best in 100% of 100 resamples" in text
    assert "candidates: 25, 20 evaluated, 5 infeasible" in text
    assert "p_best 1.00" in repr(res) and "5 infeasible" in repr(res)
    ax = res.plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 20 and labels[0] == "n_sessions=3, session_interval_day=2.5"
    plt.close(ax.figure)


# ---------------------------------------------------------------------- real model


def test_real_model_concurrent_antibody_beats_a_one_week_delay():
    """For the nominal animal, anti-PD-L1 concurrent with the MH sessions leaves less
    tumour burden over 30 days (area under the total volume) than the same antibody a week
    later (Dovedi 2014: concurrent beats sequential)."""
    ev = ModelEvaluator(
        ScheduleTemplate("60 d"),
        {"burden": "auc:total_tumour_volume", "responder": "cure<=10@57"},
    )
    t0 = time.perf_counter()
    res = optimize_schedule(
        ev, {"pdl1_delay_day": [0, 7]}, objective="burden", maximize=False,
        method="grid", progress=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    assert res.best == {"pdl1_delay_day": 0.0}
    t = res.table.set_index("pdl1_delay_day")
    assert t.loc[0.0, "objective"] < 0.8 * t.loc[7.0, "objective"]
    assert list(t["n_ok"]) == [1, 1] and res.per_animal["status"].eq("ok").all()
    assert elapsed < 60  # seconds; the model is compiled once into the cache
