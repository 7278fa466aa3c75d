"""Depletion protocol kinds: each removes its immune population, and bad doses are refused.

An untreated mouse (20 days) is compared with the same mouse given the depleting agent
on days 3, 6, 9, 12 and 15 (antibodies 10 mg/kg, clodronate liposomes 50 mg/kg). The
depleted population is read on days 10 and 15, while the agent is still given.
"""

import warnings

import pytest

import mhimmune as mh
from mhimmune.core.errors import ProtocolError
from mhimmune.mh.kinds import DRUG_DOSE_LIMITS, TREATMENT_KINDS

DEPLETIONS = ("cd4_depletion", "nk_depletion", "macrophage_depletion", "treg_depletion")
DAYS = [10.0, 15.0]


def _plan(kind: str | None = None) -> mh.Protocol:
    plan = mh.Protocol(duration="20 d", name=kind or "untreated")
    if kind is None:
        return plan
    dose = "50 mg/kg" if kind == "macrophage_depletion" else "10 mg/kg"
    return getattr(plan, kind)(time="3 d", dose=dose, every="3 d", count=5)


@pytest.fixture(scope="module")
def runs(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: mh.simulate(model, _plan(k)).wide for k in (None, *DEPLETIONS)}


def _ratio(runs, kind, column):
    return (runs[kind][column].loc[DAYS] / runs[None][column].loc[DAYS]).to_numpy()


def test_cd4_depletion_removes_helpers_and_tregs(runs):
    """Anti-CD4 leaves < 15 % of the CD4 helper cells and < 15 % of the Tregs of the
    untreated mouse on days 10 and 15 (measured 9 %/7 % and 7 %/6 %)."""
    assert (_ratio(runs, "cd4_depletion", "cd4_helper") < 0.15).all()
    assert (_ratio(runs, "cd4_depletion", "treg") < 0.15).all()


def test_nk_depletion_removes_nk_cells_and_spares_t_cells(runs):
    """Anti-NK1.1 leaves < 10 % of the NK cells (resting + active) on days 10 and 15, and
    the CD4 helpers and Tregs within 10 % of untreated."""
    w, u = runs["nk_depletion"], runs[None]
    nk = (w["nk_resting"] + w["nk_active"]).loc[DAYS] / (u["nk_resting"] + u["nk_active"]).loc[DAYS]
    assert (nk < 0.10).all()
    assert abs(_ratio(runs, "nk_depletion", "treg") - 1).max() < 0.1


def test_macrophage_depletion_removes_m1_and_m2(runs):
    """Clodronate liposomes every 3 days leave < 30 % of the M1 and of the M2 macrophages
    on days 10 and 15 (measured about 20 %: the liposomes are cleared within days and
    monocytes keep arriving, so tumour depletion is incomplete); Tregs stay within 5 %
    of untreated."""
    for column in ("macrophage_m1", "macrophage_m2"):
        assert (_ratio(runs, "macrophage_depletion", column) < 0.30).all(), column
    assert abs(_ratio(runs, "macrophage_depletion", "treg") - 1).max() < 0.05


def test_treg_depletion_is_partial_and_spares_helpers(runs):
    """Anti-CD25 removes Tregs partially, as PC61 does (Couper et al. 2007): 20-50 % of the
    untreated Tregs remain on days 10 and 15 (measured 35 % and 32 %), while CD4 helper
    cells stay within 5 % of untreated."""
    left = _ratio(runs, "treg_depletion", "treg")
    assert ((left > 0.2) & (left < 0.5)).all(), left
    assert abs(_ratio(runs, "treg_depletion", "cd4_helper") - 1).max() < 0.05


def test_depletions_are_not_treatments():
    """Depletions are experimental manipulations: the first treatment of a plan with only
    depletions is None, like a CD8 depletion."""
    for kind in DEPLETIONS:
        assert kind not in TREATMENT_KINDS
        assert _plan(kind).first_treatment_h is None


@pytest.mark.parametrize("kind", DEPLETIONS)
@pytest.mark.parametrize(
    ("dose", "message"),
    [
        ("0 mg/kg", "must be > 0 mg/kg and ≤ {limit} mg/kg"),
        ("-5 mg/kg", "must be > 0 mg/kg and ≤ {limit} mg/kg"),
        ("1e4 mg/kg", "must be > 0 mg/kg and ≤ {limit} mg/kg"),
        ("10", "needs a unit"),
        ("10 kA/m", "mg/kg"),
    ],
)
def test_bad_depletion_dose_is_refused_naming_the_field(kind, dose, message):
    """A zero, negative, absurd, unit-less or wrong-unit dose raises one ProtocolError
    naming ``<kind>[0].dose`` and the allowed range."""
    limit = f"{DRUG_DOSE_LIMITS[kind]:g}"
    with pytest.raises(ProtocolError) as err:
        getattr(mh.Protocol(duration="20 d"), kind)(time="3 d", dose=dose)
    text = str(err.value)
    assert text.startswith(f"{kind}[0].dose:"), text
    assert message.format(limit=limit) in text
    assert "\n" not in text


def test_depletion_from_toml_rejects_unknown_keys():
    """A TOML table of a depletion kind with an unknown key names the key and the allowed
    ones."""
    with pytest.raises(ProtocolError, match=r"nk_depletion\[0\]\.cells: unknown key"):
        mh.Protocol.from_dict(
            {"duration": "20 d", "nk_depletion": [{"time": "1 d", "dose": "1 mg/kg", "cells": 1}]}
        )
