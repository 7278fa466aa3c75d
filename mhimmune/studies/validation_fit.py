"""The calibration of the validation suite, reproducible: blocks of parameters fitted to
calibration targets only, with an interval from each target's published range.

``analyses/validation/calibration.toml`` lists the blocks; each names the parameters it
fits (start and search range, in the parameter table's units), the calibration target
ids it fits them to (:func:`~mhimmune.studies.validation.fit_calibration`, which refuses
validation rows) and, for a value that belongs to a tumour preset, the preset. The fitted
values are copied into the tables (``parameters/model/*.tsv`` or
``parameters/tumours.toml``) with a source naming the targets. Blocks run in order, and a
block hands the values it fitted to the blocks after it (table values to all, a preset's
values to the blocks of that preset), as the tables will hold them. :func:`run_calibration`
re-runs every fit and reports, beside each fitted value, the value the tables hold, so a
stale table shows.

Interval: each target with a published range is fitted again at its lower and at its upper
end (the other targets at their values); the spread of the refitted values is the
parameter's interval. It is the uncertainty the published ranges carry into the fit, not
a statistical confidence interval.

>>> report = run_calibration()            # the shipped blocks (a minute or so)
>>> report.table                           # block, parameter, fitted, interval, table value
>>> report.save("analyses/validation/results")
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir
from mhimmune.mh.presets import preset_overrides
from mhimmune.studies.validation import fit_calibration, load_targets, parse_experiment
from mhimmune.studies.validation_experiments import EXPERIMENTS, parameter_overrides

__all__ = [
    "CalibrationBlock",
    "CalibrationReport",
    "load_blocks",
    "run_calibration",
    "stale_parameters",
]

#: relative difference between a fitted value and the table's above which it is stale
STALE_RELATIVE = 0.02


def _default_spec() -> Path:
    return resource_dir("validation") / "calibration.toml"


@dataclass(frozen=True)
class CalibrationBlock:
    """Parameters fitted together to some calibration targets.

    Parameters
    ----------
    name
        Label of the block.
    parameters
        ``{name: (start, lower, upper)}`` in the table's units, inside the table's bounds.
    targets
        Calibration target ids (``analyses/validation/targets.tsv``).
    tumour
        The tumour preset the fitted values belong to (``None``: the parameter tables).
    maxfev
        Largest number of evaluations per fit of this block (``None``: the caller's).
    interval_targets
        The targets whose published ends are refitted for the interval (``None``: all
        with a range); fewer keeps blocks of slow, cohort-based targets affordable.
    """

    name: str
    parameters: dict[str, tuple[float, float, float]]
    targets: tuple[str, ...]
    tumour: str | None = None
    maxfev: int | None = None
    interval_targets: tuple[str, ...] | None = None


def load_blocks(path: str | Path | None = None) -> list[CalibrationBlock]:
    """The blocks of a calibration TOML (default: the shipped
    ``analyses/validation/calibration.toml``); one error line names a bad field."""
    p = Path(path) if path is not None else _default_spec()
    with open(p, "rb") as f:
        raw = tomllib.load(f)
    blocks = []
    for i, b in enumerate(raw.get("block", [])):
        where = f"{p.name}: block {i + 1}"
        try:
            params = {k: tuple(float(x) for x in v) for k, v in dict(b["parameters"]).items()}
            targets = tuple(str(t) for t in b["targets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"{where}: needs parameters = {{name = [start, lower, upper]}} "
                                 f"and targets = [ids] ({exc})") from exc  # fmt: skip
        bad = [k for k, v in params.items() if len(v) != 3]
        if bad or not params or not targets:
            raise ParameterError(
                f"{where}: parameters need [start, lower, upper] (not {bad}) and at least "
                "one parameter and one target"
            )
        blocks.append(
            CalibrationBlock(
                name=str(b.get("name", f"block {i + 1}")),
                parameters=params,  # type: ignore[arg-type]
                targets=targets,
                tumour=b.get("tumour"),
                maxfev=int(b["maxfev"]) if "maxfev" in b else None,
                interval_targets=(
                    tuple(str(t) for t in b["interval_targets"])
                    if "interval_targets" in b
                    else None
                ),
            )
        )
    if not blocks:
        raise ParameterError(f"{p.name}: no [[block]]")
    return blocks


@dataclass
class CalibrationReport:
    """Result of :func:`run_calibration`.

    Attributes
    ----------
    table
        One row per block and parameter: ``fitted``, ``interval_low``/``interval_high``
        (refits at the targets' published ends), the value the tables hold (``table``),
        ``stale`` (they differ by more than :data:`STALE_RELATIVE`) and the fit's ``cost``.
    targets
        One row per block and target: published value and range, the model's value with
        the fitted parameters, and the seconds the block took.
    """

    table: pd.DataFrame
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_markdown(self) -> str:
        """The report as Markdown (fitted values, then the targets they were fitted to)."""
        lines = [
            "# Calibration",
            "",
            "Each block fits its parameters to calibration targets only "
            "(`analyses/validation/calibration.toml`; sum of squared log errors). The "
            "interval is the spread of refits with each target at the ends of its "
            "published range: the uncertainty those ranges carry, not a confidence "
            "interval. Blocks run in order; a block without a tumour preset fits table "
            "values that the later blocks then use. `table` is the value the shipped "
            "tables hold; a stale one differs "
            f"from its fit by more than {STALE_RELATIVE:.0%}. These fits calibrate a "
            "hypothesis-generating model; validation targets are scored apart "
            "(`report.md`).",
            "",
            "| block | parameter | fitted | interval | table | stale | cost |",
            "|---|---|---:|---|---:|---|---:|",
        ]
        for _, r in self.table.iterrows():
            interval = (
                "–"
                if math.isnan(r["interval_low"])
                else f"{r['interval_low']:.4g}–{r['interval_high']:.4g}"
            )
            lines.append(
                f"| {r['block']} | `{r['parameter']}` | {r['fitted']:.4g} | {interval} | "
                f"{r['table']:.4g} | {'**yes**' if r['stale'] else 'no'} | {r['cost']:.3g} |"
            )
        lines += [
            "",
            "## Targets",
            "",
            "| block | target | published (range) | model (fitted) |",
            "|---|---|---|---:|",
        ]
        for _, r in self.targets.iterrows():
            lines.append(
                f"| {r['block']} | `{r['target']}` | {r['value']:.4g} "
                f"({r['low']:.4g}–{r['high']:.4g}) | {r['model']:.4g} |"
            )
        return "\n".join(lines) + "\n"

    def save(self, out: str | Path) -> list[Path]:
        """Write ``calibration.md`` and ``calibration.csv`` into *out* (each written whole)."""
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        paths = [d / "calibration.md", d / "calibration.csv"]
        for path, text in zip(paths, (self.to_markdown(), self.table.to_csv(index=False))):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return paths


def _table_value(name: str, tumour: str | None, table: ParameterTable) -> float:
    if tumour is not None:
        over = preset_overrides(tumour=tumour, table=table)
        if name in over:
            return float(over[name])
    return float(table.frame.loc[name, "value"])


def _model_values(block: CalibrationBlock, values: dict[str, float], rows) -> list[float]:
    with parameter_overrides(values):
        out = []
        for tid in block.targets:
            name, kwargs = parse_experiment(rows.loc[tid, "experiment"], tid)
            out.append(float(EXPERIMENTS[name](**kwargs)))
    return out


def run_calibration(
    path: str | Path | None = None,
    only: Sequence[str] | None = None,
    intervals: bool = True,
    maxfev: int = 200,
) -> CalibrationReport:
    """Fit every block of a calibration TOML (default: the shipped one) to its targets.

    Parameters
    ----------
    path
        Calibration TOML; blocks as :func:`load_blocks` reads them.
    only
        Names of the blocks to fit (default: all).
    intervals
        Also refit at each target's published ends (two more fits per ranged target).
    maxfev
        Largest number of evaluations of a block's targets per fit.
    """
    blocks = load_blocks(path)
    if only is not None:
        unknown = sorted(set(only) - {b.name for b in blocks})
        if unknown:
            raise ParameterError(f"only: no block named {', '.join(unknown)}")
        blocks = [b for b in blocks if b.name in set(only)]
    targets = load_targets()
    rows = targets.set_index("id")
    table = ParameterTable.load()
    out: list[dict] = []
    per_target: list[dict] = []
    applied: dict[str, float] = {}  # table values fitted by earlier blocks
    by_preset: dict[str, dict[str, float]] = {}  # preset values fitted by earlier blocks
    for b in blocks:
        missing = sorted(set(b.targets) - set(rows.index))
        if missing:
            raise ParameterError(f"block {b.name!r}: no target with id {', '.join(missing)}")
        started = time.perf_counter()
        with parameter_overrides({**applied, **by_preset.get(b.tumour or "", {})}):
            fitted, cost, spread = _fit_block(b, targets, rows, intervals, b.maxfev or maxfev)
            model = _model_values(b, fitted, rows)
        seconds = time.perf_counter() - started
        for k, v in fitted.items():
            current = _table_value(k, b.tumour, table)
            out.append(
                dict(
                    block=b.name,
                    parameter=k,
                    tumour=b.tumour or "",
                    fitted=v,
                    interval_low=min(spread[k]) if len(spread[k]) > 1 else math.nan,
                    interval_high=max(spread[k]) if len(spread[k]) > 1 else math.nan,
                    table=current,
                    stale=bool(abs(current - v) > STALE_RELATIVE * abs(v)),
                    cost=cost,
                )
            )
        for tid, m in zip(b.targets, model):
            r = rows.loc[tid]
            per_target.append(
                dict(
                    block=b.name,
                    target=tid,
                    value=float(r["value"]),
                    low=float(r["low"]),
                    high=float(r["high"]),
                    model=m,
                    seconds=seconds,
                )  # fmt: skip
            )
        # later blocks see the tables (and this preset) as this block fitted them
        if b.tumour is None:
            applied.update(fitted)
        else:
            by_preset.setdefault(b.tumour, {}).update(fitted)
    return CalibrationReport(pd.DataFrame(out), pd.DataFrame(per_target))


def _fit_block(
    b: CalibrationBlock, targets: pd.DataFrame, rows: pd.DataFrame, intervals: bool, maxfev: int
) -> tuple[dict[str, float], float, dict[str, list[float]]]:
    """Fitted values, cost, and each value with its refits at the targets' published ends."""
    fit = fit_calibration(dict(b.parameters), b.targets, targets, maxfev=maxfev)
    fitted = {k: fit[k] for k in b.parameters}
    spread: dict[str, list[float]] = {k: [v] for k, v in fitted.items()}
    if intervals:
        chosen = b.targets if b.interval_targets is None else b.interval_targets
        for tid in chosen:
            lo, hi = float(rows.loc[tid, "low"]), float(rows.loc[tid, "high"])
            if not (lo > 0 and math.isfinite(hi) and hi > lo):
                continue  # one-sided or unranged: no end to refit at
            for end in (lo, hi):
                moved = targets.copy()
                moved.loc[moved["id"] == tid, "value"] = end
                start = {k: (fitted[k], *b.parameters[k][1:]) for k in fitted}
                refit = fit_calibration(start, b.targets, moved, maxfev=maxfev)
                for k in fitted:
                    spread[k].append(refit[k])
    return fitted, fit["cost"], spread


def stale_parameters(report: CalibrationReport) -> list[str]:
    """``block: parameter`` of every table value that differs from its fit."""
    t = report.table
    return [f"{b}: {p}" for b, p in zip(t.loc[t["stale"], "block"], t.loc[t["stale"], "parameter"])]
