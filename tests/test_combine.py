"""COMBINE archive (SBML + SED-ML) of a simulation experiment, and SBO terms on the SBML:
what tellurium or COPASI users open reproduces mhimmune's trajectories."""

import contextlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.errors import MhimmuneError
from mhimmune.core.resources import resource_dir
from mhimmune.interop import combine, export
from mhimmune.interop.sbml import parameter_sbo

from .conftest import load_protocol
from .test_export import MH_TOL, REL, assert_states_match, run_roadrunner

libsbml = pytest.importorskip("libsbml")
roadrunner = pytest.importorskip("roadrunner")

SPEC = "http://identifiers.org/combine.specifications/"
MANIFEST_NS = {"m": SPEC + "omex-manifest"}
#: agreement required of a SED-ML executor (tellurium) on the tumour volumes
EXECUTOR_REL = 1e-3


#: libsedml and libsbml must not share a process (their SWIG type tables collide and
#: libSBML's element casts break), so libsedml and tellurium run in a child interpreter
READ_SEDML = """
import json, re, sys, zipfile, libsedml
d = libsedml.readSedMLFromString(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())
sim = d.getSimulation(0)
dgs = [d.getDataGenerator(i) for i in range(d.getNumDataGenerators())]
print(json.dumps({
    "errors": [d.getError(i).getMessage() for i in range(d.getNumErrors())
               if d.getError(i).getSeverity() >= libsedml.LIBSEDML_SEV_ERROR],
    "level": [d.getLevel(), d.getVersion()],
    "source": d.getModel(0).getSource(),
    "uniform": sim.getTypeCode() == libsedml.SEDML_SIMULATION_UNIFORMTIMECOURSE,
    "time_course": [sim.getOutputStartTime(), sim.getOutputEndTime(), sim.getNumberOfPoints()],
    "kisao": sim.getAlgorithm().getKisaoID(),
    "targets": {g.getId(): re.search("@id='([^']+)'", g.getVariable(0).getTarget()).group(1)
                for g in dgs if g.getVariable(0).isSetTarget()},
    "outputs": sorted({libsedml.SedTypeCode_toString(d.getOutput(i).getTypeCode())
                       for i in range(d.getNumOutputs())}),
}))
"""
RUN_TELLURIUM = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import numpy as np, tellurium as te
(result,) = te.executeCombineArchive(sys.argv[1], createOutputs=False).values()
print(json.dumps({g: np.asarray(a, dtype=float).ravel().tolist()
                  for g, a in result["dataGenerators"].items()}))
"""


def _child(script: str, *args: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _sedml(archive) -> dict:
    if importlib.util.find_spec("libsedml") is None:
        pytest.skip("python-libsedml is not installed (pip install python-libsedml)")
    return _child(READ_SEDML, str(archive), combine.SEDML_FILE)


def _time_course(archive) -> tuple[float, float, int]:
    """(start, end, points) of the uniform time course: libsedml's reading if it is
    installed, else the XML's attributes."""
    if importlib.util.find_spec("libsedml") is not None:
        start, end, points = _sedml(archive)["time_course"]
        return start, end, int(points)
    with zipfile.ZipFile(archive) as z:
        root = ET.fromstring(z.read(combine.SEDML_FILE))
    utc = root.find(".//{*}uniformTimeCourse")
    return (
        float(utc.get("outputStartTime")),
        float(utc.get("outputEndTime")),
        int(utc.get("numberOfPoints")),
    )


@pytest.fixture(scope="module")
def protocol():
    return load_protocol("mh_plus_pdl1")


@pytest.fixture(scope="module")
def archive(tmp_path_factory, protocol):
    """The archive of MH + anti-PD-L1, written through the command line."""
    out = tmp_path_factory.mktemp("omex") / "mh_plus_pdl1.omex"
    toml = str(resource_dir("protocols") / "mh_plus_pdl1.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the protocol's H·f note
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["export", "combine", "--protocol", toml, "--out", str(out)]) == 0
    assert "wrote COMBINE archive" in printed.getvalue()
    return out


@pytest.fixture(scope="module")
def reference(model, protocol):
    """mhimmune's own trajectories at tight tolerances (output every 6 h and finer)."""
    return mh.simulate(model, protocol, **MH_TOL)


def test_archive_is_a_zip_with_manifest(archive):
    assert zipfile.is_zipfile(archive)
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        root = ET.fromstring(z.read("manifest.xml"))
    entries = {
        c.get("location").removeprefix("./"): c.get("format")
        for c in root.findall("m:content", MANIFEST_NS)
    }
    assert entries["."] == SPEC + "omex"
    sbml = [loc for loc, fmt in entries.items() if fmt.startswith(SPEC + "sbml")]
    sedml = [loc for loc, fmt in entries.items() if fmt.startswith(SPEC + "sed-ml")]
    assert sbml == [combine.MODEL_FILE] and sedml == [combine.SEDML_FILE]
    assert {*sbml, *sedml, "manifest.xml"} <= names
    master = [c.get("location") for c in root.findall("m:content", MANIFEST_NS) if c.get("master")]
    assert master == [f"./{combine.SEDML_FILE}"]
    with zipfile.ZipFile(archive) as z:
        doc = libsbml.readSBMLFromString(z.read(combine.MODEL_FILE).decode())
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    assert doc.getModel().getNumEvents() >= 6  # the schedule


def test_libsedml_reads_the_experiment(archive, protocol):
    info = _sedml(archive)
    assert not info["errors"]
    assert info["level"] == [1, 3] and info["source"] == combine.MODEL_FILE
    assert info["uniform"] and info["kisao"] == "KISAO:0000019"
    start, end, points = info["time_course"]
    assert end == pytest.approx(protocol.duration_h)
    assert (end - start) / points == pytest.approx(combine.OUTPUT_STEP_H)
    assert {
        "tumour_volume_treated",
        "tumour_volume_distant",
        "temperature_C",
        "cem43_min",
        "cd8_effector_treated",
        "dc_mature",
    } <= set(info["targets"])
    assert {"Report", "Plot2D"} <= set(info["outputs"])


def _shared(times_a, times_b):
    """Index pairs of the times *times_a* and *times_b* have in common (to 1e-9 h)."""
    rows = {round(float(t), 9): k for k, t in enumerate(times_b)}
    return [
        (i, rows[round(float(t), 9)]) for i, t in enumerate(times_a) if round(float(t), 9) in rows
    ]


def test_sedml_time_course_in_libroadrunner_matches(archive, model, protocol, reference):
    """The archived SBML over the SED-ML's own time course (start, end, points read with
    libsedml), run in libroadrunner, matches mhimmune on every state within the SBML
    export's tolerance, and the quantities the data generators name match too."""
    start, end, points = _time_course(archive)
    times = np.linspace(start, end, points + 1)
    with zipfile.ZipFile(archive) as z:
        sbml = z.read(combine.MODEL_FILE).decode()
    pairs = _shared(times, reference.time_h)
    assert len(pairs) == len(times)  # mhimmune's output has every SED-ML time point
    ref_states = reference.states[[k for _, k in pairs]]
    rr_states = run_roadrunner(sbml, model, times)
    assert_states_match(
        model, times, ref_states, rr_states, protocol.breakpoints(), "SED-ML time course"
    )
    # the data generators' targets: readable in libroadrunner, equal to mhimmune's names
    with zipfile.ZipFile(archive) as z:
        sedml = ET.fromstring(z.read(combine.SEDML_FILE))
    targets = {
        dg.get("id"): re.search(r"@id='([^']+)'", var.get("target")).group(1)
        for dg in sedml.iter()
        if dg.tag.endswith("}dataGenerator")
        for var in dg.iter()
        if var.tag.endswith("}variable") and var.get("target")
    }
    assert {"tumour_volume_treated", "tumour_volume_distant", "cem43_min"} <= set(targets)
    rr = roadrunner.RoadRunner(sbml)
    rr.timeCourseSelections = ["time", *targets.values()]
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = [1e-12] * len(model.species)
    rr.integrator.maximum_num_steps = 200_000
    out = np.asarray(rr.simulate(times=list(times)))
    keep = ~np.isin(np.round(times, 9), np.round(protocol.breakpoints(), 9))
    for j, (gid, sid) in enumerate(targets.items(), start=1):
        ref = np.asarray(reference[sid])[[k for _, k in pairs]][keep]
        got = out[keep, j]
        floor = max(1e-6 * np.abs(ref).max(), 1e-9)
        assert np.all(np.abs(got - ref) <= REL * np.maximum(np.abs(ref), floor)), gid


@pytest.mark.skipif(
    importlib.util.find_spec("tellurium") is None,
    reason="tellurium (a SED-ML executor) is not installed; pip install tellurium to run",
)
def test_tellurium_executes_the_archive(archive, reference):
    """tellurium runs the archive as a tellurium or COPASI user would, and its tumour
    volumes match mhimmune's within 1e-3 relative at the shared time points."""
    dgs = _child(RUN_TELLURIUM, str(archive))
    times = np.asarray(dgs["time_h"], dtype=float).ravel()
    pairs = _shared(times, reference.time_h)
    assert len(pairs) > 0.9 * len(times)
    for name in ("tumour_volume_treated", "tumour_volume_distant"):
        got = np.asarray(dgs[name], dtype=float).ravel()[[i for i, _ in pairs]]
        ref = np.asarray(reference[name])[[k for _, k in pairs]]
        floor = max(1e-6 * np.abs(ref).max(), 1e-9)
        assert np.all(np.abs(got - ref) <= EXECUTOR_REL * np.maximum(np.abs(ref), floor)), name


def test_time_course_and_missing_protocol(model, tmp_path, capsys):
    assert combine.sedml_time_course(960.0) == (0.0, 960.0, 160)
    assert combine.sedml_time_course(10.0) == (0.0, 10.0, 2)  # 5-h steps, end kept
    with pytest.raises(MhimmuneError, match="needs a protocol"):
        export.write(model, "combine", tmp_path / "x.omex")
    assert main(["export", "combine", "--out", str(tmp_path / "x.omex")]) == 2
    assert "needs a protocol" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_sbml_has_sbo_terms(model, protocol):
    """Every species, parameter and reaction carries an SBO term of the right branch:
    cells material entities, small molecules simple chemicals, per-time parameters kinetic
    constants, and the document stays valid (SBO consistency checks included)."""
    doc = export.to_sbml_document(model, protocol)
    sm = doc.getModel()
    species = [sm.getSpecies(i) for i in range(sm.getNumSpecies())]
    parameters = [sm.getParameter(i) for i in range(sm.getNumParameters())]
    assert all(s.isSetSBOTerm() for s in species), [
        s.getId() for s in species if not s.isSetSBOTerm()
    ]
    assert all(p.isSetSBOTerm() for p in parameters), [
        p.getId() for p in parameters if not p.isSetSBOTerm()
    ]
    assert all(sm.getReaction(i).isSetSBOTerm() for i in range(sm.getNumReactions()))
    sbo = {s.getId(): s.getSBOTermID() for s in species}
    if "Tumour_treated_viable_mid" in sbo:
        assert sbo["Tumour_treated_viable_mid"] == "SBO:0000240"  # material entity
    if "H2O2_mid" in sbo:
        assert sbo["H2O2_mid"] == "SBO:0000247"  # simple chemical
    if "AbPlasma" in sbo:
        assert sbo["AbPlasma"] == "SBO:0000245"  # macromolecule
    per_hour = [n for n in model.parameter_names if model.units.get(n) == "1/h"]
    assert per_hour and all(sm.getParameter(n).getSBOTermID() == "SBO:0000009" for n in per_hour)
    assert parameter_sbo("h") == 347 and parameter_sbo("degC") == 147
    assert parameter_sbo("J/kg/K") == 2 and parameter_sbo(None) == 2
    # SBO consistency: each term from the branch SBML allows for its element
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    doc.checkConsistency()
    sbo_issues = [
        doc.getError(i).getMessage()
        for i in range(doc.getNumErrors())
        if doc.getError(i).getCategory() == libsbml.LIBSBML_CAT_SBO_CONSISTENCY
    ]
    assert not sbo_issues


def test_conditions_document_has_sbo_terms(model):
    plans = {"untreated": mh.Protocol("3 d", name="untreated"), "mh": load_protocol("mh")}
    doc, _ = export.conditions_document(model, plans)
    sm = doc.getModel()
    assert all(sm.getParameter(i).isSetSBOTerm() for i in range(sm.getNumParameters()))
    assert all(sm.getSpecies(i).isSetSBOTerm() for i in range(sm.getNumSpecies()))
