"""Joint feasibility of validation targets: Latin-hypercube draws of table parameters, each
target's verdict per draw, pairs, correlations, the saved report, and refusals."""

import math

import numpy as np
import pandas as pd
import pytest

from mhimmune.cli import main
from mhimmune.core.errors import ParameterError
from mhimmune.studies.validation import load_targets, target_passes
from mhimmune.studies.validation_feasibility import (
    load_feasibility_spec,
    run_feasibility,
    run_feasibility_spec,
)

CD8_LIVE = "immune_growth_voronova2021_mc38_cd8_pct_live"
CD45_FALLS = "immune_growth_zhang2021_mc38_cd45_share_falls"
CD8_FALLS = "immune_growth_zhang2021_mc38_cd8_share_falls"
PARAMS = ["cd8_trafficking", "cd8_effector_death"]


@pytest.fixture(scope="module")
def small():
    return run_feasibility([CD8_LIVE, CD45_FALLS, CD8_FALLS], PARAMS, samples=4, seed=3)


def test_draws_lie_in_the_table_bounds_and_cover_each_stratum(small):
    """Four Latin-hypercube draws of two log-uniform parameters stay inside the table
    bounds (0.02-0.15 and 0.01-0.05 /h), one draw per quarter of each log range."""
    d = small.design
    assert list(d.columns) == PARAMS and len(d) == 4
    for name, lo, hi in (("cd8_trafficking", 0.02, 0.15), ("cd8_effector_death", 0.01, 0.05)):
        u = np.log(d[name] / lo) / np.log(hi / lo)
        assert ((u > 0) & (u < 1)).all()
        assert sorted(np.floor(4 * u).astype(int)) == [0, 1, 2, 3]


def test_verdicts_and_pairs_follow_the_values(small):
    """Each verdict is the validation suite's for that value; the pair table's diagonal
    counts each target's passes and is symmetric; the shipped model's values are the
    validation report's (CD8 0.552 % of live cells, CD45+ share change 0.429, CD8 share
    change 19.1) and the CD45+ row passes for every draw while the CD8-share row never
    does (its rise is structural for these two parameters)."""
    targets = load_targets().set_index("id")
    for t in small.values.columns:
        row = targets.loc[t, ["value", "low", "high"]].astype(float)
        expect = [target_passes(v, row) for v in small.values[t]]
        assert list(small.passed[t]) == expect
    pair = small.pairwise()
    assert (np.diag(pair) == small.passed.sum().values).all()
    assert (pair.values == pair.values.T).all()
    assert small.default[CD8_LIVE] == pytest.approx(0.552, abs=0.002)
    assert small.default[CD45_FALLS] == pytest.approx(0.429, abs=0.005)
    assert small.default[CD8_FALLS] == pytest.approx(19.07, rel=0.01)
    assert small.passed[CD45_FALLS].all() and not small.passed[CD8_FALLS].any()
    rates = small.pass_rates()
    assert rates.loc[CD45_FALLS, "pass_fraction"] == 1.0
    assert list(rates["default_passes"]) == [False, True, False]


def test_more_trafficking_gives_a_larger_infiltrate(small):
    """Across the draws, the CD8 share of live cells rises with the trafficking rate more
    than with the effector death rate (which lowers it); best() orders by passes."""
    rho = small.spearman()
    assert rho.shape == (2, 3)
    assert rho.loc["cd8_effector_death", CD8_LIVE] < rho.loc["cd8_trafficking", CD8_LIVE]
    best = small.best(2)
    assert list(best["passed"]) == sorted(best["passed"], reverse=True)
    assert int(best["passed"].iloc[0]) == int(small.counts().max())


def test_report_and_table_are_written(small, tmp_path):
    paths = small.save(tmp_path)
    assert [p.name for p in paths] == ["feasibility.md", "feasibility.csv", "feasibility.png"]
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths[0].read_text()
    assert "Most targets passed by one draw: **" in text and f"`{CD8_FALLS}`" in text
    table = pd.read_csv(paths[1], index_col="draw")
    assert len(table) == 4 and f"{CD8_LIVE} passes" in table.columns


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(targets=["no_such_row"]), r"targets: unknown target ids \['no_such_row'\]"),
        (dict(targets=["checkpoint_alone_curran2010_b16_antictla4_fvax"]), "is not simulated"),
        (dict(targets=[]), "targets: give at least one"),
        (dict(parameters=["cd8_priming"]), r"\['cd8_priming'\] are set per tumour or host"),
        (dict(parameters=["no_such_parameter"]), "no_such_parameter"),
        (dict(samples=1), "samples: 1 must be an integer of at least 2"),
        (dict(processes=0), "processes: 0 must be an integer of at least 1"),
        (
            dict(confirm=[CD8_LIVE]),
            r"confirm: \['immune_growth_voronova2021_mc38_cd8_pct_live'\] are",
        ),
        (dict(confirm=[CD8_FALLS], confirm_draws=0), "confirm_draws: 0 must be an integer"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, message):
    args = dict(targets=[CD8_LIVE], parameters=PARAMS, samples=2) | kwargs
    with pytest.raises(ParameterError, match=message):
        run_feasibility(**args)


def test_spec_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "f.toml"
    bad.write_text('targets = []\nparameters = ["ctl_kill_rate"]\n')
    with pytest.raises(ParameterError, match="f.toml: targets must be a non-empty list"):
        load_feasibility_spec(bad)
    bad.write_text(f'targets = ["{CD8_LIVE}"]\nparameters = ["ctl_kill_rate"]\ndraws = 3\n')
    with pytest.raises(ParameterError, match=r"f.toml: unknown keys \['draws'\]"):
        load_feasibility_spec(bad)
    with pytest.raises(ParameterError, match="feasibility: no such file"):
        load_feasibility_spec(tmp_path / "missing.toml")


def test_shipped_spec_names_simulated_targets_and_free_parameters():
    """The shipped spec's eight T-cell targets are simulated rows and none of its 13
    parameters is set by a preset (run_feasibility would refuse it)."""
    spec = load_feasibility_spec()
    assert len(spec["targets"]) == 8 and len(spec["parameters"]) == 13
    rows = load_targets().set_index("id").loc[spec["targets"]]
    assert not rows["experiment"].str.startswith("none:").any()


def test_cli_writes_the_report_of_a_spec(tmp_path, monkeypatch, capsys):
    """`mhimmune validate --feasibility SPEC` writes both files and prints the pass table;
    with CI=true a spec runs 8 draws in one process whatever it asks for."""
    spec = tmp_path / "f.toml"
    spec.write_text(
        f'targets = ["{CD45_FALLS}"]\nparameters = ["cd8_trafficking"]\nsamples = 500\n'
        "processes = 2\nseed = 5\n"
    )
    monkeypatch.setenv("CI", "true")
    assert len(run_feasibility_spec(spec, progress=False).design) == 8
    out = tmp_path / "out"
    assert main(["validate", "--feasibility", str(spec), "--out", str(out), "--quiet"]) == 0
    assert (out / "feasibility.md").is_file() and (out / "feasibility.csv").is_file()
    printed = capsys.readouterr().out
    assert "most targets one draw passes: 1 of 1" in printed
    assert not math.isnan(pd.read_csv(out / "feasibility.csv")[CD45_FALLS].iloc[0])


def test_worker_processes_give_the_same_draws_and_values():
    """The same seed gives the same draws, values and shipped-model values whether the
    draws are simulated in this process or in two workers (chunks of 8 rows)."""
    args = dict(targets=[CD45_FALLS], parameters=PARAMS, samples=10, seed=7, progress=False)
    one = run_feasibility(processes=1, **args)
    two = run_feasibility(processes=2, **args)
    pd.testing.assert_frame_equal(one.design, two.design)
    pd.testing.assert_frame_equal(one.values, two.values)
    assert two.default[CD45_FALLS] == pytest.approx(one.default[CD45_FALLS], rel=1e-12)


def test_confirm_targets_run_on_the_best_draws_only(small, tmp_path):
    """A confirm target is simulated for the best draws (ranked by the other targets) and
    the shipped parameters, with the values the same draws give as an ordinary target; the
    report lists them and the table leaves the other draws empty."""
    res = run_feasibility([CD45_FALLS, CD8_FALLS], PARAMS, samples=4, seed=3,
                          confirm=[CD8_LIVE], confirm_draws=2)  # fmt: skip
    c = res.confirmed
    assert list(c.index) == [*res.ranked()[:2], "shipped"]
    for draw in c.index[:2]:
        assert c.loc[draw, CD8_LIVE] == pytest.approx(small.values.loc[draw, CD8_LIVE], rel=1e-12)
    assert c.loc["shipped", CD8_LIVE] == pytest.approx(0.552, abs=0.002)
    assert not res.confirmed_passed()[CD8_LIVE].loc["shipped"]
    text = res.to_markdown()
    assert "## Costly targets on the best draws" in text and "| shipped | 1 of 2 |" in text
    res.save(tmp_path)
    table = pd.read_csv(tmp_path / "feasibility.csv", index_col="draw")
    assert table[CD8_LIVE].notna().sum() == 2
