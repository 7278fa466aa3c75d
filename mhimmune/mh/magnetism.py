"""Heating by magnetic nanoparticles: loss power and Rosensweig linear-response theory.

Heating efficiency (:func:`ilp`, :func:`sar_from_ilp`) and the Rosensweig (2002)
linear-response losses: Néel and Brown relaxation times (:func:`neel_time`,
:func:`brown_time`, :func:`effective_time`) and the specific loss power of a
(log-normally distributed) particle ensemble (:func:`rosensweig_slp`). Field in kA/m and
frequency in kHz at the boundary, SI inside the formulas.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import constants

from mhimmune.core.errors import ParameterError
from mhimmune.mh.physics_args import as_array, scalar_or_array

__all__ = [
    "MU0",
    "K_B",
    "FE_MASS_FRACTION_MAGNETITE",
    "LinearResponseWarning",
    "ilp",
    "sar_from_ilp",
    "neel_time",
    "brown_time",
    "effective_time",
    "rosensweig_slp",
]

#: Vacuum permeability, T m/A (CODATA via scipy.constants).
MU0 = constants.mu_0
#: Boltzmann constant, J/K.
K_B = constants.k
#: Mass fraction of iron in magnetite Fe3O4 (3·55.845/231.533).
FE_MASS_FRACTION_MAGNETITE = 3 * 55.845 / 231.533

_BODY_TEMPERATURE_K = 310.15


class LinearResponseWarning(UserWarning):
    """Rosensweig's linear-response theory is used outside its range (ξ > 1 or H > H_K/2)."""


def ilp(sar_w_per_g, field_kA_per_m, freq_kHz):
    """Intrinsic loss power ILP = SAR/(H² f) in nH·m²/kg.

    Parameters
    ----------
    sar_w_per_g : SAR (= SLP) in W/g (≥ 0), per gram of the mass the SAR is normalised to
        (iron for the catalogue: SAR = (ΔT/Δt)·C/m_Fe as in Yan et al. [yan_mh_review]).
    field_kA_per_m : field amplitude H in kA/m (> 0).
    freq_kHz : field frequency f in kHz (> 0).

    Returns nH·m²/kg; arrays broadcast. Field-independent only within linear response.

    Reference: Kallumadil et al. 2009 (JMMM 321:1509), as quoted by Yan et al. [yan_mh_review]
    (ILP = SAR/(H² f)).
    """
    sar = as_array(sar_w_per_g, "sar_w_per_g", "W/g", lo=0.0)
    h = as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0, lo_open=True)
    f = as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    # SAR·1e3 [W/kg] / (H²·1e6 [A²/m²] · f·1e3 [1/s]) [H m²/kg] · 1e9 [nH/H]
    return scalar_or_array(sar * 1e3 / (h**2 * f))


def sar_from_ilp(ilp_nH_m2_per_kg, field_kA_per_m, freq_kHz):
    """SAR in W/g from an ILP and a field: SAR = ILP · H² · f (linear response).

    Parameters
    ----------
    ilp_nH_m2_per_kg : intrinsic loss power in nH·m²/kg (≥ 0).
    field_kA_per_m : field amplitude H in kA/m (≥ 0).
    freq_kHz : field frequency f in kHz (> 0).

    Returns W/g of the same mass basis as the ILP. Inverse of :func:`ilp`.

    Reference: Yan et al. [yan_mh_review] (ILP = SAR/(H² f)).
    """
    i = as_array(ilp_nH_m2_per_kg, "ilp_nH_m2_per_kg", "nH·m²/kg", lo=0.0)
    h = as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    return scalar_or_array(i * h**2 * f / 1e3)


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

    Reference: Rosensweig 2002 (JMMM 252:370) [rosensweig2002].
    """
    d = as_array(diameter_nm, "diameter_nm", "nm", lo=0.0, lo_open=True)
    k = as_array(anisotropy_kJ_per_m3, "anisotropy_kJ_per_m3", "kJ/m³", lo=0.0, lo_open=True)
    temp = as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True)
    tau0 = as_array(tau0_s, "tau0_s", "s", lo=0.0, lo_open=True)
    gamma = k * 1e3 * _volume_m3(d) / (K_B * temp)
    with np.errstate(over="ignore"):
        if form == "rosensweig":
            tau = 0.5 * math.sqrt(math.pi) * tau0 * np.exp(gamma) / np.sqrt(gamma)
        elif form == "arrhenius":
            tau = tau0 * np.exp(gamma)
        else:
            raise ParameterError(f"form: must be 'rosensweig' or 'arrhenius', got {form!r}")
    return scalar_or_array(tau)


def brown_time(hydrodynamic_diameter_nm, viscosity_Pa_s=6.9e-4, temperature_K=_BODY_TEMPERATURE_K):
    """Brownian (rotational) relaxation time τ_B = 3ηV_H/(k_B T), in s.

    Parameters
    ----------
    hydrodynamic_diameter_nm : hydrodynamic diameter D_H = D + 2δ in nm (> 0).
    viscosity_Pa_s : carrier viscosity η in Pa·s (> 0); water at 37 °C ≈ 6.9e-4.
    temperature_K : temperature in K (> 0).

    Reference: Rosensweig 2002 (JMMM 252:370) [rosensweig2002].
    """
    dh = as_array(hydrodynamic_diameter_nm, "hydrodynamic_diameter_nm", "nm", lo=0.0, lo_open=True)
    eta = as_array(viscosity_Pa_s, "viscosity_Pa_s", "Pa·s", lo=0.0, lo_open=True)
    temp = as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True)
    return scalar_or_array(3.0 * eta * _volume_m3(dh) / (K_B * temp))


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

    Reference: Rosensweig 2002 (JMMM 252:370) [rosensweig2002].
    """
    tau_n = np.asarray(
        neel_time(diameter_nm, anisotropy_kJ_per_m3, temperature_K, tau0_s, form=form)
    )
    if immobilised:
        return scalar_or_array(tau_n)
    d = np.asarray(diameter_nm, dtype=float)
    sh = as_array(shell_nm, "shell_nm", "nm", lo=0.0)
    tau_b = np.asarray(brown_time(d + 2.0 * sh, viscosity_Pa_s, temperature_K))
    return scalar_or_array(1.0 / (1.0 / tau_n + 1.0 / tau_b))


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
        (Yan et al. [yan_mh_review]: SAR = (ΔT/Δt)·C/m_Fe), dividing by *fe_mass_fraction*.
    fe_mass_fraction : mass fraction of iron in the core (0–1]; magnetite 0.7236.
    n_quad : quadrature points for the polydisperse integral (≥ 21).

    Returns W/g; arrays of the first six arguments broadcast.

    Formulas: V_M = πD³/6; Γ = K V_M/(k_B T); τ_N as :func:`neel_time`; τ_B = 3ηV_H/(k_B T);
    ξ = μ0 M_d H V_M/(k_B T); χ_i/φ = μ0 M_d² V_M/(3 k_B T); χ0 = χ_i (3/ξ)(coth ξ − 1/ξ);
    P = μ0 π χ0 H² f · ωτ/(1 + (ωτ)²), ω = 2πf; SLP = P/(φ ρ_p).

    Warns :class:`LinearResponseWarning` when ξ > 1 or H > H_K/2 with H_K = 2K/(μ0 M_d),
    evaluated at the (volume-weighted median) diameter: the theory then overstates or
    misstates the loss (hysteresis regime, Carrey et al. 2011 J Appl Phys 109:083921).

    Reference: Rosensweig 2002 (JMMM 252:370) [rosensweig2002].
    """
    d = as_array(diameter_nm, "diameter_nm", "nm", lo=0.0, lo_open=True)
    h = as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    k = as_array(anisotropy_kJ_per_m3, "anisotropy_kJ_per_m3", "kJ/m³", lo=0.0, lo_open=True)
    sh = as_array(shell_nm, "shell_nm", "nm", lo=0.0)
    eta = as_array(viscosity_Pa_s, "viscosity_Pa_s", "Pa·s", lo=0.0, lo_open=True)
    ms = float(as_array(ms_kA_per_m, "ms_kA_per_m", "kA/m", lo=0.0, lo_open=True))
    rho = float(as_array(density_kg_per_m3, "density_kg_per_m3", "kg/m³", lo=0.0, lo_open=True))
    temp = float(as_array(temperature_K, "temperature_K", "K", lo=0.0, lo_open=True))
    tau0 = float(as_array(tau0_s, "tau0_s", "s", lo=0.0, lo_open=True))
    fe = float(as_array(fe_mass_fraction, "fe_mass_fraction", "", lo=0.0, lo_open=True, hi=1.0))
    sig = 0.0 if sigma is None else float(as_array(sigma, "sigma", "(ln units)", lo=0.0, hi=1.5))
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
    return scalar_or_array(w_per_g)


def _pad(args: tuple, extra_dims: int) -> tuple:
    """Give array arguments trailing singleton axes so they broadcast against a quadrature grid."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and extra_dims:
            out.append(a[(...,) + (None,) * extra_dims])
        else:
            out.append(a)
    return tuple(out)
