"""How far a tumour preset reproduces published data, for reports built on that preset.

A hypothesis report ranks treatments for one tumour preset. Its reader needs to know how
the preset fares against the experiments it was calibrated on and those it predicts:
:func:`preset_evidence` simulates the validation targets that test the preset's untreated
growth, its response to anti-PD-(L)1 alone and its immune infiltrate (the checks of
:mod:`mhimmune.studies.validation_presets`) and returns them with their published values,
the model's values and, for a miss, its diagnosed cause; :func:`evidence_markdown` renders
the table. A check no target tests appears as ``no row``.
"""

from __future__ import annotations

import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.mh.presets import preset_names
from mhimmune.studies.validation import (
    REFERENCE_TABLES,
    ValidationResult,
    format_number,
    format_range,
    load_targets,
    run_validation,
)

__all__ = ["preset_evidence", "evidence_markdown"]

_COLUMNS = ["check", "target", "role", "claim", "value", "low", "high", "unit", "model"]
_COLUMNS += ["status", "reason", "reference"]


def preset_evidence(tumour: str, progress: bool = False) -> pd.DataFrame:
    """Simulate the shipped validation targets that test *tumour*'s untreated growth and
    its anti-PD-(L)1-alone response.

    Parameters
    ----------
    tumour
        A shipped tumour preset (``mhimmune tumours``).
    progress
        Show a progress bar while the targets run.

    Returns
    -------
    pandas.DataFrame
        One row per target (columns ``check``, ``target``, ``role``, ``claim``, published
        ``value``/``low``/``high``/``unit``, ``model``, ``status``, ``reason``,
        ``reference``), plus a ``no row`` entry for a check no target tests.
    """
    names = preset_names("tumour")
    if tumour not in names:
        raise ParameterError(
            f"tumour: {tumour!r} is not a tumour preset; allowed: {', '.join(names)}"
        )
    targets = load_targets()
    view = ValidationResult(targets.assign(status="not run")).acceptance_by_preset()
    mine = view[view["preset"] == (REFERENCE_TABLES if tumour == "ct26" else tumour)]
    ids = [t for t in mine["target"] if t]
    result = run_validation(targets, only=ids, progress=progress, hypotheses={}) if ids else None
    scored = result.table.set_index("id") if result is not None else pd.DataFrame()
    rows = []
    for _, m in mine.iterrows():
        if not m["target"]:
            rows.append({"check": m["check"], "target": "", "status": "no row"})
            continue
        r = scored.loc[m["target"]]
        rows.append({"check": m["check"], "target": m["target"],
                     **{c: r[c] for c in _COLUMNS[2:]}})  # fmt: skip
    return pd.DataFrame(rows, columns=_COLUMNS)


def evidence_markdown(table: pd.DataFrame, tumour: str) -> list[str]:
    """Report lines (a heading, a sentence and a table) for :func:`preset_evidence`'s
    *table* of preset *tumour*."""
    lines = [
        "## How the tumour preset compares with published data",
        "",
        f"The validation targets (`analyses/validation/targets.tsv`) that test `{tumour}`'s "
        "untreated growth, its response to anti-PD-(L)1 alone and its immune infiltrate, "
        "simulated with the "
        "preset's shipped parameters. Calibration rows were fitted; validation rows are "
        "predictions. "
        "A miss weakens every ranking above that leans on the same links.",
        "",
        "| check | target | role | published (range) | model | status | cause of a miss |",
        "|---|---|---|---|---:|---|---|",
    ]
    for _, r in table.iterrows():
        if r["status"] == "no row":
            lines.append(f"| {r['check']} | – | – | – | – | **no row** | no published "
                         "value of this kind was read for the preset |")  # fmt: skip
            continue
        published = f"{format_number(r['value'])} {format_range(r['low'], r['high'])} {r['unit']}"
        reason = str(r["reason"]).replace("|", "/") if r["status"] == "fail" else ""
        lines.append(
            f"| {r['check']} | `{r['target']}` [{r['reference']}] | {r['role']} | "
            f"{published} | {format_number(r['model'])} | **{r['status']}** | {reason} |"
        )
    return lines + [""]
