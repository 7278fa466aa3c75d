"""Global sensitivity analysis with SALib over protocol factors and model parameters.

The functional core follows SALib: a :class:`Problem` is plain data (factors with
bounds and distributions), :func:`sample` returns a :class:`Sample` (the design to
run), :func:`analyze` turns outputs into indices. Every method returns the same tidy
table (:data:`INDEX_COLUMNS`)::

    method, output, time_day, factor, factor2, index, value, conf_low, conf_high,
    n_runs, n_dropped

with ``time_day`` NaN for scalar outputs and set for time-resolved indices along a
trajectory, ``factor2`` set only for second-order Sobol indices, and confidence bounds
NaN where a method gives none.

Sampling happens in the unit hypercube; each factor maps it through its distribution:
``uniform`` linearly, ``loguniform`` uniformly in the logarithm, ``normal`` and
``lognormal`` by the inverse CDF with [lower, upper] as the 2.5–97.5 % range (clipped
to the 0.1–99.9 % quantiles), ``integer`` to equally likely integers in
[lower, upper]. Indices therefore describe each factor over its distribution; Morris
elementary effects are per fraction of a factor's (log-)range.

Methods: ``sobol`` (S1, ST, optional S2; Saltelli sampling), ``morris`` (mu_star,
sigma, mu), ``efast`` (S1, ST), and two that tolerate failed runs by using only the
successful rows and reporting how many were dropped: ``pawn`` (KS-statistic
summaries) and ``delta`` (Borgonovo's moment-independent delta); both run on a
Latin-hypercube sample.

Outputs of a hypothesis-generating model: the indices say which factors the *model*
is sensitive to, over the ranges given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.runs.ensemble import EnsembleResult, run_ensemble

__all__ = [
    "Factor",
    "Problem",
    "Sample",
    "SensitivityResult",
    "IncompleteRunsError",
    "METHODS",
    "INDEX_COLUMNS",
    "define_problem",
    "sample",
    "analyze",
    "run_sensitivity",
    "sobol",
    "morris",
    "efast",
    "pawn",
    "delta",
    "load_spec",
    "write_outputs",
]

#: sensitivity methods
METHODS = ("sobol", "morris", "efast", "pawn", "delta")
#: methods that use only the successful runs (failed rows are dropped and counted)
TOLERANT_METHODS = ("pawn", "delta")
#: columns of every index table
INDEX_COLUMNS = [
    "method",
    "output",
    "time_day",
    "factor",
    "factor2",
    "index",
    "value",
    "conf_low",
    "conf_high",
    "n_runs",
    "n_dropped",
]
_DISTS = ("uniform", "loguniform", "normal", "lognormal", "integer")
_Z975 = stats.norm.ppf(0.975)


class IncompleteRunsError(MhimmuneError):
    """A method that needs every run (Sobol, Morris, eFAST) got failed runs."""


# ================================================================================ problem


@dataclass(frozen=True)
class Factor:
    """One uncertain input: a model parameter or a protocol factor.

    Parameters
    ----------
    name
        Parameter name (as in the parameter table) or protocol factor
        (:data:`~mhimmune.runs.ensemble.PROTOCOL_FACTORS`).
    lower, upper
        Range in the factor's unit (the 2.5–97.5 % range for normal/lognormal).
    dist
        ``uniform``, ``loguniform``, ``normal``, ``lognormal`` or ``integer``.
    unit
        Unit of the values (documentation only).
    kind
        ``parameter``, ``protocol`` or ``input`` (a toy function's input).
    """

    name: str
    lower: float
    upper: float
    dist: str = "uniform"
    unit: str = ""
    kind: str = "input"

    def __post_init__(self):
        if self.dist not in _DISTS:
            raise ParameterError(
                f"factor {self.name}: unknown distribution {self.dist!r}; "
                f"allowed: {', '.join(_DISTS)}"
            )
        lo, hi = float(self.lower), float(self.upper)
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ParameterError(
                f"factor {self.name}: need finite bounds lower < upper "
                f"(got [{self.lower}, {self.upper}])"
            )
        if self.dist in ("loguniform", "lognormal") and lo <= 0:
            raise ParameterError(
                f"factor {self.name}: lower must be > 0 for {self.dist} (got {lo:g})"
            )
        if self.dist == "integer" and (lo != int(lo) or hi != int(hi)):
            raise ParameterError(
                f"factor {self.name}: integer bounds must be whole numbers (got [{lo:g}, {hi:g}])"
            )

    def values(self, u: np.ndarray) -> np.ndarray:
        """Map unit-interval samples *u* to factor values (in the factor's unit)."""
        u = np.asarray(u, dtype=float)
        lo, hi = float(self.lower), float(self.upper)
        if self.dist == "uniform":
            return lo + u * (hi - lo)
        if self.dist == "loguniform":
            return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        if self.dist == "integer":
            k = np.floor(lo + u * (hi - lo + 1.0))
            return np.clip(k, lo, hi)
        q = stats.norm.ppf(np.clip(u, 0.001, 0.999))
        if self.dist == "normal":
            return (lo + hi) / 2 + q * (hi - lo) / (2 * _Z975)
        a, b = np.log(lo), np.log(hi)
        return np.exp((a + b) / 2 + q * (b - a) / (2 * _Z975))


@dataclass(frozen=True)
class Problem:
    """The factors of an analysis (SALib's problem, in the unit hypercube)."""

    factors: tuple[Factor, ...]

    def __post_init__(self):
        names = [f.name for f in self.factors]
        if not names:
            raise ParameterError("problem: give at least one factor")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ParameterError(f"problem: duplicate factors {dup}")

    @property
    def names(self) -> list[str]:
        """Factor names, in order."""
        return [f.name for f in self.factors]

    @property
    def num_vars(self) -> int:
        """Number of factors."""
        return len(self.factors)

    def salib(self) -> dict:
        """The SALib problem dict (unit bounds; values are mapped by :meth:`values`)."""
        return {
            "num_vars": self.num_vars,
            "names": self.names,
            "bounds": [[0.0, 1.0]] * self.num_vars,
        }

    def values(self, unit: np.ndarray) -> pd.DataFrame:
        """Design (one column per factor, in factor units) from unit-hypercube samples."""
        unit = np.atleast_2d(np.asarray(unit, dtype=float))
        return pd.DataFrame({f.name: f.values(unit[:, i]) for i, f in enumerate(self.factors)})

    def to_frame(self) -> pd.DataFrame:
        """One row per factor: name, lower, upper, dist, unit, kind."""
        return pd.DataFrame([f.__dict__ for f in self.factors])


_TABLE_DISTS = {
    "uniform": "uniform",
    "loguniform": "loguniform",
    "normal": "normal",
    "lognormal": "lognormal",
}


def _table_frame(table):
    if table is None:
        from mhimmune.core.params import ParameterTable

        return ParameterTable.load().frame
    if hasattr(table, "table"):  # a Model
        return table.table.frame
    if hasattr(table, "frame"):
        return table.frame
    return table


def define_problem(factors: Sequence[str] | Mapping[str, Any], *, table: Any = None) -> Problem:
    """Build a :class:`Problem` from factor names and optional bounds.

    Parameters
    ----------
    factors
        Names (bounds from the defaults), or a mapping name -> ``None`` / ``"table"``
        (defaults), ``(lower, upper)`` (uniform, or the default distribution of a
        protocol factor), or a dict with ``lower``, ``upper``, ``dist``. Model
        parameters take bounds and distribution from the parameter table (``fixed``
        ones need explicit bounds); protocol factors from
        :data:`~mhimmune.runs.ensemble.PROTOCOL_FACTORS`.
    table
        A Model, :class:`~mhimmune.ParameterTable` or its frame; default the shipped tables.
    """
    items = factors.items() if isinstance(factors, Mapping) else [(n, None) for n in factors]
    frame = None
    out = []
    for name, spec in items:
        if isinstance(spec, Factor):
            out.append(spec)
            continue
        if name in PROTOCOL_FACTORS:
            info = PROTOCOL_FACTORS[name]
            base = dict(
                lower=info.lower, upper=info.upper, dist=info.dist, unit=info.unit, kind="protocol"
            )
        else:
            if frame is None:
                frame = _table_frame(table)
            explicit = (
                isinstance(spec, Mapping)
                and {"lower", "upper"} <= set(spec)
                or isinstance(spec, Mapping)
                and "bounds" in spec
                or (isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2)
            )
            if name not in frame.index and explicit:  # an input of a toy evaluator
                base = dict(lower=math.nan, upper=math.nan, dist=None, unit="", kind="input")
            elif name not in frame.index:
                import difflib

                hint = difflib.get_close_matches(
                    name, list(frame.index) + list(PROTOCOL_FACTORS), n=3
                )
                raise ParameterError(
                    f"factor {name}: neither a model parameter nor a protocol "
                    f"factor; close matches: {hint}"
                )
            else:
                row = frame.loc[name]
                dist = _TABLE_DISTS.get(str(row["distribution"]))
                base = dict(
                    lower=float(row["lower"]),
                    upper=float(row["upper"]),
                    dist=dist,
                    unit=str(row["unit"]),
                    kind="parameter",
                )
                if dist is None and (spec is None or spec == "table"):
                    raise ParameterError(
                        f"factor {name}: fixed in the parameter table; give "
                        f"bounds, e.g. {{{name!r}: (low, high)}}"
                    )
        if spec is None or spec == "table" or (isinstance(spec, Mapping) and not spec):
            pass
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"lower", "upper", "dist", "bounds"}
            if unknown:
                raise ParameterError(
                    f"factor {name}: unknown keys {sorted(unknown)}; use lower, upper, dist"
                )
            if "bounds" in spec:
                base["lower"], base["upper"] = spec["bounds"]
            base.update({k: spec[k] for k in ("lower", "upper", "dist") if k in spec})
        elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
            base["lower"], base["upper"] = spec
            if base.get("dist") is None:
                base["dist"] = "uniform"
        else:
            raise ParameterError(
                f"factor {name}: give None, 'table', (lower, upper) or "
                f"{{lower, upper, dist}} (got {spec!r})"
            )
        if base.get("dist") is None:
            base["dist"] = "uniform"
        try:
            base["lower"], base["upper"] = float(base["lower"]), float(base["upper"])
        except (TypeError, ValueError):
            raise ParameterError(
                f"factor {name}: bounds must be numbers (got {base['lower']!r}, {base['upper']!r})"
            ) from None
        out.append(Factor(name=name, **base))
    return Problem(tuple(out))


# ================================================================================= sample


@dataclass
class Sample:
    """A design drawn for one method: unit-hypercube points and factor values.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    problem : Problem
        The factors.
    unit : numpy.ndarray
        Points in the unit hypercube (runs × factors), as SALib sees them.
    design : pandas.DataFrame
        The same points in factor units: the design to run.
    n : int
        Base sample size (Sobol N, Morris trajectories, eFAST N, LHS size).
    options : dict
        Method options (``second_order``, ``num_levels``, ``M``).
    seed : int or None
        Seed of the sampler.
    """

    method: str
    problem: Problem
    unit: np.ndarray
    design: pd.DataFrame
    n: int
    options: dict = field(default_factory=dict)
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.design)


def sample(
    problem: Problem,
    method: str = "sobol",
    n: int = 1024,
    *,
    seed: int | None = 0,
    second_order: bool = False,
    num_levels: int = 4,
    M: int = 4,
) -> Sample:
    """Draw the design of *method* for *problem*.

    Parameters
    ----------
    problem
        The factors (:func:`define_problem`).
    method
        ``sobol`` (N·(D+2) runs, N·(2D+2) with *second_order*; N a power of 2),
        ``morris`` (N trajectories, N·(D+1) runs), ``efast`` (N·D runs, N > 4M²),
        ``pawn`` or ``delta`` (Latin hypercube of N runs).
    n
        Base sample size N.
    seed
        Seed of the sampler; the same seed gives the same design.
    second_order
        Sobol: also second-order indices.
    num_levels
        Morris: grid levels.
    M
        eFAST: interference parameter.
    """
    from SALib.sample import fast_sampler, latin
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    method = _method(method)
    n = int(n)
    if n < 1:
        raise ParameterError(f"n: must be ≥ 1 (got {n})")
    p = problem.salib()
    if method == "sobol":
        if n & (n - 1):
            lower = 1 << (n.bit_length() - 1)
            raise ParameterError(
                f"n: Sobol sampling needs a power of 2 (got {n}; use {lower} or {lower * 2})"
            )
        unit = sobol_sample.sample(p, n, calc_second_order=second_order, scramble=True, seed=seed)
        options = {"second_order": bool(second_order)}
    elif method == "morris":
        if n < 2:
            raise ParameterError(f"n: Morris needs at least 2 trajectories (got {n})")
        unit = morris_sample.sample(p, n, num_levels=num_levels, seed=seed)
        options = {"num_levels": int(num_levels)}
    elif method == "efast":
        if n <= 4 * M * M:
            raise ParameterError(f"n: eFAST needs n > 4·M² = {4 * M * M} (got {n})")
        unit = fast_sampler.sample(p, n, M=M, seed=seed)
        options = {"M": int(M)}
    else:
        unit = latin.sample(p, n, seed=seed)
        options = {}
    unit = np.asarray(unit, dtype=float)
    return Sample(
        method=method,
        problem=problem,
        unit=unit,
        design=problem.values(unit),
        n=n,
        options=options,
        seed=seed,
    )


def _method(method: str) -> str:
    m = str(method).lower()
    if m == "fast":
        m = "efast"
    if m not in METHODS:
        raise ParameterError(f"method: unknown {method!r}; allowed: {', '.join(METHODS)}")
    return m


# ================================================================================ analyze


def _rows(
    method, output, time_day, names, index, values, conf=None, n_runs=0, n_dropped=0, factor2=None
):
    values = np.asarray(values, dtype=float)
    half = np.full(len(values), np.nan) if conf is None else np.asarray(conf, dtype=float)
    return pd.DataFrame(
        {
            "method": method,
            "output": output,
            "time_day": time_day,
            "factor": list(names),
            "factor2": factor2 if factor2 is not None else None,
            "index": index,
            "value": values,
            "conf_low": values - half,
            "conf_high": values + half,
            "n_runs": n_runs,
            "n_dropped": n_dropped,
        }
    )


def _constant(y: np.ndarray) -> bool:
    ptp = float(np.ptp(y))
    return ptp == 0.0 or ptp <= 1e-12 * float(np.max(np.abs(y)))


def _analyze_one(
    s: Sample,
    y: np.ndarray,
    output: str,
    time_day: float,
    *,
    num_resamples: int,
    conf_level: float,
    seed: int | None,
) -> pd.DataFrame | None:
    """Indices of one output vector; None when the output is constant over the used runs."""
    p = s.problem.salib()
    names = s.problem.names
    ok = np.isfinite(y)
    n_dropped = int((~ok).sum())
    if s.method not in TOLERANT_METHODS and n_dropped:
        raise IncompleteRunsError(
            f"{s.method}: {n_dropped} of {len(y)} runs failed for output {output!r}; "
            f"{s.method} needs every run of its design (see the ensemble's failures); use "
            f"method='pawn' or 'delta', which drop failed runs, or fix the failing runs"
        )
    yk = y[ok]
    if len(yk) < 2 or _constant(yk):
        return None
    n_runs = int(ok.sum())
    m = s.method
    # SALib ignores a falsy seed and some analyzers seed NumPy's global generator:
    # use a nonzero seed and restore the global state afterwards
    seed = None if seed is None else int(seed) % (2**31 - 2) + 1
    state = np.random.get_state()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return _salib(
                m,
                s,
                p,
                names,
                yk,
                ok,
                output,
                time_day,
                n_runs,
                n_dropped,
                num_resamples=num_resamples,
                conf_level=conf_level,
                seed=seed,
            )
        finally:
            np.random.set_state(state)


def _salib(
    m, s, p, names, yk, ok, output, time_day, n_runs, n_dropped, *, num_resamples, conf_level, seed
) -> pd.DataFrame:
    """Call the SALib analyzer of method *m* and convert its result to tidy rows."""
    from SALib.analyze import delta as delta_analyze
    from SALib.analyze import fast
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import pawn as pawn_analyze
    from SALib.analyze import sobol as sobol_analyze

    if m == "sobol":
        so = s.options.get("second_order", False)
        r = sobol_analyze.analyze(
            p,
            yk,
            calc_second_order=so,
            num_resamples=num_resamples,
            conf_level=conf_level,
            seed=seed,
        )
        parts = [
            _rows(m, output, time_day, names, "S1", r["S1"], r["S1_conf"], n_runs),
            _rows(m, output, time_day, names, "ST", r["ST"], r["ST_conf"], n_runs),
        ]
        if so:
            D = len(names)
            ii, jj = np.triu_indices(D, 1)
            parts.append(
                _rows(
                    m,
                    output,
                    time_day,
                    [names[i] for i in ii],
                    "S2",
                    np.asarray(r["S2"])[ii, jj],
                    np.asarray(r["S2_conf"])[ii, jj],
                    n_runs,
                    factor2=[names[j] for j in jj],
                )
            )
    elif m == "morris":
        r = morris_analyze.analyze(
            p,
            s.unit,
            yk,
            num_resamples=num_resamples,
            conf_level=conf_level,
            num_levels=s.options["num_levels"],
            seed=seed,
        )
        parts = [
            _rows(m, output, time_day, names, "mu_star", r["mu_star"], r["mu_star_conf"], n_runs),
            _rows(m, output, time_day, names, "sigma", r["sigma"], None, n_runs),
            _rows(m, output, time_day, names, "mu", r["mu"], None, n_runs),
        ]
    elif m == "efast":
        r = fast.analyze(
            p, yk, M=s.options["M"], num_resamples=num_resamples, conf_level=conf_level, seed=seed
        )
        parts = [
            _rows(m, output, time_day, names, "S1", r["S1"], r["S1_conf"], n_runs),
            _rows(m, output, time_day, names, "ST", r["ST"], r["ST_conf"], n_runs),
        ]
    elif m == "pawn":
        r = pawn_analyze.analyze(p, s.unit[ok], yk, S=10, seed=seed)
        parts = [
            _rows(m, output, time_day, names, f"pawn_{k.lower()}", r[k], None, n_runs, n_dropped)
            for k in ("median", "mean", "maximum", "minimum", "CV")
        ]
    else:
        r = delta_analyze.analyze(
            p,
            s.unit[ok],
            yk,
            num_resamples=num_resamples,
            conf_level=conf_level,
            seed=seed,
            method="delta",
        )
        parts = [
            _rows(
                m,
                output,
                time_day,
                names,
                "delta",
                r["delta_raw"],
                r["delta_raw_conf"],
                n_runs,
                n_dropped,
            )
        ]
    return pd.concat(parts, ignore_index=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype=t)
            for c, t in zip(
                INDEX_COLUMNS,
                [
                    "object",
                    "object",
                    "float",
                    "object",
                    "object",
                    "object",
                    "float",
                    "float",
                    "float",
                    "int64",
                    "int64",
                ],
            )
        }
    )


def analyze(
    s: Sample,
    outputs: EnsembleResult | pd.DataFrame | Mapping[str, Any] | np.ndarray,
    names: Sequence[str] | None = None,
    *,
    trajectories: bool = True,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Sensitivity indices of every output (and trajectory time point) as one tidy table.

    Parameters
    ----------
    s
        The :class:`Sample` whose design produced the outputs (same row order).
    outputs
        An :class:`~mhimmune.runs.ensemble.EnsembleResult` (scalar outputs, and trajectories
        when *trajectories*), a DataFrame or mapping of output name -> values, or one
        array (named ``y``). Failed runs are NaN.
    names
        Outputs to analyse; default all.
    trajectories
        Also compute time-resolved indices of the ensemble's trajectories.
    num_resamples, conf_level
        Bootstrap resamples and confidence level of the confidence intervals.
    seed
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INDEX_COLUMNS`. Outputs constant over the runs have no rows
        (no variance to apportion).

    Raises
    ------
    IncompleteRunsError
        Sobol, Morris or eFAST with failed runs.
    """
    series: list[tuple[str, float, np.ndarray]] = []
    if isinstance(outputs, EnsembleResult):
        for o in names or outputs.output_names:
            series.append((o, math.nan, outputs.output(o)))
        if trajectories:
            for v in outputs.trajectory_names:
                if names and v not in names:
                    continue
                a = outputs.trajectory_arrays[v]
                for k, t in enumerate(outputs.time_grid_day):
                    series.append((v, float(t), a[:, k]))
    elif isinstance(outputs, (pd.DataFrame, Mapping)):
        cols = names or list(outputs.keys() if isinstance(outputs, Mapping) else outputs.columns)
        for o in cols:
            series.append((o, math.nan, np.asarray(outputs[o], dtype=float)))
    else:
        series.append(("y", math.nan, np.asarray(outputs, dtype=float).ravel()))
    frames = []
    for output, t, y in series:
        if len(y) != len(s.design):
            raise ParameterError(f"output {output!r}: {len(y)} values for {len(s.design)} runs")
        f = _analyze_one(
            s, y, output, t, num_resamples=num_resamples, conf_level=conf_level, seed=seed
        )
        if f is not None:
            frames.append(f)
    if not frames:
        return _empty()
    out = pd.concat(frames, ignore_index=True)
    return out[INDEX_COLUMNS]


# ============================================================================ high level


@dataclass
class SensitivityResult:
    """Indices plus everything that produced them.

    Attributes
    ----------
    indices : pandas.DataFrame
        Tidy indices (:data:`INDEX_COLUMNS`); empty when the method could not run
        (see *error*).
    sample : Sample
        Design and problem.
    ensemble : EnsembleResult
        Per-run outputs, trajectories and failures.
    skipped : list of str
        Outputs without indices (constant over the runs).
    error : str
        Why no indices were computed (failed runs with a method needing all), else "".
    """

    indices: pd.DataFrame
    sample: Sample
    ensemble: EnsembleResult
    skipped: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def failures(self) -> pd.DataFrame:
        """The failed runs with status, message and factor values."""
        return self.ensemble.failures

    def summary(self) -> str:
        """One line: method, factors, runs, failures, outputs analysed."""
        n_out = self.indices["output"].nunique() if len(self.indices) else 0
        return (
            f"{self.sample.method}: {self.sample.problem.num_vars} factors, "
            f"{self.ensemble.summary()}; indices for {n_out} output(s)"
            + (f"; skipped (constant): {', '.join(self.skipped)}" if self.skipped else "")
            + (f"; {self.error}" if self.error else "")
        )

    def __repr__(self) -> str:
        return f"<SensitivityResult {self.summary()}>"


def run_sensitivity(
    protocol,
    factors: Sequence[str] | Mapping[str, Any],
    *,
    method: str = "sobol",
    n: int = 1024,
    readouts=None,
    trajectories: Sequence[str] = (),
    time_grid_day=None,
    params: Mapping[str, Any] | None = None,
    model=None,
    evaluator=None,
    seed: int | None = 0,
    second_order: bool = False,
    num_levels: int = 4,
    M: int = 4,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    n_jobs: int = 1,
    client=None,
    out=None,
    resume: bool = False,
    progress: bool | None = None,
    chunk_size: int | None = None,
    simulate_options: Mapping[str, Any] | None = None,
) -> SensitivityResult:
    """Sample, run the ensemble and analyse: one call for a whole analysis.

    Parameters
    ----------
    protocol
        A :class:`~mhimmune.runs.ensemble.ScheduleTemplate` (protocol factors allowed) or a
        fixed :class:`~mhimmune.Protocol` (parameters only); ignored with *evaluator*.
    factors
        Factor names or name -> bounds (see :func:`define_problem`).
    method
        One of :data:`METHODS`.
    n
        Base sample size (see :func:`sample`).
    readouts, trajectories, time_grid_day, params, simulate_options
        Passed to :class:`~mhimmune.runs.ensemble.ModelEvaluator` (readout specs, variables
        for time-resolved indices, their time grid in days, fixed overrides).
    model
        A loaded model whose links workers rebuild (default: the full model).
    evaluator
        Any evaluator (e.g. a toy function of the factors) instead of the model.
    seed
        Seed of the sampler and the bootstrap.
    second_order, num_levels, M
        Method options (see :func:`sample`).
    num_resamples, conf_level
        Bootstrap settings of the confidence intervals.
    n_jobs, client, out, resume, progress, chunk_size
        Passed to :func:`~mhimmune.runs.ensemble.run_ensemble`.

    Returns
    -------
    SensitivityResult
        Indices, sample and ensemble. With failed runs, Sobol/Morris/eFAST return no
        indices, an ``error`` and a warning; PAWN and delta drop the failed runs.
    """
    table = model if model is not None else None
    problem = define_problem(factors, table=table)
    if evaluator is None:
        kw = dict(
            trajectories=trajectories,
            time_grid_day=time_grid_day,
            params=params,
            simulate_options=simulate_options,
        )
        evaluator = (
            ModelEvaluator.from_model(model, protocol, readouts, **kw)
            if model is not None
            else ModelEvaluator(protocol, readouts, **kw)
        )
    s = sample(problem, method, n, seed=seed, second_order=second_order, num_levels=num_levels, M=M)
    ens = run_ensemble(
        evaluator,
        s.design,
        n_jobs=n_jobs,
        client=client,
        out=out,
        resume=resume,
        progress=progress,
        chunk_size=chunk_size,
        desc=s.method,
    )
    error = ""
    try:
        indices = analyze(s, ens, num_resamples=num_resamples, conf_level=conf_level, seed=seed)
    except IncompleteRunsError as exc:
        indices, error = _empty(), str(exc)
        warnings.warn(error, stacklevel=2)
    wanted = list(ens.output_names) + list(ens.trajectory_names)
    skipped = [o for o in wanted if not error and o not in set(indices["output"])]
    return SensitivityResult(indices=indices, sample=s, ensemble=ens, skipped=skipped, error=error)


def _with_method(method):
    def run(model, protocol, factors, n: int = 1024, **kwargs) -> SensitivityResult:
        return run_sensitivity(protocol, factors, method=method, n=n, model=model, **kwargs)

    run.__name__ = method
    run.__qualname__ = method
    run.__doc__ = (
        f"{method} analysis of *model* under *protocol* (Protocol or ScheduleTemplate) "
        f"over *factors*; *n* base samples; keywords as :func:`run_sensitivity`. "
        f"*model* may be None (the full model). Returns a :class:`SensitivityResult`."
    )
    return run


sobol = _with_method("sobol")
morris = _with_method("morris")
efast = _with_method("efast")
pawn = _with_method("pawn")
delta = _with_method("delta")


# ================================================================================== specs

_SPEC_KEYS = {
    "name",
    "description",
    "method",
    "n",
    "seed",
    "second_order",
    "num_levels",
    "M",
    "num_resamples",
    "protocol",
    "template",
    "factors",
    "outputs",
    "params",
    "simulate",
}


def load_spec(path) -> dict:
    """Read a sensitivity-analysis spec (TOML) into keyword arguments of :func:`run_sensitivity`.

    The file has top-level ``method``, ``n``, ``seed``, ``second_order`` (optional);
    either ``protocol = "file.toml"`` (a fixed protocol, relative to the spec) or a
    ``[template]`` table of :class:`~mhimmune.runs.ensemble.ScheduleTemplate` keywords with
    units; ``[factors]`` (name = "table" | [lower, upper] | {lower, upper, dist});
    ``[outputs]`` with ``readouts``, ``trajectories`` and ``time_step_day``; ``[params]``
    fixed overrides; ``[simulate]`` options of :func:`mhimmune.core.simulate`.
    """
    from pathlib import Path

    from mhimmune.core.io import read_toml
    from mhimmune.mh.protocol import Protocol

    p = Path(path)
    data = read_toml(p)
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise MhimmuneError(
            f"{p}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_SPEC_KEYS))}"
        )
    if ("protocol" in data) == ("template" in data):
        raise MhimmuneError(f"{p}: give either protocol = 'file.toml' or a [template] table")
    if "protocol" in data:
        proto_path = (
            (p.parent / data["protocol"])
            if not Path(data["protocol"]).is_absolute()
            else Path(data["protocol"])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            protocol = Protocol.from_toml(proto_path)
    else:
        tpl = dict(data["template"])
        duration = tpl.pop("duration", "40 d")
        protocol = ScheduleTemplate(duration, **tpl)
    factors = data.get("factors")
    if not factors or not isinstance(factors, dict):
        raise MhimmuneError(f"{p}: [factors] must list at least one factor")
    factors = {
        k: (None if v in ("table", "default", {}) else (tuple(v) if isinstance(v, list) else v))
        for k, v in factors.items()
    }
    outputs = dict(data.get("outputs", {}))
    bad = set(outputs) - {"readouts", "trajectories", "time_step_day"}
    if bad:
        raise MhimmuneError(
            f"{p}: unknown keys in [outputs]: {sorted(bad)}; allowed: readouts, "
            f"trajectories, time_step_day"
        )
    trajectories = list(outputs.get("trajectories", []))
    grid = None
    if trajectories:
        step = float(outputs.get("time_step_day", 1.0))
        if not step > 0:
            raise MhimmuneError(f"{p}: outputs.time_step_day must be > 0")
        end = protocol.duration_h / 24.0
        grid = np.arange(0.0, end + 1e-9, step)
    kwargs = dict(
        protocol=protocol,
        factors=factors,
        method=data.get("method", "sobol"),
        n=int(data.get("n", 1024)),
        readouts=outputs.get("readouts"),
        trajectories=trajectories,
        time_grid_day=grid,
        params=data.get("params"),
        seed=data.get("seed", 0),
        second_order=bool(data.get("second_order", False)),
        num_levels=int(data.get("num_levels", 4)),
        M=int(data.get("M", 4)),
        num_resamples=int(data.get("num_resamples", 100)),
        simulate_options=data.get("simulate"),
    )
    return kwargs


def write_outputs(result: SensitivityResult, out) -> list:
    """Write indices.csv, runs.parquet, failures.csv (if any) and problem.csv into *out*; return the paths."""
    from pathlib import Path

    from mhimmune.core.io import atomic_path, write_csv

    out = Path(out)
    paths = [
        write_csv(result.indices, out / "indices.csv", index=False),
        write_csv(result.sample.problem.to_frame(), out / "problem.csv", index=False),
    ]
    with atomic_path(out / "runs.parquet") as tmp:
        result.ensemble.results.to_parquet(tmp, index=False)
    paths.append(out / "runs.parquet")
    if result.ensemble.n_failed:
        paths.append(write_csv(result.failures, out / "failures.csv", index=False))
    return paths
