"""mhimmune: magnetic-hyperthermia-induced tumour immunity, simulated.

The common path (virtual trials, synergy and schedule optimisation: ``mh.cohort``,
``mh.synergy``, ``mh.optimize``, ``mh.hypotheses``)::

    import mhimmune as mh
    model = mh.load_model()
    plan = mh.Protocol.from_toml("analyses/protocols/mh_plus_pdl1.toml")
    res = mh.simulate(model, plan)
    res.summary(); res.plot()
    res = mh.simulate(model, plan, mh.variant("poor_delivery"))  # a named parameter set
    mh.simulate(mh.load_model(tumour="4t1", host="nude"), plan)  # tumour line and host

Outputs are predictions of a hypothesis-generating model.
"""

from mhimmune.core.errors import (
    MhimmuneError,
    ModelError,
    ParameterError,
    ProtocolError,
    SolverError,
    UnitError,
)
from mhimmune.core.model import Model, default_links
from mhimmune.core.params import ParameterTable
from mhimmune.core.variants import Variant, load_variant, variant, variants
from mhimmune.mh import readouts  # noqa: F401  (mh.readouts.compare(...))
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.presets import hosts, load_model, tumours
from mhimmune.mh.protocol import Protocol
from mhimmune.mh.simulation import SimulationResult, simulate

__version__ = "0.1.0"

#: the links of the full model, in composition order (``models/links.toml``)
DEFAULT_LINKS = default_links()

#: submodules reachable as attributes (``mh.cohort.sample_cohort``), imported on first use
_LAZY = {
    "cohort": "studies.cohort",
    "stats": "studies.stats",
    "synergy": "studies.synergy",
    "optimize": "studies.optimize",
    "hypotheses": "studies.hypotheses",
    "sensitivity": "studies.sensitivity",
    "sa_plots": "studies.sa_plots",
    "calibrate": "studies.calibrate",
    "ensemble": "runs.ensemble",
    "plotting": "mh.plotting",
    "physics": "mh.physics",
    "heating": "mh.heating",
    "agents": "mh.agents",
    "export": "interop.export",
    "petab": "interop.petab",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{_LAZY[name]}")
    raise AttributeError(f"module 'mhimmune' has no attribute {name!r}")


__all__ = [
    "load_model",
    "Model",
    "DEFAULT_LINKS",
    "Protocol",
    "simulate",
    "SimulationResult",
    "ParameterTable",
    "variants",
    "variant",
    "load_variant",
    "Variant",
    "tumours",
    "hosts",
    "MhimmuneError",
    "ProtocolError",
    "ParameterError",
    "UnitError",
    "ModelError",
    "SolverError",
    "HfWarning",
    "__version__",
]
