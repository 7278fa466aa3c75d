"""Seaborn figures of sensitivity analyses and schedule scans.

Every function takes the tidy tables of :mod:`mhimmune.studies.sensitivity` (columns
``method, output, time_day, factor, factor2, index, value, conf_low, conf_high``) or
of :func:`mhimmune.mh.template.schedule_scan`, and returns the matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.runs.executor import Executor
from mhimmune.studies.execution import study_executor

__all__ = [
    "plot_indices",
    "plot_time_resolved",
    "plot_morris",
    "plot_schedule_heatmap",
    "schedule_heatmap",
]


def _pick(indices: pd.DataFrame, outputs, method, scalar: bool) -> pd.DataFrame:
    df = indices
    if method is not None:
        df = df[df["method"] == method]
    df = df[df["time_day"].isna()] if scalar else df[df["time_day"].notna()]
    if outputs is not None:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        df = df[df["output"].isin(outputs)]
    if df.empty:
        raise ValueError(
            f"no indices to plot for this selection (outputs={outputs}, method={method})"
        )
    return df


def plot_indices(
    indices: pd.DataFrame,
    outputs: str | Sequence[str] | None = None,
    *,
    method: str | None = None,
    kinds: Sequence[str] | None = None,
    top: int | None = None,
    col_wrap: int = 3,
    height: float = 3.2,
):
    """Bar chart of indices per factor with confidence intervals, one panel per output.

    Parameters
    ----------
    indices
        Tidy indices (:func:`mhimmune.studies.sensitivity.analyze`).
    outputs
        Output(s) to show; default every scalar output.
    method
        Restrict to one method (default: all rows given).
    kinds
        Index kinds to show (default ``S1``/``ST`` for Sobol and eFAST, ``mu_star`` for
        Morris, ``delta`` or ``pawn_median`` otherwise).
    top
        Show only the *top* factors by the largest index of each panel.
    col_wrap, height
        Panel layout: panels per row and panel height (inches).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = _pick(indices, outputs, method, scalar=True)
    df = df[df["factor2"].isna()]
    if kinds is None:
        present = list(df["index"].unique())
        kinds = [k for k in ("S1", "ST", "mu_star", "delta", "pawn_median") if k in present]
    df = df[df["index"].isin(kinds)]
    outs = list(dict.fromkeys(df["output"]))
    ncol = min(col_wrap, len(outs))
    nrow = int(np.ceil(len(outs) / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(ncol * height * 1.5, nrow * height), squeeze=False
    )
    palette = dict(zip(kinds, sns.color_palette("deep", len(kinds))))
    for ax, out in zip(axes.ravel(), outs):
        d = df[df["output"] == out]
        order = d.groupby("factor")["value"].max().sort_values(ascending=False).index.tolist()
        if top:
            order = order[:top]
        d = d[d["factor"].isin(order)]
        sns.barplot(
            data=d,
            y="factor",
            x="value",
            hue="index",
            order=order,
            hue_order=kinds,
            palette=palette,
            ax=ax,
            errorbar=None,
            orient="h",
        )
        # confidence intervals from the table (bars are centred per hue by seaborn)
        n_h = len(kinds)
        width = 0.8 / n_h
        for h, kind in enumerate(kinds):
            dk = d[d["index"] == kind].set_index("factor").reindex(order)
            y = np.arange(len(order)) - 0.4 + width * (h + 0.5)
            lo = (dk["value"] - dk["conf_low"]).to_numpy(dtype=float)
            hi = (dk["conf_high"] - dk["value"]).to_numpy(dtype=float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.errorbar(
                    dk["value"].to_numpy(dtype=float)[ok],
                    y[ok],
                    xerr=np.vstack([lo[ok], hi[ok]]),
                    fmt="none",
                    ecolor="0.2",
                    elinewidth=1,
                    capsize=2,
                )
        ax.axvline(0, color="0.5", lw=0.6)
        ax.set_title(out, fontsize=9)
        ax.set_xlabel("index")
        ax.set_ylabel("")
        if ax.get_legend() is not None and ax is not axes.ravel()[0]:
            ax.get_legend().remove()
    for ax in axes.ravel()[len(outs) :]:
        ax.set_visible(False)
    m = ", ".join(df["method"].unique())
    fig.suptitle(
        f"{m} indices with {int(round(100 * 0.95))} % confidence intervals (model predictions)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_time_resolved(
    indices: pd.DataFrame,
    outputs: str | Sequence[str] | None = None,
    *,
    index: str = "ST",
    method: str | None = None,
    top: int = 6,
    height: float = 3.2,
):
    """Indices along a trajectory (x: day) with confidence bands, one panel per output.

    Parameters
    ----------
    indices
        Tidy indices with ``time_day`` set (time-resolved analysis).
    outputs
        Trajectory variable(s) to show; default all.
    index
        Index kind to plot (``ST``, ``S1``, ``mu_star``, ``delta``...).
    method
        Restrict to one method.
    top
        Factors shown per panel: the *top* by their largest index over time.
    height
        Panel height in inches.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = _pick(indices, outputs, method, scalar=False)
    df = df[(df["index"] == index) & df["factor2"].isna()]
    if df.empty:
        raise ValueError(f"no time-resolved {index} indices to plot")
    outs = list(dict.fromkeys(df["output"]))
    fig, axes = plt.subplots(
        1, len(outs), figsize=(len(outs) * height * 1.6, height), squeeze=False
    )
    for ax, out in zip(axes.ravel(), outs):
        d = df[df["output"] == out]
        keep = d.groupby("factor")["value"].max().sort_values(ascending=False).index[:top]
        d = d[d["factor"].isin(keep)].sort_values("time_day")
        pal = dict(zip(keep, sns.color_palette("tab10", len(keep))))
        sns.lineplot(
            data=d,
            x="time_day",
            y="value",
            hue="factor",
            hue_order=list(keep),
            palette=pal,
            ax=ax,
            errorbar=None,
        )
        for f in keep:
            dd = d[d["factor"] == f]
            if dd["conf_low"].notna().any():
                ax.fill_between(
                    dd["time_day"], dd["conf_low"], dd["conf_high"], color=pal[f], alpha=0.15, lw=0
                )
        ax.set_title(out, fontsize=9)
        ax.set_xlabel("day")
        ax.set_ylabel(index)
        ax.legend(fontsize=7, title=None)
    fig.suptitle(f"time-resolved {index} (model predictions)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_morris(
    indices: pd.DataFrame,
    outputs: str | Sequence[str] | None = None,
    *,
    height: float = 3.5,
    annotate: int = 8,
):
    """Morris μ*–σ screening plot per output, with the σ/μ* = 0.1, 0.5 and 1 lines.

    Parameters
    ----------
    indices
        Tidy Morris indices (``mu_star`` and ``sigma`` rows).
    outputs
        Output(s) to show; default every scalar output.
    height
        Panel height in inches.
    annotate
        Label the *annotate* factors with the largest μ*.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = _pick(indices, outputs, "morris", scalar=True)
    wide = df.pivot_table(index=["output", "factor"], columns="index", values="value").reset_index()
    conf = df[df["index"] == "mu_star"].set_index(["output", "factor"])
    outs = list(dict.fromkeys(df["output"]))
    fig, axes = plt.subplots(
        1, len(outs), figsize=(len(outs) * height * 1.2, height), squeeze=False
    )
    for ax, out in zip(axes.ravel(), outs):
        d = wide[wide["output"] == out]
        sns.scatterplot(data=d, x="mu_star", y="sigma", hue="factor", legend=False, ax=ax, s=30)
        c = conf.loc[out].reindex(d["factor"])
        ax.errorbar(
            d["mu_star"],
            d["sigma"],
            xerr=np.vstack(
                [
                    d["mu_star"].to_numpy() - c["conf_low"].to_numpy(),
                    c["conf_high"].to_numpy() - d["mu_star"].to_numpy(),
                ]
            ),
            fmt="none",
            ecolor="0.6",
            elinewidth=0.8,
        )
        top = max(float(d["mu_star"].max()), 1e-300) * 1.1
        x = np.linspace(0, top, 10)
        for r, ls in ((0.1, ":"), (0.5, "--"), (1.0, "-")):
            ax.plot(x, r * x, color="0.5", lw=0.7, ls=ls)
            ax.text(top, r * top, f"σ/μ*={r:g}", fontsize=6, color="0.4", va="bottom", ha="right")
        for _, row in d.nlargest(annotate, "mu_star").iterrows():
            ax.annotate(
                row["factor"],
                (row["mu_star"], row["sigma"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.set_title(out, fontsize=9)
        ax.set_xlabel("μ* (mean |elementary effect|)")
        ax.set_ylabel("σ (interaction / non-linearity)")
    fig.suptitle("Morris screening (model predictions)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_schedule_heatmap(
    scan: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    *,
    ax=None,
    cmap: str = "viridis",
    fmt: str = ".3g",
    annot: bool = True,
    **heatmap_kwargs: Any,
):
    """Heat-map of one readout over a two-factor schedule grid (failed points blank).

    Parameters
    ----------
    scan
        Table of :func:`mhimmune.mh.template.schedule_scan` (one row per grid point).
    x, y
        Factor columns on the x and y axes.
    value
        Readout column to colour by.
    ax
        Axes to draw in (default a new figure).
    cmap, fmt, annot
        Colour map, number format and whether to write values in the cells.
    **heatmap_kwargs
        Passed to :func:`seaborn.heatmap`.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = scan.copy()
    if "status" in d:
        d.loc[d["status"] != "ok", value] = np.nan
    grid = d.pivot_table(index=y, columns=x, values=value, aggfunc="first", dropna=False)
    grid = grid.sort_index(ascending=False)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.8 * grid.shape[1], 1.0 + 0.6 * grid.shape[0]))
    else:
        fig = ax.figure
    sns.heatmap(
        grid,
        ax=ax,
        cmap=cmap,
        annot=annot,
        fmt=fmt,
        cbar_kws={"label": value},
        annot_kws={"fontsize": 7},
        **heatmap_kwargs,
    )
    n_failed = int((scan["status"] != "ok").sum()) if "status" in scan else 0
    ax.set_title(
        f"{value} (model predictions)" + (f"; {n_failed} failed runs blank" if n_failed else ""),
        fontsize=9,
    )
    ax.set_xticklabels([f"{float(t.get_text()):.3g}" for t in ax.get_xticklabels()])
    ax.set_yticklabels([f"{float(t.get_text()):.3g}" for t in ax.get_yticklabels()])
    fig.tight_layout()
    return fig


def schedule_heatmap(
    template,
    x: tuple[str, Sequence[float]],
    y: tuple[str, Sequence[float]],
    value: str,
    *,
    readouts: Sequence[str] | None = None,
    params=None,
    executor: Executor | None = None,
    **run_kwargs: Any,
):
    """Run a two-factor schedule grid through the ensemble runner and draw its heat-map.

    Parameters
    ----------
    template
        A :class:`~mhimmune.mh.template.ScheduleTemplate`.
    x, y
        ``(factor name, values)`` of the axes (numbers in the factors' units).
    value
        Readout to colour by (computed if not in *readouts*).
    readouts
        Readouts to compute (default: *value* only).
    params
        Fixed parameter overrides.
    executor
        Where the grid's runs go: ``None`` in this process; a
        :class:`~mhimmune.runs.executor.WorkerPool` (local processes) or
        :class:`~mhimmune.runs.dask_executor.DaskExecutor`, e.g. from
        :func:`~mhimmune.runs.executor.make_executor`. It is used, not closed.
    **run_kwargs
        Further options of :func:`mhimmune.runs.ensemble.run_ensemble` (``progress``,
        ``chunk_size``, ``out``...); not ``n_jobs``, ``client`` or ``pool``.

    Raises
    ------
    ParameterError
        ``n_jobs``, ``client`` or ``pool`` among *run_kwargs* (give an *executor*).

    Returns
    -------
    tuple
        ``(figure, scan table)``.
    """
    from mhimmune.mh.template import schedule_scan

    old = sorted({"n_jobs", "client", "pool"} & set(run_kwargs))
    if old:
        raise ParameterError(
            f"{', '.join(old)}: give executor=make_executor(...) instead "
            f"(mhimmune.runs.executor.make_executor)"
        )
    executor = study_executor(executor)
    readouts = list(readouts or [value])
    if value not in readouts:
        readouts.append(value)
    scan = schedule_scan(template, x, y, readouts, params=params, executor=executor, **run_kwargs)
    return plot_schedule_heatmap(scan, x[0], y[0], value), scan
