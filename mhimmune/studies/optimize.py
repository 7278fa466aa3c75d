"""Choose a treatment schedule: optimise protocol factors over a virtual cohort.

A *candidate* is one combination of factor values (``n_sessions=3,
session_interval_day=2.5``); it is simulated once per virtual animal of a *cohort*
(one row per animal, one column per model parameter) and the per-animal values of one
output (``objective``, e.g. a responder flag) are aggregated (mean, median or a
quantile) into the candidate's objective. :func:`optimize_schedule` searches the
candidates

* ``"grid"``: every combination of the factors' levels;
* ``"random"``: ``budget`` candidates drawn with a seeded :class:`numpy.random.Generator`;
* ``"differential_evolution"``: :func:`scipy.optimize.differential_evolution`, one
  generation at a time, with integer variables for counts and for lists of levels;

and every batch (the whole grid, all random candidates, or one generation) goes through
one :func:`~mhimmune.runs.ensemble.run_ensemble` call, so runs are spread over local
processes or a Dask cluster; local processes are one
:class:`~mhimmune.runs.ensemble.WorkerPool` kept for the whole search, so a generation does
not pay the start-up of its workers. Constraints (a limit on H·f, on the number of
sessions, on the total antibody dose, or any predicate) are checked before simulating:
infeasible candidates are listed but never simulated. Failed runs are data: they are
counted per candidate, and a candidate whose runs all failed cannot be the optimum.

With more than one animal, animals are resampled (bootstrap) to tell how robust the
choice is: how often the chosen optimum stays the best (``p_best``), a percentile
interval of its objective, and whether the runner-up lies inside it.

>>> from mhimmune.mh.evaluator import ModelEvaluator
>>> from mhimmune.mh.template import ScheduleTemplate
>>> ev = ModelEvaluator(ScheduleTemplate("60 d"), {"responder": "cure<=10@+50"})
>>> res = optimize_schedule(ev, {"n_sessions": [1, 2, 3], "pdl1_delay_day": (-2.0, 6.0)},
...                         cohort=animals, method="differential_evolution", budget=300,
...                         constraints=Constraints(hf_max=5e9), n_jobs=4)
>>> print(res.summary()); res.plot()

Results are predictions of a hypothesis-generating model: an optimum is a schedule
worth testing, and its bootstrap interval only reflects the variability of the virtual
cohort, not the uncertainty of the model.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError, ProtocolError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.runs.ensemble import (
    STATUS_OK,
    EnsembleFailureWarning,
    WorkerPool,
    check_pool,
    run_ensemble,
)

__all__ = ["Constraints", "optimize_schedule", "OptimizationResult"]

#: methods of :func:`optimize_schedule`
METHODS = ("grid", "random", "differential_evolution")
#: levels given to a ``(low, high)`` factor of a grid when no budget is given
DEFAULT_GRID_LEVELS = 5
#: candidates drawn by ``method="random"`` when no budget is given
DEFAULT_RANDOM_BUDGET = 100
#: generations after the initial population of ``differential_evolution`` without a budget
DEFAULT_DE_GENERATIONS = 50
#: confidence level of the bootstrap percentile intervals
CI_LEVEL = 0.95
#: options of :func:`scipy.optimize.differential_evolution` that ``de_options`` may set
DE_OPTIONS = ("strategy", "popsize", "tol", "atol", "mutation", "recombination", "init")
#: column names of the candidate table besides the factors
TABLE_COLUMNS = (
    "feasible",
    "violation",
    "n_ok",
    "n_failed",
    "objective",
    "rank",
    "ci_low",
    "ci_high",
    "p_best",
)
_RESERVED = set(TABLE_COLUMNS) | {"candidate", "animal", "run", "status", "message", "seconds"}
# n_jobs > 1 runs the whole search on one WorkerPool; False restores new processes per
# batch (for analyses/benchmarks/bench_pool.py only)
_ONE_POOL_PER_SEARCH = True
_INTEGER_KINDS = ("count", "switch")


# ================================================================================ constraints


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


@dataclass(frozen=True)
class Constraints:
    """Limits a schedule must respect; candidates that break one are not simulated.

    Every limit is checked on the full factor dict of a candidate (the template's
    defaults with the candidate's and the fixed values, see :func:`optimize_schedule`);
    a limit left at ``None`` is not checked.

    Parameters
    ----------
    hf_max
        Largest field product H·f in A/(m·s), with H = ``field_kA_per_m`` · 10³ A/m and
        f = ``frequency_kHz`` · 10³ Hz (e.g. 5e9, the Hergt–Dutz limit, or 4.85e8, the
        Brezovich limit). Not checked for schedules without MH (``n_sessions`` = 0).
    max_sessions
        Largest number of MH sessions (``n_sessions``), an integer ≥ 0.
    max_total_antibody_mg_per_kg
        Largest total anti-PD-L1 dose in mg/kg, ``pdl1_dose_mg_per_kg`` × ``pdl1_count``.
    custom
        Further predicates ``f(values: dict) -> bool`` on the full factor dict; ``False``
        means infeasible.
    """

    hf_max: float | None = None
    max_sessions: int | None = None
    max_total_antibody_mg_per_kg: float | None = None
    custom: tuple[Callable[[dict], bool], ...] = ()

    #: keys of :meth:`from_dict`
    KEYS = ("hf_max", "max_sessions", "max_total_antibody_mg_per_kg", "custom")

    def __post_init__(self) -> None:
        for name in ("hf_max", "max_total_antibody_mg_per_kg"):
            x = getattr(self, name)
            if x is None:
                continue
            if not _is_number(x) or not math.isfinite(float(x)) or float(x) <= 0:
                raise ParameterError(
                    f"constraints.{name}: must be a finite number > 0 or None (got {x!r})"
                )
            object.__setattr__(self, name, float(x))
        m = self.max_sessions
        if m is not None:
            if (
                not _is_number(m)
                or not math.isfinite(float(m))
                or float(m) < 0
                or float(m) != int(m)
            ):
                raise ParameterError(
                    f"constraints.max_sessions: must be an integer ≥ 0 or None (got {m!r})"
                )
            object.__setattr__(self, "max_sessions", int(m))
        custom = self.custom
        if callable(custom):
            custom = (custom,)
        if isinstance(custom, (str, bytes)) or not isinstance(custom, Sequence):
            raise ParameterError(
                f"constraints.custom: must be a sequence of callables "
                f"f(values) -> bool (got {type(custom).__name__})"
            )
        custom = tuple(custom)
        bad = [i for i, f in enumerate(custom) if not callable(f)]
        if bad:
            raise ParameterError(
                f"constraints.custom: items {bad} are not callable; each must "
                f"be a predicate f(values: dict) -> bool"
            )
        object.__setattr__(self, "custom", custom)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Constraints:
        """Constraints from a mapping such as a TOML table.

        Parameters
        ----------
        d
            Keys ``hf_max`` (a number in A/(m·s) or a text with a unit, ``"5e9 A/m/s"``),
            ``max_sessions`` (integer), ``max_total_antibody_mg_per_kg`` (number in mg/kg
            or text with a unit, ``"30 mg/kg"``) and ``custom`` (predicates); all optional.

        Returns
        -------
        Constraints

        Raises
        ------
        ParameterError
            An unknown key (the message lists the allowed keys) or a value out of range.
        """
        from mhimmune.core.units import convert

        if not isinstance(d, Mapping):
            raise ParameterError(
                f"constraints: expected a mapping with keys {', '.join(cls.KEYS)}, "
                f"got {type(d).__name__}"
            )
        unknown = [k for k in d if k not in cls.KEYS]
        if unknown:
            raise ParameterError(
                f"constraints: unknown key(s) {unknown}; allowed keys: {', '.join(cls.KEYS)}"
            )
        kw = dict(d)
        for key, unit in (("hf_max", "A/(m*s)"), ("max_total_antibody_mg_per_kg", "mg/kg")):
            if isinstance(kw.get(key), str):
                kw[key] = convert(kw[key], unit, f"constraints.{key}", default_unit=unit)
        if "custom" in kw and kw["custom"] is None:
            kw["custom"] = ()
        return cls(**kw)

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return (
            self.hf_max is not None
            or self.max_sessions is not None
            or self.max_total_antibody_mg_per_kg is not None
            or bool(self.custom)
        )

    def _needs(self, values: Mapping[str, Any], names: Sequence[str], limit: str) -> list[float]:
        missing = [n for n in names if n not in values]
        if missing:
            raise ParameterError(f"constraints.{limit}: the factor values lack {missing}")
        return [float(values[n]) for n in names]

    def _check(self, values: Mapping[str, Any]) -> tuple[list[str], float]:
        """(reasons, excess): violations and how far beyond the limits (relative, ≥ 0)."""
        reasons: list[str] = []
        excess = 0.0
        if self.hf_max is not None:
            h, f = self._needs(values, ("field_kA_per_m", "frequency_kHz"), "hf_max")
            hf = h * 1e3 * f * 1e3
            with_mh = float(values.get("n_sessions", 1.0)) > 0
            if with_mh and hf > self.hf_max * (1 + 1e-12):
                reasons.append(f"H·f = {hf:.4g} A/(m·s) > hf_max {self.hf_max:.4g}")
                excess += hf / self.hf_max - 1.0
        if self.max_sessions is not None:
            [n] = self._needs(values, ("n_sessions",), "max_sessions")
            if n > self.max_sessions:
                reasons.append(f"n_sessions = {n:g} > max_sessions {self.max_sessions}")
                excess += (n - self.max_sessions) / max(1.0, float(self.max_sessions))
        if self.max_total_antibody_mg_per_kg is not None:
            dose, count = self._needs(
                values, ("pdl1_dose_mg_per_kg", "pdl1_count"), "max_total_antibody_mg_per_kg"
            )
            total = dose * count
            limit = self.max_total_antibody_mg_per_kg
            if total > limit * (1 + 1e-12):
                reasons.append(
                    f"anti-PD-L1 total {total:g} mg/kg (pdl1_dose_mg_per_kg {dose:g} × "
                    f"pdl1_count {count:g}) > max_total_antibody_mg_per_kg {limit:g}"
                )
                excess += total / limit - 1.0
        for i, pred in enumerate(self.custom):
            name = getattr(pred, "__name__", type(pred).__name__)
            try:
                ok = pred(dict(values))
            except Exception as exc:
                raise ParameterError(
                    f"constraints.custom[{i}] ({name}): raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(ok, (bool, np.bool_)):
                raise ParameterError(
                    f"constraints.custom[{i}] ({name}): must return True or False (got {ok!r})"
                )
            if not ok:
                reasons.append(f"custom constraint {name} not met")
                excess += 1.0
        return reasons, excess

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """Why *values* is infeasible.

        Parameters
        ----------
        values
            The full factor dict (factor name -> number in the factor's unit); it must
            hold the factors the set limits need.

        Returns
        -------
        list of str
            One human-readable reason per violated limit; ``[]`` when feasible.
        """
        return self._check(values)[0]


# ===================================================================================== space


@dataclass
class _Factor:
    """One optimised factor: discrete levels or a continuous/integer range."""

    name: str
    levels: list[float] | None  # discrete levels, in the given order
    low: float | None = None
    high: float | None = None
    integer: bool = False

    @property
    def constant(self) -> bool:
        return self.levels is not None and len(self.levels) == 1

    def grid_levels(self, n: int) -> list[float]:
        if self.levels is not None:
            return list(self.levels)
        if self.integer:
            return [float(v) for v in np.unique(np.round(np.linspace(self.low, self.high, n)))]
        return [float(v) for v in np.linspace(self.low, self.high, n)]

    def n_grid(self, n: int) -> int:
        return len(self.grid_levels(n))


def _protocol_kind(name: str) -> str | None:
    info = PROTOCOL_FACTORS.get(name)
    return None if info is None else info.kind


def _check_protocol_value(name: str, x: float, where: str) -> None:
    kind = _protocol_kind(name)
    if kind == "count" and (x < 0 or x != int(x)):
        raise ProtocolError(f"{where}: {name} is a count; values must be integers ≥ 0 (got {x:g})")
    if kind == "switch" and x not in (0.0, 1.0):
        raise ProtocolError(f"{where}: {name} is a switch; values must be 0 or 1 (got {x:g})")


def _template_of(evaluator) -> ScheduleTemplate | None:
    proto = getattr(evaluator, "protocol", None)
    return proto if isinstance(proto, ScheduleTemplate) else None


def _parse_space(space, template: ScheduleTemplate | None, template_based: bool) -> list[_Factor]:
    if not isinstance(space, Mapping):
        raise ParameterError(
            f"space: expected a mapping factor name -> list of levels or "
            f"(low, high), got {type(space).__name__}"
        )
    if not space:
        raise ParameterError(
            "space: empty; give at least one factor, e.g. "
            "{'n_sessions': [1, 2, 3]} or {'session_interval_day': (1.0, 4.0)}"
        )
    factors = []
    for name, spec in space.items():
        where = f"space.{name}"
        if not isinstance(name, str) or not name:
            raise ParameterError(f"space: factor names must be text, got {name!r}")
        if name in _RESERVED:
            raise ParameterError(
                f"{where}: reserved name; factor names must not be one of {sorted(_RESERVED)}"
            )
        if template_based and name not in PROTOCOL_FACTORS:
            hints = difflib.get_close_matches(name, list(PROTOCOL_FACTORS), n=3)
            raise ParameterError(
                f"{where}: unknown protocol factor; the space of a ScheduleTemplate "
                f"evaluator holds protocol factors (close matches: {hints}; all: "
                f"{', '.join(PROTOCOL_FACTORS)}); give model parameters as "
                f"cohort columns or fixed values"
            )
        integer = _protocol_kind(name) in _INTEGER_KINDS
        if isinstance(spec, tuple):
            if len(spec) != 2 or not all(_is_number(x) for x in spec):
                raise ParameterError(
                    f"{where}: a tuple is a continuous range (low, high) of two "
                    f"numbers (got {spec!r}); give discrete levels as a list"
                )
            lo, hi = float(spec[0]), float(spec[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ParameterError(
                    f"{where}: range (low, high) needs finite low < high (got {spec!r})"
                )
            if integer and (lo != int(lo) or hi != int(hi)):
                raise ProtocolError(
                    f"{where}: {name} takes integers; the range bounds must be "
                    f"integers (got {spec!r})"
                )
            for x in (lo, hi):
                _check_protocol_value(name, x, where)
            f = _Factor(name, None, lo, hi, integer)
            checks = (lo, hi)
        else:
            if isinstance(spec, (str, bytes, Mapping)) or not isinstance(
                spec, (Sequence, np.ndarray, range)
            ):
                raise ParameterError(
                    f"{where}: expected a list of levels or a (low, high) tuple "
                    f"(got {spec!r}); hold a single value constant with fixed="
                )
            levels = (
                list(np.asarray(spec, dtype=object).ravel())
                if isinstance(spec, np.ndarray)
                else list(spec)
            )
            if not levels:
                raise ParameterError(f"{where}: no levels; give at least one value")
            bad = [x for x in levels if not _is_number(x) or not math.isfinite(float(x))]
            if bad:
                raise ParameterError(f"{where}: levels must be finite numbers (got {bad[:3]})")
            levels = [float(x) for x in levels]
            if len(set(levels)) != len(levels):
                dup = sorted({x for x in levels if levels.count(x) > 1})
                raise ParameterError(f"{where}: duplicate levels {dup}")
            for x in levels:
                _check_protocol_value(name, x, where)
            f = _Factor(name, levels, min(levels), max(levels), integer)
            checks = levels
        if template is not None:
            for x in checks:
                try:
                    template.values({name: x})
                except ProtocolError as exc:
                    raise ProtocolError(f"{where}: {exc}") from None
        factors.append(f)
    return factors


def _parse_fixed(
    fixed, factors: list[_Factor], template: ScheduleTemplate | None
) -> dict[str, float]:
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise ParameterError(
            f"fixed: expected a mapping factor name -> number, got {type(fixed).__name__}"
        )
    names = {f.name for f in factors}
    out = {}
    for k, x in fixed.items():
        if not isinstance(k, str) or k in _RESERVED:
            raise ParameterError(f"fixed: invalid or reserved name {k!r}")
        if k in names:
            raise ParameterError(f"fixed.{k}: also in space; a factor is either optimised or fixed")
        if not _is_number(x) or not math.isfinite(float(x)):
            raise ParameterError(f"fixed.{k}: must be a finite number (got {x!r})")
        _check_protocol_value(k, float(x), f"fixed.{k}")
        out[k] = float(x)
    if template is not None:
        try:
            template.values({k: v for k, v in out.items() if k in PROTOCOL_FACTORS})
        except ProtocolError as exc:
            raise ProtocolError(f"fixed: {exc}") from None
    return out


def _parse_cohort(cohort, taken: set[str]) -> pd.DataFrame | None:
    from mhimmune.studies.cohort import check_cohort

    if cohort is None:
        return None
    return check_cohort(cohort, taken | _RESERVED, "also space/fixed factors or reserved names")


_QUANTILE = re.compile(r"^q(\d+(?:\.\d*)?|\.\d+)$")


def _parse_aggregate(aggregate) -> tuple[str, float | None]:
    if aggregate in ("mean", "median"):
        return aggregate, None
    if isinstance(aggregate, str):
        m = _QUANTILE.match(aggregate.strip())
        if m:
            q = float(m.group(1))
            if 0.0 <= q <= 1.0:
                return aggregate.strip(), q
            raise ParameterError(
                f"aggregate: quantile {q:g} must be in [0, 1] (write 'q0.25' for "
                f"the lower quartile)"
            )
    raise ParameterError(
        f"aggregate: must be 'mean', 'median' or a quantile 'qP' with P in "
        f"[0, 1] such as 'q0.25' (got {aggregate!r})"
    )


def _aggregate_rows(Y: np.ndarray, aggregate: str, q: float | None) -> np.ndarray:
    """Aggregate each row of *Y* over its finite entries (NaN where a row has none)."""
    ok = np.isfinite(Y)
    count = ok.sum(axis=1)
    if aggregate == "mean":
        s = np.where(ok, Y, 0.0).sum(axis=1)
        return np.divide(s, count, out=np.full(len(Y), np.nan), where=count > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        return np.nanquantile(Y, 0.5 if q is None else q, axis=1)


# ================================================================================= search


class _Search:
    """State of one optimisation: candidates, their runs and objective values."""

    def __init__(
        self,
        evaluator,
        factors,
        fixed,
        cohort,
        constraints,
        template,
        objective,
        aggregate,
        q,
        maximize,
        run_kwargs,
        method,
    ):
        self.evaluator = evaluator
        self.factors = factors
        self.names = [f.name for f in factors]
        self.fixed = fixed
        self.cohort = cohort
        self.n_animals = 1 if cohort is None else len(cohort)
        self.animal_ids = [0] if cohort is None else list(cohort.index)
        self.constraints = constraints
        self.template = template
        self.objective = objective
        self.aggregate = aggregate
        self.q = q
        self.maximize = maximize
        self.run_kwargs = run_kwargs
        self.method = method
        self.index: dict[tuple[float, ...], int] = {}
        self.rows: list[dict[str, Any]] = []
        self.Y: dict[int, np.ndarray] = {}
        self.runs: list[pd.DataFrame] = []
        self.output_names: list[str] | None = None
        self.batches = 0
        self.n_simulated = 0

    # ------------------------------------------------------------------ values
    def full_values(self, cand: Mapping[str, float]) -> dict[str, float]:
        merged = {**self.fixed, **cand}
        protocol = {k: v for k, v in merged.items() if k in PROTOCOL_FACTORS}
        if self.template is not None:
            base = self.template.values(protocol)
        else:
            base = {n: float(f.default) for n, f in PROTOCOL_FACTORS.items()}
            base.update(protocol)
        base.update({k: v for k, v in merged.items() if k not in PROTOCOL_FACTORS})
        return base

    # --------------------------------------------------------------- evaluate
    def evaluate(self, candidates: Sequence[Mapping[str, float]], desc: str) -> list[int]:
        """Candidate ids of *candidates*; new feasible ones simulated in one ensemble."""
        ids, new = [], []
        for cand in candidates:
            key = tuple(float(cand[n]) for n in self.names)
            cid = self.index.get(key)
            if cid is None:
                cid = len(self.rows)
                self.index[key] = cid
                values = dict(zip(self.names, key))
                reasons, excess = self.constraints._check(self.full_values(values))
                self.rows.append(
                    {
                        **values,
                        "feasible": not reasons,
                        "violation": "; ".join(reasons),
                        "n_ok": 0,
                        "n_failed": 0,
                        "objective": np.nan,
                        "_excess": excess,
                    }
                )
                if not reasons:
                    new.append(cid)
            ids.append(cid)
        if new:
            self._simulate(new, desc)
        return ids

    def _simulate(self, cids: list[int], desc: str) -> None:
        n_a = self.n_animals
        cand = pd.DataFrame([{n: self.rows[c][n] for n in self.names} for c in cids])
        design = pd.DataFrame(
            {n: np.repeat(cand[n].to_numpy(dtype=float), n_a) for n in self.names}
        )
        for k, v in self.fixed.items():
            design[k] = v
        if self.cohort is not None:
            for c in self.cohort.columns:
                design[c] = np.tile(self.cohort[c].to_numpy(dtype=float), len(cids))
        res = run_ensemble(self.evaluator, design, desc=desc, warn=False, **self.run_kwargs)
        self.batches += 1
        self.n_simulated += len(design)
        if res.output_names:
            if self.objective not in res.output_names:
                raise ParameterError(
                    f"objective: {self.objective!r} is not an output of the "
                    f"evaluator; its outputs: {res.output_names}"
                )
            self.output_names = list(res.output_names)
        table = res.results.drop(columns=["run"])
        table.insert(0, "animal", np.tile(np.asarray(self.animal_ids, dtype=object), len(cids)))
        table.insert(0, "candidate", np.repeat(np.asarray(cids, dtype=np.int64), n_a))
        self.runs.append(table)
        ok = (table["status"] == STATUS_OK).to_numpy().reshape(len(cids), n_a)
        y = (
            table[self.objective].to_numpy(dtype=float)
            if self.objective in table
            else np.full(len(table), np.nan)
        )
        y = np.where(ok.ravel(), y, np.nan).reshape(len(cids), n_a)
        agg = _aggregate_rows(y, self.aggregate, self.q)
        for j, c in enumerate(cids):
            self.Y[c] = y[j]
            self.rows[c]["n_ok"] = int(ok[j].sum())
            self.rows[c]["n_failed"] = int(n_a - ok[j].sum())
            self.rows[c]["objective"] = float(agg[j])

    # ------------------------------------------------------------------ results
    def table(self) -> pd.DataFrame:
        t = pd.DataFrame(
            self.rows,
            columns=[
                *self.names,
                "feasible",
                "violation",
                "n_ok",
                "n_failed",
                "objective",
                "_excess",
            ],
        )
        t = t.drop(columns=["_excess"])
        t["feasible"] = t["feasible"].astype(bool)
        t["n_ok"] = t["n_ok"].astype(np.int64)
        t["n_failed"] = t["n_failed"].astype(np.int64)
        t["objective"] = t["objective"].astype(float)
        t.index.name = "candidate"
        valid = t["feasible"] & np.isfinite(t["objective"])
        rank = t.loc[valid, "objective"].rank(method="min", ascending=not self.maximize)
        t["rank"] = pd.array([pd.NA] * len(t), dtype="Int64")
        t.loc[valid, "rank"] = rank.astype(np.int64).to_numpy()
        return t

    def all_runs(self) -> pd.DataFrame:
        if not self.runs:
            return pd.DataFrame(
                columns=["candidate", "animal", "status", "message", "seconds", *self.names]
            )
        return pd.concat(self.runs, ignore_index=True)


# ------------------------------------------------------------------------------ methods


def _grid_candidates(factors: list[_Factor], budget: int | None) -> list[dict[str, float]]:
    cont = [f for f in factors if f.levels is None]
    n_disc = math.prod(len(f.levels) for f in factors if f.levels is not None)
    if cont:
        if budget is None:
            n = DEFAULT_GRID_LEVELS
        else:
            n = int(math.floor((budget / n_disc) ** (1.0 / len(cont)) + 1e-9))
            if n < 2:
                raise ParameterError(
                    f"budget: {budget} is too small for a grid with {len(cont)} "
                    f"range factor(s) (2 levels each) and {n_disc} combinations "
                    f"of listed levels: give budget ≥ {n_disc * 2 ** len(cont)}"
                )
            # the largest level count whose grid fits the budget (integer ranges may have fewer)
            while math.prod(f.n_grid(n + 1) for f in cont) * n_disc <= budget and any(
                f.n_grid(n + 1) > f.n_grid(n) for f in cont
            ):
                n += 1
    else:
        n = DEFAULT_GRID_LEVELS
    levels = [f.grid_levels(n) for f in factors]
    total = math.prod(len(v) for v in levels)
    if budget is not None and total > budget:
        raise ParameterError(
            f"budget: the grid has {total} candidates > budget {budget}; "
            f"give fewer levels or a larger budget"
        )
    names = [f.name for f in factors]
    return [dict(zip(names, combo)) for combo in itertools.product(*levels)]


def _random_candidates(factors: list[_Factor], budget: int, rng: np.random.Generator) -> list[dict]:
    cols = {}
    for f in factors:
        if f.levels is not None:
            cols[f.name] = np.asarray(f.levels, dtype=float)[rng.integers(0, len(f.levels), budget)]
        elif f.integer:
            cols[f.name] = rng.integers(int(f.low), int(f.high) + 1, budget).astype(float)
        else:
            cols[f.name] = rng.uniform(f.low, f.high, budget)
    return [{f.name: float(cols[f.name][i]) for f in factors} for i in range(budget)]


class _Abort(Exception):
    """Carries an error out of scipy's differential evolution unchanged."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _never_called(x) -> float:  # the objective scipy holds; generations go through workers
    raise RuntimeError("differential_evolution called the objective outside the generation map")


def _rng_keyword() -> str:
    from scipy.optimize import differential_evolution

    return "rng" if "rng" in inspect.signature(differential_evolution).parameters else "seed"


def _run_de(
    search: _Search,
    factors: list[_Factor],
    budget: int | None,
    seed: int,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    from scipy.optimize import differential_evolution

    variables = [f for f in factors if not f.constant]
    if not variables:
        raise ParameterError(
            "space: differential_evolution needs at least one factor with more than one value"
        )
    bounds, integrality = [], []
    for f in variables:
        if f.levels is not None:
            bounds.append((0.0, float(len(f.levels) - 1)))
            integrality.append(True)
        else:
            bounds.append((f.low, f.high))
            integrality.append(f.integer)
    init = options.get("init", "latinhypercube")
    if init not in ("latinhypercube", "sobol", "halton", "random"):
        raise ParameterError(
            f"de_options.init: must be 'latinhypercube', 'sobol', 'halton' or "
            f"'random' (got {init!r})"
        )
    popsize = options.get("popsize", 15)
    if not _is_number(popsize) or int(popsize) != popsize or popsize < 1:
        raise ParameterError(f"de_options.popsize: must be an integer ≥ 1 (got {popsize!r})")
    n_pop = max(5, int(popsize) * len(variables))
    if budget is None:
        maxiter = DEFAULT_DE_GENERATIONS
    else:
        maxiter = budget // n_pop - 1
        if maxiter < 1:
            raise ParameterError(
                f"budget: differential_evolution evaluates populations of {n_pop} "
                f"candidates (popsize {popsize} × {len(variables)} variables); give "
                f"budget ≥ {2 * n_pop} (the initial population and one generation)"
            )
    constants = {f.name: f.levels[0] for f in factors if f.constant}
    generation = [0]
    scale = [0.0]  # largest |energy| of a valid candidate so far

    def candidate(x) -> dict[str, float]:
        out = dict(constants)
        for f, v in zip(variables, np.asarray(x, dtype=float)):
            if f.levels is not None:
                out[f.name] = f.levels[int(round(v))]
            elif f.integer:
                out[f.name] = float(round(v))
            else:
                out[f.name] = float(v)
        return {n: out[n] for n in search.names}

    def generation_map(func, population):
        # evaluate a whole generation through one ensemble; func (scipy's wrapper) is bypassed.
        # scipy turns TypeError/ValueError raised here into a RuntimeError about the map
        # callable, so our errors travel wrapped and are re-raised below.
        try:
            return energies_of(population)
        except Exception as exc:
            raise _Abort(exc) from exc

    def energies_of(population):
        cands = [candidate(x) for x in population]
        desc = "DE initial population" if generation[0] == 0 else f"DE generation {generation[0]}"
        generation[0] += 1
        ids = search.evaluate(cands, desc)
        energies = []
        for cid in ids:
            row = search.rows[cid]
            e = row["objective"]
            if row["feasible"] and math.isfinite(e):
                e = -e if search.maximize else e
                scale[0] = max(scale[0], abs(e))
            energies.append(e)
        penalty = 1e3 * (1.0 + scale[0])
        out = []
        for cid, e in zip(ids, energies):
            row = search.rows[cid]
            if not row["feasible"]:
                out.append(penalty * (2.0 + row["_excess"]))
            elif not math.isfinite(e):
                out.append(penalty)
            else:
                out.append(e)
        return out

    kwargs = {k: v for k, v in options.items()}
    kwargs.setdefault("popsize", 15)
    kwargs["popsize"] = int(kwargs["popsize"])
    kwargs.update(
        bounds=bounds,
        integrality=np.asarray(integrality, bool),
        maxiter=maxiter,
        updating="deferred",
        workers=generation_map,
        polish=False,
    )
    kwargs[_rng_keyword()] = seed
    try:
        res = differential_evolution(_never_called, **kwargs)
    except _Abort as abort:
        raise abort.error from None
    return {
        "de_nit": int(res.nit),
        "de_message": str(res.message),
        "de_generations": generation[0] - 1,
        "de_population": n_pop,
        "de_maxiter": maxiter,
    }


# ================================================================================= bootstrap


def _bootstrap(
    Y: np.ndarray,
    aggregate: str,
    q: float | None,
    maximize: bool,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample animals: (B, share) with B[b, c] the objective of candidate c in resample b
    and share[c] the fraction of resamples in which c is the best (ties split evenly)."""
    n_c, n_a = Y.shape
    B = np.empty((n_boot, n_c))
    share = np.zeros(n_c)
    for b in range(n_boot):
        idx = rng.integers(0, n_a, n_a)
        v = _aggregate_rows(Y[:, idx], aggregate, q)
        B[b] = v
        finite = np.isfinite(v)
        if not finite.any():
            continue
        target = v[finite].max() if maximize else v[finite].min()
        winners = finite & (v == target)
        share[winners] += 1.0 / winners.sum()
    return B, share / n_boot


def _percentiles(col: np.ndarray) -> tuple[float, float]:
    col = col[np.isfinite(col)]
    if len(col) == 0:
        return math.nan, math.nan
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(col, [alpha, 1 - alpha])
    return float(lo), float(hi)


# ================================================================================= main


def optimize_schedule(
    evaluator: Callable[[dict], Any],
    space: Mapping[str, Any],
    *,
    cohort: pd.DataFrame | None = None,
    objective: str = "responder",
    aggregate: str = "mean",
    maximize: bool = True,
    constraints: Constraints | Mapping[str, Any] | None = None,
    method: str = "grid",
    fixed: Mapping[str, float] | None = None,
    budget: int | None = None,
    seed: int = 0,
    n_boot: int = 200,
    n_jobs: int = 1,
    client: Any = None,
    pool: WorkerPool | None = None,
    progress: bool | None = None,
    de_options: Mapping[str, Any] | None = None,
) -> OptimizationResult:
    """Find the schedule whose aggregated outcome over a virtual cohort is best.

    Parameters
    ----------
    evaluator
        A :class:`~mhimmune.runs.ensemble.ModelEvaluator` (with a
        :class:`~mhimmune.runs.ensemble.ScheduleTemplate`, the space holds protocol factors) or
        any picklable callable ``f(values: dict) -> dict`` of scalar outputs, as
        :func:`~mhimmune.runs.ensemble.run_ensemble` accepts.
    space
        Factor name -> a list of levels (discrete) or a ``(low, high)`` tuple (a range;
        integers for the count and switch factors of
        :data:`~mhimmune.runs.ensemble.PROTOCOL_FACTORS`). Values are bare numbers in the unit
        of the factor's name. With a ScheduleTemplate evaluator every name must be a
        protocol factor; with other callables any name is passed on.
    cohort
        One row per virtual animal, one column per model parameter (overrides of the
        evaluator; for plain callables any column). ``None``: one nominal animal (and no
        bootstrap). Every candidate is simulated for every animal.
    objective
        Name of the scalar output to optimise (a readout name of a ModelEvaluator).
    aggregate
        How per-animal values make a candidate's objective: ``"mean"`` (e.g. the
        responder fraction of a 0/1 flag), ``"median"`` or a quantile ``"qP"``
        (``"q0.25"``). Failed runs are left out.
    maximize
        Maximise (default) or minimise the objective.
    constraints
        :class:`Constraints` or a mapping for :meth:`Constraints.from_dict`. They are
        checked on the full factor dict: ``template.values(candidate + fixed)`` when the
        evaluator's ``protocol`` is a ScheduleTemplate, otherwise the candidate and the
        fixed values merged over the defaults of
        :data:`~mhimmune.runs.ensemble.PROTOCOL_FACTORS` (other names are kept). Infeasible
        candidates are listed in the table but never simulated.
    method
        ``"grid"``: every combination of levels; a ``(low, high)`` factor gets *n* evenly
        spaced levels including both ends (the distinct rounded ones for a count range):
        *n* = :data:`DEFAULT_GRID_LEVELS` without a budget, otherwise the largest *n*,
        the same for every range factor, whose grid has at most ``budget`` candidates.
        A grid with more than ``budget`` candidates is an error, not truncated.
        ``"random"``: ``budget`` (default :data:`DEFAULT_RANDOM_BUDGET`) candidates drawn
        with ``numpy.random.default_rng(seed)`` (uniform over levels, ranges, or the
        integers of a count range); duplicates are evaluated once.
        ``"differential_evolution"``: :func:`scipy.optimize.differential_evolution` with
        integer variables for count ranges and for list factors (the index of the level),
        ``updating="deferred"``, one ensemble per generation, no polishing, infeasible and
        all-failed candidates penalised; ``budget`` is the largest number of candidate
        evaluations: ``maxiter = budget // population - 1`` with ``population =
        max(5, popsize × n_variables)`` (default :data:`DEFAULT_DE_GENERATIONS`
        generations); it may stop earlier at scipy's convergence tolerance. Candidates
        proposed again are not simulated again.
    fixed
        Factor values (protocol factors or model parameters) held for every candidate.
    budget
        Number of candidates, see *method*.
    seed
        Seed of the random draws, of differential evolution and of the bootstrap; the
        same seed gives the same table.
    n_boot
        Bootstrap resamples of animals (with more than one animal); 0 skips it.
    n_jobs, client, progress
        Passed to :func:`~mhimmune.runs.ensemble.run_ensemble` (local processes, a Dask client
        or scheduler address, the tqdm bar). A scheduler address is connected once for
        the whole search; ``n_jobs > 1`` (without *client* or *pool*) starts one
        :class:`~mhimmune.runs.ensemble.WorkerPool` for the whole search, closed at its end
        (also on errors).
    pool
        A :class:`~mhimmune.runs.ensemble.WorkerPool` to run every batch on (*n_jobs* is then
        ignored); it stays open for the caller. Not together with *client*.
    de_options
        Further options of :func:`scipy.optimize.differential_evolution`: ``strategy``,
        ``popsize``, ``tol``, ``atol``, ``mutation``, ``recombination``, ``init``.

    Returns
    -------
    OptimizationResult
        The optimum (among feasible candidates with at least one successful run; ties go
        to the candidate proposed first), the table of all candidates, the optimum's
        per-animal runs and the bootstrap robustness.

    Notes
    -----
    The bootstrap resamples animals (with replacement, ``n_boot`` times, with
    ``numpy.random.default_rng(seed)``) and recomputes the objective of every evaluated
    feasible candidate from the same resampled animals. ``p_best`` is the fraction of
    resamples in which a candidate is the best (ties split evenly). With many
    near-identical candidates (a fine grid, differential evolution near its optimum)
    the exact optimum's ``p_best`` is naturally small; its interval and whether the
    runner-up lies inside it are then the more useful summary.

    Raises
    ------
    ParameterError
        Bad space, objective, aggregate, method, budget, cohort, fixed values,
        constraints or *pool* (closed, or given with *client*), naming the field and the
        allowed values; also when every candidate is infeasible.
    ProtocolError
        A level that is not a valid value of its protocol factor (a non-integer count).
    MhimmuneError
        Every run of every feasible candidate failed (the exception carries ``table``
        and ``runs``).

    Warns
    -----
    EnsembleFailureWarning
        Some runs failed; they are counted per candidate (``n_failed``) and listed in
        :attr:`OptimizationResult.runs`.
    """
    t0 = time.perf_counter()
    if not callable(evaluator):
        raise ParameterError(
            f"evaluator: expected a ModelEvaluator or a callable f(values) -> "
            f"dict, got {type(evaluator).__name__}"
        )
    check_pool(pool, client)
    if method not in METHODS:
        raise ParameterError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
    if not isinstance(objective, str) or not objective:
        raise ParameterError(f"objective: must be the name of an output (text), got {objective!r}")
    aggregate, q = _parse_aggregate(aggregate)
    if not isinstance(maximize, (bool, np.bool_)):
        raise ParameterError(f"maximize: must be True or False (got {maximize!r})")
    if budget is not None and (not _is_number(budget) or int(budget) != budget or budget < 1):
        raise ParameterError(f"budget: must be an integer ≥ 1 or None (got {budget!r})")
    budget = None if budget is None else int(budget)
    if not _is_number(seed) or int(seed) != seed or seed < 0:
        raise ParameterError(f"seed: must be an integer ≥ 0 (got {seed!r})")
    seed = int(seed)
    if not _is_number(n_boot) or int(n_boot) != n_boot or n_boot < 0:
        raise ParameterError(f"n_boot: must be an integer ≥ 0 (got {n_boot!r})")
    n_boot = int(n_boot)
    if de_options is None:
        de_options = {}
    if not isinstance(de_options, Mapping):
        raise ParameterError(f"de_options: expected a mapping, got {type(de_options).__name__}")
    unknown = [k for k in de_options if k not in DE_OPTIONS]
    if unknown:
        raise ParameterError(
            f"de_options: unknown option(s) {unknown}; allowed: {', '.join(DE_OPTIONS)} "
            f"(bounds, maxiter, workers, seed and polish are set from the space, "
            f"budget and seed)"
        )
    if de_options and method != "differential_evolution":
        raise ParameterError(
            f"de_options: only used by method='differential_evolution' (method is {method!r})"
        )
    if constraints is None:
        constraints = Constraints()
    elif isinstance(constraints, Mapping):
        constraints = Constraints.from_dict(constraints)
    elif not isinstance(constraints, Constraints):
        raise ParameterError(
            f"constraints: expected Constraints or a mapping, got {type(constraints).__name__}"
        )

    template = _template_of(evaluator)
    template_based = isinstance(evaluator, ModelEvaluator) and template is not None
    factors = _parse_space(space, template, template_based)
    fixed = _parse_fixed(fixed, factors, template)
    cohort = _parse_cohort(cohort, {f.name for f in factors} | set(fixed))

    names = (
        [f.name for f in factors] + list(fixed) + ([] if cohort is None else list(cohort.columns))
    )
    if hasattr(evaluator, "validate"):
        evaluator.validate(names)
    if isinstance(evaluator, ModelEvaluator) and objective not in evaluator.output_names:
        hints = difflib.get_close_matches(objective, evaluator.output_names, n=3)
        raise ParameterError(
            f"objective: {objective!r} is not a readout of the evaluator "
            f"(close matches: {hints}); its readouts: {evaluator.output_names}"
        )

    owns_client = False
    owns_pool = False
    if isinstance(client, str):
        from distributed import Client

        client, owns_client = Client(client), True
    info: dict[str, Any] = {}
    try:
        if (
            pool is None
            and client is None
            and _is_number(n_jobs)
            and int(n_jobs) > 1
            and _ONE_POOL_PER_SEARCH
        ):
            # one set of worker processes for every batch (generation) of the search
            pool, owns_pool = WorkerPool(int(n_jobs)), True
        if pool is not None:
            run_kwargs = {"pool": pool, "progress": progress}
        else:
            run_kwargs = {"n_jobs": n_jobs, "client": client, "progress": progress}
        search = _Search(
            evaluator,
            factors,
            fixed,
            cohort,
            constraints,
            template,
            objective,
            aggregate,
            q,
            bool(maximize),
            run_kwargs,
            method,
        )
        if method == "grid":
            search.evaluate(_grid_candidates(factors, budget), "optimize: grid")
        elif method == "random":
            rng = np.random.default_rng(seed)
            n = DEFAULT_RANDOM_BUDGET if budget is None else budget
            search.evaluate(_random_candidates(factors, n, rng), "optimize: random")
        else:
            info = _run_de(search, factors, budget, seed, de_options)
    finally:
        if owns_pool:
            pool.close()
        if owns_client:
            client.close()

    table = search.table()
    runs = search.all_runs()
    valid = table["feasible"] & np.isfinite(table["objective"])
    if not table["feasible"].any():
        first = table["violation"].iloc[0]
        raise ParameterError(
            f"constraints: every one of the {len(table)} candidates is infeasible "
            f"(e.g. {first}); relax the constraints or change the space"
        )
    if not valid.any():
        counts = runs.loc[runs["status"] != STATUS_OK, "status"].value_counts()
        msg = runs.loc[runs["status"] != STATUS_OK, "message"]
        err = MhimmuneError(
            f"every run of every feasible candidate failed ({len(runs)} runs; "
            f"{', '.join(f'{k}: {v}' for k, v in counts.items())}); e.g. "
            f"{msg.iloc[0][:300] if len(msg) else '?'}"
        )
        err.table, err.runs = table, runs
        raise err

    # ----------------------------------------------------------------- robustness
    ranked = table.loc[valid].sort_values(["rank"], kind="stable")
    best_id = int(ranked.index[0])
    table["ci_low"] = np.nan
    table["ci_high"] = np.nan
    table["p_best"] = np.nan
    robustness: dict[str, Any] = {
        "n_boot": 0,
        "level": CI_LEVEL,
        "p_best": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "runner_up": None,
        "runner_up_value": math.nan,
        "runner_up_within_ci": None,
        "runner_up_p_best": math.nan,
        "n_within_ci": None,
        "n_animals": search.n_animals,
        "aggregate": aggregate,
    }
    if len(ranked) > 1:
        r2 = ranked.iloc[1]
        robustness["runner_up"] = {n: float(r2[n]) for n in search.names}
        robustness["runner_up_value"] = float(r2["objective"])
    if search.n_animals > 1 and n_boot > 0:
        ids = ranked.index.to_numpy()
        Y = np.vstack([search.Y[int(c)] for c in ids])
        B, share = _bootstrap(Y, aggregate, q, bool(maximize), n_boot, np.random.default_rng(seed))
        for j, c in enumerate(ids):
            lo, hi = _percentiles(B[:, j])
            table.loc[c, ["ci_low", "ci_high", "p_best"]] = [lo, hi, share[j]]
        lo, hi = table.at[best_id, "ci_low"], table.at[best_id, "ci_high"]
        others = ranked["objective"].to_numpy()[1:]
        robustness.update(
            n_boot=n_boot,
            p_best=float(share[0]),
            ci_low=float(lo),
            ci_high=float(hi),
            n_within_ci=int(np.sum((others >= lo) & (others <= hi))),
        )
        if len(ranked) > 1:
            v = robustness["runner_up_value"]
            robustness["runner_up_within_ci"] = bool(lo <= v <= hi)
            robustness["runner_up_p_best"] = float(share[1])

    per_animal = (
        runs[runs["candidate"] == best_id]
        .drop(columns=["candidate", *search.names, *fixed])
        .set_index("animal")
    )
    n_failed_runs = int((runs["status"] != STATUS_OK).sum())
    if n_failed_runs:
        bad = table[table["n_failed"] > 0]
        first = runs.loc[runs["status"] != STATUS_OK].iloc[0]
        warnings.warn(
            f"{n_failed_runs} of {len(runs)} runs failed, in {len(bad)} candidate(s) "
            f"(e.g. candidate {int(first['candidate'])}, animal {first['animal']}: "
            f"{str(first['message'])[:200]}); their objectives use the successful runs "
            f"only; see result.table['n_failed'] and result.runs",
            EnsembleFailureWarning,
            stacklevel=2,
        )
    return OptimizationResult(
        best={n: float(table.at[best_id, n]) for n in search.names},
        best_value=float(table.at[best_id, "objective"]),
        table=table,
        per_animal=per_animal,
        robustness=robustness,
        objective=objective,
        maximize=bool(maximize),
        method=method,
        aggregate=aggregate,
        fixed=dict(fixed),
        runs=runs,
        constraints=constraints,
        n_simulations=search.n_simulated,
        n_batches=search.batches,
        elapsed_s=time.perf_counter() - t0,
        info=info,
    )


# ================================================================================== result


def _fmt(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in values.items())


@dataclass
class OptimizationResult:
    """Outcome of :func:`optimize_schedule`.

    Attributes
    ----------
    best : dict
        Factor -> value of the optimum (the space's factors; see *fixed* for the others).
    best_value : float
        Its objective (aggregated over the animals' successful runs).
    table : pandas.DataFrame
        One row per candidate (index ``candidate``, in the order they were proposed):
        the factors, ``feasible``, ``violation`` (reasons, empty when feasible), ``n_ok``
        and ``n_failed`` runs, ``objective`` (NaN when infeasible or every run failed),
        ``rank`` (1 = best, ties share a rank; missing for candidates without an
        objective), and from the bootstrap ``ci_low``/``ci_high`` (percentile interval)
        and ``p_best`` (fraction of resamples in which the candidate is the best, ties
        split evenly).
    per_animal : pandas.DataFrame
        The optimum's runs, indexed by the cohort's row index (``animal``): status,
        message, seconds, the cohort's parameters and every output.
    robustness : dict
        ``p_best``, ``ci_low``, ``ci_high`` (the optimum's), ``level``, ``n_boot``,
        ``n_animals``, ``runner_up`` (factor dict of the second-ranked candidate or
        None), ``runner_up_value``, ``runner_up_within_ci``, ``runner_up_p_best``,
        ``n_within_ci`` (other candidates whose objective lies inside the optimum's
        interval). Without a bootstrap (one animal) the numbers are NaN.
    objective, maximize, method, aggregate
        What was optimised and how.
    fixed : dict
        Values held constant.
    runs : pandas.DataFrame
        Every simulated run: candidate, animal, status, message, seconds, design columns,
        outputs.
    constraints : Constraints
    n_simulations, n_batches : int
        Runs simulated and :func:`run_ensemble` calls made.
    elapsed_s : float
        Wall time.
    info : dict
        Method details (differential evolution: generations, population, scipy's message).
    """

    best: dict
    best_value: float
    table: pd.DataFrame
    per_animal: pd.DataFrame
    robustness: dict
    objective: str
    maximize: bool
    method: str
    aggregate: str = "mean"
    fixed: dict = field(default_factory=dict)
    runs: pd.DataFrame | None = None
    constraints: Constraints | None = None
    n_simulations: int = 0
    n_batches: int = 0
    elapsed_s: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def n_candidates(self) -> int:
        """Number of distinct candidates proposed."""
        return len(self.table)

    @property
    def n_infeasible(self) -> int:
        """Candidates excluded by the constraints (not simulated)."""
        return int((~self.table["feasible"]).sum())

    @property
    def ranking(self) -> pd.DataFrame:
        """The candidates with an objective, best first."""
        t = self.table[self.table["rank"].notna()]
        return t.sort_values("rank", kind="stable")

    def summary(self) -> str:
        """A few lines: optimum, value, bootstrap interval and p_best, candidate counts.

        Returns
        -------
        str
        """
        r = self.robustness
        t = self.table
        goal = "maximise" if self.maximize else "minimise"
        n_animals = r.get("n_animals", 1)
        lines = [
            f"optimum ({self.method}; {goal} {self.aggregate} {self.objective} over "
            f"{n_animals} animal{'s' if n_animals != 1 else ''}): {_fmt(self.best)}"
        ]
        value = f"  {self.objective} = {self.best_value:.4g}"
        if r.get("n_boot"):
            value += (
                f" ({r['level']:.0%} bootstrap CI {r['ci_low']:.4g} to {r['ci_high']:.4g}; "
                f"best in {r['p_best']:.0%} of {r['n_boot']} resamples)"
            )
        lines.append(value)
        if r.get("runner_up") is not None:
            within = r.get("runner_up_within_ci")
            note = (
                ""
                if within is None
                else (" — inside the optimum's CI" if within else " — outside the optimum's CI")
            )
            lines.append(f"  runner-up: {_fmt(r['runner_up'])}: {r['runner_up_value']:.4g}{note}")
        feasible = t["feasible"]
        failed_all = int((feasible & (t["n_ok"] == 0)).sum())
        some_failed = int((t["n_failed"] > 0).sum())
        n_runs = int(t["n_ok"].sum() + t["n_failed"].sum())
        lines.append(
            f"  candidates: {len(t)}, {int(feasible.sum())} evaluated, {self.n_infeasible} "
            f"infeasible, {some_failed} with failed runs ({failed_all} all failed); "
            f"{int(t['n_failed'].sum())} of {n_runs} runs failed"
        )
        return "\n".join(lines)

    def plot(self, ax=None, top: int | None = 30):
        """Ranked candidates with their bootstrap intervals.

        Parameters
        ----------
        ax
            Matplotlib axes to draw on; a new figure when ``None``.
        top
            Show the best *top* candidates (all with ``None``); labelled with their
            factor values when there are at most 30.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        t = self.table[self.table["rank"].notna()].sort_values("rank", kind="stable")
        if top is not None:
            t = t.head(int(top))
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, max(2.5, 0.28 * len(t) + 1.2)))
        y = np.arange(len(t))
        x = t["objective"].to_numpy(dtype=float)
        lo = t["ci_low"].to_numpy(dtype=float)
        hi = t["ci_high"].to_numpy(dtype=float)
        has_ci = np.isfinite(lo) & np.isfinite(hi)
        if has_ci.any():
            err = np.vstack(
                [
                    np.where(has_ci, np.maximum(x - lo, 0), 0),
                    np.where(has_ci, np.maximum(hi - x, 0), 0),
                ]
            )
            ax.errorbar(x, y, xerr=err, fmt="none", ecolor="0.55", elinewidth=1.2, capsize=2)
        colors = ["C3" if i == 0 else "C0" for i in range(len(t))]
        ax.scatter(x, y, c=colors, zorder=3, s=22)
        names = list(self.best)
        if len(t) <= 30:
            ax.set_yticks(
                y, [_fmt({n: float(row[n]) for n in names}) for _, row in t.iterrows()], fontsize=7
            )
        else:
            ax.set_ylabel("rank")
        ax.invert_yaxis()
        ax.set_xlabel(
            f"{self.aggregate} {self.objective}"
            + (f" ({self.robustness['level']:.0%} bootstrap CI)" if has_ci.any() else "")
        )
        ax.set_title(
            f"{self.method}: {'maximise' if self.maximize else 'minimise'} {self.objective}",
            fontsize=9,
        )
        return ax

    def __repr__(self) -> str:
        r = self.robustness
        extra = f", p_best {r['p_best']:.2f}" if r.get("n_boot") else ""
        return (
            f"<OptimizationResult {self.method}: {'max' if self.maximize else 'min'} "
            f"{self.objective} = {self.best_value:.4g} at {_fmt(self.best)}{extra}; "
            f"{self.n_candidates} candidates, {self.n_infeasible} infeasible>"
        )
