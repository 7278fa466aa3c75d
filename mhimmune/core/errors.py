"""Exceptions raised by mhimmune.

Every error a user can provoke with bad input derives from :class:`MhimmuneError`,
so the command line can print it as one line and exit non-zero.
"""

from __future__ import annotations


class MhimmuneError(Exception):
    """Base class of all errors raised by mhimmune on bad input or failed runs."""


class ProtocolError(MhimmuneError, ValueError):
    """A treatment protocol is invalid; the message names the field and allowed range."""


class ParameterError(MhimmuneError, ValueError):
    """A parameter table or override is invalid; the message names the parameter."""


class UnitError(MhimmuneError, ValueError):
    """A quantity has no unit, an unknown unit, or a unit of the wrong dimension."""


class ModelError(MhimmuneError, RuntimeError):
    """A model definition is inconsistent (missing signal, unknown component, ...)."""


class SolverError(MhimmuneError, RuntimeError):
    """The ODE integrator failed; the message names segment, time and overrides."""

    def __init__(
        self,
        message: str,
        *,
        segment: int | None = None,
        time_h: float | None = None,
        overrides: dict | None = None,
    ):
        super().__init__(message)
        self.segment = segment
        self.time_h = time_h
        self.overrides = dict(overrides or {})
