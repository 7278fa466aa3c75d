"""The least-squares objective of a calibration: log-volume residuals of simulated arms.

:class:`Objective` simulates every arm of a measurement table with a parameter vector
(on each parameter's scale, see :func:`to_scaled`) and returns the residuals
``log V_obs − log V_model``; a failed simulation gives :data:`FAILURE_RESIDUAL`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError, SolverError
from mhimmune.core.model import Model
from mhimmune.core.units import HOURS_PER_DAY, days_to_hours, hours_to_days
from mhimmune.interop.petab import load_measurements, observable_name, resolve_protocols
from mhimmune.mh.simulation import simulate

__all__ = ["Objective", "FAILURE_RESIDUAL", "grid_step_h", "to_scaled", "from_scaled"]

#: residual (log units) given to every measurement of a failed simulation
FAILURE_RESIDUAL = 10.0
_GRID_STEPS_H = (HOURS_PER_DAY, 12.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 1 / 6, 1 / 12, 1 / 60)


def grid_step_h(days: np.ndarray) -> float | None:
    """Largest output step (h) with every measurement time on the grid, else None."""
    hours = days_to_hours(np.asarray(days, float))
    for step in _GRID_STEPS_H:
        k = hours / step
        if np.all(np.abs(k - np.round(k)) < 1e-7):
            return step
    return None


def to_scaled(x, scale):
    """Values *x* on *scale* (``"log10"``, ``"log"`` or linear)."""
    return (
        np.log10(x) if scale == "log10" else np.log(x) if scale == "log" else np.asarray(x, float)
    )


def from_scaled(z, scale):
    """Values back from *scale* (``"log10"``, ``"log"`` or linear)."""
    return 10.0**z if scale == "log10" else np.exp(z) if scale == "log" else np.asarray(z, float)


class Objective:
    """Log-volume residuals of a model against measurements, as a function of parameters.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    data
        Measurements (:func:`mhimmune.interop.petab.load_measurements`).
    parameters
        Names of the parameters to fit (table names).
    protocols
        Protocol of each arm (see :func:`mhimmune.interop.petab.resolve_protocols`).
    fixed
        Further overrides held fixed during the fit.
    bounds
        ``{name: (lower, upper)}`` in table units replacing the table's bounds.
    sim_options
        Keyword arguments of :func:`mhimmune.simulate` (default ``rtol=1e-8, atol=1e-10``,
        tight enough for finite-difference gradients).
    """

    def __init__(
        self,
        model: Model,
        data: pd.DataFrame,
        parameters: Sequence[str],
        protocols: Mapping[str, Any] | None = None,
        *,
        fixed: Mapping[str, Any] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        sim_options: Mapping[str, Any] | None = None,
    ):
        self.model = model
        self.data = load_measurements(data)
        self.parameters = list(parameters)
        if not self.parameters:
            raise ParameterError("fit: give at least one parameter to estimate")
        if len(set(self.parameters)) != len(self.parameters):
            raise ParameterError(f"fit: parameters listed twice: {self.parameters}")
        table = model.parameters()
        unknown = [n for n in self.parameters if n not in table.index]
        if unknown:
            raise ParameterError(f"fit: unknown parameter(s) {', '.join(unknown)}")
        self.fixed = dict(fixed or {})
        clash = set(self.fixed) & set(self.parameters)
        if clash:
            raise ParameterError(f"fit: {sorted(clash)} both fitted and fixed")
        self.units = [str(table.loc[n, "unit"]) for n in self.parameters]
        self.scales = [str(table.loc[n, "scale"]) for n in self.parameters]
        self.nominal = np.array([float(table.loc[n, "value"]) for n in self.parameters])
        lo, hi = [], []
        for n in self.parameters:
            a, b = (bounds or {}).get(n, (table.loc[n, "lower"], table.loc[n, "upper"]))
            if not (np.isfinite(a) and np.isfinite(b) and a < b):
                raise ParameterError(f"fit: {n} needs finite bounds lower < upper (got {a}, {b})")
            lo.append(float(a))
            hi.append(float(b))
        self.lower, self.upper = np.array(lo), np.array(hi)
        for n, s, a in zip(self.parameters, self.scales, self.lower):
            if s in ("log", "log10") and a <= 0:
                raise ParameterError(
                    f"fit: {n} is fitted on a {s} scale and needs a lower bound > 0"
                )
        self.protocols = resolve_protocols(self.data["arm"].unique(), protocols)
        self.sim_options = {"rtol": 1e-8, "atol": 1e-10, **dict(sim_options or {})}
        self._plan = []  # per arm: protocol, step, {site: (derived or state index, rows, times)}
        for arm, prot in self.protocols.items():
            d = self.data[self.data["arm"] == arm]
            if (days_to_hours(d["day"]) > prot.duration_h + 1e-9).any():
                raise MhimmuneError(
                    f"arm {arm!r}: measurements after the end of its protocol "
                    f"(day {hours_to_days(prot.duration_h):g})"
                )
            step = grid_step_h(d["day"].to_numpy())
            sites = {}
            for site, ds in d.groupby("site"):
                sites[site] = (
                    self._locate(observable_name(site)),
                    ds.index.to_numpy(),
                    days_to_hours(ds["day"].to_numpy()),
                )
            self._plan.append((arm, prot, step, sites))
        self.log_obs = np.log(self.data["volume"].to_numpy())
        self.n_evaluations = 0
        self.n_failures = 0

    def _locate(self, name: str) -> tuple[str, int]:
        c = self.model.compiled
        if name in c.derived_names:
            return "derived", c.derived_names.index(name)
        if name in c.species:
            return "state", c.species.index(name)
        raise MhimmuneError(f"the model has no quantity {name!r} to compare with the measurements")

    # ------------------------------------------------------------------ values
    def to_scaled(self, values) -> np.ndarray:
        """Parameter values (table units) → optimisation coordinates (the table's scales)."""
        return np.array([to_scaled(v, s) for v, s in zip(values, self.scales)], float)

    def from_scaled(self, z) -> np.ndarray:
        return np.array([from_scaled(v, s) for v, s in zip(z, self.scales)], float)

    @property
    def scaled_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.to_scaled(self.lower), self.to_scaled(self.upper)

    def overrides(self, values) -> dict[str, float]:
        return {**self.fixed, **{n: float(v) for n, v in zip(self.parameters, values)}}

    # --------------------------------------------------------------- residuals
    def simulate_arm(self, arm: str, values, **options):
        """Simulation of one arm at parameter *values* (table units)."""
        prot = self.protocols[arm]
        return simulate(self.model, prot, self.overrides(values), **{**self.sim_options, **options})

    def predictions(self, values, data: pd.DataFrame | None = None) -> np.ndarray:
        """Model volumes (mm³) at every measurement (row order of ``self.data``)."""
        out = np.full(len(self.data), np.nan)
        for _arm, prot, step, sites in self._plan:
            opts = {"output_step": f"{step} h"} if step is not None else {"output_step": "1 h"}
            res = simulate(self.model, prot, self.overrides(values), **{**self.sim_options, **opts})
            t = res.time_h
            for _site, ((kind, idx), rows, times) in sites.items():
                series = res.derived[:, idx] if kind == "derived" else res.states[:, idx]
                if step is not None:
                    pos = np.searchsorted(t, times - 1e-7)
                    out[rows] = series[np.clip(pos, 0, len(t) - 1)]
                else:  # off-grid times: log-linear interpolation on the hourly grid
                    out[rows] = np.exp(np.interp(times, t, np.log(np.maximum(series, 1e-300))))
        return out

    def residuals(self, z) -> np.ndarray:
        """log(model) − log(measured) for scaled parameters *z*; failures give a penalty."""
        self.n_evaluations += 1
        try:
            pred = self.predictions(self.from_scaled(z))
            if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
                raise SolverError("non-positive or non-finite tumour volume")
        except SolverError:
            self.n_failures += 1
            return np.full(len(self.log_obs), FAILURE_RESIDUAL)
        return np.log(pred) - self.log_obs

    def rss(self, z) -> float:
        r = self.residuals(z)
        return float(r @ r)
