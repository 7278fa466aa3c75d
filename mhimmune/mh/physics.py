"""Field, particle and tissue-heating formulas of magnetic hyperthermia (MH).

Pure numpy/scipy functions that can be used on their own. Arguments carry their
unit in their name; the units match :mod:`mhimmune.core.units` at the boundary
(field in kA/m, frequency in kHz, temperature in °C) and SI inside the formulas.

Contents
--------
- heating efficiency: :func:`ilp`, :func:`sar_from_ilp`;
- field safety: :func:`hf_product`, :func:`check_hf`, :data:`BREZOVICH_LIMIT`,
  :data:`HERGT_LIMIT`;
- thermal dose and heat kill: :func:`cem43`, :func:`cem43_rate`,
  :func:`arrhenius_damage`;
- Rosensweig (2002) linear-response losses: :func:`neel_time`, :func:`brown_time`,
  :func:`effective_time`, :func:`rosensweig_slp`, :class:`LinearResponseWarning`;
- Pennes bioheat: :func:`perfusion_coefficient`, :func:`lumped_time_constant`,
  :func:`lumped_tumour_temperature`, :func:`sphere_conduction_coefficient`,
  :func:`sphere_steady_state`, :func:`radial_pennes`.

Bad inputs raise :class:`mhimmune.core.errors.ParameterError` (a ``ValueError``) whose
message names the argument and its allowed range.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
from scipy import constants

from mhimmune.core.errors import ParameterError

__all__ = [
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
    "MU0",
    "K_B",
    "R_GAS",
    "FE_MASS_FRACTION_MAGNETITE",
    "TISSUE_DENSITY_KG_PER_M3",
    "TISSUE_HEAT_CAPACITY_J_PER_KG_K",
    "TISSUE_CONDUCTIVITY_W_PER_M_K",
    "TUMOUR_PERFUSION_W_PER_M3_K",
    "LinearResponseWarning",
    "RadialPennesResult",
    "ilp",
    "sar_from_ilp",
    "hf_product",
    "check_hf",
    "cem43",
    "cem43_rate",
    "arrhenius_damage",
    "neel_time",
    "brown_time",
    "effective_time",
    "rosensweig_slp",
    "perfusion_coefficient",
    "lumped_time_constant",
    "lumped_tumour_temperature",
    "sphere_conduction_coefficient",
    "sphere_steady_state",
    "radial_pennes",
]

#: Brezovich (1988) conservative limit on H·f, A m⁻¹ s⁻¹ (seed review 000; LITERATURE.md §1).
BREZOVICH_LIMIT = 4.85e8
#: Hergt & Dutz (2007, JMMM 311:187) tolerated limit on H·f, A m⁻¹ s⁻¹.
HERGT_LIMIT = 5e9

#: Vacuum permeability, T m/A (CODATA via scipy.constants).
MU0 = constants.mu_0
#: Boltzmann constant, J/K.
K_B = constants.k
#: Molar gas constant, J/(mol K).
R_GAS = constants.R
#: Mass fraction of iron in magnetite Fe3O4 (3·55.845/231.533).
FE_MASS_FRACTION_MAGNETITE = 3 * 55.845 / 231.533

#: Soft-tissue density, kg/m³ (LITERATURE.md §2).
TISSUE_DENSITY_KG_PER_M3 = 1050.0
#: Soft-tissue specific heat, J/(kg K) (LITERATURE.md §2).
TISSUE_HEAT_CAPACITY_J_PER_KG_K = 3600.0
#: Soft-tissue thermal conductivity, W/(m K) (LITERATURE.md §2; range 0.4–0.6).
TISSUE_CONDUCTIVITY_W_PER_M_K = 0.5
#: Tumour perfusion W = ω_b ρ_b c_b = 5e-4 s⁻¹ · 1060 kg/m³ · 3800 J/(kg K), W/(m³ K)
#: (LITERATURE.md §2).
TUMOUR_PERFUSION_W_PER_M3_K = 5e-4 * 1060.0 * 3800.0

_BODY_TEMPERATURE_K = 310.15


class LinearResponseWarning(UserWarning):
    """Rosensweig's linear-response theory is used outside its range (ξ > 1 or H > H_K/2)."""


# --------------------------------------------------------------------------- checks


def _as_array(
    value,
    name: str,
    unit: str,
    *,
    lo: float | None = None,
    lo_open: bool = False,
    hi: float | None = None,
    hi_open: bool = False,
) -> np.ndarray:
    """Convert *value* to a float array, raising ParameterError naming *name* when out of range."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: expected a number in {unit}, got {value!r}") from None
    if np.any(np.isnan(arr)):
        raise ParameterError(f"{name}: NaN is not allowed ({unit})")
    lo_txt = "" if lo is None else f"{'>' if lo_open else '≥'} {lo:g}"
    hi_txt = "" if hi is None else f"{'<' if hi_open else '≤'} {hi:g}"
    allowed = " and ".join(t for t in (lo_txt, hi_txt) if t) or "finite"
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr <= lo) if lo_open else (arr < lo)
    if hi is not None:
        bad |= (arr >= hi) if hi_open else (arr > hi)
    if np.any(bad):
        first = arr[bad].flat[0]
        unit_txt = (f" ({unit})" if allowed == "finite" else f" {unit}") if unit else ""
        raise ParameterError(f"{name}: must be {allowed}{unit_txt}, got {first:g}")
    return arr


def _out(arr: np.ndarray):
    """Return a Python float for 0-d results and the array otherwise."""
    arr = np.asarray(arr)
    return float(arr) if arr.ndim == 0 else arr


def _history(time, temperature_C, time_name: str, time_unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a sampled temperature history (1-D, same length, non-decreasing time)."""
    t = _as_array(time, time_name, time_unit)
    temp = _as_array(temperature_C, "temperature_C", "°C", lo=-273.15, lo_open=True)
    if t.ndim != 1 or temp.ndim != 1 or t.size != temp.size or t.size == 0:
        raise ParameterError(
            f"{time_name} and temperature_C: must be 1-D sequences of the same "
            f"non-zero length, got shapes {t.shape} and {temp.shape}"
        )
    if not np.all(np.isfinite(t)) or not np.all(np.isfinite(temp)):
        raise ParameterError(f"{time_name} and temperature_C: must be finite")
    if np.any(np.diff(t) < 0):
        raise ParameterError(
            f"{time_name}: must be non-decreasing ({time_unit}); repeat a time "
            f"to encode a step change of temperature"
        )
    return t, temp


# ------------------------------------------------------------ heating efficiency


def ilp(sar_w_per_g, field_kA_per_m, freq_kHz):
    """Intrinsic loss power ILP = SAR/(H² f) in nH·m²/kg.

    Parameters
    ----------
    sar_w_per_g : SAR (= SLP) in W/g (≥ 0), per gram of the mass the SAR is normalised to
        (iron for the catalogue, see seed review 000 eq. SAR = (ΔT/Δt)·C/m_Fe).
    field_kA_per_m : field amplitude H in kA/m (> 0).
    freq_kHz : field frequency f in kHz (> 0).

    Returns nH·m²/kg; arrays broadcast. Field-independent only within linear response.

    Reference: Kallumadil et al. 2009 (JMMM 321:1509) via seed review 000 (ILP = SAR/(H² f));
    LITERATURE.md §1.
    """
    sar = _as_array(sar_w_per_g, "sar_w_per_g", "W/g", lo=0.0)
    h = _as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0, lo_open=True)
    f = _as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    # SAR·1e3 [W/kg] / (H²·1e6 [A²/m²] · f·1e3 [1/s]) [H m²/kg] · 1e9 [nH/H]
    return _out(sar * 1e3 / (h**2 * f))


def sar_from_ilp(ilp_nH_m2_per_kg, field_kA_per_m, freq_kHz):
    """SAR in W/g from an ILP and a field: SAR = ILP · H² · f (linear response).

    Parameters
    ----------
    ilp_nH_m2_per_kg : intrinsic loss power in nH·m²/kg (≥ 0).
    field_kA_per_m : field amplitude H in kA/m (≥ 0).
    freq_kHz : field frequency f in kHz (> 0).

    Returns W/g of the same mass basis as the ILP. Inverse of :func:`ilp`.

    Reference: seed review 000 (ILP = SAR/(H² f)); LITERATURE.md §1.
    """
    i = _as_array(ilp_nH_m2_per_kg, "ilp_nH_m2_per_kg", "nH·m²/kg", lo=0.0)
    h = _as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = _as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    return _out(i * h**2 * f / 1e3)


# ------------------------------------------------------------------ field safety


def hf_product(field_kA_per_m, freq_kHz):
    """Product H·f of field amplitude and frequency in A m⁻¹ s⁻¹.

    Parameters
    ----------
    field_kA_per_m : field amplitude in kA/m (≥ 0).
    freq_kHz : frequency in kHz (> 0).

    Reference: Brezovich 1988; Hergt & Dutz 2007 (JMMM 311:187); seed review 000.
    """
    h = _as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = _as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    return _out(h * 1e3 * f * 1e3)


def check_hf(field_kA_per_m, freq_kHz):
    """Classify a field against the H·f safety limits: "ok", "above_brezovich" or "above_hergt".

    Parameters
    ----------
    field_kA_per_m : field amplitude in kA/m (≥ 0).
    freq_kHz : frequency in kHz (> 0).

    "above_brezovich" means BREZOVICH_LIMIT < H·f ≤ HERGT_LIMIT (4.85e8 and 5e9 A m⁻¹ s⁻¹);
    a value equal to a limit is not above it. Arrays give an array of strings.

    Reference: Brezovich 1988; Hergt & Dutz 2007 (JMMM 311:187); seed review 000 section 2.
    """
    hf = np.asarray(hf_product(field_kA_per_m, freq_kHz))
    out = np.where(
        hf > HERGT_LIMIT, "above_hergt", np.where(hf > BREZOVICH_LIMIT, "above_brezovich", "ok")
    )
    return str(out) if out.ndim == 0 else out


# ------------------------------------------------------------------ thermal dose


def cem43_rate(temperature_C):
    """Thermal-dose rate R^(43 − T): minutes at 43 °C per minute at temperature T.

    Parameters
    ----------
    temperature_C : tissue temperature in °C.

    R = 0.5 for T ≥ 43 °C and 0.25 below.

    Reference: Sapareto & Dewey 1984 (Int J Radiat Oncol Biol Phys 10:787); LITERATURE.md §3.
    """
    temp = _as_array(temperature_C, "temperature_C", "°C", lo=-273.15, lo_open=True)
    return _out(np.where(temp >= 43.0, 0.5, 0.25) ** (43.0 - temp))


def _log_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Logarithmic mean (b − a)/ln(b/a) of positive numbers, = a when a == b."""
    lr = np.log(b) - np.log(a)
    small = np.abs(lr) < 1e-12
    safe = np.where(small, 1.0, lr)
    return np.where(small, a * (1.0 + 0.5 * lr), a * np.expm1(safe) / safe)


def cem43(time_min, temperature_C, *, method: str = "exact", cumulative: bool = False):
    """Cumulative equivalent minutes at 43 °C (CEM43) of a sampled temperature history.

    Parameters
    ----------
    time_min : sample times in minutes, non-decreasing; repeat a time to encode a step.
    temperature_C : temperatures in °C at those times.
    method : ``"exact"`` (default) integrates the piecewise-linear interpolant of the samples
        exactly: the rate R^(43 − T) is log-linear in time on each segment, split at 43 °C, so
        each piece contributes Δt times the logarithmic mean of its end rates.
        ``"trapezoid"`` applies the trapezoidal rule to the sampled rates (overestimates the
        dose of ramps sampled coarsely).
    cumulative : return the running dose at every sample (first entry 0) instead of the total.

    Returns minutes at 43 °C.

    Reference: Sapareto & Dewey 1984 (Int J Radiat Oncol Biol Phys 10:787): CEM43 = Σ Δt R^(43 − T),
    R = 0.5 at T ≥ 43 °C, 0.25 below; LITERATURE.md §3.
    """
    t, temp = _history(time_min, temperature_C, "time_min", "min")
    if method not in ("exact", "trapezoid"):
        raise ParameterError(f"method: must be 'exact' or 'trapezoid', got {method!r}")
    rate = np.asarray(cem43_rate(temp), dtype=float).reshape(-1)
    dt = np.diff(t)
    if method == "trapezoid":
        seg = 0.5 * dt * (rate[:-1] + rate[1:])
    else:
        t0, t1 = temp[:-1], temp[1:]
        crosses = (t0 - 43.0) * (t1 - 43.0) < 0
        denom = np.where(crosses, t1 - t0, 1.0)
        frac = np.where(crosses, (43.0 - t0) / denom, 1.0)
        r_mid = np.where(crosses, 1.0, rate[1:])
        seg = frac * dt * _log_mean(rate[:-1], r_mid) + (1.0 - frac) * dt * _log_mean(
            np.where(crosses, 1.0, rate[1:]), rate[1:]
        )
    if cumulative:
        return np.concatenate([[0.0], np.cumsum(seg)])
    return float(np.sum(seg))


def arrhenius_damage(
    time_s, temperature_C, ea_J_per_mol, a_per_s, *, cumulative: bool = False, substeps: int = 1
):
    """Arrhenius damage integral Ω = ∫ A exp(−Ea/(R_gas T)) dt; survival is exp(−Ω).

    Parameters
    ----------
    time_s : sample times in s, non-decreasing; repeat a time to encode a step.
    temperature_C : temperatures in °C at those times.
    ea_J_per_mol : activation energy in J/mol (> 0); ≈ 5.78e5 above 43 °C reproduces the
        CEM43 factor 2 per °C, ≈ 1.15e6 below (LITERATURE.md §3).
    a_per_s : frequency factor A in 1/s (> 0); may be astronomically large (e.g. 1e98).
    cumulative : return Ω at every sample (first entry 0) instead of the total.
    substeps : each segment is split into this many linearly interpolated sub-segments
        before the trapezoidal rule is applied (≥ 1), to integrate coarse ramps accurately.

    Returns Ω (dimensionless). Integration is the trapezoidal rule on the (sub)sampled
    piecewise-linear history; rates are evaluated in log space to avoid overflow.

    Reference: Henriques & Moritz 1947; Pearce 2015 (Int J Hyperthermia); LITERATURE.md §3.
    """
    t, temp = _history(time_s, temperature_C, "time_s", "s")
    ea = float(_as_array(ea_J_per_mol, "ea_J_per_mol", "J/mol", lo=0.0, lo_open=True))
    a = float(_as_array(a_per_s, "a_per_s", "1/s", lo=0.0, lo_open=True))
    if not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ParameterError(f"substeps: must be an integer ≥ 1, got {substeps!r}")
    n = t.size
    if n == 1:
        return np.zeros(1) if cumulative else 0.0
    s = np.linspace(0.0, 1.0, substeps + 1)
    tt = t[:-1, None] + np.diff(t)[:, None] * s[None, :]
    TT = temp[:-1, None] + np.diff(temp)[:, None] * s[None, :]
    log_rate = math.log(a) - ea / (R_GAS * (TT + 273.15))
    rate = np.exp(log_rate)
    seg = np.sum(0.5 * np.diff(tt, axis=1) * (rate[:, 1:] + rate[:, :-1]), axis=1)
    if cumulative:
        return np.concatenate([[0.0], np.cumsum(seg)])
    return float(np.sum(seg))


# ------------------------------------------------------- Rosensweig linear response


def _volume_m3(diameter_nm: np.ndarray) -> np.ndarray:
    return np.pi * (diameter_nm * 1e-9) ** 3 / 6.0


def neel_time(
    diameter_nm,
    anisotropy_kJ_per_m3,
    temperature_K=_BODY_TEMPERATURE_K,
    tau0_s=1e-9,
    *,
    form: str = "rosensweig",
):
    """Néel relaxation time τ_N of a single-domain core, in s.

    Parameters
    ----------
    diameter_nm : magnetic core diameter D in nm (> 0); V_M = πD³/6.
    anisotropy_kJ_per_m3 : effective anisotropy constant K in kJ/m³ (> 0); magnetite 9–50,
        bulk |K1| ≈ 13.
    temperature_K : temperature in K (> 0); default 37 °C.
    tau0_s : attempt time τ0 in s (> 0).
    form : ``"rosensweig"`` τ_N = (√π/2) τ0 e^Γ/√Γ (Brown's high-barrier form, valid for
        Γ ≳ 2; it overestimates τ_N as Γ → 0) or ``"arrhenius"`` τ_N = τ0 e^Γ,
        with Γ = K V_M/(k_B T).

    Returns s; ``inf`` where e^Γ overflows (blocked particles).

    Reference: Rosensweig 2002 (JMMM 252:370); LITERATURE.md §1.
    """
    d = _as_array(diameter_nm, "diameter_nm", "nm", lo=0.0, lo_open=True)
    k = _as_array(anisotropy_kJ_per_m3, "anisotropy_kJ_per_m3", "kJ/m³", lo=0.0, lo_open=True)
    temp = _as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True)
    tau0 = _as_array(tau0_s, "tau0_s", "s", lo=0.0, lo_open=True)
    gamma = k * 1e3 * _volume_m3(d) / (K_B * temp)
    with np.errstate(over="ignore"):
        if form == "rosensweig":
            tau = 0.5 * math.sqrt(math.pi) * tau0 * np.exp(gamma) / np.sqrt(gamma)
        elif form == "arrhenius":
            tau = tau0 * np.exp(gamma)
        else:
            raise ParameterError(f"form: must be 'rosensweig' or 'arrhenius', got {form!r}")
    return _out(tau)


def brown_time(hydrodynamic_diameter_nm, viscosity_Pa_s=6.9e-4, temperature_K=_BODY_TEMPERATURE_K):
    """Brownian (rotational) relaxation time τ_B = 3ηV_H/(k_B T), in s.

    Parameters
    ----------
    hydrodynamic_diameter_nm : hydrodynamic diameter D_H = D + 2δ in nm (> 0).
    viscosity_Pa_s : carrier viscosity η in Pa·s (> 0); water at 37 °C ≈ 6.9e-4.
    temperature_K : temperature in K (> 0).

    Reference: Rosensweig 2002 (JMMM 252:370); LITERATURE.md §1.
    """
    dh = _as_array(hydrodynamic_diameter_nm, "hydrodynamic_diameter_nm", "nm", lo=0.0, lo_open=True)
    eta = _as_array(viscosity_Pa_s, "viscosity_Pa_s", "Pa·s", lo=0.0, lo_open=True)
    temp = _as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True)
    return _out(3.0 * eta * _volume_m3(dh) / (K_B * temp))


def effective_time(
    diameter_nm,
    anisotropy_kJ_per_m3=13.0,
    shell_nm=2.0,
    viscosity_Pa_s=6.9e-4,
    immobilised: bool = False,
    temperature_K=_BODY_TEMPERATURE_K,
    tau0_s=1e-9,
    *,
    form: str = "rosensweig",
):
    """Effective relaxation time 1/τ = 1/τ_N + 1/τ_B, in s (τ = τ_N when immobilised).

    Parameters
    ----------
    diameter_nm : magnetic core diameter in nm (> 0).
    anisotropy_kJ_per_m3 : anisotropy constant K in kJ/m³ (> 0).
    shell_nm : non-magnetic shell (coating) thickness δ in nm (≥ 0); D_H = D + 2δ.
    viscosity_Pa_s : carrier viscosity in Pa·s (> 0).
    immobilised : particles bound in cells or lysosomes cannot rotate: no Brownian path.
    temperature_K : temperature in K (> 0).
    tau0_s : Néel attempt time in s (> 0).
    form : Néel formula, see :func:`neel_time`.

    Reference: Rosensweig 2002 (JMMM 252:370); LITERATURE.md §1.
    """
    tau_n = np.asarray(
        neel_time(diameter_nm, anisotropy_kJ_per_m3, temperature_K, tau0_s, form=form)
    )
    if immobilised:
        return _out(tau_n)
    d = np.asarray(diameter_nm, dtype=float)
    sh = _as_array(shell_nm, "shell_nm", "nm", lo=0.0)
    tau_b = np.asarray(brown_time(d + 2.0 * sh, viscosity_Pa_s, temperature_K))
    return _out(1.0 / (1.0 / tau_n + 1.0 / tau_b))


def _langevin_ratio(xi: np.ndarray) -> np.ndarray:
    """3 L(ξ)/ξ = (3/ξ)(coth ξ − 1/ξ), the chord-susceptibility factor; 1 at ξ → 0."""
    small = xi < 1e-2
    x = np.where(small, 1.0, xi)
    big = 3.0 * (1.0 / np.tanh(x) - 1.0 / x) / x
    series = 1.0 - xi**2 / 15.0 + 2.0 * xi**4 / 315.0
    return np.where(small, series, big)


def _mono_slp_w_per_kg(
    d_nm,
    h_a_per_m,
    f_hz,
    k_j_per_m3,
    shell_nm,
    eta,
    immobilised,
    ms_a_per_m,
    rho,
    temperature_K,
    tau0_s,
    form,
):
    """Monodisperse Rosensweig loss per kg of particle core, W/kg (arrays broadcast)."""
    v = _volume_m3(d_nm)
    kt = K_B * temperature_K
    gamma = k_j_per_m3 * v / kt
    with np.errstate(over="ignore"):
        if form == "rosensweig":
            tau_n = 0.5 * math.sqrt(math.pi) * tau0_s * np.exp(gamma) / np.sqrt(gamma)
        else:
            tau_n = tau0_s * np.exp(gamma)
    if immobilised:
        tau = tau_n
    else:
        tau_b = 3.0 * eta * _volume_m3(d_nm + 2.0 * shell_nm) / kt
        tau = 1.0 / (1.0 / tau_n + 1.0 / tau_b)
    wt = 2.0 * np.pi * f_hz * tau
    with np.errstate(over="ignore", invalid="ignore"):
        loss_shape = np.where(np.isinf(wt), 0.0, wt / (1.0 + wt**2))
    xi = MU0 * ms_a_per_m * h_a_per_m * v / kt
    chi_i_per_phi = MU0 * ms_a_per_m**2 * v / (3.0 * kt)
    chi0_per_phi = chi_i_per_phi * _langevin_ratio(xi)
    # P/φ = μ0 π χ0/φ H² f · ωτ/(1 + (ωτ)²) in W/m³ of particle; /ρ -> W/kg
    return MU0 * np.pi * chi0_per_phi * h_a_per_m**2 * f_hz * loss_shape / rho


def rosensweig_slp(
    diameter_nm,
    field_kA_per_m,
    freq_kHz,
    anisotropy_kJ_per_m3=13.0,
    shell_nm=2.0,
    viscosity_Pa_s=6.9e-4,
    immobilised: bool = False,
    ms_kA_per_m=446.0,
    density_kg_per_m3=5180.0,
    sigma=None,
    temperature_K=_BODY_TEMPERATURE_K,
    *,
    tau0_s=1e-9,
    form: str = "rosensweig",
    basis: str = "particle",
    fe_mass_fraction=FE_MASS_FRACTION_MAGNETITE,
    n_quad: int = 401,
):
    """Specific loss power of a magnetic fluid in linear-response theory, in W/g.

    Parameters
    ----------
    diameter_nm : magnetic core diameter D in nm (> 0); with *sigma* the number-median diameter.
    field_kA_per_m : field amplitude H in kA/m (≥ 0).
    freq_kHz : frequency f in kHz (> 0).
    anisotropy_kJ_per_m3 : effective anisotropy K in kJ/m³ (> 0); magnetite bulk |K1| ≈ 13.
    shell_nm : coating thickness δ in nm (≥ 0); hydrodynamic diameter D + 2δ.
    viscosity_Pa_s : carrier viscosity in Pa·s (> 0); water at 37 °C 6.9e-4.
    immobilised : no Brownian relaxation (particles fixed in cells or tissue).
    ms_kA_per_m : domain magnetisation M_d in kA/m (> 0); magnetite 446.
    density_kg_per_m3 : core density ρ_p in kg/m³ (> 0); magnetite 5180.
    sigma : width (standard deviation of ln D) of a log-normal number distribution of core
        diameters (0 ≤ σ ≤ 1.5), or ``None``/0 for monodisperse cores. The loss is the
        mass-weighted mean Σ P(D) V(D) / Σ V(D) over the distribution, integrated with the
        trapezoidal rule over ±8 standard deviations of the volume-weighted log-normal
        (median D·exp(3σ²)), *n_quad* points; the shell thickness is the same for all sizes.
    temperature_K : temperature in K (> 0).
    tau0_s : Néel attempt time in s (> 0).
    form : Néel formula, see :func:`neel_time`.
    basis : ``"particle"`` (default) returns W per g of core material (magnetite with the
        defaults); ``"fe"`` returns W per g of iron, the basis of the catalogue SAR
        (seed review 000: SAR = (ΔT/Δt)·C/m_Fe), dividing by *fe_mass_fraction*.
    fe_mass_fraction : mass fraction of iron in the core (0–1]; magnetite 0.7236.
    n_quad : quadrature points for the polydisperse integral (≥ 21).

    Returns W/g; arrays of the first six arguments broadcast.

    Formulas: V_M = πD³/6; Γ = K V_M/(k_B T); τ_N as :func:`neel_time`; τ_B = 3ηV_H/(k_B T);
    ξ = μ0 M_d H V_M/(k_B T); χ_i/φ = μ0 M_d² V_M/(3 k_B T); χ0 = χ_i (3/ξ)(coth ξ − 1/ξ);
    P = μ0 π χ0 H² f · ωτ/(1 + (ωτ)²), ω = 2πf; SLP = P/(φ ρ_p).

    Warns :class:`LinearResponseWarning` when ξ > 1 or H > H_K/2 with H_K = 2K/(μ0 M_d),
    evaluated at the (volume-weighted median) diameter: the theory then overstates or
    misstates the loss (hysteresis regime, Carrey et al. 2011 J Appl Phys 109:083921).

    Reference: Rosensweig 2002 (JMMM 252:370); LITERATURE.md §1.
    """
    d = _as_array(diameter_nm, "diameter_nm", "nm", lo=0.0, lo_open=True)
    h = _as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = _as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    k = _as_array(anisotropy_kJ_per_m3, "anisotropy_kJ_per_m3", "kJ/m³", lo=0.0, lo_open=True)
    sh = _as_array(shell_nm, "shell_nm", "nm", lo=0.0)
    eta = _as_array(viscosity_Pa_s, "viscosity_Pa_s", "Pa·s", lo=0.0, lo_open=True)
    ms = float(_as_array(ms_kA_per_m, "ms_kA_per_m", "kA/m", lo=0.0, lo_open=True))
    rho = float(_as_array(density_kg_per_m3, "density_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    temp = float(_as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True))
    tau0 = float(_as_array(tau0_s, "tau0_s", "s", lo=0.0, lo_open=True))
    fe = float(_as_array(fe_mass_fraction, "fe_mass_fraction", "", lo=0.0, lo_open=True, hi=1.0))
    sig = 0.0 if sigma is None else float(_as_array(sigma, "sigma", "(ln units)", lo=0.0, hi=1.5))
    if form not in ("rosensweig", "arrhenius"):
        raise ParameterError(f"form: must be 'rosensweig' or 'arrhenius', got {form!r}")
    if basis not in ("particle", "fe"):
        raise ParameterError(f"basis: must be 'particle' or 'fe', got {basis!r}")
    if not isinstance(n_quad, (int, np.integer)) or n_quad < 21:
        raise ParameterError(f"n_quad: must be an integer ≥ 21, got {n_quad!r}")

    d, h, f, k, sh, eta = np.broadcast_arrays(d, h, f, k, sh, eta)
    h_si, f_si, k_si, ms_si = h * 1e3, f * 1e3, k * 1e3, ms * 1e3

    d_check = d * math.exp(3.0 * sig**2)
    v_check = _volume_m3(d_check)
    xi = MU0 * ms_si * h_si * v_check / (K_B * temp)
    h_k = 2.0 * k_si / (MU0 * ms_si)
    if np.any(xi > 1.0):
        warnings.warn(
            f"rosensweig_slp: Langevin parameter ξ = {np.max(xi):.4g} > 1 "
            f"(field_kA_per_m up to {np.max(h):g}, diameter up to {np.max(d_check):.3g} nm); "
            f"linear-response theory is outside its range",
            LinearResponseWarning,
            stacklevel=2,
        )
    if np.any(h_si > 0.5 * h_k):
        warnings.warn(
            f"rosensweig_slp: field {np.max(h):g} kA/m exceeds half the anisotropy field "
            f"H_K = 2K/(μ0 Ms) = {np.min(h_k) / 1e3:.3g} kA/m; hysteresis losses are not "
            f"described by linear response",
            LinearResponseWarning,
            stacklevel=2,
        )

    args = (k_si, sh, eta, immobilised, ms_si, rho, temp, tau0, form)
    if sig == 0.0:
        w_per_kg = _mono_slp_w_per_kg(d, h_si, f_si, *_pad(args, 0))
    else:
        z = np.linspace(-8.0, 8.0, int(n_quad))
        weights = np.exp(-0.5 * z**2)
        weights[0] *= 0.5
        weights[-1] *= 0.5
        weights /= weights.sum()
        d_grid = d[..., None] * math.exp(3.0 * sig**2) * np.exp(sig * z)
        vals = _mono_slp_w_per_kg(d_grid, h_si[..., None], f_si[..., None], *_pad(args, 1))
        w_per_kg = np.sum(vals * weights, axis=-1)
    w_per_g = w_per_kg / 1e3
    if basis == "fe":
        w_per_g = w_per_g / fe
    return _out(w_per_g)


def _pad(args: tuple, extra_dims: int) -> tuple:
    """Give array arguments trailing singleton axes so they broadcast against a quadrature grid."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and extra_dims:
            out.append(a[(...,) + (None,) * extra_dims])
        else:
            out.append(a)
    return tuple(out)


# ------------------------------------------------------------------ Pennes bioheat


def perfusion_coefficient(omega_b_per_s, rho_b_kg_per_m3=1060.0, c_b_J_per_kg_K=3800.0):
    """Pennes perfusion coefficient W = ω_b ρ_b c_b in W/(m³ K).

    Parameters
    ----------
    omega_b_per_s : volumetric blood perfusion rate ω_b in 1/s (≥ 0); tumour ≈ 5e-4
        (1e-4–1e-2, necrotic core ≈ 0).
    rho_b_kg_per_m3 : blood density in kg/m³ (> 0).
    c_b_J_per_kg_K : blood specific heat in J/(kg K) (> 0).

    Reference: Pennes 1948 (J Appl Physiol 1:93); LITERATURE.md §2.
    """
    w = _as_array(omega_b_per_s, "omega_b_per_s", "1/s", lo=0.0)
    rb = _as_array(rho_b_kg_per_m3, "rho_b_kg_per_m3", "kg/m³", lo=0.0, lo_open=True)
    cb = _as_array(c_b_J_per_kg_K, "c_b_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True)
    return _out(w * rb * cb)


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

    Reference: Pennes 1948 (J Appl Physiol 1:93), lumped form ρc dθ/dt = Q − (W + G)θ;
    LITERATURE.md §2.
    """
    rho = _as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True)
    c = _as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True)
    w = _as_array(w_perfusion_W_per_m3_K, "w_perfusion_W_per_m3_K", "W/(m³ K)", lo=0.0)
    g = _as_array(g_conduction_W_per_m3_K, "g_conduction_W_per_m3_K", "W/(m³ K)", lo=0.0)
    if np.any(w + g <= 0):
        raise ParameterError(
            "w_perfusion_W_per_m3_K + g_conduction_W_per_m3_K: must be > 0 W/(m³ K) "
            "for a finite time constant"
        )
    return _out(rho * c / (w + g))


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

    Reference: Pennes 1948 (J Appl Physiol 1:93); LITERATURE.md §2.
    """
    t = _as_array(time_s, "time_s", "s", lo=0.0)
    rho = float(_as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    c = float(_as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True))
    w = float(_as_array(w_perfusion_W_per_m3_K, "w_perfusion_W_per_m3_K", "W/(m³ K)", lo=0.0))
    g = float(_as_array(g_conduction_W_per_m3_K, "g_conduction_W_per_m3_K", "W/(m³ K)", lo=0.0))
    ta = float(_as_array(arterial_C, "arterial_C", "°C", lo=-273.15, lo_open=True))
    t_init = (
        ta
        if initial_C is None
        else float(_as_array(initial_C, "initial_C", "°C", lo=-273.15, lo_open=True))
    )
    q = _as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0)
    if breakpoints_s is None:
        if q.ndim != 0:
            raise ParameterError(
                "q_w_per_m3: give one number, or pass breakpoints_s with one value per segment"
            )
        bp = np.zeros(1)
        q = q.reshape(1)
    else:
        bp = _as_array(breakpoints_s, "breakpoints_s", "s", lo=0.0).reshape(-1)
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
    return _out(ta + theta)


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

    Reference: derived from the W = 0 limit of :func:`sphere_steady_state` (LITERATURE.md §2).
    """
    r = _as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True)
    k = _as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True)
    return _out(2.5 * k / r**2)


def _series(x: np.ndarray, coeffs: list[float], powers: list[int]) -> np.ndarray:
    return sum(c * x**p for c, p in zip(coeffs, powers, strict=True))


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

    Reference: Pennes 1948 (J Appl Physiol 1:93); the closed form follows by matching θ and
    k ∂θ/∂r at r = R (LITERATURE.md §2).
    """
    r = _as_array(r_m, "r_m", "m", lo=0.0)
    big_r = float(_as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True))
    q = float(_as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0))
    k = float(_as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True))
    w = float(_as_array(w_w_per_m3_K, "w_w_per_m3_K", "W/(m³ K)", lo=0.0))
    inside = r <= big_r
    if w == 0.0:
        r_safe = np.where(inside, big_r, r)
        theta = np.where(
            inside, q * (3 * big_r**2 - r**2) / (6 * k), q * big_r**3 / (3 * k * r_safe)
        )
        return _out(theta)
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
    return _out(theta)


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

    Reference: Pennes 1948 (J Appl Physiol 1:93); LITERATURE.md §2.
    """
    big_r = float(_as_array(radius_m, "radius_m", "m", lo=0.0, lo_open=True))
    duration = float(_as_array(duration_s, "duration_s", "s", lo=0.0, lo_open=True))
    k = float(_as_array(k_w_per_m_K, "k_w_per_m_K", "W/(m K)", lo=0.0, lo_open=True))
    rho = float(_as_array(rho_kg_per_m3, "rho_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    c = float(_as_array(c_J_per_kg_K, "c_J_per_kg_K", "J/(kg K)", lo=0.0, lo_open=True))
    ta = float(_as_array(arterial_C, "arterial_C", "°C", lo=-273.15, lo_open=True))
    factor = float(_as_array(r_max_factor, "r_max_factor", "", lo=1.0, lo_open=True))
    dt = float(_as_array(dt_s, "dt_s", "s", lo=0.0, lo_open=True))
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
        q_const = float(_as_array(q_w_per_m3, "q_w_per_m3", "W/m³", lo=0.0))

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
        init = _as_array(initial_C, "initial_C", "°C", lo=-273.15, lo_open=True)
        if init.ndim not in (0, 1) or (init.ndim == 1 and init.size != n_r):
            raise ParameterError(f"initial_C: must be a number or an array of n_r = {n_r} values")
        theta = theta + (init - ta)

    def perfusion_at(theta_now: np.ndarray) -> np.ndarray:
        if callable(perfusion):
            w = np.asarray(perfusion(ta + theta_now, r), dtype=float) * np.ones(n_r)
        else:
            w = np.full(n_r, float(_as_array(perfusion, "perfusion", "W/(m³ K)", lo=0.0)))
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
        if constant_w and math.isclose(step, dt):
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
