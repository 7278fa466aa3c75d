"""Tumour populations at two sites sharing one host: the heated (treated) tumour and a
distant, unheated tumour where abscopal effects can appear.

Cells are counted as volume (mm³). Each site holds viable cells and dying cells by
fate (apoptotic, immunogenic, necrotic); dying cells are cleared (dead cells leave
the model). Viable cells grow logistically toward a carrying capacity (Kosinsky et
al. 2018 use r = 0.4 /d and TV_max = 2500 µL for CT26) and die at a basal rate.

Treated-tumour cells belong to particle-load classes (``CELL_CLASSES``: regions of
low, middle and high particle concentration, weights of a 3-point Gauss-Hermite
quadrature of a log-normal load); each class grows on its own, so cells of poorly
loaded regions that survive a session can repopulate the tumour. The distant tumour
holds no particles (class ``mid`` only, a label without consequence there).

Death hazards and immune killing are written by the links that cause them
(``death``, ``immune``) as rules on the ``Tumour`` monomer.
"""

from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.modelkit import CELL_CLASSES, CLASS_WEIGHTS, bolus, par, provide

READS: dict = {}
PROVIDES = {
    "tumour_volume_treated": "mm^3", "tumour_volume_distant": "mm^3",
    "viable_treated": "mm^3", "viable_distant": "mm^3",
    **{f"viable_treated_{c}": "mm^3" for c in CELL_CLASSES},
}

SITES = ("treated", "distant")
FATES = ("apop", "icd", "necr")


def declare():
    tumour = Monomer("Tumour", ["site", "state", "cls"],
                     {"site": list(SITES), "state": ["viable", *FATES], "cls": list(CELL_CLASSES)})
    growth = par("tumour_growth_rate", "1/h")
    capacity = par("tumour_capacity", "mm^3")
    basal_death = par("tumour_basal_death", "1/h")
    clearance = {fate: par(f"clearance_{fate}", "1/h") for fate in FATES}
    initial = {site: par(f"tumour_initial_{site}", "mm^3") for site in SITES}
    classes = {"treated": CELL_CLASSES, "distant": ("mid",)}
    for site in SITES:
        for cls, w in zip(CELL_CLASSES, CLASS_WEIGHTS):
            if cls in classes[site]:
                share = w if site == "treated" else 1.0
                Initial(tumour(site=site, state="viable", cls=cls),
                        Expression(f"tumour_initial_{site}_{cls}", initial[site] * share))
        total = Observable(f"tumour_volume_{site}", tumour(site=site))
        viable = Observable(f"viable_{site}", tumour(site=site, state="viable"))
        for fate in FATES:
            Observable(f"dying_{fate}_{site}", tumour(site=site, state=fate))
        rate = Expression(f"growth_rate_{site}", growth * (1 - total / capacity))
        for cls in classes[site]:
            cell = tumour(site=site, state="viable", cls=cls)
            Rule(f"growth_{site}_{cls}", cell >> cell + tumour(site=site, state="viable", cls=cls), rate)
        Rule(f"basal_apoptosis_{site}",
             tumour(site=site, state="viable") >> tumour(site=site, state="apop"), basal_death)
        for fate in FATES:
            Rule(f"clearance_{fate}_{site}", tumour(site=site, state=fate) >> None, clearance[fate])
        provide(f"tumour_volume_{site}", total)
        provide(f"viable_{site}", viable)
    for cls in CELL_CLASSES:
        provide(f"viable_treated_{cls}",
                Observable(f"viable_treated_{cls}", tumour(site="treated", state="viable", cls=cls)))
    # a rechallenge implants new tumour cells at the distant site
    bolus("rechallenge", tumour(site="distant", state="viable", cls="mid"), 1.0)
