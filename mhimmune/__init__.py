"""mhimmune: magnetic-hyperthermia-induced tumour immunity, simulated.

The common path (virtual trials, synergy and schedule optimisation: ``mh.cohort``,
``mh.synergy``, ``mh.optimize``, ``mh.hypotheses``)::

    import mhimmune as mh
    model = mh.load_model()
    plan = mh.Protocol.from_toml("analyses/protocols/mh_plus_pdl1.toml")
    res = mh.simulate(model, plan)
    res.summary(); res.plot()

Outputs are predictions of a hypothesis-generating model.
"""

from .errors import (HfWarning, MhimmuneError, ModelError, ParameterError, ProtocolError,
                     SolverError, UnitError)
from .model import DEFAULT_LINKS, Model, load_model
from .params import ParameterTable
from .protocol import Protocol
from .simulate import SimulationResult, simulate
from . import readouts  # noqa: E402  (mh.readouts.compare(...))

__version__ = "0.1.0"

#: submodules reachable as attributes (``mh.cohort.sample_cohort``), imported on first use
_LAZY = ("cohort", "stats", "synergy", "optimize", "hypotheses", "ensemble", "sensitivity",
         "sa_plots", "plotting", "physics", "heating", "agents", "export", "petab", "calibrate")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mhimmune' has no attribute {name!r}")

__all__ = [
    "load_model", "Model", "DEFAULT_LINKS", "Protocol", "simulate", "SimulationResult",
    "ParameterTable", "MhimmuneError", "ProtocolError", "ParameterError", "UnitError",
    "ModelError", "SolverError", "HfWarning", "__version__",
]
