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
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy
from pysb.bng import generate_equations
from pysb.core import Expression, Observable
from sympy.printing.c import C99CodePrinter
from sympy.printing.pycode import PythonCodePrinter

from mhimmune.core.errors import ModelError
from mhimmune.core.modelkit import Builder

CODEGEN_VERSION = "10"

__all__ = [
    "CompiledModel",
    "compile_model",
    "cache_dir",
    "clear_cache",
    "species_label",
    "backend",
    "c_compiler",
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


def species_label(cp) -> str:
    """A readable identifier for a species, e.g. ``Tumour_treated_viable``."""
    parts = []
    for mp in cp.monomer_patterns:
        states = [
            str(mp.site_conditions[site])
            for site in mp.monomer.sites
            if isinstance(mp.site_conditions.get(site), str)
        ]
        parts.append("_".join([mp.monomer.name, *states]))
    return "__".join(parts)


@dataclass
class CompiledModel:
    """Compiled functions of a model plus the names that index their arrays."""

    key: str
    species: list[str]
    parameters: list[str]
    derived_names: list[str]
    bolus_kinds: list[str]
    bolus_species: list[int]
    bolus_modes: list[str]
    n_reactions: int
    module: ModuleType
    backend: str = "numba"

    #: generated functions, reached as attributes (``compiled.rhs(y, t, p)``, ...)
    FUNCTIONS = (
        "rhs",
        "jac",
        "init",
        "derived",
        "bolus_scales",
        "integrate",
        "derived_series",
        "newton_solve",
    )

    def __getattr__(self, name):
        # rhs, jac, init, derived, bolus_scales, integrate, derived_series, newton_solve
        # (newton_solve solves (I - cJ(y)) x = b with the model's sparse LU, for checks)
        if name in CompiledModel.FUNCTIONS:
            return getattr(self.module, name)
        raise AttributeError(name)


def structure_key(b: Builder, kind: str = "numba") -> str:
    """Hash of a model's structure (everything except parameter values) and the backend."""
    m = b.model
    h = hashlib.sha256()
    for part in (
        CODEGEN_VERSION,
        kind,
        _KERNEL if kind == "numba" else _C_KERNEL,
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
            return _load(folder, key)
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
    sym, meta = _generate(b, key)
    meta["backend"] = kind
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{key}_", dir=folder.parent))
    try:
        if kind == "c":
            source = tmp / f"mhgen_{key}.c"
            source.write_text(_c_source(sym, key, b.model.name))
            cmd = [
                c_compiler(),
                "-O2",
                "-std=gnu99",
                "-shared",
                "-fPIC",
                "-o",
                str(tmp / f"mhgen_{key}.so"),
                str(source),
                "-lm",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ModelError(
                    f"C compilation of the model failed ({' '.join(cmd[:2])} ...): "
                    f"{proc.stderr.strip()[-2000:]}; set MHIMMUNE_BACKEND=numba to avoid the C compiler"
                )
        else:
            (tmp / f"mhgen_{key}.py").write_text(_python_source(sym, key, b.model.name))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(folder)  # atomic: a half-written entry is never visible
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    compiled = _load(folder, key)
    _warm_up(compiled)
    return compiled


def _load(folder: Path, key: str) -> CompiledModel:
    meta = json.loads((folder / "meta.json").read_text())
    kind = meta.pop("backend", "numba")
    modname = f"mhgen_{key}"
    if kind == "c":
        module = _CModule(
            folder / f"{modname}.so",
            len(meta["species"]),
            len(meta["derived_names"]),
            len(meta["bolus_kinds"]) or 1,
        )
    elif modname in sys.modules:
        module = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, folder / f"{modname}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return CompiledModel(key=key, module=module, backend=kind, **meta)


_DP = ctypes.POINTER(ctypes.c_double)


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_DP)


class _CModule:
    """ctypes front of a compiled model library, with the numba module's signatures."""

    def __init__(self, path: Path, n: int, n_derived: int, n_bolus: int):
        self._lib = lib = ctypes.CDLL(str(path))
        self.path = path
        self.n, self.n_derived, self.n_bolus = n, n_derived, n_bolus
        sizes = (ctypes.c_int * 6).in_dll(lib, "model_sizes")
        self.nnz = sizes[1]
        if sizes[0] != n or sizes[2] != n_derived:
            raise ModelError(f"compiled model library {path} does not match its description")
        for name in ("rhs", "jac_sparse", "jac_dense", "derived"):
            getattr(lib, name).argtypes = [_DP, _DP, _DP]
        for name in ("init", "bolus_scales"):
            getattr(lib, name).argtypes = [_DP, _DP]
        lib.derived_series.argtypes = [ctypes.c_int, _DP, _DP, _DP]
        lib.newton_solve.argtypes = [_DP, _DP, ctypes.c_double, _DP, _DP]
        lib.newton_solve.restype = ctypes.c_int
        lib.integrate.argtypes = [
            _DP,
            ctypes.c_double,
            ctypes.c_double,
            _DP,
            ctypes.c_int,
            _DP,
            ctypes.c_double,
            ctypes.c_double,
            ctypes.c_double,
            ctypes.c_long,
            _DP,
            _DP,
            ctypes.POINTER(ctypes.c_long),
        ]
        lib.integrate.restype = ctypes.c_int

    @staticmethod
    def _c(a) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float64)

    def rhs(self, y, t, p):
        y, p, out = self._c(y), self._c(p), np.empty(self.n)
        self._lib.rhs(_ptr(y), _ptr(p), _ptr(out))
        return out

    def jac_sparse(self, y, t, p):
        y, p, out = self._c(y), self._c(p), np.empty(self.nnz)
        self._lib.jac_sparse(_ptr(y), _ptr(p), _ptr(out))
        return out

    def jac(self, y, t, p):
        y, p, out = self._c(y), self._c(p), np.empty((self.n, self.n))
        self._lib.jac_dense(_ptr(y), _ptr(p), _ptr(out))
        return out

    def init(self, p):
        p, out = self._c(p), np.empty(self.n)
        self._lib.init(_ptr(p), _ptr(out))
        return out

    def derived(self, y, p):
        y, p, out = self._c(y), self._c(p), np.empty(self.n_derived)
        self._lib.derived(_ptr(y), _ptr(p), _ptr(out))
        return out

    def derived_series(self, Y, p):
        Y, p = self._c(np.atleast_2d(Y)), self._c(p)
        out = np.empty((Y.shape[0], self.n_derived))
        self._lib.derived_series(Y.shape[0], _ptr(Y), _ptr(p), _ptr(out))
        return out

    def bolus_scales(self, p):
        p, out = self._c(p), np.empty(self.n_bolus)
        self._lib.bolus_scales(_ptr(p), _ptr(out))
        return out

    def newton_solve(self, y, p, c, b):
        y, p, b, out = self._c(y), self._c(p), self._c(b), np.empty(self.n)
        if not self._lib.newton_solve(_ptr(y), _ptr(p), float(c), _ptr(b), _ptr(out)):
            out[:] = np.nan
        return out

    def integrate(self, y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init):
        y0, tout, p = self._c(y0), self._c(tout), self._c(p)
        Y = np.empty((tout.shape[0], self.n))
        y_end = np.empty(self.n)
        stats = np.zeros(4, dtype=np.int64)
        code = self._lib.integrate(
            _ptr(y0),
            float(t0),
            float(t1),
            _ptr(tout),
            int(tout.shape[0]),
            _ptr(p),
            float(rtol),
            float(atol),
            float(hmax),
            int(max_steps),
            _ptr(Y),
            _ptr(y_end),
            stats.ctypes.data_as(ctypes.POINTER(ctypes.c_long)),
        )
        return Y, y_end, code, stats, 0.0


def _warm_up(c: CompiledModel) -> None:
    """Trigger numba compilation (and its on-disk cache) of every generated function."""
    p = np.full(len(c.parameters), 0.5)
    y = c.init(p)
    c.rhs(y, 0.0, p)
    c.jac(y, 0.0, p)
    c.integrate(y, 0.0, 1e-3, np.array([1e-3]), p, 1e-6, 1e-9, 0.0, 10, 0.0)
    c.newton_solve(y, p, 1e-3, np.ones(len(y)))
    c.derived(y, p)
    c.derived_series(np.atleast_2d(y), p)
    c.bolus_scales(p)


_KERNEL_TEXT = (Path(__file__).with_name("_bdf_kernel.py")).read_text()
_KERNEL = _KERNEL_TEXT[
    _KERNEL_TEXT.index("# --- begin kernel ---") : _KERNEL_TEXT.index("# --- end kernel ---")
]
_C_KERNEL_TEXT = (Path(__file__).with_name("_bdf_kernel.c")).read_text()
_C_KERNEL = _C_KERNEL_TEXT[
    _C_KERNEL_TEXT.index("/* --- begin kernel --- */") : _C_KERNEL_TEXT.index(
        "/* --- end kernel --- */"
    )
]


def _merge_powers(expr):
    """Rewrite k*x**k/x as k*x**(k-1) where the exponent is symbolic (finite at x = 0).

    sympy differentiates x**k (symbolic k) to k*x**k/x, which is 0/0 at x = 0.
    """
    if any(not p.exp.is_number for p in expr.atoms(sympy.Pow)):
        return sympy.powsimp(expr, combine="exp", force=True)
    return expr


class SparseLU:
    """Static-pivot sparse LU of W = I - cJ for a fixed Jacobian pattern.

    The pivot order is a Markowitz (minimum fill) ordering of the pattern plus diagonal;
    elimination is symbolic, so fill-in is known at compile time and the numeric
    factorisation is a list of index operations (see ``_bdf_kernel._factor``).
    """

    def __init__(self, n: int, entries: list[tuple[int, int]]):
        self.n = n
        self.entries = entries
        pat = np.zeros((n, n), bool)
        for i, j in entries:
            pat[i, j] = True
        np.fill_diagonal(pat, True)
        self.order = self._markowitz(pat)
        self.inv = np.empty(n, int)
        self.inv[self.order] = np.arange(n)
        P = pat[np.ix_(self.order, self.order)].copy()
        for k in range(n):  # symbolic elimination: fill-in
            rows = np.nonzero(P[k + 1 :, k])[0] + k + 1
            cols = np.nonzero(P[k, k + 1 :])[0] + k + 1
            for r in rows:
                P[r, cols] = True
        self.filled = P
        self.index = -np.ones((n, n), int)
        ii, jj = np.nonzero(P)
        self.index[ii, jj] = np.arange(len(ii))
        self.nnz = len(ii)
        ops = []
        for k in range(n):
            rows = np.nonzero(P[k + 1 :, k])[0] + k + 1
            cols = np.nonzero(P[k, k + 1 :])[0] + k + 1
            for r in rows:
                ops.append((self.index[r, k], self.index[k, k], -1))
                ops.extend((self.index[r, c], self.index[r, k], self.index[k, c]) for c in cols)
        self.ops = np.array(ops, dtype=np.int64).reshape(-1, 3)

    @staticmethod
    def _markowitz(pat: np.ndarray) -> np.ndarray:
        work = pat.copy()
        remaining = list(range(len(pat)))
        order = []
        for _ in range(len(pat)):
            rem = np.array(remaining)
            sub = work[np.ix_(rem, rem)]
            cost = (sub.sum(axis=1) - 1) * (sub.sum(axis=0) - 1)
            best = int(rem[int(np.argmin(cost))])
            order.append(best)
            remaining.remove(best)
            rows = [r for r in remaining if work[r, best]]
            cols = [c for c in remaining if work[best, c]]
            for r in rows:
                work[r, cols] = True
        return np.array(order)

    def position(self, i: int, j: int) -> int:
        """Index of original entry (i, j) in the filled, permuted value array."""
        return int(self.index[self.inv[i], self.inv[j]])

    def triangles(self):
        """CSR-like index arrays of the strictly lower (L) and upper (U) factors, by row:
        (fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx)."""
        n, P, idx = self.n, self.filled, self.index
        fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx = [0], [], [], [0], [], []
        for i in range(n):
            for j in range(i):
                if P[i, j]:
                    fw_col.append(j)
                    fw_idx.append(idx[i, j])
            fw_ptr.append(len(fw_col))
            for j in range(i + 1, n):
                if P[i, j]:
                    bw_col.append(j)
                    bw_idx.append(idx[i, j])
            bw_ptr.append(len(bw_col))
        return fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx

    def source(self) -> str:
        """Module-level numpy arrays describing the factorisation and triangular solves."""
        fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx = self.triangles()
        idx, n = self.index, self.n
        rows = [i for i, _ in self.entries]
        cols = [j for _, j in self.entries]
        pos = [self.position(i, j) for i, j in self.entries]

        def arr(name, values):
            return f"{name} = np.array({[int(v) for v in values]!r}, dtype=np.int64)"

        return "\n".join(
            [
                f"LU_NNZ = {self.nnz}",
                arr("LU_DIAG", [idx[i, i] for i in range(n)]),
                arr("LU_OP_T", self.ops[:, 0]),
                arr("LU_OP_A", self.ops[:, 1]),
                arr("LU_OP_B", self.ops[:, 2]),
                arr("LU_PERM", self.order),
                arr("LU_FW_PTR", fw_ptr),
                arr("LU_FW_COL", fw_col),
                arr("LU_FW_IDX", fw_idx),
                arr("LU_BW_PTR", bw_ptr),
                arr("LU_BW_COL", bw_col),
                arr("LU_BW_IDX", bw_idx),
                arr("JAC_ROWS", rows),
                arr("JAC_COLS", cols),
                arr("JAC_POS", pos),
            ]
        )


class _Printer(PythonCodePrinter):
    """Python code printer whose output numba compiles (math functions, a[i] indexing)."""

    def _print_Indexed(self, expr):
        return f"{expr.base}[{', '.join(self._print(i) for i in expr.indices)}]"

    def _print_Pow(self, expr, rational=False):
        # non-integer powers of states that dip a rounding error below zero (a Hill function
        # of a damage index at 0, say) must not turn into NaN: _spow is 0 for bases <= 0
        if expr.exp.is_Integer or (expr.exp.is_number and expr.exp == -1):
            return super()._print_Pow(expr, rational=rational)
        return f"_spow({self._print(expr.base)}, {self._print(expr.exp)})"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        return f"(1.0 if ({x}) > 0 else 0.0)"


def _generate(b: Builder, key: str) -> tuple[str, dict]:
    model = b.model
    generate_equations(model)
    n = len(model.species)
    y = sympy.IndexedBase("y")
    p = sympy.IndexedBase("p")
    pnames = [q.name for q in model.parameters]
    par_sub = {q: p[i] for i, q in enumerate(model.parameters)}
    sp_sub = {sympy.Symbol(f"__s{i}"): y[i] for i in range(n)}

    cache: dict = {}

    def expand_atom(a):
        if a not in cache:
            raw = (
                a.expand_expr(expand_observables=True)
                if isinstance(a, Expression)
                else a.expand_obs()
            )
            cache[a] = expand(raw)
        return cache[a]

    def expand(expr):
        """Expression in terms of y[i] and p[j] only (Expressions and Observables inlined)."""
        expr = sympy.sympify(expr)
        subs = {a: expand_atom(a) for a in expr.atoms(Expression, Observable)}
        expr = expr.xreplace(subs) if subs else expr
        return expr.xreplace(sp_sub).xreplace(par_sub)

    # ODEs and Jacobian from the reaction network: f = S v(y), J = S dv/dy. Each rate is
    # expanded and differentiated once, and only by the species it depends on.
    ysyms = [y[i] for i in range(n)]
    rows: list[dict[int, sympy.Expr]] = [dict() for _ in range(n)]
    odes_terms: list[list[sympy.Expr]] = [[] for _ in range(n)]
    for rxn in model.reactions:
        rate = expand(rxn["rate"])
        net: dict[int, int] = {}
        for i in rxn["reactants"]:
            net[i] = net.get(i, 0) - 1
        for i in rxn["products"]:
            net[i] = net.get(i, 0) + 1
        net = {i: v for i, v in net.items() if v != 0}
        if not net:
            continue
        depends = sorted({int(str(s.indices[0])) for s in rate.atoms(sympy.Indexed) if s.base == y})
        grads = {j: _merge_powers(rate.diff(ysyms[j])) for j in depends}
        for i, v in net.items():
            odes_terms[i].append(v * rate)
            for j, g in grads.items():
                if g != 0:
                    rows[i][j] = rows[i].get(j, sympy.Integer(0)) + v * g
    odes = [sympy.Add(*terms) for terms in odes_terms]
    for i, e in enumerate(odes):
        bad = {
            s
            for s in e.free_symbols
            if not isinstance(s, (sympy.Indexed, sympy.IndexedBase)) and s.name not in ("y", "p")
        }
        if bad:
            raise ModelError(f"ODE of species {i} contains unknown symbols {bad}")

    # initial state: pysb Initials (Parameters or constant Expressions)
    init = [sympy.Integer(0)] * n
    for ic in model.initials:
        idx = model.get_species_index(ic.pattern)
        if idx is None:
            raise ModelError(f"initial {ic.pattern} is not a species of the network")
        init[idx] = expand(ic.value)

    derived_names, derived = [], []
    for obs in model.observables:
        derived_names.append(obs.name)
        derived.append(expand(obs))
    for ex in model.expressions:
        if ex.name == "zero_amount":
            continue
        derived_names.append(ex.name)
        derived.append(expand(ex))

    bolus_kinds, bolus_species, bolus_modes, bolus_exprs = [], [], [], []
    for spec in b.boluses:
        idx = model.get_species_index(spec.pattern)
        if idx is None:
            raise ModelError(f"bolus {spec.kind!r}: {spec.pattern} is not a species of the network")
        bolus_kinds.append(spec.kind)
        bolus_species.append(idx)
        bolus_modes.append(spec.mode)
        bolus_exprs.append(expand(spec.scale))

    jac_entries = [(i, j, e) for i in range(n) for j, e in sorted(rows[i].items()) if e != 0]
    lu = SparseLU(n, [(i, j) for i, j, _ in jac_entries])
    sym = _Symbolic(
        n=n,
        odes=odes,
        jac_entries=jac_entries,
        lu=lu,
        init=init,
        derived=derived,
        bolus_exprs=bolus_exprs or [sympy.Integer(0)],
    )
    meta = dict(
        species=[species_label(s) for s in model.species],
        parameters=pnames,
        derived_names=derived_names,
        bolus_kinds=bolus_kinds,
        bolus_species=bolus_species,
        bolus_modes=bolus_modes,
        n_reactions=len(model.reactions),
    )
    labels = meta["species"]
    if len(set(labels)) != len(labels):
        raise ModelError("species labels are not unique; give monomer sites distinct states")
    return sym, meta


@dataclass
class _Symbolic:
    """The model's equations in terms of y[i] and p[j], ready for code generation."""

    n: int
    odes: list
    jac_entries: list
    lu: SparseLU
    init: list
    derived: list
    bolus_exprs: list


def _cse(exprs):
    return sympy.cse(exprs, symbols=sympy.numbered_symbols("x"), optimizations=None)


def _python_source(sym: _Symbolic, key: str, name: str) -> str:
    """numba backend: a Python module of njit functions plus the BDF kernel."""
    n, lu = sym.n, sym.lu
    printer = _Printer({"standard": "python3"})

    def block(fname, args, exprs, assign, alloc):
        replacements, reduced = _cse(exprs)
        lines = [
            '@nb.njit(cache=True, error_model="numpy")',
            f"def {fname}({args}):",
            f"    {alloc}",
        ]
        for s_, ex in replacements:
            lines.append(f"    {s_} = {printer.doprint(ex)}")
        for target, ex in zip(assign, reduced):
            lines.append(f"    {target} = {printer.doprint(ex)}")
        lines.append("    return out")
        return "\n".join(lines)

    nd, nb_ = len(sym.derived), len(sym.bolus_exprs)
    parts = [
        f'"""Generated by mhimmune.core.compile (codegen {CODEGEN_VERSION}, numba backend) for model '
        f'{name!r}, structure key {key}. Do not edit."""',
        "import math",
        "import numpy as np",
        "import numba as nb",
        "",
        "@nb.njit(cache=True, inline='always')",
        "def _spow(b, e):",
        "    if b > 0.0:",
        "        return b ** e",
        "    if e == 0.0:",
        "        return 1.0",
        "    return 0.0 if e > 0.0 else math.inf",
        "",
        block("rhs", "y, t, p", sym.odes, [f"out[{i}]" for i in range(n)], f"out = np.empty({n})"),
        "",
        block(
            "jac_sparse",
            "y, t, p",
            [e for _, _, e in sym.jac_entries],
            [f"out[{lu.position(i, j)}]" for i, j, _ in sym.jac_entries],
            f"out = np.zeros({lu.nnz})",
        ),
        "",
        lu.source(),
        "",
        "@nb.njit(cache=True)",
        "def jac(y, t, p):",
        "    v = jac_sparse(y, t, p)",
        f"    out = np.zeros(({n}, {n}))",
        "    for k in range(JAC_ROWS.shape[0]):",
        "        out[JAC_ROWS[k], JAC_COLS[k]] = v[JAC_POS[k]]",
        "    return out",
        "",
        block("init", "p", sym.init, [f"out[{i}]" for i in range(n)], f"out = np.empty({n})"),
        "",
        block(
            "derived",
            "y, p",
            sym.derived,
            [f"out[{i}]" for i in range(nd)],
            f"out = np.empty({nd})",
        ),
        "",
        block(
            "bolus_scales",
            "p",
            sym.bolus_exprs,
            [f"out[{i}]" for i in range(nb_)],
            f"out = np.empty({nb_})",
        ),
        "",
        "@nb.njit(cache=True)",
        "def derived_series(Y, p):",
        f"    out = np.empty((Y.shape[0], {nd}))",
        "    for k in range(Y.shape[0]):",
        "        out[k, :] = derived(Y[k], p)",
        "    return out",
        "",
        _KERNEL,
        "",
        "@nb.njit(cache=True)",
        "def integrate(y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init):",
        "    return bdf_segment(y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init,",
        "                       LU_DIAG, LU_OP_T, LU_OP_A, LU_OP_B, LU_PERM, LU_FW_PTR, LU_FW_COL,",
        "                       LU_FW_IDX, LU_BW_PTR, LU_BW_COL, LU_BW_IDX, LU_NNZ)",
        "",
        "@nb.njit(cache=True)",
        "def newton_solve(y, p, c, b):",
        "    jv = jac_sparse(y, 0.0, p)",
        "    w = np.empty(LU_NNZ)",
        "    if not _factor(w, jv, c, LU_DIAG, LU_OP_T, LU_OP_A, LU_OP_B):",
        "        return np.full(b.shape[0], np.nan)",
        "    return _solve(w, b, LU_PERM, LU_FW_PTR, LU_FW_COL, LU_FW_IDX, LU_BW_PTR, LU_BW_COL, LU_BW_IDX, LU_DIAG)",
        "",
    ]
    return "\n".join(parts)


class _CPrinter(C99CodePrinter):
    """C99 printer with NaN-safe non-integer powers (see :class:`_Printer`)."""

    def _print_Indexed(self, expr):
        return f"{expr.base}[{', '.join(self._print(i) for i in expr.indices)}]"

    def _print_Pow(self, expr):
        if expr.exp.is_Integer:
            e = int(expr.exp)
            if e == -1:
                return f"(1.0/({self._print(expr.base)}))"
            if 1 < e <= 4:
                b = self._print(expr.base)
                return "(" + "*".join([f"({b})"] * e) + ")"
            return f"pow({self._print(expr.base)}, {e}.0)"
        return f"_spow({self._print(expr.base)}, {self._print(expr.exp)})"


def _c_source(sym: _Symbolic, key: str, name: str) -> str:
    """C backend: the model functions and the BDF kernel as one C99 translation unit."""
    n, lu = sym.n, sym.lu
    printer = _CPrinter()

    def block(signature, exprs, assign, prologue=""):
        replacements, reduced = _cse(exprs)
        lines = [signature + " {"]
        if prologue:
            lines.append("    " + prologue)
        for s_, ex in replacements:
            lines.append(f"    const double {s_} = {printer.doprint(ex)};")
        for target, ex in zip(assign, reduced):
            lines.append(f"    {target} = {printer.doprint(ex)};")
        lines.append("}")
        return "\n".join(lines)

    def arr(cname, values):
        values = [int(v) for v in values] or [0]
        return f"static const int {cname}[{len(values)}] = {{{', '.join(map(str, values))}}};"

    idx = lu.index
    fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx = lu.triangles()
    nd, nb_ = len(sym.derived), len(sym.bolus_exprs)
    parts = [
        f"/* Generated by mhimmune.core.compile (codegen {CODEGEN_VERSION}, C backend) for model {name!r},",
        f"   structure key {key}. Do not edit. */",
        "#include <math.h>",
        "#include <string.h>",
        "",
        f"#define N {n}",
        f"#define LU_NNZ {lu.nnz}",
        f"#define LU_NOPS {len(lu.ops)}",
        f"#define N_DERIVED {nd}",
        f"#define N_BOLUS {nb_}",
        "",
        arr("LU_DIAG", [idx[i, i] for i in range(n)]),
        arr("LU_OP_T", lu.ops[:, 0]),
        arr("LU_OP_A", lu.ops[:, 1]),
        arr("LU_OP_B", lu.ops[:, 2]),
        arr("LU_PERM", lu.order),
        arr("LU_FW_PTR", fw_ptr),
        arr("LU_FW_COL", fw_col),
        arr("LU_FW_IDX", fw_idx),
        arr("LU_BW_PTR", bw_ptr),
        arr("LU_BW_COL", bw_col),
        arr("LU_BW_IDX", bw_idx),
        arr("JAC_ROWS", [i for i, _, _ in sym.jac_entries]),
        arr("JAC_COLS", [j for _, j, _ in sym.jac_entries]),
        arr("JAC_POS", [lu.position(i, j) for i, j, _ in sym.jac_entries]),
        f"const int model_sizes[6] = {{N, LU_NNZ, N_DERIVED, N_BOLUS, {len(sym.jac_entries)}, 0}};",
        "",
        "static inline double _spow(double b, double e) {",
        "    if (b > 0.0) return pow(b, e);",
        "    if (e == 0.0) return 1.0;",
        "    return e > 0.0 ? 0.0 : INFINITY;",
        "}",
        "",
        block(
            "void rhs(const double *y, const double *p, double *out)",
            sym.odes,
            [f"out[{i}]" for i in range(n)],
        ),
        "",
        block(
            "void jac_sparse(const double *y, const double *p, double *out)",
            [e for _, _, e in sym.jac_entries],
            [f"out[{lu.position(i, j)}]" for i, j, _ in sym.jac_entries],
            prologue="memset(out, 0, sizeof(double) * LU_NNZ);",
        ),
        "",
        "void jac_dense(const double *y, const double *p, double *out) {",
        "    double v[LU_NNZ];",
        "    jac_sparse(y, p, v);",
        "    memset(out, 0, sizeof(double) * N * N);",
        "    for (int k = 0; k < (int)(sizeof JAC_ROWS / sizeof JAC_ROWS[0]); k++)",
        "        out[JAC_ROWS[k] * N + JAC_COLS[k]] = v[JAC_POS[k]];",
        "}",
        "",
        block("void init(const double *p, double *out)", sym.init, [f"out[{i}]" for i in range(n)]),
        "",
        block(
            "void derived(const double *y, const double *p, double *out)",
            sym.derived,
            [f"out[{i}]" for i in range(nd)],
        ),
        "",
        "void derived_series(int m, const double *Y, const double *p, double *out) {",
        "    for (int k = 0; k < m; k++) derived(Y + (long)k * N, p, out + (long)k * N_DERIVED);",
        "}",
        "",
        block(
            "void bolus_scales(const double *p, double *out)",
            sym.bolus_exprs,
            [f"out[{i}]" for i in range(nb_)],
        ),
        "",
        _C_KERNEL,
    ]
    return "\n".join(parts)
