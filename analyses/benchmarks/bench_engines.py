"""Benchmark: mhimmune's simulate against libroadrunner and PySB on the same model and schedule.

Measures, in one run on this machine,

* the median wall time of one simulation of the default protocol
  (``analyses/protocols/mh_plus_pdl1.toml``: 40 days, three 30-min MH sessions, three
  anti-PD-L1 doses) by
  - mhimmune's :func:`simulate` (compiled model, segment by segment, default settings),
  - libroadrunner on mhimmune's SBML export of the same model and schedule (events),
    with the same tolerances and output times,
  - PySB's ``ScipyOdeSimulator`` run segment by segment (one ``run()`` per segment,
    doses applied between), the way one would without an event-aware engine;
* the ratios to mhimmune, set-up times, and the agreement of the final states;
* the cold start: import, compile (BioNetGen + sympy + numba) and first simulation in
  a fresh process with an empty cache (``MHIMMUNE_CACHE_DIR`` = a new folder), and the
  warm start from that cache;
* a cProfile of mhimmune's simulate: where the time of one simulation goes.

Targets: mhimmune per simulation at least as fast as libroadrunner once
compiled, and at most 1/15 of its time; first simulation from a cold cache under 30 s.

    make bench-engines
    .venv/bin/python analyses/benchmarks/bench_engines.py

Environment: ``BENCH_RUNS`` (timed runs per engine, default 50), ``BENCH_PYSB_RUNS``
(default 3; PySB takes seconds per simulation), ``BENCH_COLD=0`` skips the cold start,
``BENCH_OUT`` (result file, default ``analyses/benchmarks/results/engines.md``).
PySB compiles its right-hand side with Cython when it is installed (the ``dev`` extra).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROTOCOL = ROOT / "analyses" / "protocols" / "mh_plus_pdl1.toml"

COLD_SCRIPT = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import mhimmune as mh
t_import = time.perf_counter()
model = mh.load_model(verbose=False)
t_load = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", mh.HfWarning)
    plan = mh.Protocol.from_toml(sys.argv[1])
mh.simulate(model, plan)
t_sim = time.perf_counter()
print(json.dumps({"import_s": t_import - t0, "load_s": t_load - t_import,
                  "first_sim_s": t_sim - t_load, "total_s": t_sim - t0}))
"""


def _timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_mhimmune(mh, model, plan, runs):
    res = mh.simulate(model, plan)  # warm-up (numba dispatch, caches)
    times = _timed(lambda: mh.simulate(model, plan), runs)
    return res, times


def bench_roadrunner(model, plan, res, runs, rtol, atol):
    import roadrunner

    from mhimmune.interop import export

    t = time.perf_counter()
    sbml = export.to_sbml(model, plan)
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    rr = roadrunner.RoadRunner(sbml)
    t_load = time.perf_counter() - t
    rr.timeCourseSelections = ["time", *export.species_ids(model)]
    rr.integrator.relative_tolerance = rtol
    # a vector: a scalar absolute tolerance is multiplied by each state's initial value
    # in libroadrunner, leaving states that start at 0 without one
    rr.integrator.absolute_tolerance = [atol] * len(model.species)
    rr.integrator.maximum_num_steps = 100_000
    grid = list(res.time_h)

    def run():
        rr.resetAll()  # species, time and the inputs the events changed
        return rr.simulate(times=grid)

    out = np.asarray(run())
    times = _timed(run, runs)
    return out[:, 1:], times, {"export_s": t_export, "load_s": t_load}


def bench_pysb(mh, model, plan, res, runs, rtol, atol):
    """PySB ScipyOdeSimulator, one run() per schedule segment, doses applied between."""
    from pysb.simulator import ScipyOdeSimulator

    from mhimmune.mh.inputs import protocol_schedule, session_heating

    c = model.compiled
    p0 = model.parameter_vector()
    scales = c.bolus_scales(p0)
    idx = {n: i for i, n in enumerate(c.parameters)}
    segments = protocol_schedule(model, plan, session_heating(plan)).segments
    grid = res.time_h
    try:
        import Cython  # noqa: F401  (PySB compiles its right-hand side with it when present)

        compiler = "cython"
    except ImportError:
        compiler = "python"
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = ScipyOdeSimulator(
            model.pysb,
            tspan=[0.0, 1.0],
            integrator="lsoda",
            compiler=compiler,
            integrator_options={"rtol": rtol, "atol": atol, "mxstep": 100_000},
        )
    t_setup = time.perf_counter() - t

    def run():
        y = np.asarray(c.init(p0), float)
        p = p0.copy()
        for seg in segments:
            t0, t1 = seg.t0_h, seg.t1_h
            seg.apply_jumps(y, scales)
            for n in model.inputs:
                p[idx[n]] = seg.inputs.get(n, 0.0)
            tspan = np.concatenate([[t0], grid[(grid > t0) & (grid < t1)], [t1]])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = sim.run(tspan=tspan, initials=y, param_values=p)
            y = np.asarray(r.species)[-1].copy()
        return y

    # PySB lambdifies every expression for its results on each run(); sympy prints Max/Min
    # as numpy.amax/amin of a tuple, which fails for a scalar next to an array: print them
    # as the elementwise numpy.maximum/minimum instead (same work, no crash)
    from unittest import mock

    import sympy
    from sympy.printing.numpy import NumPyPrinter

    lambdify = sympy.lambdify

    class Printer(NumPyPrinter):
        def _nested(self, expr, fn):
            out = self._print(expr.args[0])
            for a in expr.args[1:]:
                out = f"{self._module_format('numpy.' + fn)}({out}, {self._print(a)})"
            return out

        def _print_Max(self, expr):
            return self._nested(expr, "maximum")

        def _print_Min(self, expr):
            return self._nested(expr, "minimum")

    def elementwise(args, expr, modules=None, **kw):
        if modules == "numpy" and "printer" not in kw:
            kw["printer"] = Printer(
                {
                    "fully_qualified_modules": False,
                    "inline": True,
                    "allow_unknown_functions": True,
                    "user_functions": {},
                }
            )
        return lambdify(args, expr, modules, **kw)

    with mock.patch.object(sympy, "lambdify", elementwise):
        t = time.perf_counter()
        y_end = run()
        t_first = time.perf_counter() - t
        times = _timed(run, runs)
    return (
        y_end,
        times,
        {
            "setup_s": t_setup,
            "first_run_s": t_first,
            "compiler": compiler,
            "segments": len(segments),
        },
    )


def cold_start(env_extra: dict) -> dict:
    env = {**os.environ, **env_extra}
    r = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(PROTOCOL)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if r.returncode != 0:
        return {
            "error": r.stderr.strip().splitlines()[-1]
            if r.stderr.strip()
            else f"exit {r.returncode}"
        }
    return json.loads(r.stdout.strip().splitlines()[-1])


def profile_simulate(mh, model, plan, runs: int = 20) -> tuple[str, dict]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        mh.simulate(model, plan)
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("tottime").print_stats(14)
    total = sum(v[2] for v in stats.stats.values())  # tottime over all functions
    by_name: dict[str, float] = {}
    for (file, _line, func), v in stats.stats.items():
        by_name[f"{Path(file).name}:{func}"] = by_name.get(f"{Path(file).name}:{func}", 0.0) + v[2]
    top = dict(sorted(by_name.items(), key=lambda kv: -kv[1])[:12])
    return stream.getvalue(), {
        "total_s_per_sim": total / runs,
        "top_ms_per_sim": {k: 1e3 * v / runs for k, v in top.items()},
    }


def final_agreement(ref_final, other_final, scale) -> float:
    """Largest relative difference of the final states above 1e-6 of each state's scale."""
    above = np.abs(ref_final) > np.maximum(1e-6 * scale, 1e-9)
    rel = np.abs(other_final - ref_final) / np.where(above, np.abs(ref_final), 1.0)
    return float(rel[above].max()) if above.any() else float("nan")


def main() -> int:
    import mhimmune as mh
    from mhimmune.mh.field_safety import HfWarning

    warnings.simplefilter("ignore", HfWarning)
    runs = int(os.environ.get("BENCH_RUNS", "50"))
    pysb_runs = int(os.environ.get("BENCH_PYSB_RUNS", "3"))
    do_cold = os.environ.get("BENCH_COLD", "1") != "0"
    out_file = Path(os.environ.get("BENCH_OUT", HERE / "results" / "engines.md"))
    rtol, atol = 1e-6, 1e-9  # mhimmune's defaults, given to every engine
    load = os.getloadavg()

    cold = warm = None
    if do_cold:
        with tempfile.TemporaryDirectory(prefix="mhimmune_cold_") as tmp:
            print(f"cold start (empty cache {tmp}) ...", flush=True)
            cold = cold_start({"MHIMMUNE_CACHE_DIR": tmp})
            warm = cold_start({"MHIMMUNE_CACHE_DIR": tmp})

    t = time.perf_counter()
    model = mh.load_model(verbose=True)
    load_s = time.perf_counter() - t
    plan = mh.Protocol.from_toml(PROTOCOL)
    print(f"{model!r}\nmhimmune ...", flush=True)
    res, t_mh = bench_mhimmune(mh, model, plan, runs)
    print("libroadrunner ...", flush=True)
    rr_states, t_rr, rr_info = bench_roadrunner(model, plan, res, runs, rtol, atol)
    print("PySB ScipyOdeSimulator ...", flush=True)
    pysb_final, t_pysb, pysb_info = bench_pysb(mh, model, plan, res, pysb_runs, rtol, atol)
    print("profile ...", flush=True)
    prof_text, prof = profile_simulate(mh, model, plan)

    med = {
        "mhimmune": statistics.median(t_mh),
        "libroadrunner": statistics.median(t_rr),
        "pysb": statistics.median(t_pysb),
    }
    ref_final = res.states[-1]
    scale = np.abs(res.states).max(axis=0)
    agree = {
        "libroadrunner": final_agreement(ref_final, rr_states[-1], scale),
        "pysb": final_agreement(ref_final, pysb_final, scale),
    }
    s = res.status
    lines = [
        "# Engines: mhimmune vs libroadrunner vs PySB",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load[0]:.1f} at the start: other processes "
        "slow every engine alike, and ratios are more stable than times), "
        f"Python {platform.python_version()}; command: `make bench-engines` "
        f"(`BENCH_RUNS={runs}`, `BENCH_PYSB_RUNS={pysb_runs}`).",
        "",
        f"Model: {model!r}.  Protocol: `{PROTOCOL.relative_to(ROOT)}` "
        f"({len(plan.segments())} segments, {len(res.time_h)} output times); rtol={rtol:g}, atol={atol:g} "
        "for every engine.  mhimmune per run: "
        f"{s.steps} steps, {s.rhs_evaluations} right-hand sides, {s.jacobian_evaluations} Jacobians, "
        f"{s.lu_factorisations} LU factorisations, {s.linear_solves} linear solves, "
        f"{s.rejected_steps} rejected step attempts.",
        "",
        "| engine | ms per simulation (median) | min | simulations/s | ratio to mhimmune | set-up | final state vs mhimmune (max rel.) |",
        "|---|---|---|---|---|---|---|",
        f"| mhimmune `simulate` | {1e3 * med['mhimmune']:.1f} | {1e3 * min(t_mh):.1f} | {1 / med['mhimmune']:.1f} "
        f"| 1.00 | load {load_s:.2f} s (cached) | – |",
        f"| libroadrunner (SBML export, events) | {1e3 * med['libroadrunner']:.1f} | {1e3 * min(t_rr):.1f} "
        f"| {1 / med['libroadrunner']:.1f} | {med['libroadrunner'] / med['mhimmune']:.2f} "
        f"| export {rr_info['export_s']:.2f} s + load {rr_info['load_s']:.2f} s | {agree['libroadrunner']:.1e} |",
        f"| PySB ScipyOdeSimulator ({pysb_info['compiler']}), one run() per segment | {1e3 * med['pysb']:.0f} | {1e3 * min(t_pysb):.0f} "
        f"| {1 / med['pysb']:.2f} | {med['pysb'] / med['mhimmune']:.1f} "
        f"| simulator {pysb_info['setup_s']:.2f} s, first run {pysb_info['first_run_s']:.2f} s | {agree['pysb']:.1e} |",
        "",
        "Ratio > 1: the engine is slower than mhimmune.",
        "",
    ]
    target_speed = med["mhimmune"] <= med["libroadrunner"]
    lines.append(
        f"Target 1, mhimmune at least as fast as libroadrunner per simulation: "
        f"**{'met' if target_speed else 'not met'}** "
        f"({1e3 * med['mhimmune']:.1f} ms vs {1e3 * med['libroadrunner']:.1f} ms)."
    )
    ratio = med["mhimmune"] / med["libroadrunner"]
    lines.append(
        f"\nTarget 1b, mhimmune at most 1/15 of libroadrunner's time per simulation: "
        f"**{'met' if ratio <= 1 / 15 else 'not met'}** (1/{1 / ratio:.1f})."
    )
    if cold is not None:
        if "error" in cold:
            lines.append(f"\nCold start failed: {cold['error']}")
        else:
            ok = cold["total_s"] < 30
            lines += [
                "",
                f"Target 2, first simulation from an empty cache under 30 s: **{'met' if ok else 'not met'}**.",
                "",
                "| start | import | load_model | first simulate | total |",
                "|---|---|---|---|---|",
                f"| cold (empty `MHIMMUNE_CACHE_DIR`) | {cold['import_s']:.2f} s | {cold['load_s']:.2f} s "
                f"| {cold['first_sim_s']:.2f} s | {cold['total_s']:.2f} s |",
                f"| warm (same cache, new process) | {warm['import_s']:.2f} s | {warm['load_s']:.2f} s "
                f"| {warm['first_sim_s']:.2f} s | {warm['total_s']:.2f} s |",
            ]
    lines += [
        "",
        f"## Where one mhimmune simulation spends its time (cProfile, 20 runs; "
        f"{1e3 * prof['total_s_per_sim']:.1f} ms per run under the profiler)",
        "",
        "| function | ms per simulation (own time) |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {v:.2f} |" for k, v in prof["top_ms_per_sim"].items()]
    lines += [
        "",
        "<details><summary>cProfile output</summary>",
        "",
        "```",
        prof_text.strip(),
        "```",
        "",
        "</details>",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text)
    (out_file.with_suffix(".json")).write_text(
        json.dumps(
            {
                "median_s": med,
                "min_s": {"mhimmune": min(t_mh), "libroadrunner": min(t_rr), "pysb": min(t_pysb)},
                "runs": {"mhimmune": runs, "libroadrunner": runs, "pysb": pysb_runs},
                "cold": cold,
                "warm": warm,
                "load_s": load_s,
                "roadrunner": rr_info,
                "pysb": pysb_info,
                "agreement": agree,
                "profile": prof,
                "model": repr(model),
            },
            indent=1,
        )
    )
    print(f"\nwrote {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
