"""The compiled functions of a model: :class:`CompiledModel` and the C library front.

A compiled model is a folder holding ``meta.json`` (species, parameter, derived and bolus
names) and either a shared library (C backend, called through :class:`CModule` by ctypes)
or a generated Python module of numba functions. :func:`load_compiled` opens such a
folder; both backends expose the same functions with the same signatures.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from mhimmune.core.errors import ModelError

__all__ = ["CompiledModel", "CModule", "load_compiled", "warm_up"]


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
    module: ModuleType | CModule
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


def load_compiled(folder: Path, key: str) -> CompiledModel:
    """Open the compiled model in cache *folder* (its ``meta.json`` and library or module)."""
    meta = json.loads((folder / "meta.json").read_text())
    kind = meta.pop("backend", "numba")
    modname = f"mhgen_{key}"
    module: ModuleType | CModule
    if kind == "c":
        module = CModule(
            folder / f"{modname}.so",
            len(meta["species"]),
            len(meta["derived_names"]),
            len(meta["bolus_kinds"]) or 1,
        )
    elif modname in sys.modules:
        module = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, folder / f"{modname}.py")
        if spec is None or spec.loader is None:
            raise ModelError(f"cannot load the compiled model module in {folder}")
        py_module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = py_module
        spec.loader.exec_module(py_module)
        module = py_module
    return CompiledModel(key=key, module=module, backend=kind, **meta)


_DP = ctypes.POINTER(ctypes.c_double)

#: counters the integrator reports: steps, right-hand sides, Jacobians, LU
#: factorisations, linear solves, rejected step attempts
N_STATS = 6


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_DP)


class CModule:
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
            ctypes.c_double,
            _DP,
            _DP,
            ctypes.POINTER(ctypes.c_long),
        ]
        lib.integrate.restype = ctypes.c_int
        # integrate_into and derived_into pass array addresses as integers (no ctypes
        # pointer objects per call); lib["name"] is a second handle with its own argtypes
        vp, dbl = ctypes.c_void_p, ctypes.c_double
        self._integrate_addr = lib["integrate"]
        self._integrate_addr.argtypes = [vp, dbl, dbl, vp, ctypes.c_int, vp, dbl, dbl, dbl]
        self._integrate_addr.argtypes += [ctypes.c_long, dbl, vp, vp, vp]
        self._integrate_addr.restype = ctypes.c_int
        self._init_addr, self._scales_addr = lib["init"], lib["bolus_scales"]
        self._init_addr.argtypes = self._scales_addr.argtypes = [vp, vp]
        self._derived_addr = lib["derived_series"]
        self._derived_addr.argtypes = [ctypes.c_int, vp, vp, vp]
        self._schedule_addr = lib["integrate_schedule"]
        i32, i64 = ctypes.c_int, ctypes.c_long
        self._schedule_addr.argtypes = [i32, vp, vp, vp, vp, vp, i32, vp, vp, vp, vp, vp, vp]
        self._schedule_addr.argtypes += [vp, dbl, dbl, i64, dbl, vp, vp, vp, vp, vp, vp]
        self._schedule_addr.restype = ctypes.c_int

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
        self._init_addr(p.ctypes.data, out.ctypes.data)
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
        self._scales_addr(p.ctypes.data, out.ctypes.data)
        return out

    def newton_solve(self, y, p, c, b):
        y, p, b, out = self._c(y), self._c(p), self._c(b), np.empty(self.n)
        if not self._lib.newton_solve(_ptr(y), _ptr(p), float(c), _ptr(b), _ptr(out)):
            out[:] = np.nan
        return out

    def integrate_into(self, y0, span, tout, p, rtol, atol, hmax, max_steps, out, newton_tol=0.0):
        """Integrate from 0 to *span* writing the states at *tout* into the rows of *out*
        (C-contiguous, float64, ``len(tout)`` rows); return (status code, statistics).
        *newton_tol*: the Newton error allowed as a fraction of the local error tolerance
        (0: the integrator's default, 0.03).

        One segment, as the segment-by-segment loop of
        :func:`mhimmune.core.simulate.integrate` calls it (:meth:`integrate_schedule` runs
        all segments in one call): *y0*, *tout* and *p* must be C-contiguous float64
        arrays (not checked, not copied).
        """
        stats, y_end = np.empty(N_STATS, dtype=np.int64), np.empty(self.n)
        code = self._integrate_addr(
            y0.ctypes.data,
            0.0,
            span,
            tout.ctypes.data,
            tout.shape[0],
            p.ctypes.data,
            rtol,
            atol,
            hmax,
            max_steps,
            newton_tol,
            out.ctypes.data,
            y_end.ctypes.data,
            stats.ctypes.data,
        )
        return code, stats

    def integrate_schedule(
        self,
        bounds,
        row_start,
        time_h,
        y,
        p,
        input_idx,
        input_val,
        jump_ptr,
        jump_state,
        jump_amount,
        jump_topup,
        hmax,
        rtol,
        atol,
        max_steps,
        states,
        derived,
        pre_jump,
        stats,
        newton_tol=0.0,
    ) -> tuple[int, int]:
        """All segments of a schedule in one call (the C library's ``integrate_schedule``):
        returns (status code, failing segment). Arrays must be C-contiguous with the
        dtypes and sizes the C function documents (float64; int64 for *row_start*,
        *jump_ptr* and *stats*; int32 for the index arrays); *y* and *p* are updated in
        place, *states*, *derived* and *pre_jump* are written. Not checked. *newton_tol*:
        as :meth:`integrate_into`."""
        failed = np.zeros(1, dtype=np.int32)
        t_local = np.empty(len(time_h))
        code = self._schedule_addr(
            len(bounds) // 2,
            bounds.ctypes.data,
            row_start.ctypes.data,
            time_h.ctypes.data,
            y.ctypes.data,
            p.ctypes.data,
            len(input_idx),
            input_idx.ctypes.data,
            input_val.ctypes.data,
            jump_ptr.ctypes.data,
            jump_state.ctypes.data,
            jump_amount.ctypes.data,
            jump_topup.ctypes.data,
            hmax.ctypes.data,
            rtol,
            atol,
            max_steps,
            newton_tol,
            states.ctypes.data,
            derived.ctypes.data,
            pre_jump.ctypes.data,
            stats.ctypes.data,
            failed.ctypes.data,
            t_local.ctypes.data,
        )
        return int(code), int(failed[0])

    def derived_into(self, Y, p, out):
        """Derived quantities of the rows of *Y* into *out* (C-contiguous float64, as
        :meth:`integrate_into`)."""
        self._derived_addr(Y.shape[0], Y.ctypes.data, p.ctypes.data, out.ctypes.data)

    def integrate(self, y0, t0, t1, tout, p, rtol, atol, hmax, max_steps, h_init, newton_tol=0.0):
        y0, tout, p = self._c(y0), self._c(tout), self._c(p)
        Y = np.empty((tout.shape[0], self.n))
        y_end = np.empty(self.n)
        stats = np.zeros(N_STATS, dtype=np.int64)
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
            float(newton_tol),
            _ptr(Y),
            _ptr(y_end),
            stats.ctypes.data_as(ctypes.POINTER(ctypes.c_long)),
        )
        return Y, y_end, code, stats, 0.0


def warm_up(c: CompiledModel) -> None:
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
