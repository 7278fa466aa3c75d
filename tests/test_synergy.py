"""Bliss independence and highest-single-agent excess over dose and schedule grids."""

import numpy as np
import pandas as pd
import pytest

from mhimmune.core.errors import ParameterError
from mhimmune.studies import synergy as sy
from mhimmune.studies.cohort import sample_cohort


def test_bliss_excess_is_zero_for_independent_effects():
    """Bliss (1939): independent agents combine as 1 - (1 - E_A)(1 - E_B)."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 1000), rng.uniform(0, 1, 1000)
    ab = 1 - (1 - a) * (1 - b)
    np.testing.assert_allclose(sy.bliss_excess(a, b, ab), 0.0, atol=1e-15)
    assert float(sy.bliss_excess(0.5, 0.4, 0.7)) == pytest.approx(0.0, abs=1e-15)
    assert float(sy.bliss_excess(0.5, 0.4, 0.9)) == pytest.approx(0.2)
    assert float(sy.bliss_excess(0.5, 0.4, 0.5)) == pytest.approx(-0.2)


def test_hsa_excess_compares_with_the_better_single_agent():
    assert float(sy.hsa_excess(0.3, 0.6, 0.8)) == pytest.approx(0.2)
    assert float(sy.hsa_excess(0.3, 0.6, 0.6)) == pytest.approx(0.0)
    np.testing.assert_allclose(sy.hsa_excess([0.1, 0.5], [0.2, 0.4], [0.2, 0.3]), [0.0, -0.2])


def test_effects_above_one_are_rejected():
    with pytest.raises(ParameterError, match="e_ab: effects are fractions"):
        sy.bliss_excess(0.2, 0.2, 1.5)
    with pytest.raises(ParameterError, match="e_a: effects must be finite"):
        sy.hsa_excess(np.nan, 0.2, 0.5)


def independent_toy(values):
    """Tumour burden with independent action: each agent removes a fraction set by its own
    factors (MH by field, antibody by dose), multiplicatively; animals differ in a factor k."""
    k = values.get("tumour_growth_rate", 0.4) / 0.4
    f_mh = 0.0 if values["n_sessions"] == 0 else min(0.9, values["field_kA_per_m"] / 20 * k)
    f_ab = 0.0 if values["pdl1_count"] == 0 else values["pdl1_dose_mg_per_kg"] / 25
    total = 1000.0 * k * (1 - f_mh) * (1 - f_ab)
    return {"total_mm3": total, "cem43_total_min": values["field_kA_per_m"] * values["n_sessions"]}


def test_grid_bliss_excess_is_zero_when_the_agents_act_independently():
    cohort = sample_cohort(6, variability={"tumour_growth_rate": 0.3}, seed=4)
    res = sy.synergy_grid(
        ("field_kA_per_m", [5, 10, 15]),
        ("pdl1_dose_mg_per_kg", [2.5, 10, 20]),
        cohort=cohort,
        effect="inhibition",
        evaluator=independent_toy,
        progress=False,
    )
    t = res.table
    assert len(t) == 9 and (t["n_ok"] == 6).all()
    np.testing.assert_allclose(t["bliss_excess"], 0.0, atol=1e-12)
    # HSA excess is positive although nothing is synergistic: HSA is a weaker null
    assert (t["hsa_excess"] > 0).all()
    row = t[(t["field_kA_per_m"] == 10) & (t["pdl1_dose_mg_per_kg"] == 10)].iloc[0]
    assert row["e_b"] == pytest.approx(0.4)
    assert row["cem43_total_min"] == pytest.approx(30.0)  # toy: field × 3 sessions
    # 9 combinations + 3 MH-alone + 3 antibody-alone + 1 control schedules, each on 6 animals
    assert res.runs["schedule"].nunique() == 16 and len(res.runs) == 16 * 6


def test_grid_on_a_worker_pool_gives_the_serial_table():
    from mhimmune.runs.executor import WorkerPool

    kwargs = dict(
        x=("field_kA_per_m", [5, 15]),
        y=("pdl1_dose_mg_per_kg", [2.5, 20]),
        cohort=sample_cohort(3, variability={"tumour_growth_rate": 0.3}, seed=4),
        effect="inhibition",
        evaluator=independent_toy,
        progress=False,
    )
    serial = sy.synergy_grid(**kwargs)
    with WorkerPool(2) as pool:
        pooled = sy.synergy_grid(**kwargs, executor=pool)
        assert not pool.closed  # a given executor is used, not closed
    pd.testing.assert_frame_equal(serial.table, pooled.table)
    with pytest.raises(ParameterError, match="executor: expected an Executor"):
        sy.synergy_grid(**kwargs, executor="local")


def test_responder_synergy_is_one_when_only_the_combination_responds():
    def toy(values):
        both = values["n_sessions"] > 0 and values["pdl1_count"] > 0
        return {"total_mm3": 0.0 if both else 500.0, "cem43_total_min": 1.0}

    res = sy.synergy_grid(
        ("field_kA_per_m", [10, 15]), ("pdl1_delay_day", [0, 3]), evaluator=toy, progress=False
    )
    np.testing.assert_allclose(res.table["bliss_excess"], 1.0)
    np.testing.assert_allclose(res.table["hsa_excess"], 1.0)
    assert res.best()["bliss_excess"] == 1.0
    assert res.matrix("e_ab").shape == (2, 2)


def test_model_predicts_mh_and_anti_pdl1_synergise_at_high_field():
    """MH + anti-PD-L1 clears tumours that neither clears alone (model's default
    behaviour; cf. Kosinsky 2018: combinations 40–70 % vs monotherapies 0–27 % responders),
    so the Bliss excess of burden inhibition is large at the high field and full dose. At a
    field too low to heat (8 kA/m: CEM43 < 1 min) the sessions alone inhibit nothing
    (< 1 %), yet with the antibody the tumours clear too: the particles' own iron release
    and peroxidase-like activity (assumed rates) start lipid peroxidation and immunogenic
    death in the most loaded region, which the calibrated T-cell response then exploits, a
    model prediction that rests on assumed particle chemistry."""
    res = sy.synergy_grid(
        ("field_kA_per_m", [8, 15]),
        ("pdl1_dose_mg_per_kg", [10]),
        effect="inhibition",
        progress=False,
    )
    t = res.table.set_index("field_kA_per_m")
    assert t.loc[15, "e_ab"] > 0.99
    assert t.loc[15, "bliss_excess"] > 0.5
    assert t.loc[8, "e_a"] < 0.01 and t.loc[8, "e_ab"] > 0.99
    assert t.loc[8, "cem43_total_min"] < 1.0 < t.loc[15, "cem43_total_min"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=("field", [1]), y=("pdl1_dose_mg_per_kg", [1])), "not a protocol factor"),
        (dict(x=("field_kA_per_m", [10, 10]), y=("pdl1_dose_mg_per_kg", [1])), "distinct finite"),
        (dict(x=("field_kA_per_m", [10]), y=("field_kA_per_m", [12])), "different factors"),
        (
            dict(x=("field_kA_per_m", [10]), y=("pdl1_dose_mg_per_kg", [5]), effect="loewe"),
            "effect",
        ),
        (dict(x=("field_kA_per_m", [10]), y=("pdl1_dose_mg_per_kg", [5]), off_a={}), "off_a"),
    ],
)
def test_bad_grid_input_names_the_field(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        sy.synergy_grid(**kwargs, evaluator=independent_toy, progress=False)


def test_fixed_factors_apply_to_every_schedule_of_the_grid():
    seen = []

    def toy(values):
        seen.append((values["feedback"], values["n_sessions"], values["pdl1_count"]))
        return {"total_mm3": 100.0, "cem43_total_min": values["session_duration_min"]}

    res = sy.synergy_grid(
        ("session_duration_min", [10, 20]),
        ("pdl1_dose_mg_per_kg", [5]),
        fixed={"feedback": 1},
        evaluator=toy,
        progress=False,
    )
    assert {f for f, _, _ in seen} == {1.0}
    assert res.table["cem43_total_min"].tolist() == [10.0, 20.0]
    with pytest.raises(ParameterError, match="grid axes"):
        sy.synergy_grid(
            ("session_duration_min", [10]),
            ("pdl1_dose_mg_per_kg", [5]),
            fixed={"session_duration_min": 5},
            evaluator=toy,
            progress=False,
        )


def test_thermal_dose_axis_under_feedback_gives_cem43_proportional_to_session_length():
    """Feedback sessions at 43 °C (one session): CEM43 grows with the session length, so the
    session-length axis is a thermal-dose axis (Sapareto & Dewey 1984)."""
    from mhimmune.mh.template import ScheduleTemplate

    t = ScheduleTemplate("60 d", feedback=1, field="18 kA/m", n_sessions=1)
    res = sy.synergy_grid(
        ("session_duration_min", [15, 60]),
        ("pdl1_dose_mg_per_kg", [10]),
        template=t,
        effect="inhibition",
        progress=False,
    )
    cem = res.table.set_index("session_duration_min")["cem43_total_min"]
    assert 0.85 * 45 <= cem[60] - cem[15] <= 45


def test_early_inhibition_day_shows_mh_slowing_growth_before_capacity():
    """At the responder day MH alone has cleared the nominal mouse's heated tumour while its
    unheated distant tumour sits at capacity, so it inhibits the total by about half
    (0.49); one week after the first session it is still slowing both (0.78): the early
    day reads the larger effect, before capacity flattens the untreated arm."""
    late = sy.synergy_grid(
        ("field_kA_per_m", [15]), ("pdl1_dose_mg_per_kg", [10]), effect="inhibition", progress=False
    )
    early = sy.synergy_grid(
        ("field_kA_per_m", [15]),
        ("pdl1_dose_mg_per_kg", [10]),
        effect="inhibition",
        inhibition_day=7,
        progress=False,
    )
    assert late.table.loc[0, "e_a"] == pytest.approx(0.49, abs=0.05)
    assert early.table.loc[0, "e_a"] == pytest.approx(0.78, abs=0.05)
    with pytest.raises(ParameterError, match="only for effect='inhibition'"):
        sy.synergy_grid(
            ("field_kA_per_m", [15]),
            ("pdl1_dose_mg_per_kg", [10]),
            inhibition_day=7,
            evaluator=independent_toy,
            progress=False,
        )


def test_cohort_columns_that_are_grid_factors_are_rejected_not_overridden():
    """A cohort column named like a protocol factor would be silently replaced by the grid's
    schedule; it is an error instead (the cohort holds model parameters only)."""
    cohort = pd.DataFrame({"n_sessions": [1.0, 2.0]})
    with pytest.raises(ParameterError, match=r"columns \['n_sessions'\] are protocol factors"):
        sy.synergy_grid(
            ("field_kA_per_m", [10]),
            ("pdl1_dose_mg_per_kg", [5]),
            cohort=cohort,
            evaluator=independent_toy,
            progress=False,
        )
