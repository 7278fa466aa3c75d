"""Tumour populations at two sites sharing one host: the heated (treated) tumour and a
distant, unheated tumour where abscopal effects can appear.

Cells are counted as volume (mm³, about 10⁶ cells per mm³). Each cell is in one state:

* ``viable``: proliferating;
* ``damaged``: sublethally injured and growth-arrested (treated site; written by the
  death link), repairs back to viable or dies;
* ``apop``, ``icd``, ``necr``: dying by fate (pre-mortem: apoptotic, immunogenic,
  necrotic), set in motion by the stress hazards (death link) and by immune killing
  (immune link);
* ``dead``: post-mortem corpses and debris (membranes lost), cleared by phagocytes.

Dying cells complete death at a fate-specific rate (apoptosis within hours, the
pre-mortem ER-stress phase of immunogenic death over about a day, necrosis within
an hour or two); debris is then cleared. All states occupy volume.

Viable cells grow logistically toward a carrying capacity (Kosinsky et al. 2018 use
r = 0.4 /d and TV_max = 2500 µL for CT26) with a weak Allee effect at a few hundred
cells (Johnson et al. 2019, PLoS Biol 17:e3000399: growth of sparse tumour-cell
populations falls below exponential), so that a tumour driven below a few tens of
cells goes extinct instead of regrowing from a vanishing remainder: "cure" is a
state the model can reach. They die at a basal (spontaneous apoptotic) rate.

Treated-tumour cells belong to particle-load classes (``CELL_CLASSES``: regions of
low, middle and high particle concentration, weights of a 3-point Gauss-Hermite
quadrature of a log-normal load); each class grows on its own, so cells of poorly
loaded regions that survive a session can repopulate the tumour. The distant tumour
holds no particles (class ``mid`` only, a label without consequence there). A
rechallenge implants new viable cells at the distant site.
"""

from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.core.modelkit import bolus, par, provide
from mhimmune.mh.cell_classes import CELL_CLASSES, CLASS_WEIGHTS

READS: dict = {}
PROVIDES = {
    "tumour_volume_treated": "mm^3",
    "tumour_volume_distant": "mm^3",
    "viable_treated": "mm^3",
    "viable_distant": "mm^3",
    **{f"viable_treated_{c}": "mm^3" for c in CELL_CLASSES},
}

SITES = ("treated", "distant")
FATES = ("apop", "icd", "necr")
STATES = ("viable", "damaged", *FATES, "dead")


def declare():
    tumour = Monomer(
        "Tumour",
        ["site", "state", "cls"],
        {"site": list(SITES), "state": list(STATES), "cls": list(CELL_CLASSES)},
    )
    growth = par("tumour_growth_rate", "1/h")
    capacity = par("tumour_capacity", "mm^3")
    allee = par("tumour_allee_volume", "mm^3")
    basal_death = par("tumour_basal_death", "1/h")
    completion = {fate: par(f"death_completion_{fate}", "1/h") for fate in FATES}
    debris_clearance = par("debris_clearance", "1/h")
    initial = {site: par(f"tumour_initial_{site}", "mm^3") for site in SITES}
    classes = {"treated": CELL_CLASSES, "distant": ("mid",)}
    for site in SITES:
        for cls, w in zip(CELL_CLASSES, CLASS_WEIGHTS):
            if cls in classes[site]:
                share = w if site == "treated" else 1.0
                Initial(
                    tumour(site=site, state="viable", cls=cls),
                    Expression(f"tumour_initial_{site}_{cls}", initial[site] * share),
                )
        total = Observable(f"tumour_volume_{site}", tumour(site=site))
        viable = Observable(f"viable_{site}", tumour(site=site, state="viable"))
        Observable(f"damaged_{site}", tumour(site=site, state="damaged"))
        for fate in FATES:
            Observable(f"dying_{fate}_{site}", tumour(site=site, state=fate))
        Observable(f"dead_{site}", tumour(site=site, state="dead"))
        # logistic crowding by everything that occupies volume; Allee factor on viable cells
        rate = Expression(
            f"growth_rate_{site}", growth * (1 - total / capacity) * viable / (viable + allee)
        )
        for cls in classes[site]:
            cell = tumour(site=site, state="viable", cls=cls)
            Rule(
                f"growth_{site}_{cls}",
                cell >> cell + tumour(site=site, state="viable", cls=cls),
                rate,
            )
        Rule(
            f"basal_apoptosis_{site}",
            tumour(site=site, state="viable") >> tumour(site=site, state="apop"),
            basal_death,
        )
        for fate in FATES:
            Rule(
                f"death_completion_{fate}_{site}",
                tumour(site=site, state=fate) >> tumour(site=site, state="dead"),
                completion[fate],
            )
        Rule(f"debris_clearance_{site}", tumour(site=site, state="dead") >> None, debris_clearance)
        provide(f"tumour_volume_{site}", total)
        provide(f"viable_{site}", viable)
    for cls in CELL_CLASSES:
        provide(
            f"viable_treated_{cls}",
            Observable(f"viable_treated_{cls}", tumour(site="treated", state="viable", cls=cls)),
        )
    # a rechallenge implants new tumour cells at the distant site
    bolus("rechallenge", tumour(site="distant", state="viable", cls="mid"), 1.0)
