"""Calibration uncertainty of a virtual trial: which fitted intervals apply to a preset,
and responder fractions re-run at each end of each interval."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from mhimmune.core.errors import ParameterError
from mhimmune.mh.presets import preset_overrides
from mhimmune.studies.fit_uncertainty import fit_uncertainty, intervals_for, load_fit_intervals


def test_shipped_intervals_hold_the_t_cell_fit_and_its_table_value():
    """The reference tables' effector burst is fitted (block 'T-cell response') to 15.69
    with an interval reaching 17.6 at the ends of the targets' ranges; the table holds it."""
    df = load_fit_intervals().set_index("block")
    row = df.loc["T-cell response"]
    assert row["parameter"] == "cd8_priming" and row["tumour"] == ""
    assert row["fitted"] == pytest.approx(15.69, abs=0.01)
    assert row["interval_high"] == pytest.approx(17.62, abs=0.01)
    assert row["table"] == pytest.approx(row["fitted"], rel=0.02)


def test_a_preset_gets_its_own_fits_and_the_tables_fits_it_keeps():
    """CT26 and 4T1 keep the table's effector burst (15.7), so its interval applies; 4T1
    adds its fitted growth rate; MC38 has its own effector burst (23.5, fitted without an
    interval), so only its growth-rate interval (0.209-0.379 /d) applies."""
    ct26 = intervals_for("ct26", preset_overrides("ct26"))
    assert list(ct26["parameter"]) == ["cd8_priming"]
    assert ct26.loc[0, "value"] == pytest.approx(15.7)
    t41 = intervals_for("4t1", preset_overrides("4t1"))
    assert sorted(t41["parameter"]) == ["cd8_priming", "tumour_growth_rate"]
    mc38 = intervals_for("mc38", preset_overrides("mc38")).set_index("parameter")
    assert list(mc38.index) == ["tumour_growth_rate"]
    assert mc38.loc["tumour_growth_rate", "low"] == pytest.approx(0.2088, abs=1e-3)
    assert mc38.loc["tumour_growth_rate", "high"] == pytest.approx(0.3795, abs=1e-3)


def test_a_spec_value_far_from_the_table_drops_the_tables_interval():
    assert intervals_for(None, {"cd8_priming": 30.0}).empty


class _Trial:
    def __init__(self, fractions):
        self.fractions = fractions

    def responder_table(self):
        return pd.DataFrame({"fraction": self.fractions})


def test_each_end_of_each_interval_reruns_the_trial_with_that_value_in_params_and_base():
    """A stand-in trial whose responder fraction is the effector burst / 100 (arm a) and
    its half (arm b): the table holds the nominal and both ends; the cohort's base holds
    the changed value, so animals vary around it (here with no spread)."""
    seen = []

    def run(cohort, params):
        seen.append((params, float(cohort["cd8_priming"].median())))
        k = params.get("cd8_priming", 20.0)
        return _Trial({"a": k / 100, "b": k / 200})

    intervals = pd.DataFrame(
        [{"parameter": "cd8_priming", "block": "x", "value": 20.0, "low": 10.0, "high": 30.0}]
    )
    variability = pd.DataFrame(
        {"distribution": ["lognormal"], "sigma": [0.0], "source": ["test"], "notes": [""]},
        index=pd.Index(["cd8_priming"], name="parameterId"),
    )
    res = fit_uncertainty(
        run,
        intervals,
        5,
        1,
        cohort_kwargs={"variability": variability, "base": {"cd8_priming": 20.0}},
    )
    t = res.table
    assert list(t.columns) == ["nominal", "cd8_priming@low", "cd8_priming@high", "min", "max"]
    assert t.loc["a"].tolist() == pytest.approx([0.2, 0.1, 0.3, 0.1, 0.3])
    assert t.loc["b"].tolist() == pytest.approx([0.1, 0.05, 0.15, 0.05, 0.15])
    assert seen == [({}, 20.0), ({"cd8_priming": 10.0}, 10.0), ({"cd8_priming": 30.0}, 30.0)]
    text = "\n".join(res.markdown())
    assert "| a | 20 % | 10 % | 30 % | 10–30 % |" in text
    assert "interval 10–30" in text
    assert res.finding("b") == (
        "Calibration uncertainty: at the ends of the fitted intervals (`cd8_priming`) b "
        "gives 5–15 % responders; the widest swing is a (10–30 %)."
    )
    assert res.finding("no_such_arm") is None


def test_no_interval_says_so_and_a_given_nominal_is_not_rerun():
    calls = []
    nominal = SimpleNamespace(responder_table=lambda: pd.DataFrame({"fraction": {"a": 0.3}}))
    res = fit_uncertainty(
        lambda c, p: calls.append(p),
        intervals_for(None, {"cd8_priming": 30.0}),
        4,
        0,
        nominal=nominal,
    )
    assert calls == [] and res.table.loc["a", "nominal"] == 0.3
    assert "No fitted parameter" in "\n".join(res.markdown())
    assert res.finding("a") is None
    assert math.isclose(res.table.loc["a", "max"], 0.3)


def test_bad_inputs_are_refused_with_the_field(tmp_path):
    with pytest.raises(ParameterError, match="n: 0"):
        fit_uncertainty(lambda c, p: None, pd.DataFrame(), 0, 0)
    with pytest.raises(ParameterError, match="no such file"):
        load_fit_intervals(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("block,parameter\nx,y\n")
    with pytest.raises(ParameterError, match="missing columns"):
        load_fit_intervals(bad)
