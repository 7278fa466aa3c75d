"""Stiff integrator appended (as source text) to every generated model module.

A variable-order (1-5) backward-differentiation integrator in the numerical
differentiation formula (NDF) form of Shampine & Reichelt (1997, SIAM J Sci Comput
18:1), the method of MATLAB's ode15s and scipy's BDF, written for numba so that a whole
schedule segment runs without returning to Python. The Newton matrix I - cJ is
factorised by a sparse LU with a fixed pivot order (Markowitz ordering of the
model's Jacobian pattern, computed once at compile time) as in KPP-generated chemistry
solvers (Sandu et al. 1997, Atmos Environ 31:3459); its operations are given as index
arrays, so the LU of an 80-species model costs about a thousand multiply-adds.

Newton iteration, Jacobian and matrix reuse follow CVODE (Hindmarsh et al. 2005, ACM
TOMS 31:363): the Jacobian is evaluated at the start of every call (segment), every
``MSBJ`` accepted steps, and after a Newton convergence failure with a Jacobian older
than the current step (the step is then retried with the same h; only a failure with a
fresh Jacobian halves h). The LU of I - cJ is refactorised when J is re-evaluated, every
``MSBP`` accepted steps, after an error-test failure, or when c = h / alpha_k moved by
more than ``DGMAX`` from the factorised c; in between, the Newton correction is scaled
by 2 / (1 + c / c_LU). Newton stops when the estimated remaining error is below
``NLSCOEF`` (or the caller's ``newton_tol``) of the local error tolerance: the first
correction's norm itself, later ones times the contraction rate estimate ``crate`` (kept
across steps, reset to 1 by a refactorisation). CVODE also weights the first correction
by a ``crate`` carried from earlier steps; here that let first corrections up to 30x too
large pass as converged, biasing ablative runs by 1e-3 of their readouts at rtol 1e-6. A
stale matrix only slows convergence (the rate test then fails and J is refreshed), it
cannot make a step accept an unconverged solution. On an error-test failure h shrinks
(at most to ``ETAMXF`` of it from the second failure of a step on) and from the
``MXNEF1``-th failure the order drops to 1 with a fresh derivative (CVODE's path). After
a successful step, h and the order are kept unless the step could grow by ``THRESH``
(CVODE's rule), which leaves c, and so the LU, unchanged. ``_bdf_kernel.c`` implements
the same algorithm operation by operation (its LU is generated as straight-line code
with the same operations in the same order).

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
MSBJ = 10  # re-evaluate the Jacobian at least every MSBJ accepted steps (CVODE: 50; with
# 20 or more, runs in ablative corners of the schedule design fail)
MSBP = 20  # refactorise I - cJ at least every MSBP accepted steps
DGMAX = 0.3  # refactorise when c = h / alpha_k changed by more than this fraction
NLSCOEF = 0.03  # Newton error allowed, as a fraction of the local error tolerance, when the
# caller passes newton_tol <= 0 (CVODE: 0.1, which here leaves 2e-4 relative global errors
# at rtol 1e-6)
CRDOWN = 0.3  # contraction rate estimate: crate = max(CRDOWN crate, del / del_old)
RDIV = 2.0  # Newton diverges when a correction is RDIV times the previous one
THRESH = 1.5  # keep h and order unless the step could grow by THRESH
ETAMXF = 0.2  # largest step factor after the second error-test failure of a step
MXNEF1 = 3  # error-test failures of a step after which the order drops to 1
N_STATS = 6  # steps, rhs, Jacobians, LU factorisations, linear solves, rejected attempts

_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
_GAMMA = np.zeros(MAX_ORDER + 1)
for _j in range(1, MAX_ORDER + 1):
    _GAMMA[_j] = _GAMMA[_j - 1] + 1.0 / _j
_ALPHA = (1.0 - _KAPPA) * _GAMMA
_ERROR_CONST = _KAPPA * _GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)


@nb.njit(cache=True)
def _rms(x, inv_scale):
    """Root mean square of x / scale, given the inverse weights 1 / scale."""
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i] * inv_scale[i]
        s += v * v
    return math.sqrt(s / x.shape[0])


@nb.njit(cache=True)
def _inv_weights(x, rtol, atol):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = 1.0 / (atol + rtol * abs(x[i]))
    return out


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
    """W = I - c J in the filled pattern, then LU in place with the diagonal of U
    inverted; False on a vanishing pivot.

    Operation k is ``w[t] *= 1 / w[a]`` when ``op_b[k] < 0`` (a is the pivot), else
    ``w[t] -= w[a] * w[b]``, in elimination order (the C backend generates the same
    operations as straight-line code).
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
            r = 1.0 / piv
            w[op_t[k]] *= r
        else:
            w[op_t[k]] -= w[op_a[k]] * w[b]
    for i in range(diag.shape[0]):
        if abs(w[diag[i]]) < 1e-12:
            return False
        w[diag[i]] = 1.0 / w[diag[i]]
    return True


@nb.njit(cache=True)
def _solve(w, b, perm, fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx, diag_perm):
    """Solve (LU) x = b for the permuted system (U's diagonal stored inverted); returns
    x in original order."""
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
        x[i] = s * w[diag_perm[i]]
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
    newton_tol,
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
    rounding. *newton_tol*: the Newton error allowed as a fraction of the local error
    tolerance (<= 0: ``NLSCOEF``).

    status: 0 success; 1 too many steps; 2 step size too small; 3 non-finite state.
    stats: [steps, rhs evaluations, Jacobian evaluations, LU factorisations, linear
    solves, rejected step attempts (error test, Newton or pivot failures)].
    """
    nlscoef = newton_tol if newton_tol > 0 else NLSCOEF
    n = y0.shape[0]
    nout = tout.shape[0]
    Y = np.empty((nout, n))
    stats = np.zeros(N_STATS, np.int64)
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
        scale = _inv_weights(y, rtol, atol)
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
    # current_jac: J was evaluated since the last accepted step; jac_age / lu_age:
    # accepted steps since J was evaluated / I - cJ factorised; lu_ok: w holds the LU of
    # I - lu_c J for the J in jv; crate: Newton contraction rate estimate (CVODE's)
    current_jac = True
    jac_age = 0
    lu_age = 0
    w = np.empty(nnz)
    lu_ok = False
    lu_c = 0.0
    crate = 1.0
    safety = 0.9
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
        n_err_fail = 0
        while not step_accepted:
            if not h_abs >= min_step:  # also a NaN step
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
            # predictor y_pred = sum D[k], psi = sum gamma_k D[k] / alpha (k >= 1)
            y_pred = D[0] + D[1]
            psi = D[1] * _GAMMA[1]
            for k in range(2, order + 1):
                y_pred += D[k]
                psi += D[k] * _GAMMA[k]
            psi *= 1.0 / _ALPHA[order]
            scale = _inv_weights(y_pred, rtol, atol)
            c = h / _ALPHA[order]
            if not lu_ok or lu_age >= MSBP or abs(c / lu_c - 1.0) > DGMAX:
                ok = _factor(w, jv, c, diag, op_t, op_a, op_b)
                stats[3] += 1
                if not ok:
                    stats[5] += 1
                    h_abs *= 0.5
                    _change_d(D, order, 0.5)
                    n_equal = 0
                    lu_ok = False
                    continue
                lu_c = c
                lu_ok = True
                lu_age = 0
                crate = 1.0
            # Newton iteration on the NDF system with the matrix I - lu_c J; when c
            # differs from lu_c the correction is scaled by 2 / (1 + c / lu_c) (CVODE's
            # BDF rule). Converged when the estimated remaining error is below nlscoef
            # of the local error tolerance: |dy| on the first iteration (one iteration is
            # enough when the first correction is that small), crate * |dy| on later ones.
            corr = 2.0 / (1.0 + c / lu_c)
            ntol = nlscoef / _ERROR_CONST[order]
            del_old = 0.0
            converged = False
            yn = y_pred.copy()
            d = np.zeros(n)
            n_iter = 0
            for k in range(NEWTON_MAXITER):
                fk = rhs(yn, t_new, p)
                stats[1] += 1
                dy = _solve(
                    w, c * fk - psi - d, perm, fw_ptr, fw_col, fw_idx, bw_ptr, bw_col, bw_idx, diag
                )
                stats[4] += 1
                if c != lu_c:
                    dy *= corr
                dl = _rms(dy, scale)
                if not math.isfinite(dl):
                    break  # a non-finite right-hand side: not converged
                yn += dy
                d += dy
                n_iter = k + 1
                rate = 1.0
                if k > 0:
                    crate = max(CRDOWN * crate, dl / del_old)
                    rate = min(1.0, crate)
                if dl * rate <= ntol:
                    converged = True
                    break
                if k > 0 and dl > RDIV * del_old:
                    break  # diverging
                del_old = dl
            if not converged:
                stats[5] += 1
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
            scale = _inv_weights(yn, rtol, atol)
            error_norm = _rms(d, scale) * _ERROR_CONST[order]
            if error_norm > 1:
                # error-test failure (CVODE's path): a smaller h, at most ETAMXF of it from
                # the second failure on; from the MXNEF1-th failure the order drops to 1
                # and the history restarts from a fresh derivative; the matrix is
                # refactorised for the retry
                stats[5] += 1
                n_err_fail += 1
                factor = max(MIN_FACTOR, safety * error_norm ** (-1.0 / (order + 1)))
                if n_err_fail >= 2 and factor > ETAMXF:
                    factor = ETAMXF
                h_abs *= factor
                n_equal = 0
                lu_ok = False
                if n_err_fail >= MXNEF1 and order > 1:
                    order = 1
                    f = rhs(y, t, p)
                    stats[1] += 1
                    D[1] = h_abs * f
                    D[2:] = 0.0
                else:
                    _change_d(D, order, factor)
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
        lu_age += 1
        for i in range(n):
            if not math.isfinite(y[i]):
                return Y, y, 3, stats, h_abs
        if n_equal < order + 1:
            continue
        scale = _inv_weights(y, rtol, atol)
        if order > 1:
            e_m = _rms(D[order], scale) * _ERROR_CONST[order - 1]
        else:
            e_m = np.inf
        if order < MAX_ORDER:
            e_p = _rms(D[order + 2], scale) * _ERROR_CONST[order + 1]
        else:
            e_p = np.inf
        e_n = _rms(d, scale) * _ERROR_CONST[order]
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
        factor = min(MAX_FACTOR, safety * best)
        n_equal = 0
        if 1.0 <= factor < THRESH:
            continue  # keep h and order: c unchanged, no refactorisation
        order += delta
        h_abs *= factor
        _change_d(D, order, factor)
    while k_out < nout:
        Y[k_out, :] = y
        k_out += 1
    return Y, y, 0, stats, h_abs


# --- end kernel ---
