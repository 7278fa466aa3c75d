"""Measured tumour growth in, PEtab problems out.

Measurements are a table with one row per animal and time point::

    animal,arm,day,volume
    m01,untreated,7,182.5
    m01,untreated,9,260.1
    m07,mh,7,175.0

``volume`` is the tumour volume in mm³; an optional ``site`` column says which tumour
was measured (``treated``, the default, or ``distant``). Each ``arm`` names a
protocol (a :class:`~mhimmune.Protocol`, a TOML file, or one of the shipped protocols
such as ``mh`` or ``mh_plus_pdl1``).

:func:`to_petab` writes a PEtab v1 problem: the SBML model with the treatment
schedules as events whose values each condition (one per arm) sets, an observable per
measured site (tumour volume, log-normal noise with one estimated SD of log volume),
the measurements (time in hours, the model's unit), and the parameter table from the
model's tables (values and bounds in the table's units, as ``mhimmune params`` and
:func:`mhimmune.calibrate.fit` show them, PEtab scales from the ``scale`` column). A
parameter whose table unit is not the model's internal unit (e.g. 1/d for a rate the
model takes in 1/h) enters the SBML as itself, in the table's unit, and an assignment
rule gives the model its internal value ``<name>_internal``. The problem passes
``petab``'s linter (:func:`lint`).
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.core.model import Model
from mhimmune.core.resources import resource_dir
from mhimmune.core.units import days_to_hours, hours_to_days, ureg
from mhimmune.interop.sbml import conditions_document, sbml_id
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.protocol import Protocol

__all__ = [
    "MEASUREMENT_COLUMNS",
    "load_measurements",
    "resolve_protocols",
    "observable_name",
    "to_petab",
    "write_petab",
    "lint",
    "NOISE_PARAMETER",
]

#: required columns of a measurement table
MEASUREMENT_COLUMNS = ("animal", "arm", "day", "volume")
#: id of the noise parameter: standard deviation of the natural log of tumour volume
NOISE_PARAMETER = "sd_log_tumour_volume"
_SITES = ("treated", "distant")


def observable_name(site: str) -> str:
    """The model quantity measured at *site*: ``tumour_volume_<site>`` (mm³)."""
    return f"tumour_volume_{site}"


def load_measurements(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and check measured tumour volumes (CSV path or DataFrame).

    Returns a copy with columns ``animal, arm, day, volume, site`` (``animal`` and
    ``arm`` as strings, ``site`` filled with ``treated`` where absent).

    Raises
    ------
    MhimmuneError
        For missing columns, non-numeric or non-finite days or volumes, negative days,
        volumes ≤ 0 (they enter the fit as logarithms) or unknown sites; the message
        names the first offending row.
    """
    if isinstance(source, pd.DataFrame):
        df, origin = source.copy(), "measurements"
    else:
        path = Path(source)
        if not path.is_file():
            raise MhimmuneError(f"measurement file not found: {path}")
        df, origin = pd.read_csv(path), str(path)
    missing = [c for c in MEASUREMENT_COLUMNS if c not in df.columns]
    if missing:
        raise MhimmuneError(
            f"{origin}: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(MEASUREMENT_COLUMNS)} (and optionally site)"
        )
    if "site" not in df.columns:
        df["site"] = "treated"
    df = df[[*MEASUREMENT_COLUMNS, "site"]].copy()
    df["animal"] = df["animal"].astype(str)
    df["arm"] = df["arm"].astype(str)
    df["site"] = df["site"].fillna("treated").astype(str).str.strip().str.lower()
    for col in ("day", "volume"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            row = int(np.nonzero(bad)[0][0])
            raise MhimmuneError(
                f"{origin}: row {row + 1}: {col} must be a finite number, got {df[col].iloc[row]!r}"
            )
        df[col] = values.astype(float)
    checks = (
        ("day", df["day"] < 0, "must be ≥ 0"),
        ("volume", df["volume"] <= 0, "must be > 0 mm³ (volumes are fitted on a log scale)"),
        ("site", ~df["site"].isin(_SITES), f"must be one of {', '.join(_SITES)}"),
    )
    for col, bad, text in checks:
        if bad.any():
            row = int(np.nonzero(bad.to_numpy())[0][0])
            raise MhimmuneError(f"{origin}: row {row + 1}: {col} {text}, got {df[col].iloc[row]!r}")
    if df.empty:
        raise MhimmuneError(f"{origin}: no measurements")
    return df.reset_index(drop=True)


def resolve_protocols(
    arms: Sequence[str], protocols: Mapping[str, Any] | None = None
) -> dict[str, Protocol]:
    """Protocol of every arm: given ones (objects or TOML paths), else a shipped protocol.

    Raises :class:`MhimmuneError` naming the arms that have no protocol.
    """
    given = dict(protocols or {})
    out, missing = {}, []
    for arm in dict.fromkeys(arms):
        value = given.get(arm)
        if value is None:
            shipped = resource_dir("protocols") / f"{arm}.toml"
            value = shipped if shipped.is_file() else None
        if value is None:
            missing.append(arm)
            continue
        if not isinstance(value, Protocol):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HfWarning)
                value = Protocol.from_toml(Path(value))
        out[arm] = value
    if missing:
        raise MhimmuneError(
            f"no protocol for arm(s) {', '.join(missing)}: pass protocols={{arm: Protocol or "
            f"TOML path}} or name the arms after shipped protocols"
        )
    return out


def _condition_id(arm: str) -> str:
    return sbml_id(arm)


def _conversion(unit: str, internal: str) -> tuple[float, float]:
    """``(a, b)`` with internal value = a · table value + b."""
    b = float(ureg.Quantity(0.0, unit).to(internal).magnitude)
    return float(ureg.Quantity(1.0, unit).to(internal).magnitude) - b, b


def _converted(model: Model) -> dict[str, tuple[float, float]]:
    """Parameters whose table unit differs from the internal unit: their ``(a, b)``."""
    frame = model.parameters()
    out = {}
    for name, r in frame.iterrows():
        if name in model.inputs:
            continue
        a, b = _conversion(r["unit"], r["internal_unit"])
        if not (math.isclose(a, 1.0, rel_tol=1e-12) and b == 0.0):
            out[str(name)] = (a, b)
    return out


def _table_unit_parameters(doc, model: Model, converted: Mapping[str, tuple[float, float]]):
    """Make each *converted* parameter of the SBML *doc* a constant in the table's unit;
    the model reads ``<name>_internal``, set by an assignment rule."""
    import libsbml  # a dependency of petab

    sm = doc.getModel()
    units = model.parameters()["unit"]
    for name, (a, b) in converted.items():
        inner = f"{name}_internal"
        while sm.getElementBySId(inner) is not None:
            inner += "_"
        elements = sm.getListOfAllElements()
        for k in range(elements.getSize()):
            elements.get(k).renameSIdRefs(name, inner)
        par = sm.getParameter(name)
        internal_value = par.getValue()
        par.setId(inner)
        par.setConstant(False)
        table = sm.createParameter()
        table.setId(name)
        table.setName(f"{name} [{units[name]}]")
        table.setValue((internal_value - b) / a)
        table.setConstant(True)
        rule = sm.createAssignmentRule()
        rule.setVariable(inner)
        formula = f"{a!r} * {name}" + (f" + {b!r}" if b else "")
        rule.setMath(libsbml.parseL3Formula(formula))


def _parameter_rows(model: Model, estimate: Sequence[str]) -> pd.DataFrame:
    """PEtab parameter rows from the model's tables, in the tables' units."""
    frame = model.parameters()
    unknown = [n for n in estimate if n not in frame.index]
    if unknown:
        raise ParameterError(f"cannot estimate unknown parameter(s) {', '.join(unknown)}")
    rows = []
    for name, r in frame.iterrows():
        unit = r["unit"]
        value = float(r["value"])
        lower = float(r["lower"]) if pd.notna(r["lower"]) else np.nan
        upper = float(r["upper"]) if pd.notna(r["upper"]) else np.nan
        if np.isnan(lower):
            lower = value
        if np.isnan(upper):
            upper = value
        scale = r["scale"]
        est = name in estimate
        if scale in ("log", "log10") and (lower <= 0 or value <= 0):
            if est:
                raise ParameterError(
                    f"{name}: cannot estimate on a {scale} scale with bounds "
                    f"[{lower:g}, {upper:g}] and value {value:g}; bounds must be > 0"
                )
            scale = "lin"
        rows.append(
            {
                "parameterId": name,
                "parameterName": f"{name} [{unit}]",
                "parameterScale": scale,
                "lowerBound": lower,
                "upperBound": upper,
                "nominalValue": value,
                "estimate": int(est),
            }
        )
    rows.append(
        {
            "parameterId": NOISE_PARAMETER,
            "parameterName": "SD of log tumour volume [1]",
            "parameterScale": "log10",
            "lowerBound": 1e-3,
            "upperBound": 3.0,
            "nominalValue": 0.2,
            "estimate": 1,
        }
    )
    return pd.DataFrame(rows).set_index("parameterId")


def to_petab(
    model: Model,
    measurements: str | Path | pd.DataFrame,
    protocols: Mapping[str, Any] | None = None,
    *,
    estimate: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
):
    """A PEtab v1 problem (``petab.v1.Problem``) for fitting *model* to tumour volumes.

    Parameters
    ----------
    model
        A model from :func:`mhimmune.load_model`.
    measurements
        Tumour volumes (see :func:`load_measurements`).
    protocols
        Protocol of each arm (objects or TOML paths); arms named after shipped
        protocols need none.
    estimate
        Parameters to estimate (``estimate = 1``); all others are fixed at their values.
    params
        Overrides of the nominal values, as for :func:`mhimmune.simulate`.
    """
    # petab loads libsbml and its own stack: imported when a problem is written
    import petab.v1 as petab
    from petab.v1.models.sbml_model import SbmlModel

    data = load_measurements(measurements)
    arms = resolve_protocols(data["arm"].unique(), protocols)
    cond_ids = {arm: _condition_id(arm) for arm in arms}
    if len(set(cond_ids.values())) != len(cond_ids):
        raise MhimmuneError(f"arm names collide as PEtab identifiers: {sorted(cond_ids)}")
    for arm, prot in arms.items():
        late = data[(data["arm"] == arm) & (days_to_hours(data["day"]) > prot.duration_h + 1e-9)]
        if len(late):
            raise MhimmuneError(
                f"arm {arm!r}: measurement on day {late['day'].max():g} after the end of "
                f"its protocol (day {hours_to_days(prot.duration_h):g})"
            )
    doc, schedule_values = conditions_document(
        model, {cond_ids[a]: p for a, p in arms.items()}, params
    )
    converted = _converted(model)
    _table_unit_parameters(doc, model, converted)
    sbml_model = SbmlModel(sbml_model=doc.getModel(), sbml_document=doc)
    condition_df = schedule_values.copy()
    condition_df.insert(0, "conditionName", [a for a in arms])
    sites = [s for s in _SITES if (data["site"] == s).any()]
    observable_df = pd.DataFrame(
        {
            "observableId": [f"obs_{observable_name(s)}" for s in sites],
            "observableName": [f"tumour volume, {s} site (mm^3)" for s in sites],
            "observableFormula": [observable_name(s) for s in sites],
            "observableTransformation": "log",
            "noiseFormula": NOISE_PARAMETER,
            "noiseDistribution": "normal",
        }
    ).set_index("observableId")
    measurement_df = pd.DataFrame(
        {
            "observableId": [f"obs_{observable_name(s)}" for s in data["site"]],
            "simulationConditionId": [cond_ids[a] for a in data["arm"]],
            "measurement": data["volume"].to_numpy(),
            "time": days_to_hours(data["day"].to_numpy()),  # the model's time unit is the hour
            "datasetId": [cond_ids[a] for a in data["arm"]],
            "replicateId": [_condition_id(f"animal_{a}") for a in data["animal"]],
        }
    )
    parameter_df = _parameter_rows(model, list(estimate))
    if params:
        vec = model.parameter_vector(params)
        for name in params:
            if name in parameter_df.index:
                a, b = converted.get(name, (1.0, 0.0))
                parameter_df.loc[name, "nominalValue"] = (
                    float(vec[model.compiled.parameters.index(name)]) - b
                ) / a
    return petab.Problem(
        model=sbml_model,
        condition_df=condition_df,
        observable_df=observable_df,
        measurement_df=measurement_df,
        parameter_df=parameter_df,
    )


def lint(problem) -> None:
    """Run petab's linter; raise :class:`MhimmuneError` with its messages if it finds errors."""
    import petab.v1 as petab  # loads libsbml: imported when used

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("petab")
    logger.addHandler(handler)
    try:
        failed = petab.lint_problem(problem)
    finally:
        logger.removeHandler(handler)
    if failed:
        raise MhimmuneError("PEtab problem fails the linter: " + stream.getvalue().strip())


def write_petab(problem, folder: str | Path, name: str = "mhimmune") -> Path:
    """Write *problem* into *folder* (model, tables, YAML); return the YAML path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path = folder / f"{name}.yaml"
    problem.to_files(
        model_file=folder / f"{name}_model.xml",
        condition_file=folder / f"{name}_conditions.tsv",
        measurement_file=folder / f"{name}_measurements.tsv",
        parameter_file=folder / f"{name}_parameters.tsv",
        observable_file=folder / f"{name}_observables.tsv",
        yaml_file=yaml_path,
        relative_paths=True,
    )
    return yaml_path
