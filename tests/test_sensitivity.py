"""Global sensitivity analysis: SALib methods on known functions, one schema, failures, CLI, plots."""

import contextlib
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from mhimmune.cli import main
from mhimmune.core.errors import ParameterError
from mhimmune.runs import ensemble as en
from mhimmune.studies import sa_plots, sa_problem
from mhimmune.studies import sensitivity as sa

PI_BOUNDS = {f"x{i}": (-math.pi, math.pi) for i in (1, 2, 3)}
#: tests that run small designs on purpose (speed) silence the sample-size warning
SMALL_N = pytest.mark.filterwarnings("ignore::mhimmune.studies.sa_sampling.SampleSizeWarning")


def ishigami(v):
    """Ishigami function, a = 7, b = 0.1 (Ishigami & Homma 1990)."""
    return math.sin(v["x1"]) + 7 * math.sin(v["x2"]) ** 2 + 0.1 * v["x3"] ** 4 * math.sin(v["x1"])


def linear(v):
    """y = 4a + 2b + 0·c: importance a > b > c for every method."""
    return 4 * v["a"] + 2 * v["b"] + 0 * v["c"]


def fails_sometimes(v):
    if v["c"] > 0.8:
        raise RuntimeError("diverged on purpose")
    return linear(v)


class Ramp:
    """Trajectory y(t) = a·t + b·(10 − t) on t = 0..10: only b matters at t=0, only a at t=10."""

    time_grid_day = np.linspace(0, 10, 6)
    output_names = []
    trajectory_names = ["y"]

    def __call__(self, v):
        t = self.time_grid_day
        return {"y": v["a"] * t + v["b"] * (10 - t)}


def test_sobol_indices_of_the_ishigami_function_match_the_analytic_values():
    # analytic (a=7, b=0.1): S1 = 0.3139, 0.4424, 0; ST = 0.5576, 0.4424, 0.2437
    res = sa.run_sensitivity(
        None, PI_BOUNDS, evaluator=ishigami, method="sobol", n=4096, seed=2, progress=False
    )
    idx = res.indices.pivot_table(index="factor", columns="index", values="value")
    np.testing.assert_allclose(idx["S1"].loc[["x1", "x2", "x3"]], [0.3139, 0.4424, 0.0], atol=0.02)
    np.testing.assert_allclose(
        idx["ST"].loc[["x1", "x2", "x3"]], [0.5576, 0.4424, 0.2437], atol=0.02
    )
    ci = res.indices.set_index(["factor", "index"])
    assert (ci["conf_low"] <= ci["value"]).all() and (ci["value"] <= ci["conf_high"]).all()
    assert len(res.sample) == 4096 * 5


def test_second_order_sobol_finds_the_x1_x3_interaction_of_ishigami():
    res = sa.run_sensitivity(
        None, PI_BOUNDS, evaluator=ishigami, n=2048, second_order=True, seed=1, progress=False
    )
    s2 = res.indices[res.indices["index"] == "S2"].set_index(["factor", "factor2"])["value"]
    assert s2.loc[("x1", "x3")] == pytest.approx(0.2437, abs=0.05)  # = ST1 - S1 analytically
    assert abs(s2.loc[("x1", "x2")]) < 0.05 and abs(s2.loc[("x2", "x3")]) < 0.05


@pytest.mark.parametrize(
    "method,n,kind",
    [
        ("sobol", 512, "ST"),
        ("morris", 40, "mu_star"),
        ("efast", 257, "ST"),
        ("pawn", 800, "pawn_median"),
        ("delta", 150, "delta"),
    ],
)
def test_every_method_ranks_a_linear_function_and_returns_one_schema(method, n, kind):
    bounds = {k: (0.0, 1.0) for k in "abc"}
    small = n < sa.MIN_SAMPLE_SIZE[method]
    with pytest.warns(sa.SampleSizeWarning) if small else contextlib.nullcontext():
        res = sa.run_sensitivity(
            None,
            bounds,
            evaluator=linear,
            method=method,
            n=n,
            seed=4,
            progress=False,
            num_resamples=10,
        )
    idx = res.indices
    assert list(idx.columns) == sa.INDEX_COLUMNS
    assert set(idx["method"]) == {method} and idx["time_day"].isna().all()
    v = idx[idx["index"] == kind].set_index("factor")["value"]
    assert v["a"] > v["b"] > v["c"]


@SMALL_N
def test_the_same_seed_reproduces_design_outputs_and_indices():
    kw = dict(evaluator=ishigami, method="sobol", n=256, progress=False)
    a = sa.run_sensitivity(None, PI_BOUNDS, seed=7, **kw)
    b = sa.run_sensitivity(None, PI_BOUNDS, seed=7, **kw)
    c = sa.run_sensitivity(None, PI_BOUNDS, seed=8, **kw)
    pd.testing.assert_frame_equal(a.sample.design, b.sample.design)
    pd.testing.assert_frame_equal(a.indices, b.indices)  # values and bootstrap CIs
    assert not np.allclose(a.sample.design, c.sample.design)


@SMALL_N
def test_a_worker_pool_gives_the_serial_indices_and_stays_open():
    from mhimmune.runs.executor import WorkerPool

    kw = dict(evaluator=ishigami, n=64, seed=5, progress=False)
    serial = sa.run_sensitivity(None, PI_BOUNDS, method="sobol", **kw)
    with WorkerPool(2) as pool:
        pooled = sa.sobol(None, None, PI_BOUNDS, executor=pool, **kw)
        assert not pool.closed  # a given executor is used, not closed
    pd.testing.assert_frame_equal(serial.indices, pooled.indices)
    with pytest.raises(ParameterError, match="executor: expected an Executor"):
        sa.run_sensitivity(None, PI_BOUNDS, executor=2, **kw)
    with pytest.raises(ParameterError, match="n_jobs: give executor="):
        sa_plots.schedule_heatmap(None, ("x", [1]), ("y", [1]), "v", n_jobs=2)


@SMALL_N
def test_pawn_drops_failed_runs_and_says_how_many():
    bounds = {k: (0.0, 1.0) for k in "abc"}
    with pytest.warns(en.EnsembleFailureWarning):
        res = sa.run_sensitivity(
            None, bounds, evaluator=fails_sometimes, method="pawn", n=600, seed=3, progress=False
        )
    n_failed = res.ensemble.n_failed
    assert n_failed > 0
    assert (res.indices["n_dropped"] == n_failed).all()
    assert (res.indices["n_runs"] == 600 - n_failed).all()
    assert res.failures["message"].str.contains("diverged on purpose").all()


def test_sobol_with_failed_runs_reports_instead_of_inventing_numbers():
    bounds = {k: (0.0, 1.0) for k in "abc"}
    with pytest.warns(UserWarning) as caught:
        res = sa.run_sensitivity(
            None, bounds, evaluator=fails_sometimes, method="sobol", n=64, seed=3, progress=False
        )
    assert any("pawn" in str(w.message) for w in caught)
    assert res.indices.empty and "failed" in res.error
    with pytest.raises(sa.IncompleteRunsError):
        sa.analyze(res.sample, res.ensemble)


def test_time_resolved_indices_follow_the_trajectory():
    res = sa.run_sensitivity(
        None, {"a": (0, 1), "b": (0, 1)}, evaluator=Ramp(), n=512, seed=1, progress=False
    )
    st = res.indices[res.indices["index"] == "ST"].pivot_table(
        index="time_day", columns="factor", values="value"
    )
    assert st.loc[0.0, "b"] > 0.95 and st.loc[0.0, "a"] < 0.05
    assert st.loc[10.0, "a"] > 0.95 and st.loc[10.0, "b"] < 0.05
    assert st["a"].is_monotonic_increasing


@SMALL_N
def test_problem_takes_bounds_and_distributions_from_the_tables():
    p = sa.define_problem(
        ["ctl_kill_rate", "tumour_growth_rate", "n_sessions", "pdl1_dose_mg_per_kg"]
    )
    f = {x.name: x for x in p.factors}
    table = sa_problem.table_frame(None)
    for name in ("ctl_kill_rate", "tumour_growth_rate"):
        assert (f[name].lower, f[name].upper) == (table.at[name, "lower"], table.at[name, "upper"])
        assert f[name].dist == table.at[name, "distribution"] and f[name].kind == "parameter"
    assert f["n_sessions"].dist == "integer" and f["n_sessions"].kind == "protocol"
    s = sa.sample(p, "sobol", 64, seed=0)
    d = s.design
    assert set(np.unique(d["n_sessions"])) <= {1, 2, 3, 4, 5}
    lo, hi = f["pdl1_dose_mg_per_kg"].lower, f["pdl1_dose_mg_per_kg"].upper
    assert d["pdl1_dose_mg_per_kg"].between(lo, hi).all()
    # log-uniform: uniform in the logarithm, so the median sits at the geometric mean
    assert np.median(np.log(d["pdl1_dose_mg_per_kg"])) == pytest.approx(
        np.log(np.sqrt(lo * hi)), abs=0.15
    )
    custom = sa.define_problem(
        {"ctl_kill_rate": (0.1, 0.2), "field_kA_per_m": {"lower": 9, "upper": 11}}
    )
    assert [(x.lower, x.upper) for x in custom.factors] == [(0.1, 0.2), (9.0, 11.0)]


def test_problem_and_sample_errors_are_clear():
    with pytest.raises(ParameterError, match="close matches"):
        sa.define_problem(["ctl_kil_rate"])
    with pytest.raises(ParameterError, match="fixed"):
        sa.define_problem(["fenton_reference_temperature"])
    with pytest.raises(ParameterError, match="power of 2"):
        sa.sample(sa.define_problem({"a": (0, 1)}), "sobol", 1000)
    with pytest.raises(ParameterError, match="unknown"):
        sa.sample(sa.define_problem({"a": (0, 1)}), "sobolev", 8)


def test_normal_and_lognormal_factors_use_the_range_as_95_percent_interval():
    f = sa.Factor("k", 1.0, 3.0, "normal")
    u = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(f.values(u), [1.0, 2.0, 3.0], atol=1e-9)
    g = sa.Factor("k", 1.0, 100.0, "lognormal")
    np.testing.assert_allclose(g.values(u), [1.0, 10.0, 100.0], rtol=1e-9)


@SMALL_N
def test_plots_draw_indices_trajectories_morris_and_heatmaps():
    sob = sa.run_sensitivity(None, PI_BOUNDS, evaluator=ishigami, n=128, progress=False).indices
    mor = sa.run_sensitivity(
        None, PI_BOUNDS, evaluator=ishigami, method="morris", n=10, progress=False
    ).indices
    ramp = sa.run_sensitivity(
        None, {"a": (0, 1), "b": (0, 1)}, evaluator=Ramp(), n=64, progress=False
    ).indices
    figs = [
        sa_plots.plot_indices(sob),
        sa_plots.plot_morris(mor),
        sa_plots.plot_time_resolved(ramp),
    ]
    scan = pd.DataFrame(
        {
            "x": [1, 1, 2, 2],
            "y": [0, 3, 0, 3],
            "status": ["ok", "ok", "ok", "error"],
            "v": [1.0, 2.0, 3.0, np.nan],
        }
    )
    figs.append(sa_plots.plot_schedule_heatmap(scan, "x", "y", "v"))
    import matplotlib.pyplot as plt

    for fig in figs:
        assert fig.axes
        plt.close(fig)
    with pytest.raises(ValueError, match="no indices"):
        sa_plots.plot_indices(sob, outputs="not_an_output")


SPEC = """
n = 2
seed = 3
[template]
duration = "20 d"
n_sessions = 2
[factors]
field_kA_per_m = [8, 18]
ctl_kill_rate = "table"
[outputs]
readouts = ["final_volume_treated_mm3", "cem43_total_min"]
"""


@SMALL_N
def test_cli_sensitivity_writes_indices_and_resumes(tmp_path, capsys, model):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    assert main(["sensitivity", str(spec), "--jobs", "2", "--out", str(out), "--quiet"]) == 0
    idx = pd.read_csv(out / "indices.csv")
    assert list(idx.columns) == sa.INDEX_COLUMNS
    assert set(idx["factor"]) == {"field_kA_per_m", "ctl_kill_rate"}
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 2 * (2 + 2) and (runs["status"] == "ok").all()
    assert "model predictions" in capsys.readouterr().out
    assert main(["sensitivity", str(spec), "--out", str(out), "--quiet"]) == 2  # would overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["sensitivity", str(spec), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "8 resumed" in capsys.readouterr().out


def test_cli_sensitivity_errors_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("ctl_kill_rate", "ctl_kil_rate"))
    assert main(["sensitivity", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "ctl_kil_rate" in err and "\n" not in err
    assert main(["sensitivity", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert main(["sensitivity", str(bad), "--out", str(tmp_path / "o"), "--n", "3"]) == 2


# ----------------------------------------------------------------- sample-size warnings


def _sample_size_warnings(**kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sa.run_sensitivity(None, PI_BOUNDS, evaluator=ishigami, progress=False, seed=3, **kw)
    return [str(w.message) for w in caught if issubclass(w.category, sa.SampleSizeWarning)]


@pytest.mark.parametrize(
    "method,small,adequate,extra",
    [
        ("sobol", 16, 1024, {}),
        ("morris", 4, 20, {}),
        ("efast", 33, 257, {"M": 2}),
        ("pawn", 300, 1000, {}),
        ("delta", 300, 1000, {"num_resamples": 3}),
    ],
)
def test_small_designs_warn_and_adequate_ones_do_not(method, small, adequate, extra):
    msgs = _sample_size_warnings(method=method, n=small, **extra)
    assert any(f"{method}:" in m and f"below {sa.MIN_SAMPLE_SIZE[method]}" in m for m in msgs)
    assert _sample_size_warnings(method=method, n=adequate, **extra) == []


def test_a_confidence_interval_wider_than_the_index_warns_naming_output_and_factor():
    msgs = _sample_size_warnings(method="sobol", n=8)
    wide = [m for m in msgs if "wider than the index" in m]
    assert len(wide) == 1
    assert "output 'y'" in wide[0] and "for factor 'x" in wide[0]
    row = dict.fromkeys(sa.INDEX_COLUMNS)
    row.update(method="sobol", output="volume", time_day=math.nan, factor="ctl_kill_rate")
    row.update(index="ST", value=2.26, conf_low=-41.6, conf_high=43.1, n_runs=40, n_dropped=0)
    ok = dict(row, factor="field_kA_per_m", value=0.5, conf_low=0.45, conf_high=0.55)
    negligible = dict(row, factor="pdl1_delay_day", value=0.001, conf_low=-0.02, conf_high=0.022)
    flagged = sa.wide_intervals(pd.DataFrame([row, ok, negligible]))
    assert list(flagged["factor"]) == ["ctl_kill_rate"]
