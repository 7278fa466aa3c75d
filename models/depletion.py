"""Depletion link: experimental removal of one immune population at a time.

Depletion experiments ask which cells a response needs. Each depleting agent of the
pharmacokinetic link (an antibody, or clodronate liposomes) provides an effect
E = D/(D + EC50) in [0, 1]; here E times a maximal depletion rate is an extra death
hazard of the cells it targets:

========================  =====================================  ===========================
protocol kind             agent (typical mouse dose)              cells removed
========================  =====================================  ===========================
``cd8_depletion``         anti-CD8 (2.43 / 53-6.7; 10 mg/kg)     every CD8 T cell: primed,
                                                                 effector, exhausted, memory
``cd4_depletion``         anti-CD4 (GK1.5; 10 mg/kg)             CD4 helper cells and Tregs
                                                                 (both CD4+)
``nk_depletion``          anti-NK1.1 (PK136; 10 mg/kg)            NK cells, resting and active
``macrophage_depletion``  clodronate liposomes (~50 mg/kg)        macrophages, M1 and M2
``treg_depletion``        anti-CD25 (PC61; 10 mg/kg)              Tregs (partially: Tregs
                                                                 that escape keep suppressing)
``anti_ctla4``            anti-CTLA-4 (9D9, IgG2a; 10 mg/kg)      Tregs, by Fc-receptor-bearing
                                                                 macrophages (Simpson et al.
                                                                 2013 [simpson2013], Selby et
                                                                 al. 2013 [selby2013]); also
                                                                 raises priming (immune.py)
========================  =====================================  ===========================

The anti-CTLA-4 hazard is its occupancy times ``ctla4_treg_depletion_rate``. The model has
one Treg pool (tumour and draining node together), so the loss of intratumoural Tregs is
applied to all of it; the peripheral Treg expansion Selby et al. saw is not modelled.

Sources and assumptions of the rates are in ``parameters/model/depletion.tsv`` (anti-NK1.1
given weekly keeps NK cells depleted for weeks, Seaman et al. 1987 [seaman1987];
PC61 reduces but does not eliminate Foxp3+ Tregs for up to two weeks, Couper et al. 2007
[couper2007]; clodronate liposomes make macrophages that engulf them apoptotic, van
Rooijen & Hendrikx 2010 [vanrooijen2010]). Cells keep being recruited during depletion,
so populations recover once the agent is cleared, as after the last injection in
experiments.
"""

from pysb import Expression, Rule

from mhimmune.core.modelkit import component, par, signal

READS = {
    "cd8_depletion_effect": ("fraction", 0.0),
    "cd4_depletion_effect": ("fraction", 0.0),
    "nk_depletion_effect": ("fraction", 0.0),
    "macrophage_depletion_effect": ("fraction", 0.0),
    "treg_depletion_effect": ("fraction", 0.0),
    "ctla4_occupancy": ("fraction", 0.0),
}
PROVIDES: dict = {}

#: (rule name, monomers removed, depletion-rate parameter, effect signal)
DEPLETIONS = [
    ("cd8_depletion", ("CD8",), "cd8_depletion_rate", "cd8_depletion_effect"),
    ("cd4_depletion", ("CD4h", "Treg"), "cd4_depletion_rate", "cd4_depletion_effect"),
    ("nk_depletion", ("NK",), "nk_depletion_rate", "nk_depletion_effect"),
    ("macrophage_depletion", ("Mac",), "macrophage_depletion_rate", "macrophage_depletion_effect"),
    ("treg_depletion", ("Treg",), "treg_depletion_rate", "treg_depletion_effect"),
    ("ctla4_treg_depletion", ("Treg",), "ctla4_treg_depletion_rate", "ctla4_occupancy"),
]


def declare():
    for name, monomers, rate_name, effect_name in DEPLETIONS:
        hazard = Expression(f"{name}_hazard", par(rate_name, "1/h") * signal(effect_name))
        for mono in monomers:
            rule = name if len(monomers) == 1 else f"{name}_{mono.lower()}"
            Rule(rule, component(mono)() >> None, hazard)
