"""Tumour-line experiments of the validation suite: growth between two volumes, antibody
monotherapy started at a tumour size, responders of a virtual cohort, flow percentages."""

import math

import pytest

from mhimmune.core.errors import ParameterError
from mhimmune.mh.presets import preset_overrides
from mhimmune.studies import validation  # noqa: F401  (registers the experiments)
from mhimmune.studies.validation_experiments import (
    EXPERIMENTS,
    mh_cure_fraction,
    parameter_overrides,
)
from mhimmune.studies.validation_tumours import (
    preset_antibody_fold,
    preset_antibody_inhibition,
    preset_antibody_percent_fold,
    preset_antibody_responders,
    preset_days_to_volume,
    preset_growth_rate,
    preset_immune_percent,
    preset_immune_percent_change,
    preset_log_growth_rate,
)


def test_new_experiments_are_registered():
    for name in (
        "preset_days_to_volume",
        "preset_antibody_inhibition",
        "preset_antibody_responders",
        "preset_immune_percent",
        "preset_antibody_fold",
        "preset_log_growth_rate",
        "preset_immune_percent_change",
        "preset_antibody_percent_fold",
    ):
        assert name in EXPERIMENTS


def test_days_between_volumes_follow_the_exponential_growth_rate():
    """From 50 to 100 mm³ (far below the 2,500 mm³ capacity) an untreated tumour doubles
    in ln 2 / r days, r its early growth rate (within 10 %); ten-fold growth from 100 to
    1,000 mm³ takes longer than 100 to 500 mm³."""
    for tumour in ("ct26", "mc38"):
        r = preset_growth_rate(tumour)
        assert preset_days_to_volume(tumour, 50.0, 100.0) == pytest.approx(
            math.log(2) / r, rel=0.10
        )
        assert preset_days_to_volume(tumour, 100.0, 1000.0) > preset_days_to_volume(
            tumour, 100.0, 500.0
        )


def test_log_linear_growth_rate_between_volumes_matches_the_fits():
    """The log-linear growth rate between two volumes: B16-F10 grows by 0.385 /d between
    100 and 1,500 mm³ (its growth rate is fitted to that, Hosoi et al. 2014); MC38 by
    0.121 /d from 170 mm³ (Lindauer et al. 2017: 0.12), slower than its early 0.19 /d as
    logistic growth slows; start and end volumes out of order are refused."""
    assert preset_log_growth_rate("b16f10") == pytest.approx(0.385, abs=0.002)
    mc38 = preset_log_growth_rate("mc38", 170.0, 1500.0)
    assert mc38 == pytest.approx(0.121, abs=0.002)
    assert mc38 < preset_growth_rate("mc38")
    with pytest.raises(ParameterError, match="start_volume/end_volume"):
        preset_log_growth_rate("mc38", 500.0, 100.0)


def test_faster_growth_rate_shortens_the_days_between_volumes():
    """Raising the growth rate by 25 % (an override, as fits apply it) shortens the time
    from 100 to 1,000 mm³."""
    base = preset_days_to_volume("ct26", 100.0, 1000.0)
    rate = preset_overrides(tumour="ct26")["tumour_growth_rate"]
    with parameter_overrides({"tumour_growth_rate": 1.25 * rate}):
        assert preset_days_to_volume("ct26", 100.0, 1000.0) < 0.9 * base


@pytest.mark.parametrize("antibody", ["pdl1", "pd1", "ctla4"])
def test_antibody_alone_inhibits_growth_between_zero_and_one(antibody):
    """Each checkpoint antibody alone slows, never speeds, the growth of a one-tumour mouse's
    tumour: 0 <= inhibition < 1."""
    value = preset_antibody_inhibition("mc38", antibody, days_after=10.0)
    assert 0.0 <= value < 1.0


def test_more_t_cell_killing_gives_more_inhibition_by_anti_pdl1():
    """Doubling the per-cell CTL killing rate raises the growth inhibition of anti-PD-L1
    alone (MC38, 14 days after the first dose)."""
    base = preset_antibody_inhibition("mc38", "pdl1")
    with parameter_overrides({"ctl_kill_rate": 1.2}):
        assert preset_antibody_inhibition("mc38", "pdl1") > base


def test_flow_percentages_are_percentages_and_nest():
    """CD8 % of live cells < CD8 % of CD45+ <= 100, and CD45+ % of live cells < 100."""
    cd8_cd45 = preset_immune_percent("ct26", "cd8", "cd45")
    cd8_live = preset_immune_percent("ct26", "cd8", "live")
    cd45_live = preset_immune_percent("ct26", "cd45", "live")
    assert 0 < cd8_live < cd8_cd45 <= 100
    assert 0 < cd45_live < 100
    assert cd8_live == pytest.approx(cd8_cd45 * cd45_live / 100, rel=1e-9)


def test_flow_percentage_change_compares_the_same_gate_three_weeks_apart():
    """In the untreated MC38 tumour, 21 d after it reaches 100 mm³ (1,480 mm³), CD45+ cells
    are a smaller share of live cells (0.43 of the share at 100 mm³) but CD8 cells a
    larger share of CD45+ cells (19-fold: 3.2 % to 61 %); the change equals the ratio of
    the two single readings."""
    cd45 = preset_immune_percent_change("mc38", "cd45", "live", 100.0, 21.0)
    cd8 = preset_immune_percent_change("mc38", "cd8", "cd45", 100.0, 21.0)
    assert cd45 == pytest.approx(0.429, abs=0.005)
    assert cd8 == pytest.approx(19.07, rel=0.01)
    early = preset_immune_percent("mc38", "cd8", "cd45", 100.0)
    assert early == pytest.approx(3.18, abs=0.05)
    assert early * cd8 == pytest.approx(60.7, abs=0.5)


def test_antibody_percent_fold_is_one_without_an_antibody_and_rises_under_anti_pdl1():
    """With no antibody the treated mouse is the untreated one (fold exactly 1); anti-PD-L1
    from 50 mm³ (5 doses 3.5 d apart) multiplies MC38's CD8 share of live cells 16 d
    after the first dose by about 129 (the tumour has regressed to 1.5 mm³ while 49 Mcell
    CD8 cells remain in it)."""
    course = dict(start_volume=50.0, every_day=3.5, count=5, days_after=16.0)
    assert preset_antibody_percent_fold("mc38", "none", **course) == pytest.approx(1.0, abs=1e-12)
    assert preset_antibody_percent_fold("mc38", "pdl1", **course) == pytest.approx(128.5, rel=0.02)


def test_responders_of_a_small_cohort_are_a_fraction():
    value = preset_antibody_responders("mc38", "pdl1", animals=4, follow_days=20.0)
    assert value in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_responders_exclude_mice_culled_at_the_endpoint():
    """MC38 under anti-PD-L1 (first dose at 100 mm³): 5 of 8 virtual mice regress by +20 d
    when followed past any volume up to 2000 mm³, but most grow first; with the endpoint at
    200 mm³ those that pass it are culled and only 2 of 8 count, at 120 mm³ none. A start
    volume above the endpoint is refused."""
    values = [
        preset_antibody_responders(
            "mc38", "pdl1", animals=8, follow_days=20.0, response="regression", endpoint_mm3=e
        )
        for e in (2000.0, 200.0, 120.0)
    ]
    assert values == pytest.approx([0.625, 0.25, 0.0], abs=1e-12)
    with pytest.raises(ParameterError, match="endpoint_mm3: 50 must be finite and above"):
        preset_antibody_responders("ct26", "none", animals=2, endpoint_mm3=50.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: preset_antibody_inhibition("ct26", "anti-pd1"), "antibody: 'anti-pd1'"),
        (lambda: preset_antibody_inhibition("ct26", start_volume=1.0), "start_volume: 1 mm³"),
        (lambda: preset_days_to_volume("ct26", 100.0, 1e5), "never reaches 100000 mm³"),
        (lambda: preset_immune_percent("ct26", "cd4"), "population/of: 'cd4'"),
        (lambda: preset_antibody_fold("ct26", "tregs"), "variable: 'tregs'"),
        (
            lambda: preset_immune_percent_change("ct26", "cd8", "cd4"),
            "population/of: 'cd8' of 'cd4'",
        ),
        (lambda: preset_immune_percent_change("ct26", days_later=0.0), "days_later: 0 must be"),
        (lambda: preset_immune_percent_change("ct26", days_later=200.0), "days_later: 200 d"),
        (lambda: preset_antibody_percent_fold("ct26", "pdl1", "nk"), "population/of: 'nk'"),
    ],
)
def test_bad_experiment_arguments_are_refused_with_the_field(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_anti_ctla4_clears_most_intratumoural_tregs_within_three_days():
    """Fc-active anti-CTLA-4 alone (10 mg/kg from 100 mm³) leaves the CT26 tumour's Treg
    fraction of CD4+ cells at about a quarter of the untreated tumour's 3 days after the
    first dose (0.235 measured; 0.15-0.35 accepted), and lower still at 7 days."""
    three = preset_antibody_fold("ct26", "treg_fraction", antibody="ctla4", days_after=3.0)
    seven = preset_antibody_fold("ct26", "treg_fraction", antibody="ctla4", days_after=7.0)
    assert 0.15 < three < 0.35
    assert seven < three


def test_b16_fitted_immunogenicity_orders_the_mcl_heat_cures():
    """With B16-F10's fitted effector burst (cd8_priming 2.39 against CT26's 15.7), one
    30-min MCL session at 43 °C regresses no B16 tumour, one at 46 °C regresses about the
    published 40 % (0.5 measured in 20 animals; 0.2-0.6 accepted) and two at 46 °C most."""
    cures = [
        mh_cure_fraction(target_C=t, minutes=30, count=c, tumour="b16f10")
        for t, c in ((43, 1), (46, 1), (46, 2))
    ]
    assert cures[0] == 0.0
    assert 0.2 <= cures[1] <= 0.6
    assert cures[2] >= 0.7
    assert preset_overrides("b16f10")["cd8_priming"] < preset_overrides("ct26")["cd8_priming"]
