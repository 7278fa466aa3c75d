"""The state of one schedule optimisation: candidates, their runs, objectives, bootstrap.

:class:`Search` deduplicates proposed candidates, checks them against the constraints,
simulates new feasible ones over the cohort in one
:func:`~mhimmune.runs.ensemble.run_ensemble` call per batch and keeps the per-animal
values; :func:`bootstrap` and :func:`percentiles` tell how robust the chosen optimum is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.mh.template import PROTOCOL_FACTORS
from mhimmune.runs.ensemble import STATUS_OK, run_ensemble
from mhimmune.studies.search_space import aggregate_rows

__all__ = ["Search", "bootstrap", "percentiles", "CI_LEVEL"]

#: confidence level of the bootstrap percentile intervals
CI_LEVEL = 0.95


class Search:
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
        """The full factor dict of a candidate: template defaults, fixed values, candidate."""
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
                reasons, excess = self.constraints.check(self.full_values(values))
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
        """Simulate candidates *cids* for every animal in one ensemble and store the values."""
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
        agg = aggregate_rows(y, self.aggregate, self.q)
        for j, c in enumerate(cids):
            self.Y[c] = y[j]
            self.rows[c]["n_ok"] = int(ok[j].sum())
            self.rows[c]["n_failed"] = int(n_a - ok[j].sum())
            self.rows[c]["objective"] = float(agg[j])

    # ------------------------------------------------------------------ results
    def table(self) -> pd.DataFrame:
        """One row per candidate: factors, feasibility, run counts, objective, rank."""
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
        """Every simulated run: candidate, animal, status, message, seconds, design, outputs."""
        if not self.runs:
            return pd.DataFrame(
                columns=["candidate", "animal", "status", "message", "seconds", *self.names]
            )
        return pd.concat(self.runs, ignore_index=True)


def bootstrap(
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
        v = aggregate_rows(Y[:, idx], aggregate, q)
        B[b] = v
        finite = np.isfinite(v)
        if not finite.any():
            continue
        target = v[finite].max() if maximize else v[finite].min()
        winners = finite & (v == target)
        share[winners] += 1.0 / winners.sum()
    return B, share / n_boot


def percentiles(col: np.ndarray) -> tuple[float, float]:
    """The CI_LEVEL percentile interval of the finite entries of *col* (NaN when none)."""
    col = col[np.isfinite(col)]
    if len(col) == 0:
        return math.nan, math.nan
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(col, [alpha, 1 - alpha])
    return float(lo), float(hi)
