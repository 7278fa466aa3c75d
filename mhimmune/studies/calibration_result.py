"""The outcome of a calibration: estimates, intervals, diagnostics and figures.

:class:`FitResult` is what :func:`~mhimmune.studies.calibrate.fit` returns: the
estimates with their confidence intervals, the residual spread, the starts and the
profiles, a table and the fit and profile plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.units import hours_to_days
from mhimmune.interop.petab import observable_name
from mhimmune.studies.calibration_objective import Objective

__all__ = ["FitResult"]


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
                t_day = hours_to_days(res.time_h)
                ax.plot(t_day, res.wide[name].values, color=colour, label=f"{arm} (fit)")
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
