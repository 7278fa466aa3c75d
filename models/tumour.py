"""Tumour populations at two sites sharing one host: the heated (treated) tumour and a
distant, unheated tumour where abscopal effects can appear.

Cells are counted as volume (mm³). Each site holds viable cells and dying cells by
fate (apoptotic, immunogenic, necrotic); dying cells are cleared (dead cells leave
the model). Viable cells grow logistically toward a carrying capacity (Kosinsky et
al. 2018 use r = 0.4 /d and TV_max = 2500 µL for CT26). Death hazards and immune
killing are written by the links that cause them (``death``, ``immune``) as rules
on the ``Tumour`` monomer.
"""

from pysb import Expression, Initial, Monomer, Observable, Rule

from mhimmune.modelkit import bolus, par, present, provide

READS: dict = {}
PROVIDES = {
    "tumour_volume_treated": "mm^3", "tumour_volume_distant": "mm^3",
    "viable_treated": "mm^3", "viable_distant": "mm^3",
}

SITES = ("treated", "distant")
FATES = ("apop", "icd", "necr")


def declare():
    tumour = Monomer("Tumour", ["site", "state"],
                     {"site": list(SITES), "state": ["viable", *FATES]})
    growth = par("tumour_growth_rate", "1/h")
    capacity = par("tumour_capacity", "mm^3")
    basal_death = par("tumour_basal_death", "1/h")
    clearance = {fate: par(f"clearance_{fate}", "1/h") for fate in FATES}
    for site in SITES:
        Initial(tumour(site=site, state="viable"), par(f"tumour_initial_{site}", "mm^3"))
        for fate in FATES:
            present(tumour(site=site, state=fate))
        total = Observable(f"tumour_volume_{site}", tumour(site=site))
        viable = Observable(f"viable_{site}", tumour(site=site, state="viable"))
        for fate in FATES:
            Observable(f"dying_{fate}_{site}", tumour(site=site, state=fate))
        rate = Expression(f"growth_rate_{site}", growth * (1 - total / capacity))
        Rule(f"growth_{site}",
             tumour(site=site, state="viable") >> tumour(site=site, state="viable") + tumour(site=site, state="viable"),
             rate)
        Rule(f"basal_apoptosis_{site}",
             tumour(site=site, state="viable") >> tumour(site=site, state="apop"), basal_death)
        for fate in FATES:
            Rule(f"clearance_{fate}_{site}", tumour(site=site, state=fate) >> None, clearance[fate])
        provide(f"tumour_volume_{site}", total)
        provide(f"viable_{site}", viable)
    # a rechallenge implants new tumour cells at the distant site
    bolus("rechallenge", tumour(site="distant", state="viable"), 1.0)
