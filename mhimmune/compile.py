"""Compile a composed PySB model once into fast numba functions, cached on disk.

Pipeline: PySB rules → BioNetGen network (species and reactions) → sympy ODEs with
every Expression and Observable expanded → symbolic Jacobian → common
sub-expressions → a generated Python module of ``numba.njit`` functions:

``rhs(y, t, p)``          dy/dt (the signature scipy's ``odeint`` calls)
``jac(y, t, p)``          dense analytic Jacobian ∂f/∂y
``init(p)``               initial state from the parameters
``derived(y, p)``         named observables and expressions (temperature, volumes, ...)
``bolus_scales(p)``       factors converting protocol dose units into species units

The generated module and a JSON description live in a cache folder keyed by a hash
of the model's *structure* (rules, expressions, initials, doses; not parameter
values), so a second ``load_model()`` skips BioNetGen, sympy and numba compilation.
The cache folder is ``$MHIMMUNE_CACHE_DIR`` or ``~/.cache/mhimmune``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy
from pysb.bng import generate_equations
from pysb.core import Expression, Observable, Parameter
from sympy.printing.pycode import PythonCodePrinter

from .errors import ModelError
from .modelkit import Builder

CODEGEN_VERSION = "8"

__all__ = ["CompiledModel", "compile_model", "cache_dir", "clear_cache", "species_label"]


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
        states = [str(mp.site_conditions[site]) for site in mp.monomer.sites
                  if isinstance(mp.site_conditions.get(site), str)]
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

    @property
    def rhs(self):
        return self.module.rhs

    @property
    def jac(self):
        return self.module.jac

    @property
    def init(self):
        return self.module.init

    @property
    def derived(self):
        return self.module.derived

    @property
    def bolus_scales(self):
        return self.module.bolus_scales

    @property
    def integrate(self):
        return self.module.integrate

    @property
    def derived_series(self):
        return self.module.derived_series


def structure_key(b: Builder) -> str:
    """Hash of a model's structure: everything except parameter values."""
    m = b.model
    h = hashlib.sha256()
    for part in (CODEGEN_VERSION, _KERNEL, m.name,
                 [repr(x) for x in m.monomers], [p.name for p in m.parameters],
                 [repr(x) for x in m.rules], [repr(x) for x in m.observables],
                 [repr(x) for x in m.expressions], [repr(x) for x in m.initials],
                 [(s.kind, repr(s.pattern), str(s.scale), s.mode) for s in b.boluses]):
        h.update(repr(part).encode())
    return h.hexdigest()[:20]


def compile_model(b: Builder, *, verbose: bool = True) -> CompiledModel:
    """Return the compiled model for builder *b*, from the cache when possible."""
    key = structure_key(b)
    folder = cache_dir() / f"model_{key}"
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            return _load(folder, key)
        except Exception:  # a corrupt or stale cache entry: rebuild it
            shutil.rmtree(folder, ignore_errors=True)
    if verbose:
        print(f"mhimmune: compiling model {b.model.name!r} (BioNetGen + sympy + numba; "
              f"once per model structure, cached in {cache_dir()}) ...", file=sys.stderr, flush=True)
    source, meta = _generate(b, key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{key}_", dir=folder.parent))
    (tmp / f"mhgen_{key}.py").write_text(source)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(folder)  # atomic: a half-written entry is never visible
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    compiled = _load(folder, key)
    _warm_up(compiled)
    return compiled


def _load(folder: Path, key: str) -> CompiledModel:
    meta = json.loads((folder / "meta.json").read_text())
    modname = f"mhgen_{key}"
    if modname in sys.modules:
        module = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, folder / f"{modname}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return CompiledModel(key=key, module=module, **meta)


def _warm_up(c: CompiledModel) -> None:
    """Trigger numba compilation (and its on-disk cache) of every generated function."""
    p = np.full(len(c.parameters), 0.5)
    y = c.init(p)
    c.rhs(y, 0.0, p)
    c.jac(y, 0.0, p)
    c.integrate(y, 0.0, 1e-3, np.array([1e-3]), p, 1e-6, 1e-9, 0.0, 10, 0.0)
    c.derived(y, p)
    c.derived_series(np.atleast_2d(y), p)
    c.bolus_scales(p)


_KERNEL_TEXT = (Path(__file__).with_name("_bdf_kernel.py")).read_text()
_KERNEL = _KERNEL_TEXT[_KERNEL_TEXT.index("# --- begin kernel ---"):_KERNEL_TEXT.index("# --- end kernel ---")]


def _merge_powers(expr):
    """Rewrite k*x**k/x as k*x**(k-1) where the exponent is symbolic (finite at x = 0)."""
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
            rows = np.nonzero(P[k + 1:, k])[0] + k + 1
            cols = np.nonzero(P[k, k + 1:])[0] + k + 1
            for r in rows:
                P[r, cols] = True
        self.filled = P
        self.index = -np.ones((n, n), int)
        ii, jj = np.nonzero(P)
        self.index[ii, jj] = np.arange(len(ii))
        self.nnz = len(ii)
        ops = []
        for k in range(n):
            rows = np.nonzero(P[k + 1:, k])[0] + k + 1
            cols = np.nonzero(P[k, k + 1:])[0] + k + 1
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

    def source(self) -> str:
        """Module-level numpy arrays describing the factorisation and triangular solves."""
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
        rows = [i for i, _ in self.entries]
        cols = [j for _, j in self.entries]
        pos = [self.position(i, j) for i, j in self.entries]

        def arr(name, values):
            return f"{name} = np.array({[int(v) for v in values]!r}, dtype=np.int64)"

        return "\n".join([
            f"LU_NNZ = {self.nnz}",
            arr("LU_DIAG", [idx[i, i] for i in range(n)]),
            arr("LU_OP_T", self.ops[:, 0]), arr("LU_OP_A", self.ops[:, 1]), arr("LU_OP_B", self.ops[:, 2]),
            arr("LU_PERM", self.order),
            arr("LU_FW_PTR", fw_ptr), arr("LU_FW_COL", fw_col), arr("LU_FW_IDX", fw_idx),
            arr("LU_BW_PTR", bw_ptr), arr("LU_BW_COL", bw_col), arr("LU_BW_IDX", bw_idx),
            arr("JAC_ROWS", rows), arr("JAC_COLS", cols), arr("JAC_POS", pos),
        ])


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

    def expand(expr):
        expr = sympy.sympify(expr)
        subs = {}
        for a in expr.atoms(Expression, Observable):
            subs[a] = (a.expand_expr(expand_observables=True) if isinstance(a, Expression)
                       else a.expand_obs())
        expr = expr.xreplace(subs) if subs else expr
        if expr.atoms(Expression, Observable):
            return expand(expr)
        return expr.xreplace(sp_sub).xreplace(par_sub)

    odes = [expand(e) for e in model.odes]
    for i, e in enumerate(odes):
        bad = {s for s in e.free_symbols
               if not isinstance(s, (sympy.Indexed, sympy.IndexedBase)) and s.name not in ("y", "p")}
        if bad:
            raise ModelError(f"ODE of species {i} contains unknown symbols {bad}")
    ysyms = [y[i] for i in range(n)]
    jac = sympy.Matrix(odes).jacobian(ysyms)

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

    printer = _Printer({"standard": "python3"})
    # sympy differentiates x**k (symbolic k) to k*x**k/x, which is 0/0 at x = 0: merge powers
    jac_entries = [(i, j, _merge_powers(jac[i, j])) for i in range(n) for j in range(n) if jac[i, j] != 0]
    lu = SparseLU(n, [(i, j) for i, j, _ in jac_entries])

    def block(name, args, exprs, assign, alloc):
        replacements, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("x"), optimizations=None)
        lines = ['@nb.njit(cache=True, error_model="numpy")', f"def {name}({args}):", f"    {alloc}"]
        for sym, ex in replacements:
            lines.append(f"    {sym} = {printer.doprint(ex)}")
        for target, ex in zip(assign, reduced):
            lines.append(f"    {target} = {printer.doprint(ex)}")
        lines.append("    return out")
        return "\n".join(lines)

    parts = [
        f'"""Generated by mhimmune.compile (codegen {CODEGEN_VERSION}) for model '
        f'{model.name!r}, structure key {key}. Do not edit."""',
        "import math", "import numpy as np", "import numba as nb", "",
        "@nb.njit(cache=True, inline='always')",
        "def _spow(b, e):",
        "    if b > 0.0:",
        "        return b ** e",
        "    if e == 0.0:",
        "        return 1.0",
        "    return 0.0 if e > 0.0 else math.inf",
        "",
        block("rhs", "y, t, p", odes, [f"out[{i}]" for i in range(n)], f"out = np.empty({n})"),
        "",
        block("jac_sparse", "y, t, p", [e for _, _, e in jac_entries],
              [f"out[{lu.position(i, j)}]" for i, j, _ in jac_entries], f"out = np.zeros({lu.nnz})"),
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
        block("init", "p", init, [f"out[{i}]" for i in range(n)], f"out = np.empty({n})"),
        "",
        block("derived", "y, p", derived, [f"out[{i}]" for i in range(len(derived))],
              f"out = np.empty({len(derived)})"),
        "",
        block("bolus_scales", "p", bolus_exprs or [sympy.Integer(0)],
              [f"out[{i}]" for i in range(max(1, len(bolus_exprs)))],
              f"out = np.empty({max(1, len(bolus_exprs))})"),
        "",
        "@nb.njit(cache=True)",
        "def derived_series(Y, p):",
        f"    out = np.empty((Y.shape[0], {len(derived)}))",
        "    for k in range(Y.shape[0]):",
        "        out[k, :] = derived(Y[k], p)",
        "    return out",
        "",
    ]
    parts += [_KERNEL, "",
              "@nb.njit(cache=True)",
              "def integrate(y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init):",
              "    return bdf_segment(y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init,",
              "                       LU_DIAG, LU_OP_T, LU_OP_A, LU_OP_B, LU_PERM, LU_FW_PTR, LU_FW_COL,",
              "                       LU_FW_IDX, LU_BW_PTR, LU_BW_COL, LU_BW_IDX, LU_NNZ)", ""]
    source = "\n".join(parts)
    meta = dict(species=[species_label(s) for s in model.species], parameters=pnames,
                derived_names=derived_names, bolus_kinds=bolus_kinds,
                bolus_species=bolus_species, bolus_modes=bolus_modes,
                n_reactions=len(model.reactions))
    labels = meta["species"]
    if len(set(labels)) != len(labels):
        raise ModelError("species labels are not unique; give monomer sites distinct states")
    return source, meta
