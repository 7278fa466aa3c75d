"""Figures: structural facts (panels, axis labels with units, one legend, session axis
in minutes, human labels on synergy heat-maps, coinciding Kaplan–Meier curves named)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mhimmune.mh.catalogue import CELL_VOLUME_MM3  # noqa: E402
from mhimmune.mh.plotting import (  # noqa: E402
    SESSION_PANEL,
    factor_label,
    plot_results,
    variable_label,
)
from mhimmune.studies import synergy as sy  # noqa: E402


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _has_unit(label: str) -> bool:
    return "(" in label and label.rstrip().endswith(")")


@pytest.fixture(scope="module")
def demo_figure(demo_results):
    fig = plot_results(list(demo_results.values()))
    yield fig
    plt.close(fig)


def test_demo_figure_has_nine_panels_each_labelled_with_units(demo_figure):
    axes = _visible(demo_figure)
    assert len(axes) == 9
    for ax in axes:
        assert _has_unit(ax.get_xlabel()), ax.get_title()
        assert _has_unit(ax.get_ylabel()), ax.get_title()
        assert ax.get_title()


def test_demo_figure_has_one_legend_outside_the_panels(demo_figure):
    assert len(demo_figure.legends) == 1
    assert all(ax.get_legend() is None for ax in demo_figure.axes)
    labels = [t.get_text() for t in demo_figure.legends[0].get_texts()]
    assert labels == ["untreated", "MH", "anti-PD-L1", "MH + anti-PD-L1"]


def test_arms_differ_in_colour_and_line_style(demo_figure):
    handles = demo_figure.legends[0].legend_handles
    assert len({h.get_linestyle() for h in handles}) == len(handles)
    assert len({tuple(h.get_color()) for h in handles}) == len(handles)
    assert len({h.get_marker() for h in handles}) == len(handles)


def test_session_panel_is_in_minutes_and_spans_the_session(demo_figure, demo_results):
    ax = next(a for a in _visible(demo_figure) if a.get_title() == SESSION_PANEL)
    assert "min" in ax.get_xlabel()
    duration = demo_results["mh"].sessions()["duration_min"].max()
    lo, hi = ax.get_xlim()
    assert lo <= 0 and hi >= duration and hi < 3 * duration
    # mean and T90 of the MH arm; the combination's identical heating is not redrawn
    assert len(ax.get_lines()) == 2
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "same as MH" in texts and "T90" in texts


def test_tumour_panels_are_log_with_the_one_cell_line(demo_figure):
    vols = [a for a in _visible(demo_figure) if "tumour volume" in a.get_ylabel()]
    assert len(vols) == 2
    for ax in vols:
        assert ax.get_yscale() == "log" and "mm³" in ax.get_ylabel()
        ys = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert CELL_VOLUME_MM3 in ys
        assert any("one cell (extinct below)" in t.get_text() for t in ax.texts)


def test_cd8_panel_shows_the_summary_variable(demo_figure, demo_results):
    ax = next(a for a in _visible(demo_figure) if "CD8" in a.get_ylabel())
    r = demo_results["mh_plus_pdl1"]
    peak = max(np.nanmax(ln.get_ydata()) for ln in ax.get_lines())
    assert peak == pytest.approx(r.summary()["peak_cd8_effectors_Mcell"])


def test_checkpoint_and_danger_signals_have_separate_axes(demo_figure):
    ylabels = [a.get_ylabel() for a in _visible(demo_figure)]
    assert sum("PD-L1" in y for y in ylabels) == 2
    assert any("DAMP" in y for y in ylabels) and any("CRT" in y for y in ylabels)


def test_chosen_variables_get_one_panel_each_without_a_session_panel(demo_results):
    fig = demo_results["mh"].plot(["temperature_C", "cd8_effector_treated"])
    try:
        axes = _visible(fig)
        assert len(axes) == 2 and len(fig.legends) == 1
        assert axes[0].get_ylabel() == "mean tumour temperature (°C)"
    finally:
        plt.close(fig)


def test_labels_name_units():
    assert factor_label("field_kA_per_m") == "field amplitude H (kA/m)"
    assert factor_label("pdl1_dose_mg_per_kg") == "anti-PD-L1 dose per injection (mg/kg)"
    assert variable_label("labile_fe2_uM_low").endswith("(µM)")


def _toy(values):
    f_mh = 0.0 if values["n_sessions"] == 0 else min(0.9, values["field_kA_per_m"] / 20)
    f_ab = 0.0 if values["pdl1_count"] == 0 else values["pdl1_dose_mg_per_kg"] / 25
    return {"total_mm3": 1000.0 * (1 - f_mh) * (1 - f_ab), "cem43_min": 10.0}


def test_synergy_heatmaps_use_words_and_units():
    res = sy.synergy_grid(
        ("field_kA_per_m", [5, 10]),
        ("pdl1_dose_mg_per_kg", [2.5, 10]),
        effect="inhibition",
        evaluator=_toy,
        progress=False,
    )
    fig = res.plot()
    try:
        heat = [ax for ax in fig.axes if ax.get_xlabel()]
        assert len(heat) == 3
        for ax in heat:
            assert ax.get_xlabel().startswith("field amplitude H (kA/m)")
            assert ax.get_ylabel() == "anti-PD-L1 dose per injection (mg/kg)"
            assert "_" not in ax.get_title()
        bars = [ax.get_ylabel() for ax in fig.axes if not ax.get_xlabel()]
        assert "Bliss excess in tumour inhibition (> 0: synergy)" in bars
    finally:
        plt.close(fig)


def test_coinciding_kaplan_meier_curves_are_named_and_offset():
    import dataclasses

    from mhimmune.studies import trial, trial_design, virtual_cohort

    tr = trial.run_trial(
        trial_design.standard_arms(), virtual_cohort.sample_cohort(3, seed=11), progress=False
    )
    volumes = dict(tr.volumes)
    volumes["anti_pdl1"] = volumes["control"].copy()
    derived = ["responder", "time_to_event_day", "event", "recist"]
    same = dataclasses.replace(
        tr, volumes=volumes, animals=tr.animals.drop(columns=derived, errors="ignore")
    )
    ax = same.plot_km()
    try:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "anti_pdl1 (identical to control)" in labels
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        a, b = lines["control"], lines["anti_pdl1 (identical to control)"]
        assert a.get_linestyle() != b.get_linestyle()
        assert not np.allclose(a.get_ydata(), b.get_ydata())
        assert "(" in ax.get_xlabel() or "days" in ax.get_xlabel()
    finally:
        plt.close(ax.figure)
