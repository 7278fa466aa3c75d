"""How an optimisation proposes candidates: a full grid, random draws, differential evolution.

:func:`grid_candidates` and :func:`random_candidates` return every candidate at once;
:func:`run_de` runs a small differential evolution (scipy's strategies and defaults,
``updating="deferred"``) that sends each whole generation through
:meth:`~mhimmune.studies.search.Search.evaluate`, i.e. one ensemble per generation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mhimmune.core.errors import ParameterError
from mhimmune.studies.constraints import is_number
from mhimmune.studies.search import Search
from mhimmune.studies.search_space import SpaceFactor

__all__ = [
    "grid_candidates",
    "random_candidates",
    "run_de",
    "DEFAULT_GRID_LEVELS",
    "DEFAULT_DE_GENERATIONS",
    "DE_OPTIONS",
    "DE_STRATEGIES",
]

#: levels given to a ``(low, high)`` factor of a grid when no budget is given
DEFAULT_GRID_LEVELS = 5
#: generations after the initial population of ``differential_evolution`` without a budget
DEFAULT_DE_GENERATIONS = 50
#: options of the differential evolution that ``de_options`` may set (scipy's names)
DE_OPTIONS = ("strategy", "popsize", "tol", "atol", "mutation", "recombination", "init")
#: mutation strategies (binomial crossover), as named by scipy.optimize.differential_evolution
DE_STRATEGIES = (
    "best1bin",
    "rand1bin",
    "currenttobest1bin",
    "randtobest1bin",
    "best2bin",
    "rand2bin",
)
#: ways to draw the initial population
DE_INITS = ("latinhypercube", "sobol", "halton", "random")


def grid_candidates(factors: list[SpaceFactor], budget: int | None) -> list[dict[str, float]]:
    """Every combination of levels; range factors get the most levels that fit *budget*."""
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


def random_candidates(
    factors: list[SpaceFactor], budget: int, rng: np.random.Generator
) -> list[dict]:
    """*budget* candidates drawn uniformly over levels, ranges and integer ranges."""
    cols = {}
    for f in factors:
        if f.levels is not None:
            cols[f.name] = np.asarray(f.levels, dtype=float)[rng.integers(0, len(f.levels), budget)]
        elif f.integer:
            low, high = f.bounds
            cols[f.name] = rng.integers(int(low), int(high) + 1, budget).astype(float)
        else:
            low, high = f.bounds
            cols[f.name] = rng.uniform(low, high, budget)
    return [{f.name: float(cols[f.name][i]) for f in factors} for i in range(budget)]


# ====================================================================== differential evolution


def _de_settings(options: Mapping[str, Any], n_variables: int, budget: int | None) -> dict:
    """Checked options of :func:`run_de` with scipy's defaults, population and generations."""
    init = options.get("init", "latinhypercube")
    if init not in DE_INITS:
        raise ParameterError(
            f"de_options.init: must be 'latinhypercube', 'sobol', 'halton' or "
            f"'random' (got {init!r})"
        )
    strategy = options.get("strategy", "best1bin")
    if strategy not in DE_STRATEGIES:
        raise ParameterError(
            f"de_options.strategy: must be one of {', '.join(DE_STRATEGIES)} (got {strategy!r})"
        )
    popsize = options.get("popsize", 15)
    if not is_number(popsize) or int(popsize) != popsize or popsize < 1:
        raise ParameterError(f"de_options.popsize: must be an integer ≥ 1 (got {popsize!r})")
    mutation = options.get("mutation", (0.5, 1.0))
    if is_number(mutation):
        mutation = (float(mutation), float(mutation))
    if (
        not isinstance(mutation, (tuple, list))
        or len(mutation) != 2
        or not all(is_number(m) for m in mutation)
        or not 0.0 <= float(mutation[0]) <= float(mutation[1]) <= 2.0
    ):
        raise ParameterError(
            f"de_options.mutation: must be a number in [0, 2] or a range (low, high) with "
            f"0 ≤ low ≤ high ≤ 2 (got {mutation!r})"
        )
    out: dict[str, Any] = {
        "init": init,
        "strategy": strategy,
        "mutation": (float(mutation[0]), float(mutation[1])),
    }
    for name, default, high in (
        ("recombination", 0.7, 1.0),
        ("tol", 0.01, None),
        ("atol", 0.0, None),
    ):
        x = options.get(name, default)
        if not is_number(x) or not 0.0 <= float(x) <= (math.inf if high is None else high):
            limit = f"in [0, {high:g}]" if high is not None else "≥ 0"
            raise ParameterError(f"de_options.{name}: must be a number {limit} (got {x!r})")
        out[name] = float(x)
    n_pop = max(5, int(popsize) * n_variables)
    if budget is None:
        maxiter = DEFAULT_DE_GENERATIONS
    else:
        maxiter = budget // n_pop - 1
        if maxiter < 1:
            raise ParameterError(
                f"budget: differential_evolution evaluates populations of {n_pop} "
                f"candidates (popsize {popsize} × {n_variables} variables); give "
                f"budget ≥ {2 * n_pop} (the initial population and one generation)"
            )
    out.update(n_pop=n_pop, maxiter=maxiter)
    return out


def _initial_population(init: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """*n* points in the unit cube [0, 1)^d drawn by *init*."""
    if init == "random":
        return rng.uniform(size=(n, d))
    if init == "latinhypercube":
        strata = np.column_stack([rng.permutation(n) for _ in range(d)])
        return (strata + rng.uniform(size=(n, d))) / n
    from scipy.stats import qmc  # deferred: only the sobol and halton starts need it

    seed = int(rng.integers(2**32))
    if init == "sobol":
        return qmc.Sobol(d, seed=seed).random_base2(max(0, math.ceil(math.log2(n))))[:n]
    return qmc.Halton(d, seed=seed).random(n)


def _mutants(
    pop: np.ndarray, best: int, strategy: str, F: float, rng: np.random.Generator
) -> np.ndarray:
    """One mutant vector per population member (scipy's formulas for *strategy*)."""
    n = len(pop)
    out = np.empty_like(pop)
    k = 5 if strategy == "rand2bin" else 4 if strategy == "best2bin" else 3
    for i in range(n):
        r = rng.choice([j for j in range(n) if j != i], size=k, replace=False)
        x, b = pop[i], pop[best]
        if strategy == "best1bin":
            out[i] = b + F * (pop[r[0]] - pop[r[1]])
        elif strategy == "rand1bin":
            out[i] = pop[r[0]] + F * (pop[r[1]] - pop[r[2]])
        elif strategy == "currenttobest1bin":
            out[i] = x + F * (b - x + pop[r[0]] - pop[r[1]])
        elif strategy == "randtobest1bin":
            out[i] = pop[r[0]] + F * (b - pop[r[0]]) + F * (pop[r[1]] - pop[r[2]])
        elif strategy == "best2bin":
            out[i] = b + F * (pop[r[0]] + pop[r[1]] - pop[r[2]] - pop[r[3]])
        else:  # rand2bin
            out[i] = pop[r[0]] + F * (pop[r[1]] + pop[r[2]] - pop[r[3]] - pop[r[4]])
    return out


def run_de(
    search: Search,
    factors: list[SpaceFactor],
    budget: int | None,
    seed: int,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Differential evolution over the non-constant factors; one ensemble per generation.

    Parameters
    ----------
    search
        The optimisation state that simulates candidates.
    factors
        The space's factors; list factors become integer variables (the index of the
        level), count ranges integer variables.
    budget
        Largest number of candidate evaluations; ``None``: :data:`DEFAULT_DE_GENERATIONS`
        generations after the initial population.
    seed
        Seed of ``numpy.random.default_rng``: the same seed gives the same search.
    options
        ``de_options`` of :func:`~mhimmune.studies.optimize.optimize_schedule`.

    Returns
    -------
    dict
        ``de_nit``, ``de_message``, ``de_generations``, ``de_population``, ``de_maxiter``.
    """
    variables = [f for f in factors if not f.constant]
    if not variables:
        raise ParameterError(
            "space: differential_evolution needs at least one factor with more than one value"
        )
    cfg = _de_settings(options, len(variables), budget)
    # integer variables span [low - 0.5, high + 0.5) so that rounding gives every value
    # the same share of the interval
    low, high = [], []
    for f in variables:
        if f.levels is not None:
            lo, hi, integer = 0.0, float(len(f.levels) - 1), True
        else:
            lo, hi, integer = float(f.bounds[0]), float(f.bounds[1]), f.integer
        if integer:
            lo, hi = np.nextafter(lo - 0.5, np.inf), np.nextafter(hi + 0.5, -np.inf)
        low.append(lo)
        high.append(hi)
    lower, span = np.asarray(low), np.asarray(high) - np.asarray(low)
    constants = {f.name: f.levels[0] for f in factors if f.levels is not None and f.constant}
    scale = 0.0  # largest |energy| of a valid candidate so far

    def candidate(unit: np.ndarray) -> dict[str, float]:
        out = dict(constants)
        for f, v in zip(variables, lower + unit * span):
            if f.levels is not None:
                out[f.name] = f.levels[int(round(v))]
            elif f.integer:
                out[f.name] = float(round(v))
            else:
                out[f.name] = float(v)
        return {n: out[n] for n in search.names}

    def energies(population: np.ndarray, desc: str) -> np.ndarray:
        # objectives to minimise; infeasible and all-failed candidates get a penalty above
        # every valid energy (infeasible ones more, growing with how far they break a limit)
        nonlocal scale
        ids = search.evaluate([candidate(x) for x in population], desc)
        rows = [search.rows[cid] for cid in ids]
        values = []
        for row in rows:
            e = row["objective"]
            if row["feasible"] and math.isfinite(e):
                e = -e if search.maximize else e
                scale = max(scale, abs(e))
            values.append(e)
        penalty = 1e3 * (1.0 + scale)
        return np.array(
            [
                penalty * (2.0 + row["_excess"])
                if not row["feasible"]
                else (penalty if not math.isfinite(e) else e)
                for row, e in zip(rows, values)
            ]
        )

    rng = np.random.default_rng(seed)
    n_pop, d = cfg["n_pop"], len(variables)
    pop = _initial_population(cfg["init"], n_pop, d, rng)
    energy = energies(pop, "DE initial population")
    message = f"maximum number of generations ({cfg['maxiter']}) reached"
    generations = 0
    for generations in range(1, cfg["maxiter"] + 1):
        F = rng.uniform(*cfg["mutation"])
        mutant = _mutants(pop, int(np.argmin(energy)), cfg["strategy"], F, rng)
        cross = rng.uniform(size=(n_pop, d)) < cfg["recombination"]
        cross[np.arange(n_pop), rng.integers(0, d, n_pop)] = True  # at least one variable
        trial = np.where(cross, mutant, pop)
        outside = (trial < 0.0) | (trial > 1.0)
        trial[outside] = rng.uniform(size=int(outside.sum()))  # as scipy: redraw
        trial_energy = energies(trial, f"DE generation {generations}")
        better = trial_energy < energy
        pop[better], energy[better] = trial[better], trial_energy[better]
        if np.std(energy) <= cfg["atol"] + cfg["tol"] * abs(np.mean(energy)):
            message = "converged: the spread of the population's objectives is within tolerance"
            break
    return {
        "de_nit": generations,
        "de_message": message,
        "de_generations": generations,
        "de_population": n_pop,
        "de_maxiter": cfg["maxiter"],
    }
