"""Thermal dose and heat kill: CEM43 (Sapareto & Dewey 1984) and Arrhenius damage.

Functions of a sampled temperature history (time, temperature in °C): the dose rate
:func:`cem43_rate`, the cumulative equivalent minutes at 43 °C :func:`cem43` and the
Arrhenius damage integral :func:`arrhenius_damage`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import constants

from mhimmune.core.errors import ParameterError
from mhimmune.mh.physics_args import as_array, scalar_or_array, temperature_history

__all__ = ["R_GAS", "cem43", "cem43_rate", "arrhenius_damage"]

#: Molar gas constant, J/(mol K).
R_GAS = constants.R


def cem43_rate(temperature_C):
    """Thermal-dose rate R^(43 − T): minutes at 43 °C per minute at temperature T.

    Parameters
    ----------
    temperature_C : tissue temperature in °C.

    R = 0.5 for T ≥ 43 °C and 0.25 below.

    Reference: Sapareto & Dewey 1984 (Int J Radiat Oncol Biol Phys 10:787) [sapareto1984].
    """
    temp = as_array(temperature_C, "temperature_C", "°C", lo=-273.15, lo_open=True)
    return scalar_or_array(np.where(temp >= 43.0, 0.5, 0.25) ** (43.0 - temp))


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

    Reference: Sapareto & Dewey 1984 (Int J Radiat Oncol Biol Phys 10:787) [sapareto1984]:
    CEM43 = Σ Δt R^(43 − T), R = 0.5 at T ≥ 43 °C, 0.25 below.
    """
    t, temp = temperature_history(time_min, temperature_C, "time_min", "min")
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
        CEM43 factor 2 per °C, ≈ 1.15e6 below (derived from Sapareto & Dewey 1984 [sapareto1984]).
    a_per_s : frequency factor A in 1/s (> 0); may be astronomically large (e.g. 1e98).
    cumulative : return Ω at every sample (first entry 0) instead of the total.
    substeps : each segment is split into this many linearly interpolated sub-segments
        before the trapezoidal rule is applied (≥ 1), to integrate coarse ramps accurately.

    Returns Ω (dimensionless). Integration is the trapezoidal rule on the (sub)sampled
    piecewise-linear history; rates are evaluated in log space to avoid overflow.

    Reference: Henriques & Moritz 1947; Pearce 2015 (Int J Hyperthermia).
    """
    t, temp = temperature_history(time_s, temperature_C, "time_s", "s")
    ea = float(as_array(ea_J_per_mol, "ea_J_per_mol", "J/mol", lo=0.0, lo_open=True))
    a = float(as_array(a_per_s, "a_per_s", "1/s", lo=0.0, lo_open=True))
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
