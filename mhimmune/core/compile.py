"""Compile a composed PySB model once into fast native functions, cached on disk.

Pipeline: PySB rules -> BioNetGen network (species and reactions) -> sympy rates with
every Expression and Observable expanded -> ODEs f = S·v(y) and the sparse Jacobian
J = S·dv/dy (each rate differentiated once, by the species it depends on) -> common
sub-expressions -> generated code, with the model's BDF integrator and its sparse LU
(see ``_bdf_kernel.c`` / ``_bdf_kernel.py``):

``rhs(y, t, p)``          dy/dt (the signature scipy's ``odeint`` calls)
``jac(y, t, p)``          dense analytic Jacobian ∂f/∂y (``jac_sparse`` in LU order)
``init(p)``               initial state from the parameters
``derived(y, p)``         named observables and expressions (temperature, volumes, ...)
``bolus_scales(p)``       factors converting protocol dose units into species units
``integrate(...)``        one schedule segment with the compiled BDF integrator

Two backends produce the same functions: ``c`` (C99 compiled by the system C compiler
into a shared library called through ctypes: compiles in seconds) and ``numba``
(njit functions: no compiler needed, slower to compile). See :func:`backend`.

The generated code and a JSON description live in a cache folder keyed by a hash of
the model's *structure* (rules, expressions, initials, doses; not parameter values)
and the backend, so a second ``load_model()`` skips BioNetGen, sympy and compilation.
The cache folder is ``$MHIMMUNE_CACHE_DIR`` or ``~/.cache/mhimmune``.

The steps live in :mod:`mhimmune.core.equations` (network and Jacobian),
:mod:`mhimmune.core.codegen` (C and numba source) and :mod:`mhimmune.core.compiled`
(loading a compiled folder); this module chooses the backend, runs the compiler and
manages the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mhimmune.core.codegen import C_KERNEL, CODEGEN_VERSION, NUMBA_KERNEL, c_source, python_source
from mhimmune.core.compiled import CompiledModel, load_compiled, warm_up
from mhimmune.core.equations import network_equations
from mhimmune.core.errors import ModelError
from mhimmune.core.modelkit import Builder

__all__ = [
    "CompiledModel",
    "compile_model",
    "cache_dir",
    "clear_cache",
    "backend",
    "c_compiler",
    "host_cpu",
    "C_FLAGS",
    "C_NATIVE_FLAGS",
]


def cache_dir() -> Path:
    """The folder holding compiled models (``$MHIMMUNE_CACHE_DIR`` or ``~/.cache/mhimmune``)."""
    root = os.environ.get("MHIMMUNE_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "mhimmune"


def clear_cache() -> int:
    """Delete every compiled model in the cache; return how many were removed."""
    root = cache_dir()
    if not root.is_dir():
        return 0
    n = 0
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith("model_"):
            shutil.rmtree(entry, ignore_errors=True)
            n += 1
    return n


#: C compiler flags of the C backend. Floating-point contraction is off (no fused
#: multiply-add), so that :data:`C_NATIVE_FLAGS` change the speed, not the results: a build
#: for the host's instruction set computes bitwise what a generic build does.
C_FLAGS = ("-O3", "-std=gnu99", "-ffp-contract=off")
#: flags for the host CPU's instruction set (vector instructions; ~10 % faster
#: integration), dropped when the compiler refuses them; the host CPU is then part of the
#: cache key (:func:`host_cpu`), so that a cache folder shared by different machines
#: never hands one a library built for another. On x86 without FMA and AVX-512 (whose
#: EVEX encodings include fused multiply-adds): GCC 12's straight-line (SLP) vectoriser
#: fuses ``a*b - c`` / ``a*b + c`` lane pairs into ``vfmsubadd`` even with contraction off,
#: which changed Jacobian entries of the full model by a rounding error.
C_NATIVE_FLAGS: tuple[str, ...] = ("-march=native",) + (
    ("-mno-fma", "-mno-avx512f") if platform.machine().lower() in ("x86_64", "amd64") else ()
)


@functools.lru_cache(maxsize=1)
def host_cpu() -> str:
    """The host CPU as the cache key of native builds sees it: model name and instruction-set
    flags from ``/proc/cpuinfo`` (Linux), else the platform's machine and processor."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    keys = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    lines = [line for line in text.splitlines() if line.startswith(keys)]
    return "\n".join(dict.fromkeys(lines)) or f"{platform.machine()} {platform.processor()}"


def structure_key(b: Builder, kind: str = "numba") -> str:
    """Hash of a model's structure (everything except parameter values) and the backend
    (for the C backend also its flags and the host CPU)."""
    m = b.model
    h = hashlib.sha256()
    for part in (
        CODEGEN_VERSION,
        kind,
        NUMBA_KERNEL if kind == "numba" else C_KERNEL,
        m.name,
        [repr(x) for x in m.monomers],
        [p.name for p in m.parameters],
        [repr(x) for x in m.rules],
        [repr(x) for x in m.observables],
        [repr(x) for x in m.expressions],
        [repr(x) for x in m.initials],
        [(s.kind, repr(s.pattern), str(s.scale), s.mode) for s in b.boluses],
    ):
        h.update(repr(part).encode())
    if kind == "c":
        h.update(repr((C_FLAGS, C_NATIVE_FLAGS, host_cpu())).encode())
    return h.hexdigest()[:20]


def c_compiler() -> str | None:
    """The C compiler used by the C backend (``$CC``, ``cc`` or ``gcc``), or ``None``."""
    cc = os.environ.get("CC")
    if cc:
        return cc
    return shutil.which("cc") or shutil.which("gcc")


def backend() -> str:
    """Code-generation backend: ``$MHIMMUNE_BACKEND`` (``c`` or ``numba``), else ``c``
    when a C compiler is available (compiles in seconds), else ``numba``."""
    choice = os.environ.get("MHIMMUNE_BACKEND", "").strip().lower()
    if choice in ("c", "numba"):
        return choice
    if choice:
        raise ModelError(f"MHIMMUNE_BACKEND: must be 'c' or 'numba', got {choice!r}")
    return "c" if c_compiler() else "numba"


def compile_model(b: Builder, *, verbose: bool = True) -> CompiledModel:
    """Return the compiled model for builder *b*, from the cache when possible."""
    kind = backend()
    key = structure_key(b, kind)
    folder = cache_dir() / f"model_{key}"
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            return load_compiled(folder, key)
        except Exception:  # a corrupt or stale cache entry: rebuild it
            shutil.rmtree(folder, ignore_errors=True)
    if verbose:
        tool = "a C compiler" if kind == "c" else "numba"
        print(
            f"mhimmune: compiling model {b.model.name!r} (BioNetGen + sympy + {tool}; "
            f"once per model structure, cached in {cache_dir()}) ...",
            file=sys.stderr,
            flush=True,
        )
    sym, meta = network_equations(b)
    meta["backend"] = kind
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{key}_", dir=folder.parent))
    try:
        if kind == "c":
            source = tmp / f"mhgen_{key}.c"
            source.write_text(c_source(sym, key, b.model.name))
            cc = c_compiler()
            if cc is None:
                raise ModelError("no C compiler found; set MHIMMUNE_BACKEND=numba")
            cmd = [
                cc,
                *C_FLAGS,
                *C_NATIVE_FLAGS,
                "-shared",
                "-fPIC",
                "-o",
                str(tmp / f"mhgen_{key}.so"),
                str(source),
                "-lm",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:  # a compiler without -march=native: a generic build
                cmd = [x for x in cmd if x not in C_NATIVE_FLAGS]
                proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ModelError(
                    f"C compilation of the model failed ({' '.join(cmd[:2])} ...): "
                    f"{proc.stderr.strip()[-2000:]}; "
                    "set MHIMMUNE_BACKEND=numba to avoid the C compiler"
                )
        else:
            (tmp / f"mhgen_{key}.py").write_text(python_source(sym, key, b.model.name))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(folder)  # atomic: a half-written entry is never visible
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    compiled = load_compiled(folder, key)
    warm_up(compiled)
    return compiled
