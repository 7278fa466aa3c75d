"""Virtual cohorts: one row per virtual animal, one column per varied model parameter.

:func:`sample_cohort` draws a cohort from a variability table (``parameters/cohort.tsv``,
read by :func:`load_variability`: each parameter log-normal (or logit-normal for
fractions) around its value in the model's parameter table, with a spread σ on the log
(logit) scale and a source for σ), optionally correlated through a Gaussian copula; the
same seed gives the same cohort. :func:`check_cohort` validates a cohort given by a
caller and :func:`nominal_cohort` is the one nominal animal used when none is given.

Cohort spreads are assumed where the variability table says so.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.params import ParameterTable
from mhimmune.core.resources import resource_dir

__all__ = ["load_variability", "sample_cohort", "check_cohort", "nominal_cohort"]

_DISTRIBUTIONS = ("lognormal", "logitnormal")


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
    base: Mapping[str, float] | None = None,
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
    base
        Values (table units) replacing the tables' nominal values, e.g. the
        ``baseline`` of a model loaded with a tumour preset
        (``base=model.baseline``), so the animals vary around that tumour line.

    Returns
    -------
    pandas.DataFrame
        Index ``animal`` (0..n-1), columns the parameters (values in table units);
        ``attrs`` hold the seed and the variability used.
    """
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
    if base:
        table = table.with_values(base)
    names = [str(x) for x in var.index]
    unknown = [x for x in names if x not in table]
    if unknown:
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


def nominal_cohort() -> pd.DataFrame:
    """A cohort of one nominal animal (no parameter columns), index ``animal``."""
    return pd.DataFrame(index=pd.RangeIndex(1, name="animal"))
