"""The search space of a schedule optimisation: factors, fixed values, cohort, aggregate.

:func:`parse_space` turns a mapping ``factor -> levels or (low, high)`` into
:class:`SpaceFactor` objects (checked against the protocol factors of a
:class:`~mhimmune.mh.template.ScheduleTemplate`); :func:`parse_fixed`,
:func:`parse_cohort` and :func:`parse_aggregate` check the other inputs of
:func:`~mhimmune.studies.optimize.optimize_schedule`, and :func:`aggregate_rows` turns the
per-animal values of candidates into their objectives.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError, ProtocolError
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.studies.constraints import is_number
from mhimmune.studies.virtual_cohort import check_cohort

__all__ = [
    "SpaceFactor",
    "TABLE_COLUMNS",
    "RESERVED_NAMES",
    "template_of",
    "parse_space",
    "parse_fixed",
    "parse_cohort",
    "parse_aggregate",
    "aggregate_rows",
]

#: column names of the candidate table besides the factors
TABLE_COLUMNS = (
    "feasible",
    "violation",
    "n_ok",
    "n_failed",
    "objective",
    "rank",
    "ci_low",
    "ci_high",
    "p_best",
)
#: names a factor, a fixed value or a cohort column must not take
RESERVED_NAMES = set(TABLE_COLUMNS) | {"candidate", "animal", "run", "status", "message", "seconds"}
_INTEGER_KINDS = ("count", "switch")


@dataclass
class SpaceFactor:
    """One optimised factor: discrete levels or a continuous/integer range."""

    name: str
    levels: list[float] | None  # discrete levels, in the given order
    low: float | None = None
    high: float | None = None
    integer: bool = False

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``; set by :func:`parse_space` for every factor."""
        assert self.low is not None and self.high is not None, f"{self.name}: no bounds"
        return self.low, self.high

    @property
    def constant(self) -> bool:
        """Whether the factor has a single level."""
        return self.levels is not None and len(self.levels) == 1

    def grid_levels(self, n: int) -> list[float]:
        """The factor's levels on a grid with *n* levels per range."""
        if self.levels is not None:
            return list(self.levels)
        low, high = self.bounds
        if self.integer:
            return [float(v) for v in np.unique(np.round(np.linspace(low, high, n)))]
        return [float(v) for v in np.linspace(low, high, n)]

    def n_grid(self, n: int) -> int:
        """Number of grid levels for *n* levels per range."""
        return len(self.grid_levels(n))


def _protocol_kind(name: str) -> str | None:
    info = PROTOCOL_FACTORS.get(name)
    return None if info is None else info.kind


def _check_protocol_value(name: str, x: float, where: str) -> None:
    kind = _protocol_kind(name)
    if kind == "count" and (x < 0 or x != int(x)):
        raise ProtocolError(f"{where}: {name} is a count; values must be integers ≥ 0 (got {x:g})")
    if kind == "switch" and x not in (0.0, 1.0):
        raise ProtocolError(f"{where}: {name} is a switch; values must be 0 or 1 (got {x:g})")


def template_of(evaluator) -> ScheduleTemplate | None:
    """The ScheduleTemplate of *evaluator* (its ``protocol``), or None."""
    proto = getattr(evaluator, "protocol", None)
    return proto if isinstance(proto, ScheduleTemplate) else None


def parse_space(
    space, template: ScheduleTemplate | None, template_based: bool
) -> list[SpaceFactor]:
    """Check the search space and return its factors (levels, ranges, integer flags)."""
    if not isinstance(space, Mapping):
        raise ParameterError(
            f"space: expected a mapping factor name -> list of levels or "
            f"(low, high), got {type(space).__name__}"
        )
    if not space:
        raise ParameterError(
            "space: empty; give at least one factor, e.g. "
            "{'n_sessions': [1, 2, 3]} or {'session_interval_day': (1.0, 4.0)}"
        )
    factors = []
    for name, spec in space.items():
        where = f"space.{name}"
        if not isinstance(name, str) or not name:
            raise ParameterError(f"space: factor names must be text, got {name!r}")
        if name in RESERVED_NAMES:
            raise ParameterError(
                f"{where}: reserved name; factor names must not be one of {sorted(RESERVED_NAMES)}"
            )
        if template_based and name not in PROTOCOL_FACTORS:
            hints = difflib.get_close_matches(name, list(PROTOCOL_FACTORS), n=3)
            raise ParameterError(
                f"{where}: unknown protocol factor; the space of a ScheduleTemplate "
                f"evaluator holds protocol factors (close matches: {hints}; all: "
                f"{', '.join(PROTOCOL_FACTORS)}); give model parameters as "
                f"cohort columns or fixed values"
            )
        integer = _protocol_kind(name) in _INTEGER_KINDS
        checks: Sequence[float]  # values checked against the template
        if isinstance(spec, tuple):
            if len(spec) != 2 or not all(is_number(x) for x in spec):
                raise ParameterError(
                    f"{where}: a tuple is a continuous range (low, high) of two "
                    f"numbers (got {spec!r}); give discrete levels as a list"
                )
            lo, hi = float(spec[0]), float(spec[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ParameterError(
                    f"{where}: range (low, high) needs finite low < high (got {spec!r})"
                )
            if integer and (lo != int(lo) or hi != int(hi)):
                raise ProtocolError(
                    f"{where}: {name} takes integers; the range bounds must be "
                    f"integers (got {spec!r})"
                )
            for x in (lo, hi):
                _check_protocol_value(name, x, where)
            f = SpaceFactor(name, None, lo, hi, integer)
            checks = (lo, hi)
        else:
            if isinstance(spec, (str, bytes, Mapping)) or not isinstance(
                spec, (Sequence, np.ndarray, range)
            ):
                raise ParameterError(
                    f"{where}: expected a list of levels or a (low, high) tuple "
                    f"(got {spec!r}); hold a single value constant with fixed="
                )
            levels = (
                list(np.asarray(spec, dtype=object).ravel())
                if isinstance(spec, np.ndarray)
                else list(spec)
            )
            if not levels:
                raise ParameterError(f"{where}: no levels; give at least one value")
            bad = [x for x in levels if not is_number(x) or not math.isfinite(float(x))]
            if bad:
                raise ParameterError(f"{where}: levels must be finite numbers (got {bad[:3]})")
            levels = [float(x) for x in levels]
            if len(set(levels)) != len(levels):
                dup = sorted({x for x in levels if levels.count(x) > 1})
                raise ParameterError(f"{where}: duplicate levels {dup}")
            for x in levels:
                _check_protocol_value(name, x, where)
            f = SpaceFactor(name, levels, min(levels), max(levels), integer)
            checks = levels
        if template is not None:
            for x in checks:
                try:
                    template.values({name: x})
                except ProtocolError as exc:
                    raise ProtocolError(f"{where}: {exc}") from None
        factors.append(f)
    return factors


def parse_fixed(
    fixed, factors: list[SpaceFactor], template: ScheduleTemplate | None
) -> dict[str, float]:
    """Check the values held constant; factor name -> number."""
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise ParameterError(
            f"fixed: expected a mapping factor name -> number, got {type(fixed).__name__}"
        )
    names = {f.name for f in factors}
    out = {}
    for k, x in fixed.items():
        if not isinstance(k, str) or k in RESERVED_NAMES:
            raise ParameterError(f"fixed: invalid or reserved name {k!r}")
        if k in names:
            raise ParameterError(f"fixed.{k}: also in space; a factor is either optimised or fixed")
        if not is_number(x) or not math.isfinite(float(x)):
            raise ParameterError(f"fixed.{k}: must be a finite number (got {x!r})")
        _check_protocol_value(k, float(x), f"fixed.{k}")
        out[k] = float(x)
    if template is not None:
        try:
            template.values({k: v for k, v in out.items() if k in PROTOCOL_FACTORS})
        except ProtocolError as exc:
            raise ProtocolError(f"fixed: {exc}") from None
    return out


def parse_cohort(cohort, taken: set[str]) -> pd.DataFrame | None:
    """Check the cohort (None: one nominal animal); its columns must not be in *taken*."""
    if cohort is None:
        return None
    return check_cohort(
        cohort, taken | RESERVED_NAMES, "also space/fixed factors or reserved names"
    )


_QUANTILE = re.compile(r"^q(\d+(?:\.\d*)?|\.\d+)$")


def parse_aggregate(aggregate) -> tuple[str, float | None]:
    """``(aggregate, q)``: ``"mean"``, ``"median"`` or a quantile ``"qP"`` with its P."""
    if aggregate in ("mean", "median"):
        return aggregate, None
    if isinstance(aggregate, str):
        m = _QUANTILE.match(aggregate.strip())
        if m:
            q = float(m.group(1))
            if 0.0 <= q <= 1.0:
                return aggregate.strip(), q
            raise ParameterError(
                f"aggregate: quantile {q:g} must be in [0, 1] (write 'q0.25' for "
                f"the lower quartile)"
            )
    raise ParameterError(
        f"aggregate: must be 'mean', 'median' or a quantile 'qP' with P in "
        f"[0, 1] such as 'q0.25' (got {aggregate!r})"
    )


def aggregate_rows(Y: np.ndarray, aggregate: str, q: float | None) -> np.ndarray:
    """Aggregate each row of *Y* over its finite entries (NaN where a row has none)."""
    ok = np.isfinite(Y)
    count = ok.sum(axis=1)
    if aggregate == "mean":
        s = np.where(ok, Y, 0.0).sum(axis=1)
        return np.divide(s, count, out=np.full(len(Y), np.nan), where=count > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        return np.nanquantile(Y, 0.5 if q is None else q, axis=1)
