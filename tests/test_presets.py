"""Tumour and host presets: chosen by name in Python, protocols and the command line."""

import warnings

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.errors import ParameterError, ProtocolError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.presets import preset_names, preset_overrides
from mhimmune.studies.validation_tumours import (
    host_cd8_effectors_peak,
    preset_antibody_inhibition,
    preset_doubling_time,
    preset_growth_rate,
)

TUMOURS = ("ct26", "mc38", "4t1", "b16f10")


@pytest.fixture(scope="module")
def model_4t1():
    return mh.load_model(tumour="4t1", verbose=False)


def test_shipped_presets_and_each_kind_sets_the_same_parameters():
    """Four tumour lines and two hosts ship; every preset of a kind overrides the same
    parameters, so one preset replaces another completely."""
    assert tuple(preset_names("tumour")) == TUMOURS
    assert tuple(preset_names("host")) == ("mouse", "nude")
    for kind, frame in (("tumour", mh.tumours()), ("host", mh.hosts())):
        keys = {name: set(preset_overrides(**{kind: name})) for name in frame.index}
        assert len({frozenset(k) for k in keys.values()}) == 1, keys
        assert frame["source"].str.len().min() > 20


def test_ct26_and_mouse_presets_are_the_shipped_tables(model):
    """The reference presets (CT26 in an immunocompetent mouse) hold the tables' values:
    the parameter vector equals the default model's exactly."""
    over = preset_overrides(tumour="ct26", host="mouse")
    assert np.array_equal(model.parameter_vector(over), model.parameter_vector({}))


def test_load_model_with_a_tumour_replaces_the_table_values(model, model_4t1):
    """load_model(tumour="4t1") carries the preset as its baseline and label; its default
    parameter vector equals the default model's with the 4T1 overrides (MDSC recruitment
    0.03 Mcell/h, 3x CT26)."""
    over = preset_overrides(tumour="4t1")
    assert model_4t1.labels == {"tumour": "4t1"}
    assert model_4t1.baseline == pytest.approx(over)
    assert model_4t1.table.value("mdsc_recruitment") == pytest.approx(0.03)
    assert np.array_equal(model_4t1.parameter_vector({}), model.parameter_vector(over))
    assert "tumour 4t1" in repr(model_4t1)


def test_a_protocol_naming_a_tumour_simulates_as_the_preset_model(model, model_4t1):
    """Protocol(tumour="4t1") with the default model gives the same trajectories as the
    default protocol with the 4T1 model (within 1e-9 relative)."""
    plan = mh.Protocol(duration="10 d")
    a = mh.simulate(model, mh.Protocol(duration="10 d", tumour="4t1"))
    b = mh.simulate(model_4t1, plan)
    np.testing.assert_allclose(
        a["tumour_volume_treated"].to_numpy(), b["tumour_volume_treated"].to_numpy(), rtol=1e-9
    )
    # the same preset on both is not a conflict
    mh.simulate(model_4t1, mh.Protocol(duration="1 d", tumour="4t1"))


def test_a_protocol_naming_another_preset_than_the_model_is_refused(model_4t1):
    """A model loaded for 4T1 and a protocol asking for B16-F10 raise one error naming
    both."""
    with pytest.raises(ParameterError, match="protocol names 'b16f10'.*tumour='4t1'"):
        mh.simulate(model_4t1, mh.Protocol(duration="1 d", tumour="b16f10"))


def test_presets_round_trip_through_toml():
    """tumour and host are top-level keys of a protocol's TOML and survive a round trip."""
    plan = mh.Protocol.from_toml('duration = "10 d"\ntumour = "mc38"\nhost = "nude"\n')
    assert (plan.tumour, plan.host) == ("mc38", "nude")
    assert mh.Protocol.from_toml(plan.to_toml()) == plan
    assert plan != mh.Protocol(duration="10 d")
    assert repr(plan).endswith("no interventions, tumour mc38, host nude>")


def test_check_prints_the_presets_of_a_protocol(tmp_path, capsys):
    """`mhimmune check` names the presets a protocol asks for."""
    path = tmp_path / "p.toml"
    path.write_text('duration = "10 d"\ntumour = "4t1"\n')
    assert main(["check", str(path)]) == 0
    assert "presets: tumour 4t1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: mh.load_model(tumour="ct62", verbose=False), ParameterError, "tumour 'ct62'"),
        (lambda: mh.load_model(host="rat", verbose=False), ParameterError, "known: mouse, nude"),
        (lambda: mh.Protocol(duration="1 d", tumour="b16"), ProtocolError, "known: ct26"),
        (lambda: mh.Protocol(duration="1 d", host=3), ProtocolError, "unknown host preset 3"),
        (
            lambda: mh.Protocol.from_toml('duration = "1 d"\ntumour = "lewis"\n'),
            ProtocolError,
            "tumour: unknown tumour preset 'lewis'",
        ),
    ],
)
def test_unknown_presets_are_refused_naming_the_known_ones(call, error, message):
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_preset_growth_and_anti_pdl1_response_follow_the_presets():
    """Untreated early growth (days 1-7) follows the preset growth rates (CT26 0.32 /d, 4T1
    0.35, MC38 0.19, B16-F10 0.45, within 0.01); MC38 doubles in 4.0 d over days 7-14 (its
    growth rate is fitted to Barnes & Franklin 2019's ~4 d); anti-PD-L1 alone, from
    100 mm³, inhibits MC38 more than CT26 and 4T1 least (14 days after the first dose:
    99.6 %, 6.1 %, 2.3 %), the ranking of Snipstad et al. 2023."""
    growth = {t: preset_growth_rate(t) for t in TUMOURS}
    assert growth == pytest.approx({"ct26": 0.324, "mc38": 0.190, "4t1": 0.347, "b16f10": 0.454},
                                   abs=0.01)  # fmt: skip
    assert preset_doubling_time("mc38") == pytest.approx(4.0, abs=0.05)
    inhibition = {t: preset_antibody_inhibition(t) for t in ("mc38", "ct26", "4t1")}
    assert inhibition["mc38"] > inhibition["ct26"] > inhibition["4t1"] > 0


def test_nude_host_has_no_t_cell_response_after_mh():
    """In a nude host (no T cells) MH + anti-PD-L1 (three sessions, three doses) primes no
    effector CD8 T cells: their peak over 40 days stays below 1e-9 Mcell, against ~100
    Mcell in an immunocompetent mouse; the Treg fraction is 0 and finite."""
    assert host_cd8_effectors_peak("nude") < 1e-9
    assert host_cd8_effectors_peak("mouse") > 10.0
    res = mh.simulate(
        mh.load_model(host="nude", verbose=False), mh.Protocol(duration="10 d"), strict=True
    )
    assert np.all(np.isfinite(res["treg_fraction"])) and res["treg_fraction"].max() < 1e-9


def test_evaluator_from_a_preset_model_passes_the_preset_to_its_runs(model_4t1):
    """An evaluator built from a preset model runs the preset (its overrides travel as
    fixed params, as workers rebuild the default model)."""
    ev = ModelEvaluator.from_model(
        model_4t1, mh.Protocol(duration="10 d"), ["tumour_volume_treated@10"]
    )
    assert ev.params["mdsc_recruitment"] == pytest.approx(0.03)


def test_cli_lists_presets_and_simulates_with_one(tmp_path, capsys):
    """`mhimmune tumours` and `mhimmune hosts` list the presets; `simulate --tumour b16f10
    --host nude` runs; an unknown --tumour exits 2 with one line."""
    assert main(["tumours"]) == 0
    out = capsys.readouterr().out
    assert all(f"{t}:" in out for t in TUMOURS) and "4 tumour preset(s)" in out
    assert main(["hosts"]) == 0
    assert "nude:" in capsys.readouterr().out
    plan = tmp_path / "p.toml"
    plan.write_text('duration = "5 d"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        argv = ["simulate", str(plan), "--tumour", "b16f10", "--host", "nude", "--out"]
        assert main([*argv, str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "p_summary.csv").is_file()
    capsys.readouterr()
    assert main(["simulate", str(plan), "--tumour", "xx", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tumour 'xx'" in err[0]


def test_a_cohort_varies_around_the_preset_growth_rate(model):
    """sample_cohort(base=model.baseline) centres the animals on the preset: the median
    growth rate of 41 B16-F10 animals is within 10 % of 0.573 /d (CT26: 0.4 /d)."""
    b16 = mh.load_model(tumour="b16f10", verbose=False)
    cohort = mh.cohort.sample_cohort(41, seed=3, base=b16.baseline)
    assert cohort["tumour_growth_rate"].median() == pytest.approx(0.573, rel=0.1)
