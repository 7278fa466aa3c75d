"""The outcome of a virtual trial: classification, statistics, tables, files and figures.

:class:`TrialResult` classifies every (arm, animal) run (responder, time to event,
RECIST-like category), gives responder fractions per arm with Wilson intervals,
Kaplan–Meier curves with log-rank tests against a reference arm, the mechanistic
readouts of each arm (which links of the chain move), writes its tables and draws its
figures.

Model outputs are predictions of a hypothesis-generating model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.io import write_csv
from mhimmune.studies import stats
from mhimmune.studies.trial_design import (
    ASSAY_MECHANISMS,
    MECHANISM_READOUTS,
    RESPONDER_SITES,
    TRIAL_VOLUMES,
    VOLUME_ZERO_TOLERANCE_MM3,
    Arm,
    ResponderRule,
)
from mhimmune.studies.trial_options import DistantTumour, Rechallenge

__all__ = ["TrialResult", "SITE_COLUMNS"]

#: the tumour variables each responder site reads (summed)
SITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "treated": (TRIAL_VOLUMES[0],),
    "distant": (TRIAL_VOLUMES[1],),
    "total": TRIAL_VOLUMES,
}


@dataclass
class TrialResult:
    """Outcome of :func:`run_trial`.

    Attributes
    ----------
    animals
        One row per (arm, animal): status, message, cohort parameters, arm factors,
        mechanistic readouts (:data:`MECHANISM_READOUTS`, sampled after each arm's first
        MH session, or first treatment without MH), ``total_at_start_mm3``,
        ``total_at_responder_day_mm3`` (and ``treated_``/``distant_`` of both), and the
        classification columns ``responder`` (the rule's site), ``responder_treated``,
        ``responder_distant``, ``responder_total``, ``time_to_event_day``, ``event``,
        ``culled_before_responder_day`` (and ``recist`` when asked;
        ``cured_before_rechallenge``, ``rejected_rechallenge`` with a rechallenge). A
        mouse whose total tumour reached the rule's endpoint volume before the responder
        day would have been culled there: it is no responder at any site and its RECIST
        category is PD, even if its tumour shrank later in the simulation (likewise no
        cure before a rechallenge it did not live to).
    volumes
        Arm name -> array (animals × times) of total tumour volume (mm³) on *time_day*.
    site_volumes
        ``"treated"``/``"distant"`` -> arm name -> array of that tumour's volume.
    distant, rechallenge, caliper_cv
        The design options the trial ran with (see :mod:`~mhimmune.studies.trial_options`).
    time_day
        The recording grid (days from day 0).
    start_day
        First treatment of the trial (day); responder day = start_day + rule's day.
    """

    animals: pd.DataFrame
    volumes: dict[str, np.ndarray]
    time_day: np.ndarray
    arms: list[Arm]
    plans: dict[str, Any]
    cohort: pd.DataFrame
    responder: ResponderRule
    start_day: float
    recist: bool = True
    site_volumes: dict[str, dict[str, np.ndarray]] | None = None
    distant: DistantTumour | None = field(default_factory=DistantTumour)
    rechallenge: Rechallenge | None = None
    caliper_cv: float = 0.0

    def __post_init__(self):
        a = self.animals
        self._check_volumes()
        ok = (a["status"] == "ok").to_numpy()
        self._time_to_endpoint(ok)
        # a mouse culled at the endpoint before a classification day is no responder and
        # no cure, whatever its tumour would have done later
        culled = self._culled_before(self.responder_day, ok)
        a["culled_before_responder_day"] = pd.array(np.where(ok, culled, pd.NA), dtype="boolean")
        for site in RESPONDER_SITES:
            col = f"{site}_at_responder_day_mm3"
            a[f"responder_{site}"] = pd.array([pd.NA] * len(a), dtype="boolean")
            if ok.any() and col in a and (site != "distant" or self.distant is not None):
                a.loc[ok, f"responder_{site}"] = (
                    stats.responders(a.loc[ok, col].to_numpy(float), self.responder.threshold_mm3)
                    & ~culled[ok]
                )
        a["responder"] = a[f"responder_{self.responder.site}"]
        if self.rechallenge is not None and "rechallenge_site_mm3" in a:
            limit = self.rechallenge.cure_threshold_mm3
            cured = pd.array([pd.NA] * len(a), dtype="boolean")
            rejected = pd.array([pd.NA] * len(a), dtype="boolean")
            before = a["total_before_rechallenge_mm3"].to_numpy(float)
            after = a["rechallenge_site_mm3"].to_numpy(float)
            is_cured = ok & (before <= limit) & ~self._culled_before(self.rechallenge.day, ok)
            cured[ok] = is_cured[ok]
            rejected[is_cured] = after[is_cured] <= limit
            a["cured_before_rechallenge"] = cured
            a["rejected_rechallenge"] = rejected
        if self.recist:
            a["recist"] = pd.Categorical([None] * len(a), categories=stats.RECIST_CATEGORIES)
            if ok.any():
                site = self.responder.site
                base = a.loc[ok, f"{site}_at_start_mm3"].to_numpy(float)
                categories = np.asarray(
                    stats.recist_categories(
                        base,
                        a.loc[ok, f"{site}_at_responder_day_mm3"].to_numpy(float),
                        cr_threshold_mm3=self.responder.threshold_mm3,
                    ),
                    dtype=object,
                )
                categories[culled[ok]] = "PD"
                a.loc[ok, "recist"] = categories

    def _time_to_endpoint(self, ok: np.ndarray) -> None:
        """Columns ``time_to_event_day`` (from :attr:`start_day`) and ``event``: when the
        total tumour of each successful run first reaches the rule's endpoint volume."""
        a = self.animals
        a["time_to_event_day"] = np.nan
        a["event"] = pd.array([pd.NA] * len(a), dtype="boolean")
        for name in self.arm_names:
            rows = np.nonzero((a["arm"] == name).to_numpy() & ok)[0]
            if not len(rows):
                continue
            arm_rows = np.nonzero((a["arm"] == name).to_numpy())[0]
            local = np.searchsorted(arm_rows, rows)
            times, events = stats.time_to_event(
                self.time_day,
                self.volumes[name][local],
                self.responder.endpoint_mm3,
                start_day=self.start_day,
            )
            a.loc[rows, "time_to_event_day"] = times
            a.loc[rows, "event"] = events

    def _culled_before(self, day: float, ok: np.ndarray) -> np.ndarray:
        """Per row: the total tumour reached the endpoint volume after the first treatment
        and before *day* (the mouse would have been culled then); False for failed runs.

        Crossings before the first treatment (a tumour already above the endpoint when
        treatment starts) count as at the start, so such a mouse is culled at once."""
        a = self.animals
        event = a["event"].to_numpy(dtype=bool, na_value=False)
        t = a["time_to_event_day"].to_numpy(float)
        return ok & event & (self.start_day + np.nan_to_num(t, nan=np.inf) < day)

    def _check_volumes(self) -> None:
        """Negative tumour volumes: within :data:`VOLUME_ZERO_TOLERANCE_MM3` of 0 they are
        numerically zero (the integrator's absolute tolerance is 1e-9) and read as 0; more
        negative values mean an inaccurate run, which is marked failed (status
        ``"negative_volume"``) and left out of every statistic."""
        a = self.animals
        cols = [
            f"{site}_{when}_mm3"
            for site in RESPONDER_SITES
            for when in ("at_start", "at_responder_day")
            if f"{site}_{when}_mm3" in a
        ]
        for name in self.arm_names:
            idx = np.nonzero((a["arm"] == name).to_numpy())[0]
            vol = np.array(self.volumes[name], dtype=float)  # own, writable copy
            ok = a["status"].to_numpy()[idx] == "ok"
            lowest = np.minimum(
                np.nanmin(np.where(np.isnan(vol), np.inf, vol), axis=1),
                a.loc[idx, cols].min(axis=1).to_numpy(),
            )
            bad = ok & (lowest < -VOLUME_ZERO_TOLERANCE_MM3)
            for i, low in zip(idx[bad], lowest[bad]):
                a.loc[i, "status"] = "negative_volume"
                a.loc[i, "message"] = (
                    f"total tumour volume reached {low:.3g} mm³ (< "
                    f"-{VOLUME_ZERO_TOLERANCE_MM3:g}); rerun with a smaller "
                    f"rtol/atol"
                )
            vol[ok & ~bad] = np.where(vol[ok & ~bad] < 0, 0.0, vol[ok & ~bad])
            self.volumes[name] = vol
            for per_site in (self.site_volumes or {}).values():
                v = np.array(per_site[name], dtype=float)
                v[ok & ~bad] = np.where(v[ok & ~bad] < 0, 0.0, v[ok & ~bad])
                per_site[name] = v
            keep = idx[ok & ~bad]
            for c in cols:
                a.loc[keep, c] = a.loc[keep, c].clip(lower=0.0)

    # ------------------------------------------------------------------ basics
    @property
    def arm_names(self) -> list[str]:
        """Arm names in trial order."""
        return [a.name for a in self.arms]

    @property
    def n_animals(self) -> int:
        """Animals per arm."""
        return len(self.cohort)

    @property
    def responder_day(self) -> float:
        """Day (from day 0) on which responders are classified."""
        return self.start_day + self.responder.day_after_first_treatment

    @property
    def n_failed(self) -> int:
        """Runs (animal × arm) whose simulation failed; they are left out of every statistic."""
        return int((self.animals["status"] != "ok").sum())

    def successful(self, arm: str | None = None) -> pd.DataFrame:
        """Rows of :attr:`animals` whose run succeeded, of one *arm* or of all arms."""
        a = self.animals
        mask = a["status"] == "ok"
        if arm is not None:
            if arm not in self.arm_names:
                raise ParameterError(
                    f"arm {arm!r}: not in this trial ({', '.join(self.arm_names)})"
                )
            mask &= a["arm"] == arm
        return a[mask]

    # ------------------------------------------------------------- statistics
    def responder_table(self, confidence: float = 0.95, method: str = "wilson") -> pd.DataFrame:
        """Responder fraction per arm with a confidence interval.

        Returns a table indexed by arm: ``n`` (animals), ``n_ok`` (successful runs),
        ``responders``, ``fraction``, ``ci_low``, ``ci_high`` (*method*:
        ``wilson``, ``clopper-pearson`` or ``jeffreys``; the rule's site),
        ``median_time_to_event_day``, and ``fraction_treated``, ``fraction_distant``,
        ``fraction_total``: the responder fraction read at each site (NaN for the
        distant site of one-tumour mice).
        """
        rows = []
        for name in self.arm_names:
            ok = self.successful(name)
            k, m = int(ok["responder"].sum()), len(ok)
            p, lo, hi = stats.proportion_ci(k, m, confidence, method) if m else (np.nan,) * 3
            km = self.kaplan_meier(name) if m else None
            per_site = {
                f"fraction_{site}": float(ok[f"responder_{site}"].astype(float).mean())
                if m and ok[f"responder_{site}"].notna().all()
                else np.nan
                for site in RESPONDER_SITES
            }
            rows.append(
                per_site
                | {
                    "arm": name,
                    "n": self.n_animals,
                    "n_ok": m,
                    "responders": k,
                    "fraction": p,
                    "ci_low": lo,
                    "ci_high": hi,
                    "median_time_to_event_day": stats.median_time(km) if km is not None else np.nan,
                }
            )
        cols = [c for c in rows[0] if not c.startswith("fraction_")]
        cols += [f"fraction_{site}" for site in RESPONDER_SITES]
        return pd.DataFrame(rows)[cols].set_index("arm")

    def rechallenge_table(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per arm: animals cured before the rechallenge (``cured``, ``n_ok``), those of
        them that rejected it (``rejected``), the rejecting fraction of the cured with a
        Wilson interval (NaN when none was cured)."""
        if self.rechallenge is None:
            raise ParameterError("rechallenge: this trial was run without a rechallenge")
        rows = []
        for name in self.arm_names:
            ok = self.successful(name)
            cured = int(ok["cured_before_rechallenge"].sum())
            rejected = int(ok["rejected_rechallenge"].fillna(False).sum())
            p, lo, hi = (
                stats.proportion_ci(rejected, cured, confidence, "wilson")
                if cured
                else (np.nan,) * 3
            )
            rows.append(
                {
                    "arm": name,
                    "n_ok": len(ok),
                    "cured": cured,
                    "rejected": rejected,
                    "fraction_rejected": p,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
        return pd.DataFrame(rows).set_index("arm")

    def recist_table(self) -> pd.DataFrame:
        """Counts of RECIST-like categories per arm (arms × CR/PR/SD/PD)."""
        if not self.recist:
            raise ParameterError("recist: this trial was run with recist=False")
        ok = self.successful()
        tab = pd.crosstab(
            pd.Categorical(ok["arm"], categories=self.arm_names), ok["recist"], dropna=False
        )
        tab.index.name, tab.columns.name = "arm", "recist"
        return tab

    def kaplan_meier(self, arm: str, confidence: float = 0.95) -> pd.DataFrame:
        """Kaplan–Meier estimate of the time (days from the first treatment) until the
        total tumour reaches the endpoint volume, for *arm* (see
        :func:`mhimmune.studies.stats.kaplan_meier`)."""
        ok = self.successful(arm)
        return stats.kaplan_meier(
            ok["time_to_event_day"].to_numpy(float), ok["event"].to_numpy(bool), confidence
        )

    def logrank(self, reference: str | None = "control", correction: str = "holm") -> pd.DataFrame:
        """Log-rank tests of each arm against *reference* (all pairs if ``None``),
        p-values adjusted by *correction* (see :func:`mhimmune.studies.stats.pairwise_logrank`)."""
        if reference is not None and reference not in self.arm_names:
            raise ParameterError(
                f"reference: {reference!r} is not an arm of this trial "
                f"({', '.join(self.arm_names)})"
            )
        ok = self.successful()
        return stats.pairwise_logrank(
            ok["time_to_event_day"].to_numpy(float),
            ok["event"].to_numpy(bool),
            ok["arm"].to_numpy(),
            reference=reference,
            correction=correction,
        )

    def mechanisms(self, statistic: str = "median") -> pd.DataFrame:
        """Per arm, the cohort *statistic* (``median`` or ``mean``) of each mechanistic
        readout (:data:`MECHANISM_READOUTS`), arms × readouts."""
        if statistic not in ("median", "mean"):
            raise ParameterError(f"statistic: must be 'median' or 'mean' (got {statistic!r})")
        cols = [m[0] for m in (*MECHANISM_READOUTS, *ASSAY_MECHANISMS) if m[0] in self.animals]
        g = self.successful().groupby("arm", sort=False)[cols]
        out = g.median() if statistic == "median" else g.mean()
        return out.reindex(self.arm_names)

    def summary(self) -> str:
        """Short text: responder fractions with intervals, failures, the responder rule."""
        rt = self.responder_table()
        lines = [
            f"Virtual trial: {self.n_animals} animals × {len(self.arms)} arms; responder = "
            f"{self.responder.site_text} ≤ {self.responder.threshold_mm3:g} mm³ at day "
            f"{self.responder_day:.4g} ({self.responder.day_after_first_treatment:g} d after "
            f"the first treatment on day {self.start_day:.4g}); model predictions."
        ]
        for name, r in rt.iterrows():
            lines.append(
                f"  {name:<28} {int(r['responders']):>4}/{int(r['n_ok']):<4} "
                f"{100 * r['fraction']:5.1f} % (95 % CI {100 * r['ci_low']:.1f}–"
                f"{100 * r['ci_high']:.1f} %)"
            )
        if self.rechallenge is not None:
            rc = self.rechallenge_table()
            lines.append(
                f"  rechallenge ({self.rechallenge.volume_mm3:g} mm³ on day "
                f"{self.rechallenge.day:g}): rejected by "
                + ", ".join(
                    f"{name} {int(r['rejected'])}/{int(r['cured'])} cured"
                    for name, r in rc.iterrows()
                )
            )
        if self.n_failed:
            lines.append(f"  {self.n_failed} runs failed and are left out (see .failures)")
        return "\n".join(lines)

    @property
    def failures(self) -> pd.DataFrame:
        """Rows of :attr:`animals` whose run failed (status, message, parameters)."""
        return self.animals[self.animals["status"] != "ok"]

    def __repr__(self) -> str:
        return f"<TrialResult {self.n_animals} animals × {len(self.arms)} arms>\n{self.summary()}"

    def _repr_html_(self) -> str:
        rt = self.responder_table()
        return (
            f"<p>Virtual trial: {self.n_animals} animals × {len(self.arms)} arms "
            f"(model predictions)</p>" + rt.to_html(float_format=lambda x: f"{x:.3g}")
        )

    # ------------------------------------------------------------------- output
    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``animals.csv``, ``responders.csv`` (per-site fractions too),
        ``logrank.csv``, ``mechanisms.csv``, ``rechallenge.csv`` (with a rechallenge) and
        ``volumes.csv.gz`` (gzip; long: arm, animal, time_day, total_mm3, treated_mm3,
        distant_mm3, 6 significant digits) to *out* atomically; returns the paths by name."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "animals": write_csv(self.animals, out / "animals.csv", index=False),
            "responders": write_csv(
                self.responder_table().reset_index(), out / "responders.csv", index=False
            ),
            "mechanisms": write_csv(
                self.mechanisms().reset_index(), out / "mechanisms.csv", index=False
            ),
            "volumes": write_csv(
                self.volume_frame(), out / "volumes.csv.gz", index=False, float_format="%.6g"
            ),
        }
        if self.rechallenge is not None:
            paths["rechallenge"] = write_csv(
                self.rechallenge_table().reset_index(), out / "rechallenge.csv", index=False
            )
        if "control" in self.arm_names and len(self.arms) > 1:
            paths["logrank"] = write_csv(self.logrank(), out / "logrank.csv", index=False)
        return paths

    def volume_frame(self) -> pd.DataFrame:
        """Tumour-volume curves as a tidy table: arm, animal, time_day, total_mm3 (and
        treated_mm3, distant_mm3 when the trial recorded each tumour)."""
        parts = []
        for name, arr in self.volumes.items():
            n, m = arr.shape
            frame = {
                "arm": name,
                "animal": np.repeat(np.asarray(self.cohort.index), m),
                "time_day": np.tile(self.time_day, n),
                "total_mm3": arr.ravel(),
            }
            for site, per_arm in (self.site_volumes or {}).items():
                frame[f"{site}_mm3"] = np.asarray(per_arm[name]).ravel()
            parts.append(pd.DataFrame(frame))
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------------- plots
    def plot_km(self, ax=None, arms: Sequence[str] | None = None, ci: bool = True):
        """Kaplan–Meier curves (fraction of animals below the endpoint volume) per arm."""
        import matplotlib.pyplot as plt

        from mhimmune.mh.plotting import HYPOTHESIS_NOTE  # deferred: imports matplotlib

        ax = ax or plt.subplots(figsize=(6, 4))[1]
        palette = _palette(self.arm_names)
        styles = ["-", "--", "-.", ":"]
        drawn: list[tuple[str, pd.DataFrame]] = []
        for i, name in enumerate(arms or self.arm_names):
            km = self.kaplan_meier(name)
            same = [n for n, other in drawn if _same_curve(km, other)]
            drawn.append((name, km))
            # coinciding curves: shifted by 1 % of the axis each and dashed differently
            shift = 0.012 * len(same)
            label = f"{name} (identical to {same[0]})" if same else name
            ax.step(
                km["time"],
                km["survival"] - shift,
                where="post",
                color=palette[name],
                ls=styles[i % len(styles)],
                lw=2.6 - 0.4 * min(i, 3),
                label=label,
                zorder=2 + i,
            )
            if ci and not same:
                ax.fill_between(
                    km["time"],
                    km["lower"].fillna(km["survival"]),
                    km["upper"].fillna(km["survival"]),
                    step="post",
                    color=palette[name],
                    alpha=0.15,
                    lw=0,
                )
        ax.set_xlabel("days after the first treatment")
        ax.set_ylabel(f"fraction with tumour < {self.responder.endpoint_mm3:g} mm³")
        ax.set_ylim(-0.06, 1.02)
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax.set_title(
            f"Virtual trial (n = {self.n_animals} per arm); {HYPOTHESIS_NOTE}",
            fontsize=8,
            loc="left",
        )
        return ax

    def plot_responders(self, ax=None):
        """Responder fraction per arm with its 95 % Wilson interval."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(6, 3.5))[1]
        rt = self.responder_table()
        palette = _palette(self.arm_names)
        x = np.arange(len(rt))
        ax.bar(x, rt["fraction"], color=[palette[n] for n in rt.index])
        ax.errorbar(
            x,
            rt["fraction"],
            yerr=[rt["fraction"] - rt["ci_low"], rt["ci_high"] - rt["fraction"]],
            fmt="none",
            ecolor="k",
            capsize=3,
            lw=1,
        )
        ax.set_xticks(x, rt.index, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(
            f"responders (≤ {self.responder.threshold_mm3:g} mm³ at "
            f"+{self.responder.day_after_first_treatment:g} d)"
        )
        ax.set_ylim(0, 1.05)
        return ax

    def plot_volumes(self, axes=None, log: bool = True):
        """Total tumour volume of every animal over time, one panel per arm."""
        import matplotlib.pyplot as plt

        k = len(self.arms)
        if axes is None:  # at most 7 panels per row
            cols = min(k, 7)
            rows = -(-k // cols)
            grid = plt.subplots(
                rows,
                cols,
                figsize=(2.6 * cols, 2.9 * rows),
                sharey=True,
                squeeze=False,
                layout="constrained",
            )[1]
            for ax in grid.ravel()[k:]:
                ax.set_visible(False)
            axes = list(grid.ravel()[:k])
            for r in range(rows):
                grid[r][0].set_ylabel("total tumour (mm³)" + (", ≥ 1e-3 shown" if log else ""))
        palette = _palette(self.arm_names)
        for ax, name in zip(axes, self.arm_names):
            arr = self.volumes[name]
            floor = 1e-3
            y = np.maximum(arr, floor) if log else arr  # display floor only; data unchanged
            ax.plot(self.time_day, y.T, color=palette[name], alpha=0.35, lw=0.7)
            ax.axhline(self.responder.threshold_mm3, color="k", ls=":", lw=0.8)
            ax.axvline(self.responder_day, color="grey", ls="--", lw=0.8)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("day")
            if log:
                ax.set_yscale("log")
        if not axes[0].get_ylabel():
            axes[0].set_ylabel("total tumour (mm³)" + (", ≥ 1e-3 shown" if log else ""))
        return axes

    def figure(self):
        """One figure: Kaplan–Meier curves and responder fractions side by side."""
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(
            1, 2, figsize=(13, 4.2), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        self.plot_km(a1)
        self.plot_responders(a2)
        return fig


def _same_curve(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return (
        len(a) == len(b)
        and np.allclose(a["time"].to_numpy(float), b["time"].to_numpy(float))
        and np.allclose(a["survival"].to_numpy(float), b["survival"].to_numpy(float))
    )


def _palette(names: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    colours = sns.color_palette("colorblind", max(len(names), 3))
    fixed = {"control": (0.45, 0.45, 0.45)}
    return {n: fixed.get(n, colours[i % len(colours)]) for i, n in enumerate(names)}
