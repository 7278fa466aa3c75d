"""The factors of a sensitivity analysis: names, ranges and distributions.

:func:`define_problem` turns factor names (ranges from the parameter table) or explicit
ranges and distributions into a :class:`Problem` of :class:`Factor` objects; protocol
factors of a :class:`~mhimmune.mh.template.ScheduleTemplate` are allowed too.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mhimmune.core.errors import ParameterError
from mhimmune.core.params import ParameterTable
from mhimmune.mh.template import PROTOCOL_FACTORS

__all__ = ["Factor", "Problem", "define_problem", "table_frame", "METHODS"]

#: sensitivity methods
METHODS = ("sobol", "morris", "efast", "pawn", "delta")
_DISTS = ("uniform", "loguniform", "normal", "lognormal", "integer")
_Z975 = stats.norm.ppf(0.975)


@dataclass(frozen=True)
class Factor:
    """One uncertain input: a model parameter or a protocol factor.

    Parameters
    ----------
    name
        Parameter name (as in the parameter table) or protocol factor
        (:data:`~mhimmune.mh.template.PROTOCOL_FACTORS`).
    lower, upper
        Range in the factor's unit (the 2.5–97.5 % range for normal/lognormal).
    dist
        ``uniform``, ``loguniform``, ``normal``, ``lognormal`` or ``integer``.
    unit
        Unit of the values (documentation only).
    kind
        ``parameter``, ``protocol`` or ``input`` (a toy function's input).
    """

    name: str
    lower: float
    upper: float
    dist: str = "uniform"
    unit: str = ""
    kind: str = "input"

    def __post_init__(self):
        if self.dist not in _DISTS:
            raise ParameterError(
                f"factor {self.name}: unknown distribution {self.dist!r}; "
                f"allowed: {', '.join(_DISTS)}"
            )
        lo, hi = float(self.lower), float(self.upper)
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ParameterError(
                f"factor {self.name}: need finite bounds lower < upper "
                f"(got [{self.lower}, {self.upper}])"
            )
        if self.dist in ("loguniform", "lognormal") and lo <= 0:
            raise ParameterError(
                f"factor {self.name}: lower must be > 0 for {self.dist} (got {lo:g})"
            )
        if self.dist == "integer" and (lo != int(lo) or hi != int(hi)):
            raise ParameterError(
                f"factor {self.name}: integer bounds must be whole numbers (got [{lo:g}, {hi:g}])"
            )

    def values(self, u: np.ndarray) -> np.ndarray:
        """Map unit-interval samples *u* to factor values (in the factor's unit)."""
        u = np.asarray(u, dtype=float)
        lo, hi = float(self.lower), float(self.upper)
        if self.dist == "uniform":
            return lo + u * (hi - lo)
        if self.dist == "loguniform":
            return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        if self.dist == "integer":
            k = np.floor(lo + u * (hi - lo + 1.0))
            return np.clip(k, lo, hi)
        q = stats.norm.ppf(np.clip(u, 0.001, 0.999))
        if self.dist == "normal":
            return (lo + hi) / 2 + q * (hi - lo) / (2 * _Z975)
        a, b = np.log(lo), np.log(hi)
        return np.exp((a + b) / 2 + q * (b - a) / (2 * _Z975))


@dataclass(frozen=True)
class Problem:
    """The factors of an analysis (SALib's problem, in the unit hypercube)."""

    factors: tuple[Factor, ...]

    def __post_init__(self):
        names = [f.name for f in self.factors]
        if not names:
            raise ParameterError("problem: give at least one factor")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ParameterError(f"problem: duplicate factors {dup}")

    @property
    def names(self) -> list[str]:
        """Factor names, in order."""
        return [f.name for f in self.factors]

    @property
    def num_vars(self) -> int:
        """Number of factors."""
        return len(self.factors)

    def salib(self) -> dict:
        """The SALib problem dict (unit bounds; values are mapped by :meth:`values`)."""
        return {
            "num_vars": self.num_vars,
            "names": self.names,
            "bounds": [[0.0, 1.0]] * self.num_vars,
        }

    def values(self, unit: np.ndarray) -> pd.DataFrame:
        """Design (one column per factor, in factor units) from unit-hypercube samples."""
        unit = np.atleast_2d(np.asarray(unit, dtype=float))
        return pd.DataFrame({f.name: f.values(unit[:, i]) for i, f in enumerate(self.factors)})

    def to_frame(self) -> pd.DataFrame:
        """One row per factor: name, lower, upper, dist, unit, kind."""
        return pd.DataFrame([f.__dict__ for f in self.factors])


_TABLE_DISTS = {
    "uniform": "uniform",
    "loguniform": "loguniform",
    "normal": "normal",
    "lognormal": "lognormal",
}


def table_frame(table):
    if table is None:
        return ParameterTable.load().frame
    if hasattr(table, "table"):  # a Model
        return table.table.frame
    if hasattr(table, "frame"):
        return table.frame
    return table


def define_problem(factors: Sequence[str] | Mapping[str, Any], *, table: Any = None) -> Problem:
    """Build a :class:`Problem` from factor names and optional bounds.

    Parameters
    ----------
    factors
        Names (bounds from the defaults), or a mapping name -> ``None`` / ``"table"``
        (defaults), ``(lower, upper)`` (uniform, or the default distribution of a
        protocol factor), or a dict with ``lower``, ``upper``, ``dist``. Model
        parameters take bounds and distribution from the parameter table (``fixed``
        ones need explicit bounds); protocol factors from
        :data:`~mhimmune.mh.template.PROTOCOL_FACTORS`.
    table
        A Model, :class:`~mhimmune.ParameterTable` or its frame; default the shipped tables.
    """
    items = factors.items() if isinstance(factors, Mapping) else [(n, None) for n in factors]
    frame = None
    out = []
    for name, spec in items:
        if isinstance(spec, Factor):
            out.append(spec)
            continue
        base: dict[str, Any]  # Factor keywords: bounds (numbers after checking), dist, unit, kind
        if name in PROTOCOL_FACTORS:
            info = PROTOCOL_FACTORS[name]
            base = dict(
                lower=info.lower, upper=info.upper, dist=info.dist, unit=info.unit, kind="protocol"
            )
        else:
            if frame is None:
                frame = table_frame(table)
            explicit = (
                isinstance(spec, Mapping)
                and {"lower", "upper"} <= set(spec)
                or isinstance(spec, Mapping)
                and "bounds" in spec
                or (isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2)
            )
            if name not in frame.index and explicit:  # an input of a toy evaluator
                base = dict(lower=math.nan, upper=math.nan, dist=None, unit="", kind="input")
            elif name not in frame.index:
                hint = difflib.get_close_matches(
                    name, list(frame.index) + list(PROTOCOL_FACTORS), n=3
                )
                raise ParameterError(
                    f"factor {name}: neither a model parameter nor a protocol "
                    f"factor; close matches: {hint}"
                )
            else:
                row = frame.loc[name]
                dist = _TABLE_DISTS.get(str(row["distribution"]))
                base = dict(
                    lower=float(row["lower"]),
                    upper=float(row["upper"]),
                    dist=dist,
                    unit=str(row["unit"]),
                    kind="parameter",
                )
                if dist is None and (spec is None or spec == "table"):
                    raise ParameterError(
                        f"factor {name}: fixed in the parameter table; give "
                        f"bounds, e.g. {{{name!r}: (low, high)}}"
                    )
        if spec is None or spec == "table" or (isinstance(spec, Mapping) and not spec):
            pass
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"lower", "upper", "dist", "bounds"}
            if unknown:
                raise ParameterError(
                    f"factor {name}: unknown keys {sorted(unknown)}; use lower, upper, dist"
                )
            if "bounds" in spec:
                base["lower"], base["upper"] = spec["bounds"]
            base.update({k: spec[k] for k in ("lower", "upper", "dist") if k in spec})
        elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
            base["lower"], base["upper"] = spec
            if base.get("dist") is None:
                base["dist"] = "uniform"
        else:
            raise ParameterError(
                f"factor {name}: give None, 'table', (lower, upper) or "
                f"{{lower, upper, dist}} (got {spec!r})"
            )
        if base.get("dist") is None:
            base["dist"] = "uniform"
        try:
            base["lower"], base["upper"] = float(base["lower"]), float(base["upper"])
        except (TypeError, ValueError):
            raise ParameterError(
                f"factor {name}: bounds must be numbers (got {base['lower']!r}, {base['upper']!r})"
            ) from None
        out.append(Factor(name=name, **base))
    return Problem(tuple(out))
