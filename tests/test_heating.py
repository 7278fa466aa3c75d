"""Heating link in the full model: session modes, dose units, SAR method, heterogeneity."""

import math
import warnings

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.mh.agents import Agent
from mhimmune.mh.field_safety import HfWarning


def _plan(**kw):
    args = dict(
        start="1 d",
        duration="60 min",
        field="20 kA/m",
        frequency="200 kHz",
        agent="fe3o4_19nm_mpeg",
        dose="4 mg/cm^3",
    )
    args.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        return mh.Protocol("3 d").mh_session(**args)


def test_feedback_session_holds_target_within_half_a_degree(model):
    """Feedback control to 43 °C (field capped at 20 kA/m): once the target is reached the
    mean tumour temperature stays within 0.5 °C of it for the rest of the session."""
    res = mh.simulate(model, _plan(target="43 degC"), session_output_step="10 s")
    w = res.wide
    during = w.loc[1.0 : 1.0 + 1 / 24]
    reached = during.index[during["temperature_C"] >= 42.5][0]
    held = during.loc[reached:, "temperature_C"]
    assert np.all(np.abs(held - 43.0) < 0.5)
    s = res.sessions().iloc[0]
    assert s["mode"] == "feedback" and s["target_C"] == 43.0
    # the controller turned the field down below its cap
    assert s["mean_field_kA_per_m"] < 0.95 * s["field_kA_per_m"]


def test_fixed_field_overshoots_where_feedback_holds(model):
    fixed = mh.simulate(model, _plan()).sessions().iloc[0]
    controlled = mh.simulate(model, _plan(target="43 degC")).sessions().iloc[0]
    assert fixed["peak_temperature_C"] > 44.0
    assert controlled["peak_temperature_C"] == pytest.approx(43.0, abs=0.5)
    assert controlled["cem43_min"] < fixed["cem43_min"]


def test_mg_per_kg_dose_with_uptake_gives_tumour_concentration(model):
    """50 mg/kg with 30 % uptake in a 20 g mouse: 0.3 mg Fe in a 250 mm³ region = 1.2 mg/cm³."""
    res = mh.simulate(model, _plan(dose="50 mg/kg", uptake=0.3))
    assert res["ParticleFe"].loc[1.0] == pytest.approx(50 * 0.3 * 0.02 / 0.25, rel=1e-12)


def test_session_reports_sar_at_its_field_scaled_by_ilp(model):
    s = mh.simulate(model, _plan()).sessions().iloc[0]
    assert s["sar_method"] == "ilp"
    assert s["sar_W_per_g"] == pytest.approx(3.19e-9 * (20e3) ** 2 * 200e3 / 1e3, rel=1e-9)
    assert s["hf_A_per_m_s"] == pytest.approx(4e9)


def test_rosensweig_used_when_agent_has_size_and_anisotropy_but_no_ilp():
    agent = Agent(
        name="custom",
        description="",
        ilp_nH_m2_per_kg=math.nan,
        sar_w_per_g=math.nan,
        field_kA_per_m=math.nan,
        freq_kHz=math.nan,
        source="test",
        core_nm=14.0,
        anisotropy_kJ_per_m3=13.0,
        shell_nm=2.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sar, method = agent.heating_at(0.5, 300.0)
        sar2, _ = agent.heating_at(1.0, 300.0)
    assert method == "rosensweig" and sar > 0
    assert sar2 == pytest.approx(4 * sar, rel=0.02)  # ∝ H² at low field (linear response)


def test_poorly_loaded_regions_stay_cooler_but_are_warmed_by_their_neighbours(model):
    """Regional heterogeneity with conduction between regions: the low-load class heats
    less than the mean, the high-load more, each by θ_k = θ (load_k + ξ)/(1 + ξ) with
    ξ = (k/L_x²)/(W + G) (1e-9 relative); exchange narrows the spread against load alone."""
    w = mh.simulate(model, _plan()).wide.loc[1.0 : 1.0 + 1 / 24]
    peak = {c: w[f"temperature_C_{c}"].max() for c in ("low", "mid", "high")}
    assert peak["low"] < w["temperature_C"].max() < peak["high"]
    rise = w["temperature_C"].max() - 37
    par = model.parameters()["internal_value"]
    sigma = par["particle_load_sigma"]
    xi = w["region_exchange_ratio"].iloc[-1]
    k, length = par["tissue_conductivity"], par["region_exchange_length"] * 1e-3
    assert xi == pytest.approx(k / length**2 / w["heat_loss_W_per_m3_K"].iloc[-1], rel=1e-9)
    load_high = math.exp(sigma * math.sqrt(3) - sigma**2 / 2)
    assert peak["high"] - 37 == pytest.approx(rise * (load_high + xi) / (1 + xi), rel=1e-9)
    assert peak["high"] - 37 < rise * load_high


def test_steady_temperature_map_matches_the_full_model(model):
    """The closed-form steady state of the heating link equals the simulated plateau (0.5 %)."""
    from mhimmune.mh.heating import steady_temperature, temperature_map

    expected = steady_temperature("fe3o4_19nm_mpeg", 4.0, 20.0, 200.0)
    res = mh.simulate(model, _plan(duration="60 min"))
    plateau = res.wide.loc[1.0 + 0.9 / 24 : 1.0 + 1 / 24, "temperature_C"].max()
    assert float(expected) == pytest.approx(plateau, rel=0.005)
    table = temperature_map(["fe3o4_19nm_mpeg", "fe3o4_10nm"], 4.0, [5, 10, 20], [100, 300])
    assert len(table) == 12
    row = table[(table.field_kA_per_m == 20) & (table.freq_kHz == 300)].iloc[0]
    assert row["safety"] == "above_hergt" and row["hf_A_per_m_s"] == pytest.approx(6e9)
    assert table.groupby("agent")["steady_temperature_C"].max().gt(37).all()


def test_steady_temperature_rejects_bad_dose():
    from mhimmune.mh.heating import steady_temperature

    with pytest.raises(ValueError, match="dose_mg_per_cm3: must be > 0"):
        steady_temperature("fe3o4_10nm", -1, 10, 100)
