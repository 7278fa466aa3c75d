"""Cell death and danger signals: stress hazards move treated cells into dying
compartments by fate, and dying and dead cells release DAMPs and antigen.

Fates (per particle-load class, with the per-cell hazards of the stress link; a
cell-level hazard h becomes the population flux h·N):

* viable --h_fate--> dying(fate) for fate in apoptotic, immunogenic (ICD), necrotic;
* sublethal injury: for every lethal hit, ``sublethal_damage_ratio`` cells are
  injured without dying (viable -> damaged, growth-arrested); damaged cells repair
  back (``damage_repair``) or die by the same hazards as viable ones.

Danger signals (amounts in mm³ of cell-equivalents, per site), after the ICD
hallmarks CRT + ATP + HMGB1 (Kroemer et al. 2013, Annu Rev Immunol 31:51 [kroemer2013]):

* calreticulin (CRT) is exposed on the surface of cells dying by ICD (pre-mortem ER
  stress) and, to a small extent, on apoptotic cells; the CRT-positive fraction of the
  treated tumour (the flow-cytometry readout, with a constant background of CRT-positive
  events) also raises phagocytosis (immune link);
* extracellular ATP is secreted by ICD cells (autophagy-dependent) and, as a find-me
  signal, weakly by apoptotic cells (pannexin-1), and spills from necrotic cells at
  rupture; CD39/CD73 hydrolyse it to adenosine, which is itself cleared (adenosine
  suppresses effector cells through A2A receptors, read by the immune link);
* HMGB1 is released when ICD and necrotic cells lose membrane integrity (at death
  completion); apoptotic cells retain most of theirs bound to chromatin (Scaffidi et
  al. 2002, Nature 418:191);
* HSP70 is released by ICD and necrotic cells in proportion to their HSP70 content;
* tumour antigen is released when debris of any fate is cleared.

The DAMP signal is a weighted sum of these (weights below), kept per site
(``damp_signal_treated``, ``damp_signal_distant``; ``damp_signal`` is their sum, the
readout of the plots and DAMP AUCs). Dendritic cells sense its density at their own
site: the site's DAMP signal per mm³ of that tumour (+ 1 mm³, so a vanishing tumour
does not divide by zero): ``damp_density_treated`` and ``damp_density_distant``
(cell-equivalents per tumour volume), so that the basal apoptosis of a large tumour
does not look like a burst of immunogenic death, and heat-killed cells of the treated
tumour do not mature the DCs draining the distant one. ``damp_density`` is the treated
site's (the density an MH session raises; kept under its earlier name). Apoptotic
death makes antigen but few DAMPs, so immunogenic death at the same kill matures more
DCs.
"""

from pysb import Expression, Monomer, Observable, Rule

from mhimmune.core.modelkit import component, par, present, provide, signal, smooth_positive_part
from mhimmune.mh.cell_classes import CELL_CLASSES

READS = {
    **{f"hazard_{f}_{c}": ("1/h", 0.0) for f in ("apop", "icd", "necr") for c in CELL_CLASSES},
    "hsp_relative": ("1", 1.0),
}
PROVIDES = {
    "damp_signal": "mm^3",
    "damp_signal_treated": "mm^3",
    "damp_signal_distant": "mm^3",
    "antigen_treated": "mm^3",
    "antigen_distant": "mm^3",
    "damp_density": "fraction",
    "damp_density_treated": "fraction",
    "damp_density_distant": "fraction",
    "crt_fraction_treated": "fraction",
    "adenosine_treated": "mm^3",
    "adenosine_distant": "mm^3",
}

SITES = ("treated", "distant")
FATES = ("apop", "icd", "necr")


def declare():
    tumour = component("Tumour")
    hsp = signal("hsp_relative")
    damage_ratio = par("sublethal_damage_ratio", "1")
    repair = par("damage_repair", "1/h")
    for cls in CELL_CLASSES:
        hazards = {fate: signal(f"hazard_{fate}_{cls}") for fate in FATES}
        for fate in FATES:
            for state in ("viable", "damaged"):
                Rule(
                    f"stress_death_{fate}_{state}_{cls}",
                    tumour(site="treated", state=state, cls=cls)
                    >> tumour(site="treated", state=fate, cls=cls),
                    hazards[fate],
                )
        Rule(
            f"sublethal_damage_{cls}",
            tumour(site="treated", state="viable", cls=cls)
            >> tumour(site="treated", state="damaged", cls=cls),
            Expression(f"sublethal_damage_rate_{cls}", damage_ratio * sum(hazards.values())),
        )
    Rule(
        "damage_repair_step",
        tumour(site="treated", state="damaged") >> tumour(site="treated", state="viable"),
        repair,
    )

    atp = Monomer("ATPe", ["site"], {"site": list(SITES)})
    ado = Monomer("Adenosine", ["site"], {"site": list(SITES)})
    hmgb1 = Monomer("HMGB1", ["site"], {"site": list(SITES)})
    hsp_ext = Monomer("HSP70e", ["site"], {"site": list(SITES)})
    antigen = Monomer("Antigen", ["site"], {"site": list(SITES)})

    crt_apop = par("crt_exposure_apop", "fraction")
    atp_icd = par("atp_secretion_icd", "1/h")
    atp_apop = par("atp_secretion_apop", "1/h")
    atp_necr = par("atp_yield_necr", "1")
    atp_hydrolysis = par("atp_hydrolysis_cd39_cd73", "1/h")
    ado_clearance = par("adenosine_clearance", "1/h")
    hmgb1_yield = {f: par(f"hmgb1_yield_{f}", "1") for f in FATES}
    hmgb1_decay = par("hmgb1_decay", "1/h")
    hsp_release_yield = par("hsp70_release_yield", "1")
    hsp_ext_decay = par("hsp70e_decay", "1/h")
    antigen_decay = par("antigen_decay", "1/h")
    completion = {f: component(f"death_completion_{f}") for f in FATES}
    debris_clearance = component("debris_clearance")
    crt_weight = par("damp_weight_crt", "1")
    atp_weight = par("damp_weight_atp", "1")
    hmgb1_weight = par("damp_weight_hmgb1", "1")
    hsp_weight = par("damp_weight_hsp70", "1")

    damp_terms = {}
    for site in SITES:
        for m in (atp, ado, hmgb1, hsp_ext, antigen):
            present(m(site=site))
        dying = {f: component(f"dying_{f}_{site}") for f in FATES}
        dead = component(f"dead_{site}")
        hsp_level = hsp if site == "treated" else 1
        crt_cells = Expression(
            f"crt_positive_cells_{site}", dying["icd"] + crt_apop * dying["apop"]
        )
        Rule(
            f"atp_release_{site}",
            None >> atp(site=site),
            Expression(
                f"atp_release_flux_{site}",
                atp_icd * dying["icd"]
                + atp_apop * dying["apop"]
                + atp_necr * completion["necr"] * dying["necr"],
            ),
        )
        Rule(f"atp_hydrolysis_{site}", atp(site=site) >> ado(site=site), atp_hydrolysis)
        Rule(f"adenosine_clearance_{site}", ado(site=site) >> None, ado_clearance)
        Rule(
            f"hmgb1_release_{site}",
            None >> hmgb1(site=site),
            Expression(
                f"hmgb1_release_flux_{site}",
                sum(hmgb1_yield[f] * completion[f] * dying[f] for f in FATES),
            ),
        )
        Rule(f"hmgb1_decay_{site}", hmgb1(site=site) >> None, hmgb1_decay)
        Rule(
            f"hsp70_release_{site}",
            None >> hsp_ext(site=site),
            Expression(
                f"hsp70_release_flux_{site}",
                hsp_release_yield
                * hsp_level
                * (completion["icd"] * dying["icd"] + completion["necr"] * dying["necr"]),
            ),
        )
        Rule(f"hsp70e_decay_{site}", hsp_ext(site=site) >> None, hsp_ext_decay)
        Rule(
            f"antigen_release_{site}",
            None >> antigen(site=site),
            Expression(f"antigen_release_flux_{site}", debris_clearance * dead),
        )
        Rule(f"antigen_decay_{site}", antigen(site=site) >> None, antigen_decay)
        atp_obs = Observable(f"atp_e_{site}", atp(site=site))
        hmgb1_obs = Observable(f"hmgb1_{site}", hmgb1(site=site))
        hsp_obs = Observable(f"hsp70_e_{site}", hsp_ext(site=site))
        provide(f"adenosine_{site}", Observable(f"adenosine_{site}", ado(site=site)))
        provide(f"antigen_{site}", Observable(f"antigen_{site}", antigen(site=site)))
        damp_terms[site] = provide(
            f"damp_signal_{site}",
            Expression(
                f"damp_signal_{site}",
                crt_weight * crt_cells
                + atp_weight * atp_obs
                + hmgb1_weight * hmgb1_obs
                + hsp_weight * hsp_obs,
            ),
        )
        # what DCs sense is the DAMP level in the tissue: the amount per mm³ of the site's
        # tumour (a large tumour's basal apoptosis must not look like a burst of
        # immunogenic death; +1 mm³ keeps a vanishing tumour finite)
        provide(
            f"damp_density_{site}",
            Expression(
                f"damp_density_{site}",
                damp_terms[site] / (component(f"tumour_volume_{site}") + 1),
            ),
        )

    # CRT-exposed cells are a part of the tumour (0 <= crt <= total): the fraction is
    # crt / (total + 1e-9), written with smooth positive parts (width 1e-9 mm³) of crt and
    # of the rest of the tumour, so that it stays in [-0.5, 1] and finite when a vanishing
    # tumour's states lie an integration error below 0, and is 0 at crt = total = 0; for
    # non-negative states it differs from crt / (total + 1e-9) by < 1e-9 / total
    crt_cells = component("crt_positive_cells_treated")
    crt_positive = smooth_positive_part(crt_cells, 1e-9)
    rest = smooth_positive_part(component("tumour_volume_treated") - crt_cells, 1e-9)
    crt_background = par("crt_background_fraction", "fraction")
    provide(
        "crt_fraction_treated",
        Expression(
            "crt_fraction_treated",
            crt_background + (crt_positive - 0.5e-9) / (crt_positive + rest + 1e-9),
        ),
    )
    provide("damp_signal", Expression("damp_signal", sum(damp_terms.values())))
    # the heated site's density under its earlier name
    provide("damp_density", Expression("damp_density", component("damp_density_treated")))
