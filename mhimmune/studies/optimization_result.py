"""The outcome of a schedule optimisation: optimum, candidate table, robustness, plots.

:class:`OptimizationResult` is what :func:`~mhimmune.studies.optimize.optimize_schedule`
returns: the optimum and its objective, every candidate, the optimum's per-animal runs,
the bootstrap robustness, a text summary and a ranking plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mhimmune.studies.constraints import Constraints

__all__ = ["OptimizationResult"]


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
