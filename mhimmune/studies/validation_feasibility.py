"""Can any parameter set within the table bounds pass a group of validation targets jointly?

A target the model misses may need other parameter values or other structure. This
module tells the two apart for a chosen set of targets and parameters: it draws a Latin
hypercube of the parameters within their table bounds (log-uniform where the table says
so), simulates every target's experiment for each draw (the values applied on top of the
tumour and host presets, as :func:`~mhimmune.studies.validation_experiments.
parameter_overrides` does), and reports

* how often each target passes, with the range of its model values;
* how many draws pass each pair of targets together (a pair no draw passes pulls against
  itself within these bounds);
* the most targets any single draw passes, and the best draws;
* Spearman rank correlations of each parameter with each target's value (which
  parameters move a target, and in which direction).

No draw passing a target, or a pair, means that within these bounds and this structure
the miss is not a matter of these parameters' values; it is not a proof for parameters
left out. The targets are the rows of ``analyses/validation/targets.tsv``; the run is a
sampling study, not a fit: nothing is written back to the tables.

``make feasibility`` (``mhimmune validate --feasibility``) runs the shipped
``analyses/validation/feasibility.toml`` and writes ``feasibility.md``, ``feasibility.csv``
and ``feasibility.png`` beside the validation report.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tomllib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.core.io import atomic_path
from mhimmune.mh.presets import preset_names, preset_overrides
from mhimmune.studies.sa_problem import define_problem
from mhimmune.studies.validation import (
    format_number,
    format_range,
    load_targets,
    parse_experiment,
    target_passes,
)
from mhimmune.studies.validation_experiments import EXPERIMENTS, parameter_overrides

__all__ = ["FeasibilityResult", "run_feasibility", "load_feasibility_spec", "run_feasibility_spec"]

#: rows per task sent to a worker process
CHUNK = 8


def _default_spec() -> Path:
    return Path(__file__).resolve().parents[2] / "analyses" / "validation" / "feasibility.toml"


def _preset_parameters() -> set[str]:
    names: set[str] = set()
    for tumour in preset_names("tumour"):
        names |= set(preset_overrides(tumour=tumour))
    for host in preset_names("host"):
        names |= set(preset_overrides(host=host))
    return names


def _evaluate(calls: dict[str, tuple[str, dict]], rows: list[dict[str, float]]) -> list[dict]:
    """Model value of every target (id -> experiment call) for each parameter row; an
    experiment that fails gives NaN (counted as a miss)."""
    from mhimmune.studies import validation  # noqa: F401  (registers every experiment)

    out = []
    for params in rows:
        values = {}
        for target, (name, kwargs) in calls.items():
            try:
                with parameter_overrides(params):
                    values[target] = float(EXPERIMENTS[name](**kwargs))
            except MhimmuneError:
                values[target] = math.nan
        out.append(values)
    return out


@dataclass
class FeasibilityResult:
    """The draws, each target's model value for each draw, and whether it passes.

    Attributes
    ----------
    design
        One row per draw, one column per parameter (table units).
    values
        One row per draw, one column per target id (NaN: the experiment failed).
    passed
        Like *values*, True where the value lies in the target's accepted range.
    targets
        The targets' rows (``value``, ``low``, ``high``, ``unit``, ``role``), by id.
    default
        Each target's value with the shipped parameters.
    seed
        The Latin hypercube's seed.
    confirmed
        Values of the costly *confirm* targets, simulated for the best draws only (index:
        the draws; the row ``shipped`` holds the shipped model's values); empty without
        confirm targets.
    """

    design: pd.DataFrame
    values: pd.DataFrame
    passed: pd.DataFrame
    targets: pd.DataFrame
    default: pd.Series
    seed: int
    confirmed: pd.DataFrame = field(default_factory=pd.DataFrame)

    def pass_rates(self) -> pd.DataFrame:
        """Per target: fraction of draws passing, smallest, median and largest model value,
        the shipped model's value and whether it passes."""
        v = self.values
        return pd.DataFrame(
            {
                "pass_fraction": self.passed.mean(),
                "min": v.min(),
                "median": v.median(),
                "max": v.max(),
                "default": self.default,
                "default_passes": [
                    target_passes(self.default[t], self.targets.loc[t]) for t in v.columns
                ],
            }
        )

    def pairwise(self) -> pd.DataFrame:
        """Number of draws passing both targets of each pair (the diagonal: each alone)."""
        p = self.passed.astype(int)
        return p.T @ p

    def counts(self) -> pd.Series:
        """Number of targets each draw passes."""
        return self.passed.sum(axis=1)

    def ranked(self) -> pd.Index:
        """Draws ordered by the number of targets passed, ties by the smallest summed miss
        (log distance to each accepted range)."""
        miss = sum(self._log_miss(t) for t in self.values.columns)
        order = pd.DataFrame({"passed": self.counts(), "miss": miss})
        return order.sort_values(["passed", "miss"], ascending=[False, True]).index

    def best(self, n: int = 5) -> pd.DataFrame:
        """The *n* draws passing most targets (:meth:`ranked`): the count, parameters and
        values."""
        top = self.ranked()[:n]
        passed = self.counts().loc[top].rename("passed")
        return pd.concat([passed, self.design.loc[top], self.values.loc[top]], axis=1)

    def confirmed_passed(self) -> pd.DataFrame:
        """Whether each confirm target passes, for the draws in :attr:`confirmed`."""
        c = self.confirmed
        return pd.DataFrame(
            {t: [target_passes(v, self.targets.loc[t]) for v in c[t]] for t in c.columns},
            index=c.index,
        )

    def spearman(self) -> pd.DataFrame:
        """Spearman rank correlation of each parameter (rows) with each target's value."""
        out = pd.DataFrame(index=self.design.columns, columns=self.values.columns, dtype=float)
        for p in self.design.columns:
            for t in self.values.columns:
                ok = self.values[t].notna()
                rho = stats.spearmanr(self.design.loc[ok, p], self.values.loc[ok, t])[0]
                out.loc[p, t] = rho if ok.sum() > 2 else math.nan
        return out

    def _log_miss(self, target: str) -> pd.Series:
        row = self.targets.loc[target]
        v = self.values[target].abs().clip(lower=1e-300)
        miss = pd.Series(0.0, index=v.index)
        if np.isfinite(row["low"]) and row["low"] > 0:
            miss += np.log10(row["low"] / v).clip(lower=0)
        if np.isfinite(row["high"]) and row["high"] > 0:
            miss += np.log10(v / row["high"]).clip(lower=0)
        return miss.fillna(10.0)

    def to_markdown(self) -> str:
        """A report: set-up, pass rates, pairs, best draws and correlations."""
        n, k = self.design.shape
        counts = self.counts()
        lines = [
            "# Joint feasibility of validation targets",
            "",
            f"{n} draws (Latin hypercube, seed {self.seed}) of {k} parameters within their "
            "table bounds (log-uniform where the table says so), applied on top of the "
            "tumour and host presets; every target's experiment simulated for each draw. "
            "A target or pair that no draw passes is not a matter of these parameters' "
            "values within these bounds. A sampling study of a hypothesis-generating model, "
            "not a fit: the tables are unchanged.",
            "",
            f"Most targets passed by one draw: **{int(counts.max())} of "
            f"{self.values.shape[1]}** ({int((counts == counts.max()).sum())} draws); "
            f"the shipped parameters pass {int(self.pass_rates()['default_passes'].sum())}.",
            "",
            "## Per target",
            "",
            "| target | role | accepted | shipped model | draws passing | model range (median) |",
            "|---|---|---|---:|---:|---|",
        ]
        for t, r in self.pass_rates().iterrows():
            row = self.targets.loc[t]
            mark = "pass" if r["default_passes"] else "fail"
            lines.append(
                f"| `{t}` | {row['role']} | {format_range(row['low'], row['high'])} "
                f"{row['unit']} | {format_number(r['default'])} ({mark}) | "
                f"{100 * r['pass_fraction']:.1f} % | {format_number(r['min'])}–"
                f"{format_number(r['max'])} ({format_number(r['median'])}) |"
            )
        short = {t: f"T{i + 1}" for i, t in enumerate(self.values.columns)}
        pair = self.pairwise().rename(index=short, columns=short)
        lines += ["", "## Draws passing both targets of a pair", "",
                  "Diagonal: the target alone. "
                  + "; ".join(f"{s} = `{t}`" for t, s in short.items()), "",
                  "![pairs](feasibility.png)", "",
                  "| | " + " | ".join(pair.columns) + " |",
                  "|---|" + "---:|" * len(pair.columns)]  # fmt: skip
        for s, r in pair.iterrows():
            lines.append(f"| {s} | " + " | ".join(str(int(x)) for x in r) + " |")
        best = self.best()
        lines += ["", "## Best draws", "",
                  "| draw | passed | " + " | ".join(short[t] for t in self.values.columns) + " |",
                  "|---|---:|" + "---:|" * self.values.shape[1]]  # fmt: skip
        for i, r in best.iterrows():
            vals = " | ".join(format_number(r[t]) for t in self.values.columns)
            lines.append(f"| {i} | {int(r['passed'])} | {vals} |")
        if len(self.confirmed.columns):
            lines += self._confirmed_markdown()
        rho = self.spearman().rename(columns=short)
        lines += ["", "## Spearman correlation of parameter and target value", "",
                  "| parameter | " + " | ".join(rho.columns) + " |",
                  "|---|" + "---:|" * len(rho.columns)]  # fmt: skip
        for p, r in rho.iterrows():
            lines.append(f"| {p} | " + " | ".join(f"{x:+.2f}" for x in r) + " |")
        return "\n".join(lines) + "\n"

    def _confirmed_markdown(self) -> list[str]:
        c, ok = self.confirmed, self.confirmed_passed()
        counts = self.counts()
        n_main = self.values.shape[1]
        shipped = int(self.pass_rates()["default_passes"].sum())
        lines = ["", "## Costly targets on the best draws", "",
                 f"Simulated only for the {len(c) - 1} draws that pass most of the "
                 f"{n_main} targets above, and for the shipped parameters.", "",
                 "| draw | targets above passed | "
                 + " | ".join(f"`{t}`" for t in c.columns) + " | all passed |",
                 "|---|---:|" + "---:|" * len(c.columns) + "---:|"]  # fmt: skip
        for draw, r in c.iterrows():
            main = shipped if draw == "shipped" else int(counts.loc[draw])
            cells = " | ".join(
                f"{format_number(r[t])} ({'pass' if ok.loc[draw, t] else 'fail'})"
                for t in c.columns
            )
            lines.append(
                f"| {draw} | {main} of {n_main} | {cells} | "
                f"{main + int(ok.loc[draw].sum())} of {n_main + len(c.columns)} |"
            )
        return lines

    def plot(self, ax=None):
        """Heat map of the fraction of draws passing each pair of targets (the diagonal:
        each target alone), a cell at 0 marked with a cross. Returns the figure."""
        import matplotlib.pyplot as plt

        frac = self.pairwise() / len(self.design)
        n = len(frac)
        if ax is None:
            fig, ax = plt.subplots(figsize=(1.1 * n + 4.5, 0.75 * n + 2.2))
        else:
            fig = ax.figure
        image = ax.imshow(frac.values, cmap="viridis", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                v = frac.values[i, j]
                text = "×" if v == 0 else f"{100 * v:.1f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if v < 0.5 else "black")  # fmt: skip
        labels = [f"T{i + 1}" for i in range(n)]
        ax.set_xticks(range(n), labels)
        ax.set_yticks(range(n), [f"T{i + 1} {t}" for i, t in enumerate(frac.index)], fontsize=7)
        fig.colorbar(image, ax=ax, label="fraction of draws passing both")
        ax.set_title(
            f"{len(self.design)} draws of {self.design.shape[1]} parameters: "
            "% passing each pair (× none)",
            fontsize=9,
        )
        fig.tight_layout()
        return fig

    def save(self, out: str | Path) -> list[Path]:
        """Write ``feasibility.md``, ``feasibility.csv`` (draws, values, passes) and
        ``feasibility.png`` (:meth:`plot`) into folder *out*, each complete or not at all."""
        import matplotlib.pyplot as plt

        out = Path(out)
        paths = [out / "feasibility.md", out / "feasibility.csv", out / "feasibility.png"]
        confirmed = self.confirmed.drop(index="shipped", errors="ignore")
        table = pd.concat(
            [self.design, self.values, self.passed.add_suffix(" passes"), confirmed], axis=1
        ).rename_axis("draw")
        with atomic_path(paths[0]) as tmp:
            tmp.write_text(self.to_markdown())
        with atomic_path(paths[1]) as tmp:
            table.to_csv(tmp, float_format="%.6g")
        fig = self.plot()
        with atomic_path(paths[2]) as tmp:
            fig.savefig(tmp, dpi=130)
        plt.close(fig)
        return paths


def _calls(target_ids: Sequence[str]) -> tuple[dict[str, tuple[str, dict]], pd.DataFrame]:
    table = load_targets().set_index("id")
    unknown = [t for t in target_ids if t not in table.index]
    if unknown:
        raise ParameterError(f"targets: unknown target ids {unknown}")
    calls = {}
    for t in target_ids:
        text = table.loc[t, "experiment"]
        if text.startswith("none:"):
            raise ParameterError(f"targets: {t} is not simulated by the model ({text[5:].strip()})")
        calls[t] = parse_experiment(text, t)
    return calls, table.loc[list(target_ids)]


def _simulate(
    calls: dict[str, tuple[str, dict]], rows: list[dict], processes: int, bar
) -> tuple[list[dict], dict]:
    """Every target's value for each parameter row, and with the shipped parameters."""
    chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
    out: list[dict] = []
    if processes == 1:
        for chunk in chunks:
            out += _evaluate(calls, chunk)
            bar.update(len(chunk))
        return out, _evaluate(calls, [{}])[0]
    ctx = multiprocessing.get_context()  # the platform default, as WorkerPool
    with ProcessPoolExecutor(max_workers=int(processes), mp_context=ctx) as pool:
        futures = [pool.submit(_evaluate, calls, chunk) for chunk in chunks]
        shipped = pool.submit(_evaluate, calls, [{}])
        for fut, chunk in zip(futures, chunks, strict=True):
            out += fut.result()
            bar.update(len(chunk))
        return out, shipped.result()[0]


def run_feasibility(
    targets: Sequence[str],
    parameters: Sequence[str],
    samples: int = 256,
    seed: int = 0,
    processes: int = 1,
    progress: bool | None = None,
    confirm: Sequence[str] = (),
    confirm_draws: int = 20,
) -> FeasibilityResult:
    """Sample *parameters* within their table bounds and simulate *targets* for each draw.

    Parameters
    ----------
    targets
        Target ids of ``analyses/validation/targets.tsv`` (simulated rows only).
    parameters
        Parameter-table names; the values replace the table's and the presets', so a
        parameter a tumour or host preset sets (e.g. ``cd8_priming``) is refused: it would
        give every line the same value.
    samples
        Number of Latin-hypercube draws (at least 2).
    seed
        Seed of the Latin hypercube.
    processes
        Worker processes (1: this process).
    progress
        Show a progress bar (default: when ``TQDM_DISABLE`` is not set).
    confirm
        Costly targets (e.g. a virtual cohort) simulated only for the *confirm_draws* draws
        that pass most *targets* (:meth:`FeasibilityResult.ranked`) and for the shipped
        parameters; see :attr:`FeasibilityResult.confirmed`.
    confirm_draws
        How many of the best draws the *confirm* targets are simulated for (at least 1).

    Returns
    -------
    FeasibilityResult
    """
    if not targets:
        raise ParameterError("targets: give at least one target id")
    if int(samples) != samples or samples < 2:
        raise ParameterError(f"samples: {samples} must be an integer of at least 2")
    if int(processes) != processes or processes < 1:
        raise ParameterError(f"processes: {processes} must be an integer of at least 1")
    if int(confirm_draws) != confirm_draws or confirm_draws < 1:
        raise ParameterError(f"confirm_draws: {confirm_draws} must be an integer of at least 1")
    both = sorted(set(targets) & set(confirm))
    if both:
        raise ParameterError(f"confirm: {both} are already among the targets")
    fixed = sorted(set(parameters) & _preset_parameters())
    if fixed:
        raise ParameterError(
            f"parameters: {fixed} are set per tumour or host preset; an override would give "
            "every preset the same value"
        )
    calls, rows = _calls(targets)
    confirm_calls, confirm_rows = _calls(confirm) if confirm else ({}, rows.iloc[:0])
    problem = define_problem(list(parameters))
    unit = qmc.LatinHypercube(d=problem.num_vars, seed=seed).random(int(samples))
    design = problem.values(unit)
    from tqdm.auto import tqdm  # deferred: only the CLI and notebooks draw bars

    disable = (not progress) if progress is not None else bool(os.environ.get("TQDM_DISABLE"))
    with tqdm(total=len(design), desc="draws", disable=disable) as bar:
        results, default = _simulate(calls, design.to_dict("records"), int(processes), bar)
    rows = pd.concat([rows, confirm_rows])
    rows = rows.assign(**{c: rows[c].astype(float) for c in ("value", "low", "high")})
    values = pd.DataFrame(results, columns=list(targets))
    passed = pd.DataFrame({t: [target_passes(v, rows.loc[t]) for v in values[t]] for t in targets})
    result = FeasibilityResult(
        design=design,
        values=values,
        passed=passed,
        targets=rows,
        default=pd.Series(default)[list(targets)],
        seed=int(seed),
    )
    if confirm:
        top = list(result.ranked()[: int(confirm_draws)])
        with tqdm(total=len(top), desc="confirm", disable=disable) as bar:
            found, shipped = _simulate(
                confirm_calls, design.loc[top].to_dict("records"), int(processes), bar
            )
        result.confirmed = pd.DataFrame(
            found + [shipped], index=[*top, "shipped"], columns=list(confirm)
        )
    return result


def load_feasibility_spec(path: str | Path | None = None) -> dict:
    """Read a feasibility spec (TOML: ``targets``, ``parameters``, optional ``samples``,
    ``seed``, ``processes``, ``confirm``, ``confirm_draws``), naming the file and key of a
    missing or malformed entry."""
    path = Path(path) if path is not None else _default_spec()
    if not path.is_file():
        raise ParameterError(f"feasibility: no such file {path}")
    with path.open("rb") as fh:
        spec = tomllib.load(fh)
    for key in ("targets", "parameters"):
        if not isinstance(spec.get(key), list) or not spec[key]:
            raise ParameterError(f"{path.name}: {key} must be a non-empty list of names")
    keys = {"targets", "parameters", "samples", "seed", "processes", "confirm", "confirm_draws"}
    unknown = set(spec) - keys
    if unknown:
        raise ParameterError(f"{path.name}: unknown keys {sorted(unknown)}")
    return spec


def run_feasibility_spec(
    path: str | Path | None = None, progress: bool | None = None
) -> FeasibilityResult:
    """:func:`run_feasibility` with the settings of a spec file (default: the shipped
    ``analyses/validation/feasibility.toml``); ``CI=true`` runs 8 draws in one process and
    confirms on one."""
    spec = load_feasibility_spec(path)
    small = os.environ.get("CI", "").lower() == "true"
    return run_feasibility(
        spec["targets"],
        spec["parameters"],
        samples=8 if small else spec.get("samples", 256),
        seed=spec.get("seed", 0),
        processes=1 if small else spec.get("processes", 1),
        progress=progress,
        confirm=spec.get("confirm", ()),
        confirm_draws=1 if small else spec.get("confirm_draws", 20),
    )
