"""Pharmacokinetics: anti-PD-L1 antibody and the small drugs a protocol can dose.

anti-PD-L1: first-order absorption from an intraperitoneal depot into plasma (volume
V) with linear elimination (Kosinsky et al. 2018, J Immunother Cancer 6:17: ka 8 /d,
V 3 mL, kel 0.15 /d, K_D 30 nM), optionally with a peripheral (tissue) compartment
exchanging with plasma (two-compartment model; off by default, ``ab_k12 = 0``, as in
Kosinsky's one-compartment fit)::

    depot --ka--> plasma --kel-->        plasma <--k12/k21--> peripheral

Target occupancy in the tumour is C_t/(C_t + K_D) with the tumour interstitial
concentration C_t = ρ·C_plasma (ρ = ``ab_tumour_partition``; Kosinsky use the plasma
concentration, ρ = 1; IgG interstitial levels in tumours are often lower).

anti-PD-1 and anti-CTLA-4: the same structure, one compartment each (depot -> plasma ->),
with their own constants (``pd1ab_*``, ``ctla4ab_*``; a mouse IgG in a mouse, assumed
values marked in the table), occupancy C/(C + K_D) of PD-1 on T cells and of CTLA-4;
they share the body weight and the IgG molecular weight with anti-PD-L1.

BSO (GSH-synthesis inhibitor), HSP inhibitor, glucose oxidase, and the depleting agents
(anti-CD8, anti-CD4, anti-NK1.1 and anti-CD25 antibodies, clodronate liposomes; their
effects are used by the depletion link): one compartment each, amount in mg/kg body
weight, first-order elimination, effect E = D/(D + EC50). These are deliberately coarse
exposure models; their constants are marked as assumed or cited in
``parameters/model/pharmacokinetics.tsv``.
"""

from pysb import Expression, Monomer, Observable, Rule

from mhimmune.core.modelkit import bolus, par, present, provide

READS: dict = {}
PROVIDES = {
    "pdl1_occupancy": "fraction",
    "pd1_occupancy": "fraction",
    "ctla4_occupancy": "fraction",
    "bso_effect": "fraction",
    "hsp_inhibitor_effect": "fraction",
    "gox_effect": "fraction",
    "cd8_depletion_effect": "fraction",
    "cd4_depletion_effect": "fraction",
    "nk_depletion_effect": "fraction",
    "macrophage_depletion_effect": "fraction",
    "treg_depletion_effect": "fraction",
    "body_weight": "kg",
}

#: small drugs: (monomer, dose kind, parameter prefix, provided signal)
SMALL_DRUGS = [
    ("BSO", "bso", "bso", "bso_effect"),
    ("HSPi", "hsp_inhibitor", "hspi", "hsp_inhibitor_effect"),
    ("GOx", "glucose_oxidase", "gox", "gox_effect"),
    ("AntiCD8", "cd8_depletion", "anticd8", "cd8_depletion_effect"),
    ("AntiCD4", "cd4_depletion", "anticd4", "cd4_depletion_effect"),
    ("AntiNK", "nk_depletion", "antink", "nk_depletion_effect"),
    ("Clodronate", "macrophage_depletion", "clodronate", "macrophage_depletion_effect"),
    ("AntiCD25", "treg_depletion", "anticd25", "treg_depletion_effect"),
]

#: further antibodies, one compartment each: (monomer prefix, dose kind, parameter prefix,
#: provided occupancy signal)
ANTIBODIES = [
    ("AntiPD1", "anti_pd1", "pd1ab", "pd1_occupancy"),
    ("AntiCTLA4", "anti_ctla4", "ctla4ab", "ctla4_occupancy"),
]


def one_compartment_antibody(mono, kind, prefix, signal_name, body_weight, mw):
    """Depot -> plasma -> elimination of one antibody (nmol); provides its occupancy
    C/(C + K_D) of the plasma concentration C (nM) as *signal_name*."""
    depot, plasma = Monomer(f"{mono}Depot"), Monomer(f"{mono}Plasma")
    present(depot())
    present(plasma())
    Rule(f"{prefix}_absorption", depot() >> plasma(), par(f"{prefix}_ka", "1/h"))
    Rule(f"{prefix}_elimination", plasma() >> None, par(f"{prefix}_kel", "1/h"))
    amount = Observable(f"{prefix}_plasma_nmol", plasma())
    conc = Expression(f"{prefix}_plasma_nM", 1000 * amount / par(f"{prefix}_volume", "mL"))
    kd = par(f"{prefix}_kd", "nM")
    provide(signal_name, Expression(signal_name, conc / (conc + kd)))
    bolus(kind, depot(), body_weight * 1e6 / mw)


def declare():
    # --- anti-PD-L1 antibody (nmol) ---
    depot = Monomer("AbDepot")
    plasma = Monomer("AbPlasma")
    ka = par("ab_ka", "1/h")
    kel = par("ab_kel", "1/h")
    volume = par("ab_volume", "mL")
    kd = par("ab_kd", "nM")
    body_weight = par("body_weight", "kg")
    mw = par("ab_mw", "g/mol")
    provide("body_weight", body_weight)
    present(depot())
    present(plasma())
    Rule("ab_absorption", depot() >> plasma(), ka)
    Rule("ab_elimination", plasma() >> None, kel)
    peripheral = Monomer("AbPeripheral")
    k12 = par("ab_k12", "1/h")
    k21 = par("ab_k21", "1/h")
    partition = par("ab_tumour_partition", "1")
    present(peripheral())
    Rule("ab_distribution", plasma() | peripheral(), k12, k21)
    ab = Observable("ab_plasma_nmol", plasma())
    Observable("ab_peripheral_nmol", peripheral())
    # nmol / mL = uM; x1000 -> nM
    conc = Expression("ab_plasma_nM", 1000 * ab / volume)
    tumour_conc = Expression("ab_tumour_nM", partition * conc)
    provide("pdl1_occupancy", Expression("pdl1_occupancy", tumour_conc / (tumour_conc + kd)))
    # mg/kg -> nmol: dose[mg/kg] * BW[kg] / MW[g/mol] * 1e6
    bolus("anti_pdl1", depot(), body_weight * 1e6 / mw)
    for mono, kind, prefix, sig in ANTIBODIES:
        one_compartment_antibody(mono, kind, prefix, sig, body_weight, mw)

    # --- small drugs (mg/kg equivalents) ---
    for mono, kind, prefix, sig in SMALL_DRUGS:
        m = Monomer(mono)
        k_el = par(f"{prefix}_kel", "1/h")
        ec50 = par(f"{prefix}_ec50", "mg/kg")
        present(m())
        Rule(f"{prefix}_elimination", m() >> None, k_el)
        amount = Observable(f"{prefix}_amount", m())
        provide(sig, Expression(sig, amount / (amount + ec50)))
        bolus(kind, m(), 1.0)
