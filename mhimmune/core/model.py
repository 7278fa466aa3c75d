"""The user-facing model object: composed links + parameter table + compiled functions."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.compile import CompiledModel, compile_model
from mhimmune.core.errors import MhimmuneError, ModelError, ParameterError
from mhimmune.core.io import read_toml
from mhimmune.core.modelkit import BolusSpec, Builder, build
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import ureg

__all__ = ["Model", "ParameterSetter", "load_model", "default_links"]


@cache
def default_links() -> tuple[str, ...]:
    """The links of the full model in composition order, as ``models/links.toml`` lists
    them (each link reads signals of earlier ones)."""
    path = resource_dir("models") / "links.toml"
    try:
        links = read_toml(path)["links"]
    except (KeyError, MhimmuneError) as exc:
        raise ModelError(f"{path}: needs a list 'links' of link names ({exc})") from None
    if not (isinstance(links, list) and links and all(isinstance(x, str) for x in links)):
        raise ModelError(f"{path}: 'links' must be a non-empty list of link names")
    return tuple(links)


class Model:
    """A composed, compiled model with its parameter table.

    Build it with :func:`load_model`. Parameters are addressed by name; values in the
    table are in the table's units and converted once to the model's internal units.
    """

    def __init__(
        self,
        builder: Builder,
        compiled: CompiledModel,
        table: ParameterTable,
        links: Sequence[str],
        standalone: bool,
        baseline: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
    ):
        #: values (table units) that replaced the loaded tables' values (a named preset)
        self.baseline = dict(baseline or {})
        #: names of the named parameter sets the model was loaded with (e.g. a preset)
        self.labels = dict(labels or {})
        self._builder = builder
        self.compiled = compiled
        self.table = table
        self.links = tuple(links)
        self.standalone = standalone
        self.units = dict(builder.units)
        self.inputs = dict(builder.inputs)
        self.stubs = dict(builder.stubs)
        names = compiled.parameters
        self._index = {n: i for i, n in enumerate(names)}
        self._setter: ParameterSetter | None = None
        if standalone:  # a link alone uses only the rows it declares
            missing = sorted(set(self.units) - set(table.names))
            if missing:
                raise ParameterError(f"parameters missing from the table: {', '.join(missing)}")
            rows = [n for n in table.names if n in self.units]
            table = ParameterTable.from_frame(table.frame.loc[rows].reset_index(), origin="<links>")
            self.table = table
        self._defaults = table.internal_values(self.units)
        self._base = np.zeros(len(names))
        for n, v in self._defaults.items():
            self._base[self._index[n]] = v
        for n, v in self.stubs.items():
            self._base[self._index[n]] = v
        # parameter values into the PySB model, so exports carry them
        for p in builder.model.parameters:
            p.value = float(self._base[self._index[p.name]])

    # ------------------------------------------------------------------ info
    @property
    def pysb(self):
        """The composed PySB model (for export to BNGL/SBML and inspection)."""
        return self._builder.model

    @property
    def name(self) -> str:
        return self._builder.model.name

    @property
    def species(self) -> list[str]:
        """Readable names of the state variables, in state-vector order."""
        return list(self.compiled.species)

    @property
    def parameter_names(self) -> list[str]:
        """Names of the parameters in the table (excluding protocol inputs)."""
        return list(self.units)

    @property
    def signals(self) -> dict[str, str]:
        """Signals exchanged between links: name -> providing link."""
        return {k: v[2] for k, v in self._builder.signals.items()}

    @property
    def boluses(self) -> tuple[BolusSpec, ...]:
        """The dose targets, in the compiled model's bolus order: for each, the dose
        ``kind``, the species ``pattern`` it changes, the ``scale`` (a sympy expression of
        parameters; the jump is ``amount · scale``) and the ``mode`` (``"add"`` or
        ``"top_up"``). Exporters write doses from these (:mod:`mhimmune.interop`)."""
        return tuple(self._builder.boluses)

    def size(self) -> dict[str, int]:
        """Numbers of species, reactions, parameters, inputs and rules."""
        return {
            "species": len(self.compiled.species),
            "reactions": self.compiled.n_reactions,
            "parameters": len(self.units),
            "inputs": len(self.inputs),
            "rules": len(self.pysb.rules),
            "links": len(self.links),
        }

    def __repr__(self) -> str:
        s = self.size()
        named = "".join(f"; {k} {v}" for k, v in self.labels.items())
        return (
            f"<mhimmune.Model {self.name!r}: {s['species']} species, {s['reactions']} reactions, "
            f"{s['parameters']} parameters; links {' -> '.join(self.links)}{named}>"
        )

    # ------------------------------------------------------------ parameters
    def parameter_vector(self, overrides: Mapping[str, Any] | None = None) -> np.ndarray:
        """Parameter values (internal units) in compiled order, with *overrides* by name.

        Overrides are numbers in the table's unit or strings with a unit
        (``{"k_fenton": "70 1/M/s"}``); unknown names and physically meaningless values
        raise :class:`~mhimmune.core.errors.ParameterError`. A model made by
        :meth:`with_fast_parameters` takes a fast path for its names.
        """
        if overrides and self._setter is not None:
            fast = self._setter.vector(overrides)
            if fast is not None:
                return fast
        return self._checked_vector(overrides)

    def _checked_vector(self, overrides: Mapping[str, Any] | None) -> np.ndarray:
        """:meth:`parameter_vector` with every override parsed and validated."""
        p = self._base.copy()
        for k, v in (overrides or {}).items():
            if k in self.inputs:
                raise ParameterError(
                    f"{k}: is a protocol input set by the schedule, not a parameter"
                )
            if k in self.stubs:
                try:
                    p[self._index[k]] = float(v)
                except (TypeError, ValueError):
                    raise ParameterError(
                        f"{k}: stub signal value must be a number, got {v!r}"
                    ) from None
                continue
            value = self.table.check_override(k, v)  # unknown names, bad values -> ParameterError
            q = ureg.Quantity(value, self.table.unit(k)).to(self.units[k])
            p[self._index[k]] = float(q.magnitude)
        return p

    def parameter_setter(self, names: Iterable[str]) -> ParameterSetter:
        """A fast map from values of *names* (table units) to the parameter vector.

        See :class:`ParameterSetter`; names it cannot speed up are left to
        :meth:`parameter_vector`.
        """
        return ParameterSetter(self, names)

    def with_fast_parameters(self, names: Iterable[str]) -> Model:
        """A model sharing this one's compiled functions and table whose
        :meth:`parameter_vector` skips unit parsing for *names* (many runs that vary
        the same parameters: ensembles, optimisers).

        Results are those of :meth:`parameter_vector`; values outside a parameter's
        table range, strings with units and other names take the validating path.
        """
        view = copy.copy(self)
        view._setter = self.parameter_setter(names)
        return view

    def parameters(self) -> pd.DataFrame:
        """The parameter table (table units) with the internal unit of each parameter."""
        df = self.table.frame
        df = df.loc[[n for n in df.index if n in self.units]].copy()
        df["internal_unit"] = [self.units[n] for n in df.index]
        df["internal_value"] = [self._defaults[n] for n in df.index]
        return df


class ParameterSetter:
    """Values of a few named parameters (table units) to the parameter vector, fast.

    For each parameter the map from the table value to the internal value is measured
    once with the model's validating :meth:`Model.parameter_vector` (an affine map,
    checked at a third point). Values inside the table's [lower, upper] use it
    (everything in that range passed validation when the table was loaded).

    Parameters
    ----------
    model
        The model whose parameter vector is set.
    names
        Parameter names to speed up; fixed parameters, names outside the table and
        parameters whose map is not affine are left to the model.
    """

    def __init__(self, model: Model, names: Iterable[str]):
        self._model = model
        self._base = model._checked_vector({})
        self._maps: dict[str, tuple[int, float, float, float, float]] = {}
        frame = model.table.frame
        for name in names:
            if name not in frame.index or frame.at[name, "distribution"] == "fixed":
                continue
            lo, hi = float(frame.at[name, "lower"]), float(frame.at[name, "upper"])
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                continue
            x1, x2, x3 = lo, hi, lo + 0.37 * (hi - lo)
            try:
                p1, p2, p3 = (model._checked_vector({name: x}) for x in (x1, x2, x3))
            except MhimmuneError:
                continue
            idx = np.nonzero(p1 != p2)[0]
            if len(idx) != 1:
                continue
            i = int(idx[0])
            a = (p2[i] - p1[i]) / (x2 - x1)
            b = p1[i] - a * x1
            if not np.isclose(a * x3 + b, p3[i], rtol=1e-12, atol=0.0):
                continue
            self._maps[name] = (i, a, b, lo, hi)

    @property
    def names(self) -> list[str]:
        """The parameters this setter handles."""
        return list(self._maps)

    def vector(self, overrides: Mapping[str, Any]) -> np.ndarray | None:
        """The parameter vector with *overrides*, or ``None`` when one of them needs the
        model's validating path (another name, a string, a value outside the range)."""
        p = None
        for k, x in overrides.items():
            f = self._maps.get(k)
            if f is None or isinstance(x, (str, bool)) or not (f[3] <= x <= f[4]):
                return None
            if p is None:
                p = self._base.copy()
            p[f[0]] = f[1] * x + f[2]
        return p

    def __call__(self, overrides: Mapping[str, Any]) -> np.ndarray:
        """The parameter vector with *overrides* (fast where possible)."""
        p = self.vector(overrides) if overrides else None
        return self._model._checked_vector(overrides) if p is None else p


def load_model(
    links: Sequence[str] | None = None,
    parameters: str | Path | Sequence | None = None,
    *,
    standalone: bool = False,
    verbose: bool = True,
    values: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Model:
    """Build, compile (or load from the cache) and parameterise a model.

    Parameters
    ----------
    links
        Link modules of ``models/`` to compose, in order (one name or a list of names);
        default: the full model (:func:`default_links`).
    parameters
        Parameter table files or folders; default: ``parameters/model``.
    standalone
        Let a subset of links run alone: signals no chosen link provides become
        parameters with the reading link's stub values.
    verbose
        Print one line while a model is compiled for the first time.
    values
        Parameter values replacing the tables' values (table units or strings with a
        unit; each must lie within its parameter's [lower, upper]), kept as the model's
        :attr:`Model.baseline`; names the chosen links do not declare are ignored.
    labels
        Names of the parameter sets *values* come from, kept as :attr:`Model.labels`.
    """
    if isinstance(links, str):
        links = [links]  # one link module by name
    elif links is not None and not (
        isinstance(links, Sequence) and all(isinstance(x, str) for x in links)
    ):
        raise ModelError(f"links: expected link module names (strings), got {links!r}")
    links = list(links or default_links())
    builder = build(
        links,
        name="mhimmune_" + "_".join(links) if links != list(default_links()) else "mhimmune",
        standalone=standalone,
    )
    compiled = compile_model(builder, verbose=verbose)
    table = ParameterTable.load(parameters)
    baseline: dict[str, float] = {}
    if values:
        if not isinstance(values, Mapping):
            raise ParameterError(f"values: expected a mapping name -> value, got {values!r}")
        used = {k: v for k, v in values.items() if k in builder.units}
        table = table.with_values(used)
        baseline = {k: table.value(k) for k in used}
    return Model(builder, compiled, table, links, standalone, baseline, labels)
