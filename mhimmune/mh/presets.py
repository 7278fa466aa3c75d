"""Tumour and host presets: named parameter sets chosen by name.

A *tumour preset* describes one syngeneic mouse tumour line (CT26, MC38, 4T1, B16-F10):
its untreated growth, how readily it admits effector T cells, its resting PD-L1 and its
myeloid suppression. A *host preset* describes the animal (an immunocompetent mouse, or
an athymic nude mouse without T cells). They are variants (:mod:`mhimmune.core.variants`)
kept in ``parameters/tumours.toml`` (``[tumours.NAME]``) and ``parameters/hosts.toml``
(``[hosts.NAME]``); every preset of a kind sets the same parameters, so one replaces
another completely.

Choose them

* when loading a model, ``load_model(tumour="4t1", host="nude")``: the preset values
  replace the tables' values (:attr:`~mhimmune.core.model.Model.baseline`);
* in a protocol, ``tumour = "4t1"`` / ``host = "nude"`` (TOML) or
  ``Protocol(..., tumour="4t1")``: :func:`~mhimmune.mh.simulation.simulate` applies them
  beneath the caller's overrides; a model loaded with another preset of the same kind is
  an error (:func:`protocol_overrides`);
* on the command line, ``--tumour`` and ``--host``; ``mhimmune tumours`` and
  ``mhimmune hosts`` list them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.core.model import Model
from mhimmune.core.model import load_model as load_core_model
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir
from mhimmune.core.variants import read_variants, variant, variants

__all__ = [
    "KINDS",
    "preset_file",
    "preset_names",
    "tumours",
    "hosts",
    "preset_overrides",
    "protocol_overrides",
    "load_model",
]

#: preset kind -> its file in ``parameters/`` (section ``[<kind>s.NAME]``)
KINDS: Mapping[str, str] = {"tumour": "tumours.toml", "host": "hosts.toml"}


def preset_file(kind: str) -> Path:
    """The shipped file of the presets of *kind* (``"tumour"`` or ``"host"``)."""
    if kind not in KINDS:
        raise ParameterError(f"preset kind {kind!r}: must be one of {', '.join(KINDS)}")
    try:
        return resource_dir("parameters") / KINDS[kind]
    except MhimmuneError as exc:
        raise ParameterError(f"cannot locate the shipped {kind} presets: {exc}") from None


def preset_names(kind: str) -> list[str]:
    """Names of the shipped presets of *kind*, in file order."""
    return list(read_variants(preset_file(kind), f"{kind}s"))


def _frame(kind: str) -> pd.DataFrame:
    return variants(preset_file(kind), f"{kind}s")


def tumours() -> pd.DataFrame:
    """The shipped tumour presets: one row per preset with its ``description``,
    ``source`` and ``overrides``."""
    return _frame("tumour")


def hosts() -> pd.DataFrame:
    """The shipped host presets: one row per preset with its ``description``, ``source``
    and ``overrides``."""
    return _frame("host")


def preset_overrides(
    tumour: str | None = None, host: str | None = None, table: ParameterTable | None = None
) -> dict[str, float]:
    """The checked overrides (table units) of a tumour and a host preset; ``None`` leaves
    that kind out. Unknown names raise one error listing the known presets."""
    out: dict[str, float] = {}
    for kind, name in (("tumour", tumour), ("host", host)):
        if name is not None:
            out.update(variant(name, file=preset_file(kind), table=table, section=f"{kind}s"))
    return out


def protocol_overrides(model: Model, protocol: Any) -> dict[str, float]:
    """The overrides of the presets a *protocol* names (its ``tumour`` and ``host``), for
    simulating it with *model*.

    A preset the model was already loaded with adds nothing; a protocol naming another
    preset of a kind the model was loaded with raises :class:`ParameterError` (which one
    was meant is ambiguous).
    """
    chosen: dict[str, str | None] = {}
    for kind in KINDS:
        name = getattr(protocol, kind, None)
        loaded = model.labels.get(kind)
        if name is None or name == loaded:
            chosen[kind] = None
            continue
        if loaded is not None:
            raise ParameterError(
                f"{kind}: the protocol names {name!r} but the model was loaded with "
                f"{kind}={loaded!r}; load the model without a {kind} or with {name!r}"
            )
        chosen[kind] = name
    if not any(chosen.values()):
        return {}
    over = preset_overrides(chosen["tumour"], chosen["host"], model.table)
    return {k: v for k, v in over.items() if k in model.units}


def load_model(
    links: Sequence[str] | None = None,
    parameters: str | Path | Sequence | None = None,
    *,
    tumour: str | None = None,
    host: str | None = None,
    standalone: bool = False,
    verbose: bool = True,
) -> Model:
    """Build, compile (or load from the cache) and parameterise a model, optionally for a
    named tumour line and host.

    Parameters
    ----------
    links, parameters, standalone, verbose
        As :func:`mhimmune.core.model.load_model`.
    tumour
        A tumour preset (:func:`tumours`: ``"ct26"``, ``"mc38"``, ``"4t1"``,
        ``"b16f10"``); default the shipped tables (CT26).
    host
        A host preset (:func:`hosts`: ``"mouse"``, ``"nude"``); default the shipped tables
        (an immunocompetent mouse).

    The presets' values replace the tables' values (``model.baseline``; ``model.labels``
    names the presets). Further overrides apply on top at :func:`mhimmune.simulate`.
    """
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for kind, name in (("tumour", tumour), ("host", host)):
        if name is not None:
            table = ParameterTable.load(parameters)
            values.update(variant(name, file=preset_file(kind), table=table, section=f"{kind}s"))
            labels[kind] = name
    return load_core_model(
        links,
        parameters,
        standalone=standalone,
        verbose=verbose,
        values=values or None,
        labels=labels or None,
    )
