"""Fit model parameters to measured tumour growth: multi-start least squares with CIs.

The error model is the PEtab problem's (:mod:`mhimmune.interop.petab`): measured volumes are
log-normal around the model's tumour volume, ``log V_obs = log V_model(t) + ε``,
``ε ~ N(0, σ²)``, with one σ for all measurements. Maximising the likelihood over
σ leaves least squares on log volumes, which :func:`scipy.optimize.least_squares`
minimises from several starts (the table's value and points drawn in the table's
bounds, on its ``scale``). Confidence intervals come from

* the **profile likelihood** (default): each parameter is stepped away from the
  estimate while the others are re-fitted, until the likelihood-ratio statistic
  ``n · log(RSS_profile / RSS_min)`` (σ profiled out) reaches the χ²₁ quantile of the
  confidence level; an interval that reaches a table bound is reported as that bound
  and flagged; or
* the **bootstrap**: animals are resampled within arms, the fit repeated from the
  estimate, and the percentile interval taken.

Values are in the parameter table's units (as in overrides of :func:`simulate`).

>>> data = calibrate.load_measurements("tumours.csv")          # animal, arm, day, volume
>>> fit = calibrate.fit(model, data, ["tumour_growth_rate", "ctl_kill_rate"])
>>> fit.table(); fit.plot(); fit.plot_profiles()
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mhimmune.core.errors import MhimmuneError, ParameterError, SolverError
from mhimmune.core.model import Model
from mhimmune.mh.simulation import simulate
from mhimmune.interop.petab import load_measurements, observable_name, resolve_protocols
from mhimmune.mh.protocol import Protocol

__all__ = ["fit", "FitResult", "Objective", "synthetic_measurements", "load_measurements"]

#: residual (log units) given to every measurement of a failed simulation
FAILURE_RESIDUAL = 10.0
_GRID_STEPS_H = (24.0, 12.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 1 / 6, 1 / 12, 1 / 60)


def _grid_step_h(days: np.ndarray) -> float | None:
    """Largest output step (h) with every measurement time on the grid, else None."""
    hours = np.asarray(days, float) * 24.0
    for step in _GRID_STEPS_H:
        k = hours / step
        if np.all(np.abs(k - np.round(k)) < 1e-7):
            return step
    return None


def _to_scaled(x, scale):
    return (
        np.log10(x) if scale == "log10" else np.log(x) if scale == "log" else np.asarray(x, float)
    )


def _from_scaled(z, scale):
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
        Keyword arguments of :func:`mhimmune.core.simulate` (default ``rtol=1e-8, atol=1e-10``,
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
            if (d["day"] * 24 > prot.duration_h + 1e-9).any():
                raise MhimmuneError(
                    f"arm {arm!r}: measurements after the end of its protocol "
                    f"(day {prot.duration_h / 24:g})"
                )
            step = _grid_step_h(d["day"].to_numpy())
            sites = {}
            for site, ds in d.groupby("site"):
                sites[site] = (
                    self._locate(observable_name(site)),
                    ds.index.to_numpy(),
                    ds["day"].to_numpy() * 24,
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
        return np.array([_to_scaled(v, s) for v, s in zip(values, self.scales)], float)

    def from_scaled(self, z) -> np.ndarray:
        return np.array([_from_scaled(v, s) for v, s in zip(z, self.scales)], float)

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
        for arm, prot, step, sites in self._plan:
            opts = {"output_step": f"{step} h"} if step is not None else {"output_step": "1 h"}
            res = simulate(self.model, prot, self.overrides(values), **{**self.sim_options, **opts})
            t = res.time_h
            for site, ((kind, idx), rows, times) in sites.items():
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


@dataclass
class FitResult:
    """Estimates, confidence intervals and everything needed to check a fit.

    Attributes
    ----------
    estimates : pandas.Series
        Best values (table units), by parameter.
    ci : pandas.DataFrame
        ``lower``, ``upper`` (table units), ``method``, ``level``, and
        ``lower_at_bound``/``upper_at_bound`` (the interval reached the search bound:
        not identifiable on that side within the bounds).
    sigma : float
        Maximum-likelihood SD of log volume.
    rss, n : float, int
        Residual sum of squares (log units) and number of measurements.
    starts : pandas.DataFrame
        One row per start: start values, end values, RSS, success, evaluations.
    profiles : dict[str, pandas.DataFrame]
        Profile-likelihood points (``value``, ``delta`` = likelihood-ratio statistic).
    bootstrap : pandas.DataFrame | None
        Bootstrap estimates, one row per resample.
    """

    objective: Objective
    estimates: pd.Series
    ci: pd.DataFrame
    sigma: float
    rss: float
    n: int
    starts: pd.DataFrame
    profiles: dict[str, pd.DataFrame] = field(default_factory=dict)
    bootstrap: pd.DataFrame | None = None
    seconds: float = 0.0

    @property
    def log_likelihood(self) -> float:
        """Maximised log-likelihood (σ at its MLE) of the log volumes."""
        return -0.5 * self.n * (math.log(2 * math.pi * self.rss / self.n) + 1)

    def table(self) -> pd.DataFrame:
        """Estimates with intervals, units, scales and the bounds searched."""
        o = self.objective
        df = pd.DataFrame(
            {
                "estimate": self.estimates.values,
                "ci_lower": self.ci["lower"].values,
                "ci_upper": self.ci["upper"].values,
                "unit": o.units,
                "scale": o.scales,
                "nominal": o.nominal,
                "bound_lower": o.lower,
                "bound_upper": o.upper,
                "method": self.ci["method"].values,
                "level": self.ci["level"].values,
                "identifiable": [
                    None if m == "none" else not (a or b)
                    for m, a, b in zip(
                        self.ci["method"], self.ci["lower_at_bound"], self.ci["upper_at_bound"]
                    )
                ],
            },
            index=pd.Index(o.parameters, name="parameter"),
        )
        return df

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n}={v:.4g} [{lo:.4g}, {hi:.4g}]"
            for n, v, lo, hi in zip(
                self.estimates.index, self.estimates.values, self.ci["lower"], self.ci["upper"]
            )
        )
        return f"<FitResult {parts}; sigma={self.sigma:.3g}, n={self.n}>"

    def predictions(self) -> pd.DataFrame:
        """The measurements with the fitted volumes and log residuals."""
        o = self.objective
        d = o.data.copy()
        d["fitted"] = o.predictions(self.estimates.values)
        d["log_residual"] = np.log(d["volume"]) - np.log(d["fitted"])
        return d

    def plot(self, output_step: str = "6 h"):
        """Data (points, one colour per arm) and fitted tumour volumes (lines), log scale."""
        import matplotlib.pyplot as plt

        o = self.objective
        sites = list(dict.fromkeys(o.data["site"]))
        fig, axes = plt.subplots(1, len(sites), figsize=(5.5 * len(sites), 4), squeeze=False)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for arm_i, arm in enumerate(o.protocols):
            res = o.simulate_arm(arm, self.estimates.values, output_step=output_step)
            colour = colours[arm_i % len(colours)]
            for ax, site in zip(axes[0], sites):
                d = o.data[(o.data["arm"] == arm) & (o.data["site"] == site)]
                if d.empty:
                    continue
                name = observable_name(site)
                ax.plot(res.time_h / 24, res.wide[name].values, color=colour, label=f"{arm} (fit)")
                ax.scatter(
                    d["day"], d["volume"], color=colour, s=14, alpha=0.7, label=f"{arm} (data)"
                )
        for ax, site in zip(axes[0], sites):
            ax.set_yscale("log")
            ax.set_xlabel("day")
            ax.set_ylabel(f"tumour volume, {site} (mm³)")
            ax.legend(fontsize=7)
        fig.suptitle(
            "Fit: " + ", ".join(f"{n} = {v:.3g}" for n, v in self.estimates.items()), fontsize=9
        )
        fig.tight_layout()
        return fig

    def plot_profiles(self):
        """Profile likelihood of each parameter with the χ² threshold and the interval."""
        import matplotlib.pyplot as plt

        names = [n for n in self.objective.parameters if n in self.profiles]
        if not names:
            raise MhimmuneError("no profiles: fit with ci='profile'")
        fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.3), squeeze=False)
        level = float(self.ci["level"].iloc[0])
        threshold = stats.chi2.ppf(level, 1)
        for ax, n in zip(axes[0], names):
            prof = self.profiles[n].sort_values("value")
            ax.plot(prof["value"], prof["delta"], "o-", ms=3)
            ax.axhline(threshold, color="grey", ls="--", lw=1)
            for x in (self.ci.loc[n, "lower"], self.ci.loc[n, "upper"]):
                ax.axvline(x, color="tab:red", lw=1)
            ax.axvline(self.estimates[n], color="k", lw=1)
            wide = prof["value"].max() > 3 * prof["value"].min() > 0
            if wide and self.objective.scales[self.objective.parameters.index(n)] in (
                "log",
                "log10",
            ):
                ax.set_xscale("log")
            ax.set_xlabel(f"{n} ({self.objective.units[self.objective.parameters.index(n)]})")
            ax.set_ylabel("Δ = n·log(RSS/RSS_min)")
        fig.tight_layout()
        return fig


def synthetic_measurements(
    model: Model,
    protocols: Mapping[str, Protocol],
    days: Sequence[float],
    *,
    params: Mapping[str, Any] | None = None,
    animals_per_arm: int = 5,
    sd_log: float = 0.1,
    sites: Sequence[str] = ("treated",),
    seed: int = 0,
) -> pd.DataFrame:
    """Tumour volumes simulated with *params* plus log-normal noise (SD *sd_log*), as a table.

    Every animal of an arm follows the same model trajectory; measurement noise is
    independent. The result has the columns of :func:`load_measurements`.
    """
    rng = np.random.default_rng(seed)
    days = np.asarray(sorted(days), float)
    rows = []
    for arm, prot in protocols.items():
        step = _grid_step_h(days) or 1.0
        res = simulate(model, prot, params, output_step=f"{step} h", rtol=1e-10, atol=1e-12)
        w = res.wide
        for site in sites:
            name = observable_name(site)
            truth = np.interp(days, w.index.values, w[name].values)
            for a in range(animals_per_arm):
                noisy = truth * np.exp(rng.normal(0.0, sd_log, len(days)))
                rows += [
                    dict(animal=f"{arm}_{a + 1}", arm=arm, day=float(d), volume=float(v), site=site)
                    for d, v in zip(days, noisy)
                ]
    return pd.DataFrame(rows)


def _least_squares(obj: Objective, z0, free: np.ndarray, fixed_z: np.ndarray | None = None, **kw):
    """Minimise the RSS over the coordinates where *free* is True (others from *fixed_z*)."""
    lo, hi = obj.scaled_bounds
    base = np.array(z0 if fixed_z is None else fixed_z, float)

    def fun(zf):
        z = base.copy()
        z[free] = zf
        return obj.residuals(z)

    start = np.clip(np.asarray(z0, float)[free], lo[free], hi[free])
    opts = dict(
        method="trf", diff_step=1e-4, x_scale=1.0, max_nfev=200, xtol=1e-10, ftol=1e-10, gtol=1e-10
    )
    opts.update(kw)
    r = optimize.least_squares(fun, start, bounds=(lo[free], hi[free]), **opts)
    z = base.copy()
    z[free] = r.x
    return z, 2.0 * r.cost, r


def _profile(
    obj: Objective,
    z_best: np.ndarray,
    rss_min: float,
    j: int,
    level: float,
    se: float,
    max_points: int = 12,
) -> tuple[list[tuple[float, float]], float, float, bool, bool]:
    """Walk parameter *j* both ways until Δ crosses the χ²₁ threshold (scaled coordinates)."""
    n = len(obj.log_obs)
    threshold = stats.chi2.ppf(level, 1)
    lo, hi = obj.scaled_bounds
    free = np.ones(len(z_best), bool)
    free[j] = False
    points = [(z_best[j], 0.0)]
    ends, at_bound = [], []
    span = hi[j] - lo[j]
    for direction in (-1.0, 1.0):
        step = float(
            np.clip(se if np.isfinite(se) and se > 0 else 0.05 * span, 1e-3 * span, 0.25 * span)
        )
        prev_v, prev_d = z_best[j], 0.0
        z = z_best.copy()
        end, hit = None, False
        for _ in range(max_points):
            v = prev_v + direction * step
            bound = lo[j] if direction < 0 else hi[j]
            if (v - bound) * direction >= 0:
                v, hit = bound, True
            z[j] = v
            if free.any():
                z, rss, _ = _least_squares(obj, z, free, fixed_z=z)
            else:
                rss = obj.rss(z)
            d = n * math.log(max(rss, 1e-300) / rss_min)
            points.append((v, d))
            if d >= threshold:  # crossing between prev and v: interpolate sqrt(Δ), near-linear
                a, b = math.sqrt(max(prev_d, 0.0)), math.sqrt(d)
                frac = (math.sqrt(threshold) - a) / (b - a) if b > a else 1.0
                end, hit = prev_v + frac * (v - prev_v), False
                break
            if hit:
                end = v
                break
            # grow the step where the profile is flat
            step *= 2.0 if d - prev_d < 0.25 * threshold else 1.0
            prev_v, prev_d = v, d
        if end is None:
            end, hit = prev_v, True
        ends.append(end)
        at_bound.append(hit)
    return points, ends[0], ends[1], at_bound[0], at_bound[1]


def fit(
    model: Model,
    data,
    parameters: Sequence[str],
    protocols: Mapping[str, Any] | None = None,
    *,
    n_starts: int = 8,
    seed: int = 0,
    ci: str | None = "profile",
    level: float = 0.95,
    n_bootstrap: int = 50,
    fixed: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    sim_options: Mapping[str, Any] | None = None,
) -> FitResult:
    """Fit *parameters* of *model* to tumour volumes by multi-start least squares.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    data
        Measurements: CSV path or DataFrame with ``animal, arm, day, volume`` (and
        optionally ``site``).
    parameters
        Table names of the parameters to estimate (a few: each start costs tens to
        hundreds of simulations per arm).
    protocols
        Protocol of each arm; arms named after shipped protocols need none.
    n_starts
        Number of starts: the table's value, then points drawn uniformly (on the
        parameter's scale) within the bounds with *seed*.
    ci
        ``"profile"`` (profile likelihood), ``"bootstrap"`` (animals resampled within
        arms, percentile interval) or ``None``.
    level
        Confidence level of the intervals.
    n_bootstrap
        Resamples for ``ci="bootstrap"``.
    fixed, bounds, sim_options
        Further fixed overrides, replacement bounds (table units) and options of
        :func:`mhimmune.core.simulate`, as for :class:`Objective`.

    Returns
    -------
    FitResult
    """
    if ci not in ("profile", "bootstrap", None):
        raise MhimmuneError(f"ci must be 'profile', 'bootstrap' or None, got {ci!r}")
    if not 0 < level < 1:
        raise MhimmuneError(f"level must be in (0, 1), got {level}")
    t_start = time.perf_counter()
    obj = Objective(
        model, data, parameters, protocols, fixed=fixed, bounds=bounds, sim_options=sim_options
    )
    rng = np.random.default_rng(seed)
    lo, hi = obj.scaled_bounds
    k = len(obj.parameters)
    z_nominal = np.clip(obj.to_scaled(obj.nominal), lo, hi)
    starts = [z_nominal] + [lo + rng.random(k) * (hi - lo) for _ in range(max(0, n_starts - 1))]
    rows, best = [], None
    free = np.ones(k, bool)
    for i, z0 in enumerate(starts):
        before = obj.n_evaluations
        z, rss, r = _least_squares(obj, z0, free)
        rows.append(
            {
                "start": i,
                **{f"start_{n}": v for n, v in zip(obj.parameters, obj.from_scaled(z0))},
                **{f"end_{n}": v for n, v in zip(obj.parameters, obj.from_scaled(z))},
                "rss": rss,
                "success": bool(r.success),
                "evaluations": obj.n_evaluations - before,
            }
        )
        if best is None or rss < best[1]:
            best = (z, rss, r)
    z_best, rss_min, r_best = best
    n = len(obj.log_obs)
    sigma = math.sqrt(rss_min / n)
    estimates = pd.Series(obj.from_scaled(z_best), index=obj.parameters, name="estimate")
    ci_rows, profiles, boot = [], {}, None
    if ci == "profile":
        # standard errors (scaled) from the Gauss-Newton approximation set the first steps
        J = r_best.jac
        try:
            cov = np.linalg.pinv(J.T @ J) * sigma**2
            se = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        for j, name in enumerate(obj.parameters):
            points, a, b, a_hit, b_hit = _profile(obj, z_best, rss_min, j, level, se[j])
            profiles[name] = pd.DataFrame(
                {
                    "value": [float(_from_scaled(v, obj.scales[j])) for v, _ in points],
                    "delta": [d for _, d in points],
                }
            )
            ci_rows.append(
                {
                    "lower": float(_from_scaled(a, obj.scales[j])),
                    "upper": float(_from_scaled(b, obj.scales[j])),
                    "lower_at_bound": a_hit,
                    "upper_at_bound": b_hit,
                }
            )
    elif ci == "bootstrap":
        animals = obj.data[["arm", "animal"]].drop_duplicates()
        estimates_b = []
        for _ in range(n_bootstrap):
            parts = []
            for arm, g in animals.groupby("arm", sort=False):
                chosen = rng.choice(g["animal"].to_numpy(), size=len(g), replace=True)
                parts += [
                    obj.data[(obj.data["arm"] == arm) & (obj.data["animal"] == m)].assign(
                        animal=f"{m}#{i}"
                    )
                    for i, m in enumerate(chosen)
                ]
            sub = Objective(
                model,
                pd.concat(parts, ignore_index=True),
                obj.parameters,
                obj.protocols,
                fixed=obj.fixed,
                bounds=dict(zip(obj.parameters, zip(obj.lower, obj.upper))),
                sim_options=obj.sim_options,
            )
            zb, _, _ = _least_squares(sub, z_best, free)
            estimates_b.append(sub.from_scaled(zb))
        boot = pd.DataFrame(estimates_b, columns=obj.parameters)
        alpha = (1 - level) / 2
        for j, name in enumerate(obj.parameters):
            zs = _to_scaled(boot[name].to_numpy(), obj.scales[j])
            a, b = np.quantile(zs, [alpha, 1 - alpha])
            ci_rows.append(
                {
                    "lower": float(_from_scaled(a, obj.scales[j])),
                    "upper": float(_from_scaled(b, obj.scales[j])),
                    "lower_at_bound": bool(np.isclose(a, lo[j])),
                    "upper_at_bound": bool(np.isclose(b, hi[j])),
                }
            )
    else:
        ci_rows = [
            {"lower": np.nan, "upper": np.nan, "lower_at_bound": False, "upper_at_bound": False}
        ] * k
    ci_df = pd.DataFrame(ci_rows, index=obj.parameters)
    ci_df["method"] = ci or "none"
    ci_df["level"] = level
    return FitResult(
        objective=obj,
        estimates=estimates,
        ci=ci_df,
        sigma=sigma,
        rss=rss_min,
        n=n,
        starts=pd.DataFrame(rows),
        profiles=profiles,
        bootstrap=boot,
        seconds=time.perf_counter() - t_start,
    )
