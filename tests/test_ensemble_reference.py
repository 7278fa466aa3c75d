"""Ensemble outputs of the schedule design stay what they were: readouts and trajectories of
eight rows of the 16-factor Sobol design of analyses/sa/schedule.toml, computed by the
ensemble evaluator, match values stored in tests/data/schedule_design_readouts.json to
1e-12 relative, and match the plain single-run path (``mh.simulate`` and its tables).

The stored values belong to the model files and parameter tables they were computed
with (``source`` in the file, :func:`mhimmune.runs.evaluator.source_fingerprint`); after a
model or parameter change regenerate them with ``python tests/test_ensemble_reference.py``.
Engine changes (speed work) must leave them unchanged.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.runs.ensemble import run_ensemble
from mhimmune.runs.evaluator import source_fingerprint
from mhimmune.studies import sensitivity as sa

ROOT = Path(__file__).resolve().parents[1]
STORED = Path(__file__).resolve().parent / "data" / "schedule_design_readouts.json"
ROWS = (0, 1, 2, 3, 17, 40, 101, 250)
RTOL = 1e-12
#: the tolerances the stored values were computed at (the single-run defaults), fixed here
#: so that a change of the ensemble defaults does not invalidate them
OPTIONS = {"rtol": 1e-6, "atol": 1e-9}


def _design_and_evaluator():
    spec = sa.load_spec(ROOT / "analyses" / "sa" / "schedule.toml")
    problem = sa.define_problem(spec["factors"], table=mh.load_model(verbose=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = sa.sample(problem, "sobol", 64, seed=spec["seed"]).design
    ev = ModelEvaluator(
        spec["protocol"],
        spec["readouts"],
        trajectories=spec["trajectories"],
        time_grid_day=spec["time_grid_day"],
        simulate_options=OPTIONS,
    )
    return spec, design.iloc[list(ROWS)].reset_index(drop=True), ev


@pytest.fixture(scope="module")
def stored():
    data = json.loads(STORED.read_text())
    if data["source"] != source_fingerprint():
        pytest.skip(
            "model files or parameter tables changed since the reference values were stored; "
            "regenerate them: python tests/test_ensemble_reference.py"
        )
    return data


@pytest.fixture(scope="module")
def computed():
    spec, design, ev = _design_and_evaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        res = run_ensemble(ev, design, progress=False, warn=False)
    return spec, design, ev, res


def test_design_rows_match_stored_readouts_to_1e_12(stored, computed):
    """Every scalar readout and trajectory point of the eight design rows (at rtol 1e-6,
    atol 1e-9) equals the stored value within 1e-12 relative (1e-300 absolute for zeros)."""
    _spec, design, _ev, res = computed
    assert res.n_failed == 0
    for k, run in enumerate(stored["runs"]):
        assert run["factors"] == pytest.approx(design.iloc[k].to_dict(), rel=0, abs=0)
        for name, value in run["outputs"].items():
            if isinstance(value, list):
                got = res.trajectory_arrays[name][k]
            else:
                got = res.results[name].iloc[k]
            np.testing.assert_allclose(got, value, rtol=RTOL, atol=1e-300, err_msg=name)


def test_evaluator_matches_the_single_run_path(computed):
    """The evaluator's readouts equal those computed from ``mh.simulate`` with the row's
    protocol and parameters, through its wide table (1e-12 relative)."""
    spec, design, ev, res = computed
    model = mh.load_model(verbose=False)
    factors = set(ev.protocol.factor_names)
    for k in (0, 4):
        row = design.iloc[k].to_dict()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HfWarning)
            plan = ev.protocol.build({n: v for n, v in row.items() if n in factors})
        params = {n: v for n, v in row.items() if n not in factors}
        sim = mh.simulate(model, plan, params, **OPTIONS)
        w = sim.wide
        t = w.index.to_numpy()
        np.testing.assert_allclose(
            res.results["final_volume_treated_mm3"].iloc[k],
            sim.summary()["final_volume_treated_mm3"],
            rtol=RTOL,
        )
        np.testing.assert_allclose(
            res.results["auc_damp_signal_mm3_day"].iloc[k],
            np.trapezoid(w["damp_signal"].to_numpy(), t),
            rtol=RTOL,
        )
        np.testing.assert_allclose(
            res.trajectory_arrays["tumour_volume_treated"][k],
            np.interp(spec["time_grid_day"], t, w["tumour_volume_treated"].to_numpy()),
            rtol=RTOL,
        )


def _regenerate() -> None:
    _spec, design, ev = _design_and_evaluator()
    ev.setup(list(design.columns))
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        for k, i in enumerate(ROWS):
            x = {n: float(v) for n, v in design.iloc[k].items()}
            out = ev(x)
            runs.append(
                {
                    "row": i,
                    "factors": x,
                    "outputs": {
                        n: v.tolist() if isinstance(v, np.ndarray) else float(v)
                        for n, v in out.items()
                    },
                }
            )
    data = {
        "source": source_fingerprint(),
        "design": "analyses/sa/schedule.toml, sobol N=64, seed of the spec",
        "runs": runs,
    }
    STORED.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {STORED}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate()
