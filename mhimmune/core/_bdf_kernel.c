/* Stiff integrator appended to every generated model (C backend of mhimmune.compile).
 *
 * The same algorithm as _bdf_kernel.py: variable-order (1-5) NDF/BDF in the form of
 * Shampine & Reichelt (1997, SIAM J Sci Comput 18:1), the method of ode15s and scipy's
 * BDF; the Newton matrix I - cJ is factorised by a static-pivot sparse LU whose operation
 * list (Markowitz ordering, symbolic fill-in) is computed at compile time, as in
 * KPP-generated chemistry solvers (Sandu et al. 1997, Atmos Environ 31:3459).
 *
 * Newton iteration, Jacobian and matrix reuse as in CVODE (Hindmarsh et al. 2005, ACM TOMS
 * 31:363): J is evaluated at the start of every call (segment), every MSBJ accepted steps
 * and after a Newton convergence failure with a J older than the current step (the step
 * is then retried with the same h; only a failure with a fresh J halves h). The LU of
 * I - cJ is refactorised when J is re-evaluated, every MSBP accepted steps, after an
 * error-test failure, or when c = h / alpha_k moved by more than DGMAX from the
 * factorised c; in between, the Newton correction is scaled by 2 / (1 + c / c_LU).
 * Newton stops when the estimated remaining error is below NLSCOEF (or the caller's
 * newton_tol) of the local error tolerance: the first correction's norm itself, later ones times the contraction rate
 * estimate crate (kept across steps, 1 after a refactorisation). CVODE also weights the
 * first correction by a crate carried from earlier steps; here that let first
 * corrections up to 30x too large pass as converged, biasing ablative runs by 1e-3 of
 * their readouts at rtol 1e-6. A stale matrix can only slow convergence (the rate test then
 * fails and J is refreshed), never accept an unconverged step. On an error-test failure
 * h shrinks (at most to ETAMXF of it from the second failure of a step on) and from the
 * MXNEF1-th failure the order drops to 1 with a fresh derivative (CVODE's path). After a
 * successful step, h and the order are kept unless the step could grow by THRESH
 * (CVODE's rule), which leaves c, and so the LU, unchanged.
 *
 * The generated part above defines N, LU_NNZ, the LU index arrays, rhs(), jac_sparse(),
 * derived() and the straight-line factor() and lu_solve(); each of the first three also as
 * name_pc(p, pc), which evaluates its parameter-only sub-expressions into pc (name_NPC
 * doubles), and name_core(..., pc, out), the rest: the parameters are constant within a
 * segment, so pc is filled once per segment. Times are segment-local: the model is
 * autonomous.
 */
/* --- begin kernel --- */
#define MAX_ORDER 5
#define NEWTON_MAXITER 4
#define MIN_FACTOR 0.2
#define MAX_FACTOR 10.0
#define MSBJ 10      /* re-evaluate J at least every MSBJ accepted steps (CVODE: 50; with
                        20 or more, runs in ablative corners of the schedule design fail) */
#define MSBP 20      /* refactorise I - cJ at least every MSBP accepted steps */
#define DGMAX 0.3    /* refactorise when c = h / alpha_k changed by more than this fraction */
#define NLSCOEF 0.03 /* Newton error allowed, as a fraction of the local error tolerance, when
                        the caller passes newton_tol <= 0 (CVODE: 0.1, which here leaves 2e-4
                        relative global errors at rtol 1e-6) */
#define CRDOWN 0.3   /* contraction rate estimate: crate = max(CRDOWN crate, del / del_old) */
#define RDIV 2.0     /* Newton diverges when a correction is RDIV times the previous one */
#define THRESH 1.5   /* keep h and order unless the step could grow by THRESH */
#define ETAMXF 0.2   /* largest step factor after the second error-test failure of a step */
#define MXNEF1 3     /* error-test failures of a step after which the order drops to 1 */
#define N_STATS 6

static const double KAPPA[MAX_ORDER + 1] = {0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0};
static double GAMMA_[MAX_ORDER + 1], ALPHA[MAX_ORDER + 1], ERROR_CONST[MAX_ORDER + 2];
static int constants_ready = 0;

static void init_constants(void) {
    if (constants_ready) return;
    GAMMA_[0] = 0.0;
    for (int j = 1; j <= MAX_ORDER; j++) GAMMA_[j] = GAMMA_[j - 1] + 1.0 / j;
    for (int j = 0; j <= MAX_ORDER; j++) ALPHA[j] = (1.0 - KAPPA[j]) * GAMMA_[j];
    for (int j = 0; j <= MAX_ORDER; j++) ERROR_CONST[j] = KAPPA[j] * GAMMA_[j] + 1.0 / (j + 1);
    ERROR_CONST[MAX_ORDER + 1] = 1.0 / (MAX_ORDER + 2);
    constants_ready = 1;
}

/* root mean square of factor * x / scale, given the inverse weights 1 / scale */
static double rms(const double *restrict x, const double *restrict inv_scale, double factor) {
    double s = 0.0;
    for (int i = 0; i < N; i++) {
        double v = x[i] * inv_scale[i];
        s += v * v;
    }
    return fabs(factor) * sqrt(s / N);
}

static void inv_weights(const double *restrict x, double rtol, double atol, double *restrict out) {
    for (int i = 0; i < N; i++) out[i] = 1.0 / (atol + rtol * fabs(x[i]));
}

/* The loops of one step below fuse passes over the N components that the plain algorithm
 * makes one after another (predictor, weights, norms, history update): each component
 * sees the same operations in the same order, and every norm sums its squares in index
 * order as rms() does, so the results are bitwise those of the separate passes. The sums
 * are chains of dependent additions; fused, the other work of a pass runs alongside. */

/* 1 when x[i] is finite for every i (exponent bits not all ones; vectorisable) */
static int all_finite(const double *restrict x) {
    unsigned long long bad = 0;
    for (int i = 0; i < N; i++) {
        unsigned long long u;
        memcpy(&u, x + i, sizeof u);
        bad |= (~u & 0x7ff0000000000000ULL) == 0;
    }
    return bad == 0;
}

static void compute_r(int order, double factor, double m[MAX_ORDER + 1][MAX_ORDER + 1]) {
    for (int i = 0; i <= order; i++)
        for (int j = 0; j <= order; j++) m[i][j] = 0.0;
    for (int j = 0; j <= order; j++) m[0][j] = 1.0;
    for (int i = 1; i <= order; i++)
        for (int j = 1; j <= order; j++) m[i][j] = (i - 1 - factor * j) / (double)i;
    for (int i = 1; i <= order; i++)
        for (int j = 0; j <= order; j++) m[i][j] *= m[i - 1][j];
}

static void change_d(double *D, int order, double factor) {
    double r[MAX_ORDER + 1][MAX_ORDER + 1], u[MAX_ORDER + 1][MAX_ORDER + 1], ru[MAX_ORDER + 1][MAX_ORDER + 1];
    double tmp[(MAX_ORDER + 1) * N];
    compute_r(order, factor, r);
    compute_r(order, 1.0, u);
    for (int i = 0; i <= order; i++)
        for (int j = 0; j <= order; j++) {
            double s = 0.0;
            for (int k = 0; k <= order; k++) s += r[i][k] * u[k][j];
            ru[i][j] = s;
        }
    for (int i = 0; i <= order; i++) {
        double *row = tmp + i * N;
        for (int j = 0; j < N; j++) row[j] = 0.0;
        for (int k = 0; k <= order; k++) {
            double c = ru[k][i];
            if (c != 0.0) {
                const double *dk = D + k * N;
                for (int j = 0; j < N; j++) row[j] += c * dk[j];
            }
        }
    }
    memcpy(D, tmp, sizeof(double) * (order + 1) * N);
}

/* predictor of the step: y_pred = sum_k D[k], psi = sum_{k >= 1} gamma_k D[k] / alpha_order,
 * inv_scale = inverse weights of y_pred (per component the additions of the pass-by-pass
 * loops in the same order) */
static void predict(const double *restrict D, int order, double rtol, double atol,
                    double *restrict y_pred, double *restrict psi, double *restrict inv_scale) {
    double inv_alpha = 1.0 / ALPHA[order];
#define PREDICT(ORDER)                                                                   \
    for (int i = 0; i < N; i++) {                                                        \
        double yp = D[i] + D[N + i], ps = D[N + i] * GAMMA_[1];                          \
        for (int k = 2; k <= ORDER; k++) { yp += D[k * N + i]; ps += D[k * N + i] * GAMMA_[k]; } \
        y_pred[i] = yp; psi[i] = ps * inv_alpha;                                         \
        inv_scale[i] = 1.0 / (atol + rtol * fabs(yp));                                   \
    }
    switch (order) {  /* a constant order per loop: the compiler unrolls k and vectorises i */
    case 1: PREDICT(1) break;
    case 2: PREDICT(2) break;
    case 3: PREDICT(3) break;
    case 4: PREDICT(4) break;
    default: PREDICT(MAX_ORDER) break;
    }
#undef PREDICT
}

/* after an accepted step with correction d: D[order + 2] = d - D[order + 1],
 * D[order + 1] = d, then D[k] += D[k + 1] for k = order .. 0 */
static void update_history(double *restrict D, int order, const double *restrict d) {
#define UPDATE(ORDER)                                                                    \
    for (int i = 0; i < N; i++) {                                                        \
        D[(ORDER + 2) * N + i] = d[i] - D[(ORDER + 1) * N + i];                          \
        double acc = d[i];                                                               \
        D[(ORDER + 1) * N + i] = acc;                                                    \
        for (int k = ORDER; k >= 0; k--) { acc = D[k * N + i] + acc; D[k * N + i] = acc; } \
    }
    switch (order) {
    case 1: UPDATE(1) break;
    case 2: UPDATE(2) break;
    case 3: UPDATE(3) break;
    case 4: UPDATE(4) break;
    default: UPDATE(MAX_ORDER) break;
    }
#undef UPDATE
}

/* One Newton update: v = dy (times corr when SCALED), yn += v, d += v (from yn = y_pred,
 * d = 0 when FIRST), and the sums of squares of v * w_pred (the iteration's norm), of
 * d / weight(yn) (the error test's norm) and, when SELECT, of the next history rows
 * D[order] + d and d - D[order + 1] over weight(yn) (the order selection's norms), with
 * weight(x) = atol + rtol |x|: in sums[0..3], each summed in index order as rms() sums.
 * The flags are constants at every call, so each call is its own loop; the four sums are
 * independent chains in one pass. */
static inline __attribute__((always_inline)) void newton_update(
    const double *restrict dy, double corr, int SCALED, int FIRST, int SELECT,
    const double *restrict y_pred, double *restrict yn, double *restrict d,
    const double *restrict w_pred, const double *restrict d_m, const double *restrict d_p1,
    double rtol, double atol, double *restrict sums) {
    double s = 0.0, se = 0.0, sm = 0.0, sp = 0.0;
    for (int i = 0; i < N; i++) {
        double v = SCALED ? dy[i] * corr : dy[i], q = v * w_pred[i];
        double yi = (FIRST ? y_pred[i] : yn[i]) + v, di = (FIRST ? 0.0 : d[i]) + v;
        yn[i] = yi; d[i] = di; s += q * q;
        double sc = 1.0 / (atol + rtol * fabs(yi)), e = di * sc;
        se += e * e;
        if (SELECT) {
            double a = (d_m[i] + di) * sc, b = (di - d_p1[i]) * sc;
            sm += a * a; sp += b * b;
        }
    }
    sums[0] = s; sums[1] = se; sums[2] = sm; sums[3] = sp;
}

/* factor(w, jv, c) (W = I - cJ, LU in place, diagonal of U inverted; 0 on a vanishing
 * pivot) and lu_solve(w, b, x) are generated per model as straight-line code by
 * mhimmune.core.codegen, above this kernel. */

/* for tests: solve (I - cJ(y)) x = b with the sparse LU; returns 0 on a vanishing pivot */
int newton_solve(const double *y, const double *p, double c, const double *b, double *x) {
    double jv[LU_NNZ], w[LU_NNZ];
    jac_sparse(y, p, jv);
    if (!factor(w, jv, c)) return 0;
    lu_solve(w, b, x);
    return 1;
}

/* Integrate from t0 to t1 (segment-local times), writing states at tout[0..nout) into Y
 * (row-major) and the final state into y_end; newton_tol: the Newton error allowed as a
 * fraction of the local error tolerance (<= 0: NLSCOEF). Returns 0 success, 1 too many steps,
 * 2 step size too small, 3 non-finite state. stats: steps, rhs, jac, LU, linear solves,
 * rejected step attempts (error test or Newton failures). */
int integrate(const double *y0, double t0, double t1, const double *tout, int nout,
              const double *p, double rtol, double atol, double hmax, long max_steps,
              double newton_tol, double *Y, double *y_end, long *stats) {
    init_constants();
    const double nlscoef = newton_tol > 0 ? newton_tol : NLSCOEF;
    double rpc[rhs_NPC], jpc[jac_sparse_NPC];  /* parameter-only parts, once per segment */
    rhs_pc(p, rpc);
    jac_sparse_pc(p, jpc);
    double D[(MAX_ORDER + 3) * N];  /* on the stack: re-entrant, safe for threads */
    double y[N], f[N], y1[N], f1[N], scale[N] /* inverse weights */, y_pred[N], psi[N], yn[N], d[N], dy[N];
    double jv[LU_NNZ], w[LU_NNZ];
    int k_out = 0, order = 1, n_equal = 0, code = 0;
    /* current_jac: J was evaluated since the last accepted step; jac_age / lu_age: accepted
     * steps since J was evaluated / I - cJ factorised; lu_ok: w holds the LU of
     * I - lu_c J for the J in jv; crate: Newton contraction rate estimate (CVODE's) */
    int current_jac, jac_age = 0, lu_age = 0, lu_ok = 0;
    double t = t0, h_abs, h = 0.0, lu_c = 0.0, safety = 0.9, crate = 1.0;
    for (int i = 0; i < N_STATS; i++) stats[i] = 0;
    memcpy(y, y0, sizeof y);
    while (k_out < nout && tout[k_out] <= t0) { memcpy(Y + k_out * N, y0, sizeof y); k_out++; }
    if (t1 <= t0) { memcpy(y_end, y, sizeof y); return 0; }
    rhs_core(y, p, rpc, f); stats[1]++;
    double span = t1 - t0;
    inv_weights(y, rtol, atol, scale);
    double d0 = rms(y, scale, 1.0), d1 = rms(f, scale, 1.0);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    if (h0 > span) h0 = span;
    for (int i = 0; i < N; i++) y1[i] = y[i] + h0 * f[i];
    rhs_core(y1, p, rpc, f1); stats[1]++;
    for (int i = 0; i < N; i++) y1[i] = f1[i] - f[i];
    double d2 = rms(y1, scale, 1.0) / h0;
    double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? fmax(1e-6, h0 * 1e-3) : sqrt(0.01 / fmax(d1, d2));
    h_abs = fmin(fmin(100 * h0, h1), span);
    if (hmax > 0 && h_abs > hmax) h_abs = hmax;
    memset(D, 0, sizeof D);
    for (int i = 0; i < N; i++) { D[i] = y[i]; D[N + i] = f[i] * h_abs; }
    jac_sparse_core(y, p, jpc, jv); stats[2]++;  /* always a fresh J at the start of a segment */
    current_jac = 1;
    long steps = 0;
    while (t < t1) {
        if (steps >= max_steps) { code = 1; goto done; }
        double min_step = 10 * fabs(nextafter(t, INFINITY) - t);
        if (hmax > 0 && h_abs > hmax) { change_d(D, order, hmax / h_abs); h_abs = hmax; n_equal = 0; }
        if (h_abs < min_step) { change_d(D, order, min_step / h_abs); h_abs = min_step; n_equal = 0; }
        if (jac_age >= MSBJ) {
            jac_sparse_core(y, p, jpc, jv); stats[2]++;
            current_jac = 1; jac_age = 0; lu_ok = 0;
        }
        int accepted = 0, n_iter = 0, nef = 0;
        double t_new = t, error_norm = 0.0, sums[4] = {0.0, 0.0, 0.0, 0.0};
        while (!accepted) {
            if (!(h_abs >= min_step)) { code = 2; goto done; }  /* also a NaN step */
            t_new = t + h_abs;
            if (t_new >= t1) {
                t_new = t1;
                change_d(D, order, (t1 - t) / h_abs);
                n_equal = 0;
                h_abs = t1 - t;
            }
            h = h_abs;
            /* predictor y_pred = sum D[k], psi = sum gamma_k D[k] / alpha (k >= 1), and the
             * inverse weights of y_pred */
            predict(D, order, rtol, atol, y_pred, psi, scale);
            double c = h / ALPHA[order];
            if (!lu_ok || lu_age >= MSBP || fabs(c / lu_c - 1.0) > DGMAX) {
                stats[3]++;
                if (!factor(w, jv, c)) {
                    stats[5]++;
                    h_abs *= 0.5; change_d(D, order, 0.5); n_equal = 0; lu_ok = 0;
                    continue;
                }
                lu_c = c; lu_ok = 1; lu_age = 0; crate = 1.0;
            }
            /* Newton iteration on the NDF system with the matrix I - lu_c J; when c differs
             * from lu_c the correction is scaled by 2 / (1 + c / lu_c) (CVODE's BDF rule).
             * Converged when the estimated remaining error is below nlscoef of the local
             * error tolerance: |dy| on the first iteration (one iteration is enough when
             * the first correction is that small), crate * |dy| on later ones. */
            double corr = 2.0 / (1.0 + c / lu_c), ntol = nlscoef / ERROR_CONST[order];
            double del_old = 0.0;
            int converged = 0, scaled = c != lu_c;
            /* the order is chosen after this step if it is accepted: each iteration also
             * sums the squares its error-test and order-selection norms need */
            int select = n_equal >= order;
            const double *restrict d_m = D + order * N, *restrict d_p1 = D + (order + 1) * N;
            n_iter = 0;
            for (int k = 0; k < NEWTON_MAXITER; k++) {
                /* yn = y_pred and d = 0 before the first iteration */
                rhs_core(k == 0 ? y_pred : yn, p, rpc, f); stats[1]++;
                if (k == 0) for (int i = 0; i < N; i++) dy[i] = c * f[i] - psi[i];  /* - d = - 0 */
                else for (int i = 0; i < N; i++) dy[i] = c * f[i] - psi[i] - d[i];
                lu_solve(w, dy, dy); stats[4]++;
#define NEWTON_UPDATE(SCALED, FIRST, SELECT) \
    newton_update(dy, corr, SCALED, FIRST, SELECT, y_pred, yn, d, scale, d_m, d_p1, rtol, atol, sums)
                if (k == 0) {
                    if (scaled) { if (select) NEWTON_UPDATE(1, 1, 1); else NEWTON_UPDATE(1, 1, 0); }
                    else { if (select) NEWTON_UPDATE(0, 1, 1); else NEWTON_UPDATE(0, 1, 0); }
                } else {
                    if (scaled) { if (select) NEWTON_UPDATE(1, 0, 1); else NEWTON_UPDATE(1, 0, 0); }
                    else { if (select) NEWTON_UPDATE(0, 0, 1); else NEWTON_UPDATE(0, 0, 0); }
                }
#undef NEWTON_UPDATE
                double del = sqrt(sums[0] / N);  /* rms(dy, scale, 1.0) */
                if (!isfinite(del)) break;  /* a non-finite right-hand side: not converged */
                n_iter = k + 1;
                if (k > 0) crate = fmax(CRDOWN * crate, del / del_old);
                if (del * (k > 0 ? fmin(1.0, crate) : 1.0) <= ntol) { converged = 1; break; }
                if (k > 0 && del > RDIV * del_old) break;  /* diverging */
                del_old = del;
            }
            if (!converged) {
                stats[5]++;
                if (!current_jac) {  /* stale J: re-evaluate it and retry the same step */
                    jac_sparse_core(y_pred, p, jpc, jv); stats[2]++;
                    current_jac = 1; jac_age = 0; lu_ok = 0;
                    continue;
                }
                h_abs *= 0.5; change_d(D, order, 0.5); n_equal = 0;
                continue;
            }
            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter);
            /* rms(d, inverse weights of yn, ERROR_CONST[order]), summed with the last iteration */
            error_norm = fabs(ERROR_CONST[order]) * sqrt(sums[1] / N);
            if (error_norm > 1) {
                /* error-test failure (CVODE's path): a smaller h, at most ETAMXF of it
                 * from the second failure on; from the MXNEF1-th failure the order drops
                 * to 1 and the history restarts from a fresh derivative; the matrix is
                 * refactorised for the retry */
                stats[5]++; nef++;
                double fct = fmax(MIN_FACTOR, safety * pow(error_norm, -1.0 / (order + 1)));
                if (nef >= 2 && fct > ETAMXF) fct = ETAMXF;
                h_abs *= fct; n_equal = 0; lu_ok = 0;
                if (nef >= MXNEF1 && order > 1) {
                    order = 1;
                    rhs_core(y, p, rpc, f); stats[1]++;
                    for (int i = 0; i < N; i++) D[N + i] = h_abs * f[i];
                    memset(D + 2 * N, 0, sizeof(double) * (MAX_ORDER + 1) * N);
                } else {
                    change_d(D, order, fct);
                }
            } else {
                accepted = 1;
            }
        }
        steps++; stats[0]++; n_equal++;
        t = t_new;
        memcpy(y, yn, sizeof y);
        update_history(D, order, d);
        int finite = all_finite(y);
        while (k_out < nout && tout[k_out] <= t) {
            double tt = tout[k_out], prod = 1.0;
            double *row = Y + k_out * N;
            for (int i = 0; i < N; i++) row[i] = D[i];
            for (int j = 0; j < order; j++) {
                prod *= (tt - (t - h * j)) / (h * (1 + j));
                for (int i = 0; i < N; i++) row[i] += D[(j + 1) * N + i] * prod;
            }
            k_out++;
        }
        current_jac = 0; jac_age++; lu_age++;
        if (!finite) { code = 3; goto done; }
        if (n_equal < order + 1) continue;
        /* error estimates at the orders below and above, with the weights of yn (summed
         * with the last Newton iteration), and the error test's at the current order */
        double e_m = order > 1 ? fabs(ERROR_CONST[order - 1]) * sqrt(sums[2] / N) : INFINITY;
        double e_p = order < MAX_ORDER ? fabs(ERROR_CONST[order + 1]) * sqrt(sums[3] / N) : INFINITY;
        double e_n = error_norm;
        double f_m = e_m > 0 ? pow(e_m, -1.0 / order) : INFINITY;
        double f_n = e_n > 0 ? pow(e_n, -1.0 / (order + 1)) : INFINITY;
        double f_p = e_p > 0 ? pow(e_p, -1.0 / (order + 2)) : INFINITY;
        int delta = 0;
        double best = f_n;
        if (f_m > best) { best = f_m; delta = -1; }
        if (f_p > best) { best = f_p; delta = 1; }
        double fct = fmin(MAX_FACTOR, safety * best);
        n_equal = 0;
        if (fct >= 1.0 && fct < THRESH) continue;  /* keep h and order: c unchanged */
        order += delta;
        h_abs *= fct;
        change_d(D, order, fct);
    }
done:
    while (k_out < nout) { memcpy(Y + k_out * N, y, sizeof y); k_out++; }
    memcpy(y_end, y, sizeof y);
    return code;
}

/* A whole schedule in one call: segment k runs from bounds[2k] to bounds[2k+1] after its
 * jumps (jump_ptr[k] .. jump_ptr[k+1] - 1: state jump_state[j] gets jump_amount[j] added,
 * or is raised to it when jump_topup[j]) and with its inputs (p[input_idx[i]] =
 * input_val[k * n_inputs + i]), recording rows row_start[k] .. row_start[k + 1] of
 * states at the times time_h (the segment's end is row row_start[k + 1], overwritten by
 * the next segment's start). pre_jump (nseg + 1 rows) receives the state before each
 * segment's jumps and the final state. Then states in (-atol, 0) are recorded as 0 and
 * the derived quantities (n_derived columns) of each segment's rows are computed with its
 * inputs, the last row with the inputs 0. The same operations in the same order as the
 * segment loop of mhimmune.core.simulate.integrate. Returns 0, or the code of the failing
 * segment (its index in *failed): 1-3 as integrate(), 4 a non-finite recorded state.
 * stats: totals over the segments. t_local: nrows scratch doubles. newton_tol: as
 * integrate(). */
int integrate_schedule(int nseg, const double *bounds, const long *row_start,
                       const double *time_h, double *y, double *p, int n_inputs,
                       const int *input_idx, const double *input_val, const long *jump_ptr,
                       const int *jump_state, const double *jump_amount, const int *jump_topup,
                       const double *hmax, double rtol, double atol, long max_steps,
                       double newton_tol,
                       double *states, double *derived_out, double *pre_jump, long *stats,
                       int *failed, double *t_local) {
    long seg_stats[N_STATS];
    double y_end[N];
    for (int i = 0; i < N_STATS; i++) stats[i] = 0;
    for (int k = 0; k < nseg; k++) {
        double t0 = bounds[2 * k], t1 = bounds[2 * k + 1];
        memcpy(pre_jump + (long)k * N, y, sizeof(double) * N);
        for (long j = jump_ptr[k]; j < jump_ptr[k + 1]; j++) {
            int s = jump_state[j];
            if (jump_topup[j]) { if (jump_amount[j] > y[s]) y[s] = jump_amount[j]; }
            else y[s] += jump_amount[j];
        }
        for (int i = 0; i < n_inputs; i++) p[input_idx[i]] = input_val[(long)k * n_inputs + i];
        long i0 = row_start[k], i1 = row_start[k + 1];
        int nout = (int)(i1 + 1 - i0);
        for (int r = 0; r < nout; r++) t_local[r] = time_h[i0 + r] - t0;
        t_local[nout - 1] = t1 - t0;
        double *rows = states + i0 * N;
        int code = integrate(y, 0.0, t1 - t0, t_local, nout, p, rtol, atol, hmax[k], max_steps,
                             newton_tol, rows, y_end, seg_stats);
        for (int i = 0; i < N_STATS; i++) stats[i] += seg_stats[i];
        if (code == 0)
            for (long i = 0; i < (long)nout * N; i++)
                if (!isfinite(rows[i])) { code = 4; break; }
        if (code != 0) { *failed = k; return code; }
        memcpy(y, rows + (long)(nout - 1) * N, sizeof(double) * N);
    }
    memcpy(pre_jump + (long)nseg * N, y, sizeof(double) * N);
    long nrows = row_start[nseg] + 1;
    for (long i = 0; i < nrows * N; i++)
        if (states[i] < 0.0 && states[i] > -atol) states[i] = 0.0;
    double dpc[derived_NPC];
    for (int k = 0; k < nseg; k++) {
        for (int i = 0; i < n_inputs; i++) p[input_idx[i]] = input_val[(long)k * n_inputs + i];
        derived_pc(p, dpc);
        for (long r = row_start[k]; r < row_start[k + 1]; r++)
            derived_core(states + r * N, p, dpc, derived_out + r * N_DERIVED);
    }
    for (int i = 0; i < n_inputs; i++) p[input_idx[i]] = 0.0;
    derived(states + (nrows - 1) * N, p, derived_out + (nrows - 1) * N_DERIVED);
    return 0;
}
/* --- end kernel --- */
