"""Client-stabilised HSP70 and the kinetics of thermotolerance (models/stress.py).

Cells in a water bath (the stress link alone, as the validation suite simulates them):
heat-denatured protein aggregates form in proportion to the square of the thermal-lesion
load and slow HSP70 turnover, so thermotolerance outlasts a large priming dose longer
than a small or chronic one.
"""

import numpy as np
import pytest

from mhimmune.studies.validation_experiments import (
    EXPERIMENTS,
    cell_history,
    parameter_overrides,
)


def _aggregates_after(segments):
    _t, v = cell_history(segments)
    return float(np.max(v["heat_aggregates_mid"])), v


def test_aggregates_are_absent_at_37C_and_grow_faster_than_the_priming_dose():
    """No aggregates in unheated cells (1e-12); 30 min at 44 °C makes > 5x the aggregates
    of 10 min (3x the thermal dose, second order in the lesion load; measured 8x), and
    12 h at 40 °C (few lesions) < 5 % of the 10-min dose's (measured 3 %)."""
    basal, _ = _aggregates_after([(24.0, 37.0)])
    thirty, _ = _aggregates_after([(0.5, 44.0), (24.0, 37.0)])
    ten, _ = _aggregates_after([(1 / 6, 44.0), (24.0, 37.0)])
    chronic, _ = _aggregates_after([(12.0, 40.0), (24.0, 37.0)])
    assert abs(basal) < 1e-12
    assert thirty > 5 * ten > 0
    assert chronic < 0.05 * ten


def test_hsp70_outlasts_a_damaging_priming_dose_longer_than_a_mild_one():
    """Excess HSP70 24 h after its peak keeps a larger share of the peak excess after 30
    min at 44 °C than after 1 h at 42 °C (by > 1.5x), and without aggregation (rate 0) the
    44 °C excess at that time is < 60 % of the default model's."""

    def retained(params, segments):
        with parameter_overrides(params):
            t, v = cell_history(segments)
        h = v["hsp70_relative_mid"] - 1.0
        k = int(np.argmax(h))
        return float(np.interp(t[k] + 24.0, t, h) / h[k]), float(np.interp(t[k] + 24.0, t, h))

    acute, acute_excess = retained({}, [(0.5, 44.0), (96.0, 37.0)])
    mild, _ = retained({}, [(1.0, 42.0), (96.0, 37.0)])
    _, no_agg_excess = retained({"heat_aggregation_rate": 0.0}, [(0.5, 44.0), (96.0, 37.0)])
    assert acute > 1.5 * mild
    assert no_agg_excess < 0.6 * acute_excess


def test_thermotolerance_decays_more_slowly_after_a_larger_priming_dose():
    """Half-time of thermotolerance decay (43 °C, 1 h test): 12-20 h after 30 min at 44 °C
    (the calibration target of Cho et al. 1983, 16 h), over twice as long as after 10 min at
    44 °C or after 12 h at 40 °C (measured 15.5, 3.5 and 4.3 h; the 10-min value misses
    the 11 h Cho et al. report, see the validation report); without aggregation the
    30-min half-time falls below 8 h."""
    decay = EXPERIMENTS["thermotolerance_decay_halftime"]
    thirty = decay(prime_C=44.0, prime_h=0.5)
    ten = decay(prime_C=44.0, prime_h=1 / 6)
    chronic = decay(prime_C=40.0, prime_h=12.0)
    assert 12.0 <= thirty <= 20.0
    assert thirty > 2 * max(ten, chronic) and min(ten, chronic) > 0
    with parameter_overrides({"heat_aggregation_rate": 0.0}):
        assert decay(prime_C=44.0, prime_h=0.5) < 8.0


def test_tolerance_and_hsp70_peak_half_a_day_after_priming():
    """Thermotolerance develops over hours, not at once: maximal 8-16 h after 30 min at
    44 °C (measured 13.0 h; Cho et al. 1983 report ~10 h, a calibration target the fit
    misses by 1 h against the 60-80 h persistence of Landry et al. 1982); HSP70 peaks
    8-16 h after 1 h at 42.5 °C (Dunning R3327: HSP72 elevated 8-16 h; measured 11.0 h)."""
    assert EXPERIMENTS["thermotolerance_peak_interval"](prime_C=44.0, prime_h=0.5) == (
        pytest.approx(12.0, abs=4.0)
    )
    assert EXPERIMENTS["hsp70_peak_time"](temperature_C=42.5, hours=1.0) == (
        pytest.approx(12.0, abs=4.0)
    )
