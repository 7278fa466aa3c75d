"""Locate the model and parameter folders, whether installed or in a source tree.

A wheel carries ``models/`` and ``parameters/`` inside the package
(``mhimmune/models``, ``mhimmune/parameters``); an editable install or a source
checkout keeps them at the top level of the repository.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mhimmune.core.errors import ModelError

_PKG = Path(__file__).resolve().parent.parent  # the mhimmune package folder
#: folder inside the installed package -> folder in a source checkout
_SOURCE_LOCATIONS = {
    "models": "models",
    "parameters": "parameters",
    "protocols": "analyses/protocols",
    "specs": "analyses/hypotheses",
    "validation": "analyses/validation",
}


@cache
def resource_dir(name: str) -> Path:
    """Return the folder ``models``, ``parameters``, ``protocols``, ``specs`` (hypothesis
    specs) or ``validation`` (published targets) that ships with mhimmune."""
    if name not in _SOURCE_LOCATIONS:
        raise ValueError(f"unknown resource folder {name!r}")
    for candidate in (_PKG / name, _PKG.parent / _SOURCE_LOCATIONS[name]):
        if candidate.is_dir():
            return candidate
    raise ModelError(
        f"cannot find the {name!r} folder next to {_PKG}; is mhimmune installed correctly?"
    )
