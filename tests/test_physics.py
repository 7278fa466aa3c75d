"""Field, particle and bioheat formulas checked against the claims they come from."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import curve_fit, minimize_scalar

from mhimmune.core.errors import ParameterError
from mhimmune.mh import physics as ph

# Yan et al. [yan_mh_review], Table 2 (Fe3O4): rows with a measuring field
# (H kA/m, f kHz, SAR W/g, ILP nH m²/kg).
TABLE2_ROWS = [
    (15.0, 300.0, 168.0, 2.49),
    (37.3, 500.0, 450.0, 0.65),
    (24.5, 400.0, 180.0, 0.75),
    (24.5, 400.0, 447.0, 1.86),
    (27.0, 400.0, 367.0, 1.26),
    (27.0, 400.0, 332.0, 1.14),
    (27.0, 400.0, 267.0, 0.92),
    (27.0, 400.0, 930.0, 3.19),
    (27.0, 400.0, 686.0, 2.35),
    (27.0, 400.0, 535.0, 1.83),
]


# --------------------------------------------------------------------- ILP and SAR


@pytest.mark.parametrize(("field", "freq", "sar", "ilp_table"), TABLE2_ROWS)
def test_ilp_reproduces_seed_table2_within_1_percent(field, freq, sar, ilp_table):
    assert ph.ilp(sar, field, freq) == pytest.approx(ilp_table, rel=0.01)
    assert ph.sar_from_ilp(ph.ilp(sar, field, freq), field, freq) == pytest.approx(sar, rel=1e-12)


def test_fe3o4_10nm_ilp_is_2_49():
    """Fe3O4 10 nm: SAR 168 W/g at 15 kA/m and 300 kHz gives ILP ≈ 2.49 nH m²/kg."""
    assert ph.ilp(168, 15, 300) == pytest.approx(2.49, rel=0.01)


def test_ilp_arrays_broadcast():
    out = ph.ilp(np.array([168.0, 930.0]), np.array([15.0, 27.0]), np.array([300.0, 400.0]))
    np.testing.assert_allclose(out, [2.49, 3.19], rtol=0.01)


# ------------------------------------------------------------------- field safety


def test_hf_product_and_limits():
    assert ph.hf_product(15, 300) == pytest.approx(4.5e9)
    assert ph.BREZOVICH_LIMIT == 4.85e8
    assert ph.HERGT_LIMIT == 5e9
    assert ph.check_hf(4.85, 100) == "ok"  # exactly the Brezovich limit
    assert ph.check_hf(5, 100) == "above_brezovich"
    assert ph.check_hf(15, 300) == "above_brezovich"  # glioblastoma trials ran at 1.6-4.2e9
    assert ph.check_hf(24.5, 362) == "above_hergt"  # FVIO measuring field, 8.9e9
    assert list(ph.check_hf(np.array([1.0, 10.0, 30.0]), 400)) == [
        "ok",
        "above_brezovich",
        "above_hergt",
    ]


# --------------------------------------------------------------------- thermal dose


def test_cem43_constant_histories():
    """Sapareto & Dewey: 43 °C 30 min = 30 CEM43; 44 °C 10 min = 20; 42 °C 60 min = 15."""
    assert ph.cem43([0, 30], [43, 43]) == pytest.approx(30.0)
    assert ph.cem43([0, 10], [44, 44]) == pytest.approx(20.0)
    assert ph.cem43([0, 60], [42, 42]) == pytest.approx(15.0)
    assert ph.cem43([0, 60], [42, 42], method="trapezoid") == pytest.approx(15.0)


def test_cem43_stepped_history():
    """Steps are repeated times: 30 min at 43 °C, 10 min at 44 °C, 60 min at 42 °C = 65 CEM43."""
    t = [0, 30, 30, 40, 40, 100]
    temp = [43, 43, 44, 44, 42, 42]
    assert ph.cem43(t, temp) == pytest.approx(65.0)
    assert ph.cem43(t, temp, method="trapezoid") == pytest.approx(65.0)
    np.testing.assert_allclose(ph.cem43(t, temp, cumulative=True), [0, 30, 30, 50, 50, 65])


def test_cem43_ramp_is_integrated_exactly():
    """A 37→43 °C ramp over 60 min: ∫ 0.25^(6 − t/10) dt = 10/ln 4 · (1 − 0.25⁶)."""
    exact = 10 / math.log(4) * (1 - 0.25**6)
    assert ph.cem43([0, 60], [37, 43]) == pytest.approx(exact, rel=1e-12)
    # a ramp crossing 43 °C: 41→45 °C over 4 min, split at 43 °C
    crossing = (1 - 0.25**2) / math.log(4) + (2**2 - 1) / math.log(2)
    assert ph.cem43([0, 4], [41, 45]) == pytest.approx(crossing, rel=1e-12)
    # the trapezoid rule converges to the same value on fine sampling
    t = np.linspace(0, 4, 2001)
    assert ph.cem43(t, 41 + t, method="trapezoid") == pytest.approx(crossing, rel=1e-5)


def test_cem43_rate():
    np.testing.assert_allclose(ph.cem43_rate([41, 42, 43, 44, 45]), [1 / 16, 1 / 4, 1, 2, 4])


def test_arrhenius_damage_constant_and_doubling():
    """Ea = 578 kJ/mol doubles the damage rate per °C above 43 °C, as CEM43 does (R = 0.5)."""
    ea, a = 5.78e5, 1e95
    omega43 = ph.arrhenius_damage([0, 600], [43, 43], ea, a)
    assert omega43 == pytest.approx(600 * a * math.exp(-ea / (ph.R_GAS * 316.15)), rel=1e-12)
    omega44 = ph.arrhenius_damage([0, 600], [44, 44], ea, a)
    assert omega44 / omega43 == pytest.approx(2.0, rel=0.01)
    # substeps integrate a ramp more accurately
    fine = ph.arrhenius_damage(np.linspace(0, 600, 3001), np.linspace(40, 46, 3001), ea, a)
    coarse = ph.arrhenius_damage([0, 600], [40, 46], ea, a, substeps=200)
    assert coarse == pytest.approx(fine, rel=1e-4)
    cum = ph.arrhenius_damage([0, 300, 600], [43, 43, 43], ea, a, cumulative=True)
    assert cum[-1] == pytest.approx(omega43) and cum[0] == 0


# ---------------------------------------------------------------- Rosensweig (2002)


def test_relaxation_times_magnetite():
    """19 nm magnetite, K = 13 kJ/m³, 2 nm shell, water at 37 °C: τ_N ≈ 15 µs, τ_B ≈ 3 µs."""
    tau_n = ph.neel_time(19, 13)
    tau_b = ph.brown_time(23)
    assert 1e-5 < tau_n < 2e-5
    assert 2.5e-6 < tau_b < 3.5e-6
    assert ph.effective_time(19) == pytest.approx(1 / (1 / tau_n + 1 / tau_b))
    assert ph.effective_time(19, immobilised=True) == pytest.approx(tau_n)
    assert ph.neel_time(19, 13, form="arrhenius") > tau_n  # e^Γ vs (√π/2) e^Γ/√Γ, Γ ≈ 11
    assert math.isinf(ph.neel_time(200, 13))  # blocked: e^Γ overflows to inf
    assert ph.effective_time(200) == pytest.approx(ph.brown_time(204))


def test_loss_per_cycle_peaks_at_omega_tau_one():
    """χ'' ∝ ωτ/(1 + ω²τ²): the loss per cycle (SLP/f) of a given particle peaks at ωτ = 1 (±1 %)."""
    tau = ph.neel_time(15, 13)
    res = minimize_scalar(
        lambda lf: -ph.rosensweig_slp(15, 0.5, 10**lf, immobilised=True) / 10**lf,
        bounds=(-2, 5),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert 2 * math.pi * 10**res.x * 1e3 * tau == pytest.approx(1.0, rel=0.01)


def _optimum_diameter(k, immobilised=True, field=0.5, freq=300.0):
    res = minimize_scalar(
        lambda d: (
            -ph.rosensweig_slp(d, field, freq, anisotropy_kJ_per_m3=k, immobilised=immobilised)
        ),
        bounds=(4, 30),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return res.x


def test_size_optimum_sits_near_omega_tau_one():
    """SLP(D) ∝ V ωτ/(1 + ω²τ²) peaks at ωτ_N = √((Γ + ½)/(Γ − 3/2)) ≈ 1.15 (within 20 % of 1)."""
    d = _optimum_diameter(13)
    wt = 2 * math.pi * 300e3 * ph.neel_time(d, 13)
    gamma = 13e3 * math.pi * (d * 1e-9) ** 3 / 6 / (ph.K_B * 310.15)
    assert wt == pytest.approx(1.0, rel=0.2)
    assert wt == pytest.approx(math.sqrt((gamma + 0.5) / (gamma - 1.5)), rel=0.01)


def test_optimum_diameter_grows_as_anisotropy_falls():
    """Néel-relaxing (immobilised) magnetite at 300 kHz: lower K needs a larger core (≈ 17 nm at 13 kJ/m³).

    Free particles add a Brownian loss that keeps rising with size until ξ saturates, so their
    global optimum is not a Néel peak; the ordering is checked on immobilised particles.
    """
    ks = [50, 23, 13, 9]
    diam = [_optimum_diameter(k) for k in ks]
    assert all(a < b for a, b in zip(diam, diam[1:], strict=False))
    assert 15 < diam[2] < 19


def test_immobilised_loses_no_more_than_free_once_neel_is_slow():
    """Immobilisation removes the Brownian path: where ωτ_N ≥ 1 the loss can only fall.

    Where ωτ_N < 1 the extra (Brownian) channel shortens τ away from 1/ω, so free particles
    lose slightly less (at most 8 % here); the loss is then Néel-dominated either way.
    """
    d = np.linspace(5, 30, 126)
    free = ph.rosensweig_slp(d, 0.5, 300)
    fixed = ph.rosensweig_slp(d, 0.5, 300, immobilised=True)
    slow = 2 * math.pi * 300e3 * ph.neel_time(d, 13) >= 1
    assert np.all(fixed[slow] <= free[slow])
    assert np.all(fixed[~slow] <= free[~slow] * 1.09)
    assert free[-1] > 100 * fixed[-1]  # 30 nm: Néel blocked, Brownian heats


def test_rosensweig_magnitude_and_basis():
    """19 nm magnetite at 15 kA/m, 300 kHz: a few hundred W/g (Table 2 measures 168-930 W/g)."""
    with pytest.warns(ph.LinearResponseWarning, match="ξ"):
        per_magnetite = ph.rosensweig_slp(19, 15, 300)
    assert 100 < per_magnetite < 1000
    with pytest.warns(ph.LinearResponseWarning):
        per_fe = ph.rosensweig_slp(19, 15, 300, basis="fe")
    assert per_fe == pytest.approx(per_magnetite / ph.FE_MASS_FRACTION_MAGNETITE)
    assert ph.FE_MASS_FRACTION_MAGNETITE == pytest.approx(0.7236, abs=1e-4)


def test_linear_response_scales_as_h_squared():
    low = ph.rosensweig_slp(12, 0.1, 300)
    assert ph.rosensweig_slp(12, 0.2, 300) == pytest.approx(4 * low, rel=1e-3)


def test_polydisperse_limit_and_broadening():
    """σ → 0 recovers the monodisperse loss; a broad distribution lowers the peak loss."""
    mono = ph.rosensweig_slp(16.8, 0.5, 300, immobilised=True)
    assert ph.rosensweig_slp(16.8, 0.5, 300, immobilised=True, sigma=1e-4) == pytest.approx(
        mono, rel=1e-4
    )
    assert ph.rosensweig_slp(16.8, 0.5, 300, immobilised=True, sigma=0.0) == mono
    broad = ph.rosensweig_slp(16.8, 0.5, 300, immobilised=True, sigma=0.25)
    assert broad < 0.9 * mono
    arr = ph.rosensweig_slp(np.array([10.0, 16.8]), 0.5, 300, immobilised=True, sigma=0.25)
    assert arr[1] == pytest.approx(broad)


def test_warnings_outside_linear_response():
    with pytest.warns(ph.LinearResponseWarning, match="ξ"):
        ph.rosensweig_slp(19, 15, 300)
    # K = 5 kJ/m³: H_K = 2K/(μ0 Ms) ≈ 17.8 kA/m; 10 kA/m > H_K/2 while ξ(8 nm) ≈ 0.35 < 1
    with pytest.warns(ph.LinearResponseWarning, match="H_K") as record:
        ph.rosensweig_slp(8, 10, 300, anisotropy_kJ_per_m3=5)
    assert all("ξ" not in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ph.rosensweig_slp(12, 1, 300)  # inside the range: silent


# -------------------------------------------------------------------- Pennes bioheat


def test_sphere_steady_state_zero_perfusion_closed_form():
    """Without perfusion θ = Q(3R² − r²)/(6k) inside and QR³/(3kr) outside."""
    q, r_big, k = 1e5, 0.01, 0.5
    r = np.array([0.0, 0.005, 0.01, 0.02])
    np.testing.assert_allclose(
        ph.sphere_steady_state(r, r_big, q, k, 0.0), [10.0, 55 / 6, 20 / 3, 10 / 3], rtol=1e-12
    )


def test_sphere_steady_state_tends_to_its_perfusion_free_limit():
    r = np.linspace(0, 0.04, 81)
    limit = ph.sphere_steady_state(r, 0.01, 1e5, 0.5, 0.0)
    np.testing.assert_allclose(ph.sphere_steady_state(r, 0.01, 1e5, 0.5, 1e-10), limit, rtol=1e-6)
    # the approach is O(mR): the series branch (mR < 0.1) and the direct branch agree
    for w in (1e-4, 1e-2, 10.0, 2014.0):
        theta = ph.sphere_steady_state(r, 0.01, 1e5, 0.5, w)
        assert np.all(theta <= limit + 1e-12) and np.all(np.diff(theta) <= 1e-12)
    w_switch = 0.5 * (0.1 / 0.01) ** 2  # mR = 0.1 exactly
    below = ph.sphere_steady_state(r, 0.01, 1e5, 0.5, w_switch * (1 - 1e-9))
    above = ph.sphere_steady_state(r, 0.01, 1e5, 0.5, w_switch * (1 + 1e-9))
    np.testing.assert_allclose(below, above, rtol=1e-7)


def test_sphere_steady_state_continuity_and_large_tumour_limit():
    q, r_big, k, w = 1e5, 0.01, 0.5, 2014.0
    eps = 1e-9
    inside, outside = ph.sphere_steady_state([r_big - eps, r_big + eps], r_big, q, k, w)
    assert inside == pytest.approx(outside, rel=1e-6)
    # a tumour much larger than 1/m reaches Q/W at its centre
    assert ph.sphere_steady_state(0.0, 0.5, q, k, w) == pytest.approx(q / w, rel=1e-6)


@pytest.mark.parametrize("w", [ph.TUMOUR_PERFUSION_W_PER_M3_K, 200.0, 0.0])
def test_radial_solver_reaches_closed_form_steady_state_within_1_percent(w):
    duration, dt = (4 * 3600.0, 10.0) if w > 1000 else (4e6, 2e4)
    res = ph.radial_pennes(0.01, 1e5, duration, perfusion=w, dt_s=dt)
    exact = ph.sphere_steady_state(res.r_m, 0.01, 1e5, 0.5, w)
    theta = res.temperature_C[-1] - 37.0
    assert res.temperature_C.shape == (res.t_s.size, res.r_m.size)
    assert res.t_s[-1] == pytest.approx(duration)
    np.testing.assert_allclose(theta, exact, atol=0.01 * exact[0])


def test_radial_solver_temperature_dependent_perfusion():
    """Perfusion that rises above 41 °C lowers the plateau; a constant callable equals the constant."""
    const = ph.radial_pennes(0.01, 1e5, 1800.0, perfusion=2014.0)
    same = ph.radial_pennes(0.01, 1e5, 1800.0, perfusion=lambda temp, r: np.full_like(temp, 2014.0))
    np.testing.assert_allclose(same.temperature_C, const.temperature_C, rtol=1e-10)
    rising = ph.radial_pennes(
        0.01, 1e5, 1800.0, perfusion=lambda temp, r: np.where(temp > 41.0, 3 * 2014.0, 2014.0)
    )
    assert rising.temperature_C[-1, 0] < const.temperature_C[-1, 0] - 0.5


def test_radial_solver_field_switched_off_cools_back():
    res = ph.radial_pennes(0.01, lambda t: 1e5 if t <= 1800 else 0.0, 7200.0, save_every=10)
    peak = res.temperature_C[:, 0].max()
    assert peak > 40.0
    assert res.temperature_C[-1, 0] < 37.0 + 0.2 * (peak - 37.0)


def test_lumped_time_constant_equals_rho_c_over_w_plus_g():
    rho, c, w, g = 1050.0, 3600.0, ph.TUMOUR_PERFUSION_W_PER_M3_K, 500.0
    tau = ph.lumped_time_constant(rho, c, w, g)
    assert tau == pytest.approx(rho * c / (w + g))
    t = np.linspace(0, 4 * tau, 200)
    temp = ph.lumped_tumour_temperature(t, 2e4, w_perfusion_W_per_m3_K=w, g_conduction_W_per_m3_K=g)
    (amp, tau_fit), _ = curve_fit(
        lambda t, a, s: a * (1 - np.exp(-t / s)), t, temp - 37.0, p0=(5.0, 1000.0)
    )
    assert tau_fit == pytest.approx(tau, rel=0.01)
    assert amp == pytest.approx(2e4 / (w + g), rel=0.01)


def test_lumped_piecewise_heating_is_continuous_and_cools():
    tau = ph.lumped_time_constant(1050, 3600, 2014)
    bp = [0.0, 1800.0]
    t = np.array([0.0, 1800.0 - 1e-6, 1800.0, 1800.0 + tau, 1e6])
    temp = ph.lumped_tumour_temperature(t, [2e4, 0.0], breakpoints_s=bp)
    assert temp[1] == pytest.approx(temp[2], abs=1e-6)
    assert temp[3] - 37 == pytest.approx((temp[2] - 37) * math.exp(-1), rel=1e-9)
    assert temp[-1] == pytest.approx(37.0)
    # without losses the temperature rises linearly: Q t/(ρc)
    assert ph.lumped_tumour_temperature(100.0, 3.78e4, w_perfusion_W_per_m3_K=0.0) == pytest.approx(
        38.0
    )


def test_sphere_conduction_coefficient_matches_volume_mean():
    """G = 5k/(2R²) makes the lumped plateau equal the volume mean 2QR²/(5k) of the heated sphere."""
    q, r_big, k = 1e5, 0.01, 0.5
    g = ph.sphere_conduction_coefficient(r_big, k)
    r = np.linspace(0, r_big, 20001)
    mean = np.trapezoid(ph.sphere_steady_state(r, r_big, q, k, 0.0) * r**2, r) / (r_big**3 / 3)
    plateau = ph.lumped_tumour_temperature(
        1e9, q, w_perfusion_W_per_m3_K=0.0, g_conduction_W_per_m3_K=g
    )
    assert plateau - 37 == pytest.approx(mean, rel=1e-6)


def test_perfusion_coefficient():
    assert ph.perfusion_coefficient(5e-4) == pytest.approx(2014.0)
    assert ph.TUMOUR_PERFUSION_W_PER_M3_K == pytest.approx(2014.0)


# ----------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ph.ilp(168, 15, 0), "freq_kHz"),
        (lambda: ph.ilp(168, -15, 300), "field_kA_per_m"),
        (lambda: ph.ilp(-1, 15, 300), "sar_w_per_g"),
        (lambda: ph.sar_from_ilp(2.49, -1, 300), "field_kA_per_m"),
        (lambda: ph.hf_product(15, 0), "freq_kHz"),
        (lambda: ph.check_hf(-1, 100), "field_kA_per_m"),
        (lambda: ph.neel_time(-5, 13), "diameter_nm"),
        (lambda: ph.neel_time(10, 0), "anisotropy_kJ_per_m3"),
        (lambda: ph.brown_time(0), "hydrodynamic_diameter_nm"),
        (lambda: ph.rosensweig_slp(-19, 15, 300), "diameter_nm"),
        (lambda: ph.rosensweig_slp(19, -15, 300), "field_kA_per_m"),
        (lambda: ph.rosensweig_slp(19, 15, 0), "freq_kHz"),
        (lambda: ph.rosensweig_slp(19, 1, 300, shell_nm=-1), "shell_nm"),
        (lambda: ph.rosensweig_slp(19, 1, 300, sigma=-0.1), "sigma"),
        (lambda: ph.rosensweig_slp(19, 1, 300, viscosity_Pa_s=0), "viscosity_Pa_s"),
        (lambda: ph.rosensweig_slp(19, 1, 300, basis="mg"), "basis"),
        (lambda: ph.cem43([0, 10, 5], [43, 43, 43]), "time_min"),
        (lambda: ph.cem43([0, 10], [43]), "temperature_C"),
        (lambda: ph.cem43([0, 10], [43, 43], method="simpson"), "method"),
        (lambda: ph.arrhenius_damage([0, 10], [43, 43], 0, 1e90), "ea_J_per_mol"),
        (lambda: ph.lumped_time_constant(1050, 3600, 0, 0), "w_perfusion_W_per_m3_K"),
        (
            lambda: ph.lumped_tumour_temperature([0, 1], [1e4, 0], breakpoints_s=[5, 10]),
            "breakpoints_s",
        ),
        (lambda: ph.lumped_tumour_temperature([-1], 1e4), "time_s"),
        (lambda: ph.sphere_steady_state(0, -0.01, 1e5), "radius_m"),
        (lambda: ph.sphere_steady_state(0, 0.01, 1e5, 0.5, -1), "w_w_per_m3_K"),
        (lambda: ph.radial_pennes(0.01, 1e5, 0), "duration_s"),
        (lambda: ph.radial_pennes(0.01, 1e5, 10, n_r=3), "n_r"),
        (lambda: ph.radial_pennes(0.01, 1e5, 10, r_max_factor=1), "r_max_factor"),
        (lambda: ph.radial_pennes(0.01, 1e5, 10, perfusion=lambda temp, r: -temp), "perfusion"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, name):
    with pytest.raises(ParameterError, match=name) as info:
        call()
    assert isinstance(info.value, ValueError)


def test_error_message_gives_the_allowed_range():
    with pytest.raises(ValueError, match=r"diameter_nm: must be > 0 nm, got -5"):
        ph.neel_time(-5, 13)
