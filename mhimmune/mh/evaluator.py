"""The MH model evaluator: :class:`mhimmune.runs.evaluator.ModelEvaluator` with the MH catalogue.

Readout specifications know the summary names, ``cure`` and ``total_tumour_volume`` of
:mod:`mhimmune.mh.catalogue`; the default readouts are those of
:meth:`mhimmune.SimulationResult.summary` plus a cure flag; protocols are
:class:`~mhimmune.Protocol` objects or :class:`~mhimmune.mh.template.ScheduleTemplate`
families, built from factors with H·f warnings silenced (limits are checked per run).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mhimmune.core.errors import ProtocolError
from mhimmune.mh.catalogue import DEFAULT_READOUTS, VOCABULARY
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.protocol import Protocol
from mhimmune.mh.simulation import simulate
from mhimmune.mh.template import ScheduleTemplate
from mhimmune.runs import evaluator as generic
from mhimmune.runs.readout import Vocabulary

__all__ = ["ModelEvaluator"]


class ModelEvaluator(generic.ModelEvaluator):
    """Evaluate one design row of the MH model: build the protocol, simulate, compute readouts.

    Parameters are those of :class:`mhimmune.runs.evaluator.ModelEvaluator`; *protocol* is
    a :class:`~mhimmune.mh.template.ScheduleTemplate` (its factors may be design columns)
    or a fixed :class:`~mhimmune.Protocol` (then every column is a model parameter);
    *readouts* default to :data:`~mhimmune.mh.catalogue.DEFAULT_READOUTS`.
    """

    vocabulary: ClassVar[Vocabulary] = VOCABULARY
    default_readouts: ClassVar[tuple[str, ...]] = DEFAULT_READOUTS
    ignored_warnings: ClassVar[tuple[type[Warning], ...]] = (HfWarning,)
    simulator = staticmethod(simulate)

    @classmethod
    def check_protocol(cls, protocol: Any) -> None:
        """Raise :class:`~mhimmune.core.errors.ProtocolError` unless *protocol* is a
        :class:`~mhimmune.Protocol` or a :class:`~mhimmune.mh.template.ScheduleTemplate`."""
        if not isinstance(protocol, (Protocol, ScheduleTemplate)):
            raise ProtocolError(
                f"protocol: expected a mhimmune.Protocol or ScheduleTemplate, "
                f"got {type(protocol).__name__}"
            )
