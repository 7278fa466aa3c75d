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
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.model import Model
from mhimmune.interop.petab import load_measurements, observable_name
from mhimmune.mh.protocol import Protocol
from mhimmune.mh.simulation import simulate
from mhimmune.studies.calibration_objective import (
    Objective,
    from_scaled,
    grid_step_h,
    to_scaled,
)
from mhimmune.studies.calibration_result import FitResult

__all__ = ["fit", "FitResult", "Objective", "synthetic_measurements", "load_measurements"]


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
    t_day = np.asarray(sorted(days), float)
    rows = []
    for arm, prot in protocols.items():
        step = grid_step_h(t_day) or 1.0
        res = simulate(model, prot, params, output_step=f"{step} h", rtol=1e-10, atol=1e-12)
        w = res.wide
        for site in sites:
            name = observable_name(site)
            truth = np.interp(t_day, w.index.values, w[name].values)
            for a in range(animals_per_arm):
                noisy = truth * np.exp(rng.normal(0.0, sd_log, len(t_day)))
                rows += [
                    dict(animal=f"{arm}_{a + 1}", arm=arm, day=float(d), volume=float(v), site=site)
                    for d, v in zip(t_day, noisy)
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
        :func:`mhimmune.simulate`, as for :class:`Objective`.

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
    rows = []
    best: tuple[np.ndarray, float, Any] | None = None
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
    assert best is not None  # the nominal start is always fitted, whatever n_starts
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
                    "value": [float(from_scaled(v, obj.scales[j])) for v, _ in points],
                    "delta": [d for _, d in points],
                }
            )
            ci_rows.append(
                {
                    "lower": float(from_scaled(a, obj.scales[j])),
                    "upper": float(from_scaled(b, obj.scales[j])),
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
            zs = to_scaled(boot[name].to_numpy(), obj.scales[j])
            a, b = np.quantile(zs, [alpha, 1 - alpha])
            ci_rows.append(
                {
                    "lower": float(from_scaled(a, obj.scales[j])),
                    "upper": float(from_scaled(b, obj.scales[j])),
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
