"""SBML and BNGL exports carry the whole model and its schedule: other simulators
(libroadrunner, BioNetGen) reproduce mhimmune's own trajectories."""

import subprocess
import warnings

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.resources import resource_dir
from mhimmune.interop import export
from mhimmune.mh.field_safety import HfWarning

from .conftest import load_protocol

roadrunner = pytest.importorskip("roadrunner")
libsbml = pytest.importorskip("libsbml")

#: relative agreement required on every state above its absolute tolerance
REL = 1e-4
#: tight tolerances for both integrators, so that their difference is far below REL
MH_TOL = dict(rtol=1e-10, atol=1e-12)
RR_RTOL, RR_ATOL = 1e-10, 1e-12


def state_tolerance(states: np.ndarray) -> np.ndarray:
    """Absolute tolerance of each state for the comparison: 1e-6 of its largest value
    (at least 1e-9). Below it a decaying state (antibody depot after absorption,
    heat-killed cells) carries only the absolute accuracy of the integrators."""
    return np.maximum(1e-6 * np.abs(states).max(axis=0), 1e-9)


def assert_states_match(model, time_h, reference, other, breakpoints, what):
    """Every state above its tolerance agrees within REL at every time but breakpoints
    (where one value is before and the other after a dose)."""
    keep = ~np.isin(np.round(time_h, 9), np.round(breakpoints, 9))
    ref, oth = reference[keep], other[keep]
    above = np.abs(ref) > state_tolerance(reference)
    rel = np.abs(oth - ref) / np.where(above, np.abs(ref), 1.0)
    rel[~above] = 0.0
    i, j = np.unravel_index(np.argmax(rel), rel.shape)
    assert rel[i, j] <= REL, (
        f"{what}: {model.species[j]} at day {time_h[keep][i] / 24:.4f}: "
        f"{oth[i, j]:.10g} vs mhimmune {ref[i, j]:.10g} (relative {rel[i, j]:.2e})"
    )
    assert above.sum() > 0.5 * above.size  # the comparison covers most of the trajectory


def run_roadrunner(sbml: str, model, time_h: np.ndarray) -> np.ndarray:
    """States at *time_h* simulated by libroadrunner (CVODE; events stop the integrator)."""
    rr = roadrunner.RoadRunner(sbml)
    rr.timeCourseSelections = ["time", *export.species_ids(model)]
    rr.integrator.relative_tolerance = RR_RTOL
    # a vector: libroadrunner multiplies a scalar absolute tolerance by each state's
    # initial value, which leaves states that start at 0 without any (CVODE then stalls)
    rr.integrator.absolute_tolerance = [RR_ATOL] * len(model.species)
    rr.integrator.maximum_num_steps = 200_000
    out = np.asarray(rr.simulate(times=list(time_h)))
    np.testing.assert_allclose(out[:, 0], time_h)
    return out[:, 1:]


@pytest.fixture(scope="module")
def default_protocol():
    return load_protocol("mh_plus_pdl1")


def test_libroadrunner_reproduces_default_protocol(model, default_protocol):
    """The SBML export of MH + anti-PD-L1 (three 30-min sessions, three antibody doses as
    events) simulated by libroadrunner matches mhimmune within 1e-4 relative on every
    state, through every session and dose, over 40 days."""
    res = mh.simulate(model, default_protocol, **MH_TOL)
    sbml = export.to_sbml(model, default_protocol)
    rr_states = run_roadrunner(sbml, model, res.time_h)
    assert_states_match(
        model, res.time_h, res.states, rr_states, default_protocol.breakpoints(), "libroadrunner"
    )
    # the heating really happened in both (a schedule that was stepped over would not heat)
    theta = model.species.index("Theta") if "Theta" in model.species else None
    if theta is not None:
        assert rr_states[:, theta].max() == pytest.approx(res.states[:, theta].max(), rel=1e-4)
        assert res.states[:, theta].max() > 1.0


def _kinds_protocol(model):
    """A short protocol with a feedback-controlled session and doses at t = 0 and later,
    using the dose kinds this model accepts."""
    kinds = set(model.compiled.bolus_kinds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        plan = (
            mh.Protocol("3 d", name="start events")
            .mh_session(
                start="0 h",
                duration="45 min",
                field="20 kA/m",
                frequency="200 kHz",
                agent="fe3o4_19nm_mpeg",
                dose="4 mg/cm^3",
                target="43 degC",
            )
            .mh_session(
                start="1 d",
                duration="20 min",
                field="12 kA/m",
                frequency="250 kHz",
                agent="fe3o4_19nm_mpeg",
                dose="2 mg/cm^3",
            )
        )
        if "anti_pdl1" in kinds:
            plan = plan.anti_pdl1(time="0 h", dose="10 mg/kg", every="1 d", count=2)
        if "cdt:fe" in kinds:
            plan = plan.cdt(time="1 d", dose="5 mg/kg", metal="fe")
    return plan


def test_start_events_feedback_and_top_up_match(model):
    """Doses and a feedback-controlled session at t = 0 (folded into initial values), a
    smaller second particle dose (top-up = max, so the higher remaining iron is kept) and
    simultaneous doses of several kinds give the same trajectories in libroadrunner."""
    plan = _kinds_protocol(model)
    res = mh.simulate(model, plan, **MH_TOL, output_step="2 h")
    sbml = export.to_sbml(model, plan)
    rr_states = run_roadrunner(sbml, model, res.time_h)
    assert_states_match(
        model, res.time_h, res.states, rr_states, plan.breakpoints(), "libroadrunner"
    )


def test_sbml_document_is_level3_with_events_and_units(model, default_protocol):
    doc = export.to_sbml_document(model, default_protocol)
    sm = doc.getModel()
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    assert sm.getNumSpecies() == len(model.species)
    assert sm.getNumReactions() >= 1
    assert sm.getNumEvents() == len(
        [t for t in default_protocol.breakpoints() if 0 < t < default_protocol.duration_h]
    )
    for i in range(sm.getNumEvents()):
        trigger = sm.getEvent(i).getTrigger()
        assert trigger.getPersistent() and libsbml.formulaToL3String(trigger.getMath()).startswith(
            "time >="
        )
    ids = export.species_ids(model)
    assert len(set(ids)) == len(ids) and all(sm.getSpecies(s) is not None for s in ids)
    # every parameter whose unit has an SBML form carries it; the model's time unit is the hour
    time_unit = sm.getUnitDefinition(sm.getTimeUnits())
    assert time_unit.getUnit(0).getMultiplier() == pytest.approx(3600.0)
    with_units = [n for n in model.parameter_names if sm.getParameter(n).isSetUnits()]
    assert len(with_units) > 0.8 * len(model.parameter_names)
    # overrides reach the export
    name = model.parameter_names[0]
    value = float(model.parameter_vector({})[model.compiled.parameters.index(name)])
    doc2 = export.to_sbml_document(
        model, None, {name: 2 * float(model.table.frame.loc[name, "value"])}
    )
    assert doc2.getModel().getParameter(name).getValue() == pytest.approx(2 * value)


def test_bngl_schedule_runs_in_bionetgen_and_matches(model, tmp_path, default_protocol):
    """BioNetGen runs the BNGL export (network, then the schedule as simulate phases with
    setParameter/addConcentration) and reproduces mhimmune's trajectories."""
    from pysb.pathfinder import get_path

    path = export.write(model, "bngl", tmp_path / "model.bngl", default_protocol)
    run = subprocess.run(
        ["perl", get_path("bng"), path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    cdat = np.loadtxt(tmp_path / "model_schedule.cdat")
    assert cdat.shape[1] == len(model.species) + 1
    res = mh.simulate(model, default_protocol, **MH_TOL)
    rows = {round(t, 9): i for i, t in enumerate(res.time_h)}
    common = [(i, rows[round(t, 9)]) for i, t in enumerate(cdat[:, 0]) if round(t, 9) in rows]
    assert len(common) > 100
    bng = cdat[[i for i, _ in common], 1:]
    ref = res.states[[k for _, k in common]]
    keep = ~np.isin(
        np.round(res.time_h[[k for _, k in common]], 9), np.round(default_protocol.breakpoints(), 9)
    )
    above = np.abs(ref) > state_tolerance(res.states)
    rel = np.where(above, np.abs(bng - ref) / np.where(above, np.abs(ref), 1.0), 0.0)[keep]
    assert rel.max() <= REL, model.species[int(np.argmax(rel.max(axis=0)))]


def test_conditions_document_selects_each_protocol(model):
    """One SBML for several protocols (PEtab conditions): setting a protocol's schedule
    values reproduces that protocol's simulation."""
    plans = {"short_mh": _kinds_protocol(model), "untreated": mh.Protocol("3 d", name="untreated")}
    doc, values = export.conditions_document(model, plans)
    assert list(values.index) == list(plans)
    for cid, plan in plans.items():
        for name, value in values.loc[cid].items():  # what a PEtab tool does per condition
            doc.getModel().getParameter(name).setValue(float(value))
        res = mh.simulate(model, plan, **MH_TOL, output_step="2 h")
        rr_states = run_roadrunner(libsbml.writeSBMLToString(doc), model, res.time_h)
        assert_states_match(model, res.time_h, res.states, rr_states, plan.breakpoints(), cid)


def test_cli_export_writes_sbml_and_bngl(tmp_path, capsys):
    mh_toml = str(resource_dir("protocols") / "mh.toml")
    assert (
        main(
            [
                "export",
                "sbml",
                "--protocol",
                mh_toml,
                "--set",
                "tumour_growth_rate=0.3",
                "--out",
                str(tmp_path / "mh.xml"),
            ]
        )
        == 0
    )
    assert "wrote SBML" in capsys.readouterr().out
    doc = libsbml.readSBMLFromFile(str(tmp_path / "mh.xml"))
    assert doc.getModel().getNumEvents() >= 6
    assert main(["export", "bngl", "--out", str(tmp_path / "net.bngl")]) == 0
    text = (tmp_path / "net.bngl").read_text()
    assert "begin reaction rules" in text and "begin actions" not in text
    assert not list(tmp_path.glob(".*"))
    assert (
        main(["export", "sbml", "--protocol", "missing.toml", "--out", str(tmp_path / "x.xml")])
        == 2
    )
    assert "protocol file not found" in capsys.readouterr().err
