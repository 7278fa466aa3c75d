"""Hypothesis reports: ranking with mechanistic reasons, spec validation, the CLI."""

import pandas as pd
import pytest

from mhimmune.cli import main
from mhimmune.core.errors import ParameterError
from mhimmune.core.resources import resource_dir
from mhimmune.runs.executor import SerialExecutor
from mhimmune.studies import hypotheses as hy

CONTROL = pd.Series(
    {
        "cem43_total_min": 0.0,
        "damp_d1": 1.1,
        "mature_dc_d7": 0.057,
        "cd8_effectors_d7": 1.3,
        "pdl1_occupancy_d7": 0.0,
        "m1_m2_d7": 0.14,
        "treg_fraction_d7": 0.16,
    }
)


def test_reason_names_the_links_that_move_in_chain_order():
    combo = pd.Series(
        {
            "cem43_total_min": 82.0,
            "damp_d1": 14.2,
            "mature_dc_d7": 0.77,
            "cd8_effectors_d7": 74.0,
            "pdl1_occupancy_d7": 0.96,
            "m1_m2_d7": 1.5,
            "treg_fraction_d7": 0.017,
        }
    )
    text = hy.mechanistic_reason(combo, CONTROL)
    parts = text.split("; ")
    assert parts[0] == "more heat (CEM43 82 vs 0 min)"
    assert parts[1] == "more immunogenic cell death (DAMPs at +1 d ×12.9)"
    assert parts[2] == "more mature DCs (+7 d: 0.77 vs 0.06)"
    assert parts[3] == "more CD8 effectors (+7 d ×56.9)"
    assert parts[4] == "PD-L1 blocked (occupancy 0.96 vs 0.00)"
    assert parts[5] == "M1 shift of macrophages (M1/M2 ×10.7)"
    assert parts[6] == "fewer Tregs (÷9.4)"


def test_reason_names_decreases_too():
    """A one-week antibody delay vs the concurrent combination: fewer mature DCs and CD8
    effectors, PD-L1 not yet blocked at +7 d (model readouts of the virtual trial)."""
    combo = pd.Series(
        {
            "cem43_total_min": 83.0,
            "damp_d1": 18.0,
            "mature_dc_d7": 0.68,
            "cd8_effectors_d7": 70.0,
            "pdl1_occupancy_d7": 0.96,
            "m1_m2_d7": 0.97,
            "treg_fraction_d7": 0.022,
        }
    )
    late = pd.Series(
        {
            "cem43_total_min": 83.0,
            "damp_d1": 18.0,
            "mature_dc_d7": 0.23,
            "cd8_effectors_d7": 20.0,
            "pdl1_occupancy_d7": 0.0,
            "m1_m2_d7": 0.33,
            "treg_fraction_d7": 0.038,
        }
    )
    assert hy.mechanistic_reason(late, combo) == (
        "fewer mature DCs (+7 d: 0.23 vs 0.68); fewer CD8 effectors (+7 d ÷3.5); "
        "PD-L1 not blocked (occupancy 0.00 vs 0.96); M2 shift of macrophages (M1/M2 ÷2.9); "
        "more Tregs (×1.7)"
    )


def test_reason_ignores_changes_below_the_thresholds():
    """Changes under 1.5-fold (or 5 min CEM43, 0.3 occupancy) are not reasons."""
    near = CONTROL * 1.4
    near["cem43_total_min"] = 4.0
    near["pdl1_occupancy_d7"] = 0.25
    assert hy.mechanistic_reason(near, CONTROL) == "no link differs"


def test_spec_errors_name_the_key(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown keys \['cohrot'\]"):
        hy.load_hypothesis_spec({"cohrot": {}})
    with pytest.raises(ParameterError, match=r"synergy\[0\] lacks \['y', 'y_values'\]"):
        hy.load_hypothesis_spec({"synergy": [{"x": "field_kA_per_m", "x_values": [1]}]})
    with pytest.raises(ParameterError, match="optimize.objective"):
        hy.load_hypothesis_spec(
            {"optimize": {"space": {"n_sessions": [1, 2]}, "objective": "cure"}}
        )
    with pytest.raises(ParameterError, match=r"\[optimize.space\]"):
        hy.load_hypothesis_spec({"optimize": {"space": {}}})
    with pytest.raises(ParameterError, match="fit_uncertainty must be true or false"):
        hy.load_hypothesis_spec({"fit_uncertainty": "yes"})
    bad = tmp_path / "bad.toml"
    bad.write_text("title = \n")
    assert main(["hypotheses", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_shipped_spec_is_valid():
    spec = hy.load_hypothesis_spec(resource_dir("specs") / "mh_pdl1.toml")
    assert spec["cohort"]["n"] == 40
    assert {s["name"] for s in spec["synergy"]} == {"dose", "thermal_dose", "schedule"}


SMALL = {
    "title": "small",
    "template": {"duration": "60 d"},
    "cohort": {"n": 8, "seed": 3},
    "trial": {
        "arms": ["control", "mh", "anti_pdl1", "mh+anti_pdl1"],
        "custom_arms": [{"name": "late", "factors": {"pdl1_delay_day": 7}}],
    },
    "synergy": [
        {
            "name": "dose",
            "x": "field_kA_per_m",
            "x_values": [8, 15],
            "y": "pdl1_dose_mg_per_kg",
            "y_values": [10],
        }
    ],
    "optimize": {
        "space": {"pdl1_delay_day": [0, 7]},
        "n_boot": 20,
        "constraints": {"max_total_antibody_mg_per_kg": 30},
    },
}


def test_report_ranks_the_combination_first_with_its_mechanistic_reason(tmp_path):
    """The model's default behaviour (8 animals per arm): MH + anti-PD-L1 (concurrent)
    cures most (measured 7/8) where anti-PD-L1 alone cures none and MH alone at most a
    quarter (measured 2/8); a one-week antibody delay cures no more (measured 7/8 here;
    82 % against 95 % in the shipped 40-animal CT26 report; Kosinsky 2018, Dovedi 2014:
    concurrent beats sequential), ranks below, and the reason says its PD-L1 is not
    blocked a week after the first session; the reason names CD8 priming and PD-L1
    blockade relative to MH alone and DC maturation relative to control (a week after
    the first session both MH arms still hold most node DCs mature, since mature DCs
    reach the draining node a day after maturing: 0.87 vs 0.67 at +7 d, under the
    1.5-fold a reason asks for)."""
    rep = hy.run_hypotheses(SMALL, tmp_path, quick=False, progress=False)
    r = rep.ranking.set_index("arm")
    assert r.loc["mh+anti_pdl1", "responders"] >= 0.75
    assert r.loc["mh", "responders"] <= 0.25 and r.loc["anti_pdl1", "responders"] == 0
    assert r.loc["late", "responders"] <= r.loc["mh+anti_pdl1", "responders"]
    assert "PD-L1 not blocked" in r.loc["late", "reason_vs_combination"]
    assert r.loc["mh+anti_pdl1", "rank"] < r.loc["late", "rank"]
    assert rep.optimization.best == {"pdl1_delay_day": 0.0}
    assert r.loc["mh+anti_pdl1", "best_single"] == "mh"
    why = r.loc["mh+anti_pdl1", "reason_vs_best_single"]
    assert "more CD8 effectors" in why and "PD-L1 blocked" in why
    assert "more mature DCs" in r.loc["mh+anti_pdl1", "reason_vs_control"]
    text = (tmp_path / "report.md").read_text()
    assert "Model predictions, not measurements" in text
    assert "| 1 |" in text and "kaplan_meier.png" in text and "synergy_dose.png" in text
    for name in (
        "kaplan_meier.png",
        "tumour_volumes.png",
        "optimisation.png",
        "synergy_dose.png",
        "ranking.csv",
        "trial/animals.csv",
        "trial/responders.csv",
        "fit_uncertainty.csv",
    ):
        assert (tmp_path / name).is_file(), name
    # the reference tables' fitted effector burst re-run at the ends of its interval
    fit = rep.fit_uncertainty.table
    assert list(fit.columns) == ["nominal", "cd8_priming@low", "cd8_priming@high", "min", "max"]
    assert fit.loc["mh+anti_pdl1", "nominal"] == r.loc["mh+anti_pdl1", "responders"]
    assert "### Calibration uncertainty" in text
    assert "- Calibration uncertainty: at the ends of the fitted intervals (`cd8_priming`)" in text
    assert rep.synergy["dose"].table.set_index("field_kA_per_m").loc[15, "bliss_excess"] > 0.5


def test_a_failing_spec_leaves_no_report(tmp_path):
    spec = dict(
        SMALL,
        synergy=[{"x": "field", "x_values": [8], "y": "pdl1_dose_mg_per_kg", "y_values": [10]}],
    )
    spec.pop("optimize")
    executor = Recording()
    with pytest.raises(ParameterError, match="not a protocol factor"):
        hy.run_hypotheses(spec, tmp_path, quick=True, executor=executor, progress=False)
    assert not (tmp_path / "report.md").exists()
    # the trial ran on the given executor, which the failure left open
    assert executor.batches >= 1 and executor.closes == 0


class Recording(SerialExecutor):
    """A serial executor that counts its batches and close calls."""

    def __init__(self):
        self.batches = 0
        self.closes = 0

    def results(self, tasks):
        self.batches += 1
        yield from super().results(tasks)

    def close(self):
        self.closes += 1


def test_run_hypotheses_builds_its_executor_from_the_spec_and_closes_it(tmp_path, monkeypatch):
    made = []

    def recording_make_executor(n_jobs=1, client=None, pool=None):
        made.append((n_jobs, Recording()))
        return made[-1][1]

    monkeypatch.setattr(hy, "make_executor", recording_make_executor)
    spec = {k: v for k, v in SMALL.items() if k != "optimize"}
    spec.update(run={"n_jobs": 3}, trial={"arms": ["nope"]})
    with pytest.raises(ParameterError, match="'nope' is not a standard arm"):
        hy.run_hypotheses(spec, tmp_path, quick=True, progress=False)
    assert [n for n, _ in made] == [3] and made[0][1].closes == 1  # closed on the error too
    with pytest.raises(ParameterError, match="executor: expected an Executor"):
        hy.run_hypotheses(spec, tmp_path, quick=True, executor=3, progress=False)


def test_cli_hypotheses_quick_writes_the_report(tmp_path, capsys):
    spec = resource_dir("specs") / "mh_pdl1.toml"
    assert (
        main(["hypotheses", str(spec), "--out", str(tmp_path), "--quick", "--quiet", "--jobs", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "report.md" in out and "hypothesis-generating" in out
    assert (tmp_path / "report.md").stat().st_size > 2000


def test_spec_tumour_and_host_presets_reach_cohort_params_and_report(tmp_path):
    """A spec naming ``tumour = "mc38"`` runs with the MC38 preset (growth rate 0.252 /d,
    fitted to its doubling time) and says so in the report's set-up; an unknown preset is
    refused naming the known ones; a non-text preset is refused naming the key."""
    from mhimmune.mh.presets import preset_overrides

    mc38 = preset_overrides("mc38")
    spec = {
        **SMALL,
        "tumour": "mc38",
        "trial": {"arms": ["control", "mh"]},
    }
    spec.pop("synergy", None)
    spec.pop("optimize", None)
    rep = hy.run_hypotheses(spec, tmp_path, quick=True, progress=False)
    text = (tmp_path / "report.md").read_text()
    assert "Tumour line `mc38`, host `mouse`" in text
    assert rep is not None
    with pytest.raises(ParameterError, match="mc38|known"):
        hy.run_hypotheses({**spec, "tumour": "no_such_line"}, tmp_path / "x", quick=True)
    with pytest.raises(ParameterError, match="tumour must be a preset name"):
        hy.run_hypotheses({**spec, "tumour": 3}, tmp_path / "y", quick=True)
    assert mc38["tumour_growth_rate"] == pytest.approx(0.252, rel=1e-3)


class _TieTrial:
    """A stand-in trial: three arms with every animal responding; two cured arms whose
    median burden is integration residue (1e-17 and 1e-15 mm³) and one with 0.5 mm³."""

    arm_names = ["control", "a_residue_big", "b_residue_small", "c_real"]

    def __init__(self):
        from types import SimpleNamespace

        self.arms = [SimpleNamespace(name=a, description=a) for a in self.arm_names]

    def responder_table(self):
        rows = {a: dict(fraction=1.0, ci_low=0.9, ci_high=1.0, n_ok=40, responders=40,
                        median_time_to_event_day=float("inf")) for a in self.arm_names}  # fmt: skip
        rows["control"].update(fraction=0.0, responders=0, median_time_to_event_day=10.0)
        return pd.DataFrame.from_dict(rows, orient="index")

    def mechanisms(self):
        return pd.DataFrame(index=self.arm_names)

    def logrank(self):
        return pd.DataFrame({"group_a": self.arm_names[1:], "p_adjusted": [1e-9] * 3})

    def successful(self):
        burden = {"control": 900.0, "a_residue_big": 1e-15, "b_residue_small": 1e-17,
                  "c_real": 0.5}  # fmt: skip
        return pd.DataFrame(
            {"arm": list(burden), "total_at_responder_day_mm3": list(burden.values())}
        )


def test_rank_arms_ties_arms_whose_median_burden_is_below_one_cell():
    """Among arms with equal responders and times, a median burden under one tumour cell
    (1e-6 mm³: the residue of a cured tumour, below the solver's tolerance) does not order
    them: the two residue arms keep the spec's order, ahead of the arm with 0.5 mm³ left."""
    from mhimmune.studies.hypothesis_report import rank_arms

    ranking = rank_arms(_TieTrial())
    assert list(ranking["arm"]) == ["a_residue_big", "b_residue_small", "c_real"]
    assert list(ranking["rank"]) == [1, 2, 3]
    assert ranking.set_index("arm").loc["c_real", "median_total_at_responder_day_mm3"] == 0.5
