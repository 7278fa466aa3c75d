"""Matplotlib/seaborn figures of simulation results.

The default figure answers, panel by panel, what a treatment did: treated and distant
tumour volume (log axis, the one-cell line), heating during each MH session (minutes
from the session start), danger signals, dendritic cells, CD8 effectors and the PD-L1
checkpoint. Arms are told apart by colour, line style and marker at once; one legend
for the whole figure, outside the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mhimmune.mh.catalogue import CELL_VOLUME_MM3
from mhimmune.mh.field_safety import BREZOVICH_LIMIT, HERGT_LIMIT
from mhimmune.mh.template import PROTOCOL_FACTORS

__all__ = [
    "ARM_STYLES",
    "DEFAULT_PANELS",
    "HYPOTHESIS_NOTE",
    "Panel",
    "SESSION_PANEL",
    "arm_styles",
    "factor_label",
    "plot_result",
    "plot_results",
    "plot_sessions",
    "plot_temperature_map",
    "variable_label",
]

HYPOTHESIS_NOTE = "mhimmune predictions of a hypothesis-generating model, not measurements"

#: line styles of successive arms: (line style, marker); widths shrink with the arm's
#: index and later arms are drawn on top, so a coinciding earlier curve stays visible
ARM_STYLES = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"), ((0, (5, 1, 1, 1)), "v")]
_FIXED_COLOURS = {"untreated": (0.35, 0.35, 0.35), "control": (0.35, 0.35, 0.35)}


@dataclass(frozen=True)
class Panel:
    """One panel of the default figure: a question answered by *variables* over time."""

    title: str
    variables: tuple[str, ...]
    ylabel: str
    log: bool = False
    unit_interval: bool = False  # a fraction: y axis 0–1


#: panels of the default figure (the session-heating panel comes third)
DEFAULT_PANELS = [
    Panel(
        "Treated tumour: does it shrink?",
        ("tumour_volume_treated",),
        "treated tumour volume (mm³)",
        log=True,
    ),
    Panel(
        "Distant tumour: is there an abscopal effect?",
        ("tumour_volume_distant",),
        "distant tumour volume (mm³)",
        log=True,
    ),
    Panel(
        "Danger signals released by dying cells",
        ("damp_signal",),
        "DAMP signal (weighted mm³ cell-equivalents)",
    ),
    Panel(
        "Calreticulin exposure (treated tumour)",
        ("crt_fraction_treated",),
        "CRT-positive fraction of tumour cells (0–1)",
        unit_interval=True,
    ),
    Panel(
        "Are dendritic cells activated?",
        ("mature_dc_fraction",),
        "mature fraction of DCs, treated-site lymph node (0–1)",
        unit_interval=True,
    ),
    Panel(
        "How many CD8 effector T cells?",
        ("cd8_effectors_total",),
        "CD8 effectors, blood + both tumours (10⁶ cells)",
    ),
    Panel(
        "Is PD-L1 blocked by the antibody?",
        ("pdl1_occupancy",),
        "PD-L1 occupied by anti-PD-L1 (fraction, 0–1)",
        unit_interval=True,
    ),
    Panel(
        "How much PD-L1 is left free (treated tumour)?",
        ("pdl1_free_treated",),
        "free PD-L1 (relative to day 0 = 1)",
    ),
]

#: title of the session-heating panel
SESSION_PANEL = "Tumour temperature during each MH session"

#: session temperatures drawn when present: (variable, label, line style)
_SESSION_LINES = (
    ("temperature_C", "mean", "-"),
    ("temperature_t90_C", "T90", "--"),
)
_SESSION_BAND = ("temperature_C_low", "temperature_C_high")

_LABELS = {p.variables[0]: p.ylabel for p in DEFAULT_PANELS} | {
    "temperature_C": "mean tumour temperature (°C)",
    "temperature_t90_C": "T90 tumour temperature (°C)",
}
_SUFFIX_UNITS = (
    ("_C", "°C"),
    ("_mm3", "mm³"),
    ("_uM", "µM"),
    ("_nM", "nM"),
    ("_nmol", "nmol"),
    ("_fraction", "fraction, 0–1"),
    ("_min", "min"),
    ("_day", "d"),
)


def variable_label(name: str) -> str:
    """Axis label of a model variable: a phrase with its unit where known."""
    if name in _LABELS:
        return _LABELS[name]
    if name.startswith("tumour_volume"):
        return f"{name.replace('_', ' ')} (mm³)"
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix) or f"{suffix}_" in name:
            return f"{name.replace('_', ' ')} ({unit})"
    return f"{name.replace('_', ' ')} (model units)"


_UNIT_TEXT = {"mg/cm^3": "mg/cm³", "degC": "°C", "d": "days"}


def factor_label(name: str) -> str:
    """Axis label of a protocol factor (:data:`~mhimmune.mh.template.PROTOCOL_FACTORS`):
    its description with its unit, e.g. ``field amplitude H (kA/m)``."""
    info = PROTOCOL_FACTORS.get(name)
    if info is None:
        return name.replace("_", " ")
    text = info.description.split(":")[0].split(" (0")[0].strip()
    if text.endswith(")"):  # the description explains the unit
        return text
    if info.unit == "1":
        return text if info.kind != "switch" else f"{text} (0 = no, 1 = yes)"
    return f"{text} ({_UNIT_TEXT.get(info.unit, info.unit)})"


def arm_styles(names: Sequence[str]) -> dict[str, dict]:
    """Matplotlib line keywords per arm: colour, line style, marker, width, draw order."""
    palette = sns.color_palette("colorblind", max(len(names), 4))
    out = {}
    k = len(names)
    for i, n in enumerate(names):
        ls, marker = ARM_STYLES[i % len(ARM_STYLES)]
        out[n] = dict(
            color=_FIXED_COLOURS.get(n.lower(), palette[(i + 1) % len(palette)]),
            ls=ls,
            marker=marker,
            lw=1.7 + 0.8 * (k - 1 - i),
            markersize=5,
            markevery=(0.03 + 0.05 * i, 0.2),  # staggered along the curve
            zorder=2 + i,
            label=n,
        )
    return out


def plot_result(result, variables: Sequence[str] | None = None, *, ncols: int = 3):
    """Plot one simulation: default panels, or one panel per name in *variables*."""
    return plot_results([result], variables=variables, ncols=ncols)


def plot_results(results: Sequence, variables: Sequence[str] | None = None, *, ncols: int = 3):
    """Overlay several simulations (one colour, line style and marker per protocol).

    Default panels: treated and distant tumour volume, the heating of each MH session
    (if any arm has sessions), danger signals, CRT, mature DCs, CD8 effectors, PD-L1
    occupancy and free PD-L1; each with its unit. *variables*: one panel per name.
    """
    if variables:
        panels = [Panel(v.replace("_", " "), (v,), variable_label(v)) for v in variables]
        with_sessions = False
    else:
        panels = list(DEFAULT_PANELS)
        with_sessions = any(len(r.heating) for r in results)
    names = [r.protocol.name for r in results]
    styles = arm_styles(names)
    panels = [p for p in panels if any(v in r.wide.columns for r in results for v in p.variables)]
    n = len(panels) + with_sessions
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 3.7 * nrows + 0.8), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    slots = list(range(n))
    session_slot = 2 if with_sessions and n > 2 else (n - 1 if with_sessions else None)
    panel_slots = [s for s in slots if s != session_slot]
    for slot, panel in zip(panel_slots, panels):
        _draw_panel(flat[slot], panel, results, styles)
    if session_slot is not None:
        plot_sessions(results, ax=flat[session_slot], styles=styles)
    for ax in flat[n:]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], **{k: v for k, v in styles[nm].items() if k not in ("markevery",)})
        for nm in names
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(names), 5),
        frameon=False,
        title="arm (colour, line style and marker)",
    )
    fig.suptitle(HYPOTHESIS_NOTE, fontsize=9, color="0.4")
    return fig


def _draw_panel(ax, panel: Panel, results, styles) -> None:
    for r in results:
        for v in panel.variables:
            if v in r.wide.columns:
                s = r.wide[v]
                ax.plot(s.index.values, s.values, **styles[r.protocol.name])
    ax.set_title(panel.title, fontsize=11)
    ax.set_xlabel("time (days)")
    ax.set_ylabel(panel.ylabel, fontsize=9)
    if panel.unit_interval:
        ax.set_ylim(-0.03, 1.03)
    if panel.log:
        ax.set_yscale("log")
        top = max(float(np.nanmax(r.wide[v].values)) for r in results for v in panel.variables)
        ax.set_ylim(CELL_VOLUME_MM3 / 20, max(top, 1.0) * 5)
        ax.axhline(CELL_VOLUME_MM3, color="k", ls="--", lw=0.9, zorder=1)
        ax.annotate(
            "one cell (extinct below)",
            (0.01, CELL_VOLUME_MM3),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
        )


def _session_trace(result, session, after_min: float) -> pd.DataFrame:
    """Temperatures from the session start to *after_min* past its end, minutes index."""
    w = result.wide
    t_min = (w.index.values * 24.0 - session.start_h) * 60.0
    keep = (t_min >= -1e-6) & (t_min <= session.duration_h * 60.0 + after_min + 1e-6)
    cols = [c for c, _, _ in _SESSION_LINES if c in w] + [c for c in _SESSION_BAND if c in w]
    return pd.DataFrame(w[cols].values[keep], index=t_min[keep], columns=cols)


def plot_sessions(results, ax=None, styles: dict | None = None, after_min: float = 15.0):
    """Tumour temperature during each MH session against minutes from its start.

    Mean temperature (solid) and T90 (dashed, the temperature 90 % of the heated region
    exceeds) in the arm's colour, the coolest to hottest particle-load region shaded.
    Arms or sessions with the same heating are drawn once and named in the title.
    """
    results = [r for r in (results if isinstance(results, Sequence) else [results])]
    if ax is None:
        ax = plt.subplots(figsize=(5.5, 3.8))[1]
    styles = styles or arm_styles([r.protocol.name for r in results])
    drawn: list[tuple[str, pd.DataFrame]] = []
    notes, longest = [], 0.0
    for r in results:
        sessions = [h.session for h in r.heating]
        if not sessions:
            continue
        traces = [_session_trace(r, s, after_min) for s in sessions]
        longest = max(longest, max(s.duration_h * 60.0 for s in sessions))
        same = next((nm for nm, tr in drawn if _same(tr, traces[0])), None)
        if same is not None:
            notes.append(f"{r.protocol.name}: same as {same}")
            continue
        drawn.append((r.protocol.name, traces[0]))
        st = styles[r.protocol.name]
        distinct = [0] + [i for i in range(1, len(traces)) if not _same(traces[i], traces[0])]
        if len(distinct) < len(traces):
            notes.append(
                f"{r.protocol.name}: "
                + ("all " if len(distinct) == 1 else "")
                + f"{len(traces)} sessions"
                + (" identical" if len(distinct) == 1 else f", {len(distinct)} distinct shown")
            )
        for j, i in enumerate(distinct):
            tr = traces[i]
            alpha = 1.0 - 0.5 * j / max(len(distinct), 1)
            if all(c in tr for c in _SESSION_BAND):
                ax.fill_between(
                    tr.index,
                    tr[_SESSION_BAND[0]],
                    tr[_SESSION_BAND[1]],
                    color=st["color"],
                    alpha=0.15,
                    lw=0,
                )
            for col, _label, ls in _SESSION_LINES:
                if col in tr:
                    ax.plot(tr.index, tr[col], color=st["color"], ls=ls, lw=1.8, alpha=alpha)
        for col, label, _ in _SESSION_LINES:
            if col in traces[0]:
                y = traces[0][col].values
                x = traces[0].index.values
                k = int(np.searchsorted(x, 0.5 * longest))
                ax.annotate(
                    label,
                    (x[k], y[k]),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color=st["color"],
                    ha="center",
                )
        if all(c in traces[0] for c in _SESSION_BAND):
            tr = traces[0]
            k = int(np.searchsorted(tr.index.values, 0.8 * longest))
            ax.annotate(
                "coolest–hottest region",
                (tr.index[k], tr[_SESSION_BAND[1]].iloc[k]),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=7,
                color=st["color"],
                ha="center",
            )
    if drawn:
        ax.axvspan(0, longest, color="0.9", zorder=0)
        ax.set_xlim(-0.02 * (longest + after_min), longest + after_min)
    else:
        ax.text(0.5, 0.5, "no MH sessions", transform=ax.transAxes, ha="center")
    ax.set_title(SESSION_PANEL, fontsize=11)
    if notes:
        ax.text(
            0.99,
            0.22,
            "\n".join(notes),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    ax.set_xlabel("time from session start (min; shaded: field on)")
    ax.set_ylabel("tumour temperature (°C)", fontsize=9)
    return ax


def _same(a: pd.DataFrame, b: pd.DataFrame, tol: float = 0.02) -> bool:
    return a.shape == b.shape and bool(np.allclose(a.values, b.values, atol=tol, rtol=0))


def plot_temperature_map(table: pd.DataFrame, *, target_C: float = 43.0, ncols: int | None = None):
    """Heat-maps of steady temperature over field and frequency, one panel per agent.

    Draws the Brezovich (4.85e8 A m⁻¹ s⁻¹) and Hergt (5e9) limits H·f = const and the
    *target_C* contour. *table* comes from :func:`mhimmune.mh.heating.temperature_map`.
    """
    agents = list(dict.fromkeys(table["agent"]))
    ncols = ncols or len(agents)
    nrows = -(-len(agents) // ncols)
    sns.set_theme(style="white", context="notebook")
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False)
    vmin, vmax = 37.0, max(50.0, float(table["steady_temperature_C"].max()))
    for ax, agent in zip(axes.flat, agents):
        sub = table[table["agent"] == agent]
        grid = sub.pivot(index="field_kA_per_m", columns="freq_kHz", values="steady_temperature_C")
        f, h = grid.columns.values, grid.index.values
        mesh = ax.pcolormesh(
            f, h, grid.values, shading="nearest", cmap="magma", vmin=vmin, vmax=min(vmax, 60.0)
        )
        cs = ax.contour(f, h, grid.values, levels=[target_C], colors="cyan", linewidths=1.5)
        ax.clabel(cs, fmt=f"{target_C:g} °C")
        ff = np.linspace(f.min(), f.max(), 200)
        for limit, style, label in (
            (BREZOVICH_LIMIT, "--", "Brezovich"),
            (HERGT_LIMIT, "-", "Hergt"),
        ):
            hh = limit / (ff * 1e3) / 1e3
            keep = hh <= h.max()
            ax.plot(
                ff[keep], hh[keep], style, color="white", lw=1.5, label=f"{label} H·f = {limit:.3g}"
            )
        ax.set_ylim(h.min(), h.max())
        ax.set_title(agent)
        ax.set_xlabel("frequency (kHz)")
        ax.set_ylabel("field (kA/m)")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.6)
        fig.colorbar(mesh, ax=ax, label="steady tumour temperature (°C)")
    for ax in list(axes.flat)[len(agents) :]:
        ax.set_visible(False)
    fig.suptitle(HYPOTHESIS_NOTE, fontsize=9, color="0.4")
    fig.tight_layout()
    return fig
