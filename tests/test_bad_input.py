"""Bad input: the command line answers with one line on stderr and exit status 2, the API
with a :class:`~mhimmune.core.errors.MhimmuneError` naming the field and its allowed range;
nothing is clipped or accepted silently."""

from pathlib import Path

import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core import model as model_module
from mhimmune.core.errors import MhimmuneError, ModelError, ParameterError, ProtocolError
from mhimmune.core.io import read_overrides
from mhimmune.core.params import OutOfRangeWarning, ParameterTable
from mhimmune.core.resources import resource_dir
from mhimmune.studies import sensitivity as sa
from mhimmune.studies.sa_problem import define_problem
from mhimmune.studies.sa_sampling import sample
from mhimmune.studies.sa_specs import load_spec

PROTOCOLS = resource_dir("protocols")
P = str(PROTOCOLS / "anti_pdl1.toml")
SPEC_HEAD = """name = "bad"
method = "sobol"
n = 8

[template]
duration = "20 d"
agent = "fe3o4_19nm_mpeg"
field = "15 kA/m"
frequency = "200 kHz"
"""


def _drug(kind: str, dose: str, extra: str = "") -> str:
    return f'duration = "20 d"\n\n[[{kind}]]\ntime = "7 d"\ndose = "{dose}"\n{extra}'


def _spec(factors: str, head: str = SPEC_HEAD) -> str:
    return f"{head}\n[factors]\n{factors}\n"


#: files written into the test's folder: name -> text (bytes for non-UTF-8 files)
FILES: dict[str, str | bytes] = {
    "afile": "",
    "latin.toml": b'duration = "40 d"\n# \xff\xfe not UTF-8\n',
    "long.toml": 'duration = "1000 year"\n',
    "zero.toml": 'duration = "0 d"\n',
    "late.toml": 'duration = "20 d"\n\n[[anti_pdl1]]\ntime = "10 year"\ndose = "10 mg/kg"\n',
    "pdl1.toml": _drug("anti_pdl1", "1e6 mg/kg"),
    "bso.toml": _drug("bso", "1e5 mg/kg"),
    "cdt.toml": _drug("cdt", "1e4 mg/kg"),
    "hsp.toml": _drug("hsp_inhibitor", "1e4 mg/kg"),
    "gox.toml": _drug("glucose_oxidase", "1e4 mg/kg"),
    "cd8.toml": _drug("cd8_depletion", "1e4 mg/kg"),
    "every.toml": _drug("anti_pdl1", "10 mg/kg", 'every = "100 year"\ncount = 2\n'),
    "p.yaml": "ctl_kill_rate: 0.3\n",
    "spec.toml": _spec("field_kA_per_m = [8, 18]"),
    "many.toml": _spec("field_kA_per_m = [8, 18]", SPEC_HEAD.replace("n = 8", 'n = "many"')),
    "half.toml": _spec("field_kA_per_m = [8, 18]", SPEC_HEAD.replace("n = 8", "n = 8.5")),
    "field.toml": _spec("field_kA_per_m = [5, 500]"),
    "dose.toml": _spec("pdl1_dose_mg_per_kg = [1, 1e6]"),
    "freq.toml": _spec("frequency_kHz = [0.1, 300]"),
    "tumour.toml": _spec("tumour_initial_treated = [-1, 60]"),
    "latin_spec.toml": b"n = 8\n# \xff\n",
    "hyp.toml": '[template]\nduration = "20 d"\n',
}

#: (argv, key phrase of the one-line message); {d} is the test's folder
CLI_CASES = [
    (["simulate", P, "--out", "{d}/afile"], "afile is an existing file"),
    (["simulate", P, "--out", "{d}/afile/sub"], "afile is a file"),
    (["demo", "--out", "{d}/afile"], "afile is an existing file"),
    (["demo", "--out", "{d}/afile/sub/deeper"], "afile is a file"),
    (["sensitivity", "{d}/spec.toml", "--out", "{d}/afile"], "is an existing file"),
    (["hypotheses", "{d}/hyp.toml", "--out", "{d}/afile"], "is an existing file"),
    (["validate", "--out", "{d}/afile"], "is an existing file"),
    (["export", "sbml", "--out", "{d}"], "is a folder; give a file name"),
    (["export", "bngl", "--out", "{d}/afile/model.bngl"], "afile is a file"),
    (["export", "sbml", "--params", "{d}/p.yaml", "--out", "{d}/m.xml"], "unknown file type"),
    (["check", "{d}/latin.toml"], "not UTF-8"),
    (["simulate", "{d}/latin.toml", "--out", "{d}/o"], "not UTF-8"),
    (["check", "{d}"], "is a folder; give a protocol file"),
    (["simulate", "{d}", "--out", "{d}/o"], "is a folder; give a protocol file"),
    (["check", "{d}/missing.toml"], "not found"),
    (["check", "{d}/long.toml"], "duration: must be > 0 h and ≤ 43830 h (5 years)"),
    (["simulate", "{d}/long.toml", "--out", "{d}/o"], "(5 years)"),
    (["check", "{d}/zero.toml"], "duration: must be > 0 h"),
    (["check", "{d}/late.toml"], "anti_pdl1[0].time: must be ≥ 0 h and ≤ 43830 h"),
    (["check", "{d}/every.toml"], "anti_pdl1[0].every: must be ≥ 0 h and ≤ 43830 h"),
    (["check", "{d}/pdl1.toml"], "anti_pdl1[0].dose: must be > 0 mg/kg and ≤ 50 mg/kg"),
    (["check", "{d}/bso.toml"], "bso[0].dose: must be > 0 mg/kg and ≤ 2000 mg/kg"),
    (["check", "{d}/cdt.toml"], "cdt[0].dose: must be > 0 mg/kg and ≤ 100 mg/kg"),
    (["check", "{d}/hsp.toml"], "hsp_inhibitor[0].dose: must be > 0 mg/kg and ≤ 200 mg/kg"),
    (["check", "{d}/gox.toml"], "glucose_oxidase[0].dose: must be > 0 mg/kg and ≤ 100"),
    (["check", "{d}/cd8.toml"], "cd8_depletion[0].dose: must be > 0 mg/kg and ≤ 50 mg/kg"),
    (
        ["simulate", P, "--out", "{d}/o", "--strict", "--set", "ctl_kill_rate=1e9"],
        "ctl_kill_rate: override 1e+09 mm^3/Mcell/h is outside the table range [0.15, 1.5]",
    ),
    (
        ["simulate", P, "--out", "{d}/o", "--strict", "--set", "tumour_initial_treated=0"],
        "tumour_initial_treated: override 0 mm^3 is outside the table range [15, 60]",
    ),
    (
        ["simulate", P, "--out", "{d}/o", "--set", "ctl_kill_rate=-1"],
        "ctl_kill_rate",
    ),
    (["simulate", P, "--out", "{d}/o", "--set", "ctl_kill_rate=fast"], "ctl_kill_rate"),
    (["simulate", P, "--out", "{d}/o", "--params", "{d}/p.yaml"], "unknown file type '.yaml'"),
    (["simulate", P, "--out", "{d}/o", "--params", "{d}/none.toml"], "--params: no such file"),
    (["sensitivity", "{d}/many.toml", "--out", "{d}/o"], "n must be an integer ≥ 1 (got 'many')"),
    (["sensitivity", "{d}/half.toml", "--out", "{d}/o"], "n must be an integer ≥ 1 (got 8.5)"),
    (["sensitivity", "{d}/latin_spec.toml", "--out", "{d}/o"], "not UTF-8"),
    (["sensitivity", "{d}/spec.toml", "--out", "{d}/o", "--jobs", "0"], "--jobs: must be"),
    (["sensitivity", "{d}/spec.toml", "--out", "{d}/o", "--jobs", "-1"], "(got -1)"),
    (["hypotheses", "{d}/hyp.toml", "--out", "{d}/o", "--jobs", "0"], "--jobs: must be"),
    (
        ["sensitivity", "{d}/field.toml", "--out", "{d}/o"],
        "factor field_kA_per_m: upper bound 500 is outside the allowed range",
    ),
    (["sensitivity", "{d}/dose.toml", "--out", "{d}/o"], "≤ 50 mg/kg"),
    (["sensitivity", "{d}/freq.toml", "--out", "{d}/o"], "factor frequency_kHz: lower bound"),
    (["sensitivity", "{d}/tumour.toml", "--out", "{d}/o"], "factor tumour_initial_treated: lower"),
]


@pytest.fixture
def folder(tmp_path) -> Path:
    for name, text in FILES.items():
        target = tmp_path / name
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module", autouse=True)
def compiled_model():
    """Compile (or load) the full model quietly first: on an empty cache the CLI's first
    load would print its one-time compile notice, which is not part of the error."""
    return mh.load_model(verbose=False)


def _run(argv, capsys) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.splitlines()


@pytest.mark.parametrize(("argv", "phrase"), CLI_CASES, ids=lambda v: " ".join(v)[:60])
def test_cli_bad_input(argv, phrase, folder, capsys):
    code, err = _run([a.format(d=folder) for a in argv], capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert phrase in err[0]


def test_cli_unreachable_dask_fails_fast(folder, capsys):
    import time

    t0 = time.perf_counter()
    argv = ["sensitivity", f"{folder}/spec.toml", "--out", f"{folder}/o"]
    code, err = _run(argv + ["--dask", "tcp://127.0.0.1:1"], capsys)
    assert code == 2 and len(err) == 1
    assert "cannot connect within 5 s" in err[0]
    assert time.perf_counter() - t0 < 20


def test_cli_checks_out_before_building(folder, capsys, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("model loaded before --out was checked")

    monkeypatch.setattr(model_module, "build", boom)
    code, err = _run(["export", "sbml", "--out", str(folder)], capsys)
    assert code == 2 and "is a folder" in err[0]


# ------------------------------------------------------------------------------ API

PLAN = mh.Protocol("1 d")
TEMPLATE_KW = dict(agent="fe3o4_19nm_mpeg", field="15 kA/m", frequency="200 kHz")


def _template():
    from mhimmune.mh.template import ScheduleTemplate

    return ScheduleTemplate("20 d", **TEMPLATE_KW)


#: (callable of the model and the test's folder, error type, key phrase)
API_CASES = [
    (lambda m, d: mh.simulate("model", PLAN), ProtocolError, "model: expected a model"),
    (lambda m, d: mh.simulate(m, "plan"), ProtocolError, "protocol: expected"),
    (lambda m, d: mh.simulate(m, PLAN, [1.0]), ParameterError, "params: expected a mapping"),
    (lambda m, d: mh.simulate(m, PLAN, strict="yes"), ParameterError, "strict: must be"),
    (
        lambda m, d: mh.simulate(m, PLAN, {"ctl_kill_rate": 1e9}, strict=True),
        ParameterError,
        "outside the table range [0.15, 1.5]",
    ),
    (
        lambda m, d: mh.simulate(m, PLAN, {"tumour_initial_treated": 0}, strict=True),
        ParameterError,
        "outside the table range [15, 60]",
    ),
    (lambda m, d: mh.Protocol("1000 year"), ProtocolError, "(5 years)"),
    (lambda m, d: PLAN.with_duration("6 year"), ProtocolError, "(5 years)"),
    (
        lambda m, d: mh.Protocol("40 d").anti_pdl1(time="7 d", dose="1e6 mg/kg"),
        ProtocolError,
        "anti_pdl1[0].dose: must be > 0 mg/kg and ≤ 50 mg/kg",
    ),
    (
        lambda m, d: mh.Protocol("40 d").bso(time="7 d", dose="3 g/kg"),
        ProtocolError,
        "≤ 2000 mg/kg",
    ),
    (lambda m, d: mh.Protocol.from_toml(d), ProtocolError, "is a directory"),
    (lambda m, d: mh.Protocol.from_toml(d / "latin.toml"), ProtocolError, "not UTF-8"),
    (lambda m, d: mh.load_model(links=42), ModelError, "links: expected link module names"),
    (lambda m, d: mh.load_model(links=["immune", 3]), ModelError, "links: expected"),
    (
        lambda m, d: sa.sobol(m, _template(), ["field_kA_per_m"], n=8.5),
        ParameterError,
        "n: must be an integer ≥ 1 (got 8.5)",
    ),
    (
        lambda m, d: sample(define_problem(["field_kA_per_m"]), "sobol", "8"),
        ParameterError,
        "n: must be an integer",
    ),
    (
        lambda m, d: sa.run_sensitivity(_template(), {"field_kA_per_m": (5, 500)}, n=8),
        ParameterError,
        "factor field_kA_per_m: upper bound 500",
    ),
    (
        lambda m, d: sa.run_sensitivity(_template(), {"session_duration_min": (1, 1e8)}, n=8),
        ParameterError,
        "factor session_duration_min: upper bound",
    ),
    (lambda m, d: read_overrides(d / "p.yaml"), ParameterError, "unknown file type"),
    (lambda m, d: load_spec(d / "many.toml"), MhimmuneError, "n must be an integer"),
    (
        lambda m, d: ParameterTable.load().check_override("tumour_initial_treated", -1),
        ParameterError,
        "tumour_initial_treated",
    ),
]


@pytest.mark.parametrize(("call", "error", "phrase"), API_CASES, ids=lambda v: str(v)[:40])
def test_api_bad_input(call, error, phrase, model, folder):
    with pytest.raises(error) as info:
        call(model, folder)
    assert phrase in str(info.value)
    assert "\n" not in str(info.value)


def test_out_of_range_override_warns_by_default_on_the_command_line_path(model):
    with pytest.warns(OutOfRangeWarning, match="ctl_kill_rate: override 2 "):
        mh.simulate(model, PLAN, {"ctl_kill_rate": 2.0}, strict=None)
    assert ParameterTable.load().range_problems({"ctl_kill_rate": 0.6}) == []


def test_load_model_takes_one_link_name(monkeypatch):
    seen = {}

    def stop(links, **kwargs):
        seen["links"] = links
        raise RuntimeError("stop")

    monkeypatch.setattr(model_module, "build", stop)
    with pytest.raises(RuntimeError, match="stop"):
        mh.load_model(links="immune")
    assert seen["links"] == ["immune"]


def test_drug_dose_limits_are_documented():
    from mhimmune.mh.kinds import DRUG_DOSE_LIMITS

    for kind, limit in DRUG_DOSE_LIMITS.items():
        assert f"≤ {limit:g} mg/kg" in getattr(mh.Protocol, kind).__doc__
