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
model and the table name exactly the same parameters. Reading and row validation live in
:mod:`mhimmune.core.param_rows`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pint

from mhimmune.core.errors import ParameterError, UnitError
from mhimmune.core.param_rows import (
    COLUMNS,
    DISTRIBUTIONS,
    NUMERIC_FIELDS,
    SCALES,
    TEXT_FIELDS,
    cell_text,
    check_columns,
    check_id,
    collect_files,
    display_origin,
    domain_problem,
    fmt,
    fmt_bound,
    linear_factor,
    read_tsv,
    suggest,
    unit_kind,
    validate_row,
)
from mhimmune.core.units import parse_unit, to_quantity, ureg

__all__ = [
    "OutOfRangeWarning",
    "COLUMNS",
    "DISTRIBUTIONS",
    "SCALES",
    "ParameterTable",
    "UnknownParameterError",
    "format_table",
]


class UnknownParameterError(ParameterError, KeyError):
    """A parameter name is not in the table; the message suggests close matches.

    It is both a :class:`ParameterError` (so the command line reports it as one line)
    and a :class:`KeyError` (so ``table[name]`` behaves like a mapping).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutOfRangeWarning(UserWarning):
    """An override lies outside its parameter's [lower, upper] range in the table."""


# --------------------------------------------------------------------------- helpers


class ParameterTable:
    """Immutable wrapper around a validated DataFrame (index ``parameterId``).

    Build one with :meth:`load` (TSV files) or :meth:`from_frame`; derive modified
    copies with :meth:`with_values`. The values are kept in the units written in the
    table; :meth:`internal_values` converts them to the model's internal units.
    """

    __slots__ = ("_df", "_origins")
    _df: pd.DataFrame
    _origins: dict[str, str]

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
        for path in collect_files(paths):
            origin = display_origin(path)
            df = read_tsv(path)
            check_columns(df, origin)
            seen: dict[str, int] = {}
            for rec in df.to_dict("records"):
                pid = cell_text(rec["parameterId"])
                line = rec["_line"]
                check_id(pid, f"{origin} line {line}")
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
                rows.append({"parameterId": pid, **validate_row(pid, origin, rec)})
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
        check_columns(work, origin)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, rec in enumerate(work.to_dict("records")):
            pid = cell_text(rec["parameterId"])
            check_id(pid, f"{origin} row {i}")
            if pid in seen:
                raise ParameterError(f"{pid} ({origin}): duplicate parameterId; ids must be unique")
            seen.add(pid)
            rows.append({"parameterId": pid, **validate_row(pid, origin, rec)})
        return cls(cls._make_frame(rows), {pid: origin for pid in seen})

    @staticmethod
    def _make_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Build the canonical frame from validated rows."""
        df = pd.DataFrame(rows, columns=list(COLUMNS)).set_index("parameterId")
        for c in NUMERIC_FIELDS:
            df[c] = df[c].astype(float)
        for c in TEXT_FIELDS:
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
            hint = suggest(str(name), self.names)
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
        problem = domain_problem(x, unit, unit_kind(ureg.Unit(unit)))
        if problem:
            raise ParameterError(f"{where}: override {problem}")
        return x

    def range_problems(self, overrides: Mapping[str, Any] | None) -> list[str]:
        """Overrides outside their parameter's [lower, upper] range, one text each.

        Values are read and validated as in :meth:`check_override`; names not in the
        table are skipped (the caller reports them).
        """
        out = []
        for name, value in (overrides or {}).items():
            if name not in self:
                continue
            x = self.check_override(name, value)
            lo, hi = float(self._df.at[name, "lower"]), float(self._df.at[name, "upper"])
            if (math.isfinite(lo) and x < lo) or (math.isfinite(hi) and x > hi):
                unit = str(self._df.at[name, "unit"])
                out.append(
                    f"{name}: override {fmt(x)} {unit} is outside the table range "
                    f"[{fmt_bound(lo)}, {fmt_bound(hi)}] {unit}"
                )
        return out

    def _resolve_overrides(self, overrides: Mapping[str, Any] | None) -> dict[str, float]:
        """Validate all overrides; unknown names are reported together with suggestions."""
        if not overrides:
            return {}
        unknown = [n for n in overrides if n not in self]
        if unknown:
            hints = [f"{n}{suggest(str(n), self.names)}" for n in sorted(map(str, unknown))]
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
            validate_row(name, self._origins[name], row)
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
            factor = linear_factor(table_unit, internal)
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


def format_table(df: pd.DataFrame | ParameterTable, source_width: int | None = 60) -> str:
    """Readable fixed-width text of name, value, unit, [lower, upper] and source.

    *df* is a table frame (``ParameterTable.frame`` or a :meth:`ParameterTable.search`
    result) or a :class:`ParameterTable`; sources longer than *source_width*
    characters are truncated with ``...`` (``None``: never).
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
            else f"[{fmt_bound(lower)}, {fmt_bound(upper)}]"
        )
        source = " ".join(str(row["source"]).split())
        if source_width is not None and len(source) > source_width:
            source = source[: max(source_width - 3, 0)].rstrip() + "..."
        lines.append((str(name), fmt(float(row["value"])), str(row["unit"]), rng, source))
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
        + "-" * min(source_width or 10**9, max(len(r[4]) for r in [header, *lines]))
    )
    return "\n".join([render(header), rule, *(render(r) for r in lines)])
