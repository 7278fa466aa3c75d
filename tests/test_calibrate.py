"""Calibration: measured tumour growth in, PEtab out, parameters recovered with intervals."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.interop import petab as mhpetab
from mhimmune.mh.field_safety import HfWarning
from mhimmune.studies import calibrate

pytest.importorskip("petab")

#: the parameters the synthetic study recovers, and their true values (table units)
TRUTH = {"tumour_growth_rate": 0.45, "heat_d0_43": 25.0}


@pytest.fixture(scope="module")
def arms():
    """Two short arms: untreated, and one 30-min MH session on day 5 (14 days each)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        heated = mh.Protocol("14 d", name="MH day 5").mh_session(
            start="5 d",
            duration="30 min",
            field="15 kA/m",
            frequency="200 kHz",
            agent="fe3o4_19nm_mpeg",
            dose="3.5 mg/cm^3",
        )
    return {"untreated": mh.Protocol("14 d", name="untreated"), "mh_day5": heated}


@pytest.fixture(scope="module")
def synthetic(model, arms):
    missing = [n for n in TRUTH if n not in model.parameter_names]
    if missing:
        pytest.skip(f"model has no parameter(s) {missing}")
    return calibrate.synthetic_measurements(
        model, arms, days=range(0, 15), params=TRUTH, animals_per_arm=3, sd_log=0.1, seed=1
    )


@pytest.fixture(scope="module")
def profile_fit(model, synthetic, arms):
    return calibrate.fit(model, synthetic, list(TRUTH), arms, n_starts=3, seed=0, ci="profile")


def test_fit_recovers_true_parameters_within_profile_intervals(profile_fit):
    """Growth rate and heat sensitivity (D0 at 43 °C) of synthetic data (3 animals per
    arm, 10 % log-normal noise) are recovered: every true value lies inside its 95 %
    profile-likelihood interval, and the estimate is within 10 % of it."""
    table = profile_fit.table()
    for name, true in TRUTH.items():
        row = table.loc[name]
        assert row["ci_lower"] <= true <= row["ci_upper"], (name, row.to_dict())
        assert row["estimate"] == pytest.approx(true, rel=0.1)
        assert row["ci_lower"] < row["estimate"] < row["ci_upper"]
        assert row["identifiable"]
    # the noise level is recovered too, and every start converged to the same optimum
    assert profile_fit.sigma == pytest.approx(0.1, rel=0.3)
    assert np.ptp(profile_fit.starts["rss"]) < 1e-6 * profile_fit.rss + 1e-12
    assert profile_fit.objective.n_failures == 0
    # profiles reach the χ² threshold on both sides
    for prof in profile_fit.profiles.values():
        assert prof["delta"].min() == pytest.approx(0.0, abs=1e-6)
        assert prof["delta"].max() >= 3.84


def test_fit_plots_and_predictions(profile_fit, tmp_path):
    fig = profile_fit.plot()
    fig.savefig(tmp_path / "fit.png")
    fig2 = profile_fit.plot_profiles()
    fig2.savefig(tmp_path / "profiles.png")
    assert (tmp_path / "fit.png").stat().st_size > 10_000
    assert (tmp_path / "profiles.png").stat().st_size > 10_000
    pred = profile_fit.predictions()
    assert {"fitted", "log_residual"} <= set(pred.columns)
    assert np.sqrt(np.mean(pred["log_residual"] ** 2)) == pytest.approx(profile_fit.sigma, rel=1e-6)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_bootstrap_interval_brackets_estimate(model, synthetic, arms):
    """Resampling animals within arms gives refits that scatter around the estimate."""
    data = synthetic[synthetic["arm"] == "untreated"]
    fit = calibrate.fit(
        model,
        data,
        ["tumour_growth_rate"],
        {"untreated": arms["untreated"]},
        n_starts=1,
        ci="bootstrap",
        n_bootstrap=4,
        seed=3,
    )
    row = fit.table().loc["tumour_growth_rate"]
    assert row["method"] == "bootstrap" and len(fit.bootstrap) == 4
    assert row["ci_lower"] < row["ci_upper"]
    assert fit.bootstrap["tumour_growth_rate"].median() == pytest.approx(row["estimate"], rel=0.02)
    assert row["estimate"] == pytest.approx(TRUTH["tumour_growth_rate"], rel=0.05)


def test_measurement_import_checks_columns_and_values(tmp_path):
    good = pd.DataFrame(
        {"animal": [1, 1], "arm": ["mh", "mh"], "day": [7, 9], "volume": [100.0, 80.0]}
    )
    path = tmp_path / "data.csv"
    good.to_csv(path, index=False)
    loaded = mhpetab.load_measurements(path)
    assert list(loaded.columns) == ["animal", "arm", "day", "volume", "site"]
    assert (loaded["site"] == "treated").all() and loaded["animal"].tolist() == ["1", "1"]
    for change, message in [
        ({"volume": [100.0, 0.0]}, "row 2: volume must be > 0"),
        ({"day": [7, "x"]}, "row 2: day must be a finite number"),
        ({"day": [-1, 9]}, "row 1: day must be ≥ 0"),
    ]:
        with pytest.raises(MhimmuneError, match=message):
            mhpetab.load_measurements(good.assign(**change))
    with pytest.raises(MhimmuneError, match="missing column"):
        mhpetab.load_measurements(good.drop(columns="volume"))
    with pytest.raises(MhimmuneError, match="site must be one of"):
        mhpetab.load_measurements(good.assign(site="liver"))
    with pytest.raises(MhimmuneError, match="no protocol for arm"):
        mhpetab.resolve_protocols(["no_such_arm"])


def test_fit_rejects_bad_requests(model, synthetic, arms):
    with pytest.raises(ParameterError, match="unknown parameter"):
        calibrate.fit(model, synthetic, ["no_such_parameter"], arms)
    with pytest.raises(MhimmuneError, match="after the end"):
        calibrate.fit(
            model, synthetic.assign(day=synthetic["day"] + 30), ["tumour_growth_rate"], arms
        )
    with pytest.raises(MhimmuneError, match="ci must be"):
        calibrate.fit(model, synthetic, ["tumour_growth_rate"], arms, ci="jackknife")


def test_petab_problem_passes_linter(model, synthetic, arms, tmp_path):
    """Conditions from protocols (schedules as condition-set event values), observables,
    measurements (hours) and the parameter table (the table's units) pass petab's linter,
    and the files it writes read back."""
    import petab.v1 as petab

    data = pd.concat([synthetic, synthetic.head(3).assign(site="distant")], ignore_index=True)
    problem = mhpetab.to_petab(model, data, arms, estimate=list(TRUTH))
    mhpetab.lint(problem)
    assert set(problem.condition_df.index) == {"untreated", "mh_day5"}
    assert problem.measurement_df["time"].max() == pytest.approx(14 * 24)
    assert set(problem.observable_df.index) == {
        "obs_tumour_volume_treated",
        "obs_tumour_volume_distant",
    }
    estimated = problem.parameter_df.index[problem.parameter_df["estimate"] == 1]
    assert set(estimated) == {*TRUTH, mhpetab.NOISE_PARAMETER}
    # nominal values and bounds are the parameter table's (1/d, min), bounds bracket them
    pdf = problem.parameter_df
    assert (pdf["lowerBound"] <= pdf["nominalValue"] + 1e-12).all()
    assert (pdf["nominalValue"] <= pdf["upperBound"] + 1e-12).all()
    table = model.parameters()
    for name in ("tumour_growth_rate", "heat_d0_43"):
        assert pdf.loc[name, "nominalValue"] == pytest.approx(table.loc[name, "value"])
        assert pdf.loc[name, "lowerBound"] == pytest.approx(table.loc[name, "lower"])
        assert pdf.loc[name, "upperBound"] == pytest.approx(table.loc[name, "upper"])
        assert pdf.loc[name, "parameterName"] == f"{name} [{table.loc[name, 'unit']}]"
    # the SBML reads the internal value (1/h, h) through an assignment rule
    sbml = problem.model.sbml_model
    assert sbml.getParameter("tumour_growth_rate").getValue() == pytest.approx(0.4)
    assert sbml.getAssignmentRuleByVariable("tumour_growth_rate_internal") is not None
    yaml_path = mhpetab.write_petab(problem, tmp_path / "petab")
    again = petab.Problem.from_yaml(yaml_path)
    assert not petab.lint_problem(again)
    assert len(again.measurement_df) == len(data)


def test_petab_linter_failure_is_reported(model, synthetic, arms):
    problem = mhpetab.to_petab(model, synthetic, arms)
    problem.measurement_df.loc[0, "observableId"] = "obs_unknown"
    with pytest.raises(MhimmuneError, match="linter"):
        mhpetab.lint(problem)
