"""Field safety of magnetic hyperthermia: the H·f product and its tolerated limits.

:func:`hf_product` and :func:`check_hf` compare a field (amplitude in kA/m, frequency in
kHz) with the Brezovich (1988) and Hergt & Dutz (2007) limits; :class:`HfWarning` is the
warning a treatment session above the Brezovich limit raises.

An :class:`HfWarning` is shown once per protocol per process: its text names the
protocol and its sessions, and :func:`show_once` makes ``"once"`` (one display per
distinct text) the default action for the category. The command line prints it on
stderr. A filter of the caller's wins (``warnings.filterwarnings("always",
category=HfWarning)`` shows every one; ``"ignore"`` none); ``pytest.warns`` and
``warnings.catch_warnings(record=True)`` still see each.
"""

from __future__ import annotations

import warnings

import numpy as np

from mhimmune.mh.physics_args import as_array, scalar_or_array

__all__ = [
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
    "HfWarning",
    "hf_product",
    "check_hf",
    "show_once",
]

#: Brezovich (1988) conservative limit on H·f, A m⁻¹ s⁻¹ (as quoted by Yan et al. [yan_mh_review]).
BREZOVICH_LIMIT = 4.85e8
#: Hergt & Dutz (2007, JMMM 311:187) tolerated limit on H·f, A m⁻¹ s⁻¹.
HERGT_LIMIT = 5e9


class HfWarning(UserWarning):
    """The product H·f of a magnetic-hyperthermia session exceeds the Brezovich limit."""


def show_once() -> None:
    """Make ``"once"`` the default action for :class:`HfWarning` (a warning with the same
    text, i.e. the same protocol, is shown once per process).

    The filter is appended, so any filter the caller set first wins; it is not added
    when a filter for :class:`HfWarning` itself is already in place. Called on import and
    before each warning (``warnings.catch_warnings`` restores the filters it found).
    """
    if not any(f[2] is HfWarning for f in warnings.filters):
        warnings.filterwarnings("once", category=HfWarning, append=True)


show_once()


def hf_product(field_kA_per_m, freq_kHz):
    """Product H·f of field amplitude and frequency in A m⁻¹ s⁻¹.

    Parameters
    ----------
    field_kA_per_m : field amplitude in kA/m (≥ 0).
    freq_kHz : frequency in kHz (> 0).

    Reference: Brezovich 1988; Hergt & Dutz 2007 (JMMM 311:187); Yan et al. [yan_mh_review].
    """
    h = as_array(field_kA_per_m, "field_kA_per_m", "kA/m", lo=0.0)
    f = as_array(freq_kHz, "freq_kHz", "kHz", lo=0.0, lo_open=True)
    return scalar_or_array(h * 1e3 * f * 1e3)


def check_hf(field_kA_per_m, freq_kHz):
    """Classify a field against the H·f safety limits: "ok", "above_brezovich" or "above_hergt".

    Parameters
    ----------
    field_kA_per_m : field amplitude in kA/m (≥ 0).
    freq_kHz : frequency in kHz (> 0).

    "above_brezovich" means BREZOVICH_LIMIT < H·f ≤ HERGT_LIMIT (4.85e8 and 5e9 A m⁻¹ s⁻¹);
    a value equal to a limit is not above it. Arrays give an array of strings.

    Reference: Brezovich 1988; Hergt & Dutz 2007 (JMMM 311:187); Yan et al. [yan_mh_review],
    section 2.
    """
    hf = np.asarray(hf_product(field_kA_per_m, freq_kHz))
    out = np.where(
        hf > HERGT_LIMIT, "above_hergt", np.where(hf > BREZOVICH_LIMIT, "above_brezovich", "ok")
    )
    return str(out) if out.ndim == 0 else out
