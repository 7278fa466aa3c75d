"""Designs: tables with one row per run and one numeric column per factor.

:func:`grid_design` builds full-factorial designs, :func:`design_frame` checks and
normalises what callers pass as a design, and :func:`design_hash` identifies a design
together with the evaluator that computes it (the checkpoint key of a resumable run).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError

__all__ = ["grid_design", "design_frame", "design_hash", "RESERVED_COLUMNS"]

#: columns of a result table that a design may not use
RESERVED_COLUMNS = frozenset({"run", "status", "message", "seconds"})


def grid_design(**axes: Sequence[float]) -> pd.DataFrame:
    """Full-factorial design: one row per combination of the given factor values.

    Parameters
    ----------
    **axes
        Factor name -> values (bare numbers in the factor's unit).
    """
    if not axes:
        raise ParameterError("grid_design: give at least one factor, e.g. interval_day=[1, 2, 3]")
    names = list(axes)
    values = [list(np.atleast_1d(np.asarray(v, dtype=float))) for v in axes.values()]
    return pd.DataFrame(list(itertools.product(*values)), columns=names)


def design_frame(design: Any) -> pd.DataFrame:
    """The design as a float DataFrame (index 0..n-1); bad designs raise
    :class:`~mhimmune.core.errors.ParameterError`.

    Parameters
    ----------
    design
        DataFrame, mapping column -> values, or list of dicts (one per run).
    """
    if isinstance(design, pd.DataFrame):
        df = design.reset_index(drop=True)
    elif isinstance(design, Mapping):
        df = pd.DataFrame(design)
    else:
        df = pd.DataFrame(list(design))
    if df.shape[1] == 0 and len(df) == 0:
        raise ParameterError("design: no runs")
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise ParameterError(f"design: column names must be factor names (text), got {bad}")
    reserved = RESERVED_COLUMNS & set(df.columns)
    if reserved:
        raise ParameterError(f"design: reserved column names {sorted(reserved)}")
    try:
        df = df.astype(float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"design: every value must be a number ({exc})") from None
    if not np.all(np.isfinite(df.to_numpy())):
        rows = np.nonzero(~np.all(np.isfinite(df.to_numpy()), axis=1))[0][:5].tolist()
        raise ParameterError(f"design: NaN or infinite values in rows {rows}")
    return df


def design_hash(design: pd.DataFrame, evaluator: Any) -> str:
    """Identity of *design* and *evaluator* (its ``fingerprint()``, else its qualified name)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(design.columns)).encode())
    h.update(np.ascontiguousarray(design.to_numpy(dtype=float)).tobytes())
    if hasattr(evaluator, "fingerprint"):
        fp = evaluator.fingerprint()
    else:
        qualname = getattr(evaluator, "__qualname__", type(evaluator).__qualname__)
        fp = f"{getattr(evaluator, '__module__', '')}.{qualname}"
    h.update(fp.encode())
    return h.hexdigest()[:24]
