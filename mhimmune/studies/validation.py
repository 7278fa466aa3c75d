"""The validation suite: the default model held to published experiments.

``analyses/validation/targets.tsv`` holds one row per published observation: the claim,
the experimental system, the intervention, the readout, the published value with its range,
how it was read (text, table, figure), the reference (a key of
``parameters/references.tsv``), its role and the model experiment that reproduces it
(:mod:`mhimmune.studies.validation_experiments`).

* ``calibration`` rows are the only ones parameters may be fitted to (a fitted parameter
  names them in its ``source``); ``validation`` rows are predictions. The two are scored
  apart.
* A row passes when the model value lies in ``[low, high]`` (a missing bound leaves that
  side open; with neither bound, within 25 % of the value). A row whose experiment the
  model cannot express (``none: reason``) or whose simulation fails stays in the report as
  a failure with its reason: no row is dropped.

The model is a hypothesis-generating one; the report says how far it can be trusted where.
"""

from __future__ import annotations

import ast
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mhimmune.core.bibliography import load_references
from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.core.io import file_mode
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir
from mhimmune.mh.presets import preset_names
from mhimmune.studies import (
    validation_chemistry,  # noqa: F401  (registers experiments)
    validation_combinations,  # noqa: F401  (registers its experiments)
    validation_tumours,  # noqa: F401  (registers its experiments)
)
from mhimmune.studies.validation_experiments import EXPERIMENTS, parameter_overrides
from mhimmune.studies.validation_presets import preset_acceptance

__all__ = [
    "COLUMNS",
    "ROLES",
    "ValidationResult",
    "load_targets",
    "load_miss_causes",
    "load_references",
    "parse_experiment",
    "target_passes",
    "format_number",
    "format_range",
    "run_validation",
    "fit_calibration",
]

COLUMNS = (
    "id", "group", "claim", "system", "agent", "dose", "field", "intervention", "readout",
    "value", "low", "high", "unit", "read_from", "reference", "role", "experiment",
    "tolerance", "notes",
)  # fmt: skip
ROLES = ("calibration", "validation")
#: alternative hypotheses the report compares with the default model, on the groups named:
#: the intracellular (lysosomal) field effect, off by default, at the strength fitted to the
#: calibration target mh_vs_bath_herea2018_osteosarcoma_16pct (Herea et al. 2018: magnetic
#: heating 16 % more cytotoxic than water-bath heating at the same temperature)
HYPOTHESES: dict[str, tuple[dict[str, float], tuple[str, ...]]] = {
    "intracellular field effect on (lysosomal_field_ros = 8.36e-9)": (
        {"lysosomal_field_ros": 8.36e-9},
        ("mh_vs_bath",),
    ),
}
#: relative tolerance of a row that states neither bound
DEFAULT_RELATIVE_TOLERANCE = 0.25
STATUSES = ("pass", "fail", "not simulated", "model failed")

#: how :meth:`ValidationResult.by_preset` names rows that run the reference tables
REFERENCE_TABLES = "ct26 (the reference tables)"
#: the plot's ratio axis
_CLIP = (1e-2, 1e2)


def _default_targets() -> Path:
    return resource_dir("validation") / "targets.tsv"


def load_miss_causes(path: str | Path | None = None) -> dict[str, str]:
    """Diagnosed causes of the targets the model misses (``known_misses.tsv`` beside the
    targets: columns ``id`` and ``cause``), by target id. The report appends a target's
    cause to its reason when the model misses it; an id that no target has is an error."""
    path = Path(path) if path is not None else resource_dir("validation") / "known_misses.tsv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(table.columns) != ["id", "cause"]:
        raise ParameterError(f"{path.name}: columns must be id, cause")
    return dict(zip(table["id"], table["cause"]))


def _number(text: str, where: str) -> float:
    text = str(text).strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"{where}: must be a number, got {text!r}") from None


def load_targets(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check the validation targets table.

    Raises
    ------
    ParameterError
        Naming the row and column of a missing column, duplicate id, unknown role,
        non-numeric value or bound, unknown experiment or malformed experiment call.
    """
    path = Path(path) if path is not None else _default_targets()
    if not path.is_file():
        raise ParameterError(f"targets: no such file {path}")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ParameterError(f"{path.name}: missing column(s) {', '.join(missing)}")
    dup = table["id"][table["id"].duplicated()].tolist()
    if dup:
        raise ParameterError(f"{path.name}: duplicate id(s) {', '.join(dup)}")
    for i, row in table.iterrows():
        where = f"{path.name} row {i + 2} ({row['id']})"
        if row["role"] not in ROLES:
            raise ParameterError(f"{where}: role must be one of {ROLES}, got {row['role']!r}")
        for col in ("value", "low", "high"):
            _number(row[col], f"{where}, column {col}")
        if not row["experiment"].startswith("none:"):
            parse_experiment(row["experiment"], where)
    for col in ("value", "low", "high"):
        table[col] = [_number(x, col) for x in table[col]]
    return table


def parse_experiment(text: str, where: str = "experiment") -> tuple[str, dict]:
    """Parse ``name(key=literal, ...)`` into the experiment's name and keyword arguments."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ParameterError(f"{where}: experiment {text!r} is not a call") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
        raise ParameterError(f"{where}: experiment must read name(key=value, ...), got {text!r}")
    name = call.func.id
    if name not in EXPERIMENTS:
        raise ParameterError(
            f"{where}: unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}"
        )
    try:
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError:
        raise ParameterError(f"{where}: experiment arguments must be literals: {text!r}") from None
    return name, kwargs


def target_passes(model: float, row: pd.Series) -> bool:
    """Whether a model value *model* lies in target *row*'s accepted range (``low``-``high``;
    the value ±25 % when the row gives no range); a non-finite value never passes."""
    low, high, value = row["low"], row["high"], row["value"]
    if math.isnan(low) and math.isnan(high):
        low = value * (1 - DEFAULT_RELATIVE_TOLERANCE)
        high = value * (1 + DEFAULT_RELATIVE_TOLERANCE)
    ok_low = math.isnan(low) or model >= low - 1e-12 * abs(low)
    ok_high = math.isnan(high) or model <= high + 1e-12 * abs(high)
    return bool(np.isfinite(model) and ok_low and ok_high)


def _selected(targets: pd.DataFrame, only: Sequence[str] | str | None) -> pd.DataFrame:
    if only is None:
        return targets
    wanted = [s.strip() for s in ([only] if isinstance(only, str) else only)]
    wanted = [w for part in wanted for w in part.split(",") if w]
    known = set(targets["group"]) | set(targets["id"])
    unknown = [w for w in wanted if w not in known]
    if unknown:
        groups = ", ".join(sorted(set(targets["group"])))
        raise ParameterError(f"only: unknown group or id {unknown}; groups: {groups}")
    return targets[targets["group"].isin(wanted) | targets["id"].isin(wanted)]


def run_validation(
    targets: pd.DataFrame | str | Path | None = None,
    only: Sequence[str] | str | None = None,
    progress: bool | None = None,
    hypotheses: dict[str, tuple[dict[str, float], tuple[str, ...]]] | None = None,
) -> ValidationResult:
    """Simulate every target's experiment with the default model and score it.

    Parameters
    ----------
    targets
        A table from :func:`load_targets`, or its path (default: the shipped table).
    only
        Groups or target ids to run (e.g. ``"hsp70"`` or ``["gsh_bso", "heating"]``).
    progress
        Show a progress bar (default: when ``TQDM_DISABLE`` is not set).
    hypotheses
        ``{label: (parameter overrides, groups)}``: alternative hypotheses scored on the
        targets of those groups beside the default model (default: :data:`HYPOTHESES`;
        ``{}`` for none).

    Returns
    -------
    ValidationResult
    """
    table = targets if isinstance(targets, pd.DataFrame) else load_targets(targets)
    causes = load_miss_causes()
    unknown = sorted(set(causes) - set(table["id"]))
    if unknown and targets is None:  # the shipped table and its causes go together
        raise ParameterError(f"known_misses.tsv: no target with id(s) {', '.join(unknown)}")
    table = _selected(table, only)
    from tqdm.auto import tqdm  # deferred: only the CLI and notebooks draw bars

    disable = (not progress) if progress is not None else bool(os.environ.get("TQDM_DISABLE"))
    rows = []
    cache: dict[str, float] = {}
    for _, row in tqdm(list(table.iterrows()), desc="targets", disable=disable):
        out = row.to_dict()
        started = time.perf_counter()
        if row["experiment"].startswith("none:"):
            out.update(model=math.nan, status="not simulated",
                       reason=row["experiment"][5:].strip())  # fmt: skip
        else:
            key = " ".join(row["experiment"].split())
            try:
                if key not in cache:
                    name, kwargs = parse_experiment(row["experiment"], row["id"])
                    cache[key] = float(EXPERIMENTS[name](**kwargs))
                value = cache[key]
                ok = target_passes(value, row)
                reason = "" if ok else _miss_reason(value, row)
                if not ok and row["id"] in causes:
                    reason += f": {causes[row['id']]}"
                out.update(model=value, status="pass" if ok else "fail", reason=reason)
            except MhimmuneError as exc:
                out.update(model=math.nan, status="model failed",
                           reason=f"{type(exc).__name__}: {exc}")  # fmt: skip
        out["seconds"] = time.perf_counter() - started
        rows.append(out)
    result = ValidationResult(pd.DataFrame(rows))
    for label, (params, groups) in (HYPOTHESES if hypotheses is None else hypotheses).items():
        chosen = table[table["group"].isin(groups)]
        if len(chosen):
            with parameter_overrides(params):
                alt = run_validation(chosen, progress=False, hypotheses={}).table
            result.alternatives[label] = alt
    return result


def fit_calibration(
    parameters: Mapping[str, float | tuple[float, float, float]],
    ids: Sequence[str],
    targets: pd.DataFrame | None = None,
    maxfev: int = 200,
) -> dict[str, float]:
    """Fit parameters to calibration targets only (sum of squared log(model/published); a
    model value below a tenth of the published one counts as that tenth).

    Parameters
    ----------
    parameters
        ``{name: start}`` (searched within the parameter table's bounds) or
        ``{name: (start, lower, upper)}`` inside those bounds, in the table's units;
        fitted on a log scale.
    ids
        Target ids; every one must have role ``calibration`` (validation rows are never
        fitted) and a non-zero published value.
    targets
        The targets table (default: the shipped one).
    maxfev
        Largest number of evaluations of all the targets.

    Returns
    -------
    dict
        The fitted values by name, and ``"cost"``: the sum of squared log errors.
    """
    from scipy.optimize import minimize  # deferred: only fits need it

    table = load_targets() if targets is None else targets
    rows = table.set_index("id").loc[list(ids)]
    bad = rows.index[rows["role"] != "calibration"].tolist()
    if bad:
        raise ParameterError(f"fit_calibration: only calibration rows may be fitted, not {bad}")
    calls = [parse_experiment(e, i) for i, e in zip(rows.index, rows["experiment"])]
    names = list(parameters)
    table_bounds = ParameterTable.load().frame[["lower", "upper"]]
    spec: dict[str, tuple[float, float, float]] = {}
    for n in names:
        if n not in table_bounds.index:
            raise ParameterError(f"fit_calibration: unknown parameter {n!r}")
        t_lo, t_hi = (float(x) for x in table_bounds.loc[n])
        given = parameters[n]
        start, lo_n, hi_n = given if isinstance(given, tuple) else (float(given), t_lo, t_hi)
        if not t_lo <= lo_n <= start <= hi_n <= t_hi:
            raise ParameterError(
                f"fit_calibration: {n}: need table lower {t_lo:g} <= lower {lo_n:g} <= start "
                f"{start:g} <= upper {hi_n:g} <= table upper {t_hi:g}"
            )
        spec[n] = (start, lo_n, hi_n)
    lo = np.log([spec[n][1] for n in names])
    hi = np.log([spec[n][2] for n in names])

    def residuals(x: np.ndarray) -> np.ndarray:
        with parameter_overrides(dict(zip(names, np.exp(x)))):
            model = np.array([EXPERIMENTS[name](**kw) for name, kw in calls])
        published = rows["value"].to_numpy(float)
        # a zero (e.g. no animal of a finite cohort cured) counts as a tenth of the
        # published value: a 10-fold miss, so that one such row cannot swamp the others
        return np.log(np.maximum(model, 0.1 * published) / published)

    x0 = np.log([spec[n][0] for n in names])
    # derivative-free (Powell): several readouts are read off sampled curves
    fit = minimize(
        lambda x: float(np.sum(residuals(x) ** 2)),
        x0,
        method="Powell",
        bounds=list(zip(lo, hi)),
        options={"xtol": 1e-3, "ftol": 1e-4, "maxfev": maxfev},
    )
    out = dict(zip(names, np.exp(fit.x).tolist()))
    out["cost"] = float(fit.fun)
    return out


def _miss_reason(model: float, row: pd.Series) -> str:
    if not np.isfinite(model):
        return "the model gives no finite value"
    low, high = row["low"], row["high"]
    side = "below" if (not math.isnan(low) and model < low) else "above"
    if math.isnan(low) and math.isnan(high):
        side = "below" if model < row["value"] else "above"
    return f"model {side} the accepted range"


@dataclass
class ValidationResult:
    """Model against published values, one row per target (``table``); ``alternatives``
    holds the same table for each alternative hypothesis, on its groups only."""

    table: pd.DataFrame
    alternatives: dict[str, pd.DataFrame] = field(default_factory=dict)

    def scores(self) -> pd.DataFrame:
        """Per role: targets, simulated, passed, and the pass fraction of all targets."""
        t = self.table
        out = []
        for role in ROLES:
            r = t[t["role"] == role]
            out.append(dict(
                role=role, targets=len(r),
                simulated=int((r["status"].isin(["pass", "fail"])).sum()),
                passed=int((r["status"] == "pass").sum()),
                publications=r["reference"].nunique(),
            ))  # fmt: skip
        s = pd.DataFrame(out).set_index("role")
        s["pass_fraction"] = s["passed"] / s["targets"].where(s["targets"] > 0)
        return s

    def by_group(self) -> pd.DataFrame:
        """Counts of each status per group."""
        return (
            self.table.groupby(["group", "status"]).size().unstack(fill_value=0)
            .reindex(columns=list(STATUSES), fill_value=0)
        )  # fmt: skip

    def by_preset(self) -> pd.DataFrame:
        """Per tumour preset and role: simulated targets and passes. A row counts for the
        preset its experiment names (``tumour=``; both lines of a ranking, ``better=`` and
        ``worse=``); the others run the reference tables, which are CT26's (and those of
        every cell-culture and chemistry row), and count with the ``ct26`` rows."""
        rows = []
        for r, _, kwargs in self._experiments():
            named = [kwargs[k] for k in ("tumour", "better", "worse") if kwargs.get(k)]
            named = [REFERENCE_TABLES if n == "ct26" else n for n in named]
            for preset in named or [REFERENCE_TABLES]:
                rows.append(dict(preset=preset, role=r["role"], status=r["status"]))
        t = pd.DataFrame(rows, columns=["preset", "role", "status"])
        out = []
        for (preset, role), g in t.groupby(["preset", "role"]):
            out.append(dict(
                preset=preset, role=role,
                simulated=int(g["status"].isin(["pass", "fail"]).sum()),
                passed=int((g["status"] == "pass").sum()),
            ))  # fmt: skip
        frame = pd.DataFrame(out, columns=["preset", "role", "simulated", "passed"])
        wide = frame.pivot(index="preset", columns="role", values=["passed", "simulated"])
        wide = wide.reindex(columns=pd.MultiIndex.from_product([["passed", "simulated"], ROLES]))
        return wide.fillna(0).astype(int)

    def acceptance_by_preset(self) -> pd.DataFrame:
        """Per shipped tumour preset, the targets that test its untreated growth and its
        response to anti-PD-1 or anti-PD-L1 alone, with their role and status; a preset
        no target tests for one of the two gets a ``no row`` entry
        (:func:`mhimmune.studies.validation_presets.preset_acceptance`)."""
        rows = [(r, name, kw) for r, name, kw in self._experiments() if name is not None]
        return preset_acceptance(rows, preset_names("tumour"), REFERENCE_TABLES)

    def _experiments(self):
        """``(row, experiment name, keyword arguments)`` per target; name ``None`` and no
        arguments for a row whose experiment is not a call (``none: ...``)."""
        for _, r in self.table.iterrows():
            try:
                name, kwargs = parse_experiment(str(r["experiment"]))
            except ParameterError:
                name, kwargs = None, {}
            yield r, name, kwargs

    def plot(self, ax=None):
        """Model / published ratio per simulated target on a log axis, with the accepted
        band; green passes, red fails. Returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        t = self.table[self.table["status"].isin(["pass", "fail"])].copy()
        t = t.sort_values(["group", "id"]).reset_index(drop=True)
        if ax is None:
            fig, ax = plt.subplots(figsize=(8.5, 0.28 * len(t) + 1.6))
        else:
            fig = ax.figure
        # the published value is the reference; a published 0 is read against its upper bound
        ref = t["value"].where(t["value"] != 0, t["high"])
        for i, row in t.iterrows():
            v = ref[i]
            lo = row["low"] / v if not math.isnan(row["low"]) else np.nan
            hi = row["high"] / v if not math.isnan(row["high"]) else np.nan
            if np.isfinite(lo) or np.isfinite(hi):
                a = lo if np.isfinite(lo) and lo > 0 else _CLIP[0]
                b = hi if np.isfinite(hi) else _CLIP[1]
                ax.plot([a, b], [i, i], color="0.75", lw=5, solid_capstyle="butt", zorder=1)
            m = row["model"] / v
            clipped = not (_CLIP[0] < m < _CLIP[1])
            m = min(max(m, _CLIP[0]), _CLIP[1])
            marker = ("<" if m <= _CLIP[0] else ">") if clipped else "o"
            color = "tab:green" if row["status"] == "pass" else "tab:red"
            ax.plot(m, i, marker, color=color, ms=7, zorder=2, clip_on=False)
        ax.axvline(1.0, color="0.3", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(*_CLIP)
        ax.set_yticks(range(len(t)))
        ax.set_yticklabels(list(t["id"]), fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("model / published value (grey: accepted range; triangles: off the axis)")
        passed = int((t["status"] == "pass").sum())
        ax.set_title(f"Default model vs published experiments: {passed} of {len(t)} pass",
                     fontsize=10)  # fmt: skip
        fig.tight_layout()
        return fig

    def to_markdown(self) -> str:
        """The report: scores by role, per-group counts, and every target with its reason."""
        s = self.scores()
        lines = [
            "# Validation report",
            "",
            "The default model (default parameters, no fitting here) simulates the experiment "
            "of each published observation in `analyses/validation/targets.tsv`. Calibration "
            "rows are the only ones parameters may be fitted to; validation rows are "
            "predictions, scored apart. A target the model misses, cannot express or fails to "
            "simulate stays here as a failure with its reason. These are checks of a "
            "hypothesis-generating model, not a certificate.",
            "",
            "## Scores",
            "",
            "| role | targets | simulated | passed | publications | pass fraction |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for role, r in s.iterrows():
            frac = "–" if pd.isna(r["pass_fraction"]) else f"{r['pass_fraction']:.0%}"
            lines.append(
                f"| {role} | {int(r['targets'])} | {int(r['simulated'])} | {int(r['passed'])} | "
                f"{int(r['publications'])} | {frac} |"
            )
        lines += ["", "## By group", "", "| group | " + " | ".join(STATUSES) + " |",
                  "|---|" + "---:|" * len(STATUSES)]  # fmt: skip
        for g, r in self.by_group().iterrows():
            lines.append(f"| {g} | " + " | ".join(str(int(r[c])) for c in STATUSES) + " |")
        lines += ["", "## By tumour preset", "",
                  "Passes of the simulated targets per preset a row's experiment names "
                  "(`parameters/tumours.toml`); rows naming none run the reference tables, "
                  "which are CT26's, and count with it (so do the cell-culture and chemistry "
                  "rows).", "",
                  "| preset | calibration passed | validation passed |",
                  "|---|---:|---:|"]  # fmt: skip
        for preset, r in self.by_preset().iterrows():
            cal, val = (f"{r[('passed', x)]} of {r[('simulated', x)]}" for x in ROLES)
            lines.append(f"| {preset} | {cal} | {val} |")
        lines += ["", "### Untreated growth, anti-PD-(L)1 alone and immune infiltrate, per preset",
                  "",
                  "What a preset is meant to reproduce; `no row` marks a check no target "
                  "tests yet.", "", "| preset | check | target | role | status |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for _, r in self.acceptance_by_preset().iterrows():
            target = f"`{r['target']}`" if r["target"] else "–"
            lines.append(f"| {r['preset']} | {r['check']} | {target} | {r['role'] or '–'} | "
                         f"**{r['status']}** |")  # fmt: skip
        for role in ROLES:
            lines += ["", f"## {role.capitalize()} targets", "",
                      "| target | claim | published (range) | unit | model | status | reason | "
                      "source |", "|---|---|---|---|---:|---|---|---|"]  # fmt: skip
            for _, r in self.table[self.table["role"] == role].iterrows():
                rng = format_range(r["low"], r["high"])
                value, model = format_number(r["value"]), format_number(r["model"])
                lines.append(
                    f"| `{r['id']}` | {r['claim']} | {value} {rng} | {r['unit']} | "
                    f"{model} | **{r['status']}** | {r['reason']} | [{r['reference']}] "
                    f"{r['read_from']} |"
                )
        for label, alt in self.alternatives.items():
            default = self.table.set_index("id")
            lines += ["", f"## Alternative hypothesis: {label}", "",
                      "The same targets with the hypothesis switched on (a documented option, "
                      "off in the default model), beside the default model.", "",
                      "| target | role | published (range) | default model | status | "
                      "with the hypothesis | status |",
                      "|---|---|---|---:|---|---:|---|"]  # fmt: skip
            for _, r in alt.iterrows():
                d = default.loc[r["id"]] if r["id"] in default.index else None
                lines.append(
                    f"| `{r['id']}` | {r['role']} | {format_number(r['value'])} "
                    f"{format_range(r['low'], r['high'])} | "
                    f"{format_number(d['model']) if d is not None else '–'} | "
                    f"{d['status'] if d is not None else '–'} | {format_number(r['model'])} | "
                    f"{r['status']} |"
                )
        lines += ["", "![model / published](validation.png)", ""]
        return "\n".join(lines)

    def save(self, out: str | Path) -> list[Path]:
        """Write ``report.md``, ``validation.csv`` and ``validation.png`` into *out*
        (each written to a temporary file first, then renamed)."""
        import matplotlib.pyplot as plt

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ParameterError(f"out: {out} exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "report.md", out / "validation.csv", out / "validation.png"]
        _atomic_text(paths[0], self.to_markdown())
        _atomic_text(paths[1], self.table.to_csv(index=False))
        fig = self.plot()
        with tempfile.NamedTemporaryFile(dir=out, suffix=".png", delete=False) as tmp:
            fig.savefig(tmp.name, dpi=130)
        plt.close(fig)
        os.chmod(tmp.name, file_mode())
        os.replace(tmp.name, paths[2])
        return paths


def _atomic_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as f:
        f.write(text)
    os.chmod(f.name, file_mode())
    os.replace(f.name, path)


def format_number(x: float | None) -> str:
    """A value as report text: three significant digits, ``–`` when missing or not finite."""
    return "–" if x is None or not np.isfinite(float(x)) else f"{float(x):.3g}"


def format_range(low: float, high: float) -> str:
    """A target's accepted range as report text, ``(low–high)``; an open end (NaN or
    infinite) reads ``−∞`` or ``∞``, and no range at all an empty string."""
    low, high = float(low), float(high)
    if math.isnan(low) and math.isnan(high):
        return ""
    lo = format_number(low) if np.isfinite(low) else "−∞"
    hi = format_number(high) if np.isfinite(high) else "∞"
    return f"({lo}–{hi})"


def groups(targets: pd.DataFrame | None = None) -> list[str]:
    """The target groups, in table order."""
    t = load_targets() if targets is None else targets
    return list(dict.fromkeys(t["group"]))
