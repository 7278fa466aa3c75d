"""Samples of a sensitivity analysis: the design matrix of a method (SALib samplers).

:func:`sample` draws the :class:`Sample` a method needs (Saltelli for Sobol, Morris
trajectories, eFAST, Latin hypercube for PAWN and delta) over a
:class:`~mhimmune.studies.sa_problem.Problem`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.studies.sa_problem import METHODS, Problem

__all__ = ["Sample", "sample", "check_method", "SampleSizeWarning", "MIN_SAMPLE_SIZE"]


class SampleSizeWarning(UserWarning):
    """A sensitivity design or its indices are too small to trust.

    Raised as a warning (never an error) by :func:`sample` when the base sample size is
    below :data:`MIN_SAMPLE_SIZE` for the method, and by
    :func:`~mhimmune.studies.sa_analysis.analyze` when an index's confidence interval is
    wider than the index itself. Small designs stay useful for smoke tests and previews;
    silence the warning explicitly there
    (``warnings.simplefilter("ignore", SampleSizeWarning)``).
    """


#: smallest base sample size N per method below which :func:`sample` warns
#: (:class:`SampleSizeWarning`); the indices of smaller designs are rough at best.
#:
#: - ``sobol``: N = 512, the base sample of SALib's own Sobol example
#:   (``SALib.analyze.sobol``: ``saltelli.sample(problem, 512)``); SALib's Sobol sampler
#:   also needs N to be a power of 2 (:func:`sample` raises otherwise).
#: - ``morris``: r = 10 trajectories, the lower end of the 10–20 that Campolongo, Cariboni
#:   & Saltelli (2007) and Saltelli et al. (2008, *Global Sensitivity Analysis: The
#:   Primer*) recommend for the Morris screening.
#: - ``efast``: N = 65, SALib's ``fast_sampler`` requirement N > 4·M² at its default
#:   interference parameter M = 4 (a larger M needs a larger N and is an error).
#: - ``pawn`` and ``delta``: 1000 runs, the Latin-hypercube size of SALib's PAWN and
#:   delta examples (``latin.sample(problem, 1000)``); both estimate conditional
#:   distributions from slices of the sample, which need many runs per slice.
MIN_SAMPLE_SIZE = {"sobol": 512, "morris": 10, "efast": 65, "pawn": 1000, "delta": 1000}


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

    Warns
    -----
    SampleSizeWarning
        When *n* is below :data:`MIN_SAMPLE_SIZE` of the method.
    """
    from SALib.sample import fast_sampler, latin
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    method = check_method(method)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ParameterError(f"n: must be an integer ≥ 1 (got {n!r})")
    n = int(n)
    if n < 1:
        raise ParameterError(f"n: must be ≥ 1 (got {n})")
    p = problem.salib()
    options: dict[str, bool | int]
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
    if n < MIN_SAMPLE_SIZE[method]:
        what = "trajectories" if method == "morris" else "base sample size N"
        warnings.warn(
            f"{method}: {what} {n} is below {MIN_SAMPLE_SIZE[method]}, the least for stable "
            f"indices (see mhimmune.studies.sa_sampling.MIN_SAMPLE_SIZE); treat the indices "
            f"as a rough preview",
            SampleSizeWarning,
            stacklevel=2,
        )
    return Sample(
        method=method,
        problem=problem,
        unit=unit,
        design=problem.values(unit),
        n=n,
        options=options,
        seed=seed,
    )


def check_method(method: str) -> str:
    m = str(method).lower()
    if m == "fast":
        m = "efast"
    if m not in METHODS:
        raise ParameterError(f"method: unknown {method!r}; allowed: {', '.join(METHODS)}")
    return m
