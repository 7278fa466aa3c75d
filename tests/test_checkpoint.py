"""Checkpoint antibodies (anti-PD-1, anti-CTLA-4) and vaccination with MH-killed tumour
cells: each kind refuses bad input with one line naming the field and its range, and
acts on the cells the model says it acts on.

MH is three 30-min sessions (15 kA/m, 200 kHz, 3.5 mg Fe/cm³) from day 7, every 2 days;
antibodies are 10 mg/kg unless stated.
"""

import warnings

import pytest

import mhimmune as mh
from mhimmune.core.errors import ProtocolError
from mhimmune.mh.kinds import DRUG_DOSE_LIMITS, TREATMENT_KINDS

MH = dict(
    start="7 d",
    duration="30 min",
    field="15 kA/m",
    frequency="200 kHz",
    agent="fe3o4_19nm_mpeg",
    dose="3.5 mg/cm^3",
    every="2 d",
    count=3,
)
#: tumour-naive mice: no tumour before the challenge (1e-6 mm³, a single cell, dies out)
NAIVE = {"tumour_initial_treated": 1e-6, "tumour_initial_distant": 1e-6}


def _run(model, plan, params=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mh.simulate(model, plan, params or {}).wide


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        (
            "anti_pd1",
            {"time": "7 d", "dose": "100 mg/kg"},
            "anti_pd1[0].dose: must be > 0 mg/kg and ≤ 50 mg/kg",
        ),
        ("anti_pd1", {"time": "7 d", "dose": "10 kA/m"}, "anti_pd1[0].dose:"),
        ("anti_pd1", {"time": "-1 d", "dose": "10 mg/kg"}, "anti_pd1[0].time: must be ≥ 0 h"),
        (
            "anti_ctla4",
            {"time": "7 d", "dose": "0 mg/kg"},
            "anti_ctla4[0].dose: must be > 0 mg/kg and ≤ 50 mg/kg",
        ),
        (
            "anti_ctla4",
            {"time": "7 d", "dose": "nan mg/kg"},
            "anti_ctla4[0].dose: must be a finite number",
        ),
        (
            "vaccination",
            {"time": "0 d", "dose": "1e9 cell"},
            "vaccination[0].dose: must be > 0 mm^3 and ≤ 500 mm^3",
        ),
        (
            "vaccination",
            {"time": "0 d", "dose": "-5 mm^3"},
            "vaccination[0].dose: must be > 0 mm^3",
        ),
        (
            "vaccination",
            {"time": "0 d", "dose": "5 kg"},
            "vaccination[0].dose: 5 kg is neither mm^3 nor cell",
        ),
        (
            "vaccination",
            {"time": "0 d", "dose": "0.5 fraction"},
            "vaccination[0].dose: must be killed cells in mm^3",
        ),
        (
            "vaccination",
            {"time": "0 d", "dose": "5 mm^3", "count": 2},
            "vaccination[0].every: required",
        ),
    ],
)
def test_new_kinds_reject_bad_input_with_one_line_naming_the_field(kind, fields, message):
    """Each bad value raises a ProtocolError of one line that starts with the field path
    and says the allowed range."""
    with pytest.raises(ProtocolError) as err:
        getattr(mh.Protocol("40 d"), kind)(**fields)
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text, text


def test_new_kinds_are_treatments_with_dose_limits():
    """anti-PD-1, anti-CTLA-4 and vaccination count as treatments (day 0 of "days after
    the first treatment"); the antibodies accept up to 50 mg/kg; 5e6 cells are 5 mm³."""
    assert {"anti_pd1", "anti_ctla4", "vaccination"} <= set(TREATMENT_KINDS)
    assert DRUG_DOSE_LIMITS["anti_pd1"] == DRUG_DOSE_LIMITS["anti_ctla4"] == 50.0
    plan = mh.Protocol("40 d").vaccination(time="3 d", dose="5e6 cell")
    assert plan.first_treatment_h == pytest.approx(72.0)
    assert plan.boluses()[0].amount == pytest.approx(5.0)


def test_anti_pd1_occupancy_rises_with_dose(model):
    """One anti-PD-1 dose on day 7: PD-1 occupancy one and seven days later rises with the
    dose, 1 < 3 < 10 mg/kg (measured 0.89/0.96/0.99 on day 8, 0.80/0.92/0.975 on day 14),
    and stays below 1."""
    occ = {}
    for dose in (1, 3, 10):
        w = _run(model, mh.Protocol("15 d").anti_pd1(time="7 d", dose=f"{dose} mg/kg"))
        occ[dose] = w["pd1_occupancy"].loc[[8.0, 14.0]].to_numpy()
        assert (w["pd1_occupancy"].loc[:6.9] == 0).all()
    for day in (0, 1):
        assert occ[1][day] < occ[3][day] < occ[10][day] < 1.0
    assert occ[10][0] == pytest.approx(0.99, abs=0.01)
    assert occ[1][1] == pytest.approx(0.80, abs=0.03)


@pytest.mark.parametrize("antibody", ["anti_pd1", "anti_pdl1"])
def test_blockade_reinvigorates_progenitor_but_not_terminal_exhausted_cells(model, antibody):
    """MH alone vs MH with one antibody dose on day 14, when exhausted cells have built up
    in the heated tumour: two days later the progenitor-exhausted pool is below 45 % of MH
    alone's (measured 26 % anti-PD-1, 32 % anti-PD-L1) and effectors are above 1.4-fold
    (1.57, 1.64), while the terminally exhausted pool keeps over 65 % (68 %, 70 %: it
    only loses the progenitors that would have become terminal) and falls less than half
    as much, relatively, as the progenitor pool."""
    base = _run(model, mh.Protocol("17 d").mh_session(**MH))
    plan = getattr(mh.Protocol("17 d").mh_session(**MH), antibody)(time="14 d", dose="10 mg/kg")
    treated = _run(model, plan)

    def ratio(column):
        return treated[column].loc[16.0] / base[column].loc[16.0]

    progenitor = ratio("cd8_progenitor_exhausted_treated")
    terminal = ratio("cd8_terminal_exhausted_treated")
    assert progenitor < 0.45
    assert terminal > 0.65
    assert 1 - terminal < 0.5 * (1 - progenitor)
    assert ratio("cd8_effector_treated") > 1.4
    total = treated["cd8_progenitor_exhausted_treated"] + treated["cd8_terminal_exhausted_treated"]
    assert (total - treated["cd8_exhausted_treated"]).abs().max() < 1e-9


def test_anti_ctla4_depletes_tregs_and_raises_priming(model):
    """anti-CTLA-4 on days 3, 6, 9, 12 in an untreated tumour: Tregs fall below 35 % of
    the untreated mouse's on days 7, 10 and 15 (measured 23 %, 22 %, 20 %; Selby et al.
    2013: "rapid and dramatic reduction" of intratumoural Tregs) and CD8 priming is more
    than 2.5-fold (measured 3.1-3.7: CTLA-4 blockade doubles it, fewer Tregs suppress it
    less), CD4 priming about 2-fold."""
    days = [7.0, 10.0, 15.0]
    u = _run(model, mh.Protocol("20 d"))
    c = _run(
        model, mh.Protocol("20 d").anti_ctla4(time="3 d", dose="10 mg/kg", every="3 d", count=4)
    )
    assert ((c["treg"].loc[days] / u["treg"].loc[days]) < 0.35).all()
    assert ((c["cd8_priming_flux"].loc[days] / u["cd8_priming_flux"].loc[days]) > 2.5).all()
    cd4 = c["cd4_priming_flux"].loc[days] / u["cd4_priming_flux"].loc[days]
    assert ((cd4 - 2.0).abs() < 0.1).all()


def test_vaccination_before_a_challenge_slows_the_challenge_tumour(model):
    """Tumour-naive mice vaccinated on day 0 with 1e7 MH-killed tumour cells, challenged
    with 1 mm³ of live tumour on day 14: the challenge tumour is smaller than in
    unvaccinated mice, less than half on days 25 and 30 (measured 17 vs 47 mm³ and 74 vs
    246 mm³), because memory cells formed (> 0.1 Mcell on day 14, measured 0.83, none
    without the vaccine). A vaccine of 2 mm³ barely matures DCs and changes little."""
    challenge = mh.Protocol("32 d").rechallenge(time="14 d", volume="1 mm^3")
    naive = _run(model, challenge, NAIVE)
    vaccinated = _run(model, challenge.vaccination(time="0 d", dose="1e7 cell"), NAIVE)
    for day in (25.0, 30.0):
        v, n = vaccinated["tumour_volume_distant"].loc[day], naive["tumour_volume_distant"].loc[day]
        assert v < 0.5 * n, day
    assert vaccinated["cd8_memory"].loc[14.0] > 0.1
    assert naive["cd8_memory"].loc[14.0] < 1e-6


def test_mh_plus_anti_pd1_clears_both_tumours_like_mh_plus_anti_pdl1(model):
    """MH + anti-PD-1 (days 7, 10, 13) clears both tumours of the nominal animal by day 25
    (< 1e-3 mm³; measured 3e-7 and 9e-9 mm³), as MH + anti-PD-L1 does (2e-7, 1e-9)."""
    plan = mh.Protocol("25 d").mh_session(**MH)
    for kind in ("anti_pd1", "anti_pdl1"):
        w = _run(model, getattr(plan, kind)(time="7 d", dose="10 mg/kg", every="3 d", count=3))
        assert w["tumour_volume_treated"].loc[25.0] < 1e-3, kind
        assert w["tumour_volume_distant"].loc[25.0] < 1e-3, kind
