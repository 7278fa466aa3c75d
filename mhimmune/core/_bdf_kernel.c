/* Stiff integrator appended to every generated model (C backend of mhimmune.compile).
 *
 * The same algorithm as _bdf_kernel.py: variable-order (1-5) NDF/BDF in the form of
 * Shampine & Reichelt (1997, SIAM J Sci Comput 18:1), the method of ode15s and scipy's
 * BDF; the Newton matrix I - cJ is factorised by a static-pivot sparse LU whose operation
 * list (Markowitz ordering, symbolic fill-in) is computed at compile time, as in
 * KPP-generated chemistry solvers (Sandu et al. 1997, Atmos Environ 31:3459).
 *
 * Jacobian reuse as in scipy's BDF and CVODE (Hindmarsh et al. 2005, ACM TOMS 31:363):
 * J is kept across steps and re-evaluated at the start of every call (segment), every
 * MSBJ accepted steps, and after a Newton convergence failure with a J older than the
 * current step (the step is then retried with the same h; only a failure with a fresh J
 * halves h). The LU of I - cJ is refactorised whenever c = h / alpha_k changes (step size
 * or order) or J is re-evaluated; the sparse LU costs about five right-hand sides, less
 * than the extra Newton iterations a matrix with an outdated c would cost (CVODE's 30 %
 * tolerance on c measured slower here). Newton convergence is judged by the observed
 * contraction rate (scipy's solve_bdf_system, at least two iterations): a stale J only
 * slows convergence, it cannot make a step accept an unconverged solution.
 *
 * The generated part above defines N, LU_NNZ, the LU index arrays, rhs() and
 * jac_sparse(). Times are segment-local: the model is autonomous.
 */
/* --- begin kernel --- */
#define MAX_ORDER 5
#define NEWTON_MAXITER 4
#define MIN_FACTOR 0.2
#define MAX_FACTOR 10.0
#define MSBJ 20  /* re-evaluate J at least every MSBJ accepted steps */

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

static double rms(const double *x, const double *scale, double factor) {
    double s = 0.0;
    for (int i = 0; i < N; i++) {
        double v = factor * x[i] / scale[i];
        s += v * v;
    }
    return sqrt(s / N);
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

/* W = I - c J in the filled pattern, then LU in place; 0 on a vanishing pivot */
static int factor(double *w, const double *jv, double c) {
    for (int k = 0; k < LU_NNZ; k++) w[k] = -c * jv[k];
    for (int i = 0; i < N; i++) w[LU_DIAG[i]] += 1.0;
    for (int k = 0; k < LU_NOPS; k++) {
        int b = LU_OP_B[k];
        if (b < 0) {
            double piv = w[LU_OP_A[k]];
            if (fabs(piv) < 1e-12) return 0;
            w[LU_OP_T[k]] /= piv;
        } else {
            w[LU_OP_T[k]] -= w[LU_OP_A[k]] * w[b];
        }
    }
    for (int i = 0; i < N; i++)
        if (fabs(w[LU_DIAG[i]]) < 1e-12) return 0;
    return 1;
}

static void lu_solve(const double *w, const double *b, double *out) {
    double x[N];
    for (int i = 0; i < N; i++) x[i] = b[LU_PERM[i]];
    for (int i = 0; i < N; i++) {
        double s = x[i];
        for (int k = LU_FW_PTR[i]; k < LU_FW_PTR[i + 1]; k++) s -= w[LU_FW_IDX[k]] * x[LU_FW_COL[k]];
        x[i] = s;
    }
    for (int i = N - 1; i >= 0; i--) {
        double s = x[i];
        for (int k = LU_BW_PTR[i]; k < LU_BW_PTR[i + 1]; k++) s -= w[LU_BW_IDX[k]] * x[LU_BW_COL[k]];
        x[i] = s / w[LU_DIAG[i]];
    }
    for (int i = 0; i < N; i++) out[LU_PERM[i]] = x[i];
}

/* for tests: solve (I - cJ(y)) x = b with the sparse LU; returns 0 on a vanishing pivot */
int newton_solve(const double *y, const double *p, double c, const double *b, double *x) {
    double jv[LU_NNZ], w[LU_NNZ];
    jac_sparse(y, p, jv);
    if (!factor(w, jv, c)) return 0;
    lu_solve(w, b, x);
    return 1;
}

/* Integrate from t0 to t1 (segment-local times), writing states at tout[0..nout) into Y
 * (row-major) and the final state into y_end. Returns 0 success, 1 too many steps,
 * 2 step size too small, 3 non-finite state. stats: steps, rhs, jac, LU. */
int integrate(const double *y0, double t0, double t1, const double *tout, int nout,
              const double *p, double rtol, double atol, double hmax, long max_steps,
              double *Y, double *y_end, long *stats) {
    init_constants();
    double D[(MAX_ORDER + 3) * N];  /* on the stack: re-entrant, safe for threads */
    double y[N], f[N], y1[N], f1[N], scale[N], y_pred[N], psi[N], yn[N], d[N], dy[N], rhs_b[N];
    double jv[LU_NNZ], w[LU_NNZ];
    int k_out = 0, order = 1, n_equal = 0, code = 0;
    /* current_jac: J was evaluated since the last accepted step; jac_age: accepted steps
     * since J was evaluated; lu_ok: w holds the LU of I - lu_c J for the J in jv */
    int current_jac, jac_age = 0, lu_ok = 0;
    double t = t0, h_abs, h = 0.0, lu_c = 0.0, safety = 0.9;
    stats[0] = stats[1] = stats[2] = stats[3] = 0;
    memcpy(y, y0, sizeof y);
    while (k_out < nout && tout[k_out] <= t0) { memcpy(Y + k_out * N, y0, sizeof y); k_out++; }
    if (t1 <= t0) { memcpy(y_end, y, sizeof y); return 0; }
    rhs(y, p, f); stats[1]++;
    double span = t1 - t0;
    for (int i = 0; i < N; i++) scale[i] = atol + rtol * fabs(y[i]);
    double d0 = rms(y, scale, 1.0), d1 = rms(f, scale, 1.0);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    if (h0 > span) h0 = span;
    for (int i = 0; i < N; i++) y1[i] = y[i] + h0 * f[i];
    rhs(y1, p, f1); stats[1]++;
    for (int i = 0; i < N; i++) y1[i] = f1[i] - f[i];
    double d2 = rms(y1, scale, 1.0) / h0;
    double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? fmax(1e-6, h0 * 1e-3) : sqrt(0.01 / fmax(d1, d2));
    h_abs = fmin(fmin(100 * h0, h1), span);
    if (hmax > 0 && h_abs > hmax) h_abs = hmax;
    memset(D, 0, sizeof D);
    for (int i = 0; i < N; i++) { D[i] = y[i]; D[N + i] = f[i] * h_abs; }
    jac_sparse(y, p, jv); stats[2]++;  /* always a fresh J at the start of a segment */
    current_jac = 1;
    double newton_tol = fmax(10 * 2.220446049250313e-16 / rtol, fmin(0.03, sqrt(rtol)));
    long steps = 0;
    while (t < t1) {
        if (steps >= max_steps) { code = 1; goto done; }
        double min_step = 10 * fabs(nextafter(t, INFINITY) - t);
        if (hmax > 0 && h_abs > hmax) { change_d(D, order, hmax / h_abs); h_abs = hmax; n_equal = 0; }
        if (h_abs < min_step) { change_d(D, order, min_step / h_abs); h_abs = min_step; n_equal = 0; }
        if (jac_age >= MSBJ) {
            jac_sparse(y, p, jv); stats[2]++;
            current_jac = 1; jac_age = 0; lu_ok = 0;
        }
        int accepted = 0, n_iter = 0;
        double t_new = t;
        while (!accepted) {
            if (h_abs < min_step) { code = 2; goto done; }
            t_new = t + h_abs;
            if (t_new >= t1) {
                t_new = t1;
                change_d(D, order, (t1 - t) / h_abs);
                n_equal = 0;
                h_abs = t1 - t;
            }
            h = h_abs;
            for (int i = 0; i < N; i++) {
                double s = 0.0;
                for (int k = 0; k <= order; k++) s += D[k * N + i];
                y_pred[i] = s;
                scale[i] = atol + rtol * fabs(s);
                double q = 0.0;
                for (int k = 1; k <= order; k++) q += D[k * N + i] * GAMMA_[k];
                psi[i] = q / ALPHA[order];
            }
            double c = h / ALPHA[order];
            if (!lu_ok || c != lu_c) {
                stats[3]++;
                if (!factor(w, jv, c)) {
                    h_abs *= 0.5; change_d(D, order, 0.5); n_equal = 0; lu_ok = 0;
                    continue;
                }
                lu_c = c; lu_ok = 1;
            }
            int converged = 0;
            double dy_norm_old = -1.0;
            memcpy(yn, y_pred, sizeof yn);
            for (int i = 0; i < N; i++) d[i] = 0.0;
            n_iter = 0;
            for (int k = 0; k < NEWTON_MAXITER; k++) {
                rhs(yn, p, f); stats[1]++;
                int finite = 1;
                for (int i = 0; i < N; i++) if (!isfinite(f[i])) { finite = 0; break; }
                if (!finite) break;
                for (int i = 0; i < N; i++) rhs_b[i] = c * f[i] - psi[i] - d[i];
                lu_solve(w, rhs_b, dy);
                double dy_norm = rms(dy, scale, 1.0);
                double rate = dy_norm_old > 0 ? dy_norm / dy_norm_old : -1.0;
                if (rate >= 0 && (rate >= 1 || pow(rate, NEWTON_MAXITER - k) / (1 - rate) * dy_norm > newton_tol)) break;
                for (int i = 0; i < N; i++) { yn[i] += dy[i]; d[i] += dy[i]; }
                n_iter = k + 1;
                if (dy_norm == 0 || (rate >= 0 && rate / (1 - rate) * dy_norm < newton_tol)) { converged = 1; break; }
                dy_norm_old = dy_norm;
            }
            if (!converged) {
                if (!current_jac) {  /* stale J: re-evaluate it and retry the same step */
                    jac_sparse(y_pred, p, jv); stats[2]++;
                    current_jac = 1; jac_age = 0; lu_ok = 0;
                    continue;
                }
                h_abs *= 0.5; change_d(D, order, 0.5); n_equal = 0;
                continue;
            }
            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter);
            for (int i = 0; i < N; i++) scale[i] = atol + rtol * fabs(yn[i]);
            double error_norm = rms(d, scale, ERROR_CONST[order]);
            if (error_norm > 1) {
                double fct = fmax(MIN_FACTOR, safety * pow(error_norm, -1.0 / (order + 1)));
                h_abs *= fct; change_d(D, order, fct); n_equal = 0;
            } else {
                accepted = 1;
            }
        }
        steps++; stats[0]++; n_equal++;
        t = t_new;
        memcpy(y, yn, sizeof y);
        for (int i = 0; i < N; i++) {
            D[(order + 2) * N + i] = d[i] - D[(order + 1) * N + i];
            D[(order + 1) * N + i] = d[i];
        }
        for (int k = order; k >= 0; k--)
            for (int i = 0; i < N; i++) D[k * N + i] += D[(k + 1) * N + i];
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
        current_jac = 0; jac_age++;
        for (int i = 0; i < N; i++) if (!isfinite(y[i])) { code = 3; goto done; }
        if (n_equal < order + 1) continue;
        for (int i = 0; i < N; i++) scale[i] = atol + rtol * fabs(y[i]);
        double e_m = order > 1 ? rms(D + order * N, scale, ERROR_CONST[order - 1]) : INFINITY;
        double e_p = order < MAX_ORDER ? rms(D + (order + 2) * N, scale, ERROR_CONST[order + 1]) : INFINITY;
        double e_n = rms(d, scale, ERROR_CONST[order]);
        double f_m = e_m > 0 ? pow(e_m, -1.0 / order) : INFINITY;
        double f_n = e_n > 0 ? pow(e_n, -1.0 / (order + 1)) : INFINITY;
        double f_p = e_p > 0 ? pow(e_p, -1.0 / (order + 2)) : INFINITY;
        int delta = 0;
        double best = f_n;
        if (f_m > best) { best = f_m; delta = -1; }
        if (f_p > best) { best = f_p; delta = 1; }
        order += delta;
        double fct = fmin(MAX_FACTOR, safety * best);
        h_abs *= fct;
        change_d(D, order, fct);
        n_equal = 0;
    }
done:
    while (k_out < nout) { memcpy(Y + k_out * N, y, sizeof y); k_out++; }
    memcpy(y_end, y, sizeof y);
    return code;
}
/* --- end kernel --- */
