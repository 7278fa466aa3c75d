"""The stiff integrator over the 16-factor schedule design of analyses/sa/schedule.toml:
no run fails at the default tolerances, and its hardest (ablative) corners agree with a
tight-tolerance integration.

The corner points below are rows of the Sobol design at N = 128 (seed 1): high field,
frequency and particle dose, where the treated tumour is ablated within one session, its
viable-cell states decay to 0 with rate constants of 1e2-1e3 per hour and the heat-shock
states change by orders of magnitude. An integrator whose Newton iteration or matrix reuse
is too loose lets the viable-cell states undershoot 0 there and stops with "step size
became too small".
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

import mhimmune as mh
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.runs.ensemble import run_ensemble
from mhimmune.studies import sensitivity as sa

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "analyses" / "sa" / "schedule.toml"
DEFAULT = {"rtol": 1e-6, "atol": 1e-9}
REFERENCE = {"rtol": 1e-9, "atol": 1e-12}

FACTORS = (
    "field_kA_per_m",
    "frequency_kHz",
    "session_duration_min",
    "n_sessions",
    "session_interval_day",
    "particle_dose_mg_per_cm3",
    "pdl1_delay_day",
    "pdl1_dose_mg_per_kg",
    "pdl1_interval_day",
    "bso",
    "hsp_inhibitor",
    "ctl_kill_rate",
    "tumour_growth_rate",
    "dc_maturation_max",
    "ab_kel",
    "tumour_initial_treated",
)
#: ablative corners of the schedule design (rows of the N = 128 Sobol sample)
CORNERS = [
    (
        17.008063981309533,
        265.3472173959017,
        50.569761847145855,
        2.0,
        1.789624273777008,
        6.43348309583962,
        -0.5743127278983593,
        17.110296003976565,
        2.2689054794609547,
        1.0,
        0.0,
        1.1555833036480383,
        0.315241726860404,
        0.033975657043644664,
        0.2614802117477928,
        16.547095512706964,
    ),  # design row 43
    (
        17.008063981309533,
        265.3472173959017,
        50.569761847145855,
        2.0,
        1.789624273777008,
        6.43348309583962,
        5.092256222851574,
        17.110296003976565,
        2.2689054794609547,
        1.0,
        0.0,
        0.5998155118995999,
        0.315241726860404,
        0.033975657043644664,
        0.2614802117477928,
        16.547095512706964,
    ),  # design row 48
    (
        16.361739991232753,
        213.7888640910387,
        28.032979709096253,
        1.0,
        2.546049974858761,
        5.525918488390744,
        1.738351235166192,
        5.238304024325644,
        4.210203535854816,
        1.0,
        1.0,
        1.3561636429232635,
        0.4807450860738754,
        0.1622306737004918,
        0.12934584372392216,
        53.18937113706563,
    ),  # design row 196
    (
        17.92028041742742,
        196.4265164360404,
        25.726692932657897,
        1.0,
        3.1213362412527204,
        5.741808939259499,
        -2.5486360397189856,
        8.12017414076536,
        3.349443171173334,
        0.0,
        0.0,
        0.9807309854434223,
        0.25882342606782915,
        0.2581777401247461,
        0.11654046316458776,
        52.97541923555849,
    ),  # design row 234
    (
        17.92028041742742,
        196.4265164360404,
        25.726692932657897,
        1.0,
        3.1213362412527204,
        5.741808939259499,
        -2.5486360397189856,
        8.12017414076536,
        3.349443171173334,
        0.0,
        0.0,
        0.9807309854434223,
        0.25882342606782915,
        0.2581777401247461,
        0.11654046316458776,
        20.630614085804872,
    ),  # design row 250
    (
        17.114279681816697,
        213.1454947963357,
        37.428542179986835,
        4.0,
        3.271959602832794,
        5.2320966315455735,
        4.260390956886113,
        9.679066152626996,
        4.451343696564436,
        1.0,
        1.0,
        0.5148385138585011,
        0.5290616370737553,
        0.15638312648839928,
        0.1720351357960823,
        27.173259557112743,
    ),  # design row 287
    (
        15.538342196494341,
        251.06984540820122,
        23.072385764680803,
        4.0,
        3.292510498315096,
        6.164882599841803,
        -0.9540452873334289,
        12.50903951546696,
        5.520052425563335,
        1.0,
        1.0,
        0.8134108022689337,
        0.27226977720856665,
        0.08300565989792578,
        0.09070349631867645,
        48.952346498186856,
    ),  # design row 474
    (
        17.698807699605823,
        245.9171287715435,
        36.56504056882113,
        3.0,
        1.5839373767375946,
        6.695669198408723,
        2.964834381826222,
        10.816608453590858,
        5.713172793388367,
        1.0,
        0.0,
        0.16248006076639013,
        0.43782357424497603,
        0.08934046732573335,
        0.08735177556109715,
        50.721462253567005,
    ),  # design row 916
    (
        15.84642898477614,
        233.71632680296898,
        55.85670033004135,
        1.0,
        3.8282555863261223,
        5.261717570014298,
        4.075610065832734,
        2.5732362913478304,
        3.779470767825842,
        1.0,
        1.0,
        0.1979527514453437,
        0.3536709200590849,
        0.1932881169623722,
        0.17656725724102357,
        45.57079555359188,
    ),  # design row 1047
    (
        16.792113233357668,
        238.57714980840683,
        34.52839584555477,
        4.0,
        2.8753295931965113,
        4.424020613078028,
        0.6496935831382871,
        13.682749871779167,
        5.25360719114542,
        1.0,
        1.0,
        1.0533444523907591,
        0.5659134209156036,
        0.2774367953032298,
        0.14940197247289888,
        32.04402030449092,
    ),  # design row 1201
    (
        16.18477511405945,
        241.37903720140457,
        57.08233272191137,
        5.0,
        2.1313775945454836,
        6.1160691301338375,
        -2.7459594514220953,
        5.753626053578796,
        3.1951521523296833,
        1.0,
        0.0,
        0.9612664178399835,
        0.5525433119386434,
        0.05394739519799971,
        0.29592079977268815,
        22.772734933638382,
    ),  # design row 1332
    (
        16.18477511405945,
        241.37903720140457,
        57.08233272191137,
        5.0,
        2.1313775945454836,
        6.1160691301338375,
        -2.7459594514220953,
        5.753626053578796,
        3.1951521523296833,
        0.0,
        0.0,
        0.9612664178399835,
        0.5525433119386434,
        0.05394739519799971,
        0.29592079977268815,
        22.772734933638382,
    ),  # design row 1342
    (
        16.836364597082138,
        268.98072212934494,
        53.22362598963082,
        1.0,
        3.2013193564489484,
        6.855518558528274,
        5.47322523035109,
        6.57665067846869,
        4.159393720328808,
        0.0,
        1.0,
        0.1787594611166717,
        0.20960074551403524,
        0.23485156589446693,
        0.09425204925037023,
        20.41592462488663,
    ),  # design row 1585
    (
        17.990670010447502,
        213.03875260055065,
        54.361385316587985,
        3.0,
        3.4691269490867853,
        4.860769065562636,
        -1.5820973021909595,
        7.660124450668839,
        2.697889681905508,
        1.0,
        0.0,
        0.2366332188895111,
        0.5159727077931165,
        0.09815092866484366,
        0.15493885419561862,
        33.07863905525365,
    ),  # design row 2063
    (
        17.415322709828615,
        201.28000628203154,
        44.67230179812759,
        4.0,
        3.676009270362556,
        6.363612120971084,
        2.7049253778532147,
        4.336533174961633,
        5.867463603615761,
        0.0,
        0.0,
        0.18387935782220946,
        0.3440433707088232,
        0.20771121709614931,
        0.19477243369262373,
        37.27583675734884,
    ),  # design row 2107
    (
        16.289819695055485,
        201.28000628203154,
        44.67230179812759,
        5.0,
        3.676009270362556,
        6.363612120971084,
        2.7049253778532147,
        4.336533174961633,
        5.867463603615761,
        0.0,
        0.0,
        0.18387935782220946,
        0.3440433707088232,
        0.20771121709614931,
        0.19477243369262373,
        37.27583675734884,
    ),  # design row 2110
]


@pytest.fixture(scope="module")
def spec():
    """The schedule study: template protocol, factors and readouts."""
    return sa.load_spec(SPEC)


def _readouts(spec, options):
    ev = ModelEvaluator(spec["protocol"], spec["readouts"], simulate_options=options)
    ev.setup(list(FACTORS))
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        for values in CORNERS:
            r = ev(dict(zip(FACTORS, values, strict=True)))
            out.append({k: float(v) for k, v in r.items() if np.isscalar(v)})
    return out


def _design(spec, n):
    problem = sa.define_problem(spec["factors"], table=mh.load_model(verbose=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.sample(problem, "sobol", n, seed=spec["seed"]).design


def test_corner_points_are_rows_of_the_n128_design(spec):
    """The fixture names the study's 16 factors, and each corner is a row of its Sobol
    design at N = 128 (to 1e-12 relative)."""
    design = _design(spec, 128)
    assert list(design.columns) == list(FACTORS)
    x = design.to_numpy(float)
    for values in CORNERS:
        assert np.isclose(x, np.asarray(values), rtol=1e-12, atol=0).all(axis=1).any()


def test_ablative_corners_integrate_and_match_a_tight_reference(spec):
    """Each of 16 ablative design corners runs at the default tolerances (rtol 1e-6,
    atol 1e-9) and every scalar readout is within 2e-4 relative of a rtol 1e-9 /
    atol 1e-12 integration (volumes also within 1e-4 mm^3, a hundred cells; cure equal)."""
    ref = _readouts(spec, REFERENCE)
    got = _readouts(spec, DEFAULT)
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a.keys() == b.keys()
        for k in a:
            floor = 1e-4 if "volume" in k else 0.0
            assert abs(b[k] - a[k]) <= 2e-4 * abs(a[k]) + floor, (i, k, a[k], b[k])


@pytest.mark.slow
def test_schedule_design_at_n128_has_no_failed_run(spec):
    """All 2,304 runs of the 16-factor Sobol design at N = 128 integrate at the default
    tolerances: none fails (e.g. with "step size became too small")."""
    design = _design(spec, 128)
    assert len(design) == 128 * (16 + 2)
    ev = ModelEvaluator(spec["protocol"], spec["readouts"], simulate_options=DEFAULT)
    result = run_ensemble(ev, design, n_jobs=2, progress=False, warn=False)
    assert result.n_failed == 0, result.failures["message"].str[:160].value_counts()
