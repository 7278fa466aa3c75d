"""The project's bibliography: ``parameters/references.tsv``, cited by key.

Parameter tables, the agent catalogue and the validation targets cite publications as
``[key]``; this module reads the bibliography, finds the keys a text cites and formats a
full citation (authors, year, title, journal volume:pages, DOI).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.resources import resource_dir

__all__ = ["load_references", "cited_keys", "format_reference"]

_KEY = re.compile(r"\[([A-Za-z0-9_]+)\]")


@cache
def _load(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"references: no bibliography at {p}")
    refs = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    if "key" not in refs.columns:
        raise ParameterError(f"{p}: needs a 'key' column")
    return refs.set_index("key")


def load_references(path: str | Path | None = None) -> pd.DataFrame:
    """The bibliography indexed by key (columns authors, year, title, journal, volume,
    pages, doi, note); default ``parameters/references.tsv``."""
    p = Path(path) if path is not None else resource_dir("parameters") / "references.tsv"
    return _load(str(p.resolve())).copy()


def cited_keys(text: str) -> list[str]:
    """The ``[key]`` citations in *text*, in order of first appearance."""
    return list(dict.fromkeys(_KEY.findall(text or "")))


def format_reference(key: str, refs: pd.DataFrame | None = None) -> str:
    """One line: ``[key] Authors (year). Title. Journal volume:pages. doi:...``; fields
    the bibliography lacks are left out, and an unknown key says so."""
    refs = load_references() if refs is None else refs
    if key not in refs.index:
        return f"[{key}] (not in the bibliography)"
    r = refs.loc[key]
    parts = [f"[{key}] {r.get('authors', '')} ({r.get('year', '')})."]
    if r.get("title"):
        parts.append(f"{r['title'].rstrip('.')}.")
    where = " ".join(x for x in (r.get("journal", ""), r.get("volume", "")) if x)
    if r.get("pages"):
        where = f"{where}:{r['pages']}" if where else r["pages"]
    if where:
        parts.append(f"{where}.")
    if r.get("doi"):
        parts.append(f"doi:{r['doi']}")
    return " ".join(parts)
