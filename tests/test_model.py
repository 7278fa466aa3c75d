"""Model composition, parameter table consistency, overrides and stand-alone links."""

import math

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.core.errors import ModelError, ParameterError
from mhimmune.core.params import ParameterTable


def test_every_model_parameter_has_exactly_one_row_and_vice_versa(model):
    table = ParameterTable.load()
    assert sorted(model.parameter_names) == sorted(table.names)
    assert len(set(table.names)) == len(table.names)


def test_every_row_has_a_source_and_assumed_rows_give_a_reason():
    df = ParameterTable.load().frame
    for name, src in df["source"].items():
        assert src.strip(), name
        if src.lower().startswith("assumed"):
            assert len(src) > len("assumed: ") + 10, f"{name}: 'assumed' needs a reason"


def test_model_size_and_links(model):
    size = model.size()
    assert size["species"] >= 40 and size["reactions"] >= 100 and size["parameters"] >= 100
    assert model.links == mh.DEFAULT_LINKS
    # every link of the chain provides its signals
    for sig in (
        "temperature_C",
        "hazard_icd_mid",
        "damp_signal",
        "pdl1_occupancy",
        "cd8_effectors_total",
    ):
        assert sig in model.signals


def test_boluses_are_the_compiled_dose_targets_in_order(model):
    """Model.boluses lists what exporters write: kind, species, scale, mode per dose."""
    c = model.compiled
    assert [b.kind for b in model.boluses] == list(c.bolus_kinds)
    assert [b.mode for b in model.boluses] == list(c.bolus_modes)
    assert len(c.bolus_species) == len(model.boluses) > 0


def test_override_converts_units_by_name(model):
    i = model.compiled.parameters.index("k_fenton")
    base = model.parameter_vector()
    assert base[i] == pytest.approx(63 * 3600 / 1e6, rel=1e-12)  # 1/M/s -> 1/uM/h
    p = model.parameter_vector({"k_fenton": 70})
    assert p[i] == pytest.approx(70 * 3600 / 1e6, rel=1e-12)
    p = model.parameter_vector({"k_fenton": "0.07 1/mM/s"})
    assert p[i] == pytest.approx(70 * 3600 / 1e6, rel=1e-12)
    changed = np.nonzero(p != base)[0]
    assert list(changed) == [i]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"k_fenton": -1}, r"k_fenton.*negative.*>= 0"),
        ({"icd_max_fraction": 1.5}, r"icd_max_fraction.*\[0, 1\]"),
        ({"k_fentom": 60}, r"k_fentom.*did you mean k_fenton"),
        (
            {"tumour_growth_rate": "2 mm"},
            r"tumour_growth_rate.*dimension|tumour_growth_rate.*convert",
        ),
        ({"ab_kd": float("nan")}, r"ab_kd.*(NaN|finite)"),
        ({"mh_sar_W_per_g": 100}, r"mh_sar_W_per_g: is a protocol input"),
        (
            {"body_temperature": "-300 degC"},
            r"body_temperature.*absolute zero|body_temperature.*-273",
        ),
    ],
)
def test_bad_parameter_overrides_are_errors(model, overrides, message):
    with pytest.raises(ParameterError, match=message):
        model.parameter_vector(overrides)


def test_unknown_link_is_a_clear_error():
    with pytest.raises(ModelError, match="unknown model link 'heatng'.*heating"):
        mh.load_model(links=["heatng"])


def test_link_without_its_inputs_is_a_clear_error():
    with pytest.raises(
        ModelError, match=r"link 'stress' reads signal '\w+', which no earlier link provides"
    ):
        mh.load_model(links=["stress"])


@pytest.fixture(scope="module")
def stress_alone():
    return mh.load_model(links=["stress"], standalone=True, verbose=False)


def test_stress_link_runs_alone_with_stub_inputs(stress_alone):
    assert "temperature_C_mid" in stress_alone.stubs
    res = mh.simulate(stress_alone, mh.Protocol("1 d"), {"temperature_C_mid": 43.0})
    # heat raises HSP70 within a day in the heated class, not in the others
    assert res["hsp70_relative_mid"].iloc[-1] > 1.05
    assert res["hsp70_relative_low"].iloc[-1] == pytest.approx(1.0, abs=1e-6)


def test_fenton_initiation_is_134_times_faster_at_43_than_37(stress_alone):
    """Arrhenius with Ea = 40 kJ/mol: k(43 °C)/k(37 °C) = exp(Ea/R (1/310.15 - 1/316.15)) ≈ 1.34."""
    plan = mh.Protocol("1 h")
    k = {
        T: mh.simulate(stress_alone, plan, {"temperature_C_mid": T})["k_fenton_T_mid"].iloc[0]
        for T in (37.0, 43.0)
    }
    ratio = k[43.0] / k[37.0]
    assert ratio == pytest.approx(
        math.exp(40e3 / 8.314462618 * (1 / 310.15 - 1 / 316.15)), rel=1e-9
    )
    assert ratio == pytest.approx(1.34, abs=0.01)
