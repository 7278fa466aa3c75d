"""``log10(SPEC)`` readouts: log10(1 + value) of a statistic, for heavy-tailed outputs such
as a thermal dose whose Sobol indices do not converge on the raw scale."""

import math
import warnings

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.core.errors import ParameterError
from mhimmune.mh import catalogue
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.runs.readout import Flag, Readout, Vocabulary, evaluate

T = np.array([0.0, 1.0, 2.0, 3.0])
Y = np.array([0.0, 9.0, 99.0, 999.0])


def _series(variables):
    return Y.copy()


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("log10(final:x)", 3.0),  # log10(1 + 999)
        ("log10(max:x)", 3.0),
        ("log10(x@1)", 1.0),  # log10(1 + 9)
        ("log10(auc:x)", math.log10(1 + 4.5 + 54.0 + 549.0)),  # trapezoid 608.5
    ],
)
def test_log_readout_is_log10_of_one_plus_the_statistic(spec, expected):
    r = Readout.parse(spec)
    assert r.log and r.name == spec
    assert evaluate([r], _series, T, 3.0)[spec] == pytest.approx(expected, rel=1e-12)


def test_log_readout_keeps_its_transform_when_renamed():
    r = Readout.parse("log10(final:x)", name="log_dose")
    assert r.name == "log_dose" and r.log
    assert r.renamed("other").log


def test_log_of_a_flag_or_of_a_log_is_refused_with_the_spec():
    voc = Vocabulary(flags={"cure": Flag(("x",), 1.0)})
    with pytest.raises(ParameterError, match=r"readout 'log10\(cure\)': log10\(\.\.\.\) takes"):
        Readout.parse("log10(cure)", vocabulary=voc)
    with pytest.raises(ParameterError, match="takes one statistic"):
        Readout.parse("log10(log10(final:x))")


def test_log_readout_of_a_negative_value_fails_the_run():
    r = Readout.parse("log10(min:x)")
    with pytest.raises(ValueError, match=r"log10 of 1 \+ -5 needs a value ≥ 0"):
        evaluate([r], lambda v: np.array([1.0, -5.0]), np.array([0.0, 1.0]), 1.0)


def test_log_thermal_dose_matches_the_raw_thermal_dose_of_the_model():
    """``log10(cem43_total_min)`` of the shipped MH arm equals log10(1 + CEM43) of the same
    run."""
    with warnings.catch_warnings():  # H·f above the Brezovich limit, as in the demo
        warnings.simplefilter("ignore", HfWarning)
        plan = mh.Protocol.shipped("mh", duration="12 d")  # three sessions, days 7, 9, 11
    assert catalogue.parse_readout("log10(cem43_total_min)").log
    out = ModelEvaluator(plan, ["cem43_total_min", "log10(cem43_total_min)"])({})
    assert out["cem43_total_min"] > 1.0
    assert out["log10(cem43_total_min)"] == pytest.approx(
        math.log10(1.0 + out["cem43_total_min"]), rel=1e-12
    )
