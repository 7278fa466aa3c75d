"""Heating: alternating field + particles -> tumour temperature -> thermal dose (CEM43).

Lumped (0-D) Pennes bioheat balance for the particle-loaded region of the treated
tumour (Pennes 1948 [pennes1948])::

    rho c dθ/dt = u(t) Q - (W + G) θ,      θ = T - T_body (volume mean)
    Q = SAR(H, f) · c_Fe                   (W/m³; SAR in W/g, particle iron in mg/cm³)
    W = ω_b ρ_b c_b                        (perfusion)
    G = s_cond k / R²                      (conduction to surrounding tissue)

G is the conductance that gives the volume-mean steady temperature of a uniformly
heated sphere without perfusion, θ_mean = 2QR²/(5k), so s_cond = 2.5; R is the radius
of the particle-loaded region, a sphere of fixed volume (particles stay where they
were injected while tumour cells die and regrow around them). The session's SAR at
its field comes from the agent catalogue (an input set by the engine).

Session modes: with fixed field u = 1. With feedback control to a target temperature
(clinical thermometry) the power fraction is u = σ((T_target - T)/δ), a proportional
thermostat with a narrow band δ around the target; the session's field is then the
cap (itself capped by the H·f safety limit) and the effective field is H·√u.

Regional heterogeneity: particle concentration varies between regions (log-normal,
width σ_load), and regions exchange heat by conduction over the distance L_x between
particle deposits (conductance G_x = k/L_x²). At quasi-steady state (the exchange time
ρc L_x²/k is seconds to a minute, short against a session) the rise of region k is

    θ_k = θ (load_k + ξ) / (1 + ξ),      ξ = G_x / (W + G)

so poorly loaded regions are heated by their neighbours: without exchange (ξ = 0) they
would stay at θ·load_k. The mean of θ_k over the regions is θ.

Thermostat: feedback sessions measure and control the volume-mean temperature of the
heated region (a probe averaged over the region); the regions' temperatures follow it by
the relation above. With the band δ the controller holds the mean within δ·|logit(u*)| of
the target, u* being the power fraction the steady state needs (within 0.1 K for
0.05 < u* < 0.95 at δ = 0.03 K).

Thermal dose: CEM43 accumulates R^(43 - T) minutes per minute (Sapareto & Dewey
1984; R = 0.5 at T ≥ 43 °C, 0.25 below), counted in excess of body temperature so
that an unheated tumour accrues none. It is kept for the mean temperature, for each
region, and for T90, the temperature that 90 % of the heated region exceeds (the 10th
percentile of the log-normal load), as clinical reports give it (CEM43T90). Each class's
rate is provided for its heat-kill hazard.

Particle iron: a session tops the tumour's particle iron up to the session dose (given in
mg/cm³, or in mg/kg times the uptake fraction, spread over the heated region);
particles dissolve slowly in lysosomes, releasing iron (read by the stress link).
"""

import math

import sympy
from pysb import Expression, Monomer, Observable, Rule

from mhimmune.core.modelkit import bolus, input_param, par, present, provide, signal
from mhimmune.mh.cell_classes import CELL_CLASSES, class_load

READS = {"body_weight": ("kg", 0.02)}
#: standard-normal 10th percentile (T90 is the temperature at the 10th percentile of load)
Z_P10 = -1.2815515655446004
PROVIDES = {
    "temperature_C": "degC",
    "particle_iron_mg_per_cm3": "mg/cm^3",
    "cem43_rate": "1",
    "particle_dissolution_rate": "1/h",
    "particle_load_sigma": "1",
    **{f"temperature_C_{c}": "degC" for c in CELL_CLASSES},
    **{f"cem43_rate_{c}": "1" for c in CELL_CLASSES},
}


def cem43_excess_rate(temperature, t_body):
    """Sapareto-Dewey CEM43 rate (min per min) in excess of the rate at body temperature."""
    return sympy.Piecewise(
        (sympy.Rational(1, 2) ** (43 - temperature), temperature >= 43),
        (sympy.Rational(1, 4) ** (43 - temperature), True),
    ) - sympy.Rational(1, 4) ** (43 - t_body)


def declare():
    theta = Monomer("Theta")  # mean temperature rise above body temperature, K
    cem = Monomer("CEM43")  # cumulative equivalent minutes at 43 °C (mean temperature)
    npfe = Monomer("ParticleFe")  # particle iron in the treated tumour, mg Fe / cm³

    sar = input_param("mh_sar_W_per_g", "W/g")
    input_param("mh_field_kA_per_m", "kA/m")
    input_param("mh_freq_kHz", "kHz")
    target = input_param("mh_target_C", "degC")
    control = input_param("mh_feedback", "1")

    t_body = par("body_temperature", "degC")
    rho = par("tissue_density", "kg/m^3")
    c = par("tissue_heat_capacity", "J/kg/K")
    k = par("tissue_conductivity", "W/m/K")
    w_b = par("tumour_perfusion", "1/s")
    rho_b = par("blood_density", "kg/m^3")
    c_b = par("blood_heat_capacity", "J/kg/K")
    s_cond = par("conduction_shape_factor", "1")
    heated_volume = par("heated_region_volume", "mm^3")
    k_diss = par("particle_dissolution_rate", "1/h")
    band = par("thermostat_band", "delta_degC")
    sigma = par("particle_load_sigma", "1")
    exchange_length = par("region_exchange_length", "mm")
    cem_t90 = Monomer("CEM43T90")  # CEM43 of the temperature 90 % of the region exceeds
    cem_cls = {cls: Monomer(f"CEM43_{cls}") for cls in CELL_CLASSES}

    for m in (theta, cem, npfe, cem_t90, *cem_cls.values()):
        present(m())
    theta_obs = Observable("temperature_rise", theta())
    np_obs = Observable("particle_iron_mg_per_cm3", npfe())
    Observable("cem43_min", cem())
    temperature = Expression("temperature_C", t_body + theta_obs)

    # radius of the heated sphere in m (volume in mm³ -> m³ is 1e-9)
    radius_sq = Expression(
        "heated_radius_sq", (3 * heated_volume * 1e-9 / (4 * math.pi)) ** sympy.Rational(2, 3)
    )
    conductance = Expression("heat_loss_W_per_m3_K", w_b * rho_b * c_b + s_cond * k / radius_sq)
    power = Expression(
        "heating_power_fraction",
        # logistic σ(x) = (1 + tanh(x/2))/2, written with tanh so it cannot overflow
        1 - control + control * (1 + sympy.tanh((target - temperature) / (2 * band))) / 2,
    )
    # W/g · mg/cm³ = 1e3 W/m³; per-second balance -> per hour (x 3600)
    heat_in = Expression("heating_K_per_h", 3600 * power * sar * np_obs * 1e3 / (rho * c))
    cooling = Expression("cooling_rate", 3600 * conductance / (rho * c))
    Rule("field_heating", None >> theta(), heat_in)
    Rule("heat_loss", theta() >> None, cooling)

    rate = Expression("cem43_rate", cem43_excess_rate(temperature, t_body))
    Rule("thermal_dose", None >> cem(), Expression("cem43_accrual_min_per_h", 60 * rate))
    # heat exchange between regions: xi = (k / L_x²) / (W + G), L_x in mm -> m
    xi = Expression("region_exchange_ratio", k / (exchange_length * 1e-3) ** 2 / conductance)

    def regional(load):
        return t_body + theta_obs * (load + xi) / (1 + xi)

    for cls in CELL_CLASSES:
        t_cls = Expression(f"temperature_C_{cls}", regional(class_load(cls, sigma)))
        provide(f"temperature_C_{cls}", t_cls)
        rate_cls = Expression(f"cem43_rate_{cls}", cem43_excess_rate(t_cls, t_body))
        provide(f"cem43_rate_{cls}", rate_cls)
        Observable(f"cem43_min_{cls}", cem_cls[cls]())
        Rule(
            f"thermal_dose_{cls}",
            None >> cem_cls[cls](),
            Expression(f"cem43_accrual_{cls}", 60 * rate_cls),
        )
    # T90: the 10th percentile of the log-normal load, z = -1.2816
    load_p10 = sympy.exp(sigma * Z_P10 - sigma**2 / 2)
    t90 = Expression("temperature_t90_C", regional(load_p10))
    Observable("cem43_t90_min", cem_t90())
    rate_t90 = Expression("cem43_t90_accrual", 60 * cem43_excess_rate(t90, t_body))
    Rule("thermal_dose_t90", None >> cem_t90(), rate_t90)

    Rule("particle_dissolution", npfe() >> None, k_diss)
    bolus("mh_particles", npfe(), 1.0, mode="top_up")
    # a dose in mg Fe per kg body weight times its tumour uptake, spread over the heated region
    bolus(
        "mh_particles_per_kg",
        npfe(),
        signal("body_weight") * 1e6 / heated_volume / 1e3,
        mode="top_up",
    )

    provide("temperature_C", temperature)
    provide("particle_iron_mg_per_cm3", np_obs)
    provide("cem43_rate", rate)
    provide("particle_dissolution_rate", k_diss)
    provide("particle_load_sigma", sigma)
