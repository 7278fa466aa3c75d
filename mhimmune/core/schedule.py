"""The compiled schedule: what the engine integrates between and applies at breakpoints.

A :class:`Schedule` splits ``[0, duration_h]`` into :class:`Segment` intervals within
which every model input (a parameter set by the schedule) is constant. At the start of
each segment its :class:`Jump` list changes states instantaneously (``add``: ``y += a·s``,
``top_up``: ``y = max(y, a·s)`` with *s* the model's scale of that dose). The schedule is
plain data in hours and internal units; it knows nothing of what the inputs and doses
mean. :func:`mhimmune.core.simulate.integrate` consumes it, and so do the exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Jump", "Segment", "Schedule", "JUMP_MODES"]

#: how a jump changes its state: add to it, or raise it to the target (never lower it)
JUMP_MODES = ("add", "top_up")


@dataclass(frozen=True)
class Jump:
    """One instantaneous change of a state at the start of a segment.

    Parameters
    ----------
    state
        Index of the state in the model's state vector.
    amount
        Amount in the dose's own unit; the state changes by ``amount * scale`` with
        ``scale = model.compiled.bolus_scales(p)[dose]``.
    mode
        ``"add"`` (``y += amount·scale``) or ``"top_up"`` (``y = max(y, amount·scale)``).
    dose
        Index of the model's dose target (``model.compiled.bolus_kinds/_species/_modes``
        and ``bolus_scales(p)``) the jump applies.
    """

    state: int
    amount: float
    mode: str
    dose: int


@dataclass(frozen=True)
class Segment:
    """An interval ``[t0_h, t1_h)`` (hours) with constant inputs.

    Parameters
    ----------
    t0_h, t1_h
        Interval bounds in hours.
    inputs
        Value of every model input during the interval, by input parameter name
        (internal units).
    jumps
        State jumps applied at *t0_h*, in application order (additions before top-ups).
    fine
        Whether the interval needs finely resolved integration (the solver's
        ``fine_max_step`` applies instead of ``max_step``).
    """

    t0_h: float
    t1_h: float
    inputs: Mapping[str, float]
    jumps: tuple[Jump, ...] = ()
    fine: bool = False

    def apply_jumps(self, y, scales) -> None:
        """Apply the segment's jumps to the state vector *y* in place, in order, with the
        dose scales *scales* (``model.compiled.bolus_scales(p)``)."""
        for jump in self.jumps:
            target = jump.amount * scales[jump.dose]
            if jump.mode == "top_up":
                y[jump.state] = max(y[jump.state], target)
            else:
                y[jump.state] += target


@dataclass(frozen=True)
class Schedule:
    """Consecutive segments covering ``[0, duration_h]``, and where to record finely.

    Parameters
    ----------
    duration_h
        End of the last segment, hours.
    segments
        The segments in time order; the first starts at 0, each starts where the
        previous one ends, the last ends at *duration_h*.
    fine_windows
        ``(t0_h, t1_h)`` intervals recorded at the fine output step (hours).
    """

    duration_h: float
    segments: tuple[Segment, ...]
    fine_windows: tuple[tuple[float, float], ...] = field(default=())

    @property
    def breakpoints(self) -> list[float]:
        """Segment starts and the end, in hours."""
        return [s.t0_h for s in self.segments] + [self.duration_h]

    def scheduled_inputs(self) -> list[str]:
        """Inputs set to a non-zero value in some segment (the others stay 0)."""
        names = list(self.segments[0].inputs) if self.segments else []
        return [n for n in names if any(s.inputs[n] != 0.0 for s in self.segments)]
