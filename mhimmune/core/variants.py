"""Variants: named sets of parameter overrides kept in a TOML file.

A variant file holds one table per variant::

    [variants.NAME]
    description = "what the set stands for"          # required
    source = "a reference, or assumed: <reason>"     # optional
    some_parameter = 0.25                            # in the table unit, or
    other_parameter = "0.5 mm"                       # a string with a unit

Every other key of a variant is a parameter override, read as ``--params`` and
``--set`` overrides are (:meth:`~mhimmune.core.params.ParameterTable.check_override`).
The package ships ``parameters/variants.toml``; users keep their own files in the same
format. :func:`variant` returns the overrides checked against a parameter table (unknown
names, wrong units and meaningless values raise :class:`ParameterError` naming the
variant, the file and the field); combine them with further overrides by merging dicts,
later wins: ``{**variant("a"), **{"x": 1}}``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.core.param_rows import display_origin, suggest
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir

__all__ = [
    "Variant",
    "read_variants",
    "variants",
    "variant",
    "load_variant",
    "shipped_file",
    "spec_overrides",
]

#: keys of a variant table that are not parameter overrides
META_KEYS = ("description", "source")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Variant:
    """One named set of overrides as written in its file (values not yet checked)."""

    name: str
    description: str
    source: str | None
    values: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "<variants>"
    kind: str = "variant"

    def overrides(self, table: ParameterTable | None = None) -> dict[str, float]:
        """The overrides checked against *table* (default: the shipped tables), as floats
        in the table unit; errors name the variant, its file and the field."""
        table = ParameterTable.load() if table is None else table
        where = f"{self.kind} {self.name!r} ({self.origin})"
        out: dict[str, float] = {}
        for key, value in self.values.items():
            if key not in table:
                raise ParameterError(
                    f"{where}: {key}: unknown parameter{suggest(key, table.names)}"
                )
            try:
                out[key] = table.check_override(key, value)
            except ParameterError as exc:
                raise ParameterError(f"{where}: {exc}") from None
        return out


def shipped_file() -> Path:
    """The variant file shipped with the package (``parameters/variants.toml``)."""
    try:
        return resource_dir("parameters") / "variants.toml"
    except MhimmuneError as exc:
        raise ParameterError(f"cannot locate the shipped variants: {exc}") from None


def read_variants(path: str | Path | None = None, section: str = "variants") -> dict[str, Variant]:
    """The variants of *path* (default: the shipped file) by name, in file order.

    The file's structure is checked (a ``[variants]`` table of tables, a non-empty
    ``description`` string, an optional ``source`` string, numbers or strings as values);
    parameter names and units are checked by :meth:`Variant.overrides`. Files of named
    parameter sets of another kind keep their tables under another *section*
    (``[section.NAME]``); the format is the same.
    """
    p = shipped_file() if path is None else Path(path)
    what = _singular(section)
    origin = display_origin(p)
    if not p.is_file():
        raise ParameterError(f"variants: no such file {str(p)!r}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ParameterError(f"{origin}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{origin}: invalid TOML ({exc})") from None
    extra = sorted(set(data) - {section})
    if extra or not isinstance(data.get(section), dict):
        raise ParameterError(
            f"{origin}: a {what} file holds [{section}.NAME] tables only"
            + (f" (unknown top-level keys {extra})" if extra else "")
        )
    out: dict[str, Variant] = {}
    for name, body in data[section].items():
        where = f"{what} {name!r} ({origin})"
        if not _NAME.match(name):
            raise ParameterError(f"{where}: a name is letters, digits, '_' or '-'")
        if not isinstance(body, dict):
            raise ParameterError(f"{where}: must be a table ([{section}.{name}])")
        description = body.get("description")
        if not isinstance(description, str) or not description.strip():
            raise ParameterError(f"{where}: description: give a non-empty string")
        source = body.get("source")
        if source is not None and not isinstance(source, str):
            raise ParameterError(f"{where}: source: must be a string")
        values = {k: v for k, v in body.items() if k not in META_KEYS}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ParameterError(
                    f"{where}: {key}: a value is a number (table unit) or a string with a "
                    f"unit (got {value!r})"
                )
        out[name] = Variant(name, description.strip(), source, values, origin, what)
    return out


def _singular(section: str) -> str:
    return section[:-1] if section.endswith("s") else section


def _find(name: str, path: str | Path | None, section: str = "variants") -> Variant:
    if not isinstance(name, str):
        raise ParameterError(f"{_singular(section)}: give a name (got {name!r})")
    found = read_variants(path, section)
    if name not in found:
        origin = display_origin(shipped_file() if path is None else Path(path))
        known = ", ".join(found) or "none"
        raise ParameterError(
            f"{_singular(section)} {name!r}: not in {origin}{suggest(name, found)} (known: {known})"
        )
    return found[name]


def variant(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    file: str | Path | None = None,
    table: ParameterTable | None = None,
    section: str = "variants",
) -> dict[str, Any]:
    """The checked overrides of variant *name* (from *file*, default the shipped one).

    *overrides* are applied on top (later wins) and checked as well. Values are floats
    in the table unit; pass the result as ``params=`` wherever overrides are taken.
    *section* is the file's table of named sets (``[section.NAME]``).
    """
    table = ParameterTable.load() if table is None else table
    out: dict[str, Any] = dict(_find(name, file, section).overrides(table))
    if overrides:
        extra = Variant(name, "further overrides", None, dict(overrides), "further overrides")
        out.update(extra.overrides(table))
    return out


def load_variant(
    path: str | Path, name: str, table: ParameterTable | None = None
) -> dict[str, Any]:
    """The checked overrides of variant *name* in the file *path*."""
    return variant(name, file=path, table=table)


def variants(file: str | Path | None = None, section: str = "variants") -> pd.DataFrame:
    """The variants of *file* (default: the shipped ones): one row per variant with its
    ``description``, ``source`` and ``overrides`` (``name = value`` as written);
    *section* as in :func:`read_variants`."""
    rows = [
        {
            "name": v.name,
            "description": v.description,
            "source": v.source or "",
            "overrides": "; ".join(f"{k} = {val}" for k, val in v.values.items()),
        }
        for v in read_variants(file, section).values()
    ]
    return pd.DataFrame(rows, columns=["name", "description", "source", "overrides"]).set_index(
        "name"
    )


def spec_overrides(data: Mapping[str, Any], path: Path | None) -> dict[str, Any] | None:
    """A study spec's fixed overrides: its ``variant = "NAME"`` (from its ``variants``
    file, relative to the folder of the spec file *path*, or the shipped file), then its
    ``[params]`` on top (later wins); ``None`` when it has neither."""
    params = data.get("params")
    name, file = data.get("variant"), data.get("variants")
    if name is None:
        if file is not None:
            raise ParameterError(f"{path or 'spec'}: variants = {file!r} needs variant = 'NAME'")
        return params
    if not isinstance(name, str):
        raise ParameterError(f"{path or 'spec'}: variant must be a name (got {name!r})")
    if file is not None:
        if not isinstance(file, str):
            raise ParameterError(f"{path or 'spec'}: variants must be a file name (got {file!r})")
        if path is not None and not Path(file).is_absolute():
            file = path.parent / file
    if params is not None and not isinstance(params, dict):
        raise ParameterError(f"{path or 'spec'}: [params] must be a table")
    return {**variant(name, file=file), **(params or {})}
