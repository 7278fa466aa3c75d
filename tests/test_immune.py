"""Immune behaviours of the default model, each with its tolerance and why.

The tumour-immune race in this model is switch-like: a response that outruns the
distant tumour's growth eradicates it, one that does not lets it grow to capacity.
Tolerances are therefore set far inside the measured margins (given in each
docstring), and the defaults sit near the middle of the parameter range over which
the behaviours hold (parameters/model/immune.tsv notes "tuned: ..."), so these tests
check the qualitative claims, not numbers of one parameter set.
"""

import numpy as np
import pandas as pd
import pytest

import mhimmune as mh
import mhimmune.mh.readouts as readouts

from .conftest import load_protocol

ARMS = ("mh_plus_pdl1_before", "mh_plus_pdl1_late", "mh_plus_pdl1_cd8_depletion")


@pytest.fixture(scope="module")
def arms(model, demo_results):
    out = {name: res.wide for name, res in demo_results.items()}
    out.update({name: mh.simulate(model, load_protocol(name)).wide for name in ARMS})
    return out


def volumes(w, day):
    return w["tumour_volume_treated"].loc[day], w["tumour_volume_distant"].loc[day]


def test_anti_pdl1_alone_slows_ct26_modestly_and_cures_neither_tumour(arms):
    """Anti-PD-L1 alone (days 7, 10, 13) slows the CT26 tumours only modestly at the
    calibrated T-cell response: at day 21 the treated tumour is within 10 % of the
    untreated one (measured 3 % smaller, near capacity) and the smaller distant tumour is
    5-40 % smaller (measured 18 %); neither is cleared by day 25 (both > 1,000 mm³). CD8
    infiltration rises (day 21: measured 0.39 against 0.23 untreated)."""
    anti, untreated = volumes(arms["anti_pdl1"], 21.0), volumes(arms["untreated"], 21.0)
    assert anti[0] > 0.9 * untreated[0]
    assert 0.6 * untreated[1] < anti[1] < 0.95 * untreated[1]
    assert min(volumes(arms["anti_pdl1"], 25.0)) > 1000.0
    ctl = arms["anti_pdl1"]["ctl_infiltration_treated"].loc[21.0]
    assert ctl > 1.3 * arms["untreated"]["ctl_infiltration_treated"].loc[21.0]


def test_mh_alone_shrinks_the_treated_tumour_and_slows_the_distant_one(arms):
    """MH alone shrinks the treated tumour (day 15: < 0.1 of untreated, measured 0.025)
    and, through the T cells it primes, slows the unheated distant tumour a little
    (day 15: 0.5-0.9 of untreated, measured 0.71), without clearing it (> 1,000 mm³ at
    day 25)."""
    mh_t, mh_d = volumes(arms["mh"], 15.0)
    un_t, un_d = volumes(arms["untreated"], 15.0)
    assert mh_t < 0.1 * un_t
    assert 0.5 * un_d < mh_d < 0.9 * un_d
    assert volumes(arms["mh"], 25.0)[1] > 1000.0


def test_mh_plus_anti_pdl1_controls_the_distant_tumour_better_than_either_alone(arms):
    """The combination shrinks the distant tumour below its size at the first session
    (day 7, 58 mm³) by day 15 and eradicates it by day 25 (measured 3.9 mm³ at day 15,
    5e-9 mm³ at day 25), while each monotherapy leaves it near 2000 mm³: the test asks
    for 100-fold less than the better monotherapy at day 25."""
    comb = arms["mh_plus_pdl1"]["tumour_volume_distant"]
    assert comb.loc[15.0] < comb.loc[7.0]
    best_mono = min(
        arms["mh"]["tumour_volume_distant"].loc[25.0],
        arms["anti_pdl1"]["tumour_volume_distant"].loc[25.0],
    )
    assert comb.loc[25.0] < 0.01 * best_mono


def test_anti_pdl1_with_or_before_mh_beats_the_same_doses_a_week_later(arms):
    """Three anti-PD-L1 doses started with MH (day 7) or three days before it (day 4)
    clear both tumours by day 25, the same doses started on day 14 do not (total burden
    at day 25 measured 5e-7 mm³ for both vs 3450 mm³; Kosinsky 2018, Dovedi 2014). Asked:
    100-fold."""

    def burden(name):
        return sum(volumes(arms[name], 25.0))

    late = burden("mh_plus_pdl1_late")
    assert burden("mh_plus_pdl1") < 0.01 * late
    assert burden("mh_plus_pdl1_before") < 0.01 * late


def test_cd8_depletion_removes_the_combinations_benefit(model, arms):
    """With anti-CD8 every 3 days from day 6 the combination is no better than MH alone
    under the same depletion: both tumours within 20 % of the depleted MH-alone volumes at
    days 15 and 25 (anti-PD-L1 acts through CD8 T cells; 20 % allows for NK cells and
    macrophages, which depletion spares). CD8 effectors stay below 2 % of the undepleted
    combination's peak (measured 0.5 %)."""
    mh_depleted = mh.simulate(
        model, load_protocol("mh").cd8_depletion(time="6 d", dose="10 mg/kg", every="3 d", count=12)
    ).wide
    for day in (15.0, 25.0):
        depleted, mh_alone = (
            volumes(arms["mh_plus_pdl1_cd8_depletion"], day),
            volumes(mh_depleted, day),
        )
        for a, b in zip(depleted, mh_alone):
            assert a == pytest.approx(b, rel=0.2), day
    assert (
        arms["mh_plus_pdl1_cd8_depletion"]["cd8_effectors_total"].max()
        < 0.02 * arms["mh_plus_pdl1"]["cd8_effectors_total"].max()
    )


@pytest.fixture(scope="module")
def rechallenge(model):
    plan = load_protocol("mh_plus_pdl1_rechallenge")
    cured = mh.simulate(model, plan).wide
    naive_plan = mh.Protocol("75 d", name="naive rechallenge").rechallenge(
        time="45 d", volume="1 mm^3"
    )
    # tumour-naive mice: no tumours before the implant (1e-6 mm³, a single cell, goes extinct)
    naive = mh.simulate(
        model, naive_plan, {"tumour_initial_treated": 1e-6, "tumour_initial_distant": 1e-6}
    ).wide
    return cured, naive


def test_animals_cured_by_the_combination_reject_a_rechallenge(rechallenge):
    """Both tumours are gone before the rechallenge (< 1e-3 mm³, ~1000 cells, at day
    44.9; measured 2e-15); 1 mm³ implanted on day 45 is rejected by memory T cells
    (< 0.1 mm³ at day 75; measured 1.5e-7, after a transient rise to 2.5 mm³), while the
    same implant grows in tumour-naive mice (> 100 mm³ at day 75; measured 2065 mm³).
    Effector T cells re-expand more than 10-fold within 5 days (measured ~1500-fold).
    Ito et al. 2003: most mice cured by MH rejected a rechallenge."""
    cured, naive = rechallenge
    before = cured["tumour_volume_treated"].asof(44.9) + cured["tumour_volume_distant"].asof(44.9)
    assert before < 1e-3
    assert cured["tumour_volume_distant"].iloc[-1] < 0.1
    assert naive["tumour_volume_distant"].iloc[-1] > 100.0
    # recall: memory cells re-expand after the implant
    assert cured["cd8_effectors_total"].loc[50.0] > 10 * cured["cd8_effectors_total"].loc[44.75]


@pytest.fixture(scope="module")
def without_stress():
    """Tumour, death and immune links with the stress hazards as constant stub inputs."""
    return mh.load_model(
        links=["pharmacokinetics", "tumour", "death", "immune"], standalone=True, verbose=False
    )


def constant_stress(model, icd_share, hazard=0.004):
    stubs = {}
    for cls in ("low", "mid", "high"):
        stubs[f"hazard_icd_{cls}"] = hazard * icd_share
        stubs[f"hazard_apop_{cls}"] = hazard * (1 - icd_share)
    return mh.simulate(model, mh.Protocol("14 d", name=f"ICD share {icd_share}"), stubs).wide


def test_more_immunogenic_death_at_the_same_kill_matures_more_dcs_and_primes_more_t_cells(
    without_stress,
):
    """The same stress hazard (0.004 /h on every treated cell for 14 days) with 60 % rather
    than 10 % of the deaths immunogenic: the cells killed by stress over the first week
    agree within 5 % (measured 2.3 %: immune killing differs a little), and the mature DC
    fraction (day 3) and the CD8 effectors (day 10) are at least 1.5-fold higher
    (measured 2.8- and 2.6-fold).
    Apoptotic deaths give antigen but few DAMPs (CRT, ATP, HMGB1)."""
    low, high = constant_stress(without_stress, 0.1), constant_stress(without_stress, 0.6)

    def stress_kill(w):
        week = w.loc[:7.0]
        return np.trapezoid(
            0.004 * (week["viable_treated"] + week["damaged_treated"]), week.index * 24
        )

    assert stress_kill(high) == pytest.approx(stress_kill(low), rel=0.05)
    assert high["mature_dc_fraction"].loc[3.0] > 1.5 * low["mature_dc_fraction"].loc[3.0]
    assert high["cd8_effectors_total"].loc[10.0] > 1.5 * low["cd8_effectors_total"].loc[10.0]


# ----------------------------------------------------------------- mechanisms


def test_anti_pdl1_follows_the_kosinsky_one_compartment_model(model):
    """10 mg/kg i.p. (20 g mouse, 150 kDa: 1.333 nmol) into V = 3 mL with ka = 8 /d and
    kel = 0.15 /d: C(t) = D/V · ka/(ka - kel) · (e^-kel t - e^-ka t), occupancy C/(C + 30 nM),
    to 1e-4 relative (integration tolerance)."""
    res = mh.simulate(
        model, mh.Protocol("10 d", name="antibody").anti_pdl1(time="0 d", dose="10 mg/kg")
    )
    dose_nmol, v_ml, ka, kel = 10 * 0.02 * 1e6 / 150000, 3.0, 8.0, 0.15
    for day in (0.5, 1.0, 3.0, 7.0):
        c = dose_nmol / v_ml * 1000 * ka / (ka - kel) * (np.exp(-kel * day) - np.exp(-ka * day))
        assert res["ab_plasma_nM"].loc[day] == pytest.approx(c, rel=1e-4)
        assert res["pdl1_occupancy"].loc[day] == pytest.approx(c / (c + 30.0), rel=1e-4)


def test_two_compartment_option_moves_antibody_to_a_peripheral_compartment(model):
    plan = mh.Protocol("10 d", name="antibody").anti_pdl1(time="0 d", dose="10 mg/kg")
    one = mh.simulate(model, plan)
    two = mh.simulate(model, plan, {"ab_k12": "1 1/d", "ab_k21": "0.5 1/d"})
    assert one["ab_peripheral_nmol"].max() == 0.0
    assert two["ab_peripheral_nmol"].loc[3.0] > 0.1
    assert two["ab_plasma_nM"].loc[3.0] < 0.8 * one["ab_plasma_nM"].loc[3.0]


def test_adaptive_resistance_pdl1_rises_with_ifng_and_the_antibody_frees_it(arms):
    """After MH, effector T cells and IFN-γ raise tumour PD-L1 above 2-fold its baseline
    (measured 3.6-fold); with anti-PD-L1 less than a fifth of it is free while the
    antibody is dosed (days 8-16; measured at most 0.09 of it)."""
    assert arms["untreated"]["pdl1_treated"].iloc[0] == pytest.approx(1.0)
    assert arms["mh"]["pdl1_treated"].max() > 2.0
    comb = arms["mh_plus_pdl1"].loc[8.0:16.0]
    assert (comb["pdl1_free_treated"] < 0.2 * comb["pdl1_treated"]).all()


def test_heat_released_bet_inhibitor_option_lowers_pdl1(model):
    """Default off (no drug released); with drug loaded on the particles, MH sessions
    release it and PD-L1 of the treated tumour is lower a day after the last session."""
    plan = load_protocol("mh")
    off = mh.simulate(model, plan)
    on = mh.simulate(model, plan, {"beti_loading": "10 umol/g"})
    assert off["beti_uM"].max() == 0.0
    assert on["beti_uM"].max() > 1.0
    assert on["pdl1_treated"].loc[12.0] < 0.8 * off["pdl1_treated"].loc[12.0]
    # the drug is cleared within hours of the last session
    assert on["pdl1_transcription_factor_treated"].loc[20.0] == pytest.approx(1.0, abs=1e-3)


def test_heat_induced_pdl1_option_raises_pdl1_during_sessions(model):
    plan = load_protocol("mh")
    off = mh.simulate(model, plan)
    on = mh.simulate(model, plan, {"pdl1_heat_induction": 1.0})
    assert on["pdl1_treated"].loc[7.5] > off["pdl1_treated"].loc[7.5]


# ------------------------------------------------------------------- readouts


def test_untreated_readouts_match_the_cold_baseline(demo_results):
    """Untreated: ~4 % mature DCs (J Nanobiotechnol 2023 baseline; the DAMPs of basal
    apoptosis add a little: 4-8 % allowed), few CTLs, M2-dominated macrophages."""
    s = demo_results["untreated"].summary()
    assert 0.04 <= s["mature_dc_fraction_day8"] <= 0.08
    assert s["ctl_infiltration_day14"] < 0.15
    assert s["m1_m2_ratio_day14"] < 0.5
    assert s["pdl1_occupancy_day14"] == 0.0


def test_readouts_compare_gives_fold_changes_against_the_untreated_arm(demo_results):
    table = readouts.compare(demo_results, reference="untreated")
    assert list(table.columns) == [
        "arm",
        "readout",
        "time_day",
        "unit",
        "value",
        "reference_value",
        "fold_change",
        "description",
    ]
    assert len(table) == 4 * len(readouts.EXPERIMENT_READOUTS)
    fold = table.pivot(index="readout", columns="arm", values="fold_change")
    ref = table[table["arm"] == "untreated"].set_index("readout")
    assert np.allclose(fold["untreated"].drop("pdl1_occupancy_day14"), 1.0)
    assert np.isnan(fold.loc["pdl1_occupancy_day14", "anti_pdl1"])  # reference occupancy is 0
    assert ref.loc["pdl1_occupancy_day14", "value"] == 0.0
    # MH: ICD hallmarks up (J Nanobiotechnol 2023 [spiorpp2023]: CRT +72 %, HMGB1 +46 %,
    # DC 4 % -> 61 %, CTL 10 % -> 36 %), suppressive cells down, macrophages repolarised, more phagocytosis
    for name in (
        "crt_fraction_day8",
        "atp_treated_day8",
        "hmgb1_treated_day8",
        "mature_dc_fraction_day8",
        "ctl_infiltration_day14",
        "m1_m2_ratio_day14",
        "phagocytosis_per_macrophage_day14",
    ):
        assert fold.loc[name, "mh"] > 1.2, name
    assert fold.loc["mature_dc_fraction_day8", "mh"] > 5  # 4 % -> 61 % is 15-fold
    for name in ("treg_fraction_day14", "mdsc_fraction_day14"):
        assert fold.loc[name, "mh"] < 0.8, name
        assert fold.loc[name, "mh_plus_pdl1"] < fold.loc[name, "mh"], name
    # the combination nearly doubles phagocytosis (Wang 2024: CRT up, CD47 down)
    assert fold.loc["phagocytosis_per_macrophage_day14", "mh_plus_pdl1"] > 1.4
    # a list of results is named by protocol name
    named = readouts.compare(list(demo_results.values()), reference="untreated")
    assert set(named["arm"]) == {"untreated", "MH", "anti-PD-L1", "MH + anti-PD-L1"}
    with pytest.raises(KeyError, match="reference arm 'nothing'"):
        readouts.compare(demo_results, reference="nothing")


def test_summary_holds_the_experiment_readouts_as_scalars(demo_results):
    s = demo_results["mh_plus_pdl1"].summary()
    assert isinstance(s, pd.Series) and s.dtype == float
    for r in readouts.EXPERIMENT_READOUTS:
        assert r.label(r.day()) in s.index
    # a protocol shorter than the readout day has no day-14 readouts, and no error
    short = mh.simulate(
        demo_results["untreated"].model, mh.Protocol("10 d", name="short")
    ).summary()
    assert "mature_dc_fraction_day8" in short and "ctl_infiltration_day14" not in short
