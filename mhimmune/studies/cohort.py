"""Virtual cohorts and virtual trials of MH, anti-PD-L1 and their combinations.

A *virtual cohort* is a table with one row per virtual animal and one column per model
parameter that differs between animals. :func:`sample_cohort` draws it from a
variability table (``parameters/cohort.tsv``: each parameter log-normal (or logit-normal
for fractions) around its value in the model's parameter table, with a spread σ on the
log (logit) scale and a source for σ), optionally correlated through a Gaussian copula.
The same seed gives the same cohort.

A *virtual trial* (:func:`run_trial`) gives every animal of the cohort every arm
(control, MH, anti-PD-L1, MH + anti-PD-L1, with or without CDT, BSO or an HSP inhibitor;
see :data:`STANDARD_ARMS`) and classifies each animal:

* **responder**: total tumour (treated + distant) ≤ 10 mm³ at day 50 after the first
  treatment of the trial (Kosinsky et al. 2018's definition; both configurable);
* optionally **RECIST-like** categories (CR/PR/SD/PD from the change in total volume
  between the first treatment and the responder day);
* **time to event**: days from the first treatment until the total tumour reaches an
  endpoint volume (default 2000 mm³ for treated + distant tumour together; humane
  endpoints of 1500–2000 mm³ per tumour are common), censored at the end.

:class:`TrialResult` gives responder fractions per arm with Wilson intervals,
Kaplan–Meier curves with log-rank tests against a reference arm, the mechanistic
readouts of each arm (which links of the chain move), and the figures.

Model outputs are predictions of a hypothesis-generating model; cohort spreads are
assumed where the variability table says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError, ProtocolError
from mhimmune.mh.field_safety import HfWarning

__all__ = [
    "load_variability",
    "sample_cohort",
    "Arm",
    "STANDARD_ARMS",
    "standard_arms",
    "ResponderRule",
    "MECHANISM_READOUTS",
    "run_trial",
    "TrialResult",
    "check_cohort",
]

_DISTRIBUTIONS = ("lognormal", "logitnormal")

# ============================================================================ cohorts


def load_variability(path: str | Path | None = None) -> pd.DataFrame:
    """The between-animal variability table.

    Parameters
    ----------
    path
        A TSV file with columns ``parameterId``, ``distribution`` (``lognormal`` or
        ``logitnormal``), ``sigma`` (spread on the log or logit scale, ≥ 0),
        ``source`` and optional ``notes``; default the package's ``parameters/cohort.tsv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter name, columns ``distribution``, ``sigma``, ``source``, ``notes``.
    """
    if path is None:
        from mhimmune.core.resources import resource_dir

        path = resource_dir("parameters") / "cohort.tsv"
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"variability table {path}: no such file")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    missing = {"parameterId", "distribution", "sigma", "source"} - set(df.columns)
    if missing:
        raise ParameterError(f"variability table {path}: missing columns {sorted(missing)}")
    if "notes" not in df:
        df["notes"] = ""
    df = df.set_index("parameterId")
    if df.index.has_duplicates:
        raise ParameterError(
            f"variability table {path}: duplicate rows "
            f"{sorted(set(df.index[df.index.duplicated()]))}"
        )
    try:
        df["sigma"] = df["sigma"].astype(float)
    except ValueError as exc:
        raise ParameterError(f"variability table {path}: sigma must be numbers ({exc})") from None
    for name, row in df.iterrows():
        _check_spec(name, row["distribution"], row["sigma"], f"variability table {path}")
        if not str(row["source"]).strip():
            raise ParameterError(
                f"variability table {path}: {name}: source is empty "
                f"(give a reference or 'assumed: <reason>')"
            )
    return df[["distribution", "sigma", "source", "notes"]]


def _check_spec(name: str, dist: str, sigma: float, where: str) -> None:
    if dist not in _DISTRIBUTIONS:
        raise ParameterError(
            f"{where}: {name}.distribution must be one of {_DISTRIBUTIONS} (got {dist!r})"
        )
    if not (math.isfinite(sigma) and 0.0 <= sigma <= 3.0):
        raise ParameterError(
            f"{where}: {name}.sigma must be in [0, 3] on the {dist[:-6]} scale (got {sigma!r})"
        )


def _variability_frame(variability) -> pd.DataFrame:
    if variability is None:
        return load_variability()
    if isinstance(variability, (str, Path)):
        return load_variability(variability)
    if isinstance(variability, pd.DataFrame):
        df = variability.copy()
        if "parameterId" in df.columns:
            df = df.set_index("parameterId")
    elif isinstance(variability, Mapping):
        rows = {}
        for name, spec in variability.items():
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"distribution", "sigma", "source", "notes"}
                if unknown:
                    raise ParameterError(
                        f"variability.{name}: unknown keys {sorted(unknown)}; "
                        f"allowed: distribution, sigma, source, notes"
                    )
                rows[name] = {
                    "distribution": spec.get("distribution", "lognormal"),
                    "sigma": spec.get("sigma"),
                    "source": spec.get("source", "given"),
                    "notes": spec.get("notes", ""),
                }
            else:
                rows[name] = {
                    "distribution": "lognormal",
                    "sigma": spec,
                    "source": "given",
                    "notes": "",
                }
        df = pd.DataFrame.from_dict(
            rows, orient="index", columns=["distribution", "sigma", "source", "notes"]
        )
    else:
        raise ParameterError(
            f"variability: expected None, a file, a DataFrame or a mapping "
            f"name -> sigma, got {type(variability).__name__}"
        )
    if "distribution" not in df:
        df["distribution"] = "lognormal"
    for col in ("source", "notes"):
        if col not in df:
            df[col] = ""
    if "sigma" not in df:
        raise ParameterError("variability: a 'sigma' column is required")
    for name in df.index:
        try:
            sigma = float(df.at[name, "sigma"])
        except (TypeError, ValueError):
            raise ParameterError(
                f"variability: {name}.sigma must be a number (got {df.at[name, 'sigma']!r})"
            ) from None
        df.at[name, "sigma"] = sigma
        _check_spec(str(name), str(df.at[name, "distribution"]), sigma, "variability")
    df["sigma"] = df["sigma"].astype(float)
    return df[["distribution", "sigma", "source", "notes"]]


def _correlation_matrix(correlation, names: list[str]) -> np.ndarray:
    k = len(names)
    R = np.eye(k)
    if correlation is None:
        return R
    pos = {n: i for i, n in enumerate(names)}
    if isinstance(correlation, pd.DataFrame):
        unknown = (set(correlation.index) | set(correlation.columns)) - set(names)
        if unknown:
            raise ParameterError(
                f"correlation: {sorted(unknown)} are not varied parameters ({', '.join(names)})"
            )
        pairs = {
            (a, b): correlation.at[a, b]
            for a in correlation.index
            for b in correlation.columns
            if a != b
        }
    elif isinstance(correlation, Mapping):
        pairs = {}
        for key, rho in correlation.items():
            a, b = key.split(",") if isinstance(key, str) else key
            pairs[(a.strip(), b.strip())] = rho
    else:
        raise ParameterError("correlation: expected a mapping (a, b) -> rho or a DataFrame")
    for (a, b), rho in pairs.items():
        for n in (a, b):
            if n not in pos:
                raise ParameterError(
                    f"correlation: {n!r} is not a varied parameter ({', '.join(names)})"
                )
        if a == b:
            raise ParameterError(f"correlation: ({a}, {b}) pairs a parameter with itself")
        try:
            rho = float(rho)
        except (TypeError, ValueError):
            raise ParameterError(f"correlation[{a}, {b}]: must be a number (got {rho!r})") from None
        if not (-1.0 < rho < 1.0):
            raise ParameterError(f"correlation[{a}, {b}]: must be in (-1, 1) (got {rho:g})")
        i, j = pos[a], pos[b]
        if R[i, j] != 0.0 and R[i, j] != rho:
            raise ParameterError(f"correlation[{a}, {b}]: given twice with different values")
        R[i, j] = R[j, i] = rho
    if np.linalg.eigvalsh(R).min() <= 1e-10:
        raise ParameterError(
            "correlation: the matrix is not positive definite (the given "
            "correlations cannot hold together)"
        )
    return R


def _from_covariance(cov, var: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not isinstance(cov, pd.DataFrame) or list(cov.index) != list(cov.columns) or cov.empty:
        raise ParameterError(
            "covariance: expected a square DataFrame with the same parameter "
            "names as index and columns"
        )
    C = cov.to_numpy(dtype=float)
    if not np.all(np.isfinite(C)) or not np.allclose(C, C.T, rtol=1e-10, atol=1e-14):
        raise ParameterError("covariance: must be finite and symmetric")
    d = np.diag(C)
    if np.any(d <= 0):
        bad = [str(n) for n, x in zip(cov.index, d) if x <= 0]
        raise ParameterError(f"covariance: variances of {bad} must be > 0")
    sigma = np.sqrt(d)
    var = var.copy()
    for name, sg in zip(cov.index, sigma):
        if name in var.index:
            var.at[name, "sigma"] = float(sg)
        else:
            var.loc[name] = {
                "distribution": "lognormal",
                "sigma": float(sg),
                "source": "covariance",
                "notes": "",
            }
        _check_spec(str(name), str(var.at[name, "distribution"]), float(sg), "covariance")
    corr = pd.DataFrame(C / np.outer(sigma, sigma), index=cov.index, columns=cov.columns)
    return var, corr


def sample_cohort(
    n: int,
    *,
    variability=None,
    correlation=None,
    covariance=None,
    seed: int = 0,
    parameters: Any = None,
) -> pd.DataFrame:
    """Draw a virtual cohort: one row per animal, one column per varied parameter.

    Each parameter is log-normal (positive quantities) or logit-normal (fractions)
    with its *median* at the value of the model's parameter table and spread σ on the
    log (logit) scale: ``value = nominal · exp(σ z)``. Correlations act on the latent
    normals ``z`` (Gaussian copula).

    Parameters
    ----------
    n
        Number of animals (≥ 1).
    variability
        ``None`` (the package's ``parameters/cohort.tsv``), a TSV path, a DataFrame like
        :func:`load_variability`'s, or a mapping ``name -> sigma`` (log-normal) or
        ``name -> {"distribution": ..., "sigma": ...}``.
    correlation
        Mapping ``(a, b) -> rho`` (or ``"a,b" -> rho``) or a square DataFrame; pairs not
        given are uncorrelated. Must be positive definite.
    covariance
        Instead of *correlation*: a square DataFrame, the covariance of the latent normals
        (log or logit scale) of some varied parameters; its diagonal replaces their σ²
        (parameters it names that the variability table lacks are added as log-normal).
    seed
        Seed of the random generator: the same seed gives the same cohort.
    parameters
        Parameter table files for the nominal values (default: the model's tables).

    Returns
    -------
    pandas.DataFrame
        Index ``animal`` (0..n-1), columns the parameters (values in table units);
        ``attrs`` hold the seed and the variability used.
    """
    from mhimmune.core.params import ParameterTable

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n: number of animals must be an integer ≥ 1 (got {n!r})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed: must be an integer ≥ 0 (got {seed!r})")
    var = _variability_frame(variability)
    if covariance is not None:
        if correlation is not None:
            raise ParameterError("covariance: give correlation or covariance, not both")
        var, correlation = _from_covariance(covariance, var)
    table = ParameterTable.load(parameters)
    names = [str(x) for x in var.index]
    unknown = [x for x in names if x not in table]
    if unknown:
        import difflib

        hints = {u: difflib.get_close_matches(u, table.names, n=3) for u in unknown}
        raise ParameterError(f"variability: unknown parameters {unknown}; close matches: {hints}")
    R = _correlation_matrix(correlation, names)
    rng = np.random.default_rng(int(seed))
    z = rng.standard_normal((int(n), len(names)))
    if len(names):
        z = z @ np.linalg.cholesky(R).T
    out = {}
    for j, name in enumerate(names):
        nominal = table.value(name)
        sigma = float(var.at[name, "sigma"])
        if var.at[name, "distribution"] == "lognormal":
            if not nominal > 0:
                raise ParameterError(
                    f"variability: {name} is log-normal but its table value "
                    f"is {nominal:g} (must be > 0)"
                )
            out[name] = nominal * np.exp(sigma * z[:, j])
        else:
            if not 0.0 < nominal < 1.0:
                raise ParameterError(
                    f"variability: {name} is logit-normal but its table "
                    f"value is {nominal:g} (must be in (0, 1))"
                )
            logit = math.log(nominal / (1.0 - nominal)) + sigma * z[:, j]
            out[name] = 1.0 / (1.0 + np.exp(-logit))
    df = pd.DataFrame(out, index=pd.RangeIndex(int(n), name="animal"))
    df.attrs = {"seed": int(seed), "variability": var.to_dict(orient="index")}
    return df


def check_cohort(
    cohort,
    taken=(),
    taken_what: str = "protocol factors, not model parameters",
) -> pd.DataFrame:
    """Validate a cohort table and return it as floats (same index).

    A cohort is a non-empty DataFrame, one row per animal, one column per model
    parameter (text names, finite numbers); columns in *taken* (e.g. the protocol
    factors a caller sets itself) are errors, described as *taken_what*.
    """
    if not isinstance(cohort, pd.DataFrame):
        raise ParameterError(
            f"cohort: expected a DataFrame with one row per animal and one "
            f"column per model parameter, got {type(cohort).__name__}"
        )
    if len(cohort) == 0:
        raise ParameterError("cohort: no animals (0 rows); pass cohort=None for one nominal animal")
    bad = [c for c in cohort.columns if not isinstance(c, str)]
    if bad:
        raise ParameterError(f"cohort: column names must be parameter names (text), got {bad}")
    clash = sorted(set(cohort.columns) & set(taken))
    if clash:
        raise ParameterError(f"cohort: columns {clash} are {taken_what}")
    try:
        values = cohort.astype(float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"cohort: every value must be a number ({exc})") from None
    nonfinite = [c for c in values.columns if not np.all(np.isfinite(values[c].to_numpy()))]
    if nonfinite:
        raise ParameterError(f"cohort: NaN or infinite values in columns {nonfinite}")
    return values


def _nominal_cohort() -> pd.DataFrame:
    return pd.DataFrame(index=pd.RangeIndex(1, name="animal"))


# ============================================================================== arms


@dataclass(frozen=True)
class Arm:
    """One arm of a virtual trial.

    Parameters
    ----------
    name
        Label of the arm (unique within a trial).
    factors
        Protocol factors of the trial's :class:`~mhimmune.runs.ensemble.ScheduleTemplate`
        (bare numbers in the factor units; e.g. ``{"n_sessions": 0}``) ...
    protocol
        ... or a fixed :class:`~mhimmune.Protocol` (then *factors* must be empty).
    description
        What the arm is, for tables and reports.
    """

    name: str
    factors: Mapping[str, float] = field(default_factory=dict)
    protocol: Any = None
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"arm.name: must be non-empty text (got {self.name!r})")
        if self.protocol is not None and self.factors:
            raise ParameterError(f"arm {self.name}: give factors or a protocol, not both")
        object.__setattr__(self, "factors", dict(self.factors))

    def build(self, template):
        """The protocol of this arm (its own, or *template* built with its factors)."""
        if self.protocol is not None:
            return self.protocol
        try:
            return template.build(self.factors)
        except ProtocolError as exc:
            raise ProtocolError(f"arm {self.name}: {exc}") from None


_OFF_MH = {"n_sessions": 0}
_OFF_AB = {"pdl1_count": 0}

#: The standard arms by name: factors relative to the template's defaults.
STANDARD_ARMS: Mapping[str, Arm] = {
    "control": Arm("control", {**_OFF_MH, **_OFF_AB}, description="untreated"),
    "mh": Arm("mh", dict(_OFF_AB), description="MH alone"),
    "anti_pdl1": Arm("anti_pdl1", dict(_OFF_MH), description="anti-PD-L1 alone"),
    "mh+anti_pdl1": Arm("mh+anti_pdl1", {}, description="MH + anti-PD-L1"),
    "mh+cdt": Arm("mh+cdt", {**_OFF_AB, "cdt": 1}, description="MH + chemodynamic agent"),
    "mh+bso": Arm("mh+bso", {**_OFF_AB, "bso": 1}, description="MH + BSO"),
    "mh+hsp_inhibitor": Arm(
        "mh+hsp_inhibitor", {**_OFF_AB, "hsp_inhibitor": 1}, description="MH + HSP inhibitor"
    ),
    "mh+anti_pdl1+cdt": Arm(
        "mh+anti_pdl1+cdt", {"cdt": 1}, description="MH + anti-PD-L1 + chemodynamic agent"
    ),
    "mh+anti_pdl1+bso": Arm("mh+anti_pdl1+bso", {"bso": 1}, description="MH + anti-PD-L1 + BSO"),
    "mh+anti_pdl1+hsp_inhibitor": Arm(
        "mh+anti_pdl1+hsp_inhibitor",
        {"hsp_inhibitor": 1},
        description="MH + anti-PD-L1 + HSP inhibitor",
    ),
}


def standard_arms(*names: str) -> list[Arm]:
    """Arms of :data:`STANDARD_ARMS` by name; no names: control, MH, anti-PD-L1 and the combination."""
    names = names or ("control", "mh", "anti_pdl1", "mh+anti_pdl1")
    bad = [n for n in names if n not in STANDARD_ARMS]
    if bad:
        raise ParameterError(f"arms {bad}: unknown; standard arms: {', '.join(STANDARD_ARMS)}")
    return [STANDARD_ARMS[n] for n in names]


# ========================================================================= responders


@dataclass(frozen=True)
class ResponderRule:
    """How animals are classified.

    Parameters
    ----------
    threshold_mm3
        Responder: total tumour (treated + distant) ≤ this at the responder day.
    day_after_first_treatment
        Responder day, counted from the first treatment of the trial (the earliest
        treatment of any arm; the control arm is read on the same day).
    endpoint_mm3
        Event of the time-to-event analysis: total tumour reaches this volume.
    """

    threshold_mm3: float = 10.0
    day_after_first_treatment: float = 50.0
    endpoint_mm3: float = 2000.0

    def __post_init__(self):
        for name, lo in (
            ("threshold_mm3", 0.0),
            ("day_after_first_treatment", 0.0),
            ("endpoint_mm3", 0.0),
        ):
            x = getattr(self, name)
            if (
                isinstance(x, bool)
                or not isinstance(x, (int, float))
                or not math.isfinite(x)
                or x < lo
            ):
                raise ParameterError(
                    f"responder.{name}: must be a finite number ≥ {lo:g} (got {x!r})"
                )
        if self.endpoint_mm3 <= self.threshold_mm3:
            raise ParameterError(
                f"responder.endpoint_mm3 ({self.endpoint_mm3:g}) must exceed "
                f"threshold_mm3 ({self.threshold_mm3:g})"
            )


#: Mechanistic readouts recorded per animal, in the order of the chain, with the link
#: they speak for: (column, readout spec, link, label). ``@+D`` days count from each
#: arm's first MH session (arms without MH: their first treatment; untreated: the
#: earliest first MH session of the trial, else its first treatment) — sampling days like an experiment's, not peaks (peaks over
#: 60 days would pick up the late necrosis of large untreated tumours).
MECHANISM_READOUTS: tuple[tuple[str, str, str, str], ...] = (
    ("cem43_min", "cem43_total_min", "heating", "thermal dose CEM43 (min, all sessions)"),
    ("damp_d1", "damp_signal@+1", "death (ICD)", "DAMP signal 1 d after the first MH session"),
    (
        "mature_dc_d7",
        "mature_dc_fraction@+7",
        "immune: DC maturation",
        "mature DC fraction at +7 d",
    ),
    (
        "cd8_effectors_d7",
        "cd8_effectors_total@+7",
        "immune: T-cell priming",
        "CD8 effector cells at +7 d (Mcell)",
    ),
    (
        "pdl1_occupancy_d7",
        "pdl1_occupancy@+7",
        "immune: checkpoint blockade",
        "anti-PD-L1 target occupancy at +7 d",
    ),
    ("m1_m2_d7", "m1_m2_ratio@+7", "immune: macrophage polarisation", "M1/M2 ratio at +7 d"),
    ("treg_fraction_d7", "treg_fraction@+7", "immune: suppression", "Treg fraction at +7 d"),
)
_VOLUMES = ("tumour_volume_treated", "tumour_volume_distant")
#: tumour volumes down to this far below 0 (mm³) are numerically zero and read as 0;
#: below it a run is marked failed (the integrator's absolute tolerance is 1e-9)
VOLUME_ZERO_TOLERANCE_MM3 = 1e-6


# ============================================================================== trial


def run_trial(
    arms: Sequence[Arm | str] | None = None,
    cohort: pd.DataFrame | None = None,
    *,
    template=None,
    responder: ResponderRule | None = None,
    recist: bool = True,
    grid_step_day: float = 0.5,
    params: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
    client: Any = None,
    pool: Any = None,
    progress: bool | None = None,
) -> TrialResult:
    """Give every animal of *cohort* every arm and classify the outcomes.

    Parameters
    ----------
    arms
        :class:`Arm` objects or names of :data:`STANDARD_ARMS`; default control, MH,
        anti-PD-L1 and MH + anti-PD-L1.
    cohort
        From :func:`sample_cohort`; ``None``: one nominal animal.
    template
        The :class:`~mhimmune.runs.ensemble.ScheduleTemplate` that factor-defined arms use;
        default ``ScheduleTemplate("60 d")`` (MH from day 7, three 30-min sessions every
        2 days, anti-PD-L1 10 mg/kg three times every 3 days from the first session).
    responder
        :class:`ResponderRule` (default ≤ 10 mm³ at day 50 after the first treatment,
        endpoint 2000 mm³).
    recist
        Also classify RECIST-like categories (CR/PR/SD/PD).
    grid_step_day
        Spacing of the recorded tumour-volume curves (days).
    params
        Fixed parameter overrides for every animal (cohort columns take precedence).
    n_jobs, client, progress
        As :func:`mhimmune.runs.ensemble.run_ensemble`.
    pool
        A :class:`~mhimmune.runs.ensemble.WorkerPool` to run every ensemble on (*n_jobs* is
        then ignored); not together with *client*. Without one, ``n_jobs > 1`` opens one
        pool for the whole trial.

    Returns
    -------
    TrialResult
    """
    from mhimmune.mh.catalogue import Readout
    from mhimmune.mh.evaluator import ModelEvaluator
    from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
    from mhimmune.runs.ensemble import pool_for, run_ensemble

    responder = responder or ResponderRule()
    if template is None:
        template = ScheduleTemplate("60 d", name="trial")
    elif not isinstance(template, ScheduleTemplate):
        raise ParameterError(
            f"template: expected a ScheduleTemplate, got {type(template).__name__}"
        )
    arm_list = [
        STANDARD_ARMS[a] if isinstance(a, str) and a in STANDARD_ARMS else a
        for a in (arms if arms is not None else standard_arms())
    ]
    for a in arm_list:
        if not isinstance(a, Arm):
            raise ParameterError(
                f"arms: {a!r} is neither an Arm nor a standard arm ({', '.join(STANDARD_ARMS)})"
            )
    if not arm_list:
        raise ParameterError("arms: give at least one arm")
    names = [a.name for a in arm_list]
    if len(set(names)) != len(names):
        raise ParameterError(
            f"arms: duplicate names {sorted({n for n in names if names.count(n) > 1})}"
        )
    cohort = _nominal_cohort() if cohort is None else check_cohort(cohort, PROTOCOL_FACTORS)
    if not (isinstance(grid_step_day, (int, float)) and 0 < grid_step_day <= 5):
        raise ParameterError(f"grid_step_day: must be in (0, 5] days (got {grid_step_day!r})")

    with warnings.catch_warnings():  # H·f warnings: the template's choice, reported by plans
        warnings.simplefilter("ignore", HfWarning)
        plans = {a.name: a.build(template) for a in arm_list}
    firsts = [p.first_treatment_h for p in plans.values() if p.first_treatment_h is not None]
    if not firsts:
        raise ParameterError("arms: no arm has a treatment; a trial needs at least one")
    start_day = min(firsts) / 24.0
    resp_day = start_day + responder.day_after_first_treatment
    for a in arm_list:
        end = plans[a.name].duration_h / 24.0
        if end + 1e-9 < resp_day:
            raise ParameterError(
                f"arm {a.name}: its protocol ends at day {end:g}, before the "
                f"responder day {resp_day:.4g} (first treatment day {start_day:.4g} "
                f"+ {responder.day_after_first_treatment:g}); lengthen the "
                f"template's duration or shorten the responder day"
            )
    # mechanistic readouts (@+D) are sampled D days after each arm's anchor: its first MH
    # session, else its first treatment, else (untreated) the trial's first treatment
    mh_starts = [p.mh_sessions()[0].start_h / 24.0 for p in plans.values() if p.mh_sessions()]
    untreated_anchor = min(mh_starts) if mh_starts else start_day

    def anchor(plan) -> float:
        sessions = plan.mh_sessions()
        if sessions:
            return sessions[0].start_h / 24.0
        first = plan.first_treatment_h
        return untreated_anchor if first is None else first / 24.0

    mechanisms = {name: Readout.parse(spec, name=name) for name, spec, _, _ in MECHANISM_READOUTS}

    def readouts_for(day0: float) -> dict[str, Readout]:
        r = {
            name: (replace(ro, day=day0 + ro.day, relative=False) if ro.relative else ro)
            for name, ro in mechanisms.items()
        }
        r["total_at_start_mm3"] = Readout("total_at_start_mm3", "at", _VOLUMES, start_day)
        r["total_at_responder_day_mm3"] = Readout(
            "total_at_responder_day_mm3", "at", _VOLUMES, resp_day
        )
        return r

    frames, curves = [], []
    grid_end = min(p.duration_h for p in plans.values()) / 24.0
    grid = np.arange(0.0, grid_end + 1e-9, float(grid_step_day))
    groups: dict[float, list[Arm]] = {}
    for a in arm_list:
        if a.protocol is None:
            groups.setdefault(anchor(plans[a.name]), []).append(a)
    jobs = []
    for day0, group in groups.items():  # template arms with the same anchor: one ensemble
        cols = sorted({k for a in group for k in a.factors})
        blocks = []
        for a in group:
            block = cohort.reset_index(drop=True).copy()
            vals = template.values(a.factors)
            for c in cols:
                block[c] = vals[c]
            blocks.append(block)
        jobs.append(
            (
                [a.name for a in group],
                ModelEvaluator(
                    template,
                    readouts_for(day0),
                    trajectories=_VOLUMES,
                    time_grid_day=grid,
                    params=params,
                ),
                pd.concat(blocks, ignore_index=True),
            )
        )
    for a in arm_list:
        if a.protocol is not None:
            jobs.append(
                (
                    [a.name],
                    ModelEvaluator(
                        a.protocol,
                        readouts_for(anchor(a.protocol)),
                        trajectories=_VOLUMES,
                        time_grid_day=grid,
                        params=params,
                    ),
                    cohort.reset_index(drop=True),
                )
            )
    n = len(cohort)
    with pool_for(n_jobs, client, pool) as pool:
        results = [
            (
                arm_names,
                run_ensemble(
                    ev,
                    design,
                    n_jobs=n_jobs,
                    client=client,
                    pool=pool,
                    progress=progress,
                    desc=f"trial: {', '.join(arm_names)}",
                ),
            )
            for arm_names, ev, design in jobs
        ]
    for arm_names, res in results:
        table = res.results.reset_index(drop=True)
        traj = res.trajectories(list(_VOLUMES))
        for k, name in enumerate(arm_names):
            rows = table.iloc[k * n : (k + 1) * n].copy()
            rows.insert(0, "animal", np.asarray(cohort.index))
            rows.insert(0, "arm", name)
            frames.append(rows.drop(columns=["run"]))
            t = traj[(traj["run"] >= k * n) & (traj["run"] < (k + 1) * n)]
            total = t.pivot_table(index="run", columns="time_day", values="value", aggfunc="sum")
            total = total.reindex(range(k * n, (k + 1) * n))
            curves.append((name, total.to_numpy()))
    order = {name: i for i, name in enumerate(names)}
    frames.sort(key=lambda f: order[f["arm"].iloc[0]])
    animals = pd.concat(frames, ignore_index=True)
    volumes = {name: arr for name, arr in sorted(curves, key=lambda c: order[c[0]])}
    return TrialResult(
        animals=animals,
        volumes=volumes,
        time_day=grid,
        arms=arm_list,
        plans=plans,
        cohort=cohort,
        responder=responder,
        start_day=start_day,
        recist=recist,
    )


@dataclass
class TrialResult:
    """Outcome of :func:`run_trial`.

    Attributes
    ----------
    animals
        One row per (arm, animal): status, message, cohort parameters, arm factors,
        mechanistic readouts (:data:`MECHANISM_READOUTS`, sampled after each arm's first
        MH session, or first treatment without MH), ``total_at_start_mm3``,
        ``total_at_responder_day_mm3``, and the classification columns ``responder``,
        ``time_to_event_day``, ``event`` (and ``recist`` when asked).
    volumes
        Arm name -> array (animals × times) of total tumour volume (mm³) on *time_day*.
    time_day
        The recording grid (days from day 0).
    start_day
        First treatment of the trial (day); responder day = start_day + rule's day.
    """

    animals: pd.DataFrame
    volumes: dict[str, np.ndarray]
    time_day: np.ndarray
    arms: list[Arm]
    plans: dict[str, Any]
    cohort: pd.DataFrame
    responder: ResponderRule
    start_day: float
    recist: bool = True

    def __post_init__(self):
        from mhimmune.studies import stats

        a = self.animals
        self._check_volumes()
        ok = (a["status"] == "ok").to_numpy()
        a["responder"] = pd.array([pd.NA] * len(a), dtype="boolean")
        if ok.any():
            a.loc[ok, "responder"] = stats.responders(
                a.loc[ok, "total_at_responder_day_mm3"].to_numpy(float),
                self.responder.threshold_mm3,
            )
        a["time_to_event_day"] = np.nan
        a["event"] = pd.array([pd.NA] * len(a), dtype="boolean")
        for name in self.arm_names:
            rows = np.nonzero((a["arm"] == name).to_numpy() & ok)[0]
            if not len(rows):
                continue
            arm_rows = np.nonzero((a["arm"] == name).to_numpy())[0]
            local = np.searchsorted(arm_rows, rows)
            times, events = stats.time_to_event(
                self.time_day,
                self.volumes[name][local],
                self.responder.endpoint_mm3,
                start_day=self.start_day,
            )
            a.loc[rows, "time_to_event_day"] = times
            a.loc[rows, "event"] = events
        if self.recist:
            a["recist"] = pd.Categorical([None] * len(a), categories=stats.RECIST_CATEGORIES)
            if ok.any():
                base = a.loc[ok, "total_at_start_mm3"].to_numpy(float)
                a.loc[ok, "recist"] = np.asarray(
                    stats.recist_categories(
                        base,
                        a.loc[ok, "total_at_responder_day_mm3"].to_numpy(float),
                        cr_threshold_mm3=self.responder.threshold_mm3,
                    )
                )

    def _check_volumes(self) -> None:
        """Negative tumour volumes: within :data:`VOLUME_ZERO_TOLERANCE_MM3` of 0 they are
        numerically zero (the integrator's absolute tolerance is 1e-9) and read as 0; more
        negative values mean an inaccurate run, which is marked failed (status
        ``"negative_volume"``) and left out of every statistic."""
        a = self.animals
        cols = ["total_at_start_mm3", "total_at_responder_day_mm3"]
        for name in self.arm_names:
            idx = np.nonzero((a["arm"] == name).to_numpy())[0]
            vol = np.array(self.volumes[name], dtype=float)  # own, writable copy
            ok = a["status"].to_numpy()[idx] == "ok"
            lowest = np.minimum(
                np.nanmin(np.where(np.isnan(vol), np.inf, vol), axis=1),
                a.loc[idx, cols].min(axis=1).to_numpy(),
            )
            bad = ok & (lowest < -VOLUME_ZERO_TOLERANCE_MM3)
            for i, low in zip(idx[bad], lowest[bad]):
                a.loc[i, "status"] = "negative_volume"
                a.loc[i, "message"] = (
                    f"total tumour volume reached {low:.3g} mm³ (< "
                    f"-{VOLUME_ZERO_TOLERANCE_MM3:g}); rerun with a smaller "
                    f"rtol/atol"
                )
            vol[ok & ~bad] = np.where(vol[ok & ~bad] < 0, 0.0, vol[ok & ~bad])
            self.volumes[name] = vol
            keep = idx[ok & ~bad]
            for c in cols:
                a.loc[keep, c] = a.loc[keep, c].clip(lower=0.0)

    # ------------------------------------------------------------------ basics
    @property
    def arm_names(self) -> list[str]:
        """Arm names in trial order."""
        return [a.name for a in self.arms]

    @property
    def n_animals(self) -> int:
        """Animals per arm."""
        return len(self.cohort)

    @property
    def responder_day(self) -> float:
        """Day (from day 0) on which responders are classified."""
        return self.start_day + self.responder.day_after_first_treatment

    @property
    def n_failed(self) -> int:
        """Runs (animal × arm) whose simulation failed; they are left out of every statistic."""
        return int((self.animals["status"] != "ok").sum())

    def _ok(self, arm: str | None = None) -> pd.DataFrame:
        a = self.animals
        mask = a["status"] == "ok"
        if arm is not None:
            if arm not in self.arm_names:
                raise ParameterError(
                    f"arm {arm!r}: not in this trial ({', '.join(self.arm_names)})"
                )
            mask &= a["arm"] == arm
        return a[mask]

    # ------------------------------------------------------------- statistics
    def responder_table(self, confidence: float = 0.95, method: str = "wilson") -> pd.DataFrame:
        """Responder fraction per arm with a confidence interval.

        Returns a table indexed by arm: ``n`` (animals), ``n_ok`` (successful runs),
        ``responders``, ``fraction``, ``ci_low``, ``ci_high`` (*method*:
        ``wilson``, ``clopper-pearson`` or ``jeffreys``), ``median_time_to_event_day``.
        """
        from mhimmune.studies import stats

        rows = []
        for name in self.arm_names:
            ok = self._ok(name)
            k, m = int(ok["responder"].sum()), len(ok)
            p, lo, hi = stats.proportion_ci(k, m, confidence, method) if m else (np.nan,) * 3
            km = self.kaplan_meier(name) if m else None
            rows.append(
                {
                    "arm": name,
                    "n": self.n_animals,
                    "n_ok": m,
                    "responders": k,
                    "fraction": p,
                    "ci_low": lo,
                    "ci_high": hi,
                    "median_time_to_event_day": stats.median_time(km) if km is not None else np.nan,
                }
            )
        return pd.DataFrame(rows).set_index("arm")

    def recist_table(self) -> pd.DataFrame:
        """Counts of RECIST-like categories per arm (arms × CR/PR/SD/PD)."""
        if not self.recist:
            raise ParameterError("recist: this trial was run with recist=False")
        ok = self._ok()
        tab = pd.crosstab(
            pd.Categorical(ok["arm"], categories=self.arm_names), ok["recist"], dropna=False
        )
        tab.index.name, tab.columns.name = "arm", "recist"
        return tab

    def kaplan_meier(self, arm: str, confidence: float = 0.95) -> pd.DataFrame:
        """Kaplan–Meier estimate of the time (days from the first treatment) until the
        total tumour reaches the endpoint volume, for *arm* (see :func:`mhimmune.studies.stats.kaplan_meier`)."""
        from mhimmune.studies import stats

        ok = self._ok(arm)
        return stats.kaplan_meier(
            ok["time_to_event_day"].to_numpy(float), ok["event"].to_numpy(bool), confidence
        )

    def logrank(self, reference: str | None = "control", correction: str = "holm") -> pd.DataFrame:
        """Log-rank tests of each arm against *reference* (all pairs if ``None``),
        p-values adjusted by *correction* (see :func:`mhimmune.studies.stats.pairwise_logrank`)."""
        from mhimmune.studies import stats

        if reference is not None and reference not in self.arm_names:
            raise ParameterError(
                f"reference: {reference!r} is not an arm of this trial "
                f"({', '.join(self.arm_names)})"
            )
        ok = self._ok()
        return stats.pairwise_logrank(
            ok["time_to_event_day"].to_numpy(float),
            ok["event"].to_numpy(bool),
            ok["arm"].to_numpy(),
            reference=reference,
            correction=correction,
        )

    def mechanisms(self, statistic: str = "median") -> pd.DataFrame:
        """Per arm, the cohort *statistic* (``median`` or ``mean``) of each mechanistic
        readout (:data:`MECHANISM_READOUTS`), arms × readouts."""
        if statistic not in ("median", "mean"):
            raise ParameterError(f"statistic: must be 'median' or 'mean' (got {statistic!r})")
        cols = [m[0] for m in MECHANISM_READOUTS if m[0] in self.animals]
        g = self._ok().groupby("arm", sort=False)[cols]
        out = g.median() if statistic == "median" else g.mean()
        return out.reindex(self.arm_names)

    def summary(self) -> str:
        """Short text: responder fractions with intervals, failures, the responder rule."""
        rt = self.responder_table()
        lines = [
            f"Virtual trial: {self.n_animals} animals × {len(self.arms)} arms; responder = "
            f"total tumour ≤ {self.responder.threshold_mm3:g} mm³ at day "
            f"{self.responder_day:.4g} ({self.responder.day_after_first_treatment:g} d after "
            f"the first treatment on day {self.start_day:.4g}); model predictions."
        ]
        for name, r in rt.iterrows():
            lines.append(
                f"  {name:<28} {int(r['responders']):>4}/{int(r['n_ok']):<4} "
                f"{100 * r['fraction']:5.1f} % (95 % CI {100 * r['ci_low']:.1f}–"
                f"{100 * r['ci_high']:.1f} %)"
            )
        if self.n_failed:
            lines.append(f"  {self.n_failed} runs failed and are left out (see .failures)")
        return "\n".join(lines)

    @property
    def failures(self) -> pd.DataFrame:
        """Rows of :attr:`animals` whose run failed (status, message, parameters)."""
        return self.animals[self.animals["status"] != "ok"]

    def __repr__(self) -> str:
        return f"<TrialResult {self.n_animals} animals × {len(self.arms)} arms>\n{self.summary()}"

    def _repr_html_(self) -> str:
        rt = self.responder_table()
        return (
            f"<p>Virtual trial: {self.n_animals} animals × {len(self.arms)} arms "
            f"(model predictions)</p>" + rt.to_html(float_format=lambda x: f"{x:.3g}")
        )

    # ------------------------------------------------------------------- output
    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``animals.csv``, ``responders.csv``, ``logrank.csv``,
        ``mechanisms.csv`` and ``volumes.csv.gz`` (gzip; long: arm, animal, time_day,
        total_mm3, 6 significant digits) to *out* atomically; returns the paths by name."""
        from mhimmune.core.io import write_csv

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "animals": write_csv(self.animals, out / "animals.csv"),
            "responders": write_csv(self.responder_table().reset_index(), out / "responders.csv"),
            "mechanisms": write_csv(self.mechanisms().reset_index(), out / "mechanisms.csv"),
            "volumes": write_csv(
                self.volume_frame(), out / "volumes.csv.gz", index=False, float_format="%.6g"
            ),
        }
        if "control" in self.arm_names and len(self.arms) > 1:
            paths["logrank"] = write_csv(self.logrank(), out / "logrank.csv")
        return paths

    def volume_frame(self) -> pd.DataFrame:
        """Tumour-volume curves as a tidy table: arm, animal, time_day, total_mm3."""
        parts = []
        for name, arr in self.volumes.items():
            n, m = arr.shape
            parts.append(
                pd.DataFrame(
                    {
                        "arm": name,
                        "animal": np.repeat(np.asarray(self.cohort.index), m),
                        "time_day": np.tile(self.time_day, n),
                        "total_mm3": arr.ravel(),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------------- plots
    def plot_km(self, ax=None, arms: Sequence[str] | None = None, ci: bool = True):
        """Kaplan–Meier curves (fraction of animals below the endpoint volume) per arm."""
        import matplotlib.pyplot as plt

        from mhimmune.mh.plotting import HYPOTHESIS_NOTE

        ax = ax or plt.subplots(figsize=(6, 4))[1]
        palette = _palette(self.arm_names)
        for name in arms or self.arm_names:
            km = self.kaplan_meier(name)
            ax.step(km["time"], km["survival"], where="post", color=palette[name], label=name)
            if ci:
                ax.fill_between(
                    km["time"],
                    km["lower"].fillna(km["survival"]),
                    km["upper"].fillna(km["survival"]),
                    step="post",
                    color=palette[name],
                    alpha=0.15,
                    lw=0,
                )
        ax.set_xlabel("days after the first treatment")
        ax.set_ylabel(f"fraction with tumour < {self.responder.endpoint_mm3:g} mm³")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax.set_title(
            f"Virtual trial (n = {self.n_animals} per arm); {HYPOTHESIS_NOTE}",
            fontsize=8,
            loc="left",
        )
        return ax

    def plot_responders(self, ax=None):
        """Responder fraction per arm with its 95 % Wilson interval."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(6, 3.5))[1]
        rt = self.responder_table()
        palette = _palette(self.arm_names)
        x = np.arange(len(rt))
        ax.bar(x, rt["fraction"], color=[palette[n] for n in rt.index])
        ax.errorbar(
            x,
            rt["fraction"],
            yerr=[rt["fraction"] - rt["ci_low"], rt["ci_high"] - rt["fraction"]],
            fmt="none",
            ecolor="k",
            capsize=3,
            lw=1,
        )
        ax.set_xticks(x, rt.index, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(
            f"responders (≤ {self.responder.threshold_mm3:g} mm³ at "
            f"+{self.responder.day_after_first_treatment:g} d)"
        )
        ax.set_ylim(0, 1.05)
        return ax

    def plot_volumes(self, axes=None, log: bool = True):
        """Total tumour volume of every animal over time, one panel per arm."""
        import matplotlib.pyplot as plt

        k = len(self.arms)
        if axes is None:
            axes = plt.subplots(1, k, figsize=(2.6 * k, 2.8), sharey=True, squeeze=False)[1][0]
        palette = _palette(self.arm_names)
        for ax, name in zip(axes, self.arm_names):
            arr = self.volumes[name]
            floor = 1e-3
            y = np.maximum(arr, floor) if log else arr  # display floor only; data unchanged
            ax.plot(self.time_day, y.T, color=palette[name], alpha=0.35, lw=0.7)
            ax.axhline(self.responder.threshold_mm3, color="k", ls=":", lw=0.8)
            ax.axvline(self.responder_day, color="grey", ls="--", lw=0.8)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("day")
            if log:
                ax.set_yscale("log")
        axes[0].set_ylabel("total tumour (mm³)" + (" (shown ≥ 1e-3)" if log else ""))
        return axes

    def figure(self):
        """One figure: Kaplan–Meier curves and responder fractions side by side."""
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(
            1, 2, figsize=(13, 4.2), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        self.plot_km(a1)
        self.plot_responders(a2)
        return fig


def _palette(names: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    colours = sns.color_palette("colorblind", max(len(names), 3))
    fixed = {"control": (0.45, 0.45, 0.45)}
    return {n: fixed.get(n, colours[i % len(colours)]) for i, n in enumerate(names)}
