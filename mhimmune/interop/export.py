"""Export a model with a treatment schedule to SBML (Level 3), BNGL or a COMBINE archive.

:func:`write` writes a file in any of these formats; the writers live in
:mod:`mhimmune.interop.sbml` (events, conditions documents for PEtab),
:mod:`mhimmune.interop.bngl` (actions) and :mod:`mhimmune.interop.combine` (SBML +
SED-ML time course in an OMEX archive), and are re-exported here.

>>> sbml = to_sbml(model, protocol)               # SBML text
>>> write(model, "sbml", "model.xml", protocol)   # or "bngl", or "combine" (needs a protocol)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.io import atomic_path
from mhimmune.core.model import Model
from mhimmune.interop.bngl import to_bngl
from mhimmune.interop.combine import write_combine
from mhimmune.interop.sbml import (
    conditions_document,
    sbml_id,
    species_ids,
    to_sbml,
    to_sbml_document,
)
from mhimmune.mh.protocol import Protocol

__all__ = [
    "to_sbml",
    "to_sbml_document",
    "conditions_document",
    "to_bngl",
    "write_combine",
    "write",
    "species_ids",
    "sbml_id",
    "FORMATS",
]

#: formats :func:`write` knows
FORMATS = ("sbml", "bngl", "combine")


def write(
    model: Model,
    fmt: str,
    path: str | Path,
    protocol: Protocol | None = None,
    params: Mapping[str, Any] | None = None,
) -> Path:
    """Write *model* (with *protocol*) as ``"sbml"``, ``"bngl"`` or ``"combine"`` (an OMEX
    archive with SBML and a SED-ML time course; needs *protocol*) to *path*, atomically."""
    if fmt not in FORMATS:
        raise MhimmuneError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "combine":
        if protocol is None:
            raise MhimmuneError("combine export needs a protocol (the simulated experiment)")
        return write_combine(model, protocol, path, params)
    text = to_sbml(model, protocol, params) if fmt == "sbml" else to_bngl(model, protocol, params)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
