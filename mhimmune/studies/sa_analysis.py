"""Sensitivity indices from simulated outputs (SALib analysers), one tidy table.

:func:`analyze` computes the indices of a method for every output (and time point) of an
ensemble run over a :class:`~mhimmune.studies.sa_sampling.Sample`; constant outputs give
zero indices, failed runs stop the methods that need every run
(:class:`IncompleteRunsError`) and are dropped and counted by the others.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.runs.ensemble import EnsembleResult
from mhimmune.studies.sa_sampling import Sample, SampleSizeWarning

__all__ = [
    "analyze",
    "empty_indices",
    "IncompleteRunsError",
    "INDEX_COLUMNS",
    "TOLERANT_METHODS",
    "SampleSizeWarning",
    "CI_TOLERANCE",
    "wide_intervals",
]

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


#: a confidence interval is *too wide* when its half-width exceeds the index itself and
#: CI_TOLERANCE of the index's scale (1 for the variance fractions S1, ST, S2 and delta;
#: the output's largest mu_star for Morris), so that the narrow intervals of negligible
#: factors around zero do not count
CI_TOLERANCE = 0.1


class IncompleteRunsError(MhimmuneError):
    """A method that needs every run (Sobol, Morris, eFAST) got failed runs."""


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


def wide_intervals(indices: pd.DataFrame) -> pd.DataFrame:
    """Rows of *indices* whose confidence interval is wider than the index itself.

    A row counts when its half-width exceeds both ``|value|`` and :data:`CI_TOLERANCE`
    times the index's scale (1 for variance fractions; the largest ``|value|`` of the same
    method, output, time and index for Morris ``mu_star``). Rows without an interval
    never count.
    """
    if indices.empty:
        return indices
    half = (indices["conf_high"] - indices["conf_low"]) / 2
    value = indices["value"].abs()
    keys = [indices["method"], indices["output"], indices["time_day"].fillna(-1.0)]
    group_max = value.groupby(keys + [indices["index"]]).transform("max")
    scale = group_max.where(indices["method"] == "morris", 1.0)
    wide = np.isfinite(half) & (half > value) & (half > CI_TOLERANCE * scale)
    return indices[wide]


def _warn_wide_intervals(indices: pd.DataFrame) -> None:
    wide = wide_intervals(indices)
    if wide.empty:
        return
    half = (wide["conf_high"] - wide["conf_low"]) / 2
    worst = wide.loc[half.idxmax()]
    at = "" if math.isnan(worst["time_day"]) else f" at day {worst['time_day']:g}"
    warnings.warn(
        f"{worst['method']}: {len(wide)} of {len(indices)} indices have a confidence interval "
        f"wider than the index itself, e.g. {worst['index']} of output {worst['output']!r}"
        f"{at} for factor {worst['factor']!r}: {worst['value']:.3g} "
        f"[{worst['conf_low']:.3g}, {worst['conf_high']:.3g}] "
        f"({worst['n_runs']} runs); increase n before reading these indices",
        SampleSizeWarning,
        stacklevel=3,
    )


def empty_indices() -> pd.DataFrame:
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

    Warns
    -----
    SampleSizeWarning
        When an index's confidence interval is wider than the index itself
        (:func:`wide_intervals`), naming the output and factor of the widest.
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
                grid = outputs.time_grid_day
                assert grid is not None  # an ensemble with trajectories has their time grid
                for k, t in enumerate(grid):
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
        return empty_indices()
    out = pd.concat(frames, ignore_index=True)[INDEX_COLUMNS]
    _warn_wide_intervals(out)
    return out
