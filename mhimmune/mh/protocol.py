"""Treatment schedules as data: magnetic-hyperthermia sessions and drug boluses.

A :class:`Protocol` is an immutable, validated description of one treatment plan.
It is built either by chaining builder methods::

    plan = (Protocol(duration="40 d", name="MH + anti-PD-L1")
            .mh_session(start="7 d", duration="30 min", field="15 kA/m",
                        frequency="200 kHz", agent="fe3o4_19nm_mpeg",
                        dose="4 mg/cm^3", every="2 d", count=3)
            .anti_pdl1(time="7 d", dose="10 mg/kg", every="3 d", count=3))

or from a TOML file whose table arrays carry the same names as the builder methods
(``[[mh_session]]``, ``[[anti_pdl1]]``, ...). Quantities are strings with units or
:class:`pint.Quantity` objects; internally every number is a float in hours, kA/m,
kHz, mg Fe per cm³ of tumour, mg/kg or mm³.

Each intervention kind is described by one entry of :data:`~mhimmune.mh.kinds.KIND_SPECS`;
parsing, validation and the builder methods are generated from that table. Validation
runs at construction, so an invalid protocol cannot exist: every problem raises
:class:`~mhimmune.core.errors.ProtocolError` whose message starts with the path of
the offending field (``mh_session[1].duration: must be > 0 (got -5 minute)``).
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mhimmune.core.errors import ProtocolError
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import hours_to_days
from mhimmune.mh.events import (
    BREZOVICH_LIMIT,
    HERGT_LIMIT,
    Bolus,
    MHSession,
    Segment,
    check_hf,
    check_timing,
    expand_boluses,
    expand_sessions,
    format_sci,
)
from mhimmune.mh.field_safety import HfWarning, show_once
from mhimmune.mh.kinds import (
    DURATION,
    KIND_SPECS,
    KINDS,
    TOP_KEYS,
    TREATMENT_KINDS,
    Entry,
    FieldSpec,
    KindSpec,
    coerce_entries,
    day_text,
    format_time,
    format_value,
    parse_entry,
    parse_quantity,
)
from mhimmune.mh.presets import preset_names
from mhimmune.mh.protocol_toml import dumps, read_source

__all__ = [
    "Protocol",
    "MHSession",
    "Bolus",
    "Segment",
    "FieldSpec",
    "KindSpec",
    "KINDS",
    "TREATMENT_KINDS",
    "KIND_SPECS",
    "BREZOVICH_LIMIT",
    "HERGT_LIMIT",
]


def _builder(kind: str) -> Callable[..., Protocol]:
    """The builder method of *kind*: keyword-only arguments, documented from its spec."""
    spec = KIND_SPECS[kind]
    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(
                key,
                keyword,
                default=inspect.Parameter.empty if f.required else f.default,
                annotation=spec.annotation(key),
            )
            for key, f in spec.fields.items()
        ],
        return_annotation="Protocol",
    )

    # keyword arguments in signature order with their defaults: what signature.bind and
    # apply_defaults give for a call with known keywords and every required one
    defaults = [(key, p.default) for key, p in signature.parameters.items() if key != "self"]
    required = {key for key, default in defaults if default is inspect.Parameter.empty}
    known = frozenset(key for key, _default in defaults)

    def method(self: Protocol, *args: Any, **kwargs: Any) -> Protocol:
        if args or not (required <= kwargs.keys() <= known):
            bound = signature.bind(self, *args, **kwargs)  # TypeError as for a written method
            bound.apply_defaults()
            values = {k: v for k, v in bound.arguments.items() if k != "self"}
        else:  # the common call, without inspect's binding (a template builds many)
            values = {key: kwargs.get(key, default) for key, default in defaults}
        return self._add(kind, **values)

    method.__name__ = kind
    method.__qualname__ = f"Protocol.{kind}"
    method.__doc__ = spec.docstring()
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


class Protocol:
    """An immutable, validated treatment schedule; builder methods return new protocols.

    Parameters
    ----------
    duration
        Length of the simulated period, a time with a unit (``"40 d"``); must be > 0
        and at most 5 years.
    name
        Short name of the protocol.
    description
        Optional free text.
    allow_above_hergt
        Accept MH sessions with H·f above the Hergt–Dutz limit (5e9 A m^-1 s^-1),
        with a warning instead of an error.
    tumour, host
        Names of a tumour and a host preset (:mod:`mhimmune.mh.presets`: ``"4t1"``,
        ``"nude"``...) that :func:`~mhimmune.mh.simulation.simulate` applies; ``None``
        keeps the model's.
    """

    __slots__ = (
        "_name",
        "_duration_h",
        "_description",
        "_allow",
        "_presets",
        "_entries",
        "_sessions",
        "_boluses",
        "_hf_flags",
    )
    _name: str
    _duration_h: float
    _description: str | None
    _allow: bool
    _presets: tuple[str | None, str | None]
    _entries: tuple[Entry, ...]
    _sessions: tuple[MHSession, ...]
    _boluses: tuple[Bolus, ...]
    _hf_flags: tuple[tuple[int, float], ...]

    def __init__(
        self,
        duration: Any,
        *,
        name: str = "protocol",
        description: str | None = None,
        allow_above_hergt: bool = False,
        tumour: str | None = None,
        host: str | None = None,
    ):
        duration_h = parse_quantity(duration, DURATION, "duration")
        if not isinstance(name, str):
            raise ProtocolError(f"name: must be a string (got {name!r})")
        if description is not None and not isinstance(description, str):
            raise ProtocolError(f"description: must be a string (got {description!r})")
        if not isinstance(allow_above_hergt, bool):
            raise ProtocolError(
                f"allow_above_hergt: must be true or false (got {allow_above_hergt!r})"
            )
        presets = (_preset("tumour", tumour), _preset("host", host))
        self._init(name, duration_h, description, allow_above_hergt, (), None, presets)

    # -- construction ----------------------------------------------------------------

    def _init(
        self,
        name: str,
        duration_h: float,
        description: str | None,
        allow: bool,
        entries: tuple[Entry, ...],
        parent: Protocol | None,
        presets: tuple[str | None, str | None] = (None, None),
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_name", name)
        set_(self, "_presets", presets)
        set_(self, "_duration_h", duration_h)
        set_(self, "_description", description)
        set_(self, "_allow", allow)
        set_(self, "_entries", tuple(sorted(entries, key=lambda e: (KINDS.index(e.kind), e.index))))
        self._validate(parent)

    def _derive(
        self, *, duration_h: float | None = None, entries: tuple[Entry, ...] | None = None
    ) -> Protocol:
        new = object.__new__(Protocol)
        new._init(
            self._name,
            self._duration_h if duration_h is None else duration_h,
            self._description,
            self._allow,
            self._entries if entries is None else entries,
            self,
            self._presets,
        )
        return new

    def _validate(self, parent: Protocol | None) -> None:
        """Check the events against each other and the duration; expand repeats; warn on H·f."""
        check_timing(self._entries, self._duration_h)
        flags = check_hf(self._entries, self._allow)
        object.__setattr__(self, "_sessions", expand_sessions(self._entries))
        object.__setattr__(self, "_boluses", expand_boluses(self._entries))
        signature = tuple((e.index, hf) for e, hf in flags)
        object.__setattr__(self, "_hf_flags", signature)
        if flags and (parent is None or parent._hf_flags != signature):
            listed = "; ".join(
                f"{e.path} ({e['count']} session{'s' if e['count'] > 1 else ''} from "
                f"{day_text(e['start'])}, H·f = {format_sci(hf)})"
                for e, hf in flags
            )
            show_once()  # once per protocol text, unless the caller's filters say otherwise
            warnings.warn(
                f"protocol {self._name!r}: H·f above the Brezovich (1988) limit "
                f"{format_sci(BREZOVICH_LIMIT)} A m^-1 s^-1 in {listed}",
                HfWarning,
                stacklevel=_caller_level(),
            )

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Protocol is immutable; builder methods return a new protocol")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("Protocol is immutable")

    def _add(self, kind: str, **kwargs: Any) -> Protocol:
        given = {k: v for k, v in kwargs.items() if v is not None}
        index = sum(1 for e in self._entries if e.kind == kind)
        entry = parse_entry(kind, index, given)
        return self._derive(entries=self._entries + (entry,))

    # -- builders: one per intervention kind, generated from KIND_SPECS ---------------

    mh_session = _builder("mh_session")
    anti_pdl1 = _builder("anti_pdl1")
    anti_pd1 = _builder("anti_pd1")
    anti_ctla4 = _builder("anti_ctla4")
    cdt = _builder("cdt")
    bso = _builder("bso")
    hsp_inhibitor = _builder("hsp_inhibitor")
    glucose_oxidase = _builder("glucose_oxidase")
    cd8_depletion = _builder("cd8_depletion")
    cd4_depletion = _builder("cd4_depletion")
    nk_depletion = _builder("nk_depletion")
    macrophage_depletion = _builder("macrophage_depletion")
    treg_depletion = _builder("treg_depletion")
    rechallenge = _builder("rechallenge")
    vaccination = _builder("vaccination")

    def with_entries(self, entries: Sequence[Entry]) -> Protocol:
        """Return a copy with validated *entries* (from :func:`~mhimmune.mh.kinds.parse_entry`
        or :func:`~mhimmune.mh.kinds.quick_entry`) added, checked together once."""
        return self._derive(entries=self._entries + tuple(entries))

    def with_duration(self, duration: Any) -> Protocol:
        """Return a copy with another protocol duration (``"60 d"``; > 0, ≤ 5 years)."""
        return self._derive(duration_h=parse_quantity(duration, DURATION, "duration"))

    # -- I/O -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        """Build a protocol from a mapping shaped like the TOML file.

        Parameters
        ----------
        data
            Top-level keys ``name``, ``duration`` (time, required), ``description``,
            ``allow_above_hergt`` and one list of tables per intervention kind.
        """
        if not isinstance(data, Mapping):
            raise ProtocolError(f"protocol: expected a table of keys, got {data!r}")
        for key, value in data.items():
            if key in TOP_KEYS or key in KIND_SPECS:
                continue
            if isinstance(value, (list, tuple, Mapping)):
                raise ProtocolError(
                    f"{key}: unknown intervention kind; known kinds: {', '.join(KINDS)}"
                )
            raise ProtocolError(
                f"{key}: unknown top-level key; allowed keys: {', '.join(TOP_KEYS + KINDS)}"
            )
        if "duration" not in data:
            raise ProtocolError("duration: required, e.g. duration = '40 d'")
        base = cls(
            data["duration"],
            name=data.get("name", "protocol"),
            description=data.get("description"),
            allow_above_hergt=data.get("allow_above_hergt", False),
            tumour=data.get("tumour"),
            host=data.get("host"),
        )
        entries: list[Entry] = []
        for kind in KINDS:
            if kind in data:
                for i, raw in enumerate(coerce_entries(kind, data[kind])):
                    entries.append(parse_entry(kind, i, raw))
        return base.with_entries(entries) if entries else base

    @classmethod
    def from_toml(cls, source: str | Path) -> Protocol:
        """Load a protocol from a TOML file or TOML text.

        Parameters
        ----------
        source
            A :class:`~pathlib.Path` or string naming an existing file, or TOML text.
            A one-line string without ``=`` is taken as a file name.
        """
        data, origin = read_source(source)
        try:
            return cls.from_dict(data)
        except ProtocolError as exc:
            if origin is None:
                raise
            raise ProtocolError(f"{exc} (in {origin})") from None

    @classmethod
    def shipped(cls, name: str, /, **top: Any) -> Protocol:
        """One of the shipped protocols, optionally with top-level keys replaced.

        Parameters
        ----------
        name
            File stem in ``analyses/protocols`` (``"mh"``, ``"mh_plus_pdl1"``,
            ``"untreated"``, ...).
        **top
            Top-level keys to replace (``duration="60 d"``, ``tumour="mc38"``,
            ``host="nude"``, ``name=...``).
        """
        folder = resource_dir("protocols")
        path = folder / f"{name}.toml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
            raise ProtocolError(f"protocol: no shipped protocol {name!r}; shipped: {known}")
        for key in top:
            if key not in TOP_KEYS:
                raise ProtocolError(
                    f"{key}: not a top-level protocol key; allowed: {', '.join(TOP_KEYS)}"
                )
        data, _ = read_source(path)
        return cls.from_dict({**data, **top})

    def to_dict(self) -> dict[str, Any]:
        """Return the protocol as a plain mapping (quantities as strings in internal units).

        ``Protocol.from_dict(p.to_dict()) == p`` holds for every protocol.
        """
        out: dict[str, Any] = {"name": self._name, "duration": format_time(self._duration_h)}
        if self._description is not None:
            out["description"] = self._description
        if self._allow:
            out["allow_above_hergt"] = True
        for key, value in zip(("tumour", "host"), self._presets):
            if value is not None:
                out[key] = value
        for kind in KINDS:
            tables = []
            for e in (x for x in self._entries if x.kind == kind):
                specs = KIND_SPECS[kind].fields
                table = {}
                for key, value in e.items:
                    if key == "count" and value == 1:
                        continue
                    if value is None:
                        continue
                    table[key] = format_value(value, specs[key])
                tables.append(table)
            if tables:
                out[kind] = tables
        return out

    def to_toml(self) -> str:
        """Return the protocol as TOML text that :meth:`from_toml` reads back unchanged."""
        return dumps(self.to_dict())

    # -- accessors -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Name of the protocol."""
        return self._name

    @property
    def description(self) -> str | None:
        """Free-text description, or ``None``."""
        return self._description

    @property
    def tumour(self) -> str | None:
        """Name of the tumour preset the protocol asks for, or ``None``."""
        return self._presets[0]

    @property
    def host(self) -> str | None:
        """Name of the host preset the protocol asks for, or ``None``."""
        return self._presets[1]

    @property
    def allow_above_hergt(self) -> bool:
        """Whether H·f above the Hergt–Dutz limit is accepted (with a warning)."""
        return self._allow

    @property
    def duration_h(self) -> float:
        """Length of the protocol in hours."""
        return self._duration_h

    def mh_sessions(self) -> list[MHSession]:
        """All MH sessions with repeats expanded, sorted by start."""
        return list(self._sessions)

    @property
    def first_treatment_h(self) -> float | None:
        """Start of the first treatment in hours (MH session or dose of a kind in
        :data:`TREATMENT_KINDS`); ``None`` for an untreated protocol.

        Rechallenges and depletions (CD8, CD4, NK, macrophage, Treg) are experimental
        manipulations, not treatments, and do not count.
        """
        times = [s.start_h for s in self._sessions]
        times += [b.time_h for b in self._boluses if b.kind in TREATMENT_KINDS]
        return min(times) if times else None

    def boluses(self) -> list[Bolus]:
        """All instantaneous interventions with repeats expanded, sorted by time."""
        return [
            Bolus(b.time_h, b.kind, b.amount, b.unit, dict(b.options), b.index)
            for b in self._boluses
        ]

    def breakpoints(self) -> list[float]:
        """Sorted unique times in hours: 0, the duration, session starts/ends, bolus times."""
        times = {0.0, self._duration_h}
        times.update(s.start_h for s in self._sessions)
        times.update(s.end_h for s in self._sessions)
        times.update(b.time_h for b in self._boluses)
        return sorted(times)

    def segments(self) -> list[Segment]:
        """Consecutive [t0, t1) intervals (hours) between breakpoints, with the active session."""
        points, sessions, k = self.breakpoints(), self._sessions, 0
        out = []
        for t0, t1 in zip(points, points[1:]):  # sessions: sorted, not overlapping
            while k < len(sessions) and sessions[k].end_h <= t0:
                k += 1
            active = sessions[k] if k < len(sessions) and sessions[k].start_h <= t0 else None
            out.append(Segment(t0, t1, active))
        return out

    def to_frame(self) -> pd.DataFrame:
        """The expanded schedule as a table, one row per event, sorted by start.

        Columns: ``kind``, ``start_day``, ``end_day`` (NaN for boluses), ``amount``,
        ``unit``, ``field_kA_per_m``, ``freq_kHz``, ``hf_A_per_m_s`` (A m^-1 s^-1),
        ``agent`` (missing, shown as NaN, for boluses), ``target_C`` (feedback-controlled
        sessions only).
        """
        nan = math.nan
        rows = [
            dict(
                kind="mh_session",
                start_day=hours_to_days(s.start_h),
                end_day=hours_to_days(s.end_h),
                amount=s.dose,
                unit=s.dose_unit,
                field_kA_per_m=s.field_kA_per_m,
                freq_kHz=s.freq_kHz,
                hf_A_per_m_s=s.hf_A_per_m_s,
                agent=s.agent,
                target_C=nan if s.target_C is None else s.target_C,
            )
            for s in self._sessions
        ]
        rows += [
            dict(
                kind=b.kind,
                start_day=hours_to_days(b.time_h),
                end_day=nan,
                amount=b.amount,
                unit=b.unit,
                field_kA_per_m=nan,
                freq_kHz=nan,
                hf_A_per_m_s=nan,
                agent=None,
                target_C=nan,
            )
            for b in self._boluses
        ]
        columns = [
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
        frame = pd.DataFrame(rows, columns=columns)
        order = frame["kind"].map(KINDS.index)
        frame = frame.assign(_order=order).sort_values(["start_day", "_order"], kind="stable")
        return frame.drop(columns="_order").reset_index(drop=True)

    # -- dunder ----------------------------------------------------------------------

    def _key(self) -> tuple:
        return (
            self._name,
            self._duration_h,
            self._description,
            self._allow,
            self._presets,
            self._entries,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Protocol):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for e in self._entries:
            counts[e.kind] = counts.get(e.kind, 0) + e["count"]
        events = ", ".join(f"{k}×{n}" for k, n in counts.items()) or "no interventions"
        named = "".join(f", {k} {v}" for k, v in zip(("tumour", "host"), self._presets) if v)
        return f"<Protocol {self._name!r}: {format_time(self._duration_h)}, {events}{named}>"

    def __reduce__(self):
        return (_restore, tuple(getattr(self, slot) for slot in self.__slots__))


def _preset(kind: str, name: Any) -> str | None:
    """A preset name of *kind* checked against the shipped presets (``None`` passes)."""
    if name is None:
        return None
    known = preset_names(kind)
    if not isinstance(name, str) or name not in known:
        raise ProtocolError(f"{kind}: unknown {kind} preset {name!r}; known: {', '.join(known)}")
    return name


def _restore(*state: Any) -> Protocol:
    """Rebuild a pickled protocol without validating (and warning) again."""
    new = object.__new__(Protocol)
    for slot, value in zip(Protocol.__slots__, state):
        object.__setattr__(new, slot, value)
    return new


def _caller_level() -> int:
    """Stack level of the first frame outside this module, for :func:`warnings.warn`."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level
