"""Seed stability: how much a virtual trial's responder fractions move with the cohort.

:func:`seed_stability` re-runs a trial over several cohort seeds and sizes and reports,
per arm and size, the mean responder fraction across seeds, its range, and the Wilson
95 % interval a single experiment of that size would report at the mean fraction: the
across-seed range is what a lab would see between repeats of the same experiment with
different mice; the Wilson interval is what one experiment can tell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.studies import stats
from mhimmune.studies.virtual_cohort import sample_cohort

__all__ = ["seed_stability", "SeedStability"]


@dataclass
class SeedStability:
    """Result of :func:`seed_stability`.

    Attributes
    ----------
    runs
        One row per (size, seed, arm): ``responders``, ``n_ok``, ``fraction``.
    table
        One row per (arm, size): ``n_seeds``, ``mean``, ``min``, ``max``, ``sd`` of the
        fraction across seeds, and ``wilson_low``/``wilson_high``: the Wilson 95 %
        interval of the mean fraction at that cohort size.
    """

    runs: pd.DataFrame
    table: pd.DataFrame

    def summary(self) -> str:
        """One line per arm and size."""
        lines = ["Seed stability of the responder fraction (model predictions):"]
        for _, r in self.table.iterrows():
            lines.append(
                f"  {r['arm']:<28} n = {int(r['size']):<4} {int(r['n_seeds'])} seeds: mean "
                f"{100 * r['mean']:.0f} %, range {100 * r['min']:.0f}–{100 * r['max']:.0f} %, "
                f"Wilson 95 % {100 * r['wilson_low']:.0f}–{100 * r['wilson_high']:.0f} %"
            )
        return "\n".join(lines)


def seed_stability(
    run: Callable[[pd.DataFrame], Any],
    seeds: int | Sequence[int] = 5,
    sizes: Sequence[int] = (10,),
    *,
    cohort_kwargs: dict[str, Any] | None = None,
) -> SeedStability:
    """Re-run a trial over cohort *seeds* and *sizes*; summarise each arm's responder fraction.

    Parameters
    ----------
    run
        ``run(cohort) -> TrialResult`` (e.g. ``lambda c: run_trial(arms, c, ...)``).
    seeds
        Number of seeds (``0 … seeds-1``) or the seeds themselves.
    sizes
        Cohort sizes (animals per arm, each ≥ 1).
    cohort_kwargs
        Further keywords of :func:`~mhimmune.studies.virtual_cohort.sample_cohort`
        (variability, correlation).

    Returns
    -------
    SeedStability
    """
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)):
        raise ParameterError(f"seeds: a count ≥ 1 or a list of integers (got {seeds!r})")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list or not all(isinstance(s, (int, np.integer)) for s in seed_list):
        raise ParameterError(f"seeds: a count ≥ 1 or a list of integers (got {seeds!r})")
    size_list = list(sizes)
    if not size_list or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in size_list
    ):
        raise ParameterError(f"sizes: cohort sizes must be integers ≥ 1 (got {sizes!r})")
    rows = []
    for size in size_list:
        for seed in seed_list:
            cohort = sample_cohort(int(size), seed=int(seed), **(cohort_kwargs or {}))
            rt = run(cohort).responder_table()
            for arm, r in rt.iterrows():
                rows.append(
                    {
                        "size": int(size),
                        "seed": int(seed),
                        "arm": arm,
                        "responders": int(r["responders"]),
                        "n_ok": int(r["n_ok"]),
                        "fraction": float(r["fraction"]),
                    }
                )
    runs = pd.DataFrame(rows)
    out = []
    for (arm, size), g in runs.groupby(["arm", "size"], sort=False):
        f = g["fraction"].to_numpy(float)
        mean = float(np.nanmean(f))
        n = int(round(float(g["n_ok"].mean())))
        _, lo, hi = stats.proportion_ci(int(round(mean * n)), n, 0.95, "wilson")
        out.append(
            {
                "arm": arm,
                "size": size,
                "n_seeds": len(g),
                "mean": mean,
                "min": float(np.nanmin(f)),
                "max": float(np.nanmax(f)),
                "sd": float(np.nanstd(f, ddof=1)) if len(g) > 1 else np.nan,
                "wilson_low": lo,
                "wilson_high": hi,
            }
        )
    return SeedStability(runs=runs, table=pd.DataFrame(out))
