"""Sensitivity-analysis specs (TOML) in, result files out.

:func:`load_spec` reads a spec into keyword arguments of
:func:`~mhimmune.studies.sensitivity.run_sensitivity`; :func:`write_outputs` writes a
result's tables.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.io import atomic_path, read_toml, write_csv
from mhimmune.core.units import hours_to_days
from mhimmune.core.variants import spec_overrides
from mhimmune.mh.protocol import Protocol
from mhimmune.mh.template import ScheduleTemplate

if TYPE_CHECKING:  # only for the annotation; sensitivity imports this module
    from mhimmune.studies.sensitivity import SensitivityResult

__all__ = ["load_spec", "write_outputs"]


_SPEC_KEYS = {
    "name",
    "description",
    "method",
    "n",
    "seed",
    "second_order",
    "num_levels",
    "M",
    "num_resamples",
    "protocol",
    "template",
    "factors",
    "outputs",
    "params",
    "variant",
    "variants",
    "simulate",
}


def load_spec(path) -> dict:
    """Read a sensitivity-analysis spec (TOML) into keyword arguments of :func:`run_sensitivity`.

    The file has top-level ``method``, ``n``, ``seed``, ``second_order`` (optional);
    either ``protocol = "file.toml"`` (a fixed protocol, relative to the spec) or a
    ``[template]`` table of :class:`~mhimmune.mh.template.ScheduleTemplate` keywords with
    units; ``[factors]`` (name = "table" | [lower, upper] | {lower, upper, dist});
    ``[outputs]`` with ``readouts``, ``trajectories`` and ``time_step_day``; ``[params]``
    fixed overrides; ``variant = "NAME"`` a named parameter set applied as fixed overrides
    under ``[params]`` (from ``variants = "file.toml"``, relative to the spec, or the
    shipped file); ``[simulate]`` options of :func:`mhimmune.simulate`.
    """
    p = Path(path)
    data = read_toml(p)
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise MhimmuneError(
            f"{p}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_SPEC_KEYS))}"
        )
    if ("protocol" in data) == ("template" in data):
        raise MhimmuneError(f"{p}: give either protocol = 'file.toml' or a [template] table")
    protocol: Protocol | ScheduleTemplate
    if "protocol" in data:
        proto_path = (
            (p.parent / data["protocol"])
            if not Path(data["protocol"]).is_absolute()
            else Path(data["protocol"])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            protocol = Protocol.from_toml(proto_path)
    else:
        tpl = dict(data["template"])
        duration = tpl.pop("duration", "40 d")
        protocol = ScheduleTemplate(duration, **tpl)
    factors = data.get("factors")
    if not factors or not isinstance(factors, dict):
        raise MhimmuneError(f"{p}: [factors] must list at least one factor")
    factors = {
        k: (None if v in ("table", "default", {}) else (tuple(v) if isinstance(v, list) else v))
        for k, v in factors.items()
    }
    outputs = dict(data.get("outputs", {}))
    bad = set(outputs) - {"readouts", "trajectories", "time_step_day"}
    if bad:
        raise MhimmuneError(
            f"{p}: unknown keys in [outputs]: {sorted(bad)}; allowed: readouts, "
            f"trajectories, time_step_day"
        )
    trajectories = list(outputs.get("trajectories", []))
    grid = None
    if trajectories:
        step = outputs.get("time_step_day", 1.0)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise MhimmuneError(f"{p}: outputs.time_step_day must be > 0")
        end = hours_to_days(protocol.duration_h)
        grid = np.arange(0.0, end + 1e-9, step)
    kwargs = dict(
        protocol=protocol,
        factors=factors,
        method=data.get("method", "sobol"),
        n=_integer(data, "n", 1024, p),
        readouts=outputs.get("readouts"),
        trajectories=trajectories,
        time_grid_day=grid,
        params=spec_overrides(data, p),
        seed=data.get("seed", 0),
        second_order=bool(data.get("second_order", False)),
        num_levels=_integer(data, "num_levels", 4, p),
        M=_integer(data, "M", 4, p),
        num_resamples=_integer(data, "num_resamples", 100, p),
        simulate_options=data.get("simulate"),
    )
    return kwargs


def _integer(data: dict, key: str, default: int, path: Path) -> int:
    """``data[key]`` (or *default*) checked to be an integer ≥ 1."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MhimmuneError(f"{path}: {key} must be an integer ≥ 1 (got {value!r})")
    return value


def write_outputs(result: SensitivityResult, out) -> list:
    """Write indices.csv, runs.parquet, failures.csv (if any), problem.csv into *out*; the paths."""
    out = Path(out)
    paths = [
        write_csv(result.indices, out / "indices.csv", index=False),
        write_csv(result.sample.problem.to_frame(), out / "problem.csv", index=False),
    ]
    with atomic_path(out / "runs.parquet") as tmp:
        result.ensemble.results.to_parquet(tmp, index=False)
    paths.append(out / "runs.parquet")
    if result.ensemble.n_failed:
        paths.append(write_csv(result.failures, out / "failures.csv", index=False))
    return paths
