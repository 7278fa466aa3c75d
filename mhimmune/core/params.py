"""PEtab-like parameter tables: load, validate, override and convert to internal units.

A parameter table is a tab-separated file with exactly the columns

=============  ==========================================================================
column         meaning
=============  ==========================================================================
parameterId    a Python identifier, unique across all loaded tables
value          nominal value, written in ``unit``
unit           pint unit string (``1/M/s``, ``uM``, ``1/d``, ``degC``, ``fraction``, ``1``)
lower, upper   range of ``value`` in ``unit``: the uniform range, or the 2.5–97.5 % range
               for ``normal``/``lognormal``; may be blank only for ``fixed``
distribution   ``uniform``, ``loguniform``, ``normal``, ``lognormal`` or ``fixed``
scale          PEtab ``parameterScale``: ``lin``, ``log`` or ``log10``
source         a reference, or ``assumed: <reason>``; never empty
notes          free text, may be empty
=============  ==========================================================================

Physical domain rules, checked for ``value``, ``lower`` and ``upper``:

* absolute temperatures (``degC``, ``degF``, ``K``) must lie above absolute zero
  (-273.15 °C); temperature differences (``delta_degC``) may have either sign;
* ``fraction`` (and ``percent``) must lie in [0, 1];
* everything else (rate constants, concentrations, amounts, volumes, energies)
  must be >= 0.

The model asks for its parameters with :meth:`ParameterTable.internal_values`, giving
the internal unit of every parameter; the table converts with pint and checks that the
model and the table name exactly the same parameters.
"""

from __future__ import annotations

import difflib
import keyword
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pint

from mhimmune.core.errors import MhimmuneError, ParameterError, UnitError
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import parse_unit, to_quantity, ureg

__all__ = [
    "COLUMNS",
    "DISTRIBUTIONS",
    "SCALES",
    "ParameterTable",
    "UnknownParameterError",
    "format_table",
]

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

_NUMERIC = ("value", "lower", "upper")
_TEXT = ("unit", "distribution", "scale", "source", "notes")
_DATA_COLUMNS = COLUMNS[1:]
_FRACTION_UNITS = frozenset({"fraction", "percent_", "percent"})
_ABSOLUTE_ZERO_C = -273.15


class UnknownParameterError(ParameterError, KeyError):
    """A parameter name is not in the table; the message suggests close matches.

    It is both a :class:`ParameterError` (so the command line reports it as one line)
    and a :class:`KeyError` (so ``table[name]`` behaves like a mapping).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- helpers


def _fmt(x: float) -> str:
    """Format a number compactly for error messages and tables."""
    return f"{x:.6g}"


def _fmt_bound(x: float) -> str:
    """Format a bound; a blank (NaN) bound shows as ``-``."""
    return "-" if math.isnan(x) else _fmt(x)


def _display_origin(path: Path) -> str:
    """Name a file relative to the shipped parameter folder when it lies inside it."""
    try:
        base = resource_dir("parameters")
    except MhimmuneError:
        return str(path)
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _cell_text(x: Any) -> str:
    """A table cell as stripped text; missing cells (None, NaN) become ''."""
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return ""
    return str(x).strip()


def _unit_kind(unit: pint.Unit) -> str:
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


def _domain_problem(x: float, unit: str, kind: str) -> str | None:
    """Return why *x* (in *unit*) is physically meaningless, or ``None`` when it is fine."""
    if not math.isfinite(x):
        return f"{_fmt(x)} is not a finite number"
    if kind == "temperature":
        kelvin = ureg.Quantity(x, unit).to("kelvin").magnitude
        if kelvin <= 0:
            return (
                f"{_fmt(x)} {unit} is at or below absolute zero; temperatures must be "
                f"above {_ABSOLUTE_ZERO_C} degC"
            )
    elif kind == "fraction":
        frac = ureg.Quantity(x, unit).to("fraction").magnitude
        if not 0.0 <= frac <= 1.0:
            return f"{_fmt(x)} is outside [0, 1]; a {unit} must lie between 0 and 1 (0 % and 100 %)"
    elif kind == "magnitude":
        if x < 0:
            return f"{_fmt(x)} is negative; rate constants, concentrations and amounts must be >= 0"
    return None


@lru_cache(maxsize=4096)
def _linear_factor(table_unit: str, internal_unit: str) -> float | None:
    """Factor f with ``x [table_unit] == f*x [internal_unit]``; ``None`` for offset units."""
    if ureg.Quantity(0.0, table_unit).to(internal_unit).magnitude != 0.0:
        return None
    return float(ureg.Quantity(1.0, table_unit).to(internal_unit).magnitude)


def _suggest(name: str, choices: Iterable[str]) -> str:
    """A ``did you mean ...?`` hint built with :mod:`difflib`, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _collect_files(paths: Any) -> list[Path]:
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


def _read_tsv(path: Path) -> pd.DataFrame:
    """Read one TSV file as text cells, keeping the file line number of every row."""
    origin = _display_origin(path)
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


def _check_columns(df: pd.DataFrame, origin: str, *, id_in_index: bool = False) -> None:
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


def _parse_number(pid: str, origin: str, field: str, raw: Any, *, blank_ok: bool) -> float:
    """Parse a numeric cell; blank gives NaN when *blank_ok*, else an error."""
    if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
        x = float(raw)
        if math.isnan(x) and blank_ok:
            return x
    else:
        text = _cell_text(raw)
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
            f"{pid} ({origin}): {field} {_fmt(x)} is not a finite number; "
            f"{field} must be a finite number (not NaN or inf)"
        )
    return x


def _validate_row(pid: str, origin: str, cells: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one row; return it with numbers as floats and text normalised."""
    where = f"{pid} ({origin})"
    unit = _cell_text(cells["unit"])
    if unit == "":
        raise ParameterError(
            f"{where}: unit is empty; write '1' or 'dimensionless' for dimensionless parameters"
        )
    try:
        punit = parse_unit(unit, field=f"{where}: unit")
    except UnitError as exc:
        raise ParameterError(str(exc)) from None
    kind = _unit_kind(punit)

    distribution = _cell_text(cells["distribution"]).lower()
    if distribution not in DISTRIBUTIONS:
        raise ParameterError(
            f"{where}: distribution {distribution!r} is unknown; allowed: "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    scale = _cell_text(cells["scale"]).lower()
    if scale not in SCALES:
        raise ParameterError(f"{where}: scale {scale!r} is unknown; allowed: {', '.join(SCALES)}")
    source = _cell_text(cells["source"])
    if source == "":
        raise ParameterError(f"{where}: source is empty; give a reference or 'assumed: <reason>'")
    notes = _cell_text(cells["notes"])

    fixed = distribution == "fixed"
    value = _parse_number(pid, origin, "value", cells["value"], blank_ok=False)
    lower = _parse_number(pid, origin, "lower", cells["lower"], blank_ok=fixed)
    upper = _parse_number(pid, origin, "upper", cells["upper"], blank_ok=fixed)

    for field, x in (("value", value), ("lower", lower), ("upper", upper)):
        if math.isnan(x):
            continue
        problem = _domain_problem(x, unit, kind)
        if problem:
            raise ParameterError(f"{where}: {field} {problem}")

    if not math.isnan(lower) and not math.isnan(upper) and lower > upper:
        raise ParameterError(
            f"{where}: lower {_fmt(lower)} is above upper {_fmt(upper)}; "
            f"need lower <= value <= upper"
        )
    if (not math.isnan(lower) and value < lower) or (not math.isnan(upper) and value > upper):
        raise ParameterError(
            f"{where}: value {_fmt(value)} is outside [lower, upper] = "
            f"[{_fmt_bound(lower)}, {_fmt_bound(upper)}] {unit}; "
            f"need lower <= value <= upper"
        )
    log_reason = ([f"distribution {distribution}"] if distribution.startswith("log") else []) + (
        [f"scale {scale}"] if scale != "lin" else []
    )
    if log_reason:
        reason = " and ".join(log_reason)
        if not math.isnan(lower) and lower <= 0:
            raise ParameterError(f"{where}: lower {_fmt(lower)} must be > 0 for {reason}")
        if value <= 0:
            raise ParameterError(f"{where}: value {_fmt(value)} must be > 0 for {reason}")
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


def _check_id(pid: str, where: str) -> None:
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


class ParameterTable:
    """Immutable wrapper around a validated DataFrame (index ``parameterId``).

    Build one with :meth:`load` (TSV files) or :meth:`from_frame`; derive modified
    copies with :meth:`with_values`. The values are kept in the units written in the
    table; :meth:`internal_values` converts them to the model's internal units.
    """

    __slots__ = ("_df", "_origins")

    def __init__(self, df: pd.DataFrame, origins: Mapping[str, str]):
        """Wrap an already validated frame; use :meth:`load` or :meth:`from_frame` instead."""
        object.__setattr__(self, "_df", df)
        object.__setattr__(self, "_origins", dict(origins))

    def __setattr__(self, name: str, value: Any) -> None:
        """Refuse attribute assignment: tables are immutable."""
        raise AttributeError("ParameterTable is immutable; use with_values() for a modified copy")

    # ----------------------------------------------------------------- construction
    @classmethod
    def load(cls, paths: Any = None) -> ParameterTable:
        """Load and validate parameter tables.

        Parameters
        ----------
        paths
            A TSV file, a folder (every ``*.tsv`` below it, sorted), or a list of them.
            Default: every ``*.tsv`` under ``resource_dir("parameters") / "model"``.

        Raises
        ------
        ParameterError
            On any invalid row or column, or a parameterId defined twice (the message
            names both files).
        """
        rows: list[dict[str, Any]] = []
        origins: dict[str, str] = {}
        for path in _collect_files(paths):
            origin = _display_origin(path)
            df = _read_tsv(path)
            _check_columns(df, origin)
            seen: dict[str, int] = {}
            for rec in df.to_dict("records"):
                pid = _cell_text(rec["parameterId"])
                line = rec["_line"]
                _check_id(pid, f"{origin} line {line}")
                if pid in seen:
                    raise ParameterError(
                        f"{pid} ({origin}): duplicate parameterId on lines "
                        f"{seen[pid]} and {line}; ids must be unique"
                    )
                if pid in origins:
                    raise ParameterError(
                        f"{pid}: duplicate parameterId, defined in both "
                        f"{origins[pid]} and {origin}; ids must be unique"
                    )
                seen[pid] = line
                rows.append({"parameterId": pid, **_validate_row(pid, origin, rec)})
                origins[pid] = origin
        return cls(cls._make_frame(rows), origins)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, origin: str = "<frame>") -> ParameterTable:
        """Validate a DataFrame with the table columns (``parameterId`` as column or index).

        *origin* names the data in error messages.
        """
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"{origin}: expected a pandas DataFrame, got {type(df).__name__}")
        work = df.copy()
        work.columns = [str(c).strip() for c in work.columns]
        if "parameterId" not in work.columns and work.index.name == "parameterId":
            work = work.reset_index()
        _check_columns(work, origin)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, rec in enumerate(work.to_dict("records")):
            pid = _cell_text(rec["parameterId"])
            _check_id(pid, f"{origin} row {i}")
            if pid in seen:
                raise ParameterError(f"{pid} ({origin}): duplicate parameterId; ids must be unique")
            seen.add(pid)
            rows.append({"parameterId": pid, **_validate_row(pid, origin, rec)})
        return cls(cls._make_frame(rows), {pid: origin for pid in seen})

    @staticmethod
    def _make_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Build the canonical frame from validated rows."""
        df = pd.DataFrame(rows, columns=list(COLUMNS)).set_index("parameterId")
        for c in _NUMERIC:
            df[c] = df[c].astype(float)
        for c in _TEXT:
            df[c] = df[c].astype(object)
        return df

    # ----------------------------------------------------------------- access
    @property
    def frame(self) -> pd.DataFrame:
        """A copy of the table as a DataFrame indexed by ``parameterId``."""
        return self._df.copy()

    @property
    def names(self) -> list[str]:
        """Parameter ids in table order."""
        return list(self._df.index)

    def __contains__(self, name: object) -> bool:
        """Whether *name* is a parameter of the table."""
        return isinstance(name, str) and name in self._df.index

    def __len__(self) -> int:
        """Number of parameters."""
        return len(self._df)

    def __iter__(self) -> Iterator[str]:
        """Iterate over parameter ids in table order."""
        return iter(self.names)

    def __repr__(self) -> str:
        """Short description naming the number of parameters and their files."""
        files = sorted(set(self._origins.values()))
        return f"<ParameterTable {len(self)} parameters from {', '.join(files) or 'nothing'}>"

    def _require(self, name: str) -> None:
        """Raise :class:`UnknownParameterError` with suggestions when *name* is unknown."""
        if name not in self:
            hint = _suggest(str(name), self.names)
            raise UnknownParameterError(f"{name}: unknown parameter{hint}")

    def __getitem__(self, name: str) -> dict[str, Any]:
        """The row of *name* as a dict (``parameterId``, ``value``, ``unit``, ...)."""
        self._require(name)
        return {"parameterId": name, **self._df.loc[name].to_dict()}

    def value(self, name: str) -> float:
        """The value of *name* as a float, in the table unit."""
        self._require(name)
        return float(self._df.at[name, "value"])

    def unit(self, name: str) -> str:
        """The table unit string of *name*."""
        self._require(name)
        return str(self._df.at[name, "unit"])

    def origin(self, name: str) -> str:
        """The file (or frame origin) that defines *name*."""
        self._require(name)
        return self._origins[name]

    def search(self, text: str) -> pd.DataFrame:
        """Rows whose id, unit, source or notes contain *text* (case-insensitive)."""
        needle = str(text).lower()
        df = self._df
        mask = pd.Series(df.index.str.lower().str.contains(needle, regex=False), index=df.index)
        for c in ("unit", "source", "notes"):
            mask |= df[c].astype(str).str.lower().str.contains(needle, regex=False)
        return df.loc[mask].copy()

    # ----------------------------------------------------------------- overrides
    def check_override(self, name: str, value: Any) -> float:
        """Validate an override for *name* and return it as a float in the table unit.

        *value* is a number (in the table unit of *name*), a string with a unit
        (``"63 1/M/s"``; a bare number string is read in the table unit) or a
        :class:`pint.Quantity`. Raises :class:`ParameterError` for an unknown name
        (with close matches), a unit of the wrong dimension, or a physically
        meaningless value (negative rate, fraction outside [0, 1], temperature at or
        below absolute zero, NaN).
        """
        self._require(name)
        unit = str(self._df.at[name, "unit"])
        where = f"{name} ({self._origins[name]})"
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = float(value)
        try:
            q = to_quantity(value, field=f"{where}: override", default_unit=unit)
        except UnitError as exc:
            raise ParameterError(str(exc)) from None
        try:
            x = float(q.to(unit).magnitude)
        except pint.DimensionalityError:
            raise ParameterError(
                f"{where}: override {value!s} has dimension {q.dimensionality}, but the "
                f"parameter is in {unit} (dimension {ureg.Unit(unit).dimensionality})"
            ) from None
        except pint.errors.PintError as exc:
            raise ParameterError(
                f"{where}: override {value!s} cannot be converted to {unit} ({exc})"
            ) from None
        problem = _domain_problem(x, unit, _unit_kind(ureg.Unit(unit)))
        if problem:
            raise ParameterError(f"{where}: override {problem}")
        return x

    def _resolve_overrides(self, overrides: Mapping[str, Any] | None) -> dict[str, float]:
        """Validate all overrides; unknown names are reported together with suggestions."""
        if not overrides:
            return {}
        unknown = [n for n in overrides if n not in self]
        if unknown:
            hints = [f"{n}{_suggest(str(n), self.names)}" for n in sorted(map(str, unknown))]
            raise UnknownParameterError(
                f"{', '.join(sorted(map(str, unknown)))}: unknown "
                f"parameter(s) in overrides ({'; '.join(hints)})"
            )
        return {n: self.check_override(n, v) for n, v in overrides.items()}

    def with_values(self, overrides: Mapping[str, Any]) -> ParameterTable:
        """A new table with the values of *overrides* replaced.

        Overrides are read as in :meth:`check_override`; the new table passes the same
        validation as a loaded one, so a value must also stay within [lower, upper].
        """
        new = self._resolve_overrides(overrides)
        df = self._df.copy()
        for name, x in new.items():
            row = df.loc[name].to_dict()
            row["value"] = x
            _validate_row(name, self._origins[name], row)
            df.at[name, "value"] = x
        return ParameterTable(df, self._origins)

    def internal_values(
        self, units: Mapping[str, str], overrides: Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        """Values converted to the model's internal units.

        Parameters
        ----------
        units
            Maps every model parameter name to its internal unit string (``"1/uM/h"``).
            The table must hold exactly these names: a missing or an unused parameter is
            an error listing the names.
        overrides
            Name -> number (in the table unit), string with unit, or pint Quantity;
            validated by :meth:`check_override`.

        Returns
        -------
        dict
            Name -> float in the internal unit, in the order of *units*.
        """
        missing = sorted(n for n in units if n not in self)
        extra = sorted(n for n in self.names if n not in units)
        if missing or extra:
            parts = []
            if missing:
                parts.append(
                    f"{', '.join(missing)}: model parameter(s) missing from the parameter table"
                )
            if extra:
                files = sorted({self._origins[n] for n in extra})
                parts.append(
                    f"{', '.join(extra)}: table row(s) not used by the model "
                    f"(in {', '.join(files)})"
                )
            raise ParameterError(
                "; ".join(parts) + "; every model parameter needs exactly "
                "one table row and every row a model parameter"
            )
        new = self._resolve_overrides(overrides)
        out: dict[str, float] = {}
        for name, internal in units.items():
            table_unit = str(self._df.at[name, "unit"])
            x = new.get(name, float(self._df.at[name, "value"]))
            out[name] = self._convert(name, x, table_unit, str(internal))
        return out

    def _convert(self, name: str, x: float, table_unit: str, internal: str) -> float:
        """Convert *x* from *table_unit* to *internal*; errors name the parameter."""
        where = f"{name} ({self._origins[name]})"
        try:
            parse_unit(internal, field=f"{name}: internal unit")
        except UnitError as exc:
            raise ParameterError(str(exc)) from None
        try:
            factor = _linear_factor(table_unit, internal)
            if factor is not None:
                return x * factor
            return float(ureg.Quantity(x, table_unit).to(internal).magnitude)
        except pint.DimensionalityError:
            raise ParameterError(
                f"{where}: table unit {table_unit} (dimension "
                f"{ureg.Unit(table_unit).dimensionality}) cannot be converted to the "
                f"internal unit {internal} (dimension {ureg.Unit(internal).dimensionality})"
            ) from None
        except pint.errors.PintError as exc:
            raise ParameterError(
                f"{where}: cannot convert {table_unit} to {internal} ({exc})"
            ) from None


# --------------------------------------------------------------------------- display


def format_table(df: pd.DataFrame | ParameterTable, source_width: int = 60) -> str:
    """Readable fixed-width text of name, value, unit, [lower, upper] and source.

    *df* is a table frame (``ParameterTable.frame`` or a :meth:`ParameterTable.search`
    result) or a :class:`ParameterTable`; sources longer than *source_width*
    characters are truncated with ``...``.
    """
    if isinstance(df, ParameterTable):
        df = df.frame
    if "parameterId" in df.columns:
        df = df.set_index("parameterId")
    if len(df) == 0:
        return "(no parameters)"
    header = ("name", "value", "unit", "range", "source")
    lines: list[tuple[str, ...]] = []
    for name, row in df.iterrows():
        lower, upper = float(row["lower"]), float(row["upper"])
        rng = (
            ""
            if math.isnan(lower) and math.isnan(upper)
            else f"[{_fmt_bound(lower)}, {_fmt_bound(upper)}]"
        )
        source = " ".join(str(row["source"]).split())
        if len(source) > source_width:
            source = source[: max(source_width - 3, 0)].rstrip() + "..."
        lines.append((str(name), _fmt(float(row["value"])), str(row["unit"]), rng, source))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header) - 1)]

    def render(r: tuple[str, ...]) -> str:
        cells = [
            r[0].ljust(widths[0]),
            r[1].rjust(widths[1]),
            r[2].ljust(widths[2]),
            r[3].ljust(widths[3]),
            r[4],
        ]
        return "  ".join(cells).rstrip()

    rule = (
        "  ".join("-" * w for w in widths)
        + "  "
        + "-" * min(source_width, max(len(r[4]) for r in [header, *lines]))
    )
    return "\n".join([render(header), rule, *(render(r) for r in lines)])
