"""A composed PySB model as equations: the network's ODEs, sparse Jacobian and LU ordering.

BioNetGen expands the rules into species and reactions; every rate is turned into a sympy
expression in ``y[i]`` (species) and ``p[j]`` (parameters) with Expressions and
Observables inlined. The ODEs are f = S·v(y) and the sparse Jacobian J = S·dv/dy (each
rate differentiated once, by the species it depends on). :class:`SparseLU` fixes the
pivot order and fill-in of I - cJ at compile time. :func:`network_equations` returns a
:class:`Symbolic` (input of :mod:`mhimmune.core.codegen`) and the names indexing its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy
from pysb.bng import generate_equations
from pysb.core import Expression, Observable

from mhimmune.core.errors import ModelError
from mhimmune.core.modelkit import Builder

__all__ = ["Symbolic", "SparseLU", "network_equations", "species_label"]


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

    def named_arrays(self) -> list[tuple[str, list[int]]]:
        """The integer arrays both backends compile in, by name and in order: the
        factorisation (diagonal, operations, ordering), the triangular solves and where
        each Jacobian entry lands in the factor."""
        fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx = self.triangles()
        idx, n = self.index, self.n
        ints = lambda values: [int(v) for v in values]  # noqa: E731
        return [
            ("LU_DIAG", ints(idx[i, i] for i in range(n))),
            ("LU_OP_T", ints(self.ops[:, 0])),
            ("LU_OP_A", ints(self.ops[:, 1])),
            ("LU_OP_B", ints(self.ops[:, 2])),
            ("LU_PERM", ints(self.order)),
            ("LU_FW_PTR", ints(fw_ptr)),
            ("LU_FW_COL", ints(fw_col)),
            ("LU_FW_IDX", ints(fw_idx)),
            ("LU_BW_PTR", ints(bw_ptr)),
            ("LU_BW_COL", ints(bw_col)),
            ("LU_BW_IDX", ints(bw_idx)),
            ("JAC_ROWS", [i for i, _ in self.entries]),
            ("JAC_COLS", [j for _, j in self.entries]),
            ("JAC_POS", [self.position(i, j) for i, j in self.entries]),
        ]

    def source(self) -> str:
        """Module-level numpy arrays describing the factorisation and triangular solves."""
        lines = [f"LU_NNZ = {self.nnz}"]
        lines += [f"{k} = np.array({v!r}, dtype=np.int64)" for k, v in self.named_arrays()]
        return "\n".join(lines)


def network_equations(b: Builder) -> tuple[Symbolic, dict]:
    """Equations of builder *b*'s network and the names indexing the generated arrays."""
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
    sym = Symbolic(
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
    labels = [species_label(s) for s in model.species]
    if len(set(labels)) != len(labels):
        raise ModelError("species labels are not unique; give monomer sites distinct states")
    return sym, meta


@dataclass
class Symbolic:
    """The model's equations in terms of y[i] and p[j], ready for code generation."""

    n: int
    odes: list
    jac_entries: list
    lu: SparseLU
    init: list
    derived: list
    bolus_exprs: list
