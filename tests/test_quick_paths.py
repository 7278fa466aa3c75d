"""The quick paths of ensemble runs give exactly what the general paths give.

A schedule template builds each protocol's entries straight from the factor numbers
(:func:`mhimmune.mh.kinds.quick_entry`, no pint quantities) and validates them once;
the builder methods, called with quantities, are the general path. For factor values in
and out of their ranges (including feedback sessions, BSO, HSP inhibitor and CDT doses,
anti-PD-1 and anti-CTLA-4 series), both paths give equal protocols (entries, expanded
sessions and doses, H·f flags, text) or the same error message.
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

from mhimmune.core.errors import ProtocolError
from mhimmune.core.units import ureg
from mhimmune.mh import template as template_module
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.fields import NOT_QUICK, parse_field, quick_field
from mhimmune.mh.kinds import KIND_SPECS, parse_entry, quick_entry
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate


def _random_factors(rng: np.random.Generator) -> dict[str, float]:
    """About half of the factors, mostly inside their ranges, some beyond them."""
    out = {}
    for name, info in PROTOCOL_FACTORS.items():
        if rng.random() < 0.5:
            continue
        lo, hi = info.lower, info.upper
        if rng.random() < 0.15:
            lo, hi = lo - (hi - lo), hi + (hi - lo)
        x = float(rng.uniform(lo, hi))
        if info.kind == "count":
            x = float(round(x))
        elif info.kind == "switch":
            x = float(rng.random() < 0.5)
        out[name] = x
    return out


def _outcome(template: ScheduleTemplate, factors: dict[str, float]):
    try:
        p = template.build(factors)
    except ProtocolError as exc:
        return ("error", str(exc))
    return ("ok", p, p.to_dict(), p.mh_sessions(), p.boluses(), repr(p))


def test_quick_template_build_gives_exactly_the_builder_methods_protocols(monkeypatch):
    """400 random factor combinations: equal protocols (or equal errors) on both paths."""
    base = ScheduleTemplate("40 d", bso=1)
    rng = np.random.default_rng(7)
    rows = [_random_factors(rng) for _ in range(400)]
    rows += [{"feedback": 1.0, "n_sessions": 2.0}, {"cdt": 1.0, "hsp_inhibitor": 1.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        quick = [_outcome(pickle.loads(pickle.dumps(base)), f) for f in rows]
        monkeypatch.setattr(template_module, "quick_entry", lambda *a: None)
        general = [_outcome(pickle.loads(pickle.dumps(base)), f) for f in rows]
    assert quick == general
    n_ok = sum(q[0] == "ok" for q in quick)
    assert 100 < n_ok < len(rows)  # both outcomes are exercised
    assert any(q[0] == "ok" and q[3] and q[3][0].target_C is not None for q in quick)


def test_quick_template_build_is_bitwise_the_general_one_on_session_numbers(monkeypatch):
    """Session starts, lengths, fields and doses are the same floats on both paths."""
    factors = {"session_interval_day": 1.7, "session_duration_min": 37.3, "field_kA_per_m": 9.1}
    quick = ScheduleTemplate("40 d").build(factors)
    monkeypatch.setattr(template_module, "quick_entry", lambda *a: None)
    general = ScheduleTemplate("40 d").build(factors)
    for a, b in zip(quick.mh_sessions(), general.mh_sessions(), strict=True):
        for x, y in zip(
            (a.start_h, a.end_h, a.duration_h, a.field_kA_per_m, a.dose, a.hf_A_per_m_s),
            (b.start_h, b.end_h, b.duration_h, b.field_kA_per_m, b.dose, b.hf_A_per_m_s),
            strict=True,
        ):
            assert math.copysign(1.0, x) == math.copysign(1.0, y) and x.hex() == y.hex()
    assert quick.breakpoints() == general.breakpoints()


@pytest.mark.parametrize(
    "kind, key, value",
    [
        ("mh_session", "field", 15.0),
        ("mh_session", "frequency", 1.0),
        ("mh_session", "dose", 3.5),
        ("mh_session", "target", 43.0),
        ("anti_pdl1", "dose", 50.0),
        ("anti_pdl1", "time", 0.0),
    ],
)
def test_quick_field_gives_what_parse_field_gives_in_range(kind, key, value):
    """A value in range: the same internal value as parsing it with its unit."""
    spec = KIND_SPECS[kind].fields[key]
    q = ureg.Quantity(value, spec.unit)
    assert quick_field(value, spec) == parse_field(q, spec, f"{kind}[0].{key}")


@pytest.mark.parametrize(
    "kind, key, value",
    [
        ("mh_session", "field", 0.0),
        ("mh_session", "field", 100.5),
        ("mh_session", "frequency", 0.5),
        ("mh_session", "target", 61.0),
        ("anti_pdl1", "dose", 50.1),
        ("anti_pdl1", "time", -1.0),
        ("anti_pdl1", "time", math.nan),
        ("anti_pdl1", "count", 0),
        ("anti_pdl1", "count", 2.0),
        ("mh_session", "agent", "no_such_agent"),
    ],
)
def test_quick_field_leaves_out_of_range_values_to_parse_field(kind, key, value):
    """Out of range or of another type: no quick value (parsing raises the error)."""
    assert quick_field(value, KIND_SPECS[kind].fields[key]) is NOT_QUICK


def test_quick_entry_equals_parse_entry_and_refuses_what_needs_checks():
    """An anti-PD-L1 series from numbers equals the parsed one; a repeat without its
    interval, an unknown key and an uptake with a mg/cm^3 dose give no quick entry."""
    given = {"time": 168.0, "dose": 10.0, "every": 72.0, "count": 3}
    parsed = parse_entry(
        "anti_pdl1", 0, {"time": "168 h", "dose": "10 mg/kg", "every": "72 h", "count": 3}
    )
    assert quick_entry("anti_pdl1", 0, given) == parsed
    assert quick_entry("anti_pdl1", 0, {**given, "every": None}) is None
    assert quick_entry("anti_pdl1", 0, {**given, "colour": 1.0}) is None
    mh = {"start": 0.0, "duration": 0.5, "field": 15.0, "frequency": 200.0}
    mh |= {"agent": "fe3o4_19nm_mpeg", "dose": 4.0}
    assert quick_entry("mh_session", 0, mh) is not None
    assert quick_entry("mh_session", 0, {**mh, "uptake": 0.1}) is None


def _arrays_identical(a: tuple, b: tuple) -> bool:
    return all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("steps", [(6.0, 1.0 / 60.0), (24.0, 0.1), (0.5, 1.0 / 7.0)])
def test_tiled_layout_is_bitwise_the_segment_by_segment_layout(model, steps):
    """Recorded times, segment starts and bounds of 60 template schedules (session and
    dose times on and off the output grid): the same arrays, bit for bit, on both paths."""
    from mhimmune.core import simulate as engine
    from mhimmune.mh.inputs import protocol_schedule

    template = ScheduleTemplate("40 d", bso=1)
    rng = np.random.default_rng(3)
    rows = [{}, {"mh_start_day": 0.0}, {"session_interval_day": 0.25, "n_sessions": 4.0}]
    rows += [_random_factors(rng) for _ in range(120)]
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        for factors in rows:
            try:
                schedule = protocol_schedule(model, template.build(factors))
            except ProtocolError:
                continue
            bounds = np.array([(s.t0_h, s.t1_h) for s in schedule.segments]).reshape(-1, 2)
            tiled = engine._tiled_layout(schedule, bounds, *steps)
            general = engine._segment_layout(schedule, bounds, *steps)
            assert _arrays_identical(tiled, general)
            assert _arrays_identical(engine._compute_layout(schedule, *steps), general)
            checked += 1
    assert checked >= 60


def test_layout_of_segments_that_do_not_tile_the_period_goes_segment_by_segment():
    """A schedule with a gap between its segments records only times inside them."""
    from mhimmune.core import simulate as engine
    from mhimmune.core.schedule import Schedule, Segment

    schedule = Schedule(10.0, (Segment(0.0, 4.0, {}), Segment(6.0, 10.0, {})))
    _bounds, starts, time_h = engine._compute_layout(schedule, 1.0, 0.5)
    assert time_h.tolist() == [0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert starts.tolist() == [0, 4, 8]
