"""Seaborn figures of simulation results."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mhimmune.mh.field_safety import BREZOVICH_LIMIT, HERGT_LIMIT

#: panels of the default figure: (title, variables, y label, log scale)
DEFAULT_PANELS = [
    ("Tumour volume", ["tumour_volume_treated", "tumour_volume_distant"], "mm³", True),
    ("Tumour temperature", ["temperature_C"], "°C", False),
    ("Danger signals", ["damp_signal", "crt_fraction_treated"], "a.u.", False),
    ("Dendritic cells", ["mature_dc_fraction"], "mature fraction", False),
    ("CD8 effector T cells", ["cd8_effector_treated", "cd8_effector_distant"], "10⁶ cells", False),
    ("Checkpoint", ["pdl1_occupancy", "pdl1_free_treated"], "", False),
]

HYPOTHESIS_NOTE = "mhimmune predictions of a hypothesis-generating model, not measurements"


def plot_result(result, variables: Sequence[str] | None = None, *, ncols: int = 3):
    """Plot one simulation: default panels, or one panel per name in *variables*."""
    return plot_results([result], variables=variables, ncols=ncols)


def plot_results(results: Sequence, variables: Sequence[str] | None = None, *, ncols: int = 3):
    """Overlay several simulations (one colour per protocol) panel by panel."""
    panels = [(v, [v], "", False) for v in variables] if variables else DEFAULT_PANELS
    frames = []
    for r in results:
        available = [v for _, vs, _, _ in panels for v in vs if v in r.wide.columns]
        f = r.to_frame(available)
        f["protocol"] = r.protocol.name
        frames.append(f)
    data = pd.concat(frames, ignore_index=True)
    panels = [p for p in panels if any(v in set(data["variable"]) for v in p[1])]
    nrows = -(-len(panels) // ncols)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (title, names, ylabel, log) in zip(axes.flat, panels):
        sub = data[data["variable"].isin(names)]
        style = "variable" if len(names) > 1 else None
        sns.lineplot(
            data=sub,
            x="time_day",
            y="value",
            hue="protocol",
            style=style,
            ax=ax,
            estimator=None,
            legend=ax is axes.flat[0] or (style is not None),
        )
        ax.set_title(title)
        ax.set_xlabel("day")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=1e-3)  # ~1 cell; a cured tumour decays far below it
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(HYPOTHESIS_NOTE, fontsize=9, color="0.4", y=1.0)
    fig.tight_layout()
    return fig


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
