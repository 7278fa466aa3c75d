"""Variants (named parameter sets) from the API, the command line and study specs;
the H·f warning is shown once per protocol per process, on stderr in the command line."""

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.errors import ParameterError
from mhimmune.core.resources import resource_dir
from mhimmune.core.variants import read_variants, shipped_file
from mhimmune.mh.field_safety import HfWarning
from mhimmune.studies.hypothesis_spec import load_hypothesis_spec
from mhimmune.studies.sa_specs import load_spec

ROOT = Path(__file__).resolve().parents[1]
MH = str(resource_dir("protocols") / "mh.toml")
SHIPPED = ("well_spread_particles", "poor_delivery", "lysosomal_field_effect")

USER = """
[variants.hot_spot]
description = "a user's set"
source = "assumed: for the test"
particle_load_sigma = 0.8
region_exchange_length = "2 mm"
"""


def _file(tmp_path, text, name="v.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


# ----------------------------------------------------------------------------- API


def test_shipped_variants_are_listed_documented_and_valid():
    table = mh.variants()
    assert list(table.index) == list(SHIPPED)
    assert list(table.columns) == ["description", "source", "overrides"]
    assert shipped_file().name == "variants.toml"
    for v in read_variants().values():
        assert v.description and v.source  # every shipped value says where it comes from
        v.overrides(mh.ParameterTable.load())  # names and units check
    assert table.at["well_spread_particles", "source"].startswith("assumed:")
    assert "herea2018" in table.at["lysosomal_field_effect", "source"]


def test_variant_returns_checked_overrides_in_table_units():
    assert mh.variant("well_spread_particles") == {
        "particle_load_sigma": 0.25,
        "region_exchange_length": 0.5,  # "0.5 mm", table unit mm
    }
    assert mh.variant("poor_delivery") == {"particle_load_sigma": 1.0}
    assert mh.variant("lysosomal_field_effect") == {"lysosomal_field_ros": 8.36e-9}


def test_variant_combines_with_further_overrides_later_wins():
    over = mh.variant("well_spread_particles", {"particle_load_sigma": 0.4, "ctl_kill_rate": 0.3})
    assert over == {"particle_load_sigma": 0.4, "region_exchange_length": 0.5, "ctl_kill_rate": 0.3}
    merged = {**mh.variant("poor_delivery"), "particle_load_sigma": "0.3"}
    assert merged["particle_load_sigma"] == "0.3"


def test_user_file_and_load_variant(tmp_path):
    f = _file(tmp_path, USER)
    assert mh.load_variant(f, "hot_spot") == {
        "particle_load_sigma": 0.8,
        "region_exchange_length": 2.0,
    }
    assert mh.variant("hot_spot", file=f) == mh.load_variant(f, "hot_spot")
    assert list(mh.variants(f).index) == ["hot_spot"]


@pytest.mark.parametrize(
    "body, match",
    [
        ("particle_load_sigmaa = 0.3", r"'bad'.*particle_load_sigmaa: unknown parameter; did you"),
        ('region_exchange_length = "2 kg"', r"'bad'.*region_exchange_length.*dimension"),
        ("particle_load_sigma = -0.3", r"'bad'.*particle_load_sigma.*override"),
        ("particle_load_sigma = true", r"'bad'.*particle_load_sigma: a value is a number"),
        ("particle_load_sigma = [1, 2]", r"'bad'.*particle_load_sigma: a value is a number"),
    ],
)
def test_bad_variant_values_raise_naming_variant_and_field(tmp_path, body, match):
    f = _file(tmp_path, f'[variants.bad]\ndescription = "x"\n{body}\n')
    with pytest.raises(ParameterError, match=match):
        mh.load_variant(f, "bad")


@pytest.mark.parametrize(
    "text, match",
    [
        ("[variants.a]\nparticle_load_sigma = 0.3\n", "description: give a non-empty string"),
        ('[variants.a]\ndescription = "x"\nsource = 3\n', "source: must be a string"),
        ('name = "x"\n', r"\[variants.NAME\] tables only"),
        ("[variants\n", "invalid TOML"),
        ("[variants]\na = 1\n", "must be a table"),
    ],
)
def test_bad_variant_files_raise(tmp_path, text, match):
    with pytest.raises(ParameterError, match=match):
        read_variants(_file(tmp_path, text))


def test_unknown_variant_suggests_close_matches(tmp_path):
    with pytest.raises(ParameterError, match=r"'poor_delivry'.*did you mean poor_delivery\?"):
        mh.variant("poor_delivry")
    with pytest.raises(ParameterError, match="no such file"):
        mh.load_variant(tmp_path / "missing.toml", "x")


def test_simulate_takes_a_variant(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        plan = mh.Protocol.from_toml(MH)
    base = mh.simulate(model, plan, output_step="1 d")
    poor = mh.simulate(model, plan, mh.variant("poor_delivery"), output_step="1 d")
    both = mh.simulate(
        model, plan, {**mh.variant("poor_delivery"), "particle_load_sigma": 0.5}, output_step="1 d"
    )
    assert poor.sessions()["cem43_min"].tolist() != base.sessions()["cem43_min"].tolist()
    assert both.sessions()["cem43_min"].tolist() == base.sessions()["cem43_min"].tolist()


# ----------------------------------------------------------------------------- CLI


def test_cli_lists_variants(tmp_path, capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert all(f"{n}:" in out for n in SHIPPED) and "region_exchange_length = 0.5 mm" in out
    assert main(["variants", "--file", str(_file(tmp_path, USER))]) == 0
    out = capsys.readouterr().out
    assert "hot_spot: a user's set" in out and "poor_delivery" not in out


def test_cli_simulate_with_a_variant(tmp_path, capsys):
    f = _file(tmp_path, USER)
    args = ["simulate", MH, "--variant", "hot_spot", "--variants", str(f)]
    assert main([*args, "--out", str(tmp_path / "a"), "--variables", "tumour_volume_treated"]) == 0
    nominal = ["--set", "particle_load_sigma=0.5", "--set", "region_exchange_length=1.5 mm"]
    assert (
        main([*args, *nominal, "--out", str(tmp_path / "b"), "--variables", "viable_treated"]) == 0
    )
    a, b = (pd.read_csv(tmp_path / d / "mh_sessions.csv") for d in "ab")
    assert a["cem43_min"].tolist() != b["cem43_min"].tolist()  # --set wins over --variant
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--variant", "poor_delivry"], "did you mean poor_delivery?"),
        (["--variant", "bad", "--variants", "{f}"], "particle_load_sigmaa: unknown parameter"),
        (["--variant", "unit", "--variants", "{f}"], "dimension"),
        (["--variants", "{f}"], "--variants: give --variant NAME too"),
        (["--variant", "x", "--variants", "{d}/missing.toml"], "no such file"),
    ],
)
def test_cli_bad_variants_exit_2_with_one_line(tmp_path, capsys, args, needle):
    f = _file(
        tmp_path,
        '[variants.bad]\ndescription = "x"\nparticle_load_sigmaa = 1\n'
        '[variants.unit]\ndescription = "x"\nregion_exchange_length = "1 s"\n',
    )
    args = [a.format(f=f, d=tmp_path) for a in args]
    assert main(["simulate", MH, *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert main(["variants", "--file", str(tmp_path / "missing.toml")]) == 2


# ----------------------------------------------------------------------------- specs


SA_SPEC = """
variant = "{variant}"
{extra}
protocol = "{protocol}"
n = 2
[factors]
ctl_kill_rate = "table"
[params]
particle_load_sigma = 0.3
"""


def test_sensitivity_spec_applies_a_variant_under_its_params(tmp_path):
    spec = _file(
        tmp_path, SA_SPEC.format(variant="well_spread_particles", extra="", protocol=MH), "sa.toml"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        kw = load_spec(spec)
    assert kw["params"] == {"particle_load_sigma": 0.3, "region_exchange_length": 0.5}
    _file(tmp_path, USER, "mine.toml")
    spec.write_text(SA_SPEC.format(variant="hot_spot", extra='variants = "mine.toml"', protocol=MH))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        assert load_spec(spec)["params"]["region_exchange_length"] == 2.0
    spec.write_text(SA_SPEC.format(variant="nope", extra="", protocol=MH))
    with pytest.raises(ParameterError, match="'nope'"):
        load_spec(spec)


def test_hypothesis_spec_applies_a_variant(tmp_path):
    spec = load_hypothesis_spec({"variant": "lysosomal_field_effect", "params": {"x": 1}})
    assert spec["params"] == {"lysosomal_field_ros": 8.36e-9, "x": 1}
    assert "variant" not in spec
    assert "variant" not in load_hypothesis_spec({"params": {"x": 1}})
    _file(tmp_path, USER, "mine.toml")
    path = _file(tmp_path, 'variant = "hot_spot"\nvariants = "mine.toml"\n', "hyp.toml")
    assert load_hypothesis_spec(path)["params"]["particle_load_sigma"] == 0.8
    with pytest.raises(ParameterError, match="needs variant"):
        load_hypothesis_spec({"variants": "mine.toml"})
    with pytest.raises(ParameterError, match="did you mean poor_delivery"):
        load_hypothesis_spec({"variant": "poor_deliver"})


def test_shipped_spec_runs_with_a_variant_key():
    text = (resource_dir("specs") / "mh_pdl1.toml").read_text()
    spec = load_hypothesis_spec({**__import__("tomllib").loads(text), "variant": "poor_delivery"})
    assert spec["params"]["particle_load_sigma"] == 1.0


# ----------------------------------------------------------------------------- H·f once


ONCE = """
import warnings
import mhimmune as mh
p = {mh!r}
for _ in range(3):
    mh.Protocol.from_toml(p)
mh.Protocol.from_toml(p)
other = mh.Protocol.from_toml(p).mh_session(
    start="20 d", duration="30 min", field="15 kA/m", frequency="200 kHz",
    agent="fe3o4_19nm_mpeg", dose="3.5 mg/cm^3")
with warnings.catch_warnings(record=True) as rec:
    warnings.simplefilter("always")
    mh.Protocol.from_toml(p)
print(len(rec))
"""


def _run(*args):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_hf_warning_is_shown_once_per_protocol_per_process():
    proc = _run("-c", ONCE.format(mh=MH))
    assert proc.returncode == 0, proc.stderr
    shown = [line for line in proc.stderr.splitlines() if "HfWarning" in line]
    assert len(shown) == 2  # the three-session plan once, the four-session plan once
    assert "mh_session[0] (3 sessions" in shown[0] and "mh_session[1]" in shown[1]
    assert proc.stdout.strip() == "1"  # recording still sees it


def test_cli_check_prints_the_hf_warning_once_on_stderr():
    proc = _run("-m", "mhimmune.cli", "check", MH)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stdout
    assert proc.stderr.count("Brezovich") == 1 and proc.stderr.startswith("warning: ")
