"""The ensemble tolerances are chosen by this test: readouts of ensemble runs stay within
1e-3 of their spread across the design of a tight-tolerance reference, and every run of a
Sobol sample of the schedule design integrates at them (a run that fails at them is
repeated at the fallback tolerances)."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.core.errors import SolverError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.simulation import simulate
from mhimmune.runs.ensemble import run_ensemble
from mhimmune.runs.evaluator import (
    ENSEMBLE_FALLBACK_TOLERANCES,
    ENSEMBLE_NEWTON_TOL,
    ENSEMBLE_TOLERANCES,
)
from mhimmune.studies import sensitivity as sa

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schedule_design():
    """16 rows of the 16-factor schedule Sobol design of analyses/sa/schedule.toml."""
    spec = sa.load_spec(ROOT / "analyses" / "sa" / "schedule.toml")
    problem = sa.define_problem(spec["factors"], table=mh.load_model(verbose=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = sa.sample(problem, "sobol", 64, seed=spec["seed"]).design.iloc[:16]
    return spec, design


def _scalars(spec, design, options):
    ev = ModelEvaluator(spec["protocol"], spec["readouts"], simulate_options=options)
    ev.setup(list(design.columns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        rows = [ev(r.to_dict()) for _, r in design.iterrows()]
    keys = [k for k in rows[0] if np.isscalar(rows[0][k])]
    return keys, np.array([[float(x[k]) for k in keys] for x in rows])


def test_ensemble_tolerances_keep_readouts_within_1e_3_of_their_spread(schedule_design):
    """Every scalar readout (volumes, CEM43, DAMP and CD8 AUCs, cure) of 16 schedule-design
    runs at the ensemble defaults (rtol 1e-4, atol 1e-6, Newton stopping at 0.1 of the
    local error tolerance) and at the fallback tolerances (rtol 1e-5, atol 1e-8, the
    simulator's Newton default 0.03) differs from a rtol 1e-9 / atol 1e-12 reference by at
    most 1e-3 of that readout's range over the design (measured 1.7e-4 and 2.9e-5)."""
    spec, design = schedule_design
    assert ENSEMBLE_TOLERANCES == {"rtol": 1e-4, "atol": 1e-6}
    assert ENSEMBLE_NEWTON_TOL == 0.1
    assert ENSEMBLE_FALLBACK_TOLERANCES == {"rtol": 1e-5, "atol": 1e-8}
    keys, ref = _scalars(spec, design, {"rtol": 1e-9, "atol": 1e-12})
    spread = ref.max(axis=0) - ref.min(axis=0)
    for options in ({}, ENSEMBLE_FALLBACK_TOLERANCES):
        _, fast = _scalars(spec, design, options)
        err = np.abs(fast - ref).max(axis=0) / np.where(spread > 0, spread, 1.0)
        worst = dict(zip(keys, err))
        assert max(worst.values()) <= 1e-3, (options, worst)
        assert np.all(np.isfinite(fast))


class _FailingAtEnsembleTolerances(ModelEvaluator):
    """An evaluator whose simulator fails every run at the ensemble tolerances."""

    @staticmethod
    def simulator(model, plan, overrides, **options):
        if options.get("rtol") == ENSEMBLE_TOLERANCES["rtol"]:
            raise SolverError("integration failed (test)")
        return simulate(model, plan, overrides, **options)


def test_a_run_failing_at_the_ensemble_tolerances_is_repeated_at_the_fallback(schedule_design):
    """A run whose integration fails at the ensemble defaults returns the readouts of the
    same run at the fallback tolerances (equal to 1e-12; the fallback keeps the simulator's
    Newton default); with tolerances of its own the evaluator has no fallback and the
    failure is raised."""
    spec, design = schedule_design
    row = design.iloc[0].to_dict()
    failing = _FailingAtEnsembleTolerances(spec["protocol"], spec["readouts"])
    assert failing.simulate_options == {**ENSEMBLE_TOLERANCES, "newton_tol": ENSEMBLE_NEWTON_TOL}
    assert failing.fallback_options == ENSEMBLE_FALLBACK_TOLERANCES
    plain = ModelEvaluator(
        spec["protocol"], spec["readouts"], simulate_options=ENSEMBLE_FALLBACK_TOLERANCES
    )
    assert plain.fallback_options is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        got, want = failing(row), plain(row)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)
        own = _FailingAtEnsembleTolerances(
            spec["protocol"], spec["readouts"], simulate_options=ENSEMBLE_TOLERANCES
        )
        assert own.fallback_options is None
        with pytest.raises(SolverError):
            own(row)


# 2,304 runs of the full model on 2 processes: ~30-60 s
@pytest.mark.slow
def test_every_run_of_the_schedule_sobol_sample_integrates_at_the_ensemble_tolerances():
    """All 2,304 runs of the N = 128 Sobol sample of the schedule design (ablative corners
    included) integrate at the ensemble defaults, the few that fail at them at the
    fallback tolerances: a Sobol analysis needs every run."""
    spec = sa.load_spec(ROOT / "analyses" / "sa" / "schedule.toml")
    problem = sa.define_problem(spec["factors"], table=mh.load_model(verbose=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = sa.sample(problem, "sobol", 128, seed=spec["seed"]).design
    ev = ModelEvaluator(spec["protocol"], spec["readouts"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        res = run_ensemble(ev, design, n_jobs=2, progress=False, warn=False)
    assert len(design) == 2304
    assert res.n_failed == 0, res.failures.head()
