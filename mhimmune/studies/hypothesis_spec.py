"""Hypothesis specs: read and check the TOML (or dict) that :func:`run_hypotheses` runs.

:func:`load_hypothesis_spec` checks the top-level keys and the types of the sections
(template, cohort, responder, trial, synergy, optimize, run, params); a ``variant = "NAME"``
(from ``variants = "file.toml"``, relative to the spec, or the shipped file) is merged
into ``params`` as fixed overrides, ``[params]`` on top; ``tumour = "NAME"`` and
``host = "NAME"`` choose presets (``mhimmune tumours``, ``mhimmune hosts``): the cohort
varies around the preset's values, which sit beneath ``[params]``;
:data:`QUICK_LIMITS` are the sizes of a quick run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mhimmune.core.errors import ParameterError
from mhimmune.core.io import read_toml
from mhimmune.core.variants import spec_overrides
from mhimmune.studies.trial_options import DistantTumour, Rechallenge

__all__ = ["load_hypothesis_spec", "QUICK_LIMITS", "TRIAL_KEYS", "trial_options"]

_TOP_KEYS = {
    "title",
    "template",
    "cohort",
    "responder",
    "trial",
    "synergy",
    "optimize",
    "run",
    "params",
    "variant",
    "variants",
    "stability",
    "fit_uncertainty",
    "tumour",
    "host",
}

#: sizes used by ``quick=True`` (and ``CI=true``): animals, grid levels per axis,
#: optimisation candidates, bootstrap resamples
QUICK_LIMITS = {
    "n_animals": 6,
    "grid_levels": 2,
    "budget": 6,
    "n_boot": 50,
    "stability_seeds": 2,
    "stability_size": 4,
}
#: keys of the [trial] table
TRIAL_KEYS = (
    "arms",
    "custom_arms",
    "distant",
    "rechallenge_day",
    "rechallenge_volume_mm3",
    "rechallenge_followup_day",
    "caliper_cv",
    "caliper_seed",
)


def load_hypothesis_spec(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read and check a hypothesis spec (TOML path or dict); returns a plain dict.

    Unknown top-level keys and sections of the wrong type are errors naming the key.
    """
    if isinstance(source, Mapping):
        data, where = dict(source), "spec"
    else:
        data, where = read_toml(source), str(source)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ParameterError(
            f"{where}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    for key in (
        "template",
        "cohort",
        "responder",
        "trial",
        "optimize",
        "run",
        "params",
        "stability",
    ):
        if key in data and not isinstance(data[key], Mapping):
            raise ParameterError(f"{where}: [{key}] must be a table")
    extra_trial = set(data.get("trial", {})) - set(TRIAL_KEYS)
    if extra_trial:
        raise ParameterError(
            f"{where}: [trial]: unknown keys {sorted(extra_trial)}; "
            f"allowed: {', '.join(TRIAL_KEYS)}"
        )
    if not isinstance(data.get("fit_uncertainty", True), bool):
        raise ParameterError(
            f"{where}: fit_uncertainty must be true or false (got {data['fit_uncertainty']!r})"
        )
    stab = data.get("stability", {})
    extra_stab = set(stab) - {"seeds", "sizes"}
    if extra_stab:
        raise ParameterError(
            f"{where}: [stability]: unknown keys {sorted(extra_stab)}; allowed: seeds, sizes"
        )
    syn = data.get("synergy", [])
    if isinstance(syn, Mapping):
        syn = [syn]
    if not isinstance(syn, list) or not all(isinstance(s, Mapping) for s in syn):
        raise ParameterError(f"{where}: [[synergy]] must be tables")
    data["synergy"] = [dict(s) for s in syn]
    for i, s in enumerate(data["synergy"]):
        missing = {"x", "x_values", "y", "y_values"} - set(s)
        if missing:
            raise ParameterError(f"{where}: synergy[{i}] lacks {sorted(missing)}")
        extra = set(s) - {"x", "x_values", "y", "y_values", "effect", "name", "fixed"}
        if extra:
            raise ParameterError(
                f"{where}: synergy[{i}]: unknown keys {sorted(extra)}; allowed: "
                f"x, x_values, y, y_values, effect, name, fixed"
            )
    opt = data.get("optimize")
    if opt is not None:
        extra = set(opt) - {
            "space",
            "constraints",
            "method",
            "objective",
            "aggregate",
            "budget",
            "seed",
            "n_boot",
            "fixed",
        }
        if extra:
            raise ParameterError(f"{where}: [optimize]: unknown keys {sorted(extra)}")
        if not isinstance(opt.get("space"), Mapping) or not opt["space"]:
            raise ParameterError(f"{where}: [optimize.space] must list at least one factor")
        if opt.get("objective", "responder") not in ("responder", "burden"):
            raise ParameterError(
                f"{where}: optimize.objective must be 'responder' or 'burden' "
                f"(got {opt.get('objective')!r})"
            )
    for key in ("tumour", "host"):
        if key in data and not isinstance(data[key], str):
            raise ParameterError(f"{where}: {key} must be a preset name (got {data[key]!r})")
    params = spec_overrides(data, None if isinstance(source, Mapping) else Path(source))
    data.pop("variant", None)
    data.pop("variants", None)
    if params is not None:
        data["params"] = params
    data["_where"] = where
    return data


def trial_options(trial: Mapping[str, Any], where: str = "spec") -> dict[str, Any]:
    """The design keywords of :func:`~mhimmune.studies.trial.run_trial` from a spec's
    [trial] table: ``distant`` (``"none"``, ``"day0"`` or ``{day, volume_mm3}``),
    ``rechallenge_day`` (with ``rechallenge_volume_mm3``, ``rechallenge_followup_day``),
    ``caliper_cv`` and ``caliper_seed``."""
    out: dict[str, Any] = {}
    if "distant" in trial:
        out["distant"] = DistantTumour.from_spec(trial["distant"], f"{where}: trial.distant")
    if "rechallenge_day" in trial:
        kw = {"day": trial["rechallenge_day"]}
        for key, name in (
            ("rechallenge_volume_mm3", "volume_mm3"),
            ("rechallenge_followup_day", "followup_day"),
        ):
            if key in trial:
                kw[name] = trial[key]
        out["rechallenge"] = Rechallenge(**kw)
    elif "rechallenge_volume_mm3" in trial or "rechallenge_followup_day" in trial:
        raise ParameterError(
            f"{where}: trial.rechallenge_day: needed by the other rechallenge keys"
        )
    if "caliper_cv" in trial:
        out["caliper_cv"] = trial["caliper_cv"]
        out["caliper_seed"] = int(trial.get("caliper_seed", 0))
    return out
