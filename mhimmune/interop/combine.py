"""A simulation experiment as a COMBINE archive (OMEX): SBML model + SED-ML.

The archive is what tellurium, COPASI and other SED-ML tools open: a zip holding

* ``manifest.xml`` (the OMEX manifest: one entry per file, with its format),
* ``model.xml``, the SBML export of the model with the protocol's schedule as events
  (:func:`mhimmune.interop.sbml.to_sbml`; time in hours), and
* ``simulation.sedml``, a SED-ML Level 1 Version 3 document: a uniform time course from 0
  to the protocol's duration with an output every :data:`OUTPUT_STEP_H` hours (all steps
  evenly a little shorter when the duration is not a multiple), solved by CVODE (KISAO:0000019)
  with the given tolerances; data generators for time (hours and days), the tumour
  volumes, the tumour temperature, CEM43 and a few immune observables (those the model
  has); a report of them all and three plots (tumour volumes, heating, immune cells).

Data generators take values from the SBML by identifier (``sbml:parameter`` for PySB
observables and expressions, ``sbml:species`` for states), so each tool reports the
same quantities mhimmune calls by these names.

>>> write_combine(model, protocol, "mh.omex")
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.io import atomic_path
from mhimmune.core.model import Model
from mhimmune.interop.sbml import to_sbml_document
from mhimmune.mh.protocol import Protocol

__all__ = [
    "write_combine",
    "to_sedml",
    "sedml_time_course",
    "OUTPUT_STEP_H",
    "OUTPUTS",
    "SBML_FORMAT",
    "SEDML_FORMAT",
    "MODEL_FILE",
    "SEDML_FILE",
]

#: spacing of the SED-ML's output time points, hours
OUTPUT_STEP_H = 6.0
#: file names inside the archive
MODEL_FILE, SEDML_FILE = "model.xml", "simulation.sedml"
#: OMEX manifest formats (identifiers.org COMBINE specifications)
_SPEC = "http://identifiers.org/combine.specifications/"
SBML_FORMAT = _SPEC + "sbml.level-3.version-2"
SEDML_FORMAT = _SPEC + "sed-ml.level-1.version-3"
_OMEX_FORMAT, _MANIFEST_FORMAT = _SPEC + "omex", _SPEC + "omex-manifest"
_SBML_LANGUAGE = "urn:sedml:language:sbml.level-3.version-2"
_SBML_NS = "http://www.sbml.org/sbml/level3/version2/core"
_SEDML_NS = "http://sed-ml.org/sed-ml/level1/version3"
_MATHML_NS = "http://www.w3.org/1998/Math/MathML"

#: data generators: (SBML id, label, group); group names the plot they appear in
OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("tumour_volume_treated", "treated tumour volume (mm^3)", "tumour"),
    ("tumour_volume_distant", "distant tumour volume (mm^3)", "tumour"),
    ("temperature_C", "tumour temperature (degC)", "heating"),
    ("cem43_min", "CEM43 (min)", "heating"),
    ("dc_mature", "mature dendritic cells, treated-site node (1e6 cells)", "immune"),
    ("cd8_effector_treated", "CD8 effectors, treated tumour (1e6 cells)", "immune"),
    ("cd8_effector_distant", "CD8 effectors, distant tumour (1e6 cells)", "immune"),
    ("treg", "regulatory T cells (1e6 cells)", "immune"),
    ("pdl1_occupancy", "PD-L1 occupancy (fraction)", "immune"),
)
_PLOTS = {
    "tumour": "Tumour volumes",
    "heating": "Tumour temperature and thermal dose",
    "immune": "Immune response",
}

# KiSAO: CVODE and its parameters
_CVODE = "KISAO:0000019"
_RTOL, _ATOL, _MAX_STEPS = "KISAO:0000209", "KISAO:0000211", "KISAO:0000415"


def sedml_time_course(duration_h: float) -> tuple[float, float, int]:
    """``(start, end, number_of_points)`` of the SED-ML uniform time course (hours).

    SED-ML's ``numberOfPoints`` counts intervals: the output has ``number_of_points + 1``
    time points from *start* to *end*, :data:`OUTPUT_STEP_H` apart (the steps shrink
    evenly when the duration is not a multiple).
    """
    if not duration_h > 0:
        raise MhimmuneError(
            f"COMBINE export: the protocol's duration must be > 0 h, got {duration_h}"
        )
    return 0.0, float(duration_h), max(1, math.ceil(duration_h / OUTPUT_STEP_H - 1e-9))


def _sub(parent: ET.Element, tag: str, **attrs: Any) -> ET.Element:
    return ET.SubElement(parent, f"{{{_SEDML_NS}}}{tag}", {k: str(v) for k, v in attrs.items()})


def _math(parent: ET.Element, var: str, divide_by: int | None = None) -> None:
    m = ET.SubElement(parent, f"{{{_MATHML_NS}}}math")
    if divide_by is None:
        ET.SubElement(m, f"{{{_MATHML_NS}}}ci").text = var
        return
    ap = ET.SubElement(m, f"{{{_MATHML_NS}}}apply")
    ET.SubElement(ap, f"{{{_MATHML_NS}}}divide")
    ET.SubElement(ap, f"{{{_MATHML_NS}}}ci").text = var
    ET.SubElement(ap, f"{{{_MATHML_NS}}}cn", {"type": "integer"}).text = str(divide_by)


def to_sedml(
    sbml_doc,
    duration_h: float,
    *,
    model_source: str = MODEL_FILE,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 200_000,
) -> str:
    """SED-ML L1V3 text of a time course of the SBML document *sbml_doc* (libSBML).

    Outputs are the :data:`OUTPUTS` the SBML has (as parameter or species), plus time.
    Written with the standard library: python-libsedml's bindings share SWIG type tables
    with python-libsbml's, and loading both in one process breaks libSBML's element
    casts (the SBML export then fails), so libsedml only reads the result, elsewhere.
    """
    sm = sbml_doc.getModel()
    ET.register_namespace("", _SEDML_NS)
    ET.register_namespace("math", _MATHML_NS)
    # the sbml prefix of the variables' XPath targets (no element uses it, so by hand)
    root = ET.Element(
        f"{{{_SEDML_NS}}}sedML", {"xmlns:sbml": _SBML_NS, "level": "1", "version": "3"}
    )
    _sub(
        _sub(root, "listOfModels"),
        "model",
        id="model",
        name=sm.getName() or sm.getId(),
        language=_SBML_LANGUAGE,
        source=model_source,
    )
    start, end, points = sedml_time_course(duration_h)
    sim = _sub(
        _sub(root, "listOfSimulations"),
        "uniformTimeCourse",
        id="time_course",
        name=f"0 to {end:g} h, output every {end / points:g} h",
        initialTime=repr(start),
        outputStartTime=repr(start),
        outputEndTime=repr(end),
        numberOfPoints=points,
    )
    params = _sub(_sub(sim, "algorithm", kisaoID=_CVODE), "listOfAlgorithmParameters")
    for kisao, value in (
        (_RTOL, repr(float(rtol))),
        (_ATOL, repr(float(atol))),
        (_MAX_STEPS, str(int(max_steps))),
    ):
        _sub(params, "algorithmParameter", kisaoID=kisao, value=value)
    _sub(
        _sub(root, "listOfTasks"),
        "task",
        id="task",
        modelReference="model",
        simulationReference="time_course",
    )

    generators = _sub(root, "listOfDataGenerators")

    def generator(gid: str, label: str, target: dict[str, str], divide_by: int | None = None):
        dg = _sub(generators, "dataGenerator", id=gid, name=label)
        var = f"{gid}_var"
        _sub(_sub(dg, "listOfVariables"), "variable", id=var, taskReference="task", **target)
        _math(dg, var, divide_by)

    time = {"symbol": "urn:sedml:symbol:time"}
    generator("time_h", "time (h)", time)
    generator("time_d", "time (d)", time, divide_by=24)
    present = []
    for sid, label, group in OUTPUTS:
        if sm.getParameter(sid) is not None:
            kind = "listOfParameters/sbml:parameter"
        elif sm.getSpecies(sid) is not None:
            kind = "listOfSpecies/sbml:species"
        else:
            continue  # a model without this link
        generator(sid, label, {"target": f"/sbml:sbml/sbml:model/sbml:{kind}[@id='{sid}']"})
        present.append((sid, label, group))

    outputs = _sub(root, "listOfOutputs")
    report = _sub(outputs, "report", id="report", name="time course")
    datasets = _sub(report, "listOfDataSets")
    for gid, label in [("time_h", "time (h)"), *((s, lab) for s, lab, _ in present)]:
        _sub(datasets, "dataSet", id=f"ds_{gid}", name=label, label=label, dataReference=gid)
    for group, title in _PLOTS.items():
        members = [(s, lab) for s, lab, g in present if g == group]
        if not members:
            continue
        curves = _sub(_sub(outputs, "plot2D", id=f"plot_{group}", name=title), "listOfCurves")
        for sid, label in members:
            _sub(
                curves,
                "curve",
                id=f"curve_{sid}",
                name=label,
                logX="false",
                logY="false",
                xDataReference="time_d",
                yDataReference=sid,
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _manifest() -> str:
    rows = [
        (".", _OMEX_FORMAT, False),
        ("./manifest.xml", _MANIFEST_FORMAT, False),
        (f"./{MODEL_FILE}", SBML_FORMAT, False),
        (f"./{SEDML_FILE}", SEDML_FORMAT, True),
    ]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<omexManifest xmlns="http://identifiers.org/combine.specifications/omex-manifest">',
        *(
            f'  <content location="{loc}" format="{fmt}"'
            + (' master="true"' if master else "")
            + "/>"
            for loc, fmt, master in rows
        ),
        "</omexManifest>",
        "",
    ]
    return "\n".join(lines)


def write_combine(
    model: Model,
    protocol: Protocol,
    path: str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> Path:
    """Write *model* under *protocol* (with *params* overrides) as a COMBINE archive.

    The archive holds the SBML (schedule as events), a SED-ML time course over the
    protocol's duration with outputs every :data:`OUTPUT_STEP_H` h, and the manifest;
    *rtol*, *atol* are the CVODE tolerances written into the SED-ML. Written atomically;
    returns *path*.
    """
    if not isinstance(protocol, Protocol):
        raise MhimmuneError("COMBINE export needs a protocol (the simulation experiment)")
    import libsbml  # a dependency; loaded by to_sbml_document already

    sbml_doc = to_sbml_document(model, protocol, params)
    sedml = to_sedml(sbml_doc, protocol.duration_h, rtol=rtol, atol=atol)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.xml", _manifest())
            z.writestr(MODEL_FILE, libsbml.writeSBMLToString(sbml_doc))
            z.writestr(SEDML_FILE, sedml)
    return Path(path)
