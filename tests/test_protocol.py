"""Tests of mhimmune.mh.protocol: expansion, units, TOML round trips and validation."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import pytest

from mhimmune.core.errors import ProtocolError
from mhimmune.core.units import ureg
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.protocol import (
    BREZOVICH_LIMIT,
    HERGT_LIMIT,
    KINDS,
    Bolus,
    MHSession,
    Protocol,
    Segment,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "analyses" / "protocols"

#: An MH session whose H·f (5 kA/m × 90 kHz = 4.5e8) stays below the Brezovich limit.
SAFE_MH = dict(
    start="7 d",
    duration="30 min",
    field="5 kA/m",
    frequency="90 kHz",
    agent="fe3o4_19nm_mpeg",
    dose="4 mg/cm^3",
)

SMALL_TOML = """
name = "small"
duration = "2 d"

[[mh_session]]
start = "2 h"
duration = "30 min"
field = "5 kA/m"
frequency = "90 kHz"
agent = "fe3o4_19nm_mpeg"
dose = "4 mg/cm^3"
every = "6 h"
count = 2

[[anti_pdl1]]
time = "3 h"
dose = "10 mg/kg"
every = "12 h"
count = 2

[[cdt]]
time = "8 h"
dose = "5 mg/kg"
metal = "cu"

[[rechallenge]]
time = "1 d"
volume = "50 mm^3"
"""


def small_chain() -> Protocol:
    """The protocol of SMALL_TOML built with the chain API (in other units)."""
    return (
        Protocol(duration="48 h", name="small")
        .mh_session(
            start="120 min",
            duration="0.5 h",
            field="5000 A/m",
            frequency="0.09 MHz",
            agent="fe3o4_19nm_mpeg",
            dose="4 mg/cm^3",
            every="0.25 d",
            count=2,
        )
        .anti_pdl1(time="3 h", dose="10 mg/kg", every="12 h", count=2)
        .cdt(time="8 h", dose="5 mg/kg", metal="cu")
        .rechallenge(time="24 h", volume="50 mm^3")
    )


# ----------------------------------------------------------------------------- expansion


def test_sessions_expanded_in_hours():
    sessions = Protocol.from_toml(SMALL_TOML).mh_sessions()
    assert [s.start_h for s in sessions] == [2.0, 8.0]
    assert [s.end_h for s in sessions] == [2.5, 8.5]
    assert [s.index for s in sessions] == [0, 1]
    s = sessions[0]
    assert isinstance(s, MHSession)
    assert (s.duration_h, s.field_kA_per_m, s.freq_kHz, s.dose_mg_per_cm3) == (0.5, 5.0, 90.0, 4.0)
    assert s.agent == "fe3o4_19nm_mpeg"
    assert s.hf_A_per_m_s == pytest.approx(4.5e8)
    with pytest.raises(AttributeError):
        s.start_h = 3.0


def test_boluses_expanded_and_sorted():
    boluses = Protocol.from_toml(SMALL_TOML).boluses()
    assert [(b.time_h, b.kind, b.index) for b in boluses] == [
        (3.0, "anti_pdl1", 0),
        (8.0, "cdt", 0),
        (15.0, "anti_pdl1", 1),
        (24.0, "rechallenge", 0),
    ]
    assert [(b.amount, b.unit) for b in boluses] == [
        (10.0, "mg/kg"),
        (5.0, "mg/kg"),
        (10.0, "mg/kg"),
        (50.0, "mm^3"),
    ]
    assert boluses[1].options == {"metal": "cu"}
    assert boluses[0].options == {}
    assert all(isinstance(b, Bolus) for b in boluses)


def test_cdt_metal_defaults_to_iron():
    plan = Protocol(duration="10 d").cdt(time="1 d", dose="5 mg/kg")
    assert plan.boluses()[0].options == {"metal": "fe"}


def test_breakpoints_and_segments():
    plan = Protocol.from_toml(SMALL_TOML)
    assert plan.duration_h == 48.0
    assert plan.breakpoints() == [0.0, 2.0, 2.5, 3.0, 8.0, 8.5, 15.0, 24.0, 48.0]
    segments = plan.segments()
    assert [(s.t0_h, s.t1_h) for s in segments] == [
        (0.0, 2.0),
        (2.0, 2.5),
        (2.5, 3.0),
        (3.0, 8.0),
        (8.0, 8.5),
        (8.5, 15.0),
        (15.0, 24.0),
        (24.0, 48.0),
    ]
    active = [None if s.session is None else s.session.index for s in segments]
    assert active == [None, 0, None, None, 1, None, None, None]
    assert all(isinstance(s, Segment) for s in segments)


def test_untreated_protocol_has_one_segment():
    plan = Protocol(duration="40 d")
    assert plan.breakpoints() == [0.0, 960.0]
    assert plan.segments() == [Segment(0.0, 960.0, None)]
    assert plan.mh_sessions() == [] and plan.boluses() == []


def test_to_frame():
    frame = Protocol.from_toml(SMALL_TOML).to_frame()
    assert list(frame.columns) == [
        "kind",
        "start_day",
        "end_day",
        "amount",
        "unit",
        "field_kA_per_m",
        "freq_kHz",
        "hf_A_per_m_s",
        "agent",
        "target_C",
    ]
    assert list(frame["kind"]) == [
        "mh_session",
        "anti_pdl1",
        "mh_session",
        "cdt",
        "anti_pdl1",
        "rechallenge",
    ]
    assert frame["start_day"].tolist() == pytest.approx(
        [2 / 24, 3 / 24, 8 / 24, 8 / 24, 15 / 24, 1.0]
    )
    assert frame.loc[0, "end_day"] == pytest.approx(2.5 / 24)
    assert math.isnan(frame.loc[1, "end_day"]) and math.isnan(frame.loc[1, "hf_A_per_m_s"])
    assert frame.loc[0, "hf_A_per_m_s"] == pytest.approx(4.5e8)
    assert frame.loc[0, "agent"] == "fe3o4_19nm_mpeg"
    assert frame.loc[5, "unit"] == "mm^3"


# ----------------------------------------------------------------------------- API and I/O


def test_chain_equals_toml():
    assert small_chain() == Protocol.from_toml(SMALL_TOML)
    assert hash(small_chain()) == hash(Protocol.from_toml(SMALL_TOML))


def test_to_toml_round_trip():
    plan = small_chain()
    text = plan.to_toml()
    assert "[[mh_session]]" in text and "[[rechallenge]]" in text
    assert Protocol.from_toml(text) == plan
    assert Protocol.from_dict(plan.to_dict()) == plan


def test_to_toml_round_trip_of_awkward_values():
    plan = (
        Protocol(
            duration="1000 min", name='quote " and \\ backslash', description="two\nlines\tand tab"
        )
        .bso(time="20 min", dose="0.3 mg/kg")
        .glucose_oxidase(time="1e-3 h", dose="1e-4 g/kg")
        .hsp_inhibitor(time="1 s", dose="2.5 mg/kg", every="7 min", count=4)
        .cd8_depletion(time="0 d", dose="200 ug/kg")
    )
    assert Protocol.from_toml(plan.to_toml()) == plan


def test_from_toml_reads_paths(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(SMALL_TOML, encoding="utf-8")
    assert Protocol.from_toml(path) == Protocol.from_toml(str(path)) == small_chain()


def test_builders_return_new_protocols():
    base = Protocol(duration="40 d", name="base")
    plan = base.anti_pdl1(time="7 d", dose="10 mg/kg")
    assert plan is not base and base.boluses() == [] and len(plan.boluses()) == 1
    with pytest.raises(AttributeError):
        plan.name = "other"
    longer = plan.with_duration("60 d")
    assert longer.duration_h == 1440.0 and plan.duration_h == 960.0
    assert longer.boluses() == plan.boluses()


def test_repr_is_short():
    text = repr(small_chain())
    assert text == "<Protocol 'small': 2 d, mh_session×2, anti_pdl1×2, cdt×1, rechallenge×1>"
    assert repr(Protocol(duration="40 d")) == "<Protocol 'protocol': 40 d, no interventions>"


def test_pickle_round_trip_does_not_warn_again():
    with pytest.warns(HfWarning):
        plan = Protocol.from_toml(EXAMPLES / "mh.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pickle.loads(pickle.dumps(plan)) == plan


def test_protocol_level_fields():
    plan = Protocol.from_dict({"duration": "40 d", "description": "text"})
    assert plan.name == "protocol" and plan.description == "text"
    assert plan.allow_above_hergt is False


@pytest.mark.parametrize(
    "given, unit_field, expected",
    [
        ("30 min", "duration", 0.5),
        ("0.5 h", "duration", 0.5),
        (ureg.Quantity(30, "minute"), "duration", 0.5),
        ("20 kA/m", "field", 20.0),
        ("20000 A/m", "field", 20.0),
        ("300 kHz", "frequency", 300.0),
        ("0.3 MHz", "frequency", 300.0),
        ("4 mg/cm^3", "dose", 4.0),
    ],
)
def test_session_unit_parsing(given, unit_field, expected):
    kwargs = dict(SAFE_MH, field="1 kA/m", frequency="100 kHz")
    kwargs[unit_field] = given
    session = Protocol(duration="40 d").mh_session(**kwargs).mh_sessions()[0]
    got = {
        "duration": session.duration_h,
        "field": session.field_kA_per_m,
        "frequency": session.freq_kHz,
        "dose": session.dose_mg_per_cm3,
    }[unit_field]
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("dose", ["10 mg/kg", "0.01 g/kg", "10000 ug/kg"])
def test_drug_dose_parsing(dose):
    assert Protocol(duration="40 d").anti_pdl1(time="7 d", dose=dose).boluses()[
        0
    ].amount == pytest.approx(10.0)


def test_time_parsing():
    a = Protocol(duration="40 d").anti_pdl1(time="7 d", dose="10 mg/kg")
    b = Protocol(duration="960 h").anti_pdl1(time="168 h", dose="10 mg/kg")
    assert a == b and a.boluses()[0].time_h == 168.0


def test_all_kinds_have_builders():
    for kind in KINDS:
        assert callable(getattr(Protocol, kind))


# ----------------------------------------------------------------------------- validation


def _mh(**changes):
    return dict(SAFE_MH, **changes)


BASE = Protocol(duration="40 d")

BAD = {
    "negative dose": (
        lambda: BASE.anti_pdl1(time="7 d", dose="-1 mg/kg"),
        r"^anti_pdl1\[0\]\.dose: must be > 0 mg/kg and ≤ 50 mg/kg \(got -1",
    ),
    "zero session duration": (
        lambda: BASE.mh_session(**_mh(duration="0 min")),
        r"^mh_session\[0\]\.duration: must be > 0 h and ≤ 43830 h \(5 years\) \(got 0 minute\)",
    ),
    "negative duration of second session": (
        lambda: BASE.mh_session(**_mh()).mh_session(**_mh(start="9 d", duration="-5 min")),
        r"^mh_session\[1\]\.duration: must be > 0 h and ≤ 43830 h \(5 years\) \(got -5 minute\)",
    ),
    "zero protocol duration": (
        lambda: Protocol(duration="0 d"),
        r"^duration: must be > 0 h and ≤ 43830 h \(5 years\) \(got 0 day\)",
    ),
    "NaN dose": (
        lambda: BASE.bso(time="7 d", dose="nan mg/kg"),
        r"^bso\[0\]\.dose: must be a finite number > 0 mg/kg",
    ),
    "NaN time": (
        lambda: Protocol.from_toml('duration = "40 d"\n[[bso]]\ntime = "nan d"\ndose = "1 mg/kg"'),
        r"^bso\[0\]\.time: must be a finite number ≥ 0 h",
    ),
    "negative time": (
        lambda: BASE.hsp_inhibitor(time="-1 d", dose="1 mg/kg"),
        r"^hsp_inhibitor\[0\]\.time: must be ≥ 0 h and ≤ 43830 h \(5 years\) \(got -1 day\)",
    ),
    "negative volume": (
        lambda: BASE.rechallenge(time="20 d", volume="-50 mm^3"),
        r"^rechallenge\[0\]\.volume: must be > 0 mm\^3",
    ),
    "overlapping sessions": (
        lambda: BASE.mh_session(**_mh()).mh_session(**_mh(start="168.25 h")),
        r"^mh_session\[1\]\.start: mh_session\[0\] \(day 7\.00–7\.02\) overlaps "
        r"mh_session\[1\] \(day 7\.01–7\.03\); MH sessions must not overlap",
    ),
    "overlapping repeats": (
        lambda: BASE.mh_session(**_mh(every="10 min", count=2)),
        r"^mh_session\[0\]\.every: mh_session\[0\] repeat 1 .* overlaps "
        r"mh_session\[0\] repeat 2",
    ),
    "unknown kind": (
        lambda: Protocol.from_toml('duration = "40 d"\n[[radiotherapy]]\ntime = "7 d"\n'),
        r"^radiotherapy: unknown intervention kind; known kinds: mh_session, anti_pdl1, anti_pd1, "
        r"anti_ctla4, cdt",
    ),
    "unknown top-level key": (
        lambda: Protocol.from_dict({"duration": "40 d", "durration": "30 d"}),
        r"^durration: unknown top-level key; allowed keys: name, duration, description, "
        r"allow_above_hergt",
    ),
    "unknown key in kind": (
        lambda: Protocol.from_toml(
            'duration = "40 d"\n[[anti_pdl1]]\ntime = "7 d"\ndos = "10 mg/kg"\n'
        ),
        r"^anti_pdl1\[0\]\.dos: unknown key for anti_pdl1; allowed keys: time, dose, every, "
        r"count",
    ),
    "missing required key": (
        lambda: Protocol.from_toml('duration = "40 d"\n[[anti_pdl1]]\ntime = "7 d"\n'),
        r"^anti_pdl1\[0\]\.dose: required, e\.g\. dose = '10 mg/kg'",
    ),
    "missing protocol duration": (
        lambda: Protocol.from_dict({"name": "x"}),
        r"^duration: required",
    ),
    "wrong unit": (
        lambda: BASE.mh_session(**_mh(field="20 kHz")),
        r"^mh_session\[0\]\.field: 20 kHz cannot be converted to kA/m.*e\.g\. '20 kA/m'",
    ),
    "missing unit (number)": (
        lambda: BASE.mh_session(**_mh(start=7)),
        r"^mh_session\[0\]\.start: 7 needs a unit, e\.g\. '7 d'",
    ),
    "missing unit (string)": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10"),
        r"^anti_pdl1\[0\]\.dose: 10 needs a unit, e\.g\. '10 mg/kg'",
    ),
    "H·f above Hergt": (
        lambda: BASE.mh_session(**_mh(field="30 kA/m", frequency="200 kHz")),
        r"^mh_session\[0\]\.field: H·f = 6e9 A m\^-1 s\^-1 \(30 kA/m × 200 kHz\) exceeds the "
        r"Hergt & Dutz \(2007\) limit 5e9 A m\^-1 s\^-1",
    ),
    "field above 100 kA/m": (
        lambda: BASE.mh_session(**_mh(field="150 kA/m", frequency="10 kHz")),
        r"^mh_session\[0\]\.field: must be > 0 kA/m and ≤ 100 kA/m \(got 150",
    ),
    "frequency above 10 MHz": (
        lambda: BASE.mh_session(**_mh(field="0.1 kA/m", frequency="20 MHz")),
        r"^mh_session\[0\]\.frequency: must be ≥ 1 kHz and ≤ 10000 kHz \(got 20",
    ),
    "frequency below 1 kHz": (
        lambda: BASE.mh_session(**_mh(frequency="500 Hz")),
        r"^mh_session\[0\]\.frequency: must be ≥ 1 kHz and ≤ 10000 kHz \(got 500",
    ),
    "event at the protocol end": (
        lambda: BASE.anti_pdl1(time="40 d", dose="10 mg/kg"),
        r"^anti_pdl1\[0\]\.time: starts at day 40\.00, at or after the end of the protocol; "
        r"events must start before day 40\.00",
    ),
    "repeat after the protocol end": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10 mg/kg", every="10 d", count=5),
        r"^anti_pdl1\[0\]\.count: starts at day 47\.00 \(repeat 5 of 5\).*"
        r"before day 40\.00",
    ),
    "session ending after the protocol": (
        lambda: BASE.mh_session(**_mh(start="959.9 h")),
        r"^mh_session\[0\]\.duration: session ends at day 40\.00?.*must end by day 40\.00",
    ),
    "shortened below the events": (
        lambda: BASE.anti_pdl1(time="30 d", dose="10 mg/kg").with_duration("20 d"),
        r"^anti_pdl1\[0\]\.time: starts at day 30\.00.*before day 20\.00",
    ),
    "zero count": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10 mg/kg", every="1 d", count=0),
        r"^anti_pdl1\[0\]\.count: must be an integer ≥ 1 \(got 0\)",
    ),
    "fractional count": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10 mg/kg", every="1 d", count=2.5),
        r"^anti_pdl1\[0\]\.count: must be an integer ≥ 1 \(got 2\.5\)",
    ),
    "count without every": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10 mg/kg", count=3),
        r"^anti_pdl1\[0\]\.every: required when count = 3 > 1",
    ),
    "zero every": (
        lambda: BASE.anti_pdl1(time="7 d", dose="10 mg/kg", every="0 d", count=3),
        r"^anti_pdl1\[0\]\.every: must be > 0 h when count > 1 \(got 0 day\)",
    ),
    "unknown agent": (
        lambda: BASE.mh_session(**_mh(agent="magnetite")),
        r"^mh_session\[0\]\.agent: unknown agent 'magnetite'; known agents: fe3o4_10nm",
    ),
    "unknown metal": (
        lambda: BASE.cdt(time="7 d", dose="5 mg/kg", metal="zn"),
        r"^cdt\[0\]\.metal: unknown value 'zn'; allowed: fe, cu, mn",
    ),
    "kind not a table array": (
        lambda: Protocol.from_dict({"duration": "40 d", "bso": "7 d"}),
        r"^bso: must be an array of tables \(\[\[bso\]\]\)",
    ),
    "name not a string": (
        lambda: Protocol(duration="40 d", name=3),
        r"^name: must be a string \(got 3\)",
    ),
    "allow_above_hergt not a bool": (
        lambda: Protocol.from_dict({"duration": "40 d", "allow_above_hergt": "yes"}),
        r"^allow_above_hergt: must be true or false",
    ),
    "invalid TOML": (
        lambda: Protocol.from_toml('duration = "40 d"\n[[bso]\n'),
        r"^protocol: invalid TOML",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_protocol_is_rejected(name):
    build, match = BAD[name]
    with pytest.raises(ProtocolError, match=match):
        build()


def test_errors_from_files_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'duration = "40 d"\n[[anti_pdl1]]\ntime = "7 d"\ndose = "-1 mg/kg"\n', encoding="utf-8"
    )
    with pytest.raises(ProtocolError, match=r"^anti_pdl1\[0\]\.dose: .*bad\.toml"):
        Protocol.from_toml(path)
    with pytest.raises(ProtocolError, match=r"does not exist"):
        Protocol.from_toml(tmp_path / "missing.toml")


def test_touching_sessions_are_allowed():
    plan = BASE.mh_session(**_mh(every="30 min", count=3))
    assert [s.start_h for s in plan.mh_sessions()] == [168.0, 168.5, 169.0]
    assert plan.breakpoints() == [0.0, 168.0, 168.5, 169.0, 169.5, 960.0]


# ----------------------------------------------------------------------------- H·f warnings


def test_hf_between_limits_warns_once_per_protocol():
    assert BREZOVICH_LIMIT == 4.85e8 and HERGT_LIMIT == 5e9
    with pytest.warns(
        HfWarning,
        match=r"H·f above the Brezovich \(1988\) limit 4\.85e8 "
        r"A m\^-1 s\^-1 in mh_session\[0\] \(3 sessions",
    ) as rec:
        plan = (
            BASE.mh_session(**_mh(field="15 kA/m", frequency="200 kHz", every="2 d", count=3))
            .anti_pdl1(time="7 d", dose="10 mg/kg")
            .with_duration("50 d")
        )
    assert len([w for w in rec if issubclass(w.category, HfWarning)]) == 1
    assert plan.mh_sessions()[0].hf_A_per_m_s == pytest.approx(3e9)


def test_hf_below_brezovich_does_not_warn():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        plan = BASE.mh_session(**_mh())
    assert [w for w in rec if issubclass(w.category, HfWarning)] == []
    assert plan.mh_sessions()[0].hf_A_per_m_s <= 4.85e8


def test_above_hergt_allowed_only_warns():
    with pytest.warns(
        HfWarning,
        match=r"mh_session\[0\] \(1 session from day 7\.00, "
        r"H·f = 6e9\)",
    ):
        plan = Protocol(duration="40 d", allow_above_hergt=True).mh_session(
            **_mh(field="30 kA/m", frequency="200 kHz")
        )
    assert plan.allow_above_hergt
    assert plan.mh_sessions()[0].hf_A_per_m_s == pytest.approx(6e9)
    with pytest.warns(HfWarning):
        assert Protocol.from_toml(plan.to_toml()) == plan


# ----------------------------------------------------------------------------- examples


def test_example_protocols_load():
    untreated = Protocol.from_toml(EXAMPLES / "untreated.toml")
    assert untreated.duration_h == 960.0 and untreated.breakpoints() == [0.0, 960.0]

    anti = Protocol.from_toml(EXAMPLES / "anti_pdl1.toml")
    assert [(b.time_h, b.kind, b.amount) for b in anti.boluses()] == [
        (168.0, "anti_pdl1", 10.0),
        (240.0, "anti_pdl1", 10.0),
        (312.0, "anti_pdl1", 10.0),
    ]

    with pytest.warns(HfWarning):
        mh = Protocol.from_toml(EXAMPLES / "mh.toml")
    assert [(s.start_h, s.end_h) for s in mh.mh_sessions()] == [
        (168.0, 168.5),
        (216.0, 216.5),
        (264.0, 264.5),
    ]
    assert {
        (s.field_kA_per_m, s.freq_kHz, s.agent, s.dose_mg_per_cm3) for s in mh.mh_sessions()
    } == {(15.0, 200.0, "fe3o4_19nm_mpeg", 3.5)}

    with pytest.warns(HfWarning):
        both = Protocol.from_toml(EXAMPLES / "mh_plus_pdl1.toml")
    assert both.mh_sessions() == mh.mh_sessions()
    assert both.boluses() == anti.boluses()
    assert all(p.duration_h == 960.0 for p in (mh, anti, both))


# ----------------------------------------------------------------------------- dose units, feedback


def _session(**kw):
    args = dict(
        start="1 d",
        duration="30 min",
        field="10 kA/m",
        frequency="100 kHz",
        agent="fe3o4_10nm",
        dose="2 mg/cm^3",
    )
    args.update(kw)
    return Protocol("5 d").mh_session(**args)


def test_particle_dose_in_mg_per_kg_needs_uptake_and_round_trips():
    plan = _session(dose="10 mg/kg", uptake=0.1)
    s = plan.mh_sessions()[0]
    assert (s.dose, s.dose_unit, s.uptake_fraction) == (10.0, "mg/kg", 0.1)
    assert s.dose_mg_per_cm3 is None
    assert Protocol.from_toml(plan.to_toml()) == plan


def test_feedback_session_round_trips():
    plan = _session(target="43 degC")
    assert plan.mh_sessions()[0].target_C == pytest.approx(43.0)
    assert Protocol.from_toml(plan.to_toml()) == plan
    assert plan.to_frame()["target_C"].iloc[0] == pytest.approx(43.0)


@pytest.mark.parametrize(
    "kw, message",
    [
        (
            dict(dose="10 mg/kg"),
            r"mh_session\[0\]\.uptake: required with a dose in mg/kg.*\(0, 1\]",
        ),
        (
            dict(dose="2 mg/cm^3", uptake=0.1),
            r"mh_session\[0\]\.uptake: only allowed with a dose in mg/kg",
        ),
        (
            dict(dose="10 mg/kg", uptake=1.5),
            r"mh_session\[0\]\.uptake: must be a fraction in \(0, 1\]",
        ),
        (dict(dose="10 mg"), r"mh_session\[0\]\.dose: 10 mg is neither mg/cm\^3 nor mg/kg"),
        (dict(target="65 degC"), r"mh_session\[0\]\.target: must be ≥ 37 degC and ≤ 60 degC"),
        (dict(target="43 kA/m"), r"mh_session\[0\]\.target"),
    ],
)
def test_bad_dose_units_and_targets(kw, message):
    with pytest.raises(ProtocolError, match=message):
        _session(**kw)


def test_shipped_protocol_loads_by_name_with_top_level_keys_replaced():
    """``Protocol.shipped`` reads analyses/protocols/<name>.toml (the MH arm: three
    sessions on days 7, 9, 11) and replaces the top-level keys given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        plan = Protocol.shipped("mh", duration="20 d", tumour="mc38")
    assert plan.duration_h == pytest.approx(480.0)
    assert plan.tumour == "mc38"
    assert [s.start_h / 24 for s in plan.mh_sessions()] == pytest.approx([7.0, 9.0, 11.0])


@pytest.mark.parametrize(
    "name, kwargs, field",
    [("no_such_arm", {}, "no shipped protocol 'no_such_arm'"), ("mh", {"colour": 1}, "colour:")],
)
def test_shipped_protocol_rejects_unknown_names_and_keys(name, kwargs, field):
    """An unknown shipped name or top-level key gets one line naming it."""
    with pytest.raises(ProtocolError, match=field):
        Protocol.shipped(name, **kwargs)
