"""Intracellular stress of a representative treated tumour cell of each particle-load
class: Fenton/CDT chemistry, glutathione, the heat-shock response, damage, and the death
hazards by fate that damage implies.

Units: concentrations in µM, time in hours, temperature in °C. Every species exists once
per particle-load class (``cls`` site: ``low``, ``mid``, ``high``); each class sees its
own temperature (heating link) and its own share of the particle iron. The CDT agents
(iron, copper, manganese) are taken up uniformly and sit in one tissue depot each.

Chemistry (eqs. 1-8 of Chauhan et al. 2025 [chauhan2025]; constants: De Laat & Gallard
1999 [delaat1999], Buxton et al. 1988 [buxton1988], Rush & Bielski 1985 [rush1985])
------------------------------------------------------------------------------------
Metal couples Fe²⁺/Fe³⁺, Cu⁺/Cu²⁺, Mn²⁺/Mn³⁺ (species ``Fe_ii/Fe_iii``, ``Cu_i/Cu_ii``,
``Mn_ii/Mn_iii``)::

    (1)  Fe²⁺ + H2O2 -> Fe³⁺ + OH⁻ + •OH          k1 (63 /M/s at 25 °C), Arrhenius Ea
    (1') Fe³⁺ + H2O2 -> Fe²⁺ + HO2• + H⁺          kr (2e-3 /M/s), rate-limiting recycling
    (2)  •OH + H2O2  -> HO2• + H2O                 k2
    (3)  Fe³⁺ + HO2• -> Fe²⁺ + H⁺ + O2             k3
    (4)  Fe²⁺ + HO2• -> Fe³⁺ + HO2⁻                k4
    (5)  Fe²⁺ + •OH  -> Fe³⁺ + OH⁻                 k5
    (6)  Cu⁺ + H2O2  -> Cu²⁺ + OH⁻ + •OH           k_cu (~1e4 /M/s)
         Mn²⁺ + H2O2 -> Mn³⁺ + OH⁻ + •OH           k_mn·[HCO3⁻]/([HCO3⁻] + K): needs bicarbonate
    (7)  GSH + M⁽ⁿ⁺¹⁾⁺ -> Mⁿ⁺ + ½ GSSG             for Fe³⁺, Cu²⁺, Mn³⁺ (assumed constants)
    (8)  GSH + •OH   -> ½ GSSG + H2O               k8
         •OH + biomolecules -> oxidative damage    k_bio (pseudo-first order)
         HO2•/O2•⁻ dismutation by SOD              k_sod (pseudo-first order)

Oxidised glutathione is counted in GSH equivalents, ``GSox = 2·GSSG``, so total
glutathione GSH + 2·GSSG = GSH + GSox. Glutathione reductase returns GSSG to GSH
(Michaelis-Menten in GSSG); GSH is synthesised (feedback-inhibited by GSH, blocked by
BSO) and exported. The metal-H2O2 steps (1), (1'), (6) follow Arrhenius with one
activation energy (Ea ≈ 40 kJ/mol, measured for Fe²⁺; assumed for Cu⁺, Mn²⁺), so
k(43 °C)/k(37 °C) ≈ 1.34; radical-radical and radical-molecule steps are
diffusion-limited and taken as temperature independent. An acidic-lysosome option
multiplies the metal-H2O2 steps by 1 + f_lys (F_pH - 1) (``lysosomal_fraction`` of
the labile metal in lysosomes at pH 4.5-5, where Fenton chemistry is faster by
``lysosomal_fenton_factor``; default fraction 0 = off).

Sources and sinks: H2O2 from basal (mitochondrial) production (basal cytosolic level
2.2 nM, Lyublinskaya & Antunes 2019 [lyublinskaya2019]), raised by glucose oxidase and
mildly by heat, removed by catalase and peroxiredoxin/GPx (lumped first order, cellular
half-life ~1 ms, Sies 2014), and exchanged across the membrane with a steady
extracellular level (``h2o2_extracellular``, default 0; the permeation is set so that the
cytosol reaches 1/390 of it, the gradient measured by Lyublinskaya & Antunes 2019), which
is how exogenous H2O2 experiments are run; labile iron imported and sequestered by ferritin;
iron released from dissolving heating particles (class share ∝ particle load); CDT
depots releasing Fe²⁺ (iron agents) or Cu²⁺ / Mn³⁺ (copper and MnO2-type agents,
which consume GSH on activation, eq. 7); copper and manganese are sequestered or
exported.

Particle surfaces (peroxidase-like catalysis, Gao et al. 2007 [gao2007]): iron-oxide
heating particles turn H2O2 into •OH at their surface, first order in H2O2 and in the
class's particle iron (``particle_peroxidase``, assumed order of magnitude), Arrhenius-
scaled like eq. 1, so heat and particle load raise it.

Iron-driven lipid peroxidation (ferroptosis; Dixon et al. 2012 [dixon2012], Yang et al.
2014 [yang2014], chemistry reviewed by Conrad & Pratt 2019 [conrad2019]): oxidative
damage stands for lipid hydroperoxides (LOOH). Fe²⁺ decomposes LOOH into alkoxyl
radicals (one Fe²⁺ oxidised per event), each starting a chain of ``lipid_chain_length``
new LOOH while peroxidisable lipid lasts (``lipid_peroxide_capacity``); GPX4 repairs LOOH
with GSH (the existing GSH-dependent repair). The loop gain, new LOOH per repaired LOOH,
is ``lipid_peroxidation_gain`` at basal Fe²⁺, GSH and 37 °C and scales with Fe²⁺,
Arrhenius and the inverse GSH dependence of repair: below 1 the cell is stable, above 1
peroxidation runs away (the ferroptosis switch). The gain (0.63) is fitted to the GSH
level at which BSO becomes lethal (<= 10 % of control, Dorr et al. 1986 [dorr1986]), so
the loop crosses 1 with an iron rise of ~1.6x at basal GSH. Consequences that follow from
this structure and are not separately validated: CDT iron acts as a threshold (doses
that raise labile Fe²⁺ a few-fold kill, smaller ones do nothing), BSO and CDT iron are
strongly synergistic, and heavily loaded cells of an MH-treated tumour can cross the
threshold from particle iron alone. Heat couples to this chemistry only while it lasts
(Arrhenius of the Fe²⁺ steps and heat-raised H2O2), so a short session adds little to an
iron dose at the cell level.

**Reductions** (checked in ``tests/test_stress.py`` against the full mechanism, a
separate scipy ODE with •OH, HO2• and H2O2 as explicit species and the radical-radical
steps •OH + •OH, •OH + HO2•, HO2• + HO2• included, on a 24-h heating + field + CDT (Fe
and Cu) + GOx + BSO history: states agree to 1e-8):

* •OH (lifetime ~0.2 ns) and HO2•/O2•⁻ (~50 µs) at quasi-steady state; the
  radical-radical steps are dropped (radicals stay below 1e-9 µM), and so is HO2•
  consumption by the metals in its balance (SOD dominates it by > 100x below 100 µM
  Fe²⁺). H2O2 (lifetime ~1 ms) stays a species: its exact balance (metal steps,
  eq. 2, superoxide dismutation) costs less to compile than its quasi-steady form.
* the CDT depots are one tissue species per metal (not one per class), releasing into
  every class: iron, copper and manganese of each class (labile + depot) stay exactly
  conserved when import and export are off.

Heat-shock response (chaperone-titration reduction of Szymańska & Zylicz 2009, with
client-stabilised HSP70)
---------------------------------------------------------------------------------
Native proteins misfold at φ(T) ∝ (1 - 0.4 e^-(T-37))·1.4^(T-37) (Szymańska & Zylicz
2009; Petre et al. 2011); misfolded protein S (in units of its HSP70 dissociation
constant) binds HSP70 (fast equilibrium), which refolds it (ATP-dependent) while the
proteasome clears it. HSP70 that is neither bound to clients nor blocked by an HSP
inhibitor (free functional HSP70, ``Hf = H (1 - i_HSP)/(1 + S)``) keeps HSF1 repressed;
the free HSF1 fraction a = 1/(1 + (r Hf/Hf0)^n) (trimerisation, Hill n) drives HSP70
mRNA, which ATP-dependently yields HSP70 protein. HSF1, HSP70:HSF1, HSP70:S and
HSF3:HSE of the nine-species model are at quasi-steady state. HSP70 and mRNA are
relative to basal (1).

HSP70 turnover depends on the damage a heating left behind. Heat-denatured proteins
aggregate (``HeatAggregates`` A, in units of the level that halves HSP70 turnover),
bimolecularly in the thermal-lesion load L (rate k_a L²: association of two unfolded
chains is second order), and are cleared slowly (k_c); HSP70 holds them as clients and
is degraded at k_H/(1 + A). The chaperone-associated ubiquitin ligase CHIP ubiquitinates
chaperone-bound substrates first and turns to HSP70 itself only once misfolded substrates
are depleted (Qian et al. 2006 [qian2006]), so HSP70 made after a damaging heat dose
outlives HSP70 made after a mild one. Evidence that this is what thermotolerance needs:
in vitro, heat-induced HSPs persist for days after an acute priming dose, as long as
thermotolerance does (Landry et al. 1982 [landry1982]: both gone by 60-82 h; Li & Werb
1982 [li_werb1982]: HSP stability tracks the persistence of thermotolerance up to 36 h;
Li & Hahn 1987 [li_hahn1987]: HSP70 decay mirrors thermotolerance decay); tolerance after
30 min at 44 °C decays more slowly than after 10 min (half-times 16 h and 11 h, Cho et
al. 1983 [cho_ttdecay1983]); tolerance after 12 h at 40 °C, a chronic dose that leaves
almost no lesions, decays with a half-time of only 3.8 h [cho_40_43_interaction]. k_H,
k_a, k_c and the mRNA half-life are fitted to calibration targets only (the HSP72 peak
window in the Dunning tumour; the time of maximal tolerance and its 16-h decay after 30
min at 44 °C; tolerance gone 60-80 h after 30 min at 43 °C, Landry et al. 1982); k_c
ends at its lower bound (half-life ~10 d), so the aggregate pool acts as a
phenomenological memory of the priming damage rather than a measured aggregate
lifetime. The 10-min and 40 °C decays, the Dunning return to baseline, fold inductions
and tolerance ratios are predictions (``mhimmune validate --only hsp70,thermotolerance``):
the decay is dose-ordered (16 h after 30 min at 44 °C, ~5 h after 10 min or after 12 h
at 40 °C) but the 10-min and 40 °C half-times are missed. At 42 °C for 1 h (few
lesions) HSP70 peaks at ~1.5x about 10 h later and is back at baseline by 48 h; after 30
min at 44 °C it peaks at ~1.9x after ~14 h and stays ~10 % raised for days. Folds stay
below the 2.3-10x that endothelial cells reach in vitro and tolerance ratios below the
~4 of L1A2 cells: the induction ceiling (``hsf1_repression``, ``hsf1_hill``) is assumed
and not calibrated.
An HSP inhibitor strips chaperone function (and so releases HSF1); glucose oxidase
lowers ATP (refolding, translation, lesion repair).

Damage and fate
---------------
* Thermal lesions L accrue at the CEM43 rate of the class (Sapareto & Dewey 1984
  [sapareto1984], i.e. the cell-kill Arrhenius) and are either repaired by chaperones
  (rate ∝ functional HSP70 H(1 - i_HSP) and ATP) or fixed as lethal (rate k_fix). The
  lethal hazard is k_fix·L; at basal HSP70 a heat dose of D0 CEM43-minutes gives one
  lethal event per cell on average (CHO D0(43 °C) = 16.8 min). Induced HSP70 repairs
  faster: thermotolerance.
* Oxidative lesions (µM) accrue from •OH hitting biomolecules and are repaired by
  GSH-dependent enzymes (GPx4, glutaredoxins), consuming GSH; hazard
  h_max·Ox^n/(K^n + Ox^n).
* ER stress E (PERK-ATF4-CHOP, relaxes over hours) is driven by both kinds of damage,
  oxidative damage weighing more; it sets the immunogenic (ICD) share of regulated
  death, icd_max·E/(1 + E).
* Necrosis takes the share x^m/(1 + x^m) of lethal events, x = L/L_n + Ox/Ox_n (damage
  arriving faster than the cell can run a programme, e.g. ablative heat).
* HSP70 blocks apoptosome assembly (binds Apaf-1, quasi-steady state): regulated
  (apoptotic and immunogenic) hazards are multiplied by (1 + p)/(1 + p·H(1 - i_HSP)),
  1 at basal HSP70; necrosis is not blocked.

Lysosomal field effect (contested, off by default)
--------------------------------------------------
``lysosomal_field_ros`` adds an •OH source while the field is on, proportional to the
class's particle iron and to H²·f (the magnetic loss power of particles in linear
response), i.e. to the power the particles dissipate locally. It stands for the
AMF-induced lysosomal ROS and membrane permeabilisation reported by Domenech et al.
2013 (ACS Nano) beyond bulk heating; no surface-to-bulk temperature difference has been
measured (Davis et al. 2020), so it is an explicit hypothesis, not physics; default 0.

Tissue signals (``hsp_relative``, ``stress_ligand``, ``cd47_relative``) are averages over
the classes weighted by their viable cells.
"""

import sympy
from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.core.errors import ModelError
from mhimmune.core.modelkit import (
    bolus,
    component,
    hill,
    par,
    present,
    provide,
    signal,
    smooth_positive_part,
)
from mhimmune.mh.cell_classes import CELL_CLASSES, CLASS_WEIGHTS, class_load

READS = {
    "temperature_C_low": ("degC", 37.0),
    "temperature_C_mid": ("degC", 37.0),
    "temperature_C_high": ("degC", 37.0),
    "cem43_rate_low": ("1", 0.0),
    "cem43_rate_mid": ("1", 0.0),
    "cem43_rate_high": ("1", 0.0),
    "particle_iron_mg_per_cm3": ("mg/cm^3", 0.0),
    "particle_dissolution_rate": ("1/h", 0.0),
    "particle_load_sigma": ("1", 0.5),
    "bso_effect": ("fraction", 0.0),
    "hsp_inhibitor_effect": ("fraction", 0.0),
    "gox_effect": ("fraction", 0.0),
    "body_weight": ("kg", 0.02),
    "viable_treated_low": ("mm^3", 1.0),
    "viable_treated_mid": ("mm^3", 4.0),
    "viable_treated_high": ("mm^3", 1.0),
    # protocol inputs of the heating link (0 outside sessions); stubs when run alone
    "mh_field_kA_per_m": ("kA/m", 0.0),
    "mh_freq_kHz": ("kHz", 0.0),
}
PROVIDES = {
    **{f"hazard_{f}_{c}": "1/h" for f in ("apop", "icd", "necr") for c in CELL_CLASSES},
    "hsp_relative": "1",
    "stress_ligand": "1",
    "cd47_relative": "1",
}

#: µM of metal per (mg metal / cm³) = 1e3 mg/L / (g/mol)
MOLAR_MASS = {"fe": 55.845, "cu": 63.546, "mn": 54.938}
UM_PER_MG_PER_CM3 = {m: 1e6 / w for m, w in MOLAR_MASS.items()}
UM_PER_MG_FE_PER_CM3 = UM_PER_MG_PER_CM3["fe"]
GAS_CONSTANT = 8.314462618  # J/(mol K)


def misfolding_shape(temperature):
    """Relative protein misfolding rate (1 - 0.4 e^-(T-37))·1.4^(T-37) (Szymańska & Zylicz
    2009; Petre et al. 2011), floored at 0 (it turns negative below ~36.1 °C)."""
    return sympy.Max(
        0,
        (1 - sympy.Float(0.4) * sympy.exp(-(temperature - 37)))
        * sympy.Float(1.4) ** (temperature - 37),
    )


def _input(name):
    """A protocol input of the heating link, or the stub of READS when run alone."""
    try:
        return component(name)
    except ModelError:
        return signal(name)


def radicals(k, fe2, fe3, cu1, mn2, gsh, h2o2, temperature_factor, field_oh, surface=0):
    """Quasi-steady •OH and HO2• (µM) for the current metal, GSH and H2O2 state.

    *k*: rate constants (internal units); *temperature_factor*: Arrhenius × lysosome
    factor of the metal-H2O2 steps; *field_oh*: µM/h; *surface*: first-order rate (1/h) at
    which particle surfaces turn H2O2 into •OH (peroxidase-like catalysis). HO2•
    consumption by the metals is dropped against SOD (< 1e-2 of it below 100 µM Fe²⁺),
    which keeps the compiled Jacobian small; HO2• fluxes are themselves < 1e-3 of the
    Fenton fluxes (checked against the full mechanism in tests/test_stress.py).
    Returns (oh, ho2, k1T, krT, kcuT, kmnT).
    """
    k1T = k["fenton"] * temperature_factor
    krT = k["fe3_h2o2"] * temperature_factor
    kcuT = k["cu"] * temperature_factor
    kmnT = k["mn"] * temperature_factor
    oh = ((k1T * fe2 + kcuT * cu1 + kmnT * mn2 + surface) * h2o2 + field_oh) / (
        k["oh_h2o2"] * h2o2 + k["oh_gsh"] * gsh + k["oh_fe"] * fe2 + k["oh_bio"]
    )
    ho2 = (krT * fe3 + k["oh_h2o2"] * oh) * h2o2 / k["sod"]
    return oh, ho2, k1T, krT, kcuT, kmnT


def declare():
    particle_fe = signal("particle_iron_mg_per_cm3")
    k_diss = signal("particle_dissolution_rate")
    sigma = signal("particle_load_sigma")
    bso = signal("bso_effect")
    hspi = signal("hsp_inhibitor_effect")
    gox = signal("gox_effect")
    body_weight = signal("body_weight")
    field = _input("mh_field_kA_per_m")
    freq = _input("mh_freq_kHz")

    c = {"cls": list(CELL_CLASSES)}
    fe = Monomer("Fe", ["ox", "cls"], {"ox": ["ii", "iii"], **c})
    cu = Monomer("Cu", ["ox", "cls"], {"ox": ["i", "ii"], **c})
    mn = Monomer("Mn", ["ox", "cls"], {"ox": ["ii", "iii"], **c})
    h2o2_m = Monomer("H2O2", ["cls"], c)
    gsh = Monomer("GSH", ["cls"], c)
    gsox = Monomer("GSox", ["cls"], c)
    oxd = Monomer("OxDamage", ["cls"], c)
    heat = Monomer("HeatDamage", ["cls"], c)
    er = Monomer("ERStress", ["cls"], c)
    mp = Monomer("Misfolded", ["cls"], c)
    hspm = Monomer("HSPmRNA", ["cls"], c)
    hsp = Monomer("HSP70", ["cls"], c)
    agg = Monomer("HeatAggregates", ["cls"], c)
    depots = {"fe": Monomer("CDTFe"), "cu": Monomer("CDTCu"), "mn": Monomer("CDTMn")}

    # --- chemistry parameters ---
    k = {
        "fenton": par("k_fenton", "1/uM/h"),
        "fe3_h2o2": par("k_fe3_h2o2", "1/uM/h"),
        "oh_h2o2": par("k_oh_h2o2", "1/uM/h"),
        "ho2_fe3": par("k_ho2_fe3", "1/uM/h"),
        "ho2_fe2": par("k_ho2_fe2", "1/uM/h"),
        "oh_fe": par("k_oh_fe", "1/uM/h"),
        "oh_gsh": par("k_oh_gsh", "1/uM/h"),
        "oh_bio": par("k_oh_biomolecules", "1/h"),
        "sod": par("superoxide_dismutation", "1/h"),
        "cu": par("k_cu_fenton", "1/uM/h"),
        "catalase": par("catalase_rate", "1/h"),
        "peroxidase": par("peroxidase_rate", "1/h"),
    }
    k_mn_max = par("k_mn_fenton", "1/uM/h")
    hco3 = par("bicarbonate", "uM")
    hco3_half = par("bicarbonate_half", "uM")
    k["mn"] = Expression("k_mn_fenton_bicarbonate", k_mn_max * hco3 / (hco3 + hco3_half))
    ea_fenton = par("ea_fenton", "J/mol")
    t_ref = par("fenton_reference_temperature", "K")
    lys_fraction = par("lysosomal_fraction", "fraction")
    lys_factor = par("lysosomal_fenton_factor", "1")
    k_gsh_fe3 = par("k_gsh_fe3", "1/uM/h")
    k_gsh_cu2 = par("k_gsh_cu2", "1/uM/h")
    k_gsh_mn3 = par("k_gsh_mn3", "1/uM/h")
    gr_vmax = par("gr_vmax", "uM/h")
    gr_km = par("gr_km", "uM")
    gsh_initial = par("gsh_initial", "uM")
    gsh_turnover = par("gsh_turnover", "1/h")
    gsh_ki = par("gsh_feedback_ki", "uM")
    h2o2_initial = par("h2o2_initial", "uM")
    gox_h2o2_fold = par("gox_h2o2_fold", "1")
    heat_h2o2_q10 = par("heat_h2o2_q10", "1")
    labile_fe_initial = par("labile_fe_initial", "uM")
    fe_sequestration = par("fe_sequestration", "1/h")
    cu_sequestration = par("cu_sequestration", "1/h")
    mn_efflux = par("mn_efflux", "1/h")
    particle_fe_labile_fraction = par("particle_fe_labile_fraction", "fraction")
    cdt_release = par("cdt_release", "1/h")
    cdt_tumour_uptake = par("cdt_tumour_uptake", "1/g")
    field_ros = par("lysosomal_field_ros", "1/h/(kA/m)^2/kHz")
    h2o2_gradient = par("h2o2_membrane_gradient", "1")
    h2o2_ext = par("h2o2_extracellular", "uM")
    k_surface = par("particle_peroxidase", "1/uM/h")
    lp_gain = par("lipid_peroxidation_gain", "1")
    lp_chain = par("lipid_chain_length", "1")
    lp_capacity = par("lipid_peroxide_capacity", "uM")
    # --- damage and fate parameters ---
    damage_yield = par("oxidative_damage_yield", "1")
    damage_repair = par("oxidative_damage_repair", "1/h")
    repair_gsh_km = par("repair_gsh_km", "uM")
    ox_hazard_max = par("ox_hazard_max", "1/h")
    ox_damage_k = par("ox_damage_half", "uM")
    ox_hill = par("ox_hazard_hill", "1")
    d0_43 = par("heat_d0_43", "h")
    lesion_repair = par("heat_lesion_repair", "1/h")
    lesion_fixation = par("heat_lesion_fixation", "1/h")
    er_rate = par("er_stress_rate", "1/h")
    er_heat = par("er_heat_weight", "1")
    er_ox = par("er_ox_weight", "1")
    icd_max = par("icd_max_fraction", "fraction")
    necr_lesions = par("necrosis_heat_lesions", "1")
    necr_ox = par("necrosis_ox_damage", "uM")
    necr_hill = par("necrosis_hill", "1")
    # --- heat-shock response parameters ---
    s0 = par("misfolded_basal", "1")
    refold_rate = par("refold_rate", "1/h")
    misfold_deg = par("misfolded_degradation", "1/h")
    hsf_repression = par("hsf1_repression", "1")
    hsf_hill = par("hsf1_hill", "1")
    hsf_leak = par("hsf1_leak", "1")
    hsp_mrna_decay = par("hsp_mrna_decay", "1/h")
    hsp_decay = par("hsp_decay", "1/h")
    aggregation_rate = par("heat_aggregation_rate", "1/h")
    aggregate_clearance = par("heat_aggregate_clearance", "1/h")
    gox_atp_drop = par("gox_atp_drop", "fraction")
    hsp_protection = par("hsp_protection", "1")
    cd47_heat_drop = par("cd47_heat_drop", "fraction")

    # --- cell-independent expressions ---
    atp = Expression("atp_relative", 1 - gox_atp_drop * gox)
    h2o2_removal = Expression("h2o2_removal_rate", k["catalase"] + k["peroxidase"])
    # (the Max guards only the placeholder values of an unfilled model; table bounds hold)
    h2o2_permeation = Expression(
        "h2o2_permeation_rate", h2o2_removal / sympy.Max(h2o2_gradient - 1, 1e-9)
    )
    lysosome = 1 + lys_fraction * (lys_factor - 1)
    field_power = Expression("field_h2f", field**2 * freq)  # (kA/m)²·kHz, 0 outside sessions
    hf0 = 1 / (1 + s0)  # basal free HSP70 (relative)
    a0 = 1 / (1 + hsf_repression**hsf_hill)  # basal free HSF1 fraction
    misfolding_basal = Expression(
        "misfolding_basal_rate",
        (refold_rate * s0 / (1 + s0) + misfold_deg * s0) / misfolding_shape(37),
    )
    lesion_yield = Expression(
        "heat_lesions_per_cem43", (lesion_fixation + lesion_repair) / (lesion_fixation * d0_43)
    )
    gsh_synthesis_basal = gsh_turnover * gsh_initial * (1 + gsh_initial / gsh_ki)
    # basal quasi-steady chemistry (37 °C, no drugs, basal iron and GSH) for the initial state
    arrhenius_37 = sympy.exp(-ea_fenton / GAS_CONSTANT * (1 / sympy.Float(310.15) - 1 / t_ref))
    oh_basal, *_ = radicals(
        k, labile_fe_initial, 0, 0, 0, gsh_initial, h2o2_initial, arrhenius_37 * lysosome, 0
    )
    repair_basal = damage_repair * gsh_initial / (gsh_initial + repair_gsh_km)
    # lipid hydroperoxide decomposition by Fe2+ (events per µM LOOH per µM Fe2+ per hour at
    # 37 °C): each event oxidises one Fe2+ and starts a chain of ``lipid_chain_length`` new
    # LOOH, so the basal loop gain against GPX4 repair is ``lipid_peroxidation_gain``
    k_lp = Expression(
        "lipid_peroxide_fe_rate",
        lp_gain * repair_basal / (labile_fe_initial * sympy.Max(lp_chain - 1, 1e-9)),
    )
    # basal steady state of R·Ox = P + k·Fe·Ox·(ν(1 - Ox/cap) - 1), a quadratic in Ox
    # (a = k·Fe·ν/cap, b = R - k·Fe·(ν - 1)), taken in its cancellation-free form
    p_basal = damage_yield * k["oh_bio"] * oh_basal
    quad_a = k_lp * labile_fe_initial * lp_chain / lp_capacity
    quad_b = repair_basal - k_lp * labile_fe_initial * (lp_chain - 1)
    ox_basal = Expression(
        "oxidative_damage_basal",
        2 * p_basal / (quad_b + sympy.sqrt(quad_b**2 + 4 * quad_a * p_basal)),
    )

    # CDT depots: one per metal in the tissue, released into every class (dose mg/kg ->
    # mg in body -> mg per g (≈ cm³) tumour -> µM); GSH-reducible metals arrive oxidised
    release_target = {"fe": fe(ox="ii"), "cu": cu(ox="ii"), "mn": mn(ox="iii")}
    for metal, depot in depots.items():
        present(depot())
        Observable(f"cdt_depot_{metal}_uM", depot())
        Rule(f"cdt_{metal}_depot_release", depot() >> None, cdt_release)
        bolus(f"cdt:{metal}", depot(), body_weight * cdt_tumour_uptake * UM_PER_MG_PER_CM3[metal])

    one = Expression("relative_basal", sympy.Float(1.0))
    er_basal = Expression("er_stress_basal", er_ox * ox_basal / ox_damage_k)
    viable = {cls: signal(f"viable_treated_{cls}") for cls in CELL_CLASSES}
    # a vanishing treated tumour falls back to the quadrature weights (finite Jacobian at
    # 0); the smooth positive part keeps the weights > 0 when a class's viable cells lie an
    # integration error below 0, so that the averages stay between their classes' values
    # (for non-negative states the weights differ from viable + 1e-9 w by < 1e-9 w)
    weights = {
        c: smooth_positive_part(viable[c], 1e-9 * w) + 0.5e-9 * w
        for c, w in zip(CELL_CLASSES, CLASS_WEIGHTS)
    }
    viable_total = sum(weights.values())
    per_class = {}

    for cls in CELL_CLASSES:
        temperature = signal(f"temperature_C_{cls}")
        cem_rate = signal(f"cem43_rate_{cls}")
        load = class_load(cls, sigma)

        # --- initial state: basal steady state of the cell ---
        Initial(fe(ox="ii", cls=cls), labile_fe_initial)
        Initial(h2o2_m(cls=cls), h2o2_initial)
        Initial(gsh(cls=cls), gsh_initial)
        Initial(oxd(cls=cls), ox_basal)
        Initial(er(cls=cls), er_basal)
        Initial(mp(cls=cls), s0)
        Initial(hspm(cls=cls), one)
        Initial(hsp(cls=cls), one)
        for pattern in (
            fe(ox="iii", cls=cls),
            cu(ox="i", cls=cls),
            cu(ox="ii", cls=cls),
            mn(ox="ii", cls=cls),
            mn(ox="iii", cls=cls),
            gsox(cls=cls),
            heat(cls=cls),
            agg(cls=cls),
        ):
            present(pattern)

        fe2 = Observable(f"labile_fe2_uM_{cls}", fe(ox="ii", cls=cls))
        fe3 = Observable(f"labile_fe3_uM_{cls}", fe(ox="iii", cls=cls))
        cu1 = Observable(f"cu1_uM_{cls}", cu(ox="i", cls=cls))
        Observable(f"cu2_uM_{cls}", cu(ox="ii", cls=cls))
        mn2 = Observable(f"mn2_uM_{cls}", mn(ox="ii", cls=cls))
        Observable(f"mn3_uM_{cls}", mn(ox="iii", cls=cls))
        h2o2 = Observable(f"h2o2_uM_{cls}", h2o2_m(cls=cls))
        gsh_obs = Observable(f"gsh_uM_{cls}", gsh(cls=cls))
        gsox_obs = Observable(f"gsox_uM_{cls}", gsox(cls=cls))
        oxd_obs = Observable(f"oxidative_damage_{cls}", oxd(cls=cls))
        heat_obs = Observable(f"heat_lesions_{cls}", heat(cls=cls))
        er_obs = Observable(f"er_stress_{cls}", er(cls=cls))
        mp_obs = Observable(f"misfolded_protein_{cls}", mp(cls=cls))
        hspm_obs = Observable(f"hsp_mrna_relative_{cls}", hspm(cls=cls))
        hsp_obs = Observable(f"hsp70_relative_{cls}", hsp(cls=cls))
        agg_obs = Observable(f"heat_aggregates_{cls}", agg(cls=cls))

        # --- radicals at quasi-steady state ---
        arrhenius = Expression(
            f"fenton_arrhenius_{cls}",
            sympy.exp(-ea_fenton / GAS_CONSTANT * (1 / (temperature + 273.15) - 1 / t_ref)),
        )
        field_oh = Expression(
            f"field_oh_production_{cls}",
            field_ros * particle_fe * load * UM_PER_MG_FE_PER_CM3 * field_power,
        )
        surface = Expression(
            f"particle_peroxidase_rate_{cls}",
            k_surface * arrhenius * particle_fe * load * UM_PER_MG_FE_PER_CM3,
        )
        oh_x, ho2_x, k1T_x, krT_x, kcuT_x, kmnT_x = radicals(
            k, fe2, fe3, cu1, mn2, gsh_obs, h2o2, arrhenius * lysosome, field_oh, surface
        )
        k1T = Expression(f"k_fenton_T_{cls}", k1T_x)
        krT = Expression(f"k_fe3_h2o2_T_{cls}", krT_x)
        kcuT = Expression(f"k_cu_fenton_T_{cls}", kcuT_x)
        kmnT = Expression(f"k_mn_fenton_T_{cls}", kmnT_x)
        oh = Expression(f"hydroxyl_radical_uM_{cls}", oh_x)
        ho2 = Expression(f"hydroperoxyl_radical_uM_{cls}", ho2_x)

        # --- H2O2: production (basal, GOx, heat), catalase/peroxidase, SOD, eq. 2 ---
        Rule(
            f"h2o2_production_{cls}",
            None >> h2o2_m(cls=cls),
            Expression(
                f"h2o2_production_rate_{cls}",
                (h2o2_removal + h2o2_permeation)
                * h2o2_initial
                * (1 + gox_h2o2_fold * gox)
                * heat_h2o2_q10 ** ((temperature - 37) / 10),
            ),
        )
        Rule(f"h2o2_removal_{cls}", h2o2_m(cls=cls) >> None, h2o2_removal)
        # exchange with the interstitium: the membrane keeps cytosolic H2O2 at 1/gradient
        # of a steady extracellular level against the cell's removal
        Rule(
            f"h2o2_influx_{cls}",
            None >> h2o2_m(cls=cls),
            Expression(f"h2o2_influx_rate_{cls}", h2o2_permeation * h2o2_ext),
        )
        Rule(f"h2o2_efflux_{cls}", h2o2_m(cls=cls) >> None, h2o2_permeation)
        Rule(f"particle_peroxidase_{cls}", h2o2_m(cls=cls) >> None, surface)
        Rule(
            f"h2o2_from_dismutation_{cls}",
            None >> h2o2_m(cls=cls),
            Expression(f"h2o2_dismutation_rate_{cls}", k["sod"] * ho2 / 2),
        )
        Rule(
            f"oh_consumes_h2o2_{cls}",
            h2o2_m(cls=cls) >> None,
            Expression(f"h2o2_oh_rate_{cls}", k["oh_h2o2"] * oh),
        )

        # --- metal redox (eqs. 1-7) ---
        Rule(
            f"fenton_initiation_{cls}",
            fe(ox="ii", cls=cls) + h2o2_m(cls=cls) >> fe(ox="iii", cls=cls),
            k1T,
        )
        Expression(f"fenton_initiation_flux_{cls}", k1T * fe2 * h2o2)
        Rule(
            f"oh_oxidises_fe2_{cls}",
            fe(ox="ii", cls=cls) >> fe(ox="iii", cls=cls),
            Expression(f"fe2_oh_rate_{cls}", k["oh_fe"] * oh),
        )
        Rule(
            f"ho2_oxidises_fe2_{cls}",
            fe(ox="ii", cls=cls) >> fe(ox="iii", cls=cls),
            Expression(f"fe2_ho2_rate_{cls}", k["ho2_fe2"] * ho2),
        )
        Rule(
            f"fenton_recycling_{cls}",
            fe(ox="iii", cls=cls) + h2o2_m(cls=cls) >> fe(ox="ii", cls=cls),
            krT,
        )
        Rule(
            f"ho2_reduces_fe3_{cls}",
            fe(ox="iii", cls=cls) >> fe(ox="ii", cls=cls),
            Expression(f"fe3_ho2_rate_{cls}", k["ho2_fe3"] * ho2),
        )
        Rule(
            f"gsh_reduces_fe3_{cls}",
            fe(ox="iii", cls=cls) + gsh(cls=cls) >> fe(ox="ii", cls=cls) + gsox(cls=cls),
            k_gsh_fe3,
        )
        Rule(
            f"cu_fenton_{cls}", cu(ox="i", cls=cls) + h2o2_m(cls=cls) >> cu(ox="ii", cls=cls), kcuT
        )
        Rule(
            f"gsh_reduces_cu2_{cls}",
            cu(ox="ii", cls=cls) + gsh(cls=cls) >> cu(ox="i", cls=cls) + gsox(cls=cls),
            k_gsh_cu2,
        )
        Rule(
            f"mn_fenton_{cls}",
            mn(ox="ii", cls=cls) + h2o2_m(cls=cls) >> mn(ox="iii", cls=cls),
            kmnT,
        )
        Rule(
            f"gsh_reduces_mn3_{cls}",
            mn(ox="iii", cls=cls) + gsh(cls=cls) >> mn(ox="ii", cls=cls) + gsox(cls=cls),
            k_gsh_mn3,
        )

        # --- glutathione (eq. 8, reductase, synthesis with BSO, export) ---
        Rule(
            f"oh_scavenging_by_gsh_{cls}",
            gsh(cls=cls) >> gsox(cls=cls),
            Expression(f"gsh_oxidation_rate_{cls}", k["oh_gsh"] * oh),
        )
        # GSSG = GSox/2; v = Vmax GSSG/(Km + GSSG) per GSSG, i.e. 2v per GSH equivalent
        Rule(
            f"glutathione_reductase_{cls}",
            gsox(cls=cls) >> gsh(cls=cls),
            Expression(f"gr_rate_{cls}", gr_vmax / (gr_km + gsox_obs / 2)),
        )
        Rule(
            f"gsh_synthesis_{cls}",
            None >> gsh(cls=cls),
            Expression(
                f"gsh_synthesis_rate_{cls}",
                gsh_synthesis_basal * (1 - bso) / (1 + gsh_obs / gsh_ki),
            ),
        )
        Rule(f"gsh_export_{cls}", gsh(cls=cls) >> None, gsh_turnover)

        # --- metal traffic ---
        Rule(
            f"fe_import_{cls}",
            None >> fe(ox="ii", cls=cls),
            Expression(f"fe_import_rate_{cls}", fe_sequestration * labile_fe_initial),
        )
        Rule(f"fe_sequestration_{cls}", fe(cls=cls) >> None, fe_sequestration)
        Rule(f"cu_sequestration_{cls}", cu(cls=cls) >> None, cu_sequestration)
        Rule(f"mn_efflux_{cls}", mn(cls=cls) >> None, mn_efflux)
        Rule(
            f"particle_fe_release_{cls}",
            None >> fe(ox="ii", cls=cls),
            Expression(
                f"particle_fe_release_rate_{cls}",
                particle_fe_labile_fraction * k_diss * particle_fe * load * UM_PER_MG_FE_PER_CM3,
            ),
        )
        for metal, depot in depots.items():
            target = release_target[metal]
            Rule(
                f"cdt_{metal}_release_{cls}",
                depot() >> depot() + target.monomer(cls=cls, **target.site_conditions),
                cdt_release,
            )

        # --- damage ---
        Rule(
            f"oxidative_damage_step_{cls}",
            None >> oxd(cls=cls),
            Expression(f"damage_production_{cls}", damage_yield * k["oh_bio"] * oh),
        )
        Rule(
            f"oxidative_damage_repair_{cls}",
            oxd(cls=cls) + gsh(cls=cls) >> gsox(cls=cls),
            Expression(f"damage_repair_rate_{cls}", damage_repair / (gsh_obs + repair_gsh_km)),
        )
        # iron-catalysed lipid peroxidation (ferroptosis): Fe2+ decomposes LOOH into
        # alkoxyl radicals that start new chains while peroxidisable lipid lasts
        lp_arrhenius = arrhenius / arrhenius_37
        Rule(
            f"lipid_peroxide_decomposition_{cls}",
            oxd(cls=cls) + fe(ox="ii", cls=cls) >> fe(ox="iii", cls=cls),
            Expression(f"lipid_peroxide_fe_rate_{cls}", k_lp * lp_arrhenius),
        )
        Rule(
            f"lipid_peroxidation_chain_{cls}",
            None >> oxd(cls=cls),
            Expression(
                f"lipid_peroxidation_rate_{cls}",
                k_lp * lp_arrhenius * fe2 * oxd_obs * lp_chain * (1 - oxd_obs / lp_capacity),
            ),
        )
        Rule(
            f"heat_lesion_formation_{cls}",
            None >> heat(cls=cls),
            Expression(f"heat_lesion_rate_{cls}", lesion_yield * cem_rate),
        )
        hsp_func = Expression(f"hsp70_functional_{cls}", hsp_obs * (1 - hspi))
        hsp_free = Expression(f"hsp70_free_relative_{cls}", hsp_func / (1 + mp_obs) / hf0)
        Rule(
            f"heat_lesion_repair_{cls}",
            heat(cls=cls) >> None,
            Expression(f"heat_lesion_repair_rate_{cls}", lesion_repair * hsp_func * atp),
        )
        Rule(f"heat_lesion_fixation_{cls}", heat(cls=cls) >> None, lesion_fixation)
        Rule(
            f"er_stress_induction_{cls}",
            None >> er(cls=cls),
            Expression(
                f"er_stress_input_{cls}",
                er_rate * (er_heat * heat_obs + er_ox * oxd_obs / ox_damage_k),
            ),
        )
        Rule(f"er_stress_relaxation_{cls}", er(cls=cls) >> None, er_rate)

        # --- heat-shock response ---
        Rule(
            f"misfolding_{cls}",
            None >> mp(cls=cls),
            Expression(f"misfolding_rate_{cls}", misfolding_basal * misfolding_shape(temperature)),
        )
        Rule(
            f"refolding_{cls}",
            mp(cls=cls) >> None,
            Expression(f"refolding_rate_{cls}", refold_rate * hsp_func * atp / (1 + mp_obs)),
        )
        Rule(f"misfolded_clearance_{cls}", mp(cls=cls) >> None, misfold_deg)
        hsf_free = Expression(
            f"hsf1_free_fraction_{cls}", 1 / (1 + (hsf_repression * hsp_free) ** hsf_hill)
        )
        Rule(
            f"hsp_transcription_{cls}",
            None >> hspm(cls=cls),
            Expression(
                f"hsp_transcription_rate_{cls}",
                hsp_mrna_decay * (hsf_free + hsf_leak) / (a0 + hsf_leak),
            ),
        )
        Rule(f"hsp_mrna_turnover_{cls}", hspm(cls=cls) >> None, hsp_mrna_decay)
        Rule(
            f"hsp_translation_{cls}",
            None >> hsp(cls=cls),
            Expression(f"hsp_translation_rate_{cls}", hsp_decay * hspm_obs * atp),
        )
        # heat-denatured protein aggregates (bimolecular in the lesion load) hold HSP70 as
        # clients; CHIP degrades HSP70 only once its clients are gone (Qian et al. 2006)
        Rule(
            f"heat_aggregation_{cls}",
            None >> agg(cls=cls),
            Expression(f"heat_aggregation_rate_{cls}", aggregation_rate * heat_obs**2),
        )
        Rule(f"heat_aggregate_clearance_{cls}", agg(cls=cls) >> None, aggregate_clearance)
        Rule(
            f"hsp70_turnover_{cls}",
            hsp(cls=cls) >> None,
            Expression(f"hsp70_turnover_rate_{cls}", hsp_decay / (1 + agg_obs)),
        )

        # --- death hazards by fate ---
        protection = Expression(
            f"hsp_survival_factor_{cls}", (1 + hsp_protection) / (1 + hsp_protection * hsp_func)
        )
        heat_hazard = Expression(f"heat_hazard_{cls}", lesion_fixation * heat_obs)
        ox_hazard = Expression(
            f"oxidative_hazard_{cls}", ox_hazard_max * hill(oxd_obs, ox_damage_k, ox_hill)
        )
        x = heat_obs / necr_lesions + oxd_obs / necr_ox
        necrotic_share = Expression(f"necrotic_share_{cls}", x**necr_hill / (1 + x**necr_hill))
        icd_share = Expression(f"icd_share_{cls}", icd_max * er_obs / (1 + er_obs))
        lethal = heat_hazard + ox_hazard
        regulated = (1 - necrotic_share) * lethal * protection
        provide(f"hazard_icd_{cls}", Expression(f"hazard_icd_{cls}", regulated * icd_share))
        provide(f"hazard_apop_{cls}", Expression(f"hazard_apop_{cls}", regulated * (1 - icd_share)))
        provide(f"hazard_necr_{cls}", Expression(f"hazard_necr_{cls}", necrotic_share * lethal))
        per_class[cls] = (hsp_obs, mp_obs, oxd_obs)

    # --- tissue-level signals: averages weighted by viable cells of each class ---
    def mean(values):
        return sum(weights[c] * v for c, v in zip(CELL_CLASSES, values)) / viable_total

    hsp_mean = Expression("hsp70_relative", mean([v[0] for v in per_class.values()]))
    mp_rel = Expression("misfolded_relative", mean([v[1] for v in per_class.values()]) / s0)
    ox_rel = Expression(
        "oxidative_damage_relative",
        (mean([v[2] for v in per_class.values()]) - ox_basal) / ox_damage_k,
    )
    provide("hsp_relative", hsp_mean)
    provide("stress_ligand", Expression("stress_ligand", mp_rel + ox_rel))
    provide("cd47_relative", Expression("cd47_relative", 1 - cd47_heat_drop * (1 - 1 / mp_rel)))
