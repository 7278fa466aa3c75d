"""Intracellular stress of a representative treated tumour cell: Fenton/CDT chemistry,
glutathione, heat-shock response, and the death hazards they imply.

Chemistry (seed review 001, eqs. 1-8; rate constants in LITERATURE.md §5), µM, per hour:

* Fenton initiation Fe²⁺ + H2O2 -> Fe³⁺ + •OH (k1, Arrhenius Ea ≈ 40 kJ/mol) and the
  slow recycling Fe³⁺ + H2O2 -> Fe²⁺ + HO2• (same temperature dependence);
* •OH at quasi-steady state (lifetime ns): produced by Fenton, consumed by GSH
  (eq. 8), Fe²⁺ (eq. 5) and cellular biomolecules, the last giving oxidative damage;
* GSH reduces Fe³⁺ to Fe²⁺ (eq. 7; no standard constant, assumed);
  oxidised glutathione is counted in GSH equivalents (GSox = 2·GSSG) and recycled by
  glutathione reductase; GSH synthesis is inhibited by BSO;
* H2O2: basal production (raised by glucose oxidase and, mildly, by heat) and removal by
  catalase/peroxiredoxins (cellular half-life ~1 ms, Sies 2014);
* labile iron: basal import, ferritin sequestration, release from dissolving
  heating particles and from a CDT agent depot.

Heat-shock response (structure after Petre et al. 2011 and Szymańska & Zylicz 2009,
reduced): misfolding φ(T) = φ0·(1 - 0.4 e^-(T-37))·1.4^(T-37) drives misfolded protein
MP, refolded by HSP70; MP activates HSF1 (Hill) and HSP70 mRNA; HSP70 protein follows
with its own half-life. HSP, mRNA are relative to baseline (1).

Death hazards (per hour): heat kill scales with the CEM43 rate (CHO D0 = 16.8 min at
43 °C); oxidative kill is a Hill function of oxidative damage, whose repair needs GSH.
HSP70 protects against apoptotic and immunogenic death (Apaf-1/caspase-3 block), an HSP
inhibitor strips that protection. Necrosis takes over at high temperature.
"""

import math

import sympy
from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.modelkit import bolus, hill, par, present, provide, signal

READS = {
    "temperature_C": ("degC", 37.0),
    "cem43_rate": ("1", 0.0),
    "particle_iron_mg_per_cm3": ("mg/cm^3", 0.0),
    "particle_dissolution_rate": ("1/h", 0.0),
    "bso_effect": ("fraction", 0.0),
    "hsp_inhibitor_effect": ("fraction", 0.0),
    "gox_effect": ("fraction", 0.0),
    "body_weight": ("kg", 0.02),
}
PROVIDES = {
    "hazard_apop": "1/h", "hazard_icd": "1/h", "hazard_necr": "1/h",
    "hsp_relative": "1", "stress_ligand": "1", "cd47_relative": "1",
}

#: µM of iron per (mg Fe / cm³) = 1e3 mg/L / 55.845 g/mol
UM_PER_MG_FE_PER_CM3 = 1e6 / 55.845
GAS_CONSTANT = 8.314462618  # J/(mol K)


def declare():
    temperature = signal("temperature_C")
    cem_rate = signal("cem43_rate")
    particle_fe = signal("particle_iron_mg_per_cm3")
    k_diss = signal("particle_dissolution_rate")
    bso = signal("bso_effect")
    hspi = signal("hsp_inhibitor_effect")
    gox = signal("gox_effect")
    body_weight = signal("body_weight")

    fe = Monomer("Fe", ["ox"], {"ox": ["ii", "iii"]})
    h2o2 = Monomer("H2O2")
    gsh = Monomer("GSH")
    gsox = Monomer("GSox")
    cdt = Monomer("CDTFe")
    oxd = Monomer("OxDamage")
    mp = Monomer("Misfolded")
    hspm = Monomer("HSPmRNA")
    hsp = Monomer("HSP70")

    # --- parameters ---
    k_fenton = par("k_fenton", "1/uM/h")
    k_fe3_h2o2 = par("k_fe3_h2o2", "1/uM/h")
    ea_fenton = par("ea_fenton", "J/mol")
    t_ref = par("fenton_reference_temperature", "K")
    k_oh_gsh = par("k_oh_gsh", "1/uM/h")
    k_oh_fe = par("k_oh_fe", "1/uM/h")
    k_oh_bio = par("k_oh_biomolecules", "1/h")
    k_gsh_fe3 = par("k_gsh_fe3", "1/uM/h")
    gr_vmax = par("gr_vmax", "uM/h")
    gr_km = par("gr_km", "uM")
    gsh_initial = par("gsh_initial", "uM")
    gsh_turnover = par("gsh_turnover", "1/h")
    h2o2_initial = par("h2o2_initial", "uM")
    h2o2_removal = par("h2o2_removal", "1/h")
    gox_h2o2_fold = par("gox_h2o2_fold", "1")
    heat_h2o2_q10 = par("heat_h2o2_q10", "1")
    labile_fe_initial = par("labile_fe_initial", "uM")
    fe_sequestration = par("fe_sequestration", "1/h")
    particle_fe_labile_fraction = par("particle_fe_labile_fraction", "fraction")
    cdt_release = par("cdt_release", "1/h")
    cdt_tumour_uptake = par("cdt_tumour_uptake", "1/g")
    damage_yield = par("oxidative_damage_yield", "1")
    damage_repair = par("oxidative_damage_repair", "1/h")
    repair_gsh_km = par("repair_gsh_km", "uM")
    ox_hazard_max = par("ox_hazard_max", "1/h")
    ox_damage_k = par("ox_damage_half", "uM")
    ox_hill = par("ox_hazard_hill", "1")
    misfold_rate = par("misfold_rate", "1/h")
    refold_rate = par("refold_rate", "1/h")
    misfold_deg = par("misfolded_degradation", "1/h")
    hsf_k = par("hsf1_activation_half", "1")
    hsf_hill = par("hsf1_hill", "1")
    hsp_mrna_max = par("hsp_mrna_induction", "1")
    hsp_mrna_decay = par("hsp_mrna_decay", "1/h")
    hsp_decay = par("hsp_decay", "1/h")
    gox_atp_drop = par("gox_hsp_translation_drop", "fraction")
    d0_43 = par("heat_d0_43", "h")
    hsp_protection = par("hsp_protection", "1")
    t_necrosis = par("necrosis_temperature", "degC")
    necrosis_width = par("necrosis_width", "delta_degC")
    icd_fraction_heat = par("icd_fraction_heat", "fraction")
    icd_fraction_ox = par("icd_fraction_ox", "fraction")
    cd47_heat_drop = par("cd47_heat_drop", "fraction")

    # --- initial state: basal steady state of the cell ---
    Initial(fe(ox="ii"), labile_fe_initial)
    present(fe(ox="iii"))
    Initial(h2o2(), h2o2_initial)
    Initial(gsh(), gsh_initial)
    for m in (gsox, cdt, oxd):
        present(m())
    mp_base = Expression("misfolded_basal", misfold_rate * 0.6 / (refold_rate + misfold_deg))
    Initial(mp(), mp_base)
    Initial(hspm(), Expression("hsp_mrna_basal", sympy.Float(1.0) + 0 * hsp_decay))
    Initial(hsp(), Expression("hsp_basal", sympy.Float(1.0) + 0 * hsp_decay))

    fe2 = Observable("labile_fe2_uM", fe(ox="ii"))
    fe3 = Observable("labile_fe3_uM", fe(ox="iii"))
    h2o2_obs = Observable("h2o2_uM", h2o2())
    gsh_obs = Observable("gsh_uM", gsh())
    gsox_obs = Observable("gsox_uM", gsox())
    oxd_obs = Observable("oxidative_damage", oxd())
    mp_obs = Observable("misfolded_protein", mp())
    hspm_obs = Observable("hsp_mrna_relative", hspm())
    hsp_obs = Observable("hsp70_relative", hsp())
    Observable("cdt_depot_uM", cdt())

    # --- Fenton chemistry with Arrhenius temperature dependence ---
    arrhenius = Expression("fenton_arrhenius", sympy.exp(
        -ea_fenton / GAS_CONSTANT * (1 / (temperature + 273.15) - 1 / t_ref)))
    Rule("fenton_initiation", fe(ox="ii") + h2o2() >> fe(ox="iii"), Expression("k_fenton_T", k_fenton * arrhenius))
    Rule("fenton_recycling", fe(ox="iii") + h2o2() >> fe(ox="ii"), Expression("k_fe3_h2o2_T", k_fe3_h2o2 * arrhenius))
    oh_production = k_fenton * arrhenius * fe2 * h2o2_obs
    oh = Expression("hydroxyl_radical_uM", oh_production / (k_oh_gsh * gsh_obs + k_oh_fe * fe2 + k_oh_bio))
    Rule("oh_scavenging_by_gsh", gsh() >> gsox(), Expression("gsh_oxidation_rate", k_oh_gsh * oh))
    Rule("oh_oxidises_fe2", fe(ox="ii") >> fe(ox="iii"), Expression("fe2_oh_rate", k_oh_fe * oh))
    Rule("oxidative_damage_step", None >> oxd(), Expression("damage_production", damage_yield * k_oh_bio * oh))
    Rule("damage_repair", oxd() >> None,
         Expression("damage_repair_rate", damage_repair * gsh_obs / (gsh_obs + repair_gsh_km)))
    Rule("gsh_reduces_fe3", fe(ox="iii") + gsh() >> fe(ox="ii") + gsox(), k_gsh_fe3)
    Rule("glutathione_reductase", gsox() >> gsh(), Expression("gr_rate", gr_vmax / (gr_km + gsox_obs)))
    Rule("gsh_synthesis", None >> gsh(), Expression("gsh_synthesis_rate", gsh_turnover * gsh_initial * (1 - bso)))
    Rule("gsh_export", gsh() >> None, gsh_turnover)
    Rule("h2o2_production", None >> h2o2(), Expression("h2o2_production_rate",
         h2o2_removal * h2o2_initial * (1 + gox_h2o2_fold * gox) * heat_h2o2_q10 ** ((temperature - 37) / 10)))
    Rule("h2o2_removal_step", h2o2() >> None, h2o2_removal)
    Rule("fe_import", None >> fe(ox="ii"), Expression("fe_import_rate", fe_sequestration * labile_fe_initial))
    Rule("fe2_sequestration", fe(ox="ii") >> None, fe_sequestration)
    Rule("fe3_sequestration", fe(ox="iii") >> None, fe_sequestration)
    Rule("particle_fe_release", None >> fe(ox="ii"), Expression("particle_fe_release_rate",
         particle_fe_labile_fraction * k_diss * particle_fe * UM_PER_MG_FE_PER_CM3))
    Rule("cdt_fe_release", cdt() >> fe(ox="ii"), cdt_release)
    # CDT dose mg/kg -> mg in body -> mg per g (≈ cm³) tumour -> µM
    bolus("cdt:fe", cdt(), body_weight * cdt_tumour_uptake * UM_PER_MG_FE_PER_CM3)

    # --- heat-shock response ---
    phi = Expression("misfolding_rate", misfold_rate * (1 - 0.4 * sympy.exp(-(temperature - 37)))
                     * sympy.Float(1.4) ** (temperature - 37))
    Rule("misfolding", None >> mp(), phi)
    Rule("refolding", mp() >> None, Expression("refolding_rate", refold_rate * hsp_obs))
    Rule("misfolded_degradation_step", mp() >> None, misfold_deg)
    activation = hill(mp_obs / mp_base, hsf_k, hsf_hill)
    activation_basal = hill(1, hsf_k, hsf_hill)
    Rule("hsp_transcription", None >> hspm(), Expression("hsp_transcription_rate",
         hsp_mrna_decay * (1 + hsp_mrna_max * (activation - activation_basal))))
    Rule("hsp_mrna_decay_step", hspm() >> None, hsp_mrna_decay)
    Rule("hsp_translation", None >> hsp(), Expression("hsp_translation_rate",
         hsp_decay * hspm_obs * (1 - gox_atp_drop * gox)))
    Rule("hsp_decay_step", hsp() >> None, hsp_decay)

    # --- death hazards by fate ---
    hsp_functional = Expression("hsp_functional", hsp_obs * (1 - hspi))
    protection = Expression("hsp_survival_factor", (1 + hsp_protection) / (1 + hsp_protection * hsp_functional))
    necrotic_share = Expression("necrotic_share", 1 / (1 + sympy.exp(-(temperature - t_necrosis) / necrosis_width)))
    heat_hazard = Expression("heat_hazard", cem_rate / d0_43)
    ox_hazard = Expression("oxidative_hazard", ox_hazard_max * hill(oxd_obs, ox_damage_k, ox_hill))
    regulated = (1 - necrotic_share) * heat_hazard * protection
    provide("hazard_icd", Expression("hazard_icd",
            regulated * icd_fraction_heat + ox_hazard * icd_fraction_ox * protection))
    provide("hazard_apop", Expression("hazard_apop",
            regulated * (1 - icd_fraction_heat) + ox_hazard * (1 - icd_fraction_ox) * protection))
    provide("hazard_necr", Expression("hazard_necr", necrotic_share * heat_hazard))
    provide("hsp_relative", hsp_obs)
    provide("stress_ligand", Expression("stress_ligand", mp_obs / mp_base - 1 + oxd_obs / ox_damage_k))
    provide("cd47_relative", Expression("cd47_relative", 1 - cd47_heat_drop * (1 - 1 / (mp_obs / mp_base))))
