"""Protocol TOML files: reading a file or text into a table, writing a table as TOML.

The table has the shape :meth:`mhimmune.mh.protocol.Protocol.to_dict` returns: the
top-level keys of :data:`~mhimmune.mh.kinds.TOP_KEYS` and one array of tables per
intervention kind (``[[mh_session]]``, ``[[anti_pdl1]]``, ...).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mhimmune.core.errors import ProtocolError
from mhimmune.mh.kinds import KINDS, TOP_KEYS

__all__ = ["read_source", "dumps"]


def read_source(source: str | Path) -> tuple[dict[str, Any], str | None]:
    """The table of a TOML file or TOML text, and the file name (``None`` for text).

    A :class:`~pathlib.Path`, or a one-line string without ``=``, names a file.
    """
    is_path = isinstance(source, Path) or ("\n" not in source and "=" not in source)
    origin = None
    if is_path:
        path = Path(source)
        if path.is_dir():
            raise ProtocolError(f"protocol file {str(path)!r} is a directory, not a TOML file")
        if not path.is_file():
            raise ProtocolError(f"protocol file {str(path)!r} does not exist")
        try:
            text, origin = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"protocol file {str(path)!r}: not UTF-8 text (byte {exc.start}); "
                f"a protocol is a TOML file in UTF-8"
            ) from None
    else:
        text = str(source)
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{origin or 'protocol'}: invalid TOML: {exc}") from None


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text of a protocol table (top-level keys first, then one table per event)."""
    lines = [f"{key} = {_toml_value(data[key])}" for key in TOP_KEYS if key in data]
    for kind in KINDS:
        for table in data.get(kind, []):
            lines += ["", f"[[{kind}]]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    """A TOML basic string literal of *text*."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    """A TOML literal of a bool, int or string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    raise TypeError(f"cannot write {value!r} to TOML")
