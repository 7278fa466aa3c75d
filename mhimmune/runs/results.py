"""Results of many runs: the per-run table, trajectories and failures.

:class:`EnsembleResult` is what :func:`~mhimmune.runs.ensemble.run_ensemble` returns;
:class:`OutputSchema` turns the raw outputs of evaluated chunks into table rows (learning
output names from the first successful run and marking malformed or non-finite outputs as
failures); :func:`assemble_result` puts the chunks of a run back together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "STATUS_OK",
    "EnsembleFailureWarning",
    "EnsembleResult",
    "OutputSchema",
    "assemble_result",
]

#: status of a run that succeeded
STATUS_OK = "ok"


class EnsembleFailureWarning(UserWarning):
    """Some runs of an ensemble failed; they are listed in :attr:`EnsembleResult.failures`."""


@dataclass
class EnsembleResult:
    """Outcome of :func:`run_ensemble`.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per run (sorted by ``run``): ``run``, ``status`` (``"ok"`` or the kind
        of failure), ``message`` (error text, empty when ok), ``seconds`` (wall time of
        the run), the design columns, then one column per scalar output (NaN only
        where ``status != "ok"``).
    factor_names, output_names, trajectory_names : list of str
        Design columns, scalar outputs and trajectory variables.
    time_grid_day : numpy.ndarray or None
        Times (days) of the trajectories.
    trajectory_arrays : dict
        Variable -> array (runs × times); rows of failed runs are NaN.
    design_hash : str
        Identity of design + evaluator (the checkpoint key).
    n_computed : int
        Runs computed by this call (the others were resumed from disk).
    elapsed_s : float
        Wall time of this call in seconds.
    out : pathlib.Path or None
        Checkpoint folder.
    """

    results: pd.DataFrame
    factor_names: list[str]
    output_names: list[str]
    trajectory_names: list[str] = field(default_factory=list)
    time_grid_day: np.ndarray | None = None
    trajectory_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    design_hash: str = ""
    n_computed: int = 0
    elapsed_s: float = 0.0
    out: Path | None = None

    @property
    def n_runs(self) -> int:
        """Number of runs in the design."""
        return len(self.results)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the runs that succeeded."""
        return (self.results["status"] == STATUS_OK).to_numpy()

    @property
    def n_failed(self) -> int:
        """Number of runs that failed."""
        return int((~self.ok).sum())

    @property
    def failures(self) -> pd.DataFrame:
        """The failed runs: run, status, message and their factor values."""
        cols = ["run", "status", "message", *self.factor_names]
        return self.results.loc[~self.ok, cols].reset_index(drop=True)

    def output(self, name: str) -> np.ndarray:
        """One scalar output as an array over all runs (NaN for failed runs)."""
        if name not in self.output_names:
            raise KeyError(f"unknown output {name!r}; outputs: {self.output_names}")
        return self.results[name].to_numpy(dtype=float)

    def trajectories(self, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Tidy trajectories of the successful runs: run, variable, time_day, value."""
        frames = []
        runs = self.results["run"].to_numpy()[self.ok]
        for v in variables or self.trajectory_names:
            a = self.trajectory_arrays[v][self.ok]
            frames.append(
                pd.DataFrame(
                    {
                        "run": np.repeat(runs, a.shape[1]),
                        "variable": v,
                        "time_day": np.tile(np.asarray(self.time_grid_day, dtype=float), len(runs)),
                        "value": a.ravel(),
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=["run", "variable", "time_day", "value"])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        """One line: runs, failures by status, computed/resumed, wall time."""
        counts = self.results.loc[~self.ok, "status"].value_counts()
        failed = ", ".join(f"{k}: {v}" for k, v in counts.items())
        rate = self.n_computed / self.elapsed_s if self.elapsed_s > 0 else float("nan")
        return (
            f"{self.n_runs} runs, {self.n_runs - self.n_failed} ok, {self.n_failed} failed"
            f"{f' ({failed})' if failed else ''}; {self.n_computed} computed in "
            f"{self.elapsed_s:.1f} s ({rate:.1f} runs/s), "
            f"{self.n_runs - self.n_computed} resumed"
        )

    def __repr__(self) -> str:
        return f"<EnsembleResult: {self.summary()}>"


# ------------------------------------------------------------------------------ storage


class OutputSchema:
    """Output names discovered from the evaluator or its first successful run.

    Parameters
    ----------
    outputs, trajectories
        Names of the scalar outputs and trajectories, if known in advance.
    grid
        Time grid (days) the trajectories must have, or ``None``.
    """

    def __init__(
        self, outputs: Sequence[str], trajectories: Sequence[str], grid: Sequence[float] | None
    ):
        self.outputs = list(outputs)
        self.trajectories = list(trajectories)
        self.grid = None if grid is None else np.asarray(grid, dtype=float)
        self.known = bool(self.outputs or self.trajectories)

    def learn(self, values: Mapping[str, Any]) -> None:
        """Take output names from one run's outputs (scalars and arrays)."""
        for k, v in values.items():
            if np.ndim(v) == 0:
                self.outputs.append(k)
            else:
                self.trajectories.append(k)
        self.known = True

    def frame(self, raw: dict) -> pd.DataFrame:
        """Table rows (run, status, message, seconds, outputs) of one evaluated chunk."""
        status = list(raw["status"])
        message = list(raw["message"])
        if not self.known:
            first = next((v for v in raw["values"] if v is not None), None)
            if first is not None:
                self.learn(first)
        m = len(status)
        cols = {o: np.full(m, np.nan) for o in self.outputs}
        trajs: dict[str, list] = {v: [None] * m for v in self.trajectories}
        for j, values in enumerate(raw["values"]):
            if values is None:
                continue
            problem = None
            missing = [k for k in self.outputs + self.trajectories if k not in values]
            extra = [k for k in values if k not in cols and k not in trajs]
            if missing or extra:
                problem = (
                    f"evaluator returned outputs {sorted(values)}; "
                    f"expected {self.outputs + self.trajectories}"
                )
            else:
                try:
                    scal = {o: float(values[o]) for o in self.outputs}
                    arr = {v: np.asarray(values[v], dtype=float).ravel() for v in self.trajectories}
                except (TypeError, ValueError) as exc:
                    scal, arr, problem = {}, {}, f"non-numeric output ({exc})"
                if problem is None:
                    bad = [o for o, x in scal.items() if not math.isfinite(x)] + [
                        v for v, a in arr.items() if not np.all(np.isfinite(a))
                    ]
                    if bad:
                        status[j] = "nonfinite"
                        message[j] = f"non-finite output(s): {', '.join(bad)}"
                        continue
                    if self.grid is not None:
                        short = [v for v, a in arr.items() if len(a) != len(self.grid)]
                        if short:
                            problem = f"trajectory length differs from the time grid: {short}"
            if problem:
                status[j] = "bad_output"
                message[j] = problem
                continue
            for o, x in scal.items():
                cols[o][j] = x
            for v, a in arr.items():
                trajs[v][j] = a
        frame = pd.DataFrame(
            {
                "run": np.asarray(raw["runs"], dtype=np.int64),
                "status": status,
                "message": message,
                "seconds": np.asarray(raw["seconds"], dtype=float),
                **cols,
                **{f"trajectory:{v}": pd.Series(trajs[v], dtype=object) for v in self.trajectories},
            }
        )
        return frame


def assemble_result(
    collected: Sequence[pd.DataFrame],
    design: pd.DataFrame,
    names: Sequence[str],
    schema: OutputSchema,
    n: int,
) -> EnsembleResult:
    """The :class:`EnsembleResult` of *n* runs from chunk tables (runs missing: ``not_run``)."""
    if collected:
        allr = pd.concat(collected, ignore_index=True).sort_values("run").drop_duplicates("run")
    else:
        allr = pd.DataFrame({"run": np.arange(0)})
    allr = allr.set_index("run").reindex(np.arange(n))
    for o in schema.outputs:
        if o not in allr:
            allr[o] = np.nan
    table = pd.DataFrame(
        {
            "run": np.arange(n, dtype=np.int64),
            "status": allr["status"].fillna("not_run").to_numpy(),
            "message": allr["message"].fillna("").to_numpy(),
            "seconds": allr["seconds"].to_numpy(dtype=float),
        }
    )
    table = pd.concat([table, design.reset_index(drop=True)], axis=1)
    for o in schema.outputs:
        table[o] = allr[o].to_numpy(dtype=float)
    ok = (table["status"] == STATUS_OK).to_numpy()
    trajectories = {}
    grid = schema.grid
    for v in schema.trajectories:
        col = allr.get(f"trajectory:{v}")
        length = (
            len(grid)
            if grid is not None
            else max(
                (len(a) for a in col if a is not None and not (isinstance(a, float))), default=0
            )
        )
        arr = np.full((n, length), np.nan)
        if col is not None:
            for i in np.nonzero(ok)[0]:
                arr[i] = np.asarray(col.iloc[i], dtype=float)
        trajectories[v] = arr
    if grid is None and schema.trajectories:
        grid = np.arange(max((a.shape[1] for a in trajectories.values()), default=0), dtype=float)
    return EnsembleResult(
        results=table,
        factor_names=list(names),
        output_names=list(schema.outputs),
        trajectory_names=list(schema.trajectories),
        time_grid_day=grid,
        trajectory_arrays=trajectories,
    )
