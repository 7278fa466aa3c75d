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
MP, refolded by HSP70; MP activates HSF1 (Hill a) and HSP70 mRNA, transcribed at
k·(1 + A·a)/(1 + A·a_basal) so that it is 1 at baseline and never negative; HSP70 protein follows
with its own half-life. HSP, mRNA are relative to baseline (1).

Every species exists once per particle-load class (``cls`` site): the class sees its own
temperature (heating link) and its own share of particle iron; CDT iron is taken up
uniformly. Signals for the tissue (HSP70, stress ligands, CD47) are averages weighted by
the viable cells of each class.

Death hazards (per hour): heat kill scales with the CEM43 rate (CHO D0 = 16.8 min at
43 °C); oxidative kill is a Hill function of oxidative damage, whose repair needs GSH.
HSP70 protects against apoptotic and immunogenic death (Apaf-1/caspase-3 block), an HSP
inhibitor strips that protection. Necrosis takes over at high temperature.
"""

import math

import sympy
from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.modelkit import CELL_CLASSES, bolus, class_load, hill, par, present, provide, signal

READS = {
    "temperature_C_low": ("degC", 37.0), "temperature_C_mid": ("degC", 37.0), "temperature_C_high": ("degC", 37.0),
    "cem43_rate_low": ("1", 0.0), "cem43_rate_mid": ("1", 0.0), "cem43_rate_high": ("1", 0.0),
    "particle_iron_mg_per_cm3": ("mg/cm^3", 0.0),
    "particle_dissolution_rate": ("1/h", 0.0),
    "particle_load_sigma": ("1", 0.5),
    "bso_effect": ("fraction", 0.0),
    "hsp_inhibitor_effect": ("fraction", 0.0),
    "gox_effect": ("fraction", 0.0),
    "body_weight": ("kg", 0.02),
    "viable_treated_low": ("mm^3", 1.0), "viable_treated_mid": ("mm^3", 4.0), "viable_treated_high": ("mm^3", 1.0),
}
PROVIDES = {
    **{f"hazard_{f}_{c}": "1/h" for f in ("apop", "icd", "necr") for c in CELL_CLASSES},
    "hsp_relative": "1", "stress_ligand": "1", "cd47_relative": "1",
}

#: µM of iron per (mg Fe / cm³) = 1e3 mg/L / 55.845 g/mol
UM_PER_MG_FE_PER_CM3 = 1e6 / 55.845
GAS_CONSTANT = 8.314462618  # J/(mol K)


def declare():
    particle_fe = signal("particle_iron_mg_per_cm3")
    k_diss = signal("particle_dissolution_rate")
    sigma = signal("particle_load_sigma")
    bso = signal("bso_effect")
    hspi = signal("hsp_inhibitor_effect")
    gox = signal("gox_effect")
    body_weight = signal("body_weight")

    c = {"cls": list(CELL_CLASSES)}
    fe = Monomer("Fe", ["ox", "cls"], {"ox": ["ii", "iii"], **c})
    h2o2 = Monomer("H2O2", ["cls"], c)
    gsh = Monomer("GSH", ["cls"], c)
    gsox = Monomer("GSox", ["cls"], c)
    cdt = Monomer("CDTFe", ["cls"], c)
    oxd = Monomer("OxDamage", ["cls"], c)
    mp = Monomer("Misfolded", ["cls"], c)
    hspm = Monomer("HSPmRNA", ["cls"], c)
    hsp = Monomer("HSP70", ["cls"], c)

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

    mp_base = Expression("misfolded_basal", misfold_rate * 0.6 / (refold_rate + misfold_deg))
    one = Expression("relative_basal", sympy.Float(1.0))
    activation_basal = hill(1, hsf_k, hsf_hill)
    viable = {cls: signal(f"viable_treated_{cls}") for cls in CELL_CLASSES}
    viable_total = sum(viable.values()) + 1e-12
    per_class = {}

    for cls in CELL_CLASSES:
        temperature = signal(f"temperature_C_{cls}")
        cem_rate = signal(f"cem43_rate_{cls}")
        load = class_load(cls, sigma)

        # --- initial state: basal steady state of the cell ---
        Initial(fe(ox="ii", cls=cls), labile_fe_initial)
        present(fe(ox="iii", cls=cls))
        Initial(h2o2(cls=cls), h2o2_initial)
        Initial(gsh(cls=cls), gsh_initial)
        for m in (gsox, cdt, oxd):
            present(m(cls=cls))
        Initial(mp(cls=cls), mp_base)
        Initial(hspm(cls=cls), one)
        Initial(hsp(cls=cls), one)

        fe2 = Observable(f"labile_fe2_uM_{cls}", fe(ox="ii", cls=cls))
        Observable(f"labile_fe3_uM_{cls}", fe(ox="iii", cls=cls))
        h2o2_obs = Observable(f"h2o2_uM_{cls}", h2o2(cls=cls))
        gsh_obs = Observable(f"gsh_uM_{cls}", gsh(cls=cls))
        gsox_obs = Observable(f"gsox_uM_{cls}", gsox(cls=cls))
        oxd_obs = Observable(f"oxidative_damage_{cls}", oxd(cls=cls))
        mp_obs = Observable(f"misfolded_protein_{cls}", mp(cls=cls))
        hspm_obs = Observable(f"hsp_mrna_relative_{cls}", hspm(cls=cls))
        hsp_obs = Observable(f"hsp70_relative_{cls}", hsp(cls=cls))
        Observable(f"cdt_depot_uM_{cls}", cdt(cls=cls))

        # --- Fenton chemistry with Arrhenius temperature dependence ---
        arrhenius = Expression(f"fenton_arrhenius_{cls}", sympy.exp(
            -ea_fenton / GAS_CONSTANT * (1 / (temperature + 273.15) - 1 / t_ref)))
        k1 = Expression(f"k_fenton_T_{cls}", k_fenton * arrhenius)
        Rule(f"fenton_initiation_{cls}", fe(ox="ii", cls=cls) + h2o2(cls=cls) >> fe(ox="iii", cls=cls), k1)
        Rule(f"fenton_recycling_{cls}", fe(ox="iii", cls=cls) + h2o2(cls=cls) >> fe(ox="ii", cls=cls),
             Expression(f"k_fe3_h2o2_T_{cls}", k_fe3_h2o2 * arrhenius))
        oh = Expression(f"hydroxyl_radical_uM_{cls}",
                        k1 * fe2 * h2o2_obs / (k_oh_gsh * gsh_obs + k_oh_fe * fe2 + k_oh_bio))
        Rule(f"oh_scavenging_by_gsh_{cls}", gsh(cls=cls) >> gsox(cls=cls),
             Expression(f"gsh_oxidation_rate_{cls}", k_oh_gsh * oh))
        Rule(f"oh_oxidises_fe2_{cls}", fe(ox="ii", cls=cls) >> fe(ox="iii", cls=cls),
             Expression(f"fe2_oh_rate_{cls}", k_oh_fe * oh))
        Rule(f"oxidative_damage_step_{cls}", None >> oxd(cls=cls),
             Expression(f"damage_production_{cls}", damage_yield * k_oh_bio * oh))
        Rule(f"damage_repair_{cls}", oxd(cls=cls) >> None,
             Expression(f"damage_repair_rate_{cls}", damage_repair * gsh_obs / (gsh_obs + repair_gsh_km)))
        Rule(f"gsh_reduces_fe3_{cls}", fe(ox="iii", cls=cls) + gsh(cls=cls) >> fe(ox="ii", cls=cls) + gsox(cls=cls),
             k_gsh_fe3)
        Rule(f"glutathione_reductase_{cls}", gsox(cls=cls) >> gsh(cls=cls),
             Expression(f"gr_rate_{cls}", gr_vmax / (gr_km + gsox_obs)))
        Rule(f"gsh_synthesis_{cls}", None >> gsh(cls=cls),
             Expression(f"gsh_synthesis_rate_{cls}", gsh_turnover * gsh_initial * (1 - bso)))
        Rule(f"gsh_export_{cls}", gsh(cls=cls) >> None, gsh_turnover)
        Rule(f"h2o2_production_{cls}", None >> h2o2(cls=cls), Expression(f"h2o2_production_rate_{cls}",
             h2o2_removal * h2o2_initial * (1 + gox_h2o2_fold * gox) * heat_h2o2_q10 ** ((temperature - 37) / 10)))
        Rule(f"h2o2_scavenging_{cls}", h2o2(cls=cls) >> None, h2o2_removal)
        Rule(f"fe_import_{cls}", None >> fe(ox="ii", cls=cls),
             Expression(f"fe_import_rate_{cls}", fe_sequestration * labile_fe_initial))
        Rule(f"fe_sequestration_{cls}", fe(cls=cls) >> None, fe_sequestration)
        Rule(f"particle_fe_release_{cls}", None >> fe(ox="ii", cls=cls), Expression(f"particle_fe_release_rate_{cls}",
             particle_fe_labile_fraction * k_diss * particle_fe * load * UM_PER_MG_FE_PER_CM3))
        Rule(f"cdt_fe_release_{cls}", cdt(cls=cls) >> fe(ox="ii", cls=cls), cdt_release)
        # CDT dose mg/kg -> mg in body -> mg per g (≈ cm³) tumour -> µM, uniform over classes
        bolus("cdt:fe", cdt(cls=cls), body_weight * cdt_tumour_uptake * UM_PER_MG_FE_PER_CM3)

        # --- heat-shock response ---
        phi = Expression(f"misfolding_rate_{cls}", misfold_rate * (1 - 0.4 * sympy.exp(-(temperature - 37)))
                         * sympy.Float(1.4) ** (temperature - 37))
        Rule(f"misfolding_{cls}", None >> mp(cls=cls), phi)
        Rule(f"refolding_{cls}", mp(cls=cls) >> None, Expression(f"refolding_rate_{cls}", refold_rate * hsp_obs))
        Rule(f"misfolded_clearance_{cls}", mp(cls=cls) >> None, misfold_deg)
        activation = hill(mp_obs / mp_base, hsf_k, hsf_hill)
        Rule(f"hsp_transcription_{cls}", None >> hspm(cls=cls), Expression(f"hsp_transcription_rate_{cls}",
             hsp_mrna_decay * (1 + hsp_mrna_max * activation) / (1 + hsp_mrna_max * activation_basal)))
        Rule(f"hsp_mrna_turnover_{cls}", hspm(cls=cls) >> None, hsp_mrna_decay)
        Rule(f"hsp_translation_{cls}", None >> hsp(cls=cls), Expression(f"hsp_translation_rate_{cls}",
             hsp_decay * hspm_obs * (1 - gox_atp_drop * gox)))
        Rule(f"hsp70_turnover_{cls}", hsp(cls=cls) >> None, hsp_decay)

        # --- death hazards by fate ---
        hsp_functional = hsp_obs * (1 - hspi)
        protection = Expression(f"hsp_survival_factor_{cls}",
                                (1 + hsp_protection) / (1 + hsp_protection * hsp_functional))
        necrotic_share = Expression(f"necrotic_share_{cls}",
                                    1 / (1 + sympy.exp(-(temperature - t_necrosis) / necrosis_width)))
        heat_hazard = Expression(f"heat_hazard_{cls}", cem_rate / d0_43)
        ox_hazard = Expression(f"oxidative_hazard_{cls}", ox_hazard_max * hill(oxd_obs, ox_damage_k, ox_hill))
        regulated = (1 - necrotic_share) * heat_hazard * protection
        provide(f"hazard_icd_{cls}", Expression(f"hazard_icd_{cls}",
                regulated * icd_fraction_heat + ox_hazard * icd_fraction_ox * protection))
        provide(f"hazard_apop_{cls}", Expression(f"hazard_apop_{cls}",
                regulated * (1 - icd_fraction_heat) + ox_hazard * (1 - icd_fraction_ox) * protection))
        provide(f"hazard_necr_{cls}", Expression(f"hazard_necr_{cls}", necrotic_share * heat_hazard))
        per_class[cls] = (hsp_obs, mp_obs, oxd_obs)

    # --- tissue-level signals: averages weighted by viable cells of each class ---
    def mean(values):
        return sum(viable[c] * v for c, v in zip(CELL_CLASSES, values)) / viable_total

    hsp_mean = Expression("hsp70_relative", mean([v[0] for v in per_class.values()]))
    mp_rel = Expression("misfolded_relative", mean([v[1] for v in per_class.values()]) / mp_base)
    ox_rel = Expression("oxidative_damage_relative", mean([v[2] for v in per_class.values()]) / ox_damage_k)
    provide("hsp_relative", hsp_mean)
    provide("stress_ligand", Expression("stress_ligand", mp_rel + ox_rel))
    provide("cd47_relative", Expression("cd47_relative", 1 - cd47_heat_drop * (1 - 1 / mp_rel)))
