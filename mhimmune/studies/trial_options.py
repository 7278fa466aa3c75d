"""Experiment-design options of a virtual trial: which tumours a mouse carries, a
rechallenge of cured animals, caliper noise on the recorded volumes.

* :class:`DistantTumour`: the second (distant, unheated) tumour is inoculated on day 0
  with the model's size (the default, as before), or on a later *day* with an implant
  of *volume_mm3*; ``distant=None`` in :func:`~mhimmune.studies.trial.run_trial` gives
  one-tumour mice (no distant tumour at all). A later inoculation reuses the
  rechallenge implant of the tumour link (new viable cells at the distant site).
* :class:`Rechallenge`: every animal receives an implant at the distant site on *day*;
  animals cured before it (total tumour ≤ *cure_threshold_mm3*) reject it when the
  implant is ≤ that threshold *followup_day* later. Animals not cured are not
  rechallenged in a real experiment: their rows are not counted.
* :func:`caliper_noise`: recorded volumes × exp(σ·ε), ε ~ N(0, 1), with
  σ = sqrt(ln(1 + CV²)) (log-normal with the given coefficient of variation). Caliper
  volumes of the same tumours by different investigators differ by 15 % of the mean on
  average, a single observer's repeats by 7 % (large) to 27 % (small masses) (Euhus et
  al. 1986 [euhus1986], abstract); ellipsoid caliper volumes track tumour mass with
  r = 0.93 (Tomayko & Reynolds 1989 [tomayko1989], abstract). Taking the 15 % mean
  absolute difference as the CV is an assumption (the two differ by a factor ~1.25 for
  normal errors).

:class:`ImplantTemplate` is a :class:`~mhimmune.mh.template.ScheduleTemplate` whose
protocols carry the implants (and a longer duration when a rechallenge is followed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mhimmune.core.errors import ParameterError
from mhimmune.core.units import days_to_hours, ureg
from mhimmune.mh.template import ScheduleTemplate

__all__ = [
    "DistantTumour",
    "Rechallenge",
    "ImplantTemplate",
    "implanted",
    "distant_inputs",
    "caliper_noise",
    "DEFAULT_CALIPER_CV",
    "DEFAULT_INOCULUM_MM3",
]

#: caliper CV of recorded volumes suggested by the inter-observer difference of Euhus et
#: al. 1986 (15 % of the mean volume; read from the abstract, taken as the CV: assumed)
DEFAULT_CALIPER_CV = 0.15
#: implant of a later distant inoculation or a rechallenge (mm³): about 10⁶ cells
#: (assumed: a typical subcutaneous inoculum of 10⁵–10⁶ cells; 1 mm³ ≈ 10⁶ cells)
DEFAULT_INOCULUM_MM3 = 1.0


def _number(where: str, x: Any, lo: float, *, open_low: bool = False, hi: float = math.inf):
    ok = (
        not isinstance(x, bool)
        and isinstance(x, (int, float))
        and math.isfinite(x)
        and (x > lo if open_low else x >= lo)
        and x <= hi
    )
    if not ok:
        rng = f"{'>' if open_low else '≥'} {lo:g}" + (f" and ≤ {hi:g}" if hi < math.inf else "")
        raise ParameterError(f"{where}: must be a finite number {rng} (got {x!r})")
    return float(x)


@dataclass(frozen=True)
class DistantTumour:
    """When and how large the distant tumour is inoculated.

    Parameters
    ----------
    day
        Inoculation day (≥ 0). Day 0 with *volume_mm3* ``None`` is the model's own
        distant tumour (``tumour_initial_distant`` and its cohort spread).
    volume_mm3
        Implanted volume (mm³, > 0); default: the model's ``tumour_initial_distant`` on
        day 0, :data:`DEFAULT_INOCULUM_MM3` on a later day. An explicit volume is the same
        in every animal.
    """

    day: float = 0.0
    volume_mm3: float | None = None

    def __post_init__(self):
        _number("distant.day", self.day, 0.0)
        if self.volume_mm3 is not None:
            _number("distant.volume_mm3", self.volume_mm3, 0.0, open_low=True)

    @property
    def is_default(self) -> bool:
        """Whether this is the model's own day-0 distant tumour."""
        return self.day == 0 and self.volume_mm3 is None

    @property
    def implant_mm3(self) -> float:
        """The implanted volume (mm³) when the tumour is implanted, not the model's own."""
        return DEFAULT_INOCULUM_MM3 if self.volume_mm3 is None else float(self.volume_mm3)

    def describe(self) -> str:
        """In words, for reports."""
        if self.is_default:
            return "distant tumour inoculated on day 0 (model size)"
        return f"distant tumour of {self.implant_mm3:g} mm³ inoculated on day {self.day:g}"

    @classmethod
    def from_spec(cls, value: Any, where: str = "trial.distant") -> DistantTumour | None:
        """From a spec value: ``"none"`` (one tumour), ``"day0"``, or a table
        ``{day = 7, volume_mm3 = 1}``."""
        if value is None or value == "none":
            return None
        if value == "day0":
            return cls()
        if isinstance(value, dict):
            bad = set(value) - {"day", "volume_mm3"}
            if bad:
                raise ParameterError(
                    f"{where}: unknown keys {sorted(bad)}; allowed: day, volume_mm3"
                )
            return cls(**value)
        raise ParameterError(
            f'{where}: "none", "day0" or a table {{day = D, volume_mm3 = V}} (got {value!r})'
        )


@dataclass(frozen=True)
class Rechallenge:
    """A rechallenge of every animal at the distant site.

    Parameters
    ----------
    day
        Implant day (from day 0); must be at or after the responder day.
    volume_mm3
        Implanted volume (mm³).
    followup_day
        Days after the implant at which rejection is read; the protocols are lengthened
        to reach it.
    cure_threshold_mm3
        An animal is cured when its total tumour just before the implant is ≤ this, and
        has rejected the implant when the distant site is ≤ this *followup_day* later.
    """

    day: float
    volume_mm3: float = DEFAULT_INOCULUM_MM3
    followup_day: float = 30.0
    cure_threshold_mm3: float = 1.0

    def __post_init__(self):
        _number("rechallenge.day", self.day, 0.0, open_low=True)
        _number("rechallenge.volume_mm3", self.volume_mm3, 0.0, open_low=True)
        _number("rechallenge.followup_day", self.followup_day, 0.0, open_low=True)
        _number("rechallenge.cure_threshold_mm3", self.cure_threshold_mm3, 0.0, open_low=True)

    @property
    def read_day(self) -> float:
        """Day on which rejection is read."""
        return self.day + self.followup_day


class ImplantTemplate(ScheduleTemplate):
    """A schedule template whose protocols also carry tumour implants at the distant site.

    Built from *base* (a :class:`~mhimmune.mh.template.ScheduleTemplate`) with
    *implants* ``[(day, volume_mm3), ...]`` and an optional longer *duration_day*.
    """

    implants: tuple[tuple[float, float], ...]

    def __init__(
        self,
        base: ScheduleTemplate,
        implants: Sequence[tuple[float, float]],
        duration_day: float | None = None,
    ):
        state = base.__getstate__()
        if duration_day is not None:
            state["duration_h"] = max(state["duration_h"], days_to_hours(duration_day))
        state["implants"] = tuple((float(d), float(v)) for d, v in implants)
        self.__setstate__(state)

    def to_dict(self) -> dict[str, Any]:
        """The template as plain data, with its implants."""
        return {**super().to_dict(), "implants": [list(i) for i in self.implants]}

    def _build_key(self, key: tuple[float, ...]):
        return implanted(super()._build_key(key), self.implants)


def implanted(protocol, implants: Sequence[tuple[float, float]], duration_day: float | None = None):
    """*protocol* with implants ``(day, volume_mm3)`` at the distant site, lengthened to
    *duration_day* if that is later than its end."""
    if duration_day is not None and days_to_hours(duration_day) > protocol.duration_h:
        protocol = protocol.with_duration(ureg.Quantity(duration_day, "d"))
    for day, volume in implants:
        protocol = protocol.rechallenge(
            time=ureg.Quantity(day, "d"), volume=ureg.Quantity(volume, "mm^3")
        )
    return protocol


def distant_inputs(
    distant: DistantTumour | None, cohort, params: dict[str, Any]
) -> tuple[Any, dict[str, Any], list[tuple[float, float]]]:
    """The cohort, fixed parameters and implants ``[(day, volume_mm3)]`` that give mice
    the *distant* tumour design: unchanged for the model's own day-0 tumour; otherwise no
    distant tumour at day 0 (``tumour_initial_distant`` = 0 in *params* and in the cohort
    column) and, for a later inoculation, its implant."""
    params = dict(params)
    if distant is not None and distant.is_default:
        return cohort, params, []
    params["tumour_initial_distant"] = 0.0
    if "tumour_initial_distant" in cohort:
        cohort = cohort.assign(tumour_initial_distant=0.0)
    implants = [] if distant is None else [(distant.day, distant.implant_mm3)]
    return cohort, params, implants


def caliper_noise(values: np.ndarray, cv: float, rng: np.random.Generator) -> np.ndarray:
    """*values* × exp(σ·ε) with σ = sqrt(ln(1 + cv²)) and independent ε ~ N(0, 1): a
    log-normal multiplicative error of coefficient of variation *cv* (0 and NaN stay)."""
    _number("caliper_cv", cv, 0.0, hi=2.0)
    values = np.asarray(values, dtype=float)
    if cv == 0:
        return values.copy()
    sigma = math.sqrt(math.log1p(cv * cv))
    return values * np.exp(sigma * rng.standard_normal(values.shape))
