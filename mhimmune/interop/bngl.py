"""Export a model with a treatment schedule to BNGL (BioNetGen language).

PySB writes the reaction network; with a protocol, an actions block runs its schedule
(:func:`mhimmune.mh.inputs.protocol_schedule`): ``simulate`` phase by phase with
``continue=>1``, ``setParameter`` for the inputs and
``addConcentration``/``setConcentration`` for the doses. BNGL actions cannot read a
state, so a top-up is written as ``setConcentration`` to its target: exact whenever the
species has fallen below the target by the next session (particle iron only dissolves
between sessions). PySB's BNGL writes ``-s^2`` where BioNetGen's muParser reads (-s)²;
:func:`to_bngl` parenthesises every power. Time is in hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from unittest import mock

import pysb.generator.bng as gen
from pysb.export import export

from mhimmune.core.model import Model
from mhimmune.core.units import hours_to_days
from mhimmune.interop.sbml import scheduled_inputs
from mhimmune.mh.inputs import protocol_schedule
from mhimmune.mh.protocol import Protocol

__all__ = ["to_bngl"]


def _bng_number(x: float) -> str:
    return f"{float(x):.17g}"


def _bngl_text(pysb_model) -> str:
    """PySB's BNGL export, with every power parenthesised.

    BioNetGen evaluates functions with muParser, where unary minus binds tighter than
    ``^``: PySB's ``-s^2`` means (-s)² there, and ``exp(-s^2/2)`` becomes exp(+s²/2).
    Writing ``-(s^2)`` keeps sympy's meaning.
    """

    class Printer(gen.BngPrinter):
        def _print_Pow(self, expr, rational=False):
            return f"({super()._print_Pow(expr, rational)})"

    def to_muparser(expression):
        return Printer(order="none").doprint(expression.expr)

    with mock.patch.object(gen, "expression_to_muparser", to_muparser):
        return export(pysb_model, "bngl")


def to_bngl(
    model: Model,
    protocol: Protocol | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    output_step: float = 6.0,
) -> str:
    """BNGL text of *model*; with *protocol*, an actions block that runs the schedule.

    Parameters
    ----------
    model, protocol, params
        As for :func:`to_sbml`.
    rtol, atol
        Tolerances written into each ``simulate`` action.
    output_step
        Output spacing of the ``simulate`` actions in hours.
    """
    p = model.parameter_vector(params)
    saved = {q.name: q.value for q in model.pysb.parameters}
    try:
        for q in model.pysb.parameters:
            q.value = float(p[model.compiled.parameters.index(q.name)])
        text = _bngl_text(model.pysb)
    finally:
        for q in model.pysb.parameters:
            q.value = saved[q.name]
    if protocol is None:
        return text
    c = model.compiled
    schedule = protocol_schedule(model, protocol)
    sched = schedule.segments
    scales = c.bolus_scales(p)
    patterns = [str(s.pattern) for s in model.boluses]
    names = scheduled_inputs(model, [schedule])
    lines = [
        "",
        f"# Schedule of protocol {protocol.name!r} (time in hours), written by mhimmune.",
        "# Top-ups (particle iron) are set to their target: "
        "BNGL actions cannot take max(y, target).",
        "begin actions",
        "generate_network({overwrite=>1})",
    ]
    for k, e in enumerate(sched):
        t1 = e.t1_h
        lines.append(f"# breakpoint {k}: day {hours_to_days(e.t0_h):g}")
        for n in names:
            lines.append(f'setParameter("{n}", {_bng_number(e.inputs[n])})')
        for i, amount in ((j.dose, j.amount) for j in e.jumps):
            value = _bng_number(amount * scales[i])
            action = "setConcentration" if c.bolus_modes[i] == "top_up" else "addConcentration"
            lines.append(f'{action}("{patterns[i]}", {value})  # {c.bolus_kinds[i]} {amount:g}')
        n_steps = max(1, int(math.ceil((t1 - e.t0_h) / output_step)))
        cont = ", continue=>1" if k > 0 else ""
        lines.append(
            f'simulate({{method=>"ode", t_start=>{_bng_number(e.t0_h)}, '
            f"t_end=>{_bng_number(t1)}, n_steps=>{n_steps}, atol=>{atol:g}, rtol=>{rtol:g}, "
            f'print_CDAT=>1, suffix=>"schedule"{cont}}})'
        )
    lines.append("end actions")
    return text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
