"""The schedule engine: exact segments, boluses, failures, determinism, invariants."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.core.errors import ProtocolError, SolverError
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.physics import cem43

from .conftest import load_protocol


def _quiet(protocol_builder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        return protocol_builder()


def short_session_protocol():
    return _quiet(
        lambda: mh.Protocol("10 d", name="one minute").mh_session(
            start="3 d",
            duration="60 s",
            field="20 kA/m",
            frequency="200 kHz",
            agent="fe3o4_19nm_mpeg",
            dose="10 mg/cm^3",
        )
    )


def test_sixty_second_session_matches_finely_resolved_reference(model):
    """A 60-s MH session changes the 10-day outcome exactly as a reference run does whose
    steps within the session are at most 1 s (and whose tolerances are 100x tighter)."""
    plan = short_session_protocol()
    fast = mh.simulate(model, plan)
    ref = mh.simulate(model, plan, session_max_step="1 s", rtol=1e-8, atol=1e-11)
    base = mh.simulate(model, mh.Protocol("10 d", name="none"))
    # the session matters: thermal dose and temperature are clearly nonzero
    assert fast.summary()["peak_temperature_C"] > 40.0
    assert fast.summary()["cem43_total_min"] > 0.5
    # every state within 1e-4 relative, or 1e-6 absolute for states near zero
    yf, yr = fast.states[-1], ref.states[-1]
    assert np.all(np.abs(yf - yr) <= 1e-4 * np.abs(yr) + 1e-6)
    # and the run without the session differs (the pulse was not stepped over)
    assert (
        abs(base.summary()["final_volume_treated_mm3"] - fast.summary()["final_volume_treated_mm3"])
        > 0.01
    )
    assert fast.summary()["cem43_total_min"] == pytest.approx(
        ref.summary()["cem43_total_min"], rel=1e-5
    )


def test_boluses_land_at_their_times(model):
    """anti-PD-L1 10 mg/kg at day 5 puts 1.333 nmol (20 g mouse, 150 kDa) in the depot at day 5."""
    plan = mh.Protocol("8 d", name="ab").anti_pdl1(time="5 d", dose="10 mg/kg")
    res = mh.simulate(model, plan)
    depot = res["AbDepot"]
    assert depot.loc[:4.999].max() == 0.0
    expected = 10 * 0.02 * 1e6 / 150000
    assert depot.loc[5.0] == pytest.approx(expected, rel=1e-12)
    assert res.breakpoint_states[5 * 24.0][model.species.index("AbDepot")] == 0.0


def test_particle_dose_tops_up_rather_than_adds(model):
    plan = _quiet(
        lambda: mh.Protocol("3 d").mh_session(
            start="1 d",
            duration="10 min",
            field="15 kA/m",
            frequency="200 kHz",
            agent="fe3o4_19nm_mpeg",
            dose="3 mg/cm^3",
            every="1 d",
            count=2,
        )
    )
    res = mh.simulate(model, plan)
    fe = res["ParticleFe"]
    assert fe.loc[1.0] == pytest.approx(3.0, rel=1e-12)
    assert fe.loc[2.0] == pytest.approx(3.0, rel=1e-12)  # topped up to the dose again, not 6


def test_solver_failure_names_segment_time_and_overrides(model):
    plan = load_protocol("mh")
    with pytest.raises(
        SolverError, match=r"segment \d+ \(day .*\) at day .*tumour_growth_rate"
    ) as info:
        mh.simulate(model, plan, {"tumour_growth_rate": 0.5}, max_steps_per_segment=20)
    assert info.value.segment is not None
    assert info.value.overrides == {"tumour_growth_rate": 0.5}


def test_same_inputs_give_identical_outputs(model):
    plan = load_protocol("mh_plus_pdl1")
    a = mh.simulate(model, plan, {"ctl_kill_rate": 0.3})
    b = mh.simulate(model, plan, {"ctl_kill_rate": 0.3})
    assert np.array_equal(a.states, b.states)
    assert np.array_equal(a.time_h, b.time_h)


def test_all_states_non_negative_in_demo_arms(demo_results):
    for name, res in demo_results.items():
        scale = np.maximum(np.abs(res.states).max(axis=0), 1.0)
        assert (res.states / scale).min() > -1e-7, name


def test_dose_kind_without_model_target_is_an_error():
    # the pharmacokinetics link alone has no stress link, hence no CDT depot
    pk_alone = mh.load_model(links=["pharmacokinetics"], standalone=True, verbose=False)
    plan = mh.Protocol("5 d").cdt(time="1 d", dose="5 mg/kg", metal="cu")
    with pytest.raises(ProtocolError, match="no target for dose kind 'cdt:cu'"):
        mh.simulate(pk_alone, plan)


def test_cem43_state_matches_sampled_history(model):
    """The model's CEM43 (an ODE state) equals Sapareto-Dewey on the recorded trace within 1 %."""
    res = mh.simulate(model, load_protocol("mh"), session_output_step="10 s")
    s = res.sessions().iloc[0]
    w = res.wide.loc[7.0 : 9.0 - 1e-9]
    t_min = w.index.values * 24 * 60
    # excess over body temperature, as the model counts it
    expected = cem43(t_min, w["temperature_C"].values) - cem43(t_min, np.full(len(t_min), 37.0))
    assert s["cem43_min"] == pytest.approx(expected, rel=0.01)
    assert 42.0 < s["peak_temperature_C"] < 44.0


def test_tidy_and_wide_tables_agree(demo_results):
    res = demo_results["mh"]
    long = res.to_frame(["temperature_C"])
    assert list(long.columns) == ["arm", "time_day", "variable", "value"]
    assert set(long["arm"]) == {res.protocol.name}
    assert np.allclose(long["value"].values, res["temperature_C"].values)
    assert isinstance(res.summary(), pd.Series)
    with pytest.raises(KeyError, match="close matches"):
        res["temperature"]


def test_glutathione_and_iron_are_conserved_in_closed_runs(model):
    """GSH + GSox (GSH equivalents) and labile + depot iron are conserved to 1e-9 relative
    when synthesis, export, import and sequestration are switched off, under heat + CDT + GOx."""
    plan = _quiet(
        lambda: (
            mh.Protocol("4 d")
            .mh_session(
                start="1 d",
                duration="30 min",
                field="15 kA/m",
                frequency="200 kHz",
                agent="fe3o4_19nm_mpeg",
                dose="3.5 mg/cm^3",
            )
            .cdt(time="1 d", dose="10 mg/kg")
            .glucose_oxidase(time="1 d", dose="5 mg/kg")
        )
    )
    closed = {"gsh_turnover": 0, "fe_sequestration": 0, "particle_fe_labile_fraction": 0}
    res = mh.simulate(model, plan, closed, rtol=1e-10, atol=1e-12)
    s = model.species
    after = res.wide.index.values >= 1.0  # the CDT dose adds iron at day 1
    for cls in ("low", "mid", "high"):
        glut = res.states[:, s.index(f"GSH_{cls}")] + res.states[:, s.index(f"GSox_{cls}")]
        assert np.max(np.abs(glut - glut[0])) / glut[0] < 1e-9
        # labile iron of the class plus the CDT iron depot (one tissue depot feeding every class)
        iron = sum(res.states[:, s.index(n)] for n in (f"Fe_ii_{cls}", f"Fe_iii_{cls}", "CDTFe"))
        assert np.max(np.abs(iron[after] - iron[after][0])) / iron[after][0] < 1e-9
        assert res[f"gsox_uM_{cls}"].max() > 1e-6  # the chemistry ran


def test_mh_slows_treated_tumour_and_anti_pdl1_alone_acts_modestly(demo_results):
    """Default parameters: MH alone slows the treated tumour (day 15 volume lower than
    untreated by >20 %); anti-PD-L1 alone slows the distant tumour by less than half at
    day 21 (measured 18 %; more in tests/test_immune.py)."""
    v = {k: r.wide for k, r in demo_results.items()}
    day15 = {k: w["tumour_volume_treated"].loc[15.0] for k, w in v.items()}
    assert day15["mh"] < 0.8 * day15["untreated"]
    day21 = {k: w["tumour_volume_distant"].loc[21.0] for k, w in v.items()}
    assert 0.5 * day21["untreated"] < day21["anti_pdl1"] < day21["untreated"]


def test_compiled_bdf_agrees_with_lsoda(model):
    """The default integrator (compiled NDF/BDF, sparse LU) and scipy's LSODA give the same
    trajectories on the MH + anti-PD-L1 protocol: every recorded value within 1e-4 relative
    or 1e-6 absolute when both run at rtol 1e-8."""
    plan = load_protocol("mh_plus_pdl1")
    a = mh.simulate(model, plan, rtol=1e-8, atol=1e-10)
    b = mh.simulate(model, plan, rtol=1e-8, atol=1e-10, method="lsoda")
    assert np.array_equal(a.time_h, b.time_h)
    assert np.all(np.abs(a.states - b.states) <= 1e-4 * np.abs(b.states) + 1e-6)


def test_sparse_lu_solves_the_newton_system(model):
    """The static-pivot sparse LU of I - cJ solves like a dense solver (1e-9 relative)."""
    c = model.compiled
    p = model.parameter_vector()
    y = c.init(p) + 0.1
    J = c.jac(y, 0.0, p)
    rng = np.random.default_rng(1)
    for cc in (1e-4, 0.1, 3.0):
        b = rng.random(len(y))
        x = c.newton_solve(y, p, cc, b)
        ref = np.linalg.solve(np.eye(len(y)) - cc * J, b)
        assert np.allclose(x, ref, rtol=1e-9, atol=1e-12)


def test_backends_agree(monkeypatch):
    """The C and numba backends generate the same model: identical right-hand sides and
    Jacobians (1e-12 relative) and trajectories within 1e-8 relative, through the three
    MH sessions of the shipped MH protocol. Checked on the heating and tumour links (19
    species): numba compiles the whole model in minutes, and both backends print every
    expression through the same generator."""
    from mhimmune.core.compile import c_compiler

    if c_compiler() is None:
        pytest.skip("no C compiler: only the numba backend is available")
    links = ["heating", "tumour"]
    built = {}
    for backend in ("c", "numba"):
        monkeypatch.setenv("MHIMMUNE_BACKEND", backend)
        built[backend] = mh.load_model(links=links, standalone=True, verbose=False)
        assert built[backend].compiled.backend == backend
    c, nb = built["c"], built["numba"]
    p = c.parameter_vector()
    y = c.compiled.init(p) * 1.1 + 0.01
    assert np.allclose(
        c.compiled.rhs(y, 0.0, p), nb.compiled.rhs(y, 0.0, p), rtol=1e-12, atol=1e-12
    )
    assert np.allclose(
        c.compiled.jac(y, 0.0, p), nb.compiled.jac(y, 0.0, p), rtol=1e-12, atol=1e-12
    )
    plan = load_protocol("mh")
    a, b = mh.simulate(c, plan), mh.simulate(nb, plan)
    assert np.abs(a.states[-1] - a.states[0]).max() > 1.0  # the run moved
    assert np.allclose(a.states, b.states, rtol=1e-8, atol=1e-12)
    # one algorithm: the same steps, right-hand sides, Jacobian (re-)evaluations, LU
    # factorisations, linear solves and rejected steps
    assert a.status == b.status


def test_one_call_schedule_computes_bitwise_what_the_segment_loop_does(model, monkeypatch):
    """The C library's ``integrate_schedule`` (every segment, jump, input switch and
    derived row in one call) gives bitwise the states, derived quantities, breakpoint
    states and solver counts of the segment-by-segment loop it replaces, through the three
    sessions and the antibody doses of the shipped MH + anti-PD-L1 protocol, at the
    single-run and the ensemble tolerances."""
    if model.compiled.backend != "c":
        pytest.skip("the one-call schedule is a C-backend path")
    plan = load_protocol("mh_plus_pdl1")
    options = ({}, {"rtol": 1e-4, "atol": 1e-6})
    fast = [mh.simulate(model, plan, {"ctl_kill_rate": 0.3}, **o) for o in options]
    monkeypatch.delattr(type(model.compiled.module), "integrate_schedule")
    loop = [mh.simulate(model, plan, {"ctl_kill_rate": 0.3}, **o) for o in options]
    for a, b in zip(fast, loop):
        assert a.status == b.status and a.status.segments >= 7
        assert np.array_equal(a.time_h, b.time_h)
        assert np.array_equal(a.states, b.states)
        assert np.array_equal(a.derived, b.derived)
        assert list(a.breakpoint_states) == list(b.breakpoint_states)
        for t, y in a.breakpoint_states.items():
            assert np.array_equal(y, b.breakpoint_states[t])


def test_jacobian_is_reused_across_steps(model):
    """The BDF kernel keeps its Jacobian across steps: a fresh one at the start of every
    segment, then at most every 10 steps or after a Newton convergence failure; on the
    default protocol fewer than one Jacobian per 8 steps."""
    res = mh.simulate(model, load_protocol("mh_plus_pdl1"))
    s = res.status
    assert s.segments <= s.jacobian_evaluations < s.steps / 8


def test_unknown_integrator_is_an_error(model):
    with pytest.raises(ProtocolError, match="method: must be 'bdf' or 'lsoda'"):
        mh.simulate(model, mh.Protocol("1 d"), method="rk45")
