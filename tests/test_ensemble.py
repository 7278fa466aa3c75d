"""The ensemble runner: failures are data, checkpoints resume, results do not depend on workers.

Toy evaluators keep these tests fast; the real model is used only where the point is
the model path itself (protocols from factors, workers loading the compiled model,
readouts equal to ``summary()``), and no model-specific number is asserted.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.core.errors import MhimmuneError, ParameterError, ProtocolError
from mhimmune.mh import catalogue
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.template import ScheduleTemplate, schedule_scan
from mhimmune.runs import ensemble as en

# ------------------------------------------------------------------ toy evaluators


def linear(values):
    """y = 2a + b, and a second output a·b."""
    return {"y": 2 * values["a"] + values["b"], "ab": values["a"] * values["b"]}


def fails_above(values):
    """Raises for a > 0.75: an evaluator that fails on purpose."""
    if values["a"] > 0.75:
        raise mh.SolverError("toy solver gave up", segment=0, time_h=1.0, overrides=values)
    return {"y": values["a"]}


def nan_for_negative(values):
    return {"y": math.sqrt(values["a"]) if values["a"] >= 0 else float("nan")}


class Counting:
    """Appends one line per evaluation to a file (works across processes); may interrupt."""

    def __init__(self, path, interrupt_after=None):
        self.path = str(path)
        self.interrupt_after = interrupt_after

    def fingerprint(self):
        return "counting-linear"

    def __call__(self, values):
        with open(self.path, "a") as fh:
            fh.write(f"{values['a']}\n")
        if self.interrupt_after is not None:
            n = len(Path(self.path).read_text().splitlines())
            if n > self.interrupt_after:
                raise KeyboardInterrupt("simulated kill")
        return linear(values)


def design(n=40, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(-1, 1, n)})


# ------------------------------------------------------------------------- runner


def test_outputs_align_with_design_rows():
    d = design()
    res = en.run_ensemble(linear, d, progress=False)
    assert list(res.results["run"]) == list(range(len(d)))
    np.testing.assert_allclose(res.output("y"), 2 * d["a"] + d["b"])
    assert res.output_names == ["y", "ab"] and res.n_failed == 0
    assert (res.results["status"] == "ok").all() and (res.results["message"] == "").all()


def test_results_do_not_depend_on_processes_or_chunking():
    d = design(60)
    serial = en.run_ensemble(linear, d, n_jobs=1, progress=False)
    parallel = en.run_ensemble(linear, d, n_jobs=2, chunk_size=7, progress=False)
    cols = ["run", "status", "a", "b", "y", "ab"]
    pd.testing.assert_frame_equal(serial.results[cols], parallel.results[cols])


def test_a_run_that_fails_on_purpose_is_counted_and_reported_with_its_parameters():
    d = design(40)
    expected = d.index[d["a"] > 0.75].tolist()
    assert expected, "the design must contain failing rows"
    with pytest.warns(en.EnsembleFailureWarning, match=rf"{len(expected)} of 40 runs failed"):
        res = en.run_ensemble(fails_above, d, n_jobs=2, chunk_size=5, progress=False)
    assert res.n_failed == len(expected)
    f = res.failures
    assert f["run"].tolist() == expected
    assert set(f["status"]) == {"solver_error"}
    assert f["message"].str.contains("toy solver gave up").all()
    np.testing.assert_allclose(f["a"], d.loc[expected, "a"])  # the parameters of each failure
    np.testing.assert_allclose(f["b"], d.loc[expected, "b"])
    # NaN only in failed rows; nothing dropped
    y = res.results["y"]
    assert len(res.results) == 40
    assert y.isna().tolist() == (res.results["status"] != "ok").tolist()
    assert "failed (solver_error: " in res.summary()


def test_non_finite_output_is_a_failure_not_a_silent_nan():
    d = pd.DataFrame({"a": [1.0, -1.0, 4.0]})
    with pytest.warns(en.EnsembleFailureWarning):
        res = en.run_ensemble(nan_for_negative, d, progress=False)
    assert res.results["status"].tolist() == ["ok", "nonfinite", "ok"]
    assert "y" in res.failures["message"].iloc[0]


def test_resume_after_an_interrupted_run_recomputes_nothing_finished(tmp_path):
    d = design(40)
    counter = tmp_path / "calls.txt"
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        en.run_ensemble(
            Counting(counter, interrupt_after=23), d, chunk_size=5, out=out, progress=False
        )
    finished = sorted(out.glob("chunks/chunk-*.parquet"))
    n_finished = sum(len(pd.read_parquet(f)) for f in finished)
    assert n_finished == 20  # four chunks of 5 were written before the kill at call 24
    counter.unlink()
    res = en.run_ensemble(Counting(counter), d, chunk_size=5, out=out, resume=True, progress=False)
    recomputed = counter.read_text().splitlines()
    assert len(recomputed) == 40 - n_finished  # nothing finished was evaluated again
    assert res.n_computed == 20 and res.n_failed == 0
    reference = en.run_ensemble(linear, d, progress=False)
    np.testing.assert_allclose(res.output("y"), reference.output("y"))
    # resuming a complete run computes nothing
    counter.unlink()
    again = en.run_ensemble(Counting(counter), d, out=out, resume=True, progress=False)
    assert not counter.exists() and again.n_computed == 0


def test_a_checkpoint_folder_refuses_another_design_or_a_silent_restart(tmp_path):
    d = design(10)
    en.run_ensemble(linear, d, out=tmp_path / "r", progress=False)
    with pytest.raises(MhimmuneError, match="already holds"):
        en.run_ensemble(linear, d, out=tmp_path / "r", progress=False)
    with pytest.raises(MhimmuneError, match="different design"):
        en.run_ensemble(linear, design(10, seed=9), out=tmp_path / "r", resume=True, progress=False)


def test_progress_bar_is_silenced_by_tqdm_disable(monkeypatch, capsys):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    en.run_ensemble(linear, design(5), progress=None)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("TQDM_DISABLE")
    en.run_ensemble(linear, design(5), progress=None)
    assert "5/5" in capsys.readouterr().err


def test_bad_designs_are_rejected_before_any_run():
    with pytest.raises(ParameterError, match="NaN"):
        en.run_ensemble(linear, pd.DataFrame({"a": [1.0, np.nan], "b": [0.0, 0.0]}), progress=False)
    with pytest.raises(ParameterError, match="reserved"):
        en.run_ensemble(linear, pd.DataFrame({"status": [1.0]}), progress=False)


# ---------------------------------------------------------------------- schedules


def build(template, **factors):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        return template.build(factors)


def test_schedule_template_builds_the_schedule_the_factors_describe():
    tpl = ScheduleTemplate("40 d")
    plan = build(
        tpl,
        n_sessions=4,
        session_interval_day=3,
        mh_start_day=6,
        pdl1_delay_day=-1,
        pdl1_count=2,
        pdl1_interval_day=5,
        bso=1,
        session_duration_min=45,
    )
    sessions = plan.mh_sessions()
    assert [s.start_h / 24 for s in sessions] == [6, 9, 12, 15]
    assert all(math.isclose(s.duration_h, 0.75) for s in sessions)
    frame = plan.to_frame()
    ab = frame[frame["kind"] == "anti_pdl1"]["start_day"].tolist()
    assert ab == [5, 10]  # one day before the first session, then every 5 d
    bso = frame[frame["kind"] == "bso"]["start_day"].to_numpy()
    np.testing.assert_allclose(bso * 24, [s.start_h - 2 for s in sessions])  # 2 h before each
    assert "hsp_inhibitor" not in set(frame["kind"])
    no_mh = build(tpl, n_sessions=0)
    assert no_mh.mh_sessions() == [] and "anti_pdl1" in set(no_mh.to_frame()["kind"])


def test_schedule_template_rejects_bad_factor_values_clearly():
    tpl = ScheduleTemplate("40 d")
    cases = [
        ({"n_session": 3}, "unknown protocol factor"),
        ({"n_sessions": 2.5}, "integer"),
        ({"bso": 0.5}, "0 or 1"),
        ({"field_kA_per_m": -5}, "field"),
        ({"pdl1_delay_day": -10}, "before|< 0"),
        ({"field_kA_per_m": 60, "frequency_kHz": 400}, "Hergt"),
        ({"frequency_kHz": "200 kHz"}, "number"),
    ]
    for factors, message in cases:
        with pytest.raises(ProtocolError, match=message):
            build(tpl, **factors)
    with pytest.raises(ProtocolError, match="unknown keyword"):
        ScheduleTemplate("40 d", feild="15 kA/m")


def test_readout_specifications_parse_or_fail_clearly():
    r = catalogue.parse_readout("tumour_volume_treated@21")
    assert (r.kind, r.variables, r.day) == ("at", ("tumour_volume_treated",), 21.0)
    assert catalogue.parse_readout("peak:temperature_C").kind == "max"
    assert catalogue.parse_readout("cure<=5@30").threshold == 5.0
    assert catalogue.parse_readout("auc:a+b").variables == ("a", "b")
    with pytest.raises(ParameterError, match="unknown kind"):
        catalogue.parse_readout("mean:temperature_C")
    with pytest.raises(ParameterError):
        catalogue.parse_readout("tumour_volume_treated@soon")


# --------------------------------------------------------------------- real model


def test_default_readouts_equal_the_simulation_summary(model):
    tpl = ScheduleTemplate("30 d")
    ev = ModelEvaluator(tpl)
    ev.setup()
    plan = build(tpl)
    res = mh.simulate(model, plan)
    fast = ev.readouts_of(res.time_h, res.states, res.derived, plan.duration_h)
    summary = res.summary()
    assert set(summary.index) <= set(fast)
    for k, v in summary.items():
        assert fast[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
    assert fast["cure"] in (0.0, 1.0)


def test_fast_parameter_path_gives_the_models_own_parameter_vector(model):
    names = ["ctl_kill_rate", "tumour_growth_rate", "body_temperature"]
    view = model.with_fast_parameters(names)
    for n in names:
        lo, hi = model.table.frame.loc[n, ["lower", "upper"]]
        x = lo + 0.3 * (hi - lo)
        np.testing.assert_allclose(
            view.parameter_vector({n: x}), model.parameter_vector({n: x}), rtol=1e-12
        )
    with pytest.raises(ParameterError):  # outside the fast range: the model validates
        view.parameter_vector({"ctl_kill_rate": -1.0})


def test_small_real_model_ensemble_on_two_processes(model):
    tpl = ScheduleTemplate("30 d")
    d = pd.DataFrame(
        {
            "field_kA_per_m": [10, 12, 14, 16, 18, 12, 14, 16],
            "pdl1_delay_day": [0, 1, 2, 3, -2, 0, 1, -20],  # the last starts before day 0
            "ctl_kill_rate": np.linspace(0.5, 1.5, 8) * model.table.value("ctl_kill_rate"),
        }
    )
    ev = ModelEvaluator(
        tpl,
        ["final_volume_treated_mm3", "tumour_volume_treated@14", "cure"],
        trajectories=["tumour_volume_treated"],
        time_grid_day=np.arange(0, 31, 5),
    )
    with pytest.warns(en.EnsembleFailureWarning, match="1 of 8"):
        res = en.run_ensemble(ev, d, n_jobs=2, progress=False)
    assert res.results["status"].tolist() == ["ok"] * 7 + ["protocol_error"]
    assert "pdl1_delay_day" in res.failures["message"].iloc[0]
    assert res.trajectory_arrays["tumour_volume_treated"].shape == (8, 7)
    assert np.isnan(res.trajectory_arrays["tumour_volume_treated"][7]).all()
    assert np.isfinite(res.trajectory_arrays["tumour_volume_treated"][:7]).all()
    tidy = res.trajectories()
    assert list(tidy.columns) == ["run", "variable", "time_day", "value"] and len(tidy) == 7 * 7
    assert set(res.results.loc[:6, "cure"]) <= {0.0, 1.0}


def test_unknown_design_columns_fail_before_any_run():
    ev = ModelEvaluator(ScheduleTemplate("30 d"), ["final_volume_treated_mm3"])
    with pytest.raises(ParameterError, match="ctl_kil_rate"):
        en.run_ensemble(ev, pd.DataFrame({"ctl_kil_rate": [0.1]}), progress=False)


def _faults_per_block(n: int = 20) -> float:
    """Page faults per allocation of a 1 MiB array that is freed again (run in a worker)."""
    import resource

    warm = np.ones(131072)  # the first block may fault its pages in once
    del warm
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        block = np.ones(131072)
        del block
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / n


# starting a 2-process LocalCluster and loading the model in each worker: ~10-25 s
# (the workers start with Dask's MALLOC_TRIM_THRESHOLD_=65536: each settles its allocator)
@pytest.mark.slow
def test_dask_local_cluster_runs_the_model_once_per_worker(model):
    """Dask workers give the local numbers, and after their first chunk reuse freed memory
    (at most 1 page fault per 1 MiB block, against 256 under Dask's trim setting)."""
    distributed = pytest.importorskip("distributed")
    tpl = ScheduleTemplate("20 d")
    d = pd.DataFrame({"field_kA_per_m": np.linspace(8, 18, 6), "n_sessions": [1, 2, 3, 1, 2, 3]})
    ev = ModelEvaluator(tpl, ["final_volume_treated_mm3", "cem43_total_min"])
    local = en.run_ensemble(ev, d, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as client:
            res = en.run_ensemble(ev, d, client=client, chunk_size=1, progress=False)
            # the workers are settled: a freed 1 MiB block is reused, no page faults in
            faults = client.run(_faults_per_block)
    assert res.n_failed == 0
    assert all(f <= 1.0 for f in faults.values()), faults
    pd.testing.assert_frame_equal(res.results[ev.output_names], local.results[ev.output_names])


def test_schedule_scan_runs_a_grid(model):
    tpl = ScheduleTemplate("25 d")
    scan = schedule_scan(
        tpl,
        ("session_interval_day", [1, 2]),
        ("pdl1_delay_day", [0, 3, 6]),
        ["final_volume_treated_mm3"],
        progress=False,
    )
    assert len(scan) == 6 and (scan["status"] == "ok").all()
    assert sorted(scan["pdl1_delay_day"].unique()) == [0, 3, 6]


# ------------------------------------------------- days after the first treatment


def test_first_treatment_ignores_rechallenge_and_cd8_depletion():
    plan = (
        mh.Protocol("60 d")
        .rechallenge(time="1 d", volume="50 mm^3")
        .cd8_depletion(time="2 d", dose="10 mg/kg")
        .anti_pdl1(time="9 d", dose="10 mg/kg")
        .bso(time="8 d", dose="100 mg/kg")
    )
    assert plan.first_treatment_h == pytest.approx(8 * 24.0)
    assert mh.Protocol("10 d").rechallenge(time="1 d", volume="5 mm^3").first_treatment_h is None


def test_relative_readout_counts_days_from_the_first_treatment_of_each_run():
    """``VAR@+D`` reads day D after the first treatment; moving the schedule by 2 days moves
    the reading day with it (identical readouts for a time-shifted untreated tumour are not
    expected, so compare with the absolute readout at the shifted day)."""
    r = catalogue.parse_readout("cure<=10@+50")
    assert (r.kind, r.day, r.threshold, r.relative) == ("cure", 50.0, 10.0, True)
    t = ScheduleTemplate("60 d")
    ev = ModelEvaluator(
        t,
        {
            "rel": "tumour_volume_treated@+3",
            "abs7": "tumour_volume_treated@10",
            "abs9": "tumour_volume_treated@12",
        },
    )
    out = en.run_ensemble(ev, pd.DataFrame({"mh_start_day": [7.0, 9.0]}), progress=False).results
    assert out.loc[0, "rel"] == pytest.approx(out.loc[0, "abs7"], rel=1e-12)
    assert out.loc[1, "rel"] == pytest.approx(out.loc[1, "abs9"], rel=1e-12)
    untreated = en.run_ensemble(
        ev, pd.DataFrame({"n_sessions": [0.0], "pdl1_count": [0.0]}), progress=False, warn=False
    ).results
    assert untreated.loc[0, "status"] != "ok"
    assert "no treatment" in untreated.loc[0, "message"]


def test_cdt_factor_adds_iron_agent_before_each_session():
    t = ScheduleTemplate("20 d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        plan = t.build({"cdt": 1, "cdt_lead_h": 3, "cdt_dose_mg_per_kg": 8})
    cdt = [b for b in plan.boluses() if b.kind == "cdt"]
    starts = [s.start_h for s in plan.mh_sessions()]
    assert [b.time_h for b in cdt] == pytest.approx([s - 3 for s in starts])
    assert all(b.amount == 8 and b.options["metal"] == "fe" for b in cdt)
    with pytest.raises(ProtocolError, match="factor.cdt: must be 0 or 1"):
        t.build({"cdt": 2})


def test_feedback_factor_thermostats_sessions_so_cem43_follows_session_length(model):
    """With feedback at 43 °C, CEM43 = minutes at 43 °C (Sapareto & Dewey 1984): doubling the
    session length adds the added minutes of thermal dose, slightly fewer because the
    thermostat band (0.1 °C) holds the mean a little under the target (R^-0.1 ≈ 0.93; one
    more degree below would give 0.5)."""
    t = ScheduleTemplate(
        "12 d",
        feedback=1,
        target_temperature="43 degC",
        n_sessions=1,
        pdl1_count=0,
        field="18 kA/m",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        plan = t.build({"session_duration_min": 30})
    assert plan.mh_sessions()[0].target_C == 43.0
    ev = ModelEvaluator(t, {"cem": "cem43_total_min", "peak": "peak_temperature_C"})
    out = en.run_ensemble(
        ev, pd.DataFrame({"session_duration_min": [30.0, 60.0]}), progress=False
    ).results
    assert out["peak"].max() == pytest.approx(43.0, abs=0.5)
    assert 0.85 * 30.0 <= out.loc[1, "cem"] - out.loc[0, "cem"] <= 30.0


def test_executor_argument_gives_the_results_of_the_old_arguments():
    from mhimmune.runs.executor import SerialExecutor, WorkerPool, make_executor

    d = design(12)
    reference = en.run_ensemble(linear, d, progress=False)
    assert isinstance(make_executor(1), SerialExecutor)
    with make_executor(n_jobs=2) as pool:
        assert isinstance(pool, WorkerPool) and pool.n_workers == 2
        res = en.run_ensemble(linear, d, executor=pool, chunk_size=5, progress=False)
        assert not pool.closed  # a given executor stays open
    pd.testing.assert_frame_equal(
        res.results.drop(columns="seconds"), reference.results.drop(columns="seconds")
    )
    with pytest.raises(ParameterError, match="executor"):
        en.run_ensemble(linear, d, executor=SerialExecutor(), client="tcp://x:1", progress=False)


def test_source_fingerprint_follows_presets_and_tables_but_not_the_bibliography(
    tmp_path, monkeypatch
):
    """The fingerprint that invalidates resume stores changes when a preset TOML or a
    parameter table changes, and stays when only the bibliography (references.tsv) does."""
    import mhimmune.runs.evaluator as evaluator

    models, params = tmp_path / "models", tmp_path / "parameters"
    (params / "model").mkdir(parents=True)
    models.mkdir()
    (models / "m.py").write_text("x = 1\n")
    (params / "model" / "t.tsv").write_text("parameterId\tvalue\nk\t1\n")
    (params / "tumours.toml").write_text("[tumours.a]\nk = 1\n")
    (params / "references.tsv").write_text("key\tauthors\n")
    monkeypatch.setattr(evaluator, "resource_dir", lambda name: tmp_path / name)
    base = evaluator.source_fingerprint()
    (params / "references.tsv").write_text("key\tauthors\nnew\tSomeone\n")
    assert evaluator.source_fingerprint() == base
    (params / "tumours.toml").write_text("[tumours.a]\nk = 2\n")
    preset = evaluator.source_fingerprint()
    assert preset != base
    (params / "model" / "t.tsv").write_text("parameterId\tvalue\nk\t3\n")
    assert evaluator.source_fingerprint() not in (base, preset)
