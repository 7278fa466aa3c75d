"""The command line: every command runs, errors exit 2 with one line and no traceback."""

import subprocess
import sys

import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.resources import resource_dir
from mhimmune.mh.simulation import select_variables

MH = str(resource_dir("protocols") / "mh.toml")


def test_check_prints_schedule_and_hf(capsys):
    assert main(["check", MH]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out and "3e+09" in out
    assert sum(line.strip().startswith("mh_session") for line in out.splitlines()) == 3
    assert "warning: " in err and "Brezovich" in err  # warnings go to stderr


def test_params_search(capsys):
    assert main(["params", "--search", "fenton"]) == 0
    out = capsys.readouterr().out
    assert "k_fenton" in out and "ea_fenton" in out and "tumour_growth_rate" not in out


def test_simulate_writes_results(tmp_path, capsys):
    assert (
        main(["simulate", MH, "--set", "ctl_kill_rate=0.3", "--out", str(tmp_path), "--plot"]) == 0
    )
    traj = pd.read_csv(tmp_path / "mh_trajectories.csv")
    assert list(traj.columns) == ["arm", "time_day", "variable", "value"]
    assert traj["time_day"].max() == pytest.approx(40.0)
    sessions = pd.read_csv(tmp_path / "mh_sessions.csv")
    assert len(sessions) == 3 and sessions["cem43_min"].gt(1).all()
    assert (tmp_path / "mh.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_simulate_with_params_file(tmp_path):
    over = tmp_path / "over.toml"
    over.write_text('ctl_kill_rate = 0.3\nk_fenton = "70 1/M/s"\n')
    assert main(["simulate", MH, "--params", str(over), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "mh_summary.csv").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", MH, "--set", "k_fenton=-1", "--out", "X"], "k_fenton"),
        (["simulate", MH, "--set", "nonsense=1", "--out", "X"], "nonsense"),
        (["simulate", "no_such_file.toml", "--out", "X"], "protocol file not found"),
        (["simulate", MH, "--set", "k_fenton", "--out", "X"], "expected name=value"),
        (["check", "no_such_file.toml"], "protocol file not found"),
    ],
)
def test_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    argv = [a if a != "X" else str(tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_bad_protocol_file_in_subprocess(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'duration = "10 d"\n[[mh_session]]\nstart = "1 d"\nduration = "-5 min"\nfield = "10 kA/m"\n'
        'frequency = "100 kHz"\nagent = "fe3o4_10nm"\ndose = "1 mg/cm^3"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mhimmune.cli", "check", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: mh_session[0].duration: must be > 0")
    assert "Traceback" not in proc.stderr


def test_demo_writes_summary_trajectories_and_figure(tmp_path):
    from mhimmune.cli import run_demo

    summary = run_demo(tmp_path)
    assert list(summary.columns) == ["untreated", "MH", "anti-PD-L1", "MH + anti-PD-L1"]
    assert summary.loc["peak_temperature_C", "untreated"] == pytest.approx(37.0)
    assert 42.0 < summary.loc["peak_temperature_C", "MH"] < 44.0
    traj = pd.read_csv(tmp_path / "demo_trajectories.csv")
    assert set(traj["arm"]) == set(summary.columns)
    model = mh.load_model()
    assert set(traj["variable"]) == set(select_variables(model))  # no internal species
    assert "temperature_C" in set(traj["variable"]) and "Theta" not in set(traj["variable"])
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_params_full_prints_whole_sources_and_the_references_they_cite(capsys):
    assert main(["params", "--search", "bso_ec50", "--full"]) == 0
    out = capsys.readouterr().out
    assert "skapek1988_xenograft_ip" in out  # the source is not truncated
    assert "[lee1987] Lee FYF, Allalunis-Turner MJ, Siemann DW (1987)." in out
    assert "doi:10.1038/bjc.1987.148" in out


def test_params_csv_has_every_parameter_and_full_references(capsys):
    import io

    assert main(["params", "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(table) == len(mh.ParameterTable.load().names)
    assert {"parameterId", "value", "unit", "source", "references"} <= set(table.columns)
    row = table.set_index("parameterId").loc["bso_ec50"]
    assert "doi:10.1038/bjc.1987.148" in row["references"]


def test_simulate_writes_derived_quantities_not_species_by_default(tmp_path):
    assert main(["simulate", MH, "--out", str(tmp_path)]) == 0
    names = set(pd.read_csv(tmp_path / "mh_trajectories.csv")["variable"])
    model = mh.load_model()
    assert names == set(select_variables(model))
    assert not names & set(model.species)
    assert {"temperature_C", "tumour_volume_treated", "cem43_min"} <= names


def test_simulate_variables_selects_the_trajectories(tmp_path):
    argv = ["simulate", MH, "--out", str(tmp_path), "--variables", "temperature_C, Theta"]
    assert main(argv) == 0
    traj = pd.read_csv(tmp_path / "mh_trajectories.csv")
    assert list(dict.fromkeys(traj["variable"])) == ["temperature_C", "Theta"]
    assert main([*argv[:4], "--variables", "all"]) == 0
    names = set(pd.read_csv(tmp_path / "mh_trajectories.csv")["variable"])
    assert "Theta" in names and "temperature_C" in names


@pytest.mark.parametrize("command", ["simulate", "demo"])
def test_unknown_variables_exit_2_with_close_matches(command, tmp_path, capsys):
    argv = [command, MH] if command == "simulate" else [command]
    argv += ["--out", str(tmp_path), "--variables", "temperature_c,tumour_volume_treated"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --variables")
    assert "temperature_c" in err[0] and "temperature_C" in err[0]
    assert "tumour_volume_treated:" not in err[0]  # a known name is not reported
    assert not list(tmp_path.iterdir())


def test_validate_without_quiet_follows_tqdm_disable(tmp_path, monkeypatch, capsys):
    """`mhimmune validate` without --quiet leaves the progress bar to TQDM_DISABLE (as the
    make targets set it): with TQDM_DISABLE=1 nothing of a bar reaches stderr, and the one
    target still runs and is written."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    code = main(["validate", "--out", str(tmp_path), "--only",
                 "immune_growth_kosinsky2018_ct26_growth_rate"])  # fmt: skip
    err = capsys.readouterr().err
    assert code in (0, None)
    assert "targets:" not in err
    assert (tmp_path / "report.md").exists()
