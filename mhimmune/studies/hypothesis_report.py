"""The hypothesis report: arms ranked with mechanistic reasons, key findings, markdown.

:func:`mechanistic_reason` says which links of the chain (heating, death, immune steps)
make one arm differ from another; :func:`rank_arms` ranks the arms of a trial by
responder fraction with Fisher tests against :data:`BASE_COMBINATION` and reasons;
:func:`report_markdown` writes ``report.md``'s text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from mhimmune.core.units import hours_to_days
from mhimmune.mh.kinds import CELLS_PER_MM3
from mhimmune.studies.preset_evidence import evidence_markdown
from mhimmune.studies.trial_design import ASSAY_MECHANISMS, MECHANISM_READOUTS

__all__ = ["mechanistic_reason", "rank_arms", "report_markdown", "BASE_COMBINATION"]

# ====================================================================== reasons

# (column, text when the candidate is higher, text when lower, kind, threshold): "ratio"
# compares fold changes, "level" absolute differences
_REASON_LINKS = (
    (
        "cem43_total_min",
        "more heat (CEM43 {a:.0f} vs {b:.0f} min)",
        "less heat (CEM43 {a:.0f} vs {b:.0f} min)",
        "level",
        5.0,
    ),
    (
        "gsh_d1",
        "more glutathione (+1 d ×{r:.1f})",
        "less glutathione (+1 d ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    (
        "oxidative_d1",
        "more lipid peroxidation (+1 d: {a:.2f} vs {b:.2f} of the half-lethal damage)",
        "less lipid peroxidation (+1 d: {a:.2f} vs {b:.2f} of the half-lethal damage)",
        "level",
        0.1,
    ),
    (
        "damp_d1",
        "more immunogenic cell death (DAMPs at +1 d ×{r:.1f})",
        "less immunogenic cell death (DAMPs at +1 d ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    (
        "mature_dc_d7",
        "more mature DCs (+7 d: {a:.2f} vs {b:.2f})",
        "fewer mature DCs (+7 d: {a:.2f} vs {b:.2f})",
        "ratio",
        1.5,
    ),
    (
        "cd8_effectors_d7",
        "more CD8 effectors (+7 d ×{r:.1f})",
        "fewer CD8 effectors (+7 d ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    (
        "pdl1_occupancy_d7",
        "PD-L1 blocked (occupancy {a:.2f} vs {b:.2f})",
        "PD-L1 not blocked (occupancy {a:.2f} vs {b:.2f})",
        "level",
        0.3,
    ),
    (
        "pd1_occupancy_d7",
        "PD-1 blocked (occupancy {a:.2f} vs {b:.2f})",
        "PD-1 not blocked (occupancy {a:.2f} vs {b:.2f})",
        "level",
        0.3,
    ),
    (
        "ctla4_occupancy_d7",
        "CTLA-4 blocked (occupancy {a:.2f} vs {b:.2f})",
        "CTLA-4 not blocked (occupancy {a:.2f} vs {b:.2f})",
        "level",
        0.3,
    ),
    (
        "m1_m2_d7",
        "M1 shift of macrophages (M1/M2 ×{r:.1f})",
        "M2 shift of macrophages (M1/M2 ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    ("treg_fraction_d7", "more Tregs (×{r:.1f})", "fewer Tregs (÷{r:.1f})", "ratio", 1.5),
)


def mechanistic_reason(candidate: pd.Series, reference: pd.Series) -> str:
    """Which links of the chain differ between *candidate* and *reference*, and which way.

    Both are rows of :meth:`mhimmune.studies.cohort.TrialResult.mechanisms` (cohort medians).
    A link is named when its readout changes by ≥ 1.5-fold either way (CEM43 by ≥ 5 min,
    PD-L1, PD-1 or CTLA-4 occupancy by ≥ 0.3, lipid peroxidation by ≥ 0.1 of the
    half-lethal damage), in the order of the chain: heat → glutathione → lipid
    peroxidation → ICD → DC maturation → CD8 priming → checkpoint → macrophages →
    suppression. Returns ``"no link differs"``
    when none does.
    """
    parts = []
    tiny = 1e-12
    for col, up, down, kind, threshold in _REASON_LINKS:
        if col not in candidate or col not in reference:
            continue
        a, b = float(candidate[col]), float(reference[col])
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        if kind == "level":
            if a - b >= threshold:
                parts.append(up.format(a=a, b=b))
            elif b - a >= threshold:
                parts.append(down.format(a=a, b=b))
        elif a > 0 and a >= threshold * max(b, tiny):
            parts.append(up.format(r=a / max(b, tiny), a=a, b=b))
        elif b > 0 and b >= threshold * max(a, tiny):
            parts.append(down.format(r=b / max(a, tiny), a=a, b=b))
    return "; ".join(parts) if parts else "no link differs"


_SINGLE = {"mh", "anti_pdl1"}
#: the standard combination that add-ons and alternative schedules are compared with
BASE_COMBINATION = "mh+anti_pdl1"


def _fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of two responder counts."""
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])


def rank_arms(trial) -> pd.DataFrame:
    rt = trial.responder_table()
    mech = trial.mechanisms()
    lr = trial.logrank().set_index("group_a") if "control" in trial.arm_names else None
    singles = [a for a in trial.arm_names if a in _SINGLE]
    burden = trial.successful().groupby("arm")["total_at_responder_day_mm3"].median()
    # the best single agent: most responders, then the longest time to the endpoint
    best_single = (
        max(singles, key=lambda a: (rt.loc[a, "fraction"], rt.loc[a, "median_time_to_event_day"]))
        if singles
        else None
    )
    rows = []
    for arm in trial.arm_names:
        if arm == "control":
            continue
        r = rt.loc[arm]
        rows.append(
            {
                "arm": arm,
                "description": next(a.description for a in trial.arms if a.name == arm),
                "responders": r["fraction"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "n": int(r["n_ok"]),
                "median_days_to_endpoint": r["median_time_to_event_day"],
                "median_total_at_responder_day_mm3": float(burden.get(arm, np.nan)),
                "logrank_p_vs_control": float(lr.loc[arm, "p_adjusted"])
                if lr is not None
                else np.nan,
                "reason_vs_control": mechanistic_reason(mech.loc[arm], mech.loc["control"])
                if "control" in mech.index
                else "",
                "reason_vs_best_single": (
                    mechanistic_reason(mech.loc[arm], mech.loc[best_single])
                    if best_single and arm != best_single and arm not in _SINGLE
                    else ""
                ),
                "best_single": best_single or "",
                "reason_vs_combination": (
                    mechanistic_reason(mech.loc[arm], mech.loc[BASE_COMBINATION])
                    if BASE_COMBINATION in mech.index
                    and arm != BASE_COMBINATION
                    and arm not in _SINGLE
                    else ""
                ),
                "fisher_p_vs_combination": (
                    _fisher_p(
                        int(r["responders"]),
                        int(r["n_ok"]),
                        int(rt.loc[BASE_COMBINATION, "responders"]),
                        int(rt.loc[BASE_COMBINATION, "n_ok"]),
                    )
                    if BASE_COMBINATION in rt.index and arm != BASE_COMBINATION
                    else np.nan
                ),
            }
        )
    df = pd.DataFrame(rows)
    # a median burden under one tumour cell is a cured tumour's integration residue
    # (below the solver's tolerance): such arms tie and keep the spec's order
    one_cell = 1.0 / CELLS_PER_MM3
    burden_mm3 = df["median_total_at_responder_day_mm3"]
    df["_burden"] = burden_mm3.mask(burden_mm3 < one_cell, 0.0)
    df = (
        df.sort_values(
            ["responders", "median_days_to_endpoint", "_burden"],
            ascending=[False, False, True],
            kind="stable",
        )
        .drop(columns="_burden")
        .reset_index(drop=True)
    )
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def _p(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.2g}"


def _key_findings(trial, ranking, opt, synergy) -> list[str]:
    """A few sentences computed from the results (no hand-written conclusions)."""
    out = []
    r = ranking.set_index("arm")
    top = ranking.iloc[0]
    tied = ranking[ranking["responders"] >= top["responders"] - 1e-12]["arm"].tolist()
    out.append(
        f"Most responders: {', '.join(tied)} ({100 * top['responders']:.0f} %, 95 % CI "
        f"{100 * top['ci_low']:.0f}–{100 * top['ci_high']:.0f} %)."
    )
    if BASE_COMBINATION in r.index:
        c = r.loc[BASE_COMBINATION]
        singles = [a for a in ("mh", "anti_pdl1") if a in r.index]
        if singles:
            best = max(singles, key=lambda a: r.loc[a, "responders"])
            p = _fisher_p(
                int(round(c["responders"] * c["n"])),
                int(c["n"]),
                int(round(r.loc[best, "responders"] * r.loc[best, "n"])),
                int(r.loc[best, "n"]),
            )
            out.append(
                f"MH + anti-PD-L1 gives {100 * c['responders']:.0f} % responders vs "
                f"{100 * r.loc[best, 'responders']:.0f} % for the better single agent "
                f"({best}; Fisher p = {p:.2g}); relative to it the combination adds: "
                f"{c['reason_vs_best_single'] or 'no link differs'}."
            )
        same: list[str] = []
        other: list[str] = []
        for arm, row in r.iterrows():
            if (
                arm == BASE_COMBINATION
                or arm in _SINGLE
                or not math.isfinite(row["fisher_p_vs_combination"])
            ):
                continue
            delta = row["responders"] - c["responders"]
            text = (
                f"{arm} {100 * delta:+.0f} points (Fisher p = "
                f"{row['fisher_p_vs_combination']:.2g}; {row['reason_vs_combination']})"
            )
            (same if row["fisher_p_vs_combination"] > 0.05 else other).append(text)
        if other:
            out.append(
                "Differ from MH + anti-PD-L1 beyond cohort noise (p ≤ 0.05): "
                + "; ".join(other)
                + "."
            )
        if same:
            out.append(
                "Within cohort noise of MH + anti-PD-L1 (p > 0.05): " + "; ".join(same) + "."
            )
    if opt is not None:
        rob = opt.robustness or {}
        out.append(
            f"Optimised schedule ({_fmt_schedule(opt.best)}): {opt.best_value:.3g} "
            f"(bootstrap CI {rob.get('ci_low', float('nan')):.3g}–"
            f"{rob.get('ci_high', float('nan')):.3g}); it stays best in "
            f"{100 * rob.get('p_best', float('nan')):.0f} % of resamples, so "
            + (
                "the optimum is robust across the cohort."
                if rob.get("p_best", 0) >= 0.8
                else "several schedules are about as good: test the family, not one point."
            )
        )
    for name, res in synergy.items():
        b = res.best("bliss_excess")
        out.append(
            f"Synergy {name}: largest Bliss excess {b['bliss_excess']:+.2f} at "
            f"{res.x} = {b[res.x]:g}, {res.y} = {b[res.y]:g}"
            + (
                f" (CEM43 {b['cem43_total_min']:.0f} min)"
                if "cem43_total_min" in b
                and math.isfinite(b["cem43_total_min"])
                and b["cem43_total_min"] > 0
                else ""
            )
            + "."
        )
    return out


#: template defaults listed in the set-up section of the report
_SETUP_FACTORS = (
    "mh_start_day",
    "field_kA_per_m",
    "frequency_kHz",
    "session_duration_min",
    "n_sessions",
    "session_interval_day",
    "pdl1_delay_day",
    "pdl1_dose_mg_per_kg",
    "pdl1_count",
    "pdl1_interval_day",
)


def _fmt_schedule(factors: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in factors.items()) or "template defaults"


def _culled_count(trial) -> str:
    """How many successful runs reached the endpoint before the responder day and later
    fell below the responder threshold (late regressions the endpoint removes)."""
    a = trial.successful()
    late = a["culled_before_responder_day"].astype(bool) & (
        a[f"{trial.responder.site}_at_responder_day_mm3"] <= trial.responder.threshold_mm3
    )
    return f"{int(late.sum())} of {len(a)} runs regressed below the threshold only after that"


def _design_lines(trial) -> list[str]:
    """Set-up lines for the tumours, the rechallenge and the caliper noise of *trial*."""
    distant = trial.distant
    if distant is None:
        mice = "one-tumour mice (no distant tumour)"
    elif distant.is_default:
        mice = "two-tumour mice: treated and distant tumour inoculated on day 0"
    else:
        mice = f"two-tumour mice: treated tumour on day 0, {distant.describe()}"
    lines = [f"- Mice: {mice}."]
    rc = getattr(trial, "rechallenge", None)
    if rc is not None:
        lines.append(
            f"- Rechallenge: {rc.volume_mm3:g} mm³ at the distant site on day {rc.day:g}; "
            f"an animal cured before it (total ≤ {rc.cure_threshold_mm3:g} mm³) rejects it "
            f"when the implant is ≤ {rc.cure_threshold_mm3:g} mm³ on day {rc.read_day:g}."
        )
    cv = getattr(trial, "caliper_cv", 0.0)
    if cv:
        lines.append(
            f"- Recorded volumes carry log-normal caliper noise (CV {100 * cv:.0f} %; "
            f"inter-observer differences of ~15 %, Euhus et al. 1986, J Surg Oncol 31:229)."
        )
    return lines


def _site_and_stability_lines(trial, stability) -> list[str]:
    """Responder fractions by site, rechallenge rejection, seed stability (markdown)."""
    rt = trial.responder_table()
    L = [
        "### Responders by tumour",
        "",
        "| arm | treated | distant | total |",
        "|---|---:|---:|---:|",
    ]
    for arm, r in rt.iterrows():
        cells = [
            "–" if not math.isfinite(r[f"fraction_{s}"]) else f"{100 * r[f'fraction_{s}']:.0f} %"
            for s in ("treated", "distant", "total")
        ]
        L.append(f"| {arm} | " + " | ".join(cells) + " |")
    L.append("")
    if getattr(trial, "rechallenge", None) is not None:
        rc = trial.rechallenge_table()
        L += ["### Rechallenge", "", "| arm | cured | rejected | 95 % CI |", "|---|---:|---:|---|"]
        for arm, r in rc.iterrows():
            ci = (
                f"{100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %"
                if math.isfinite(r["ci_low"])
                else "–"
            )
            cured = f"{int(r['cured'])}/{int(r['n_ok'])}"
            L.append(f"| {arm} | {cured} | {int(r['rejected'])} | {ci} |")
        L.append("")
    if stability is not None:
        t = stability.table
        L += [
            "### Seed stability",
            "",
            f"The trial re-run with {int(t['n_seeds'].max())} cohort seeds per size: the "
            "across-seed range of each arm's responder fraction, and the Wilson 95 % interval "
            "one experiment of that size would report at the mean fraction.",
            "",
            "| arm | animals | mean | range across seeds | Wilson 95 % |",
            "|---|---:|---:|---|---|",
        ]
        for _, r in t.iterrows():
            L.append(
                f"| {r['arm']} | {int(r['size'])} | {100 * r['mean']:.0f} % | "
                f"{100 * r['min']:.0f}–{100 * r['max']:.0f} % | "
                f"{100 * r['wilson_low']:.0f}–{100 * r['wilson_high']:.0f} % |"
            )
        L.append("")
    return L


def report_markdown(
    title,
    template,
    cohort,
    responder,
    trial,
    ranking,
    opt,
    synergy,
    files,
    out,
    seconds,
    quick,
    stability=None,
    mice=("ct26", "mouse"),
    evidence=None,
    uncertainty=None,
) -> str:
    """The text of ``report.md``; *mice* names the tumour and host presets; *evidence*
    (:func:`mhimmune.studies.preset_evidence.preset_evidence`) adds how the tumour preset
    compares with published data."""
    rel = {k: Path(v).relative_to(out).as_posix() for k, v in files.items()}
    L = [
        f"# {title}",
        "",
        "> **Model predictions, not measurements.** mhimmune is a hypothesis-generating "
        "model: many immune constants are assumed (see `mhimmune params`), and the cohort "
        "spreads below are partly assumed. Use the ranking to choose which experiments to "
        "run, not to predict their outcome.",
        "",
    ]
    if quick:
        L += [
            "> Quick run (`quick=True` or `CI=true`): small cohort and coarse grids; "
            "intervals are wide.",
            "",
        ]
    var = cohort.attrs.get("variability", {})
    L += [
        "## Set-up",
        "",
        f"- Tumour line `{mice[0]}`, host `{mice[1]}` (presets: `mhimmune tumours`, "
        "`mhimmune hosts`).",
        f"- Template: {hours_to_days(template.duration_h):g} d, agent `{template.agent}`; defaults "
        f"{_fmt_schedule({k: v for k, v in template.defaults.items() if k in _SETUP_FACTORS})}.",
        f"- Virtual cohort: {len(cohort)} animals (seed {cohort.attrs.get('seed')}); "
        f"log-normal between-animal variability of "
        + ", ".join(f"`{k}` (σ {v['sigma']:g})" for k, v in var.items())
        + ".",
        f"- Responder: {responder.site_text} ≤ {responder.threshold_mm3:g} mm³ "
        f"{responder.day_after_first_treatment:g} d after the first treatment "
        f'(day {trial.responder_day:.4g}; `site = "{responder.site}"`); humane '
        f"endpoint: total tumour ≥ {responder.endpoint_mm3:g} mm³ (assumed), the event of "
        f"the time-to-event analysis; a mouse reaching it before the responder day is "
        f"culled and is no responder, even if its simulated tumour shrinks later "
        f"({_culled_count(trial)}).",
        *_design_lines(trial),
        "",
    ]
    L += (
        ["## Key findings (computed)", ""]
        + [f"- {t}" for t in _key_findings(trial, ranking, opt, synergy)]
        + [f"- {t}" for t in [uncertainty and uncertainty.finding(BASE_COMBINATION)] if t]
        + [""]
    )
    if evidence is not None:
        L += evidence_markdown(evidence, mice[0])
    L += [
        "## Ranking of candidates",
        "",
        "Ranked by responder fraction (95 % Wilson interval), then by median days to the "
        "endpoint, then by the median total tumour at the responder day (below one tumour "
        "cell, 1e-6 mm³, arms tie and keep the spec's order). *Why* lists the "
        "links of the chain that move, from the model's own readouts (cohort medians; "
        "+1 d / +7 d after each arm's first MH session, or first treatment without MH).",
        "",
        f"Fisher p compares responder counts with {BASE_COMBINATION}; *why (vs "
        f"{BASE_COMBINATION})* says what an add-on or another schedule changes.",
        "",
        "| rank | candidate | responders | 95 % CI | median days to endpoint | "
        "log-rank p vs control | Fisher p vs combination | why (vs control) | "
        "why (vs best single agent) | why (vs combination) |",
        "|---:|---|---:|---|---:|---:|---:|---|---|---|",
    ]
    for _, r in ranking.iterrows():
        med = (
            "not reached"
            if not math.isfinite(r["median_days_to_endpoint"])
            else f"{r['median_days_to_endpoint']:.1f}"
        )
        vs_single = r["reason_vs_best_single"]
        if vs_single:
            vs_single = f"vs {r['best_single']}: {vs_single}"
        L.append(
            f"| {r['rank']} | {r['arm']} ({r['description']}) | {100 * r['responders']:.0f} % "
            f"({int(round(r['responders'] * r['n']))}/{r['n']}) | {100 * r['ci_low']:.0f}–"
            f"{100 * r['ci_high']:.0f} % | {med} | {r['logrank_p_vs_control']:.2g} | "
            f"{_p(r['fisher_p_vs_combination'])} | {r['reason_vs_control']} | {vs_single} | "
            f"{r['reason_vs_combination']} |"
        )
    L += [
        "",
        f"![Kaplan–Meier curves and responder fractions]({rel['km_figure']})",
        "",
        f"![Tumour volume of every animal]({rel['volumes_figure']})",
        "",
    ]
    L += _site_and_stability_lines(trial, stability)
    L += uncertainty.markdown() if uncertainty is not None else []
    mech = trial.mechanisms()
    labels = {c: lab for c, _, _, lab in (*MECHANISM_READOUTS, *ASSAY_MECHANISMS)}
    L += [
        "### Mechanistic readouts (cohort medians)",
        "",
        "| arm | " + " | ".join(labels[c] for c in mech.columns) + " |",
        "|---|" + "---:|" * len(mech.columns),
    ]
    for arm, row in mech.iterrows():
        L.append(f"| {arm} | " + " | ".join(f"{v:.3g}" for v in row.values) + " |")
    L.append("")
    if opt is not None:
        rob = opt.robustness or {}
        L += [
            "## Optimised schedule",
            "",
            "- Objective: "
            + (
                "responder fraction (maximised)"
                if opt.maximize
                else "mean total tumour at the responder day (minimised)"
            )
            + "; "
            f"method `{opt.method}`; {int(opt.table['feasible'].sum())} feasible of "
            f"{len(opt.table)} candidates.",
            f"- Optimum: {_fmt_schedule(opt.best)} → {opt.best_value:.3g}"
            + (
                f" (bootstrap 95 % CI {rob['ci_low']:.3g}–{rob['ci_high']:.3g})"
                if "ci_low" in rob and rob["ci_low"] is not None
                else ""
            )
            + ".",
            f"- Robustness across the cohort: the optimum stays best in "
            f"{100 * rob.get('p_best', float('nan')):.0f} % of {rob.get('n_boot', 0)} bootstrap "
            f"resamples of the animals"
            + (f"; runner-up {_fmt_schedule(rob['runner_up'])}" if rob.get("runner_up") else "")
            + ".",
            "",
            f"![Candidates ranked]({rel['optimisation_figure']})",
            "",
        ]
    for name, res in synergy.items():
        L += [
            f"## Synergy: {res.x} × {res.y}",
            "",
            res.summary() + ".",
            "",
            f"![Synergy {name}]({rel[f'synergy_{name}']})",
            "",
        ]
    L += ["## Files", ""] + [f"- `{p}`" for k, p in rel.items() if k != "report"]
    L += ["", f"Computed in {seconds:.0f} s."]
    return "\n".join(L) + "\n"
