"""Cell death and danger signals: stress hazards move viable treated cells into dying
compartments by fate, and dying cells release DAMPs and antigen.

* viable --h_fate--> dying(fate) for fate in apoptotic, immunogenic (ICD), necrotic,
  for each particle-load class, with the per-cell hazards of the stress link (a cell-level hazard h becomes the
  population flux h·N, DESIGN.md).
* DAMPs (amounts, in mm³ of cell-equivalents released, decaying):
  calreticulin is exposed on the surface of ICD cells (read as the CRT-positive
  fraction); extracellular ATP is secreted by ICD cells and degraded by CD39/CD73;
  HMGB1 is released when ICD and necrotic cells lose membrane integrity (at
  clearance); HSP70 is released by necrotic and ICD cells in proportion to their
  HSP70 content. Apoptotic cells release antigen but few DAMPs (Kroemer et al.,
  via seed review 000: ICD = CRT + ATP + HMGB1).
* Antigen is released on clearance of every dying cell, at both sites.

The immunogenic weight of each DAMP in dendritic-cell maturation is in the immune link.
"""

from pysb import Expression, Monomer, Observable, Rule

from mhimmune.modelkit import CELL_CLASSES, component, par, present, provide, signal

READS = {
    **{f"hazard_{f}_{c}": ("1/h", 0.0) for f in ("apop", "icd", "necr") for c in CELL_CLASSES},
    "hsp_relative": ("1", 1.0),
}
PROVIDES = {"damp_signal": "mm^3", "antigen_treated": "mm^3", "antigen_distant": "mm^3",
            "crt_fraction_treated": "fraction"}

SITES = ("treated", "distant")
FATES = ("apop", "icd", "necr")


def declare():
    tumour = component("Tumour")
    hsp = signal("hsp_relative")
    for cls in CELL_CLASSES:
        for fate in FATES:
            Rule(f"stress_death_{fate}_{cls}",
                 tumour(site="treated", state="viable", cls=cls) >> tumour(site="treated", state=fate, cls=cls),
                 signal(f"hazard_{fate}_{cls}"))

    atp = Monomer("ATPe", ["site"], {"site": list(SITES)})
    hmgb1 = Monomer("HMGB1", ["site"], {"site": list(SITES)})
    hsp_ext = Monomer("HSP70e", ["site"], {"site": list(SITES)})
    antigen = Monomer("Antigen", ["site"], {"site": list(SITES)})

    atp_secretion = par("atp_secretion", "1/h")
    atp_degradation = par("atp_degradation", "1/h")
    hmgb1_icd_yield = par("hmgb1_yield_icd", "1")
    hmgb1_necr_yield = par("hmgb1_yield_necr", "1")
    hmgb1_decay = par("hmgb1_decay", "1/h")
    hsp_release_yield = par("hsp70_release_yield", "1")
    hsp_ext_decay = par("hsp70e_decay", "1/h")
    antigen_decay = par("antigen_decay", "1/h")
    clearance = {f: component(f"clearance_{f}") for f in FATES}

    for site in SITES:
        for m in (atp, hmgb1, hsp_ext, antigen):
            present(m(site=site))
        dying = {f: component(f"dying_{f}_{site}") for f in FATES}
        hsp_level = hsp if site == "treated" else 1
        Rule(f"atp_release_{site}", None >> atp(site=site), Expression(f"atp_release_flux_{site}", atp_secretion * dying["icd"]))
        Rule(f"atp_degradation_{site}", atp(site=site) >> None, atp_degradation)
        Rule(f"hmgb1_release_{site}", None >> hmgb1(site=site), Expression(f"hmgb1_release_flux_{site}",
             hmgb1_icd_yield * clearance["icd"] * dying["icd"] + hmgb1_necr_yield * clearance["necr"] * dying["necr"]))
        Rule(f"hmgb1_decay_{site}", hmgb1(site=site) >> None, hmgb1_decay)
        Rule(f"hsp70_release_{site}", None >> hsp_ext(site=site), Expression(f"hsp70_release_flux_{site}",
             hsp_release_yield * hsp_level * (clearance["icd"] * dying["icd"] + clearance["necr"] * dying["necr"])))
        Rule(f"hsp70e_decay_{site}", hsp_ext(site=site) >> None, hsp_ext_decay)
        Rule(f"antigen_release_{site}", None >> antigen(site=site), Expression(f"antigen_release_flux_{site}",
             sum(clearance[f] * dying[f] for f in FATES)))
        Rule(f"antigen_decay_{site}", antigen(site=site) >> None, antigen_decay)
        Observable(f"atp_e_{site}", atp(site=site))
        Observable(f"hmgb1_{site}", hmgb1(site=site))
        Observable(f"hsp70_e_{site}", hsp_ext(site=site))
        provide(f"antigen_{site}", Observable(f"antigen_{site}", antigen(site=site)))

    total_treated = component("tumour_volume_treated")
    provide("crt_fraction_treated", Expression("crt_fraction_treated",
            component("dying_icd_treated") / (total_treated + 1e-9)))
    crt_weight = par("damp_weight_crt", "1")
    atp_weight = par("damp_weight_atp", "1")
    hmgb1_weight = par("damp_weight_hmgb1", "1")
    hsp_weight = par("damp_weight_hsp70", "1")
    provide("damp_signal", Expression("damp_signal", sum(
        crt_weight * component(f"dying_icd_{s}") + atp_weight * component(f"atp_e_{s}")
        + hmgb1_weight * component(f"hmgb1_{s}") + hsp_weight * component(f"hsp70_e_{s}") for s in SITES)))
