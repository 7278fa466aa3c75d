"""Experiment designs of virtual trials: one- or two-tumour mice, the distant tumour
inoculated on a chosen day, responder rules per tumour, rechallenge of cured animals,
assay-named readouts, caliper noise and seed stability."""

import math

import numpy as np
import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.mh import catalogue
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.readouts import ASSAY_RATIOS, assay_readouts
from mhimmune.studies import cohort as co
from mhimmune.studies import hypotheses as hy
from mhimmune.studies.hypothesis_spec import trial_options
from mhimmune.studies.seed_stability import seed_stability
from mhimmune.studies.trial_design import ResponderRule
from mhimmune.studies.trial_options import (
    DistantTumour,
    Rechallenge,
    caliper_noise,
    distant_inputs,
)

from .conftest import load_protocol

ARMS = ["control", "mh", "mh+anti_pdl1"]


@pytest.fixture(scope="module")
def cohort():
    return co.sample_cohort(3, seed=1)


@pytest.fixture(scope="module")
def two_tumours(cohort):
    return co.run_trial(ARMS, cohort, progress=False)


@pytest.fixture(scope="module")
def one_tumour(cohort):
    return co.run_trial(
        ARMS, cohort, progress=False, distant=None, responder=ResponderRule(site="treated")
    )


@pytest.fixture(scope="module")
def late_distant_rechallenged(cohort):
    return co.run_trial(
        ARMS,
        cohort,
        progress=False,
        distant=DistantTumour(day=3, volume_mm3=1.0),
        rechallenge=Rechallenge(day=60),
    )


def test_responder_rule_site_defaults_to_total_and_rejects_unknown_sites():
    assert ResponderRule().site == "total"
    with pytest.raises(ParameterError, match=r"^responder\.site: must be one of treated, distant"):
        ResponderRule(site="primary")


def test_default_trial_keeps_two_day0_tumours_and_totals_are_site_sums(two_tumours):
    """Default design: the total the rule reads is treated + distant (to 1e-9 mm³); per-site
    fractions are reported and the total one is the rule's."""
    a = two_tumours.successful()
    assert np.allclose(
        a["total_at_responder_day_mm3"],
        a["treated_at_responder_day_mm3"] + a["distant_at_responder_day_mm3"],
        atol=1e-9,
    )
    assert (a["distant_at_start_mm3"] > 10).all()  # the day-0 distant tumour has grown by day 7
    rt = two_tumours.responder_table()
    assert rt["fraction"].tolist() == rt["fraction_total"].tolist()
    assert rt.loc["mh+anti_pdl1", "fraction_total"] == 1.0
    assert rt.loc["control", "fraction_treated"] == 0.0


def test_one_tumour_mice_have_no_distant_tumour(one_tumour):
    """distant=None: the distant site stays empty (≤ 1e-9 mm³ at every recorded time), its
    responder fraction is undefined (NaN), and the rule reads the treated tumour."""
    for arr in one_tumour.site_volumes["distant"].values():
        assert np.nanmax(np.abs(arr)) <= 1e-9
    rt = one_tumour.responder_table()
    assert rt["fraction_distant"].isna().all()
    assert rt["fraction"].tolist() == rt["fraction_treated"].tolist()
    assert "treated tumour ≤ 10 mm³" in one_tumour.summary()


def test_a_distant_rule_needs_a_distant_tumour(cohort):
    with pytest.raises(ParameterError, match=r"^responder\.site: 'distant' needs a distant"):
        co.run_trial(
            ["control", "mh"],
            cohort,
            progress=False,
            distant=None,
            responder=ResponderRule(site="distant"),
        )


def test_late_distant_tumour_is_absent_before_its_day_and_implanted_on_it(
    late_distant_rechallenged,
):
    """A 1 mm³ distant implant on day 3: 0 mm³ on days 0–2.5; in untreated animals it
    grows from ~1 mm³ (0.5–3 mm³ half a day later) to 2–10 mm³ by day 7 (measured
    3.9–5.1 mm³: four days at r ≈ 0.4 /d)."""
    tr = late_distant_rechallenged
    t = tr.time_day
    d = tr.site_volumes["distant"]["control"]
    assert np.nanmax(np.abs(d[:, t < 3])) <= 1e-9
    assert np.all((d[:, t == 3.5] > 0.5) & (d[:, t == 3.5] < 3.0))
    start = tr.successful("control")["distant_at_start_mm3"]
    assert ((start > 2) & (start < 10)).all()


def test_cured_animals_reject_a_rechallenge(late_distant_rechallenged):
    """Rechallenge (1 mm³ on day 60, read on day 90): every animal cured by MH +
    anti-PD-L1 (3/3) rejects it (Ito et al. 2003: cured mice reject a rechallenge);
    untreated animals are not cured and are not counted."""
    rc = late_distant_rechallenged.rechallenge_table()
    assert rc.loc["mh+anti_pdl1", "cured"] == 3 and rc.loc["mh+anti_pdl1", "rejected"] == 3
    assert rc.loc["mh+anti_pdl1", "fraction_rejected"] == 1.0
    assert rc.loc["mh+anti_pdl1", "ci_low"] == pytest.approx(0.439, abs=0.001)  # Wilson 3/3
    assert rc.loc["control", "cured"] == 0 and math.isnan(rc.loc["control", "fraction_rejected"])
    assert late_distant_rechallenged.time_day[-1] == pytest.approx(90.0)


def test_rechallenge_before_the_responder_day_is_refused(cohort):
    with pytest.raises(ParameterError, match=r"^rechallenge\.day: 30 is before the responder day"):
        co.run_trial(["control", "mh"], cohort, progress=False, rechallenge=Rechallenge(day=30))
    with pytest.raises(ParameterError, match=r"^rechallenge\.volume_mm3: must be a finite"):
        Rechallenge(day=60, volume_mm3=-1)
    with pytest.raises(ParameterError, match=r"^distant\.day: must be a finite number ≥ 0"):
        DistantTumour(day=-1)


def test_caliper_noise_is_lognormal_with_the_given_cv():
    """CV 0.15: 200 000 draws of 100 mm³ have CV 0.150 ± 0.003, median 100 ± 0.2; 0 stays 0."""
    rng = np.random.default_rng(4)
    x = caliper_noise(np.full(200_000, 100.0), 0.15, rng)
    assert x.std() / x.mean() == pytest.approx(0.15, abs=0.003)
    assert np.median(x) == pytest.approx(100.0, abs=0.2)
    assert caliper_noise(np.zeros(3), 0.15, rng).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ParameterError, match=r"^caliper_cv: must be a finite number ≥ 0"):
        caliper_noise(np.ones(2), -0.1, rng)


def test_trial_with_caliper_noise_perturbs_recorded_volumes_only(cohort, two_tumours):
    """Caliper CV 0.15 on the same animals: the log-ratio of noisy to exact volumes at the
    responder day of growing tumours has a spread near σ = 0.149 (0.03–0.4 with 3 arms ×
    3 animals × 2 sites), the mechanistic readouts are unchanged (rel 1e-9)."""
    noisy = co.run_trial(ARMS, cohort, progress=False, caliper_cv=0.15, caliper_seed=3)
    a, b = two_tumours.successful(), noisy.successful()
    cols = ["treated_at_responder_day_mm3", "distant_at_responder_day_mm3"]
    exact, measured = a[cols].to_numpy(float).ravel(), b[cols].to_numpy(float).ravel()
    grown = exact > 1.0
    assert grown.sum() >= 4
    spread = np.std(np.log(measured[grown] / exact[grown]))
    assert 0.03 < spread < 0.4
    assert np.allclose(a["cem43_total_min"], b["cem43_total_min"], rtol=1e-9)
    assert noisy.caliper_cv == 0.15


def test_assay_percentages_match_the_model_fractions():
    """At day 14 of MH + anti-PD-L1: CD8 % of CD45+ = 100 × ctl_infiltration_treated,
    Treg % of CD4+ = 100 × treg_fraction, mature DC % = 100 × mature_dc_fraction (each to
    rel 1e-6), M1 % = 100 · r/(1 + r) of the M1/M2 ratio r; the readout language gives
    the same number (rel 1e-6), and so do ``summary()`` and an ensemble's default
    readouts (``<assay>_day14``)."""
    model = mh.load_model(verbose=False)
    plan = load_protocol("mh_plus_pdl1")
    res = mh.simulate(model, plan)
    pct = assay_readouts(res, 14.0)
    w = res.wide
    at = {c: float(np.interp(14.0, w.index.values, w[c].values)) for c in w.columns}
    assert pct["cd8_pct_of_cd45_treated"] == pytest.approx(
        100 * at["ctl_infiltration_treated"], rel=1e-6
    )
    assert pct["treg_pct_of_cd4"] == pytest.approx(100 * at["treg_fraction"], rel=1e-6)
    assert pct["mature_dc_pct_of_dc"] == pytest.approx(100 * at["mature_dc_fraction"], rel=1e-6)
    m1 = at["macrophage_m1"] / (at["macrophage_m1"] + at["macrophage_m2"])
    assert pct["m1_pct_of_macrophages"] == pytest.approx(100 * m1, rel=1e-6)
    assert 0 < pct["m1_pct_of_macrophages"] < 100
    # the single-run tolerances of mh.simulate, not the looser ensemble defaults
    ev = ModelEvaluator(
        plan,
        [f"{name}@14" for name in ASSAY_RATIOS],
        simulate_options={"rtol": 1e-6, "atol": 1e-9},
    )
    out = ev({})
    for name in ASSAY_RATIOS:
        assert out[f"{name}@14"] == pytest.approx(pct[name], rel=1e-6), name
    # summary() carries the same percentages, named <assay>_day14
    summary = res.summary()
    for name in ASSAY_RATIOS:
        assert summary[f"{name}_day14"] == pytest.approx(pct[name], rel=1e-9), name
    # and an ensemble with the default readouts computes them from arrays alike
    default = ModelEvaluator(plan, simulate_options={"rtol": 1e-6, "atol": 1e-9})({})
    for name in ASSAY_RATIOS:
        assert default[f"{name}_day14"] == pytest.approx(pct[name], rel=1e-6), name


def test_assay_names_parse_as_ratio_readouts():
    r = catalogue.parse_readout("treg_pct_of_cd4@+7")
    assert r.variables == ("treg",) and r.denominator[0] == "treg" and r.scale == 100.0
    assert r.relative and r.day == 7.0
    assert catalogue.parse_readout("max:m1_pct_of_macrophages").kind == "max"


class _FakeTrial:
    def __init__(self, fractions, n):
        self.rt = pd.DataFrame(
            {
                "responders": [round(f * n) for f in fractions.values()],
                "n_ok": n,
                "fraction": [round(f * n) / n for f in fractions.values()],
            },
            index=pd.Index(list(fractions), name="arm"),
        )

    def responder_table(self):
        return self.rt


def test_seed_stability_reports_mean_range_and_wilson_interval():
    """Arm 'a' responds in 2, 4, 6 of 10 animals over three seeds: mean 0.4, range 0.2–0.6,
    Wilson 95 % interval of 4/10 = 0.168–0.687."""
    per_seed = iter([0.2, 0.4, 0.6])

    def run(cohort):
        return _FakeTrial({"a": next(per_seed), "b": 1.0}, len(cohort))

    st = seed_stability(run, 3, [10])
    row = st.table.set_index("arm").loc["a"]
    assert row["mean"] == pytest.approx(0.4) and row["min"] == 0.2 and row["max"] == 0.6
    assert row["wilson_low"] == pytest.approx(0.168, abs=0.001)
    assert row["wilson_high"] == pytest.approx(0.687, abs=0.001)
    assert st.table.set_index("arm").loc["b", "max"] == 1.0
    assert "range 20–60 %" in st.summary()
    with pytest.raises(ParameterError, match=r"^sizes: cohort sizes must be integers ≥ 1"):
        seed_stability(run, 2, [0])


def test_spec_trial_options_and_their_errors():
    opts = trial_options(
        {"distant": {"day": 5, "volume_mm3": 2}, "rechallenge_day": 60, "caliper_cv": 0.15}
    )
    assert opts["distant"] == DistantTumour(day=5, volume_mm3=2)
    assert opts["rechallenge"] == Rechallenge(day=60)
    assert opts["caliper_cv"] == 0.15 and opts["caliper_seed"] == 0
    assert trial_options({"distant": "none"})["distant"] is None
    with pytest.raises(ParameterError, match=r"trial\.distant: \"none\", \"day0\" or a table"):
        trial_options({"distant": "left"})
    with pytest.raises(ParameterError, match=r"\[trial\]: unknown keys \['rechalenge_day'\]"):
        hy.load_hypothesis_spec({"trial": {"rechalenge_day": 60}})


def test_report_states_site_design_and_seed_stability(tmp_path):
    """A quick report of one-tumour mice with a treated-tumour rule: the set-up names the
    site and the mice, the report has per-site responders and a seed-stability table
    (2 seeds of 4 animals)."""
    spec = {
        "title": "one tumour",
        "cohort": {"n": 3, "seed": 2},
        "responder": {"site": "treated"},
        "trial": {"arms": ["control", "mh+anti_pdl1"], "distant": "none"},
        "stability": {"seeds": 2, "sizes": [4]},
    }
    rep = hy.run_hypotheses(spec, tmp_path, quick=True, progress=False)
    text = (tmp_path / "report.md").read_text()
    assert "Responder: treated tumour ≤ 10 mm³" in text and 'site = "treated"' in text
    assert "one-tumour mice (no distant tumour)" in text
    assert "### Responders by tumour" in text and "### Seed stability" in text
    t = rep.stability.table.set_index("arm")
    assert t.loc["mh+anti_pdl1", "n_seeds"] == 2 and t.loc["mh+anti_pdl1", "size"] == 4
    assert t.loc["control", "max"] == 0.0
    assert (tmp_path / "seed_stability.csv").is_file()


def test_distant_inputs_remove_the_day0_distant_tumour_for_other_designs():
    """The day-0 default leaves cohort and parameters alone; one-tumour mice get
    tumour_initial_distant = 0 (parameter and cohort column) and no implant; a day-5
    inoculation of 2 mm³ is one implant (5, 2)."""
    cohort = co.sample_cohort(2, seed=0)
    same, params, implants = distant_inputs(DistantTumour(), cohort, {"a": 1})
    assert same is cohort and params == {"a": 1} and implants == []
    none, params, implants = distant_inputs(None, cohort, {})
    assert params["tumour_initial_distant"] == 0.0 and implants == []
    assert (none["tumour_initial_distant"] == 0.0).all()
    assert (cohort["tumour_initial_distant"] > 0).all()  # the caller's cohort is not changed
    _, _, implants = distant_inputs(DistantTumour(day=5, volume_mm3=2), cohort, {})
    assert implants == [(5.0, 2.0)]


def test_saved_tables_have_each_tumour_and_the_rechallenge(late_distant_rechallenged, tmp_path):
    """volumes.csv.gz has treated_mm3 + distant_mm3 = total_mm3 (rel 1e-5, 6 digits
    written); responders.csv the per-site fractions; rechallenge.csv 3/3 rejections."""
    paths = late_distant_rechallenged.save(tmp_path)
    vol = pd.read_csv(paths["volumes"])
    np.testing.assert_allclose(
        vol["treated_mm3"] + vol["distant_mm3"], vol["total_mm3"], rtol=1e-5, atol=1e-9
    )
    resp = pd.read_csv(paths["responders"]).set_index("arm")
    assert {"fraction_treated", "fraction_distant", "fraction_total"} <= set(resp.columns)
    rc = pd.read_csv(paths["rechallenge"]).set_index("arm")
    assert rc.loc["mh+anti_pdl1", "rejected"] == 3
