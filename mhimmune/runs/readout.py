"""Readouts: scalars computed from one simulation's arrays, and their text mini-language.

A :class:`Readout` names a statistic (final value, minimum, maximum, area under the
curve, value at a day, or a threshold flag) of one recorded variable or a sum of
several. :meth:`Readout.parse` reads specifications such as ``auc:VAR``,
``VAR@21``, ``VAR@+7`` or ``FLAG<=10@+50``; the names a domain adds to the language
(whole readouts by name, variable aliases, threshold-flag words) come from a
:class:`Vocabulary` the caller passes in, so this module knows no model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from mhimmune.core.errors import ParameterError

__all__ = [
    "Readout",
    "Flag",
    "Ratio",
    "Vocabulary",
    "STAT_KINDS",
    "EMPTY_VOCABULARY",
    "evaluate",
]

#: readout kinds computed by a statistic of the series; any other kind is a threshold flag
STAT_KINDS: tuple[str, ...] = ("final", "min", "max", "auc", "at")


@dataclass(frozen=True)
class Flag:
    """A threshold-flag word of a :class:`Vocabulary`.

    Parameters
    ----------
    variables
        Recorded variables summed before the comparison.
    threshold
        Default threshold, in the variables' unit (``WORD<=X`` replaces it).
    """

    variables: tuple[str, ...]
    threshold: float = 1.0


@dataclass(frozen=True)
class Ratio:
    """A derived variable of a :class:`Vocabulary`: *scale* × sum(*numerator*) /
    sum(*denominator*) (e.g. a percentage of a parent population).

    Parameters
    ----------
    numerator, denominator
        Recorded variables summed above and below the line.
    scale
        Factor (100 for a percentage).
    """

    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    scale: float = 1.0


@dataclass(frozen=True)
class Vocabulary:
    """The names a domain adds to the readout language.

    Parameters
    ----------
    named
        Whole readouts by name (a specification equal to a key gives that readout).
    aliases
        Variable aliases: a name usable wherever a variable is, standing for the sum of
        the given variables.
    ratios
        Derived variables usable wherever a single variable is (``NAME@DAY``,
        ``max:NAME``): a readout of the ratio of two sums (:class:`Ratio`).
    flags
        Threshold-flag words: ``WORD``, ``WORD@DAY``, ``WORD<=THRESHOLD`` give a readout
        of kind ``WORD`` that is 1 when the summed variables are ≤ the threshold at the
        day (the end if none), else 0.
    """

    named: Mapping[str, Readout] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    flags: Mapping[str, Flag] = field(default_factory=dict)
    ratios: Mapping[str, Ratio] = field(default_factory=dict)


@dataclass(frozen=True)
class Readout:
    """A scalar computed from one simulation's arrays.

    Parameters
    ----------
    name
        Column name of the readout.
    kind
        ``final``, ``min``, ``max``, ``auc`` (trapezoid over the recorded points,
        units·day), ``at`` (value at *day*, linear interpolation), or a threshold flag
        (any other kind, e.g. ``cure``: 1 if the summed variables are ≤ *threshold* at
        *day*, or at the end, else 0).
    variables
        Recorded variable names; several are summed (``tumour_volume_treated +
        tumour_volume_distant``).
    day
        Time in days for ``at`` and flags; ``None`` = the end of the protocol.
    threshold
        Flag threshold in the variables' unit (mm³ for tumour volumes).
    relative
        *day* counts from the start of the first treatment of each run's protocol
        (:attr:`mhimmune.Protocol.first_treatment_h`) instead of from day 0; such a
        readout fails (as a run failure) for an untreated protocol.
    floor
        Detection limit: a ``final``, ``min``, ``max`` or ``at`` value whose magnitude is
        below it reads as 0 (e.g. one cell's volume, below which a population is extinct).
    denominator, scale
        A ratio readout: the statistic of *scale* × sum(*variables*) / sum(*denominator*)
        (NaN where the denominator is 0); no denominator: of the sum itself.
    log
        Report log10(1 + value) instead of the value (``log10(SPEC)``): for heavy-tailed
        readouts that are ≥ 0, such as a thermal dose; a negative value fails the run.
    """

    name: str
    kind: str
    variables: tuple[str, ...]
    day: float | None = None
    threshold: float | None = None
    relative: bool = False
    floor: float = 0.0
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    log: bool = False

    #: vocabulary :meth:`parse` uses when none is given (empty: statistics of variables)
    vocabulary: ClassVar[Vocabulary]

    def renamed(self, name: str) -> Readout:
        """The same readout under another column name."""
        return dataclasses.replace(self, name=name)

    @property
    def all_variables(self) -> tuple[str, ...]:
        """Every recorded variable the readout reads (numerator and denominator)."""
        return self.variables + self.denominator

    @classmethod
    def parse(
        cls,
        spec: str | Readout,
        name: str | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> Readout:
        """A readout from text.

        ``NAME`` (a named readout of *vocabulary*), ``final:VAR``, ``min:VAR``,
        ``max:VAR`` (or ``peak:VAR``), ``auc:VAR``, ``VAR@DAY`` (value at a day), and for
        a flag word ``FLAG`` of *vocabulary*: ``FLAG``, ``FLAG@DAY`` or
        ``FLAG<=THRESHOLD`` (combined: ``cure<=10@57``); VAR may be ``A+B`` (a sum) or an
        alias of *vocabulary*. ``@+DAY`` counts days from the first treatment of each run
        (``cure<=10@+50``: total tumour ≤ 10 mm³ 50 days after the first treatment).
        ``log10(SPEC)`` reports log10(1 + value) of a statistic (``log10(auc:VAR)``).

        Parameters
        ----------
        spec
            The specification, or a readout (returned, renamed to *name* if given).
        name
            Column name; default the specification text.
        vocabulary
            Domain names; default :attr:`vocabulary` of the class (empty for this class).
        """
        voc = vocabulary if vocabulary is not None else cls.vocabulary
        if isinstance(spec, Readout):
            return spec if name is None else spec.renamed(name)
        if not isinstance(spec, str) or not spec.strip():
            raise ParameterError(f"readout: expected text such as 'auc:VARIABLE', got {spec!r}")
        text = spec.strip().replace(" ", "")
        label = name or text
        if text.startswith("log10(") and text.endswith(")"):
            inner = cls.parse(text[6:-1], vocabulary=voc)
            if inner.log or inner.kind not in STAT_KINDS:
                raise ParameterError(
                    f"readout {spec!r}: log10(...) takes one statistic (not a flag or a "
                    f"log10 readout)"
                )
            return dataclasses.replace(inner, name=label, log=True)
        if text in voc.named:
            return voc.named[text].renamed(label)
        word = next((w for w in voc.flags if _is_flag_spec(text, w)), None)
        if word is not None:
            rest, day, threshold, relative = (
                text[len(word) :],
                None,
                voc.flags[word].threshold,
                False,
            )
            if "@" in rest:
                rest, d = rest.split("@", 1)
                relative = d.startswith("+")
                day = _float(d.removeprefix("+"), spec)
            if rest.startswith("<="):
                threshold = _float(rest[2:], spec)
            elif rest:
                raise ParameterError(
                    f"readout {spec!r}: write {word}, {word}@DAY or {word}<=THRESHOLD"
                )
            return Readout(label, word, voc.flags[word].variables, day, float(threshold), relative)
        if ":" in text:
            kind, var = text.split(":", 1)
            kind = {"peak": "max"}.get(kind, kind)
            if kind not in ("final", "min", "max", "auc"):
                flags = "".join(f" or {w}" for w in voc.flags)
                raise ParameterError(
                    f"readout {spec!r}: unknown kind {kind!r}; use final, min, "
                    f"max (peak), auc, VAR@DAY{flags}"
                )
            if var in voc.ratios:
                q = voc.ratios[var]
                return Readout(label, kind, q.numerator, denominator=q.denominator, scale=q.scale)
            return Readout(label, kind, _variables(var, voc))
        if "@" in text:
            var, d = text.split("@", 1)
            ratio = voc.ratios.get(var)
            return Readout(
                label,
                "at",
                ratio.numerator if ratio else _variables(var, voc),
                _float(d.removeprefix("+"), spec),
                relative=d.startswith("+"),
                denominator=ratio.denominator if ratio else (),
                scale=ratio.scale if ratio else 1.0,
            )
        named = f"a named readout ({', '.join(voc.named)}) " if voc.named else ""
        flags = "".join(f" or {w}" for w in voc.flags)
        raise ParameterError(
            f"readout {spec!r}: not {named}nor final:VAR, min:VAR, max:VAR, auc:VAR, VAR@DAY{flags}"
        )


#: a vocabulary without domain names
EMPTY_VOCABULARY = Vocabulary()
Readout.vocabulary = EMPTY_VOCABULARY


def _is_flag_spec(text: str, word: str) -> bool:
    """Whether *text* is ``word`` followed by nothing, ``@...`` or ``<=...``."""
    if not text.startswith(word):
        return False
    rest = text[len(word) :]
    return rest == "" or rest[0] in "@<"


def _variables(text: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    """Variable names of ``A+B`` with aliases expanded."""
    out: list[str] = []
    for v in text.split("+"):
        out.extend(vocabulary.aliases.get(v, (v,)))
    return tuple(out)


def _float(text: str, spec: str) -> float:
    try:
        x = float(text.removesuffix("d"))
    except ValueError:
        raise ParameterError(f"readout {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(x) or x < 0:
        raise ParameterError(f"readout {spec!r}: {text!r} must be a finite number ≥ 0")
    return x


def evaluate(
    readouts: Sequence[Readout],
    series: Callable[[tuple[str, ...]], np.ndarray],
    t_day: np.ndarray,
    end_day: float,
    first_treatment_day: float | None = None,
) -> dict[str, float]:
    """The value of each readout for one run.

    Parameters
    ----------
    readouts
        The readouts to compute.
    series
        ``series(variables)`` -> the summed recorded values of *variables* at *t_day*.
    t_day
        Recorded times in days.
    end_day
        End of the run in days.
    first_treatment_day
        Start of the first treatment (days), for readouts whose day is ``relative``.

    Raises
    ------
    ValueError
        A relative readout without a treatment, a day after the end, a flag without a
        threshold.
    """
    out: dict[str, float] = {}
    steps: list[np.ndarray] = []  # the time steps, for areas (computed once)
    for r in readouts:
        y = series(r.variables)
        if r.denominator:
            below = series(r.denominator)
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(below != 0, r.scale * y / np.where(below != 0, below, 1.0), np.nan)
        if r.kind == "auc":  # the trapezoidal rule, as numpy.trapezoid computes it
            if not steps:
                steps.append(np.diff(np.asarray(t_day)))
            y = np.asarray(y)
            out[r.name] = _logged(r, float((steps[0] * (y[1:] + y[:-1]) / 2.0).sum()))
            continue
        if r.kind in ("final", "min", "max"):
            value = float(y[-1] if r.kind == "final" else (y.min() if r.kind == "min" else y.max()))
        else:
            day = end_day if r.day is None else r.day
            if r.relative and r.day is not None:
                if first_treatment_day is None:
                    raise ValueError(
                        f"readout {r.name}: its day counts from the first "
                        f"treatment, but the protocol has no treatment"
                    )
                day = r.day + first_treatment_day
            if day > end_day + 1e-9:
                raise ValueError(
                    f"readout {r.name}: day {day:g} is after the end of the "
                    f"protocol (day {end_day:g})"
                )
            value = float(y[-1]) if r.day is None else float(np.interp(day, t_day, y))
            if r.kind != "at":
                if r.threshold is None:
                    raise ValueError(f"readout {r.name}: a {r.kind} flag needs a threshold")
                out[r.name] = float(value <= r.threshold)
                continue
        out[r.name] = _logged(r, 0.0 if abs(value) < r.floor else value)
    return out


def _logged(r: Readout, value: float) -> float:
    """*value*, or log10(1 + value) for a ``log10(...)`` readout."""
    if not r.log:
        return value
    if not value >= 0:
        raise ValueError(f"readout {r.name}: log10 of 1 + {value:g} needs a value ≥ 0")
    return math.log10(1.0 + value)
