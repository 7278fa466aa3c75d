"""MH (with or without a checkpoint antibody) experiments of the validation suite: growth
inhibition of the heated and the distant tumour, complete regressions of a cohort."""

import pytest

from mhimmune.core.errors import ParameterError
from mhimmune.studies import validation  # noqa: F401  (registers the experiments)
from mhimmune.studies.validation_combinations import (
    mh_complete_fraction,
    mh_first_day,
    mh_inhibition,
    mh_rechallenge_rejection,
)
from mhimmune.studies.validation_experiments import EXPERIMENTS


def test_mh_experiments_are_registered():
    assert {"mh_complete_fraction", "mh_inhibition", "mh_rechallenge_rejection"} <= set(EXPERIMENTS)


def test_no_treatment_inhibits_nothing():
    """Neither a session (target 0) nor an antibody: the arm is the untreated mouse."""
    assert mh_inhibition("ct26", target_C=0.0) == pytest.approx(0.0, abs=1e-12)


def test_one_session_inhibits_the_heated_tumour_more_than_the_distant_one():
    """One 30-min session at 43 °C on a 100 mm³ CT26 tumour: the heated tumour is 66 %
    smaller 14 days later, the unheated distant one 49 % (abscopal); anti-PD-L1 from the
    session on clears the distant tumour (inhibition 1)."""
    treated = mh_inhibition("ct26", 43.0, 30.0)
    distant = mh_inhibition("ct26", 43.0, 30.0, site="distant")
    combined = mh_inhibition("ct26", 43.0, 30.0, antibody="pdl1", site="distant")
    assert treated == pytest.approx(0.658, abs=0.01)
    assert distant == pytest.approx(0.488, abs=0.01)
    assert combined == pytest.approx(1.0, abs=0.01)


def test_first_session_is_on_the_day_the_tumour_reaches_the_start_volume():
    """CT26 grows from the model's 30 mm³ on day 0 at a net ~0.33 /d: 100 mm³ on day
    ln(100/30) / 0.33 = 3.6; 200 mm³ about ln 2 / 0.32 = 2.2 days later."""
    day100 = mh_first_day("ct26", 100.0)
    assert day100 == pytest.approx(3.6, abs=0.3)
    assert mh_first_day("ct26", 200.0) - day100 == pytest.approx(2.2, abs=0.4)


def test_hotter_sessions_regress_more_tumours():
    """Complete regressions of 8 one-tumour CT26 mice 30 days after one 30-min session:
    none at 41 °C, at least 7 of 8 at 46 °C."""
    cool = mh_complete_fraction("ct26", 41.0, 30.0, animals=8)
    hot = mh_complete_fraction("ct26", 46.0, 30.0, animals=8)
    assert cool == pytest.approx(0.0, abs=1e-12)
    assert hot >= 7 / 8


def test_regressions_at_a_low_endpoint_count_as_culled():
    """With the humane endpoint just above the start volume, every mouse whose tumours
    grow on first is culled: no regressions of both tumours after MH alone at 43 °C."""
    kw = dict(animals=6, distant=True, readout="both")
    assert mh_complete_fraction("ct26", 43.0, 30.0, endpoint_mm3=101.0, **kw) == 0.0


def test_most_mh_cured_b16_mice_reject_a_rechallenge():
    """Of 12 B16-F10 mice given two 30-min sessions at 46 °C, 10 of the 11 cured reject
    10⁶ cells implanted 30 days after the first session (memory)."""
    assert mh_rechallenge_rejection("b16f10", animals=12) == pytest.approx(10 / 11, abs=1e-9)


def test_mh_cures_of_b16_need_t_cells():
    """In nude mice (no T cells) the same sessions cure none of 12 B16-F10 tumours: heat
    leaves survivors in the least-loaded regions, which only T cells clear; with no cured
    mouse the rejection fraction is refused as undefined."""
    with pytest.raises(ParameterError, match="no mouse of 12 cured"):
        mh_rechallenge_rejection("b16f10", animals=12, host="nude")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mh_complete_fraction("ct26", readout="lungs"), "readout"),
        (lambda: mh_complete_fraction("ct26", readout="both"), "distant=True"),
        (lambda: mh_complete_fraction("ct26", endpoint_mm3=50.0), "endpoint_mm3"),
        (lambda: mh_complete_fraction("ct26", follow_days=0.0), "follow_days"),
        (lambda: mh_inhibition("ct26", site="lungs"), "site"),
        (lambda: mh_inhibition("ct26", antibody="pdx"), "antibody"),
        (lambda: mh_inhibition("ct26", sessions=0), "sessions"),
        (lambda: mh_inhibition("ct26", days_after=-1.0), "days_after"),
        (lambda: mh_inhibition("ct26", antibody="pdl1", antibody_delay_d=-30.0), "delay"),
        (lambda: mh_first_day("ct26", -5.0), "start_volume"),
        (lambda: mh_first_day("ct26", 1e6), "start_volume"),
        (lambda: mh_rechallenge_rejection("b16f10", cells=10.0), "cells"),
        (lambda: mh_rechallenge_rejection("b16f10", follow_days=0.0), "follow_days"),
    ],
)
def test_bad_arguments_are_refused_with_the_field(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
