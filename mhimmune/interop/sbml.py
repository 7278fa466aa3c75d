"""Export a model with a treatment schedule to SBML (Level 3 Version 2).

PySB writes the reaction network; mhimmune adds what PySB cannot express, the
schedule (:func:`mhimmune.mh.inputs.protocol_schedule`): one event per breakpoint
``t > 0`` with trigger ``time >= t`` (hours), whose assignments set every scheduled
input (session SAR, field, frequency, feedback target) to its value for the following
segment and apply the doses as state jumps, ``y := y + amount·scale`` or, for a top-up,
``y := max(y, amount·scale)`` (written as ``piecewise``). What happens at ``t = 0`` is
folded into the initial values, so no simulator has to decide whether an event fires at
the start. Parameters carry SBML units (from the internal units of the model) wherever
the unit is not an offset scale such as °C. Species keep readable identifiers
(``Tumour_treated_viable_mid``), observables their PySB names; time is in hours.
:func:`conditions_document` writes one SBML for several protocols whose event values
are parameters set per condition (how :mod:`mhimmune.interop.petab` carries schedules).
Every species, parameter and reaction carries an SBO term (:func:`species_sbo`,
:func:`parameter_sbo`; reactions SBO:0000375 process).

Simulating the SBML in libroadrunner: give the absolute tolerance as a vector
(``rr.integrator.absolute_tolerance = [1e-12] * n_species``); a scalar is multiplied by
each state's value there, which leaves states that start at 0 without one, and CVODE
then stalls after doses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sympy

from mhimmune.core.errors import MhimmuneError, ModelError
from mhimmune.core.model import Model
from mhimmune.core.schedule import Schedule
from mhimmune.core.units import hours_to_days, ureg
from mhimmune.mh.inputs import protocol_schedule
from mhimmune.mh.protocol import Protocol

__all__ = [
    "to_sbml",
    "to_sbml_document",
    "conditions_document",
    "species_ids",
    "sbml_id",
    "scheduled_inputs",
    "species_sbo",
    "parameter_sbo",
]


def _libsbml():
    try:
        import libsbml  # heavy: imported on the first export
    except ImportError as exc:  # pragma: no cover - a dependency
        raise MhimmuneError(
            "SBML export needs python-libsbml (pip install python-libsbml)"
        ) from exc
    return libsbml


def sbml_id(text: str) -> str:
    """A valid SBML identifier made from *text*."""
    s = re.sub(r"\W", "_", text)
    return s if re.match(r"[A-Za-z_]", s) else f"_{s}"


def species_ids(model: Model) -> list[str]:
    """SBML identifiers of the species, in state-vector order (readable, unique)."""
    m = model.pysb  # SBML identifiers PySB's export uses besides species
    taken = {c.name for c in (*m.parameters, *m.expressions, *m.observables)} | {"default", "time"}
    out = []
    for label in model.species:
        sid = sbml_id(label)
        while sid in taken or re.fullmatch(r"r\d+|schedule_\d+.*", sid):  # reactions, events
            sid += "_species"
        taken.add(sid)
        out.append(sid)
    return out


_SBML_KINDS = {
    "meter": "metre",
    "second": "second",
    "kilogram": "kilogram",
    "mole": "mole",
    "ampere": "ampere",
    "kelvin": "kelvin",
    "candela": "candela",
    "cell": "item",
}


def _add_unit(smodel, unit: str, cache: dict[str, str | None]) -> str | None:
    """Id of a UnitDefinition for the pint unit *unit*, created once; None if impossible."""
    if unit in cache:
        return cache[unit]
    libsbml = _libsbml()
    uid = None
    try:
        if re.search(r"(?<!delta_)deg[CF]", unit):
            raise ValueError("offset unit")  # °C is not a multiple of kelvin
        q = ureg.Quantity(1.0, unit)
        base = q.to_base_units()
        parts = [(str(u), float(e)) for u, e in base.unit_items() if str(u) != "fraction"]  # type: ignore[arg-type]
        if any(u not in _SBML_KINDS for u, _ in parts):
            raise ValueError("no SBML kind")
        uid = "u_" + re.sub(r"\W+", "_", unit.replace("/", "_per_").replace("^", "")).strip("_")
        while smodel.getUnitDefinition(uid) is not None:  # two spellings, one identifier
            uid += "_"
        if not parts:
            if not math.isclose(base.magnitude, 1.0):
                raise ValueError("scaled dimensionless")
            uid = "dimensionless"
        else:
            ud = smodel.createUnitDefinition()
            ud.setId(uid)
            ud.setName(unit)
            for k, (u, e) in enumerate(parts):
                su = ud.createUnit()
                su.setKind(libsbml.UnitKind_forName(_SBML_KINDS[u]))
                su.setExponent(e)
                su.setScale(0)
                # SBML unit = (multiplier · kind)^exponent: the magnitude goes on the first unit
                su.setMultiplier(float(base.magnitude) ** (1.0 / e) if k == 0 else 1.0)
    except Exception:
        uid = None
    cache[unit] = uid
    return uid


def _formula(libsbml, expr) -> str:
    """An SBML L3 infix formula of a sympy expression of PySB components."""
    from pysb.export.sbml import MathMLContentPrinter, _xml_to_ast  # loads libsbml

    expr = sympy.sympify(expr)
    if expr.is_number:
        return repr(float(expr))
    return libsbml.formulaToL3String(_xml_to_ast(MathMLContentPrinter().to_xml(expr)))


def _number(x: float) -> str:
    return repr(float(x))


def _jump_formula(current: str, doses, modes, scales) -> str:
    """``current`` after the doses, applied in order: add or top up (max)."""
    f = current
    for amount, i in doses:
        target = f"({amount}) * ({scales[i]})"
        if modes[i] == "top_up":
            f = f"piecewise({target}, {target} > {f}, {f})"
        else:
            f = f"{f} + {target}"
    return f


def _check(value, what: str):
    libsbml = _libsbml()
    if value is None or (isinstance(value, int) and value != libsbml.LIBSBML_OPERATION_SUCCESS):
        msg = libsbml.OperationReturnValue_toString(value) if isinstance(value, int) else "null"
        raise ModelError(f"SBML export failed at {what}: {msg}")
    return value


def _base_document(model: Model, params: Mapping[str, Any] | None, units: bool):
    """PySB's SBML of the network with mhimmune's ids, values, inputs and units."""
    _libsbml()
    from pysb.export.sbml import SbmlExporter  # loads libsbml

    doc = SbmlExporter(
        model.pysb, docstring=f"mhimmune model {model.name!r}; time in hours"
    ).convert()
    sm = doc.getModel()
    _check(sm.setId(sbml_id(model.name)), "model id")
    p = model.parameter_vector(params)
    names = model.compiled.parameters
    for name, value in zip(names, p):
        par = sm.getParameter(name)
        if par is None:
            raise ModelError(f"SBML export: parameter {name!r} missing from PySB's SBML")
        _check(par.setValue(float(value)), name)
        if name in model.inputs:
            par.setConstant(False)  # set by the schedule's events
    # readable ids: species by label, observables by name
    renames = {f"__s{i}": sid for i, sid in enumerate(species_ids(model))}
    renames.update({f"__obs{i}": o.name for i, o in enumerate(model.pysb.observables)})
    _rename(sm, renames)
    for i, label in enumerate(model.species):
        sm.getSpecies(renames[f"__s{i}"]).setName(label)
    if units:
        cache: dict[str, str | None] = {}
        hour = _add_unit(sm, "h", cache)
        if hour:
            sm.setTimeUnits(hour)
        for name in names:
            unit = model.units.get(name) or model.inputs.get(name)
            uid = _add_unit(sm, unit, cache) if unit else None
            if uid:
                sm.getParameter(name).setUnits(uid)
    return doc, p


#: SBO terms of species by monomer: simple chemicals (small molecules, ions, particle
#: iron), macromolecules (antibodies, proteins, antigen), RNA, and cell populations
#: (material entity: SBO has no term for a cell). Every other state (temperature rise,
#: thermal dose, damage indices) is written as a species by PySB but is no amount of
#: matter: SBO:0000285, material entity of unspecified nature.
_SPECIES_SBO = {
    **dict.fromkeys(
        ("ATPe", "Adenosine", "Fe", "Cu", "Mn", "H2O2", "GSH", "GSox", "BSO", "HSPi", "BETi")
        + ("CDTFe", "CDTCu", "CDTMn", "ParticleFe"),
        247,  # simple chemical
    ),
    **dict.fromkeys(
        ("AbDepot", "AbPlasma", "AbPeripheral", "AntiCD8", "GOx", "HMGB1", "HSP70", "HSP70e")
        + ("PDL1", "Antigen", "AntigenLN", "Misfolded"),
        245,  # macromolecule
    ),
    "HSPmRNA": 250,  # ribonucleic acid
    **dict.fromkeys(
        ("Tumour", "DC", "CD8", "CD4h", "Treg", "MDSC", "NK", "Mac"), 240
    ),  # material entity
}
_UNSPECIFIED_ENTITY = 285
_PARAMETER_SBO = 2  # quantitative systems description parameter
_REACTION_SBO = 375  # process


def species_sbo(monomer: str) -> int:
    """SBO term (number) of a species whose first monomer is *monomer*."""
    return _SPECIES_SBO.get(monomer, _UNSPECIFIED_ENTITY)


def parameter_sbo(unit: str | None) -> int:
    """SBO term (number) of a parameter in *unit* (a pint unit; ``None``: unknown).

    Per time (1/h, 1/µM/h, Mcell/h, ...): SBO:0000009 kinetic constant; a time:
    SBO:0000347 duration; °C or K: SBO:0000147 thermodynamic temperature; a temperature
    difference: SBO:0000148; anything else SBO:0000002 quantitative systems description
    parameter.
    """
    if not unit:
        return _PARAMETER_SBO
    try:
        items = [(str(u), float(e)) for u, e in ureg.Quantity(1.0, unit).unit_items()]  # type: ignore[arg-type]
        dims = [(str(ureg.Quantity(1.0, u).dimensionality), e) for u, e in items]
    except Exception:
        return _PARAMETER_SBO
    if any(d == "[time]" and e < 0 for d, e in dims):
        return 9
    if dims == [("[time]", 1.0)]:
        return 347
    if len(items) == 1 and dims[0] == ("[temperature]", 1.0):
        return 148 if items[0][0].startswith("delta_") else 147
    return _PARAMETER_SBO


def _add_sbo(sm, model: Model) -> None:
    """SBO terms on every species, parameter and reaction of the SBML model *sm*."""
    for sid, cp in zip(species_ids(model), model.pysb.species):
        _check(sm.getSpecies(sid).setSBOTerm(species_sbo(cp.monomer_patterns[0].monomer.name)), sid)
    for k in range(sm.getNumParameters()):
        par = sm.getParameter(k)
        unit = model.units.get(par.getId()) or model.inputs.get(par.getId())
        _check(par.setSBOTerm(parameter_sbo(unit)), par.getId())
    for k in range(sm.getNumReactions()):
        _check(sm.getReaction(k).setSBOTerm(_REACTION_SBO), sm.getReaction(k).getId())


def _rename(sm, renames: dict[str, str]) -> None:
    """Rename SIds everywhere in the model (definitions and references in math)."""
    for el in (sm.getSpecies(i) for i in range(sm.getNumSpecies())):
        if el.getId() in renames:
            el.setId(renames[el.getId()])
    for el in (sm.getParameter(i) for i in range(sm.getNumParameters())):
        if el.getId() in renames:
            el.setId(renames[el.getId()])
    elements = sm.getListOfAllElements()
    for k in range(elements.getSize()):
        el = elements.get(k)
        for attr in ("Variable", "Symbol", "Species"):
            get = getattr(el, f"get{attr}", None)
            if get is not None and callable(get):
                try:
                    v = get()
                except TypeError:
                    continue
                if isinstance(v, str) and v in renames:
                    getattr(el, f"set{attr}")(renames[v])
        if hasattr(el, "isSetMath") and el.isSetMath():
            math_ = el.getMath()
            names: set[str] = set()
            _ast_names(math_, names)
            for old in names & renames.keys():
                math_.renameSIdRefs(old, renames[old])


def _ast_names(node, out: set) -> None:
    if node.isName():
        out.add(node.getName())
    for k in range(node.getNumChildren()):
        _ast_names(node.getChild(k), out)


def _add_schedule(
    doc,
    model: Model,
    times: Sequence[float],
    inputs: Mapping[str, Sequence[str]],
    doses: Sequence[Sequence[tuple[str, int]]],
) -> None:
    """Add the schedule: values (numbers or parameter ids) per breakpoint.

    ``inputs[name][k]`` is the input's value from ``times[k]`` on; ``doses[k]`` the
    ``(amount, bolus index)`` pairs at ``times[k]`` in application order.
    """
    libsbml = _libsbml()
    sm = doc.getModel()
    c = model.compiled
    sids = species_ids(model)
    scales = [_formula(libsbml, s.scale) for s in model.boluses]
    for k, t in enumerate(times):
        by_species: dict[int, list[tuple[str, int]]] = {}
        for amount, i in doses[k]:
            by_species.setdefault(c.bolus_species[i], []).append((amount, i))
        if t == 0.0:  # folded into the initial values
            for name, values in inputs.items():
                ia = sm.createInitialAssignment()
                ia.setSymbol(name)
                _check(ia.setMath(libsbml.parseL3Formula(values[k])), f"initial {name}")
            for s, ds in by_species.items():
                sid = sids[s]
                ia = sm.getInitialAssignmentBySymbol(sid)
                current = (
                    libsbml.formulaToL3String(ia.getMath())
                    if ia is not None
                    else _number(sm.getSpecies(sid).getInitialAmount())
                )
                if ia is None:
                    ia = sm.createInitialAssignment()
                    ia.setSymbol(sid)
                f = _jump_formula(f"({current})", ds, c.bolus_modes, scales)
                _check(ia.setMath(libsbml.parseL3Formula(f)), f"initial dose of {sid}")
            continue
        ev = sm.createEvent()
        ev.setId(f"schedule_{k}")
        ev.setName(f"breakpoint at {hours_to_days(t):g} d ({t:g} h)")
        ev.setUseValuesFromTriggerTime(True)
        trig = ev.createTrigger()
        trig.setInitialValue(True)
        trig.setPersistent(True)
        _check(trig.setMath(libsbml.parseL3Formula(f"time >= {_number(t)}")), f"trigger {k}")
        for name, values in inputs.items():
            ea = ev.createEventAssignment()
            ea.setVariable(name)
            _check(ea.setMath(libsbml.parseL3Formula(values[k])), f"event {k} {name}")
        for s, ds in by_species.items():
            ea = ev.createEventAssignment()
            ea.setVariable(sids[s])
            _check(
                ea.setMath(
                    libsbml.parseL3Formula(_jump_formula(sids[s], ds, c.bolus_modes, scales))
                ),
                f"event {k} dose of {sids[s]}",
            )


def scheduled_inputs(model: Model, schedules: Sequence[Schedule]) -> list[str]:
    """Inputs that any schedule sets to a non-zero value (the others stay 0 throughout)."""
    return [
        n
        for n in model.inputs
        if any(seg.inputs[n] != 0.0 for sched in schedules for seg in sched.segments)
    ]


def to_sbml_document(
    model: Model,
    protocol: Protocol | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    units: bool = True,
):
    """The model (with *protocol* as events, and *params* overrides) as a libSBML document."""
    libsbml = _libsbml()
    doc, p = _base_document(model, params, units)
    if protocol is not None:
        schedule = protocol_schedule(model, protocol)
        segments = schedule.segments
        names = scheduled_inputs(model, [schedule])
        inputs = {n: [_number(s.inputs[n]) for s in segments] for n in names}
        doses = [[(_number(j.amount), j.dose) for j in s.jumps] for s in segments]
        _add_schedule(doc, model, [s.t0_h for s in segments], inputs, doses)
        doc.getModel().setName(f"{model.name}: {protocol.name}")
    _add_sbo(doc.getModel(), model)
    _validate(doc, libsbml)
    return doc


def conditions_document(
    model: Model,
    protocols: Mapping[str, Protocol],
    params: Mapping[str, Any] | None = None,
    *,
    units: bool = True,
):
    """One SBML document for several protocols, and the values that select each.

    The events sit at the union of all protocols' breakpoints; every value an event
    assigns (an input, a dose amount) is a parameter ``schedule_<k>_<what>`` whose value
    per protocol is a row of the returned table (index: the keys of *protocols*). This
    is how PEtab conditions carry treatment schedules.

    Returns
    -------
    (libsbml.SBMLDocument, pandas.DataFrame)
    """
    libsbml = _libsbml()
    doc, p = _base_document(model, params, units)
    sm = doc.getModel()
    c = model.compiled
    sids = species_ids(model)
    schedules = {cid: protocol_schedule(model, prot) for cid, prot in protocols.items()}
    names = scheduled_inputs(model, list(schedules.values()))
    scheds = {cid: s.segments for cid, s in schedules.items()}
    times = sorted({e.t0_h for sched in scheds.values() for e in sched})
    table: dict[str, dict[str, float]] = {cid: {} for cid in scheds}
    inputs: dict[str, list[str]] = {n: [] for n in names}
    doses: list[list[tuple[str, int]]] = []

    def parameter(pid: str, label: str) -> str:
        par = sm.createParameter()
        par.setId(pid)
        par.setName(label)
        par.setValue(0.0)
        par.setConstant(True)
        return pid

    for k, t in enumerate(times):
        for n in names:
            pid = parameter(f"schedule_{k}_{n}", f"{n} from {hours_to_days(t):g} d")
            inputs[n].append(pid)
            for cid, sched in scheds.items():
                current = [e for e in sched if e.t0_h <= t][-1]
                table[cid][pid] = current.inputs[n]
        amounts: dict[int, dict[str, float]] = {}
        for cid, sched in scheds.items():
            for e in (e for e in sched if e.t0_h == t):
                for i, a in ((j.dose, j.amount) for j in e.jumps):
                    slot = amounts.setdefault(i, {})
                    old = slot.get(cid, 0.0)
                    slot[cid] = max(old, a) if c.bolus_modes[i] == "top_up" else old + a
        order = sorted(amounts, key=lambda i: (c.bolus_modes[i] == "top_up", i))
        row = []
        for i in order:
            pid = parameter(
                sbml_id(f"schedule_{k}_{c.bolus_kinds[i]}_{sids[c.bolus_species[i]]}"),
                f"{c.bolus_kinds[i]} dose at {hours_to_days(t):g} d",
            )
            row.append((pid, i))
            for cid in scheds:
                table[cid][pid] = amounts[i].get(cid, 0.0)
        doses.append(row)
    _add_schedule(doc, model, times, inputs, doses)
    _add_sbo(sm, model)
    _validate(doc, libsbml)
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index.name = "conditionId"
    return doc, frame


def _validate(doc, libsbml) -> None:
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MODELING_PRACTICE, False)
    doc.checkConsistency()
    errors = [
        doc.getError(i)
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    if errors:
        raise ModelError(
            "SBML export is invalid: " + "; ".join(e.getMessage().strip() for e in errors[:3])
        )


def to_sbml(
    model: Model,
    protocol: Protocol | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    units: bool = True,
) -> str:
    """SBML Level 3 Version 2 text of *model*, with *protocol* as events.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    protocol
        The schedule to write as events; ``None`` writes the bare network (inputs 0).
    params
        Parameter overrides by name, as for :func:`mhimmune.simulate`.
    units
        Attach SBML units to parameters (from their internal units) and the model's
        time unit (hour).
    """
    return _libsbml().writeSBMLToString(to_sbml_document(model, protocol, params, units=units))
