"""Building blocks for the model files in ``models/``: links, signals, inputs, doses.

A *link* is a module in ``models/`` that writes plain PySB (``Monomer``,
``Parameter``, ``Rule``, ``Expression``, ``Observable``, ``Initial``) inside a
function ``declare()``. It names what it reads and what it provides::

    READS = {"temperature_C": ("degC", 37.0)}     # signal -> (unit, stand-alone stub)
    PROVIDES = {"hazard_heat": "1/h"}              # signal -> unit

    def declare():
        k = par("k_misfold", "1/h")                # a model parameter; value from parameters/
        T = signal("temperature_C")                # a signal another link provides
        ...
        provide("hazard_heat", Expression("hazard_heat", ...))

:func:`build` composes links in order into one PySB model. Parameter values are
not written in model files: they come from the tables in ``parameters/model`` and
are converted to the unit each :func:`par` call declares.

Protocol-controlled quantities are *inputs* (:func:`input_param`), constant within
each schedule segment and set by the engine; doses are *boluses* (:func:`bolus`),
state jumps the engine applies at dose times.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import sympy
from pysb import Expression, Initial, Model, Parameter
from pysb.core import (
    ComplexPattern,
    MonomerPattern,
    SelfExporter,
    SymbolExistsWarning,
    as_complex_pattern,
)

from mhimmune.core.errors import ModelError
from mhimmune.core.resources import resource_dir

__all__ = [
    "par",
    "input_param",
    "signal",
    "provide",
    "bolus",
    "component",
    "hill",
    "smooth_positive_part",
    "present",
    "Builder",
    "BolusSpec",
    "build",
    "load_link",
]


@dataclass
class BolusSpec:
    """A dose kind mapped onto a species: ``y[species] += amount · scale``.

    ``mode="top_up"`` sets the species to ``max(y, amount · scale)`` instead (used
    for particle iron, which a session's dose tops up rather than adds to).
    """

    kind: str
    pattern: ComplexPattern
    scale: sympy.Expr
    mode: str = "add"


@dataclass
class Builder:
    """State of one model build: units of parameters, inputs, signals, doses."""

    model: Model
    standalone: bool = False
    units: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    stubs: dict[str, float] = field(default_factory=dict)
    signals: dict[str, tuple[Any, str, str]] = field(default_factory=dict)
    boluses: list[BolusSpec] = field(default_factory=list)
    link: str = ""
    link_reads: dict[str, dict] = field(default_factory=dict)


_CURRENT: Builder | None = None


def _builder() -> Builder:
    if _CURRENT is None:
        raise ModelError(
            "model-building helpers can only be used inside a link's declare(), "
            "called by mhimmune.core.modelkit.build"
        )
    return _CURRENT


def _declare(name: str, unit: str, value: float, registry: str, what: str) -> Parameter:
    b = _builder()
    if name in b.units or name in b.inputs:
        raise ModelError(f"link {b.link!r}: {what} {name!r} declared twice")
    p = Parameter(name, value)
    getattr(b, registry)[name] = unit
    return p


def par(name: str, unit: str) -> Parameter:
    """Declare a model parameter whose value comes from ``parameters/`` in *unit*."""
    return _declare(name, unit, 1.0, "units", "parameter")


def input_param(name: str, unit: str) -> Parameter:
    """Declare a protocol-controlled input, constant within a schedule segment (default 0)."""
    return _declare(name, unit, 0.0, "inputs", "input")


def signal(name: str):
    """Return the component another link provides under *name* (see the link's READS)."""
    b = _builder()
    if name in b.signals:
        return b.signals[name][0]
    reads = b.link_reads.get(b.link, {})
    if b.standalone and name in reads:
        unit, stub = reads[name]
        p = Parameter(name, float(stub))
        b.stubs[name] = float(stub)
        b.signals[name] = (p, unit, "<stub>")
        return p
    if name not in reads:
        raise ModelError(f"link {b.link!r} reads signal {name!r} but does not list it in READS")
    raise ModelError(
        f"link {b.link!r} reads signal {name!r}, which no earlier link provides; "
        f"provided so far: {sorted(b.signals)}"
    )


def provide(name: str, comp) -> Any:
    """Publish *comp* (an Expression, Observable or Parameter) as the signal *name*."""
    b = _builder()
    if name in b.signals and b.signals[name][2] != "<stub>":
        raise ModelError(
            f"signal {name!r} provided twice (by {b.signals[name][2]!r} and {b.link!r})"
        )
    b.signals[name] = (comp, "", b.link)
    return comp


def component(name: str):
    """Return a component declared earlier (by any link) by its name."""
    b = _builder()
    try:
        return b.model.components[name]
    except KeyError:
        raise ModelError(f"link {b.link!r}: no component named {name!r} declared yet") from None


def bolus(kind: str, pattern, scale, mode: str = "add") -> None:
    """Map the dose kind *kind* of a protocol onto the species *pattern*.

    The engine adds ``amount · scale`` (``mode="add"``) or tops the species up to
    that level (``mode="top_up"``); *scale* is a constant expression of parameters
    converting the protocol's unit (mg/kg, mg/cm³, mm³) into the species' unit.
    """
    b = _builder()
    if mode not in ("add", "top_up"):
        raise ModelError(f"bolus {kind!r}: mode must be 'add' or 'top_up', got {mode!r}")
    if isinstance(pattern, MonomerPattern):
        pattern = as_complex_pattern(pattern)
    scale = sympy.sympify(scale)
    b.boluses.append(BolusSpec(kind, pattern, scale, mode))


def present(pattern) -> None:
    """Make *pattern* a species of the network that starts at zero (a dose target, say)."""
    b = _builder()
    zero = b.model.expressions.get("zero_amount")
    if zero is None:
        zero = Expression("zero_amount", sympy.Float(0.0))
    Initial(pattern, zero)


def hill(x, k, n=1):
    """Saturating activation x^n / (k^n + x^n) as a sympy expression."""
    return x**n / (k**n + x**n)


def smooth_positive_part(x, eps):
    """(x + sqrt(x² + eps²)) / 2 as a sympy expression: max(x, 0) rounded off over a width
    *eps* (x + eps² / (4x) for x >> eps, eps / 2 at 0, eps² / (4|x|) for x << -eps), smooth,
    so that a stiff integrator meets no kink where a quantity decays to 0."""
    return (x + sympy.sqrt(x**2 + eps**2)) / 2


def load_link(name: str) -> ModuleType:
    """Import the link module ``models/<name>.py`` by file path."""
    path = resource_dir("models") / f"{name}.py"
    if not path.is_file():
        known = sorted(
            p.stem for p in resource_dir("models").glob("*.py") if not p.stem.startswith("_")
        )
        raise ModelError(f"unknown model link {name!r}; available links: {', '.join(known)}")
    modname = f"mhimmune_models.{name}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import model link {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    for attr in ("declare", "READS", "PROVIDES"):
        if not hasattr(module, attr):
            raise ModelError(f"model link {path} lacks {attr!r}")
    return module


def build(links: list[str], name: str = "mhimmune", standalone: bool = False) -> Builder:
    """Compose the link modules *links* (in order) into one PySB model.

    With ``standalone=True`` signals that no link provides become parameters with the
    stub values the reading link declares, so a single link can run on its own.
    """
    global _CURRENT
    if _CURRENT is not None:
        raise ModelError("nested model builds are not supported")
    model = Model(name, _export=False)
    b = Builder(model=model, standalone=standalone)
    saved = (SelfExporter.default_model, SelfExporter.target_globals, SelfExporter.target_module)
    SelfExporter.default_model = model
    SelfExporter.target_globals = {}
    SelfExporter.target_module = None
    _CURRENT = b
    try:
        for link in links:
            module = load_link(link)
            b.link = link
            b.link_reads[link] = dict(module.READS)
            with warnings.catch_warnings():
                warnings.simplefilter("error", SymbolExistsWarning)
                try:
                    module.declare()
                except SymbolExistsWarning as exc:
                    raise ModelError(f"link {link!r}: two components share a name: {exc}") from None
            missing = [s for s in module.PROVIDES if s not in b.signals]
            if missing:
                raise ModelError(
                    f"link {link!r} promises signals {missing} in PROVIDES "
                    "but does not provide them"
                )
    finally:
        _CURRENT = None
        SelfExporter.default_model, SelfExporter.target_globals, SelfExporter.target_module = saved
    return b
