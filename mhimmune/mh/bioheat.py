"""Pennes bioheat: tumour temperature from heat deposition, perfusion and conduction.

Lumped (one-compartment) model: :func:`perfusion_coefficient`,
:func:`lumped_time_constant`, :func:`lumped_tumour_temperature`; heated sphere in
tissue: :func:`sphere_conduction_coefficient`, :func:`sphere_steady_state`; and the
radial (1-D spherical) Pennes equation solved by finite volumes: :func:`radial_pennes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

from mhimmune.core.errors import ParameterError
from mhimmune.mh.physics_args import as_array, scalar_or_array

__all__ = [
    "TISSUE_DENSITY_KG_PER_M3",
    "TISSUE_HEAT_CAPACITY_J_PER_KG_K",
    "TISSUE_CONDUCTIVITY_W_PER_M_K",
    "TUMOUR_PERFUSION_W_PER_M3_K",
    "RadialPennesResult",
    "perfusion_coefficient",
    "lumped_time_constant",
    "lumped_tumour_temperature",
    "sphere_conduction_coefficient",
    "sphere_steady_state",
    "radial_pennes",
]

#: Soft-tissue density, kg/m³: generic value for the Pennes model (Pennes 1948 [pennes1948]);
#: compilation: McIntosh & Anderson 2010 [mcintosh2010], not checked against its tables.
TISSUE_DENSITY_KG_PER_M3 = 1050.0
#: Soft-tissue specific heat, J/(kg K): generic value (Pennes 1948 [pennes1948]; compilation:
#: McIntosh & Anderson 2010 [mcintosh2010], not checked against its tables).
TISSUE_HEAT_CAPACITY_J_PER_KG_K = 3600.0
#: Soft-tissue thermal conductivity, W/(m K), range 0.4–0.6 (compilation: McIntosh & Anderson
#: 2010 [mcintosh2010], not checked against its tables).
TISSUE_CONDUCTIVITY_W_PER_M_K = 0.5
#: Tumour perfusion W = ω_b ρ_b c_b = 5e-4 s⁻¹ · 1060 kg/m³ · 3800 J/(kg K), W/(m³ K)
#: (perfusion term of Pennes 1948 [pennes1948]; ω_b is a commonly quoted tumour value, primary
#: source not identified).
TUMOUR_PERFUSION_W_PER_M3_K = 5e-4 * 1060.0 * 3800.0


def perfusion_coefficient(omega_b_per_s, rho_b_kg_per_m3=1060.0, c_b_J_per_kg_K=3800.0):
    """Pennes perfusion coefficient W = ω_b ρ_b c_b in W/(m³ K).

    Parameters
    ----------
    omega_b_per_s : volumetric blood perfusion rate ω_b in 1/s (≥ 0); tumour ≈ 5e-4
        (1e-4–1e-2, necrotic core ≈ 0).
    rho_b_kg_per_m3 : blood density in kg/m³ (> 0).
    c_b_J_per_kg_K : blood specific heat in J/(kg K) (> 0).

    Reference: Pennes 1948 (J Appl Physiol 1:93) [pennes1948].
    """
    w = as_array(omega_b_per_s, "omega_b_per_s", "1/s", lo=0.0)
    rb = as_array(rho_b_kg_per_m3, "rho_b_kg_per_m3", "kg/m³", lo=0.0, lo_open=True)
    cb = as_array(c_b_J_per_kg_K, "c_b_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True)
    return scalar_or_array(w * rb * cb)


def lumped_time_constant(
    rho_kg_per_m3, c_J_per_kg_K, w_perfusion_W_per_m3_K, g_conduction_W_per_m3_K=0.0
):
    """Time constant ρc/(W + G) of the lumped tumour heat balance, in s.

    Parameters
    ----------
    rho_kg_per_m3 : tissue density in kg/m³ (> 0).
    c_J_per_kg_K : tissue specific heat in J/(kg K) (> 0).
    w_perfusion_W_per_m3_K : perfusion coefficient W = ω_b ρ_b c_b in W/(m³ K) (≥ 0).
    g_conduction_W_per_m3_K : conductive loss to the surroundings G = hA/V in W/(m³ K) (≥ 0);
        W + G must be > 0.

    Reference: Pennes 1948 (J Appl Physiol 1:93), lumped form ρc dθ/dt = Q − (W + G)θ
    [pennes1948].
    """
    rho = as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True)
    c = as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True)
    w = as_array(w_perfusion_W_per_m3_K, "w_perfusion_W_per_m3_K", "W/(m³ K)", lo=0.0)
    g = as_array(g_conduction_W_per_m3_K, "g_conduction_W_per_m3_K", "W/(m³ K)", lo=0.0)
    if np.any(w + g <= 0):
        raise ParameterError(
            "w_perfusion_W_per_m3_K + g_conduction_W_per_m3_K: must be > 0 W/(m³ K) "
            "for a finite time constant"
        )
    return scalar_or_array(rho * c / (w + g))


def lumped_tumour_temperature(
    time_s,
    q_w_per_m3,
    *,
    rho_kg_per_m3=TISSUE_DENSITY_KG_PER_M3,
    c_J_per_kg_K=TISSUE_HEAT_CAPACITY_J_PER_KG_K,
    w_perfusion_W_per_m3_K=TUMOUR_PERFUSION_W_PER_M3_K,
    g_conduction_W_per_m3_K=0.0,
    breakpoints_s=None,
    initial_C=None,
    arterial_C=37.0,
):
    """Tumour temperature of the lumped Pennes balance ρc dθ/dt = Q − (W + G)θ, in °C (closed form).

    θ = T − T_a is the rise above arterial (basal) temperature; metabolic heat is taken as
    balanced at T_a. On each segment of constant Q the solution is
    θ(t) = θ_ss + (θ(t_k) − θ_ss) e^{−(t − t_k)/τ} with θ_ss = Q/(W + G), τ = ρc/(W + G);
    with W + G = 0 it is θ(t_k) + Q (t − t_k)/(ρc).

    Parameters
    ----------
    time_s : output times in s (≥ 0, any order).
    q_w_per_m3 : heat power density Q in W/m³ (≥ 0): a number (constant from t = 0), or one
        value per segment when *breakpoints_s* is given.
    rho_kg_per_m3 : tissue density in kg/m³ (> 0).
    c_J_per_kg_K : tissue specific heat in J/(kg K) (> 0).
    w_perfusion_W_per_m3_K : perfusion coefficient W in W/(m³ K) (≥ 0).
    g_conduction_W_per_m3_K : conductive loss G = hA/V in W/(m³ K) (≥ 0); see
        :func:`sphere_conduction_coefficient`.
    breakpoints_s : start times in s of the piecewise-constant segments of *q_w_per_m3*,
        strictly increasing, first = 0; the last segment lasts for ever.
    initial_C : temperature at t = 0 in °C; default *arterial_C*.
    arterial_C : arterial (basal) temperature in °C.

    Reference: Pennes 1948 (J Appl Physiol 1:93) [pennes1948].
    """
    t = as_array(time_s, "time_s", "s", lo=0.0)
    rho = float(as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    c = float(as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True))
    w = float(as_array(w_perfusion_W_per_m3_K, "w_perfusion_W_per_m3_K", "W/(m³ K)", lo=0.0))
    g = float(as_array(g_conduction_W_per_m3_K, "g_conduction_W_per_m3_K", "W/(m³ K)", lo=0.0))
    ta = float(as_array(arterial_C, "arterial_C", "°C", lo=-273.15, lo_open=True))
    t_init = (
        ta
        if initial_C is None
        else float(as_array(initial_C, "initial_C", "°C", lo=-273.15, lo_open=True))
    )
    q = as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0)
    if breakpoints_s is None:
        if q.ndim != 0:
            raise ParameterError(
                "q_w_per_m3: give one number, or pass breakpoints_s with one value per segment"
            )
        bp = np.zeros(1)
        q = q.reshape(1)
    else:
        bp = as_array(breakpoints_s, "breakpoints_s", "s", lo=0.0).reshape(-1)
        if bp.size == 0 or bp[0] != 0.0 or np.any(np.diff(bp) <= 0):
            raise ParameterError("breakpoints_s: must be strictly increasing and start at 0 s")
        q = q.reshape(-1)
        if q.size != bp.size:
            raise ParameterError(
                f"q_w_per_m3: needs one value per segment of breakpoints_s "
                f"({bp.size}), got {q.size}"
            )
    loss = w + g
    theta_k = np.empty(bp.size)
    theta_k[0] = t_init - ta
    for i in range(1, bp.size):
        theta_k[i] = _lumped_step(theta_k[i - 1], q[i - 1], bp[i] - bp[i - 1], rho * c, loss)
    seg = np.searchsorted(bp, t, side="right") - 1
    theta = _lumped_step(theta_k[seg], q[seg], t - bp[seg], rho * c, loss)
    return scalar_or_array(ta + theta)


def _lumped_step(theta0, q, dt, rho_c, loss):
    """Closed-form lumped solution after time dt at constant Q."""
    if loss == 0.0:
        return theta0 + q * dt / rho_c
    theta_ss = q / loss
    return theta_ss + (theta0 - theta_ss) * np.exp(-dt * loss / rho_c)


def sphere_conduction_coefficient(radius_m, k_w_per_m_K=TISSUE_CONDUCTIVITY_W_PER_M_K):
    """Conductive loss G = 5k/(2R²) (W/(m³ K)) that makes the lumped model match a heated sphere.

    With G = 5k/(2R²) and no perfusion, the lumped steady state Q/G equals the volume-mean
    rise 2QR²/(5k) of a uniformly heated sphere of radius R in an infinite medium of the same
    conductivity (the mean of Q(3R² − r²)/(6k) over the sphere, ⟨r²⟩ = 3R²/5).

    Parameters
    ----------
    radius_m : sphere (tumour) radius in m (> 0).
    k_w_per_m_K : thermal conductivity in W/(m K) (> 0).

    Reference: derived from the W = 0 limit of :func:`sphere_steady_state`
    (Pennes 1948 [pennes1948]).
    """
    r = as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True)
    k = as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True)
    return scalar_or_array(2.5 * k / r**2)


def _series(x: np.ndarray, coeffs: list[float], powers: list[int]) -> np.ndarray:
    return np.asarray(sum(c * x**p for c, p in zip(coeffs, powers, strict=True)))


def _one_minus_1px_emx(x: np.ndarray) -> np.ndarray:
    """1 − (1 + x) e^{−x}, accurate for small x (≈ x²/2)."""
    n = np.arange(2, 12)
    coeffs = [(-1) ** int(i) * (int(i) - 1) / math.factorial(int(i)) for i in n]
    small = x < 0.1
    xs = np.where(small, x, 0.0)
    return np.where(
        small, _series(xs, coeffs, list(n)), 1.0 - (1.0 + x) * np.exp(-np.where(small, 0.0, x))
    )


def _sinhc_minus_one(x: np.ndarray) -> np.ndarray:
    """sinh(x)/x − 1, accurate for small x (≈ x²/6)."""
    small = x < 0.1
    xs = np.where(small, x, 0.0)
    series = _series(xs, [1 / 6, 1 / 120, 1 / 5040, 1 / 362880], [2, 4, 6, 8])
    xl = np.where(small, 1.0, x)
    with np.errstate(over="ignore"):
        direct = np.sinh(xl) / xl - 1.0
    return np.where(small, series, direct)


def _xcosh_minus_sinh(x: np.ndarray) -> np.ndarray:
    """x cosh x − sinh x, accurate for small x (≈ x³/3); for x < 0.1 only."""
    return _series(
        x,
        [2 * n / math.factorial(2 * n + 1) for n in range(1, 6)],
        [2 * n + 1 for n in range(1, 6)],
    )


def sphere_steady_state(
    r_m,
    radius_m,
    q_w_per_m3,
    k_w_per_m_K=TISSUE_CONDUCTIVITY_W_PER_M_K,
    w_w_per_m3_K=TUMOUR_PERFUSION_W_PER_M3_K,
):
    """Steady temperature rise θ(r) (K) of a uniformly heated sphere in perfused tissue.

    Solves k ∇²θ − Wθ + Q·1[r < R] = 0 in an infinite medium with the same k and W inside
    and outside, θ → 0 far away. With m = √(W/k) and X = mR, x = mr:

    - inside (r ≤ R):  θ = (Q/W)[1 − (1 + X) e^{−X} sinh(x)/x];
    - outside (r ≥ R): θ = (Q/W)(X cosh X − sinh X) e^{−x}/x;
    - W = 0: θ = Q(3R² − r²)/(6k) inside, QR³/(3kr) outside.

    Small mR is evaluated by series so the W → 0 limit is reached smoothly.

    Parameters
    ----------
    r_m : radial positions in m (≥ 0).
    radius_m : sphere radius R in m (> 0).
    q_w_per_m3 : heat power density Q inside the sphere in W/m³ (≥ 0).
    k_w_per_m_K : thermal conductivity in W/(m K) (> 0).
    w_w_per_m3_K : perfusion coefficient W in W/(m³ K) (≥ 0).

    Reference: Pennes 1948 (J Appl Physiol 1:93) [pennes1948]; the closed form follows by
    matching θ and k ∂θ/∂r at r = R.
    """
    r = as_array(r_m, "r_m", "m", lo=0.0)
    big_r = float(as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True))
    q = float(as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0))
    k = float(as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True))
    w = float(as_array(w_w_per_m3_K, "w_w_per_m3_K", "W/(m³ K)", lo=0.0))
    inside = r <= big_r
    if w == 0.0:
        r_safe = np.where(inside, big_r, r)
        theta = np.where(
            inside, q * (3 * big_r**2 - r**2) / (6 * k), q * big_r**3 / (3 * k * r_safe)
        )
        return scalar_or_array(theta)
    m = math.sqrt(w / k)
    big_x = m * big_r
    x = m * r
    # inside: 1 − (1 − u)(1 + s) = u − s + u s, u = 1 − (1 + X)e^{−X}, s = sinh(x)/x − 1
    x_in = np.where(inside, x, 0.0)
    if big_x < 0.1:
        u = float(_one_minus_1px_emx(np.asarray(big_x)))
        s = _sinhc_minus_one(x_in)
        in_factor = u - s + u * s
    else:
        # (1 + X) e^{−X} sinh(x)/x = (1 + X)(e^{x − X} − e^{−x − X})/(2x) for x > 0
        xs = np.where(x_in > 0, x_in, 1.0)
        far = (1 + big_x) * (np.exp(x_in - big_x) - np.exp(-x_in - big_x)) / (2 * xs)
        near0 = (1 + big_x) * math.exp(-big_x) * (1 + _sinhc_minus_one(x_in))
        in_factor = 1.0 - np.where(x_in > 1e-3, far, near0)
    # outside: (X cosh X − sinh X) e^{−x}/x = ½[(X − 1)e^{X − x} + (X + 1)e^{−X − x}]/x
    x_out = np.where(inside, big_x, x)
    if big_x < 0.1:
        out_factor = float(_xcosh_minus_sinh(np.asarray(big_x))) * np.exp(-x_out) / x_out
    else:
        out_factor = (
            0.5
            * ((big_x - 1) * np.exp(big_x - x_out) + (big_x + 1) * np.exp(-big_x - x_out))
            / x_out
        )
    theta = (q / w) * np.where(inside, in_factor, out_factor)
    return scalar_or_array(theta)


class RadialPennesResult(NamedTuple):
    """Result of :func:`radial_pennes`: cell-centre radii (m), times (s), temperatures (°C)."""

    r_m: np.ndarray
    t_s: np.ndarray
    temperature_C: np.ndarray


PerfusionLike = float | Callable[[np.ndarray, np.ndarray], np.ndarray]


def radial_pennes(
    radius_m,
    q_w_per_m3,
    duration_s,
    *,
    k_w_per_m_K=TISSUE_CONDUCTIVITY_W_PER_M_K,
    rho_kg_per_m3=TISSUE_DENSITY_KG_PER_M3,
    c_J_per_kg_K=TISSUE_HEAT_CAPACITY_J_PER_KG_K,
    perfusion: PerfusionLike = TUMOUR_PERFUSION_W_PER_M3_K,
    arterial_C=37.0,
    initial_C=None,
    n_r: int = 200,
    r_max_factor=5.0,
    dt_s=5.0,
    outer_boundary: str = "decay",
    save_every: int = 1,
) -> RadialPennesResult:
    """Solve the 1-D spherical Pennes equation for a uniformly heated tumour sphere.

    ρc ∂θ/∂t = (1/r²) ∂/∂r (k r² ∂θ/∂r) − W θ + Q(t)·1[r < R], θ = T − T_a, on 0 ≤ r ≤ r_max.

    Finite volumes on *n_r* uniform cells (heat inside R assigned by exact volume fraction),
    implicit (backward) Euler in time with scipy.sparse; symmetry at r = 0. A
    temperature-dependent perfusion is evaluated at the previous step's temperature
    (linearly implicit), so the matrix is factorised once when perfusion is constant.

    Parameters
    ----------
    radius_m : heated sphere (tumour) radius R in m (> 0).
    q_w_per_m3 : heat power density Q inside R in W/m³ (≥ 0), or a callable ``q(t_s)``
        returning it (e.g. a field switched on and off); evaluated at the end of each step.
    duration_s : simulated time in s (> 0).
    k_w_per_m_K : thermal conductivity in W/(m K) (> 0), tumour and surroundings.
    rho_kg_per_m3 : density in kg/m³ (> 0).
    c_J_per_kg_K : specific heat in J/(kg K) (> 0).
    perfusion : perfusion coefficient W in W/(m³ K) (≥ 0), or a callable
        ``perfusion(temperature_C, r_m) -> W`` over the cell arrays (e.g. perfusion falling
        above 42 °C inside the tumour and rising in normal tissue).
    arterial_C : arterial (basal) temperature in °C.
    initial_C : initial temperature in °C (number or array of n_r); default *arterial_C*.
    n_r : number of radial cells (≥ 10).
    r_max_factor : outer radius of the domain as a multiple of R (> 1).
    dt_s : time step in s (> 0); the last step is shortened to end at *duration_s*.
    outer_boundary : ``"decay"`` (default) imposes ∂θ/∂r = −(m + 1/r)θ at r_max with
        m = √(W/k) there, the exact far-field decay θ ∝ e^{−mr}/r of the steady solution
        (θ ∝ 1/r without perfusion), so a small domain suffices; ``"dirichlet"`` holds
        T = arterial_C at r_max.
    save_every : keep every n-th step in the output (the final time is always kept).

    Returns :class:`RadialPennesResult` ``(r_m, t_s, temperature_C)`` with temperature_C of
    shape (len(t_s), n_r).

    Reference: Pennes 1948 (J Appl Physiol 1:93) [pennes1948].
    """
    big_r = float(as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True))
    duration = float(as_array(duration_s, "duration_s", "s", lo=0.0, lo_open=True))
    k = float(as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True))
    rho = float(as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    c = float(as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True))
    ta = float(as_array(arterial_C, "arterial_C", "°C", lo=-273.15, lo_open=True))
    factor = float(as_array(r_max_factor, "r_max_factor", "", lo=1.0, lo_open=True))
    dt = float(as_array(dt_s, "dt_s", "s", lo=0.0, lo_open=True))
    if not isinstance(n_r, (int, np.integer)) or n_r < 10:
        raise ParameterError(f"n_r: must be an integer ≥ 10, got {n_r!r}")
    if not isinstance(save_every, (int, np.integer)) or save_every < 1:
        raise ParameterError(f"save_every: must be an integer ≥ 1, got {save_every!r}")
    if outer_boundary not in ("decay", "dirichlet"):
        raise ParameterError(
            f"outer_boundary: must be 'decay' or 'dirichlet', got {outer_boundary!r}"
        )
    if callable(q_w_per_m3):
        q_of_t = q_w_per_m3
    else:
        q_const = float(as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0))

        def q_of_t(_t: float) -> float:
            return q_const

    r_max = factor * big_r
    dr = r_max / n_r
    faces = np.arange(n_r + 1) * dr
    r = 0.5 * (faces[:-1] + faces[1:])
    vol = (faces[1:] ** 3 - faces[:-1] ** 3) / 3.0  # per steradian
    area = faces**2  # per steradian
    heated = np.clip((np.minimum(faces[1:], big_r) ** 3 - faces[:-1] ** 3) / 3.0, 0.0, None) / vol
    heated = np.clip(heated, 0.0, 1.0)
    cond = k * area[1:-1] / dr  # between cells i and i+1

    theta = np.full(n_r, 0.0)
    if initial_C is not None:
        init = as_array(initial_C, "initial_C", "°C", lo=-273.15, lo_open=True)
        if init.ndim not in (0, 1) or (init.ndim == 1 and init.size != n_r):
            raise ParameterError(f"initial_C: must be a number or an array of n_r = {n_r} values")
        theta = theta + (init - ta)

    def perfusion_at(theta_now: np.ndarray) -> np.ndarray:
        if callable(perfusion):
            w = np.asarray(perfusion(ta + theta_now, r), dtype=float) * np.ones(n_r)
        else:
            w = np.full(n_r, float(as_array(perfusion, "perfusion", "W/(m³ K)", lo=0.0)))
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise ParameterError("perfusion: must return finite values ≥ 0 W/(m³ K)")
        return w

    def outer_conductance(w_out: float) -> float:
        if outer_boundary == "dirichlet":
            return k * area[-1] / (0.5 * dr)
        beta = math.sqrt(w_out / k) + 1.0 / r_max
        return k * area[-1] * beta / (1.0 + 0.5 * beta * dr)

    diag_cond = np.zeros(n_r)
    diag_cond[:-1] += cond
    diag_cond[1:] += cond
    off = -cond

    def matrix(w: np.ndarray, step: float):
        d = rho * c * vol / step + vol * w + diag_cond
        d[-1] += outer_conductance(w[-1])
        return sparse.diags([off, d, off], [-1, 0, 1], format="csc")

    n_steps = max(1, math.ceil(duration / dt - 1e-9))
    times = [0.0]
    temps = [ta + theta.copy()]
    w_now = perfusion_at(theta)
    constant_w = not callable(perfusion)
    lu = sparse_linalg.splu(matrix(w_now, dt)) if constant_w else None
    t = 0.0
    for n in range(1, n_steps + 1):
        step = min(dt, duration - t) if n == n_steps else dt
        t_new = duration if n == n_steps else t + step
        q = float(q_of_t(t_new))
        if not math.isfinite(q) or q < 0:
            raise ParameterError(
                f"q_w_per_m3: must be finite and ≥ 0 W/m³, got {q!r} at t = {t_new:g} s"
            )
        rhs = rho * c * vol / step * theta + vol * heated * q
        if lu is not None and math.isclose(step, dt):
            theta = lu.solve(rhs)
        else:
            if not constant_w:
                w_now = perfusion_at(theta)
            theta = sparse_linalg.spsolve(matrix(w_now, step), rhs)
        t = t_new
        if n % save_every == 0 or n == n_steps:
            times.append(t)
            temps.append(ta + theta.copy())
    return RadialPennesResult(r_m=r, t_s=np.asarray(times), temperature_C=np.vstack(temps))
