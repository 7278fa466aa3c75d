"""Result files: atomic writes (a result file is never half-written) and override files."""

from __future__ import annotations

import os
import tempfile
import threading
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError

__all__ = ["atomic_path", "file_mode", "write_csv", "save_figure", "read_overrides", "read_toml"]


_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """Permission bits of a new file under the process umask (``0o666 & ~umask``)."""
    try:  # Linux ≥ 4.7 reports the umask without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere: read it by setting it (briefly) and restoring it
        umask = os.umask(0o077)
        os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to *path*; move it into place only on success.

    The file gets the mode a plain ``open(path, "w")`` would give (``0o666`` less the
    umask), not the private ``0o600`` of the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(df: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    """Write *df* as CSV atomically; returns the path."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically as PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def read_overrides(path: str | Path) -> dict[str, Any]:
    """Read parameter overrides from TOML (``name = value``) or TSV (``parameterId, value``).

    Values are in the parameter table's unit, or strings with a unit.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"--params: no such file {str(path)!r}")
    if path.suffix.lower() not in (".toml", ".tsv", ".txt"):
        raise ParameterError(
            f"--params: {path.name}: unknown file type {path.suffix or '(none)'!r}; give a "
            f"TOML file (.toml, name = value) or a TSV file (.tsv, columns parameterId, value)"
        )
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ParameterError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"{path}: invalid TOML ({exc})") from None
        data = data.get("parameters", data)
        bad = [k for k, v in data.items() if not isinstance(v, (int, float, str))]
        if bad:
            raise ParameterError(f"{path}: values must be numbers or strings with units: {bad}")
        return dict(data)
    try:
        df = pd.read_csv(path, sep="\t")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ParameterError(
            f"{path}: not a readable TSV of overrides ({type(exc).__name__})"
        ) from None
    if not {"parameterId", "value"} <= set(df.columns):
        raise ParameterError(f"{path}: a TSV of overrides needs columns parameterId and value")
    return dict(zip(df["parameterId"], df["value"]))


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Parse ``name=value`` strings from ``--set``; numbers stay numbers."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ParameterError(f"--set: expected name=value, got {item!r}")
        name, value = (s.strip() for s in item.split("=", 1))
        try:
            out[name] = float(value)
        except ValueError:
            out[name] = value
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML spec file; a missing file or invalid TOML raises
    :class:`~mhimmune.core.errors.MhimmuneError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise MhimmuneError(f"spec file not found: {path}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise MhimmuneError(f"{p}: not UTF-8 text; a spec is a TOML file in UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise MhimmuneError(f"{p}: invalid TOML: {exc}") from None
