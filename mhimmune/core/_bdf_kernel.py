"""Stiff integrator appended (as source text) to every generated model module.

A variable-order (1-5) backward-differentiation integrator in the numerical
differentiation formula (NDF) form of Shampine & Reichelt (1997, SIAM J Sci Comput
18:1), the method of MATLAB's ode15s and scipy's BDF, written for numba so that a whole
schedule segment runs without returning to Python. The Newton matrix I - cJ is
factorised by a sparse LU with a fixed pivot order (Markowitz ordering of the
model's Jacobian pattern, computed once at compile time) as in KPP-generated chemistry
solvers (Sandu et al. 1997, Atmos Environ 31:3459); its operations are given as index
arrays, so the LU of an 80-species model costs about a thousand multiply-adds.

The Jacobian is reused across steps as in scipy's BDF and CVODE (Hindmarsh et al. 2005,
ACM TOMS 31:363): it is re-evaluated at the start of every call (segment), every
``MSBJ`` accepted steps, and after a Newton convergence failure with a Jacobian older
than the current step (the step is then retried with the same h; only a failure with a
fresh Jacobian halves h). The LU of I - cJ is refactorised whenever c = h / alpha_k
changes (step size or order) or J is re-evaluated: the sparse LU costs about five
right-hand sides, less than the extra Newton iterations a matrix with an outdated c
costs (CVODE's 30 % tolerance on c measured slower here). Newton convergence is judged
by the observed contraction rate (scipy's ``solve_bdf_system``, at least two
iterations), so a stale Jacobian only slows convergence; it cannot make a step accept an
unconverged solution. ``_bdf_kernel.c`` implements the same algorithm operation by
operation.

The names ``rhs`` and ``jac_sparse`` are the generated model functions of the module
this text is appended to; the index arrays are arguments. :mod:`mhimmune.core.codegen`
copies the text between the ``begin kernel`` and ``end kernel`` markers into every
generated module (whose header imports ``math``, ``numpy as np`` and ``numba as nb``), so
the kernel is compiled against each model's own functions without a function-pointer
call per right-hand side. The imports and the stand-ins for ``rhs`` and ``jac_sparse``
above the markers only make this file valid Python for linters and type checkers;
importing it runs no integrator.
"""

import math

import numba as nb
import numpy as np


def rhs(y, t, p):  # stand-in: the generated module defines the model's right-hand side
    raise RuntimeError("the BDF kernel runs only inside a generated model module")


def jac_sparse(y, t, p):  # stand-in: the generated module defines the sparse Jacobian
    raise RuntimeError("the BDF kernel runs only inside a generated model module")


# --- begin kernel ---
MAX_ORDER = 5
NEWTON_MAXITER = 4
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
MSBJ = 20  # re-evaluate the Jacobian at least every MSBJ accepted steps

_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
_GAMMA = np.zeros(MAX_ORDER + 1)
for _j in range(1, MAX_ORDER + 1):
    _GAMMA[_j] = _GAMMA[_j - 1] + 1.0 / _j
_ALPHA = (1.0 - _KAPPA) * _GAMMA
_ERROR_CONST = _KAPPA * _GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)


@nb.njit(cache=True)
def _rms(x, scale):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i] / scale[i]
        s += v * v
    return math.sqrt(s / x.shape[0])


@nb.njit(cache=True)
def _compute_r(order, factor):
    m = np.zeros((order + 1, order + 1))
    for j in range(order + 1):
        m[0, j] = 1.0
    for i in range(1, order + 1):
        for j in range(1, order + 1):
            m[i, j] = (i - 1 - factor * j) / i
    for i in range(1, order + 1):
        for j in range(order + 1):
            m[i, j] *= m[i - 1, j]
    return m


@nb.njit(cache=True)
def _change_d(d, order, factor):
    r = _compute_r(order, factor)
    u = _compute_r(order, 1.0)
    ru = r @ u
    n = d.shape[1]
    new = np.zeros((order + 1, n))
    for i in range(order + 1):
        for k in range(order + 1):
            c = ru[k, i]
            if c != 0.0:
                for j in range(n):
                    new[i, j] += c * d[k, j]
    for i in range(order + 1):
        d[i, :] = new[i, :]


@nb.njit(cache=True)
def _factor(w, jvals, c, diag, op_t, op_a, op_b):
    """W = I - c J in the filled pattern, then LU in place; False on a vanishing pivot.

    Operation k is ``w[t] /= w[a]`` when ``op_b[k] < 0`` (a is the pivot), else
    ``w[t] -= w[a] * w[b]``, in elimination order.
    """
    for k in range(w.shape[0]):
        w[k] = -c * jvals[k]
    for i in range(diag.shape[0]):
        w[diag[i]] += 1.0
    for k in range(op_t.shape[0]):
        b = op_b[k]
        if b < 0:
            piv = w[op_a[k]]
            if abs(piv) < 1e-12:
                return False
            w[op_t[k]] /= piv
        else:
            w[op_t[k]] -= w[op_a[k]] * w[b]
    for i in range(diag.shape[0]):
        if abs(w[diag[i]]) < 1e-12:
            return False
    return True


@nb.njit(cache=True)
def _solve(w, b, perm, fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx, diag_perm):
    """Solve (LU) x = b for the permuted system; returns x in original order."""
    n = b.shape[0]
    x = np.empty(n)
    for i in range(n):
        x[i] = b[perm[i]]
    for i in range(n):  # forward: L has unit diagonal
        s = x[i]
        for k in range(fw_ptr[i], fw_ptr[i + 1]):
            s -= w[fw_idx[k]] * x[fw_col[k]]
        x[i] = s
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(bw_ptr[i], bw_ptr[i + 1]):
            s -= w[bw_idx[k]] * x[bw_col[k]]
        x[i] = s / w[diag_perm[i]]
    out = np.empty(n)
    for i in range(n):
        out[perm[i]] = x[i]
    return out


@nb.njit(cache=True)
def bdf_segment(
    y0,
    t0,
    t1,
    tout,
    p,
    rtol,
    atol,
    hmax,
    max_steps,
    h_init,
    diag,
    op_t,
    op_a,
    op_b,
    perm,
    fw_ptr,
    fw_col,
    fw_idx,
    bw_ptr,
    bw_col,
    bw_idx,
    nnz,
):
    """Integrate dy/dt = rhs(y, t, p) from t0 to t1; return (Y at tout, y(t1), status, stats, h).

    The model is autonomous (time enters only through segment inputs), so callers pass
    segment-local times (t0 = 0) to keep tiny steps after a dose far above the clock's
    rounding.

    status: 0 success; 1 too many steps; 2 step size too small; 3 non-finite state.
    stats: [steps, rhs evaluations, Jacobian evaluations, LU factorisations].
    """
    n = y0.shape[0]
    nout = tout.shape[0]
    Y = np.empty((nout, n))
    stats = np.zeros(4, np.int64)
    y = y0.copy()
    t = t0
    k_out = 0
    while k_out < nout and tout[k_out] <= t0:
        Y[k_out, :] = y0
        k_out += 1
    if t1 <= t0:
        return Y, y, 0, stats, h_init
    f = rhs(y, t, p)
    stats[1] += 1
    span = t1 - t0
    if h_init > 0:
        h_abs = min(h_init, span)
    else:
        scale = atol + rtol * np.abs(y)
        d0 = _rms(y, scale)
        d1 = _rms(f, scale)
        h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h0 = min(h0, span)
        y1 = y + h0 * f
        f1 = rhs(y1, t + h0, p)
        stats[1] += 1
        d2 = _rms(f1 - f, scale) / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** 0.5
        h_abs = min(100 * h0, h1, span)
    if hmax > 0:
        h_abs = min(h_abs, hmax)
    D = np.zeros((MAX_ORDER + 3, n))
    D[0, :] = y
    D[1, :] = f * h_abs
    order = 1
    n_equal = 0
    jv = jac_sparse(y, t, p)  # always a fresh Jacobian at the start of a segment
    stats[2] += 1
    # current_jac: J was evaluated since the last accepted step; jac_age: accepted steps
    # since J was evaluated; lu_ok: w holds the LU of I - lu_c J for the J in jv
    current_jac = True
    jac_age = 0
    w = np.empty(nnz)
    lu_ok = False
    lu_c = 0.0
    newton_tol = max(10 * 2.220446049250313e-16 / rtol, min(0.03, rtol**0.5))
    steps = 0
    while t < t1:
        if steps >= max_steps:
            return Y, y, 1, stats, h_abs
        # ---- one step ----
        min_step = 10 * abs(np.nextafter(t, np.inf) - t)
        if hmax > 0 and h_abs > hmax:
            _change_d(D, order, hmax / h_abs)
            h_abs = hmax
            n_equal = 0
        if h_abs < min_step:
            _change_d(D, order, min_step / h_abs)
            h_abs = min_step
            n_equal = 0
        if jac_age >= MSBJ:
            jv = jac_sparse(y, t, p)
            stats[2] += 1
            current_jac = True
            jac_age = 0
            lu_ok = False
        step_accepted = False
        while not step_accepted:
            if h_abs < min_step:
                return Y, y, 2, stats, h_abs
            # the step is h_abs exactly (the differences D are scaled to it); t_new only
            # carries the rounding of the clock, which an autonomous system never sees
            t_new = t + h_abs
            if t_new >= t1:
                t_new = t1
                factor = (t1 - t) / h_abs
                _change_d(D, order, factor)
                n_equal = 0
                h_abs = t1 - t
            h = h_abs
            y_pred = np.zeros(n)
            for i in range(order + 1):
                y_pred += D[i]
            scale = atol + rtol * np.abs(y_pred)
            psi = np.zeros(n)
            for i in range(1, order + 1):
                psi += D[i] * _GAMMA[i]
            psi /= _ALPHA[order]
            c = h / _ALPHA[order]
            if not lu_ok or c != lu_c:
                ok = _factor(w, jv, c, diag, op_t, op_a, op_b)
                stats[3] += 1
                if not ok:
                    h_abs *= 0.5
                    _change_d(D, order, 0.5)
                    n_equal = 0
                    lu_ok = False
                    continue
                lu_c = c
                lu_ok = True
            # Newton iteration for the NDF system
            converged = False
            yn = y_pred.copy()
            d = np.zeros(n)
            dy_norm_old = -1.0
            n_iter = 0
            for k in range(NEWTON_MAXITER):
                fk = rhs(yn, t_new, p)
                stats[1] += 1
                finite = True
                for i in range(n):
                    if not math.isfinite(fk[i]):
                        finite = False
                        break
                if not finite:
                    break
                dy = _solve(
                    w, c * fk - psi - d, perm, fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx, diag
                )
                dy_norm = _rms(dy, scale)
                rate = -1.0
                if dy_norm_old > 0:
                    rate = dy_norm / dy_norm_old
                if rate >= 0 and (
                    rate >= 1 or rate ** (NEWTON_MAXITER - k) / (1 - rate) * dy_norm > newton_tol
                ):
                    break
                yn += dy
                d += dy
                n_iter = k + 1
                if dy_norm == 0 or (rate >= 0 and rate / (1 - rate) * dy_norm < newton_tol):
                    converged = True
                    break
                dy_norm_old = dy_norm
            if not converged:
                if not current_jac:
                    # stale Jacobian: re-evaluate it and retry the same step
                    jv = jac_sparse(y_pred, t_new, p)
                    stats[2] += 1
                    current_jac = True
                    jac_age = 0
                    lu_ok = False
                    continue
                h_abs *= 0.5
                _change_d(D, order, 0.5)
                n_equal = 0
                continue
            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter)
            scale = atol + rtol * np.abs(yn)
            error_norm = _rms(_ERROR_CONST[order] * d, scale)
            if error_norm > 1:
                factor = max(MIN_FACTOR, safety * error_norm ** (-1.0 / (order + 1)))
                h_abs *= factor
                _change_d(D, order, factor)
                n_equal = 0
            else:
                step_accepted = True
        # ---- accepted: update differences, dense output, order and step ----
        steps += 1
        stats[0] += 1
        n_equal += 1
        t = t_new
        y = yn
        D[order + 2] = d - D[order + 1]
        D[order + 1] = d
        for i in range(order, -1, -1):
            D[i] += D[i + 1]
        while k_out < nout and tout[k_out] <= t:
            # NDF interpolant through the last order+1 points (scipy's BdfDenseOutput form)
            tt = tout[k_out]
            val = D[0].copy()
            prod = 1.0
            for j in range(order):
                prod *= (tt - (t - h * j)) / (h * (1 + j))
                val += D[j + 1] * prod
            Y[k_out, :] = val
            k_out += 1
        current_jac = False
        jac_age += 1
        for i in range(n):
            if not math.isfinite(y[i]):
                return Y, y, 3, stats, h_abs
        if n_equal < order + 1:
            continue
        scale = atol + rtol * np.abs(y)
        if order > 1:
            e_m = _rms(_ERROR_CONST[order - 1] * D[order], scale)
        else:
            e_m = np.inf
        if order < MAX_ORDER:
            e_p = _rms(_ERROR_CONST[order + 1] * D[order + 2], scale)
        else:
            e_p = np.inf
        e_n = _rms(_ERROR_CONST[order] * d, scale)
        f_m = e_m ** (-1.0 / order) if e_m > 0 else np.inf
        f_n = e_n ** (-1.0 / (order + 1)) if e_n > 0 else np.inf
        f_p = e_p ** (-1.0 / (order + 2)) if e_p > 0 else np.inf
        delta = 0
        best = f_n
        if f_m > best:
            best = f_m
            delta = -1
        if f_p > best:
            best = f_p
            delta = 1
        order += delta
        factor = min(MAX_FACTOR, safety * best)
        h_abs *= factor
        _change_d(D, order, factor)
        n_equal = 0
    while k_out < nout:
        Y[k_out, :] = y
        k_out += 1
    return Y, y, 0, stats, h_abs


# --- end kernel ---
