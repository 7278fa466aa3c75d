"""Immune link: DAMPs -> dendritic cells -> lymph-node priming -> effector T cells that
traffic to both tumours; memory; NK cells, macrophages M1/M2, Tregs, MDSCs; PD-1/PD-L1,
CTLA-4; vaccination with killed tumour cells.

Structure after Kosinsky et al. 2018 (J Immunother Cancer 6:17) [kosinsky2018] and the
QSP-IO platform (Jafarnejad 2019; Sové et al. 2020 [sove2020]), reduced. Each tumour
has its own dendritic cells and draining lymph node; T cells primed in either node
join one systemic pool (blood) that serves both tumours, so a response primed by the
heated tumour can reach the distant one.

Dendritic cells, one draining lymph node per site
    Immature DCs enter each site's tumour-draining pool: one supply (``dc_source``)
    shared by the sites in proportion to their DC recruitment, which follows each
    tumour's volume over about a week (``dc_recruitment_adaptation``; a session that
    shrinks a tumour within a day does not take its DC supply away at once; with no
    tumour at all the treated site keeps the whole supply). They mature on their own
    site's DAMPs (saturating Hill function, n = 2 as Kosinsky's Hill function of tumour
    cell death, of the site's DAMP density: DAMP signal per mm³ of that tumour) plus a
    basal rate, then migrate to the site's draining node (``dc_migration``, a mean
    transit of about a day) and die there. Mature DCs do not die before they reach the
    node, so at baseline the node holds b·I/d_m mature DCs, 4 % of the site's DCs
    (``dc_basal_maturation``). A node presents the antigen its DCs took up at their
    site: the site's antigen lagged by the same transit. The vaccine is taken up by the
    DCs draining to the treated site's node (its antigen and its DAMPs); memory cells
    recirculate through both nodes and are recalled by the total antigen.

    Readouts: ``mature_dc_fraction`` is the treated site's node (its mature DCs as a
    fraction of them plus the site's immature DCs; tissue and node-resident immature DCs
    are one pool), the tissue the mild-MH flow data most likely stained
    (J Nanobiotechnol 2023 [spiorpp2023]; the tissue is not stated in its abstract,
    tumour-draining lymph nodes are the usual one); ``mature_dc_fraction_distant`` the
    distant site's; ``dc_migrating_{site}`` the mature DCs still on their way.

Priming and expansion
    Each node's mature DCs prime tumour-specific CD8 T cells in proportion to the
    availability of its site's antigen (Hill); primed cells of both nodes join one
    pipeline. Priming is helped by CD4 helper cells (primed by the same DCs) and
    suppressed by Tregs and by PD-L1 on the DCs themselves (Mayoux et al. 2020, Sci
    Transl Med 12:eaav7431; Oh et al. 2020, Nat Cancer 1:681: DC PD-L1 is a main target
    of anti-PD-L1); the lumped clonal expansion delivers effectors to the blood after a
    few days.
    Effectors contract; some become long-lived memory cells, more with CD4 help and
    once antigen is cleared (Kaech & Cui 2012, Nat Rev Immunol 12:749). Memory
    cells are reactivated by antigen alone, with a lower antigen threshold and no need
    for DAMP-matured DCs, each giving a burst of expanding progeny, so a rechallenge is
    met by a fast recall response.

Trafficking and killing
    Blood effectors infiltrate each tumour with a saturating dependence on its volume
    (Kosinsky: k·TV/(TV + S_L)), scaled by the tumour's inflammation: a cold tumour
    admits a fraction of the maximal influx, IFN-γ-induced CXCL9/10 (and, at the heated
    site, DAMP-activated myeloid cells) open it (Mikucki et al. 2015, Nat Commun 6:7458;
    Chow et al. 2019, Immunity 50:1498), so infiltration feeds on itself once effectors
    arrive. In a tumour they kill viable cells with a hazard set by the
    effector:target ratio r, saturating at a maximal hazard (de Pillis et al. 2005):
    h = x/(1 + x/h_max) with x = k·r·s/(1 + a·PD-L1_free); free PD-L1 (Nikolopoulou et
    al. 2018 form) and MDSCs and adenosine (s) lower each CTL's efficacy, so a tumour
    with few CTLs per cell is held back by PD-L1 while many CTLs per cell (a small
    rechallenge met by memory) still kill at the maximal rate.

Exhaustion
    Effectors exhaust in proportion to engaged PD-1 (free PD-L1 on unblocked PD-1) into
    a progenitor-exhausted pool (TCF1+PD-1+), which becomes terminally exhausted at a
    constant rate; neither pool kills. PD-1/PD-L1 blockade (anti-PD-L1, anti-PD-1;
    blockade = 1 - (1 - occupancy_PD-L1)(1 - occupancy_PD-1)) returns progenitor cells to
    effectors; terminally exhausted cells are not reinvigorated (Miller et al. 2019, Nat
    Immunol 20:326 [miller2019]; Siddiqui et al. 2019, Immunity 50:195 [siddiqui2019];
    Im et al. 2016, Nature 537:417 [im2016]).

    What this changes about "late anti-PD-L1 fails": with one irreversible exhausted
    state (earlier versions of this model) the failure of doses a week after MH was built
    in, since blockade could only slow further exhaustion. Now late blockade still finds
    and reinvigorates progenitors; it fails when that pool has run out into the terminal
    one (~4 days, ``cd8_terminal_exhaustion``, assumed) faster than blockade returns it
    (~4 days at full blockade, ``cd8_reinvigoration``, assumed and tuned so that late
    doses rescue no more animals than before) while the tumour outgrows the response. So
    the outcome depends on these two rates rather than on a rule (nominal animal: late
    MH + anti-PD-L1 leaves the distant tumour at ~1200 mm³ on day 25, 1290 mm³ with
    irreversible exhaustion, against ~1e-9 mm³ for doses given with MH).

Checkpoint
    PD-L1 on tumour cells (``pdl1_basal_level`` at rest, 1 for CT26; the tumour presets
    set it per line) is induced by IFN-γ from effector T cells and NK cells
    (adaptive resistance) and, optionally, by heat stress (``pdl1_heat_induction``,
    default off). Free PD-L1 = PD-L1·(1 - anti-PD-L1 occupancy); anti-PD-1 blocks the
    receptor on T cells, lowering engaged PD-1 in killing and exhaustion like anti-PD-L1,
    but not the DC PD-L1 arm of priming. Anti-CTLA-4 frees CD80/86 for CD28 and raises
    CD8 and CD4 priming by (1 + ``ctla4_priming_gain``·occupancy); its Fc-mediated
    depletion of intratumoural Tregs is in the depletion link. A BET inhibitor released
    from the particles at MH temperatures (Gao et al. 2023 [gao2023]; default off:
    ``beti_loading = 0``) lowers PD-L1 transcription.

Innate cells of the treated tumour
    NK cells are activated by stress ligands on tumour cells and kill; macrophages are
    recruited as M2, repolarise to M1 on DAMPs and IFN-γ and back to M2 on IL-10/TGF-β
    (from Tregs and MDSCs), and phagocytose tumour cells more when CRT is exposed and
    less with CD47 ("don't eat me", SIRPα); MDSCs and Tregs expand with tumour burden.

Vaccination
    MH-killed (heat-killed) tumour cells injected as a vaccine (``vaccination``, mm³ of
    killed cells) add antigen to what DCs present and DAMPs that mature DCs (a second
    Hill term, ``vaccine_maturation_half``), both cleared at ``vaccine_clearance``;
    memory forms once the vaccine antigen is gone, so a later challenge (``rechallenge``)
    meets a recall response (HSP70-rich necrotic cells after MH induce antitumour
    immunity, Ito et al. 2006, Cancer Immunol Immunother 55:320 [ito2006]). Magnitudes
    assumed.

Immune killing and phagocytosis act on viable and on sublethally damaged cells.
Depleting antibodies and clodronate liposomes are in the depletion link (``depletion.py``).
Immune cells are in 10⁶ cells (Mcell); tumour in mm³ (about 10⁶ cells per mm³);
IFN-γ (quasi-steady: it is consumed within about an hour) as its producers per mm³ of
tumour (Mcell/mm³ of effector-cell equivalents), a proxy of its concentration.
"""

import sympy
from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.core.modelkit import bolus, component, hill, par, present, provide, signal
from mhimmune.core.units import HOURS_PER_DAY

READS = {
    "damp_density_treated": ("fraction", 0.0),
    "damp_density_distant": ("fraction", 0.0),
    "antigen_treated": ("mm^3", 0.0),
    "antigen_distant": ("mm^3", 0.0),
    "crt_fraction_treated": ("fraction", 0.0),
    "adenosine_treated": ("mm^3", 0.0),
    "adenosine_distant": ("mm^3", 0.0),
    "stress_ligand": ("1", 1.0),
    "cd47_relative": ("1", 1.0),
    "pdl1_occupancy": ("fraction", 0.0),
    "pd1_occupancy": ("fraction", 0.0),
    "ctla4_occupancy": ("fraction", 0.0),
    "tumour_volume_treated": ("mm^3", 200.0),
    "tumour_volume_distant": ("mm^3", 100.0),
    "viable_treated": ("mm^3", 200.0),
    "viable_distant": ("mm^3", 100.0),
    "temperature_C": ("degC", 37.0),
    "particle_iron_mg_per_cm3": ("mg/cm^3", 0.0),
}
PROVIDES = {
    "cd8_effectors_total": "Mcell",
    "mature_dc_fraction": "fraction",
    "mature_dc_fraction_distant": "fraction",
    "m1_m2_ratio": "1",
    "ctl_infiltration_treated": "fraction",
    "treg_fraction": "fraction",
    "mdsc_fraction": "fraction",
    "phagocytosis_per_macrophage": "1/d",
}

SITES = ("treated", "distant")


def immune_attack(name, site, hazard, fate="apop"):
    """Rules moving viable (and, at the treated site, damaged) tumour cells of *site* to
    *fate* (``None``: engulfed whole) at the per-cell *hazard*."""
    tumour = component("Tumour")
    for state in ("viable", "damaged") if site == "treated" else ("viable",):
        product = None if fate is None else tumour(site=site, state=fate)
        Rule(
            f"{name}_{state}" if state != "viable" else name,
            tumour(site=site, state=state) >> product,
            hazard,
        )


def dendritic_cells(dc, volume, vaccine, antigen):
    """Dendritic cells of both sites, each draining to its own lymph node.

    Immature DCs enter each site's pool (one supply shared by the sites in proportion to
    their DC recruitment, which follows tumour volume over about a week), mature on that
    site's DAMP density (and, at the treated site, on a vaccine) and migrate to the
    site's draining node, where they present antigen until they die; the antigen they
    present is what they took up at the site (*antigen*, per site), carried with the
    same transit. Returns the node-resident mature DCs per site (Observables), the DAMP
    activation per site (Expressions) and the antigen in each node (Observables,
    mm³)."""
    dc_source = par("dc_source", "Mcell/h")
    dc_death = par("dc_immature_death", "1/h")
    dc_basal = par("dc_basal_maturation", "1/h")
    dc_mat = par("dc_maturation_max", "1/h")
    damp_half = par("damp_half_maturation", "fraction")
    migration = par("dc_migration", "1/h")
    dcm_death = par("dc_mature_death", "1/h")
    # killed cells of a vaccine carry their own DAMPs (HSP70, CRT) to the DCs that take
    # them up: those draining to the treated site's node
    vaccine_activation = hill(vaccine, par("vaccine_maturation_half", "mm^3"), 2)
    # the DC supply is shared by the sites in proportion to their DC recruitment, which
    # follows each tumour's volume over about a week (vasculature and chemokine-producing
    # cells remodel slowly: a session that shrinks a tumour within a day does not take
    # its DC supply away); 1 mm³ at the treated site keeps all of it there when there is
    # no tumour (a vaccinated naive mouse)
    adaptation = par("dc_recruitment_adaptation", "1/h")
    recruitment = Monomer("DCRecruitment", ["site"], {"site": list(SITES)})
    floor = {"treated": 1, "distant": 0}
    capacity = {}
    for site in SITES:
        Initial(
            recruitment(site=site),
            Expression(
                f"dc_recruitment_initial_{site}", component(f"tumour_initial_{site}") + floor[site]
            ),
        )
        Rule(
            f"dc_recruitment_gain_{site}",
            None >> recruitment(site=site),
            Expression(
                f"dc_recruitment_gain_flux_{site}", adaptation * (volume[site] + floor[site])
            ),
        )
        Rule(f"dc_recruitment_loss_{site}", recruitment(site=site) >> None, adaptation)
        capacity[site] = Observable(f"dc_recruitment_{site}", recruitment(site=site))
    initial = {s: component(f"dc_recruitment_initial_{s}") for s in SITES}
    ln, activation = {}, {}
    for site in SITES:
        imm, mig, node = (dc(site=site, state=x) for x in ("imm", "mig", "ln"))
        share = Expression(
            f"dc_influx_share_{site}", capacity[site] / (capacity["treated"] + capacity["distant"])
        )
        share0 = initial[site] / (initial["treated"] + initial["distant"])
        # untreated steady state: b·I/d_m mature DCs in the node (mature DCs leave the
        # tumour rather than die there)
        imm0 = Expression(f"dc_immature_initial_{site}", dc_source * share0 / (dc_death + dc_basal))
        Initial(imm, imm0)
        Initial(mig, Expression(f"dc_migrating_initial_{site}", dc_basal * imm0 / migration))
        Initial(node, Expression(f"dc_mature_initial_{site}", dc_basal * imm0 / dcm_death))
        activation[site] = Expression(
            f"damp_activation_{site}", hill(signal(f"damp_density_{site}"), damp_half, 2)
        )
        drive = activation[site]
        if site == "treated":
            drive = 1 - (1 - drive) * (1 - vaccine_activation)
        Rule(
            f"dc_influx_{site}",
            None >> imm,
            Expression(f"dc_influx_flux_{site}", dc_source * share),
        )
        Rule(f"dc_immature_death_{site}", imm >> None, dc_death)
        Rule(
            f"dc_maturation_{site}",
            imm >> mig,
            Expression(f"dc_maturation_rate_{site}", dc_basal + dc_mat * drive),
        )
        Rule(f"dc_migration_{site}", mig >> node, migration)
        Rule(f"dc_mature_death_{site}", node >> None, dcm_death)
        imm_obs = Observable(f"dc_immature_{site}", imm)
        mig_obs = Observable(f"dc_migrating_{site}", mig)
        ln[site] = Observable(f"dc_mature_{site}", node)
        Expression(f"dc_pool_{site}", imm_obs + mig_obs + ln[site])
        # the node's DCs as flow cytometry of the node sees them: its mature DCs among
        # them and the site's immature pool (tissue and node-resident DCs lumped)
        Expression(f"mature_dc_fraction_{site}", ln[site] / (ln[site] + imm_obs + 1e-9))
    # the readouts under their earlier names are the treated site's node
    Observable("dc_immature", dc(site="treated", state="imm"))
    Observable("dc_mature", dc(site="treated", state="ln"))
    provide(
        "mature_dc_fraction",
        Expression("mature_dc_fraction", component("mature_dc_fraction_treated")),
    )
    provide("mature_dc_fraction_distant", component("mature_dc_fraction_distant"))
    # antigen reaches the node with the DCs that took it up: the site's antigen lagged
    # by one migration transit (first order, the same rate)
    carried = Monomer("AntigenLN", ["site"], {"site": list(SITES)})
    node_antigen = {}
    for site in SITES:
        present(carried(site=site))
        Rule(
            f"antigen_transport_{site}",
            None >> carried(site=site),
            Expression(f"antigen_transport_flux_{site}", migration * antigen[site]),
        )
        Rule(f"antigen_node_turnover_{site}", carried(site=site) >> None, migration)
        node_antigen[site] = Observable(f"antigen_node_{site}", carried(site=site))
    return ln, activation, node_antigen


def declare():
    # vaccine of MH-killed tumour cells (mm³), cleared from the injection site and node
    vaccine = Monomer("Vaccine")
    present(vaccine())
    bolus("vaccination", vaccine(), 1.0)
    Rule("vaccine_clearance_step", vaccine() >> None, par("vaccine_clearance", "1/h"))
    vaccine_obs = Observable("vaccine_mm3", vaccine())
    # antigen DCs of each site take up: its own tumour's; the vaccine's DCs drain to the
    # treated site's node (the one vaccine injection site of the model)
    site_antigen = {
        "treated": Expression("antigen_uptake_treated", signal("antigen_treated") + vaccine_obs),
        "distant": Expression("antigen_uptake_distant", signal("antigen_distant")),
    }
    # what recirculating memory cells can meet
    antigen = Expression("antigen_total", site_antigen["treated"] + site_antigen["distant"])
    crt = signal("crt_fraction_treated")
    stress = signal("stress_ligand")
    cd47 = signal("cd47_relative")
    occupancy = signal("pdl1_occupancy")
    pd1_occupancy = signal("pd1_occupancy")
    # CTLA-4 blockade frees CD80/86 for CD28: more priming (CD8 and CD4)
    ctla4_priming = Expression(
        "ctla4_priming_factor", 1 + par("ctla4_priming_gain", "1") * signal("ctla4_occupancy")
    )
    # PD-1/PD-L1 engagement left by either antibody, and the blockade that reinvigorates
    blockade = Expression("pd1_pathway_blockade", 1 - (1 - occupancy) * (1 - pd1_occupancy))
    volume = {s: signal(f"tumour_volume_{s}") for s in SITES}
    viable = {s: signal(f"viable_{s}") for s in SITES}
    # immune cells attack viable and sublethally damaged (growth-arrested) cells alike
    targets = {
        "treated": Expression(
            "immune_targets_treated", viable["treated"] + component("damaged_treated")
        ),
        "distant": viable["distant"],
    }
    adenosine = {s: signal(f"adenosine_{s}") for s in SITES}
    burden = volume["treated"] + volume["distant"]

    dc = Monomer("DC", ["site", "state"], {"site": list(SITES), "state": ["imm", "mig", "ln"]})
    cd8 = Monomer(
        "CD8",
        ["loc", "state"],
        {"loc": ["ln", "blood", *SITES], "state": ["primed", "eff", "pex", "tex", "mem"]},
    )
    th = Monomer("CD4h")
    treg = Monomer("Treg")
    mdsc = Monomer("MDSC")
    nk = Monomer("NK", ["state"], {"state": ["rest", "act"]})
    mac = Monomer("Mac", ["pol"], {"pol": ["M1", "M2"]})
    pdl1 = Monomer("PDL1", ["site"], {"site": list(SITES)})
    beti = Monomer("BETi")

    # ---- dendritic cells: one tumour-draining pool and lymph node per site ----
    dc_ln, damp_activation, node_antigen = dendritic_cells(dc, volume, vaccine_obs, site_antigen)

    # ---- CD4 help, Tregs, MDSCs ----
    ag_half = par("antigen_half_priming", "mm^3")
    # each node's mature DCs present its site's antigen; primed cells of both nodes join
    # one pipeline (Mcell of antigen-presenting mature DCs)
    presentation = Expression(
        "dc_antigen_presentation",
        sum(
            dc_ln[s] * Expression(f"antigen_presentation_{s}", hill(node_antigen[s], ag_half))
            for s in SITES
        ),
    )
    # athymic (nude) hosts have no mature T cells: 0 removes T-cell priming and Tregs
    t_cells = par("t_cell_competence", "fraction")
    th_rate = par("cd4_priming", "1/h")
    th_death = par("cd4_death", "1/h")
    th_half = par("cd4_help_half", "Mcell")
    help_max = par("cd4_help_max", "1")
    cd4_bystander = Expression("cd4_bystander_cells", t_cells * par("cd4_bystander", "Mcell"))
    present(th())  # no tumour-specific helpers before the tumour has released antigen
    Rule(
        "cd4_priming_step",
        None >> th(),
        Expression("cd4_priming_flux", t_cells * th_rate * presentation * ctla4_priming),
    )
    Rule("cd4_death_step", th() >> None, th_death)
    th_obs = Observable("cd4_helper", th())
    help_level = Expression("cd4_help", th_obs / (th_obs + th_half))
    treg_source = par("treg_source", "Mcell/h")
    treg_expansion = par("treg_expansion", "Mcell/h")
    treg_death = par("treg_death", "1/h")
    burden_half = par("burden_half", "mm^3")
    Initial(treg(), Expression("treg_initial", t_cells * treg_source / treg_death))
    Rule(
        "treg_influx",
        None >> treg(),
        Expression(
            "treg_influx_flux",
            t_cells * (treg_source + treg_expansion * burden / (burden + burden_half)),
        ),
    )
    Rule("treg_death_step", treg() >> None, treg_death)
    treg_obs = Observable("treg", treg())
    mdsc_source = par("mdsc_source", "Mcell/h")
    mdsc_recruit = par("mdsc_recruitment", "Mcell/h")
    mdsc_death = par("mdsc_death", "1/h")
    Initial(mdsc(), Expression("mdsc_initial", mdsc_source / mdsc_death))
    Rule(
        "mdsc_influx",
        None >> mdsc(),
        Expression(
            "mdsc_influx_flux", mdsc_source + mdsc_recruit * burden / (burden + burden_half)
        ),
    )
    Rule("mdsc_death_step", mdsc() >> None, mdsc_death)
    mdsc_obs = Observable("mdsc", mdsc())
    treg_half = par("treg_suppression_half", "Mcell")
    mdsc_half = par("mdsc_suppression_half", "Mcell")
    ado_half = par("adenosine_suppression_half", "mm^3")
    ln_suppression = Expression("priming_suppression_factor", 1 / (1 + treg_obs / treg_half))
    tumour_suppression = {
        s: Expression(
            f"effector_suppression_factor_{s}",
            1 / (1 + mdsc_obs / mdsc_half + adenosine[s] / ado_half),
        )
        for s in SITES
    }

    # ---- PD-L1 (tumour cells and DCs), BET inhibitor ----
    pdl1_inhibition = par("pdl1_inhibition", "1")
    pdl1_priming_inhibition = par("pdl1_priming_inhibition", "1")
    pdl1_turnover = par("pdl1_turnover", "1/h")
    pdl1_basal = par("pdl1_basal_level", "1")
    pdl1_induction = par("pdl1_ifng_induction", "1")
    ifn_half = par("ifng_half_pdl1", "Mcell/mm^3")
    heat_induction = par("pdl1_heat_induction", "1")
    stress_half = par("stress_ligand_half", "1")
    beti_loading = par("beti_loading", "umol/g")
    beti_release = par("beti_release_rate", "1/h")
    beti_gate = par("beti_release_temperature", "degC")
    beti_width = par("beti_release_width", "delta_degC")
    beti_clear = par("beti_clearance", "1/h")
    beti_ic50 = par("beti_ic50", "uM")
    beti_max = par("beti_max_inhibition", "fraction")
    temperature = signal("temperature_C")
    present(beti())
    # µmol/g Fe x mg Fe/cm³ = µM; released while the thermo-sensitive gate is open
    Rule(
        "beti_heat_release",
        None >> beti(),
        Expression(
            "beti_release_flux",
            beti_loading
            * beti_release
            * signal("particle_iron_mg_per_cm3")
            / (1 + sympy.exp(-(temperature - beti_gate) / beti_width)),
        ),
    )
    Rule("beti_clearance_step", beti() >> None, beti_clear)
    beti_obs = Observable("beti_uM", beti())
    stress_activation = hill(stress, stress_half, 2)
    heat_pdl1 = Expression(
        "pdl1_heat_drive", heat_induction * (stress_activation - hill(1, stress_half, 2))
    )
    pdl1_transcription = Expression(
        "pdl1_transcription_factor_treated", 1 - beti_max * beti_obs / (beti_obs + beti_ic50)
    )
    ln_pdl1 = Expression("priming_pdl1_factor", 1 / (1 + pdl1_priming_inhibition * (1 - occupancy)))

    # ---- NK cells (treated site) ----
    nk_source = par("nk_source", "Mcell/h")
    nk_death = par("nk_death", "1/h")
    nk_act = par("nk_activation", "1/h")
    nk_deact = par("nk_deactivation", "1/h")
    nk_kill = par("nk_kill_rate", "mm^3/Mcell/h")
    nk_target_half = par("nk_target_half", "mm^3")
    nk_ifn = par("nk_ifng_share", "1")
    Initial(nk(state="rest"), Expression("nk_rest_initial", nk_source / nk_death))
    present(nk(state="act"))
    Rule("nk_influx", None >> nk(state="rest"), nk_source)
    Rule("nk_death_rest", nk(state="rest") >> None, nk_death)
    Rule("nk_death_act", nk(state="act") >> None, nk_death)
    # NK cells are activated on contact with stress-ligand-bearing tumour cells: no tumour,
    # no activation (which also keeps the rate finite-precision-safe once a tumour is gone)
    Rule(
        "nk_activation_step",
        nk(state="rest") >> nk(state="act"),
        Expression(
            "nk_activation_rate",
            nk_act * stress_activation * targets["treated"] / (targets["treated"] + nk_target_half),
        ),
    )
    Rule("nk_deactivation_step", nk(state="act") >> nk(state="rest"), nk_deact)
    nka = Observable("nk_active", nk(state="act"))
    nkr = Observable("nk_resting", nk(state="rest"))
    immune_attack(
        "nk_killing",
        "treated",
        Expression(
            "nk_kill_hazard",
            nk_kill * nka * tumour_suppression["treated"] / (targets["treated"] + nk_target_half),
        ),
    )

    # ---- CD8: priming, expansion, trafficking, killing, exhaustion, memory ----
    prime = par("cd8_priming", "1/h")
    expansion_exit = par("cd8_expansion_exit", "1/h")
    traffic = par("cd8_trafficking", "1/h")
    s_l = par("trafficking_half_volume", "mm^3")
    cold = par("infiltration_cold_fraction", "fraction")
    cxcl_half = par("ifng_half_infiltration", "Mcell/mm^3")
    eff_death = par("cd8_effector_death", "1/h")
    exh_rate = par("cd8_exhaustion", "1/h")
    exh_death = par("cd8_exhausted_death", "1/h")
    pex_death = par("cd8_progenitor_exhausted_death", "1/h")
    terminal = par("cd8_terminal_exhaustion", "1/h")
    reinvigoration = par("cd8_reinvigoration", "1/h")
    mem_rate = par("cd8_memory_formation", "1/h")
    mem_death = par("cd8_memory_death", "1/h")
    recall = par("cd8_memory_recall", "1/h")
    mem_ag_half = par("memory_antigen_half", "mm^3")
    burst = par("cd8_recall_burst", "1")
    kill = par("ctl_kill_rate", "mm^3/Mcell/h")
    kill_max = par("ctl_kill_max", "1/h")
    target_floor = par("ctl_target_floor", "mm^3")
    present(cd8(loc="ln", state="primed"))
    present(cd8(loc="blood", state="eff"))
    present(cd8(loc="blood", state="mem"))
    for site in SITES:
        present(cd8(loc=site, state="eff"))
        present(cd8(loc=site, state="pex"))
        present(cd8(loc=site, state="tex"))
    help_factor = 1 + help_max * help_level
    Rule(
        "cd8_priming_step",
        None >> cd8(loc="ln", state="primed"),
        Expression(
            "cd8_priming_flux",
            t_cells * prime * presentation * help_factor * ln_suppression * ln_pdl1 * ctla4_priming,
        ),
    )
    mem_obs = Observable("cd8_memory", cd8(loc="blood", state="mem"))
    # antigen as memory cells see it: their low threshold both triggers recall and, while
    # antigen persists, holds effectors from becoming memory (no formation-recall loop)
    memory_antigen = Expression("memory_antigen_signal", hill(antigen, mem_ag_half))
    # memory cells activated by antigen leave the memory pool, each giving a burst of
    # expanding progeny (no DAMP-matured DCs needed)
    recall_rate = Expression("cd8_recall_rate", recall * memory_antigen)
    Rule("cd8_memory_activation", cd8(loc="blood", state="mem") >> None, recall_rate)
    Rule(
        "cd8_memory_recall_step",
        None >> cd8(loc="ln", state="primed"),
        Expression("cd8_recall_flux", burst * recall_rate * mem_obs),
    )
    Rule(
        "cd8_expansion_step",
        cd8(loc="ln", state="primed") >> cd8(loc="blood", state="eff"),
        expansion_exit,
    )
    # memory forms as antigen is cleared (persistent antigen drives terminal effectors)
    Rule(
        "cd8_memory_formation_step",
        cd8(loc="blood", state="eff") >> cd8(loc="blood", state="mem"),
        Expression("cd8_memory_formation_rate", mem_rate * help_level * (1 - memory_antigen)),
    )
    Rule("cd8_memory_death_step", cd8(loc="blood", state="mem") >> None, mem_death)
    Rule("cd8_blood_death", cd8(loc="blood", state="eff") >> None, eff_death)
    Observable("cd8_primed", cd8(loc="ln", state="primed"))
    blood = Observable("cd8_effector_blood", cd8(loc="blood", state="eff"))
    effectors, ifng = {}, {}
    for site in SITES:
        eff = Observable(f"cd8_effector_{site}", cd8(loc=site, state="eff"))
        Observable(f"cd8_exhausted_{site}", cd8(loc=site, state="pex") + cd8(loc=site, state="tex"))
        Observable(f"cd8_progenitor_exhausted_{site}", cd8(loc=site, state="pex"))
        Observable(f"cd8_terminal_exhausted_{site}", cd8(loc=site, state="tex"))
        effectors[site] = eff
        # IFN-γ level: producers per mm³ of tumour (CTLs, and activated NK cells at the heated site)
        producers = eff + nk_ifn * nka if site == "treated" else eff
        ifng[site] = Expression(f"ifng_{site}", producers / (volume[site] + target_floor))
        # CXCL9/10: IFN-γ (and, at the heated site, DAMP-activated myeloid cells) open the
        # tumour to effector T cells; a cold tumour admits only a fraction
        inflamed = ifng[site] / (ifng[site] + cxcl_half)
        if site == "treated":
            inflamed = 1 - (1 - inflamed) * (1 - damp_activation["treated"])
        Expression(f"tumour_inflammation_{site}", inflamed)
        Rule(
            f"cd8_trafficking_{site}",
            cd8(loc="blood", state="eff") >> cd8(loc=site, state="eff"),
            Expression(
                f"cd8_trafficking_rate_{site}",
                traffic * (cold + (1 - cold) * inflamed) * volume[site] / (volume[site] + s_l),
            ),
        )
        pdl1_obs = Observable(f"pdl1_{site}", pdl1(site=site))
        Initial(pdl1(site=site), Expression(f"pdl1_initial_{site}", pdl1_basal))
        drive = 1 + pdl1_induction * ifng[site] / (ifng[site] + ifn_half)
        if site == "treated":
            drive = (drive + heat_pdl1) * pdl1_transcription
        Rule(
            f"pdl1_expression_{site}",
            None >> pdl1(site=site),
            Expression(f"pdl1_expression_rate_{site}", pdl1_turnover * pdl1_basal * drive),
        )
        Rule(f"pdl1_turnover_{site}", pdl1(site=site) >> None, pdl1_turnover)
        Expression(f"pdl1_free_{site}", pdl1_obs * (1 - occupancy))
        # PD-L1 engaging PD-1: blocked on the ligand (anti-PD-L1) or the receptor (anti-PD-1)
        free = Expression(f"pd1_engaged_{site}", pdl1_obs * (1 - blockade))
        Rule(
            f"cd8_exhaustion_{site}",
            cd8(loc=site, state="eff") >> cd8(loc=site, state="pex"),
            Expression(f"cd8_exhaustion_rate_{site}", exh_rate * free),
        )
        Rule(
            f"cd8_terminal_exhaustion_{site}",
            cd8(loc=site, state="pex") >> cd8(loc=site, state="tex"),
            terminal,
        )
        Rule(
            f"cd8_reinvigoration_{site}",
            cd8(loc=site, state="pex") >> cd8(loc=site, state="eff"),
            Expression(f"cd8_reinvigoration_rate_{site}", reinvigoration * blockade),
        )
        Rule(f"cd8_effector_death_{site}", cd8(loc=site, state="eff") >> None, eff_death)
        Rule(
            f"cd8_progenitor_exhausted_death_{site}",
            cd8(loc=site, state="pex") >> None,
            pex_death,
        )
        Rule(f"cd8_exhausted_death_{site}", cd8(loc=site, state="tex") >> None, exh_death)
        ratio = Expression(f"effector_target_ratio_{site}", eff / (targets[site] + target_floor))
        # PD-L1, MDSCs and adenosine lower the killing efficacy of each CTL; enough CTLs
        # per target still reach the maximal hazard
        efficacy = Expression(
            f"ctl_kill_potential_{site}",
            kill * ratio * tumour_suppression[site] / (1 + pdl1_inhibition * free),
        )
        immune_attack(
            f"ctl_killing_{site}",
            site,
            Expression(f"ctl_kill_hazard_{site}", efficacy / (1 + efficacy / kill_max)),
        )
    provide(
        "cd8_effectors_total", Expression("cd8_effectors_total", blood + sum(effectors.values()))
    )

    # ---- macrophages (treated site) ----
    mac_recruit = par("macrophage_recruitment", "Mcell/h")
    mac_death = par("macrophage_death", "1/h")
    m2_to_m1 = par("m2_to_m1_max", "1/h")
    m1_to_m2 = par("m1_to_m2", "1/h")
    m1_basal = par("m1_basal_fraction", "fraction")
    mac_ifn_half = par("ifng_half_m1", "Mcell/mm^3")
    phag = par("phagocytosis_rate", "mm^3/Mcell/h")
    m2_phag = par("m2_phagocytosis_share", "fraction")
    phag_half = par("phagocytosis_target_half", "mm^3")
    crt_gain = par("crt_phagocytosis_gain", "1")
    cd47_strength = par("cd47_sirpa_strength", "1")
    present(mac(pol="M1"))
    present(mac(pol="M2"))
    Rule(
        "macrophage_recruitment_step",
        None >> mac(pol="M2"),
        Expression(
            "macrophage_recruitment_flux",
            mac_recruit * volume["treated"] / (volume["treated"] + burden_half),
        ),
    )
    Rule("macrophage_death_step", mac() >> None, mac_death)
    ifn_t = ifng["treated"]
    Rule(
        "m2_to_m1",
        mac(pol="M2") >> mac(pol="M1"),
        Expression(
            "m2_to_m1_rate",
            m1_to_m2 * m1_basal / (1 - m1_basal)
            + m2_to_m1 * (0.5 * damp_activation["treated"] + 0.5 * ifn_t / (ifn_t + mac_ifn_half)),
        ),
    )
    # IL-10/TGF-β from Tregs and MDSCs, relative to the untreated host
    il10 = Expression(
        "il10_tgfb_relative",
        (1 + treg_obs / treg_half + mdsc_obs / mdsc_half)
        / (1 + component("treg_initial") / treg_half + component("mdsc_initial") / mdsc_half),
    )
    Rule(
        "m1_to_m2_step",
        mac(pol="M1") >> mac(pol="M2"),
        Expression("m1_to_m2_rate", m1_to_m2 * il10),
    )
    m1 = Observable("macrophage_m1", mac(pol="M1"))
    m2 = Observable("macrophage_m2", mac(pol="M2"))
    provide("m1_m2_ratio", Expression("m1_m2_ratio", m1 / (m2 + 1e-9)))
    eat_me = Expression(
        "eat_me_signal", (1 + crt_gain * crt) * (1 + cd47_strength) / (1 + cd47_strength * cd47)
    )
    immune_attack(
        "phagocytosis",
        "treated",
        Expression(
            "phagocytosis_hazard",
            phag * (m1 + m2_phag * m2) * eat_me / (targets["treated"] + phag_half),
        ),
        fate=None,
    )
    # the assay's readout: tumour cells a macrophage engulfs per day when offered plenty
    provide(
        "phagocytosis_per_macrophage",
        Expression(
            "phagocytosis_per_macrophage",
            HOURS_PER_DAY * phag * (m1 + m2_phag * m2) / (m1 + m2 + 1e-9) * eat_me,
        ),
    )

    # ---- readouts comparable with experiments (treated tumour) ----
    tils = component("cd8_effector_treated") + component("cd8_exhausted_treated")
    cd45 = Expression(
        "immune_cells_treated",
        tils
        + th_obs
        + treg_obs
        + cd4_bystander
        + nka
        + nkr
        + m1
        + m2
        + mdsc_obs
        + component("dc_pool_treated"),
    )
    provide("ctl_infiltration_treated", Expression("ctl_infiltration_treated", tils / cd45))
    provide(
        "treg_fraction",
        Expression("treg_fraction", treg_obs / (treg_obs + th_obs + cd4_bystander + 1e-9)),
    )
    provide("mdsc_fraction", Expression("mdsc_fraction", mdsc_obs / cd45))
