"""Rows of parameter tables: the file format, reading TSV files and validating each row.

Holds the columns and allowed entries of a parameter table (see :mod:`mhimmune.core.params`
for the format), finds and reads the TSV files, and checks every row: identifiers, units,
distributions, scales, the physical domain of ``value``, ``lower`` and ``upper`` and
their order. :class:`~mhimmune.core.params.ParameterTable` builds on these helpers.
"""

from __future__ import annotations

import difflib
import keyword
import math
import numbers
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pint

from mhimmune.core.errors import MhimmuneError, ParameterError, UnitError
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import parse_unit, ureg

#: The columns of a parameter table, in their canonical order.
COLUMNS: tuple[str, ...] = (
    "parameterId",
    "value",
    "unit",
    "lower",
    "upper",
    "distribution",
    "scale",
    "source",
    "notes",
)
#: Allowed entries of the ``distribution`` column.
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "loguniform", "normal", "lognormal", "fixed")
#: Allowed entries of the ``scale`` column (PEtab ``parameterScale``).
SCALES: tuple[str, ...] = ("lin", "log", "log10")

#: The numeric columns and the text columns of a row.
NUMERIC_FIELDS = ("value", "lower", "upper")
TEXT_FIELDS = ("unit", "distribution", "scale", "source", "notes")
_FRACTION_UNITS = frozenset({"fraction", "percent_", "percent"})
_ABSOLUTE_ZERO_C = -273.15


def fmt(x: float) -> str:
    """Format a number compactly for error messages and tables."""
    return f"{x:.6g}"


def fmt_bound(x: float) -> str:
    """Format a bound; a blank (NaN) bound shows as ``-``."""
    return "-" if math.isnan(x) else fmt(x)


def display_origin(path: Path) -> str:
    """Name a file relative to the shipped parameter folder when it lies inside it."""
    try:
        base = resource_dir("parameters")
    except MhimmuneError:
        return str(path)
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def cell_text(x: Any) -> str:
    """A table cell as stripped text; missing cells (None, NaN) become ''."""
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return ""
    return str(x).strip()


def unit_kind(unit: pint.Unit) -> str:
    """Classify a unit for the physical-domain rules.

    Returns ``"temperature"`` for absolute temperatures, ``"temperature_delta"`` for
    temperature differences, ``"fraction"`` for fractions and percentages, and
    ``"magnitude"`` (must be >= 0) for everything else.
    """
    if unit.dimensionality == ureg.kelvin.dimensionality:
        return "temperature_delta" if "delta_" in str(unit) else "temperature"
    if str(unit) in _FRACTION_UNITS:
        return "fraction"
    return "magnitude"


def domain_problem(x: float, unit: str, kind: str) -> str | None:
    """Return why *x* (in *unit*) is physically meaningless, or ``None`` when it is fine."""
    if not math.isfinite(x):
        return f"{fmt(x)} is not a finite number"
    if kind == "temperature":
        kelvin = ureg.Quantity(x, unit).to("kelvin").magnitude
        if kelvin <= 0:
            return (
                f"{fmt(x)} {unit} is at or below absolute zero; temperatures must be "
                f"above {_ABSOLUTE_ZERO_C} degC"
            )
    elif kind == "fraction":
        frac = ureg.Quantity(x, unit).to("fraction").magnitude
        if not 0.0 <= frac <= 1.0:
            return f"{fmt(x)} is outside [0, 1]; a {unit} must lie between 0 and 1 (0 % and 100 %)"
    elif kind == "magnitude":
        if x < 0:
            return f"{fmt(x)} is negative; rate constants, concentrations and amounts must be >= 0"
    return None


@lru_cache(maxsize=4096)
def linear_factor(table_unit: str, internal_unit: str) -> float | None:
    """Factor f with ``x [table_unit] == f*x [internal_unit]``; ``None`` for offset units."""
    if ureg.Quantity(0.0, table_unit).to(internal_unit).magnitude != 0.0:
        return None
    return float(ureg.Quantity(1.0, table_unit).to(internal_unit).magnitude)


def suggest(name: str, choices: Iterable[str]) -> str:
    """A ``did you mean ...?`` hint built with :mod:`difflib`, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def collect_files(paths: Any) -> list[Path]:
    """Expand a file, a folder or a list of them into the TSV files to load."""
    if paths is None:
        try:
            items: list[Any] = [resource_dir("parameters") / "model"]
        except MhimmuneError as exc:
            raise ParameterError(f"cannot locate the parameter folder: {exc}") from None
    elif isinstance(paths, (str, Path)):
        items = [paths]
    else:
        items = list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.rglob("*.tsv"))
            if not found:
                raise ParameterError(f"{p}: folder contains no *.tsv parameter tables")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ParameterError(f"{p}: no such parameter table or folder")
    if not files:
        raise ParameterError("no parameter tables given")
    return files


def read_tsv(path: Path) -> pd.DataFrame:
    """Read one TSV file as text cells, keeping the file line number of every row."""
    origin = display_origin(path)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise ParameterError(
            f"{origin}: file is empty; expected a header with columns {', '.join(COLUMNS)}"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise ParameterError(f"{origin}: cannot read parameter table ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df["_line"] = range(2, len(df) + 2)  # line 1 is the header
    blank = df.drop(columns="_line").apply(lambda col: col.str.strip() == "").all(axis=1)
    return df.loc[~blank].reset_index(drop=True)


def check_columns(df: pd.DataFrame, origin: str, *, id_in_index: bool = False) -> None:
    """Raise when the table lacks a required column or has an unexpected one."""
    present = [c for c in df.columns if c != "_line"]
    if id_in_index:
        present = ["parameterId", *present]
    missing = [c for c in COLUMNS if c not in present]
    extra = [c for c in present if c not in COLUMNS]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra)}")
        raise ParameterError(
            f"{origin}: {'; '.join(parts)}; a parameter table has exactly "
            f"the columns {', '.join(COLUMNS)}"
        )


def parse_number(pid: str, origin: str, field: str, raw: Any, *, blank_ok: bool) -> float:
    """Parse a numeric cell; blank gives NaN when *blank_ok*, else an error."""
    if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
        x = float(raw)
        if math.isnan(x) and blank_ok:
            return x
    else:
        text = cell_text(raw)
        if text == "":
            if blank_ok:
                return math.nan
            rule = (
                "must be a finite number (blank lower/upper are allowed only for "
                "distribution 'fixed')"
                if field != "value"
                else "must be a finite number"
            )
            raise ParameterError(f"{pid} ({origin}): {field} is blank; {field} {rule}")
        try:
            x = float(text)
        except ValueError:
            raise ParameterError(
                f"{pid} ({origin}): {field} {text!r} is not a number; "
                f"{field} must be a finite number"
            ) from None
    if not math.isfinite(x):
        raise ParameterError(
            f"{pid} ({origin}): {field} {fmt(x)} is not a finite number; "
            f"{field} must be a finite number (not NaN or inf)"
        )
    return x


def validate_row(pid: str, origin: str, cells: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one row; return it with numbers as floats and text normalised."""
    where = f"{pid} ({origin})"
    unit = cell_text(cells["unit"])
    if unit == "":
        raise ParameterError(
            f"{where}: unit is empty; write '1' or 'dimensionless' for dimensionless parameters"
        )
    try:
        punit = parse_unit(unit, field=f"{where}: unit")
    except UnitError as exc:
        raise ParameterError(str(exc)) from None
    kind = unit_kind(punit)

    distribution = cell_text(cells["distribution"]).lower()
    if distribution not in DISTRIBUTIONS:
        raise ParameterError(
            f"{where}: distribution {distribution!r} is unknown; allowed: "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    scale = cell_text(cells["scale"]).lower()
    if scale not in SCALES:
        raise ParameterError(f"{where}: scale {scale!r} is unknown; allowed: {', '.join(SCALES)}")
    source = cell_text(cells["source"])
    if source == "":
        raise ParameterError(f"{where}: source is empty; give a reference or 'assumed: <reason>'")
    notes = cell_text(cells["notes"])

    fixed = distribution == "fixed"
    value = parse_number(pid, origin, "value", cells["value"], blank_ok=False)
    lower = parse_number(pid, origin, "lower", cells["lower"], blank_ok=fixed)
    upper = parse_number(pid, origin, "upper", cells["upper"], blank_ok=fixed)

    for field, x in (("value", value), ("lower", lower), ("upper", upper)):
        if math.isnan(x):
            continue
        problem = domain_problem(x, unit, kind)
        if problem:
            raise ParameterError(f"{where}: {field} {problem}")

    if not math.isnan(lower) and not math.isnan(upper) and lower > upper:
        raise ParameterError(
            f"{where}: lower {fmt(lower)} is above upper {fmt(upper)}; need lower <= value <= upper"
        )
    if (not math.isnan(lower) and value < lower) or (not math.isnan(upper) and value > upper):
        raise ParameterError(
            f"{where}: value {fmt(value)} is outside [lower, upper] = "
            f"[{fmt_bound(lower)}, {fmt_bound(upper)}] {unit}; "
            f"need lower <= value <= upper"
        )
    log_reason = ([f"distribution {distribution}"] if distribution.startswith("log") else []) + (
        [f"scale {scale}"] if scale != "lin" else []
    )
    if log_reason:
        reason = " and ".join(log_reason)
        if not math.isnan(lower) and lower <= 0:
            raise ParameterError(f"{where}: lower {fmt(lower)} must be > 0 for {reason}")
        if value <= 0:
            raise ParameterError(f"{where}: value {fmt(value)} must be > 0 for {reason}")
    return {
        "value": value,
        "unit": unit,
        "lower": lower,
        "upper": upper,
        "distribution": distribution,
        "scale": scale,
        "source": source,
        "notes": notes,
    }


def check_id(pid: str, where: str) -> None:
    """Raise when *pid* is empty or not a Python identifier."""
    if pid == "":
        raise ParameterError(f"{where}: parameterId is empty; every row needs a parameterId")
    if not pid.isidentifier() or keyword.iskeyword(pid):
        raise ParameterError(
            f"{pid} ({where}): parameterId {pid!r} is not a valid identifier; "
            f"it must be a Python identifier (letters, digits, '_', "
            f"not starting with a digit, not a keyword)"
        )


# --------------------------------------------------------------------------- table
