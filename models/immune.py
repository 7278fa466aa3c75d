"""Immune link: DAMPs -> dendritic cells -> lymph-node priming -> effector T cells that
traffic to both tumours; NK cells, macrophages M1/M2, Tregs, MDSCs; PD-1/PD-L1.

Structure after Kosinsky et al. 2018 (J Immunother Cancer 6:17) and the QSP-IO
platform (Jafarnejad 2019; Sové 2020), reduced (LITERATURE.md §6):

* Immature DCs (tumour-draining pool) mature on DAMPs (saturating, Hill) plus a basal
  rate; mature DCs prime CD8 effectors in the lymph node in proportion to antigen
  availability, helped by CD4 helper cells and suppressed by Tregs and MDSCs.
* CD8 effectors leave the node and infiltrate each tumour with a saturating
  dependence on its volume (Kosinsky: k·TV/(TV + S_L)); in the tumour they kill viable
  cells, secrete IFN-γ, and exhaust through PD-1/PD-L1; some become memory cells that
  reactivate on antigen (rechallenge).
* PD-L1 on tumour cells is induced by IFN-γ (adaptive resistance); free PD-L1 =
  PD-L1·(1 - antibody occupancy) inhibits killing and drives exhaustion.
* NK cells (treated site) are activated by stress ligands; macrophages (treated site)
  polarise M2 -> M1 on DAMPs and IFN-γ and back on Treg-derived IL-10/TGF-β, and
  phagocytose tumour cells more when CRT is exposed and CD47 is lowered.
* A CD8-depleting antibody adds a death rate to every CD8 population.

Immune cells are in 10⁶ cells; tumour in mm³ (about 10⁶ cells per mm³).
"""

import sympy
from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.modelkit import component, hill, par, present, provide, signal

READS = {
    "damp_signal": ("mm^3", 0.0), "antigen_treated": ("mm^3", 0.0), "antigen_distant": ("mm^3", 0.0),
    "crt_fraction_treated": ("fraction", 0.0), "stress_ligand": ("1", 1.0), "cd47_relative": ("1", 1.0),
    "pdl1_occupancy": ("fraction", 0.0), "cd8_depletion_effect": ("fraction", 0.0),
    "tumour_volume_treated": ("mm^3", 200.0), "tumour_volume_distant": ("mm^3", 100.0),
    "viable_treated": ("mm^3", 200.0), "viable_distant": ("mm^3", 100.0),
}
PROVIDES = {"cd8_effectors_total": "Mcell", "mature_dc_fraction": "fraction", "m1_m2_ratio": "1"}

SITES = ("treated", "distant")


def declare():
    tumour = component("Tumour")
    damp = signal("damp_signal")
    antigen = signal("antigen_treated") + signal("antigen_distant")
    crt = signal("crt_fraction_treated")
    stress = signal("stress_ligand")
    cd47 = signal("cd47_relative")
    occupancy = signal("pdl1_occupancy")
    depletion = signal("cd8_depletion_effect")
    volume = {s: signal(f"tumour_volume_{s}") for s in SITES}
    viable = {s: signal(f"viable_{s}") for s in SITES}
    burden = volume["treated"] + volume["distant"]

    dc = Monomer("DC", ["state"], {"state": ["imm", "mat"]})
    cd8 = Monomer("CD8", ["loc", "state"], {"loc": ["ln", *SITES], "state": ["eff", "exh", "mem"]})
    th = Monomer("CD4h")
    treg = Monomer("Treg")
    mdsc = Monomer("MDSC")
    nk = Monomer("NK", ["state"], {"state": ["rest", "act"]})
    mac = Monomer("Mac", ["pol"], {"pol": ["M1", "M2"]})
    ifng = Monomer("IFNg", ["site"], {"site": list(SITES)})
    pdl1 = Monomer("PDL1", ["site"], {"site": list(SITES)})

    # ---- dendritic cells ----
    dc_source = par("dc_source", "Mcell/h")
    dc_death = par("dc_immature_death", "1/h")
    dc_basal = par("dc_basal_maturation", "1/h")
    dc_mat = par("dc_maturation_max", "1/h")
    damp_half = par("damp_half_maturation", "mm^3")
    dcm_death = par("dc_mature_death", "1/h")
    dci0 = Expression("dc_immature_initial", dc_source / (dc_death + dc_basal))
    dcm0 = Expression("dc_mature_initial", dc_basal * dci0 / dcm_death)
    Initial(dc(state="imm"), dci0)
    Initial(dc(state="mat"), dcm0)
    Rule("dc_influx", None >> dc(state="imm"), dc_source)
    Rule("dc_immature_death_step", dc(state="imm") >> None, dc_death)
    Rule("dc_maturation", dc(state="imm") >> dc(state="mat"),
         Expression("dc_maturation_rate", dc_basal + dc_mat * hill(damp, damp_half)))
    Rule("dc_mature_death_step", dc(state="mat") >> None, dcm_death)
    dci_obs = Observable("dc_immature", dc(state="imm"))
    dcm_obs = Observable("dc_mature", dc(state="mat"))
    provide("mature_dc_fraction", Expression("mature_dc_fraction", dcm_obs / (dcm_obs + dci_obs)))

    # ---- CD4 help, Tregs, MDSCs ----
    th_rate = par("cd4_priming", "1/h")
    th_death = par("cd4_death", "1/h")
    th_half = par("cd4_help_half", "Mcell")
    help_max = par("cd4_help_max", "1")
    Initial(th(), Expression("cd4_initial", th_rate * dcm0 / th_death))
    Rule("cd4_priming_step", None >> th(), Expression("cd4_priming_flux", th_rate * dcm_obs))
    Rule("cd4_death_step", th() >> None, th_death)
    th_obs = Observable("cd4_helper", th())
    treg_source = par("treg_source", "Mcell/h")
    treg_expansion = par("treg_expansion", "Mcell/h")
    treg_death = par("treg_death", "1/h")
    burden_half = par("burden_half", "mm^3")
    Initial(treg(), Expression("treg_initial", treg_source / treg_death))
    Rule("treg_influx", None >> treg(), Expression("treg_influx_flux",
         treg_source + treg_expansion * burden / (burden + burden_half)))
    Rule("treg_death_step", treg() >> None, treg_death)
    treg_obs = Observable("treg", treg())
    mdsc_source = par("mdsc_source", "Mcell/h")
    mdsc_recruit = par("mdsc_recruitment", "Mcell/h")
    mdsc_death = par("mdsc_death", "1/h")
    Initial(mdsc(), Expression("mdsc_initial", mdsc_source / mdsc_death))
    Rule("mdsc_influx", None >> mdsc(), Expression("mdsc_influx_flux",
         mdsc_source + mdsc_recruit * burden / (burden + burden_half)))
    Rule("mdsc_death_step", mdsc() >> None, mdsc_death)
    mdsc_obs = Observable("mdsc", mdsc())
    treg_half = par("treg_suppression_half", "Mcell")
    mdsc_half = par("mdsc_suppression_half", "Mcell")
    suppression = Expression("immune_suppression_factor",
                             1 / (1 + treg_obs / treg_half + mdsc_obs / mdsc_half))

    # ---- CD8 priming, trafficking, killing, exhaustion, memory ----
    prime = par("cd8_priming", "1/h")
    antigen_half = par("antigen_half_priming", "mm^3")
    traffic = par("cd8_trafficking", "1/h")
    s_l = par("trafficking_half_volume", "mm^3")
    eff_death = par("cd8_effector_death", "1/h")
    exh_rate = par("cd8_exhaustion", "1/h")
    exh_death = par("cd8_exhausted_death", "1/h")
    mem_rate = par("cd8_memory_formation", "1/h")
    mem_death = par("cd8_memory_death", "1/h")
    mem_act = par("cd8_memory_activation", "1/h")
    depletion_rate = par("cd8_depletion_rate", "1/h")
    kill = par("ctl_kill_rate", "mm^3/Mcell/h")
    kill_half = par("ctl_kill_half", "mm^3")
    pdl1_inhibition = par("pdl1_inhibition", "1")
    help_factor = 1 + help_max * th_obs / (th_obs + th_half)
    antigen_signal = hill(antigen, antigen_half)
    present(cd8(loc="ln", state="eff"))
    present(cd8(loc="ln", state="mem"))
    for site in SITES:
        present(cd8(loc=site, state="eff"))
        present(cd8(loc=site, state="exh"))
    Rule("cd8_priming_step", None >> cd8(loc="ln", state="eff"), Expression("cd8_priming_flux",
         prime * dcm_obs * antigen_signal * help_factor * suppression))
    Rule("cd8_memory_formation_step", cd8(loc="ln", state="eff") >> cd8(loc="ln", state="mem"), mem_rate)
    Rule("cd8_memory_activation_step", cd8(loc="ln", state="mem") >> cd8(loc="ln", state="eff"),
         Expression("cd8_memory_activation_rate", mem_act * antigen_signal))
    Rule("cd8_memory_death_step", cd8(loc="ln", state="mem") >> None, mem_death)
    Rule("cd8_ln_death", cd8(loc="ln", state="eff") >> None, eff_death)
    Rule("cd8_depletion", cd8() >> None, Expression("cd8_depletion_hazard", depletion_rate * depletion))
    ifn_prod = par("ifng_production", "1/h")
    ifn_decay = par("ifng_decay", "1/h")
    nk_ifn = par("nk_ifng_share", "1")
    pdl1_turnover = par("pdl1_turnover", "1/h")
    pdl1_induction = par("pdl1_ifng_induction", "1")
    ifn_half = par("ifng_half_pdl1", "Mcell")
    pdl1_baseline = Expression("pdl1_baseline", sympy.Float(1.0))
    effectors = {}
    for site in SITES:
        Rule(f"cd8_trafficking_{site}", cd8(loc="ln", state="eff") >> cd8(loc=site, state="eff"),
             Expression(f"cd8_trafficking_rate_{site}", traffic * volume[site] / (volume[site] + s_l)))
        eff = Observable(f"cd8_effector_{site}", cd8(loc=site, state="eff"))
        Observable(f"cd8_exhausted_{site}", cd8(loc=site, state="exh"))
        effectors[site] = eff
        Initial(pdl1(site=site), pdl1_baseline)
        present(ifng(site=site))
        ifn_obs = Observable(f"ifng_{site}", ifng(site=site))
        pdl1_obs = Observable(f"pdl1_{site}", pdl1(site=site))
        free = Expression(f"pdl1_free_{site}", pdl1_obs * (1 - occupancy))
        Rule(f"pdl1_expression_{site}", None >> pdl1(site=site), Expression(f"pdl1_expression_rate_{site}",
             pdl1_turnover * (1 + pdl1_induction * ifn_obs / (ifn_obs + ifn_half))))
        Rule(f"pdl1_turnover_{site}", pdl1(site=site) >> None, pdl1_turnover)
        Rule(f"cd8_exhaustion_{site}", cd8(loc=site, state="eff") >> cd8(loc=site, state="exh"),
             Expression(f"cd8_exhaustion_rate_{site}", exh_rate * free))
        Rule(f"cd8_effector_death_{site}", cd8(loc=site, state="eff") >> None, eff_death)
        Rule(f"cd8_exhausted_death_{site}", cd8(loc=site, state="exh") >> None, exh_death)
        Rule(f"ctl_killing_{site}", tumour(site=site, state="viable") >> tumour(site=site, state="apop"),
             Expression(f"ctl_kill_hazard_{site}",
                        kill * eff * suppression / (viable[site] + kill_half) / (1 + pdl1_inhibition * free)))
        Rule(f"ifng_decay_{site}", ifng(site=site) >> None, ifn_decay)
        effectors[site] = (eff, ifn_obs)
    provide("cd8_effectors_total", Expression("cd8_effectors_total", sum(e for e, _ in effectors.values())))

    # ---- NK cells (treated site) ----
    nk_source = par("nk_source", "Mcell/h")
    nk_death = par("nk_death", "1/h")
    nk_act = par("nk_activation", "1/h")
    nk_deact = par("nk_deactivation", "1/h")
    stress_half = par("stress_ligand_half", "1")
    nk_kill = par("nk_kill_rate", "mm^3/Mcell/h")
    nk_rest0 = Expression("nk_rest_initial", nk_source / nk_death)
    Initial(nk(state="rest"), nk_rest0)
    present(nk(state="act"))
    Rule("nk_influx", None >> nk(state="rest"), nk_source)
    Rule("nk_death_rest", nk(state="rest") >> None, nk_death)
    Rule("nk_death_act", nk(state="act") >> None, nk_death)
    Rule("nk_activation_step", nk(state="rest") >> nk(state="act"),
         Expression("nk_activation_rate", nk_act * hill(stress, stress_half, 2)))
    Rule("nk_deactivation_step", nk(state="act") >> nk(state="rest"), nk_deact)
    nka = Observable("nk_active", nk(state="act"))
    Rule("nk_killing", tumour(site="treated", state="viable") >> tumour(site="treated", state="apop"),
         Expression("nk_kill_hazard", nk_kill * nka * suppression / (viable["treated"] + kill_half)))

    # ---- IFN-γ production (CD8 effectors at each site, NK at the treated site) ----
    for site in SITES:
        eff, _ = effectors[site]
        producers = eff + nk_ifn * nka if site == "treated" else eff
        Rule(f"ifng_production_{site}", None >> ifng(site=site),
             Expression(f"ifng_production_flux_{site}", ifn_prod * producers))

    # ---- macrophages (treated site) ----
    mac_recruit = par("macrophage_recruitment", "Mcell/h")
    mac_death = par("macrophage_death", "1/h")
    m2_to_m1 = par("m2_to_m1_max", "1/h")
    m1_to_m2 = par("m1_to_m2", "1/h")
    m1_basal = par("m1_basal_fraction", "fraction")
    phag = par("phagocytosis_rate", "mm^3/Mcell/h")
    crt_gain = par("crt_phagocytosis_gain", "1")
    mac_ifn_half = par("ifng_half_m1", "Mcell")
    present(mac(pol="M1"))
    present(mac(pol="M2"))
    Rule("macrophage_recruitment_step", None >> mac(pol="M2"), Expression("macrophage_recruitment_flux",
         mac_recruit * volume["treated"] / (volume["treated"] + burden_half)))
    Rule("macrophage_death_step", mac() >> None, mac_death)
    ifn_t = effectors["treated"][1]
    Rule("m2_to_m1", mac(pol="M2") >> mac(pol="M1"), Expression("m2_to_m1_rate",
         m1_to_m2 * m1_basal / (1 - m1_basal)
         + m2_to_m1 * (0.5 * hill(damp, damp_half) + 0.5 * ifn_t / (ifn_t + mac_ifn_half))))
    Rule("m1_to_m2_step", mac(pol="M1") >> mac(pol="M2"), Expression("m1_to_m2_rate",
         m1_to_m2 * (1 + treg_obs / treg_half)))
    m1 = Observable("macrophage_m1", mac(pol="M1"))
    m2 = Observable("macrophage_m2", mac(pol="M2"))
    provide("m1_m2_ratio", Expression("m1_m2_ratio", m1 / (m2 + 1e-9)))
    eat = Expression("phagocytosis_hazard",
                     phag * m1 * (1 + crt_gain * crt) / cd47 / (viable["treated"] + kill_half))
    Rule("phagocytosis", tumour(site="treated", state="viable") >> tumour(site="treated", state="apop"), eat)
