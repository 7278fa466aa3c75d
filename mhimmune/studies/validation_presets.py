"""Per-preset acceptance view of a validation result.

A tumour preset is meant to reproduce what a user plans experiments around: its untreated
growth, its response to anti-PD-1 or anti-PD-L1 alone, and the size of its immune
infiltrate (flow-cytometry shares of the untreated or antibody-treated tumour). This
module picks the validation rows that test each of the three for every shipped preset,
from the experiment a row runs, and lists presets that no row tests as such ("no row"), so
that a gap shows in the report instead of passing unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

__all__ = [
    "GROWTH_EXPERIMENTS",
    "INFILTRATE_EXPERIMENTS",
    "PD_AXIS_ANTIBODIES",
    "CHECKS",
    "preset_acceptance",
]

#: experiments that read an untreated tumour's growth (rate, size, time to a size)
GROWTH_EXPERIMENTS = frozenset({
    "untreated_growth_rate",
    "untreated_max_volume",
    "preset_doubling_time",
    "preset_log_growth_rate",
    "preset_volume_after_inoculation",
    "preset_days_after_inoculation",
})  # fmt: skip
#: experiments that read a flow-cytometry share of the tumour's immune infiltrate
INFILTRATE_EXPERIMENTS = frozenset({
    "preset_immune_percent",
    "preset_immune_percent_change",
    "preset_antibody_percent_fold",
    "preset_ctl_infiltration_ratio",
})  # fmt: skip
#: the ``antibody=`` values of a PD-1/PD-L1 blocking antibody given alone
PD_AXIS_ANTIBODIES = frozenset({"pd1", "pdl1"})
#: the checks, in report order
CHECKS = ("untreated growth", "anti-PD-(L)1 alone", "immune infiltrate")
_COLUMNS = ["preset", "check", "target", "role", "status"]


def _check_of(name: str, kwargs: Mapping) -> str | None:
    if name in GROWTH_EXPERIMENTS:
        return CHECKS[0]
    if name in INFILTRATE_EXPERIMENTS:
        return CHECKS[2]
    if name.startswith("preset_antibody") and kwargs.get("antibody") in PD_AXIS_ANTIBODIES:
        return CHECKS[1]
    return None


def preset_acceptance(
    rows: Iterable[tuple[Mapping, str, Mapping]],
    presets: Sequence[str],
    reference: str,
) -> pd.DataFrame:
    """Rows that test each preset's untreated growth, anti-PD-(L)1-alone response and
    immune infiltrate.

    Parameters
    ----------
    rows
        ``(row, experiment name, experiment keyword arguments)`` per validation target;
        ``row`` has ``id``, ``role`` and ``status``.
    presets
        The shipped tumour preset names; every one gets every check, with a ``no row``
        entry where no target tests it.
    reference
        The label of the reference tables' preset (rows naming no tumour count for it;
        ``ct26`` is shown under this label).

    Returns
    -------
    pandas.DataFrame
        Columns ``preset``, ``check`` (one of :data:`CHECKS`), ``target`` (id, empty for
        ``no row``), ``role`` and ``status``, sorted by preset and check. A ranking of two
        lines (``better=``/``worse=``) counts for both.
    """
    found = []
    for row, name, kwargs in rows:
        check = _check_of(name, kwargs)
        if check is None:
            continue
        named = [kwargs[k] for k in ("tumour", "better", "worse") if kwargs.get(k)] or [reference]
        for preset in named:
            label = reference if preset in ("ct26", reference) else preset
            found.append([label, check, row["id"], row["role"], row["status"]])
    labels = [reference if p == "ct26" else p for p in presets]
    seen = {(p, c) for p, c, *_ in found}
    for preset in labels:
        for check in CHECKS:
            if (preset, check) not in seen:
                found.append([preset, check, "", "", "no row"])
    table = pd.DataFrame(found, columns=_COLUMNS)
    order = {c: i for i, c in enumerate(CHECKS)}
    table = table.assign(_o=table["check"].map(order))
    return table.sort_values(["preset", "_o", "target"]).drop(columns="_o").reset_index(drop=True)
