"""The model evaluator: one design row -> protocol -> simulation -> readouts.

:class:`ModelEvaluator` builds the protocol of a row (from a template whose factors may be
design columns, or a fixed protocol), simulates the model with the row's parameter values
and computes :class:`~mhimmune.runs.readout.Readout` values (and trajectories on a fixed
time grid). It knows no domain: the readout vocabulary, the default readouts and the
warnings silenced while building protocols are class attributes a domain subclass sets
(see :class:`mhimmune.mh.evaluator.ModelEvaluator`). Each process loads the compiled
model once (from the disk cache); the evaluator itself pickles small.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mhimmune.core.errors import (
    MhimmuneError,
    ModelError,
    ParameterError,
    ProtocolError,
    SolverError,
)
from mhimmune.core.model import Model, default_links, load_model
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import hours_to_days
from mhimmune.runs.readout import EMPTY_VOCABULARY, Readout, Vocabulary, evaluate

__all__ = [
    "ENSEMBLE_FALLBACK_TOLERANCES",
    "ENSEMBLE_NEWTON_TOL",
    "ENSEMBLE_TOLERANCES",
    "ModelEvaluator",
    "is_template",
    "model_for",
    "source_fingerprint",
]

_MODELS: dict[tuple, Model] = {}


def model_for(links: Sequence[str] | None, parameters: Any, standalone: bool) -> Model:
    """The model for this process, loaded once (from the compiled-model disk cache)."""
    key = (tuple(links) if links else None, _freeze(parameters), bool(standalone))
    if key not in _MODELS:
        _MODELS[key] = load_model(
            links=links, parameters=parameters, standalone=standalone, verbose=False
        )
    return _MODELS[key]


def _freeze(x: Any) -> Any:
    if x is None or isinstance(x, (str, Path)):
        return None if x is None else str(x)
    return tuple(str(i) for i in x)


def is_template(protocol: Any) -> bool:
    """Whether *protocol* is a template (``build(factors)`` and ``factor_names``), not a
    fixed protocol."""
    return callable(getattr(protocol, "build", None)) and hasattr(protocol, "factor_names")


#: integration tolerances of ensemble runs unless a study sets its own (``simulate_options``):
#: rtol 1e-4, atol 1e-6, looser than the single-run defaults (rtol 1e-6, atol 1e-9), chosen
#: by tests/test_ensemble_tolerance.py: every scalar readout of 16 rows of the 16-factor
#: schedule design stays within 1e-3 of its spread across the design of a rtol 1e-9 / atol
#: 1e-12 reference (measured with the single-run Newton test 0.03: 5.8e-5; 1.9e-4 over the
#: first 64 rows; with :data:`ENSEMBLE_NEWTON_TOL`: 1.7e-4 and 3.1e-4). They take ~20 %
#: fewer steps per run than atol 1e-8 (1,005 against 1,265 on 64 design rows). Every run of
#: the N = 128 Sobol sample of that design (2,304 runs, ablative corners included)
#: integrates at them; a run that fails is repeated at :data:`ENSEMBLE_FALLBACK_TOLERANCES`,
#: so that every run of a sample integrates.
ENSEMBLE_TOLERANCES: dict[str, float] = {"rtol": 1e-4, "atol": 1e-6}

#: Newton stopping fraction (``newton_tol`` of the simulator) of runs at
#: :data:`ENSEMBLE_TOLERANCES`: CVODE's 0.1 instead of the single-run 0.03, ~12 % fewer
#: Newton iterations (1.68 linear solves per step against 1.88 on 200 rows of the 16-factor
#: schedule design) and ~6 % less time per run. Chosen by tests/test_ensemble_tolerance.py:
#: scalar readouts of its 16 design rows stay within 1.7e-4 of their spread of the
#: reference (5.8e-5 with 0.03; 3.1e-4 over the first 64 rows, 1.9e-4 with 0.03), a factor
#: 5.9 inside its 1e-3 rule. Not used when a study sets its own tolerances, nor by the
#: fallback (which keeps the simulator's default).
ENSEMBLE_NEWTON_TOL = 0.1

#: tolerances a run is repeated at when its integration fails at :data:`ENSEMBLE_TOLERANCES`
#: (rtol 1e-5, atol 1e-8: every run of the N = 1024 Sobol sample of the schedule design
#: integrates at them; readouts within 2.9e-5 of their spread of the reference). Not used
#: when a study sets its own tolerances.
ENSEMBLE_FALLBACK_TOLERANCES: dict[str, float] = {"rtol": 1e-5, "atol": 1e-8}


class ModelEvaluator:
    """Evaluate one design row: build the protocol, simulate, compute readouts.

    Parameters
    ----------
    protocol
        A template (``build(factors)`` returning a protocol, ``factor_names``; its factors
        may be design columns) or a fixed protocol (then every column is a model
        parameter). A protocol has ``duration_h``, ``to_dict()`` and optionally
        ``first_treatment_h``.
    readouts
        Readout specifications (see :meth:`Readout.parse`, with :attr:`vocabulary`) or a
        mapping name -> spec; default :attr:`default_readouts` (those the model has).
    trajectories
        Variables to record on *time_grid_day* for time-resolved analysis.
    time_grid_day
        Times (days) of the trajectories; default every day of the protocol.
    params
        Fixed parameter overrides for every run (design columns take precedence).
    links, parameters, standalone
        How each worker builds the model (:func:`mhimmune.load_model`); default the
        full model with its default parameter tables.
    simulate_options
        Keyword arguments of :attr:`simulator` (tolerances, output steps); tolerances not
        given are :data:`ENSEMBLE_TOLERANCES` (with :data:`ENSEMBLE_NEWTON_TOL` unless
        ``newton_tol`` is given), and then a run whose integration fails is repeated at
        :data:`ENSEMBLE_FALLBACK_TOLERANCES` (:attr:`fallback_options`).
    """

    #: names the readout language knows (named readouts, aliases, flag words)
    vocabulary: ClassVar[Vocabulary] = EMPTY_VOCABULARY
    #: readouts computed when none are given (only those whose variables the model has)
    default_readouts: ClassVar[tuple[str, ...]] = ()
    #: warning categories silenced while a protocol is built from factors
    ignored_warnings: ClassVar[tuple[type[Warning], ...]] = ()
    #: ``simulator(model, plan, overrides, **simulate_options)`` -> a result with ``time_h``,
    #: ``states`` and ``derived``; the domain layer sets it (a staticmethod)
    simulator: ClassVar[Callable[..., Any] | None] = None

    def __init__(
        self,
        protocol: Any,
        readouts: Sequence[str | Readout] | Mapping[str, str | Readout] | None = None,
        *,
        trajectories: Sequence[str] = (),
        time_grid_day: Sequence[float] | None = None,
        params: Mapping[str, Any] | None = None,
        links: Sequence[str] | None = None,
        parameters: Any = None,
        standalone: bool = False,
        simulate_options: Mapping[str, Any] | None = None,
    ):
        self.check_protocol(protocol)
        self.protocol = protocol
        self._default_readouts = readouts is None
        if readouts is None:
            if not self.default_readouts:
                raise ParameterError("readouts: give the readouts to compute")
            readouts = self.default_readouts
        voc = self.vocabulary
        if isinstance(readouts, Mapping):
            self.readouts = [Readout.parse(v, k, voc) for k, v in readouts.items()]
        else:
            self.readouts = [Readout.parse(r, None, voc) for r in readouts]
        names = [r.name for r in self.readouts]
        if len(set(names)) != len(names):
            raise ParameterError(
                f"readouts: duplicate names {sorted({n for n in names if names.count(n) > 1})}"
            )
        self.trajectory_names = list(trajectories)
        duration_d = hours_to_days(self.protocol.duration_h)
        if time_grid_day is None:
            grid = np.arange(0.0, math.floor(duration_d) + 1.0)
            grid = grid[grid <= duration_d]
        else:
            grid = np.asarray(time_grid_day, dtype=float)
        if (
            grid.ndim != 1
            or len(grid) == 0
            or not np.all(np.isfinite(grid))
            or grid.min() < 0
            or grid.max() > duration_d + 1e-9
            or np.any(np.diff(grid) <= 0)
        ):
            raise ProtocolError(
                f"time_grid_day: must be increasing days within [0, {duration_d:g}]"
            )
        self.time_grid_day = grid if self.trajectory_names else None
        self.params = dict(params or {})
        self.links = list(links) if links else None
        self.parameters = parameters
        self.standalone = bool(standalone)
        given = dict(simulate_options or {})
        # a run that fails at the ensemble tolerances is repeated at the fallback ones,
        # unless the study chose its own tolerances; the ensemble Newton test goes with the
        # ensemble tolerances only
        own = {"rtol", "atol"} & set(given)
        newton = {} if own else {"newton_tol": ENSEMBLE_NEWTON_TOL}
        self.simulate_options = {**ENSEMBLE_TOLERANCES, **newton, **given}
        self.fallback_options: dict[str, Any] | None = (
            None if own else {**ENSEMBLE_TOLERANCES, **given, **ENSEMBLE_FALLBACK_TOLERANCES}
        )
        self._model: Model | None = None
        self._source_hash = source_fingerprint()

    @classmethod
    def check_protocol(cls, protocol: Any) -> None:
        """Raise :class:`~mhimmune.core.errors.ProtocolError` unless *protocol* is a template
        or a protocol (has ``duration_h``)."""
        if not (is_template(protocol) or hasattr(protocol, "duration_h")):
            raise ProtocolError(
                f"protocol: expected a protocol or a template, got {type(protocol).__name__}"
            )

    @classmethod
    def from_model(
        cls, model: Model, protocol: Any, readouts: Any = None, **kwargs: Any
    ) -> ModelEvaluator:
        """An evaluator whose workers rebuild *model* (its links; default parameter tables).

        The values a model was loaded with in place of the tables' (its
        :attr:`~mhimmune.core.model.Model.baseline`, e.g. a named preset) are passed to
        every run as fixed overrides, beneath *params*. Raises
        :class:`~mhimmune.core.errors.ParameterError` when *model* carries a custom parameter
        table that workers cannot rebuild (pass ``parameters=`` files then).
        """
        kwargs.setdefault(
            "links", None if tuple(model.links) == default_links() else list(model.links)
        )
        kwargs.setdefault("standalone", model.standalone)
        if model.baseline:  # values replacing the tables travel to workers as overrides
            kwargs["params"] = {**model.baseline, **dict(kwargs.get("params") or {})}
        ev = cls(protocol, readouts, **kwargs)
        fresh = model_for(ev.links, ev.parameters, ev.standalone)
        if fresh is not model and not np.array_equal(
            fresh.parameter_vector(model.baseline), model.parameter_vector({})
        ):
            raise ParameterError(
                "model: its parameter values differ from the tables workers load; "
                "pass parameters=<table files> or the differences as params="
            )
        return ev

    # ------------------------------------------------------------------ identity
    @property
    def output_names(self) -> list[str]:
        """Names of the scalar outputs, in order (after :meth:`setup`, only those the model has)."""
        return [r.name for r in self.readouts]

    def fingerprint(self) -> str:
        """Text identifying what this evaluator computes (for resume checks)."""
        proto = self.protocol.to_dict()
        return json.dumps(
            {
                "protocol": proto,
                "template": is_template(self.protocol),
                "readouts": [
                    (r.name, r.kind, r.variables, r.day, r.threshold, r.relative)
                    + ((r.denominator, r.scale) if r.denominator else ())
                    for r in self.readouts
                ],
                "trajectories": self.trajectory_names,
                "grid": None if self.time_grid_day is None else list(self.time_grid_day),
                "params": {k: str(v) for k, v in sorted(self.params.items())},
                "links": self.links,
                "parameters": _freeze(self.parameters),
                "standalone": self.standalone,
                "simulate": {k: str(v) for k, v in sorted(self.simulate_options.items())},
                "fallback": None
                if self.fallback_options is None
                else {k: str(v) for k, v in sorted(self.fallback_options.items())},
                "source": self._source_hash,
            },
            sort_keys=True,
            default=str,
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_model", "_index", "_fast_model", "_factors"):
            state.pop(k, None)
        state["_model"] = None
        return state

    # --------------------------------------------------------------------- setup
    def setup(self, factor_names: Sequence[str] = ()) -> None:
        """Load the model once in this process and resolve readouts and variables."""
        if self._model is not None:
            return
        model = model_for(self.links, self.parameters, self.standalone)
        variables = list(model.species) + list(model.compiled.derived_names)
        index: dict[str, tuple[int, int]] = {}
        n_species = len(model.species)
        for i, v in enumerate(variables):
            if v not in index:
                index[v] = (0, i) if i < n_species else (1, i - n_species)
        if self._default_readouts:  # like summary(): only readouts whose variables exist
            self.readouts = [r for r in self.readouts if all(v in index for v in r.all_variables)]
        missing = sorted(
            {v for r in self.readouts for v in r.all_variables if v not in index}
            | {v for v in self.trajectory_names if v not in index}
        )
        if missing:
            hints = {m: difflib.get_close_matches(m, variables, n=3) for m in missing}
            raise ParameterError(
                f"unknown variable(s) in readouts/trajectories: {missing}; close matches: {hints}"
            )
        self._index = index
        param_names = set(factor_names) | set(self.params)
        self._fast_model = model.with_fast_parameters(
            [n for n in param_names if n in model.table.frame.index]
        )
        self._factors = set(self.protocol.factor_names) if is_template(self.protocol) else set()
        self._model = model

    def validate(self, factor_names: Sequence[str]) -> None:
        """Check design columns before any run: protocol factors or model parameter names."""
        self.setup(factor_names)
        assert self._model is not None
        protocol_factors = self._factors
        known = set(self._model.parameter_names) | set(self._model.stubs)
        bad = [n for n in factor_names if n not in protocol_factors and n not in known]
        if bad:
            hints = {
                n: difflib.get_close_matches(n, sorted(known | protocol_factors), n=3) for n in bad
            }
            where = (
                "protocol factors or model parameters"
                if protocol_factors
                else "model parameters (the protocol is fixed: use a template for protocol factors)"
            )
            raise ParameterError(f"design columns {bad} are not {where}; close matches: {hints}")
        self._model.parameter_vector(self.params)  # fixed overrides are valid

    # ---------------------------------------------------------------------- call
    def __call__(self, values: Mapping[str, float]) -> dict[str, Any]:
        """Outputs of one run: readouts (floats) and trajectories (arrays on the grid)."""
        if self._model is None:
            self.setup(list(values))
        if is_template(self.protocol):
            factors = self._factors
            pf = {k: v for k, v in values.items() if k in factors}
            overrides = dict(self.params)
            overrides.update((k, v) for k, v in values.items() if k not in factors)
            with warnings.catch_warnings():
                for category in self.ignored_warnings:
                    warnings.simplefilter("ignore", category)
                plan = self.protocol.build(pf)
        else:
            plan = self.protocol
            overrides = dict(self.params)
            overrides.update(values)
        if self.simulator is None:
            raise ModelError(f"{type(self).__name__}: no simulator set for this evaluator")
        try:
            res = self.simulator(self._fast_model, plan, overrides, **self.simulate_options)
        except SolverError:
            if self.fallback_options is None:
                raise
            res = self.simulator(self._fast_model, plan, overrides, **self.fallback_options)
        return self.readouts_of(
            res.time_h,
            res.states,
            res.derived,
            plan.duration_h,
            getattr(plan, "first_treatment_h", None),
        )

    def readouts_of(
        self,
        time_h: np.ndarray,
        states: np.ndarray,
        derived: np.ndarray,
        duration_h: float,
        first_treatment_h: float | None = None,
    ) -> dict[str, Any]:
        """Readouts and trajectories from a simulation's arrays (time in h).

        *first_treatment_h* is the start of the first treatment, needed by readouts whose
        day counts from it (``relative``).
        """
        t = hours_to_days(time_h)
        arrays = (states, derived)
        index = self._index
        cache: dict[tuple[str, ...], np.ndarray] = {}

        def series(variables: tuple[str, ...]) -> np.ndarray:
            if variables not in cache:
                cols = [arrays[which][:, i] for which, i in (index[v] for v in variables)]
                y = cols[0]
                for col in cols[1:]:
                    y = y + col
                cache[variables] = y
            return cache[variables]

        first_d = None if first_treatment_h is None else hours_to_days(first_treatment_h)
        out: dict[str, Any] = evaluate(self.readouts, series, t, hours_to_days(duration_h), first_d)
        grid = self.time_grid_day
        if grid is not None:
            for v in self.trajectory_names:
                out[v] = np.interp(grid, t, series((v,)))
        return out


#: files of the parameter folder that hold no model numbers
_NO_NUMBERS = frozenset({"references.tsv"})


def source_fingerprint() -> str:
    """Hash of the files the model's numbers come from: the model files, the parameter
    tables and the presets (``parameters/*.toml``); the bibliography
    (``references.tsv``) is left out. A change invalidates resume stores."""
    h = hashlib.sha256()
    for name, patterns in (("models", ("*.py",)), ("parameters", ("**/*.tsv", "**/*.toml"))):
        try:
            folder = resource_dir(name)
        except MhimmuneError:
            continue
        for f in sorted({f for pattern in patterns for f in folder.glob(pattern)}):
            if f.name in _NO_NUMBERS:
                continue
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
