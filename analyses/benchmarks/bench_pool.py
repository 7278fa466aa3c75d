"""Benchmark of the reusable worker pool (:class:`mhimmune.runs.ensemble.WorkerPool`).

Two workloads that call :func:`~mhimmune.runs.ensemble.run_ensemble` many times, each with
and without one shared pool of 2 processes:

* a differential-evolution schedule search with the full model (60-day template,
  responder = total tumour ≤ 10 mm³ 50 days after the first treatment; session
  interval × antibody delay; 8 virtual animals; budget 120 candidates), one ensemble
  per generation: ``optimize_schedule(executor=WorkerPool(2))`` keeps one pool for the
  search, the old behaviour (new processes for every generation) is reproduced by an
  executor that opens a new pool for every ensemble (``NewProcessesPerBatch`` below);
* 10 consecutive small ensembles of 20 runs each (40-day template, final volume).

Both are measured with the ``fork`` start method (the Linux default: workers inherit
the model this process has loaded) and with ``spawn`` (the macOS and Windows default:
every new worker imports mhimmune and loads the compiled model from the disk cache).
Results with and without the pool are checked to be identical. Prints a markdown table
and writes it to ``analyses/benchmarks/results/pool.md``.

    .venv/bin/python analyses/benchmarks/bench_pool.py

Environment: ``BENCH_METHODS`` (comma-separated start methods, default
``fork,spawn``), ``BENCH_BUDGET`` (DE budget, default 120), ``BENCH_OUT`` (result file).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N_JOBS = 2
N_CALLS = 10
RUNS_PER_CALL = 20


def main() -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import mhimmune as mh
    from mhimmune.mh.evaluator import ModelEvaluator
    from mhimmune.mh.field_safety import HfWarning
    from mhimmune.mh.template import ScheduleTemplate
    from mhimmune.runs.ensemble import run_ensemble
    from mhimmune.runs.executor import Executor, WorkerPool
    from mhimmune.studies import optimize as opt
    from mhimmune.studies.cohort import sample_cohort

    warnings.simplefilter("ignore", HfWarning)

    class NewProcessesPerBatch(Executor):
        """The behaviour before WorkerPool: new worker processes for every ensemble."""

        n_workers = N_JOBS

        def results(self, tasks):
            with WorkerPool(N_JOBS) as pool:  # the start method set below
                yield from pool.results(tasks)

    methods = [
        m.strip() for m in os.environ.get("BENCH_METHODS", "fork,spawn").split(",") if m.strip()
    ]
    budget = int(os.environ.get("BENCH_BUDGET", "120"))
    out_file = Path(os.environ.get("BENCH_OUT", HERE / "results" / "pool.md"))

    t0 = time.perf_counter()
    model = mh.load_model(verbose=False)
    load_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ workloads
    de_ev = ModelEvaluator(ScheduleTemplate("60 d"), {"responder": "cure<=10@+50"})
    space = {"session_interval_day": (1.0, 3.0), "pdl1_delay_day": (-2.0, 6.0)}
    cohort = sample_cohort(8, seed=1)

    def de(**kw):
        return opt.optimize_schedule(
            de_ev,
            space,
            cohort=cohort,
            objective="responder",
            method="differential_evolution",
            budget=budget,
            seed=0,
            n_boot=100,
            progress=False,
            **kw,
        )

    small_ev = ModelEvaluator(ScheduleTemplate("40 d"), ["final_volume_treated_mm3"])
    rng = np.random.default_rng(7)
    designs = [
        pd.DataFrame(
            {
                "session_interval_day": rng.uniform(1.0, 4.0, RUNS_PER_CALL),
                "pdl1_delay_day": rng.uniform(-2.0, 6.0, RUNS_PER_CALL),
            }
        )
        for _ in range(N_CALLS)
    ]

    def small(**kw):
        return [
            run_ensemble(small_ev, d, progress=False, warn=False, **kw).results for d in designs
        ]

    # serial reference (this process; no worker start-up at all)
    t = time.perf_counter()
    small_ref = small(n_jobs=1)
    small_serial_s = time.perf_counter() - t
    t = time.perf_counter()
    de_ref = de()
    de_serial_s = time.perf_counter() - t
    print(
        f"serial: DE {de_serial_s:.2f} s ({de_ref.n_batches} ensembles, {de_ref.n_simulations} "
        f"runs); {N_CALLS} x {RUNS_PER_CALL} runs {small_serial_s:.2f} s",
        flush=True,
    )

    def same_small(results):
        return all(
            a.drop(columns="seconds").equals(b.drop(columns="seconds"))
            for a, b in zip(small_ref, results)
        )

    rows = []
    identical = True
    for method in methods:
        multiprocessing.set_start_method(method, force=True)  # what n_jobs=2 without a pool uses
        # --- DE: new processes for every generation (the old behaviour) vs one pool
        t = time.perf_counter()
        old = de(executor=NewProcessesPerBatch())
        old_s = time.perf_counter() - t
        t = time.perf_counter()
        with WorkerPool(N_JOBS, start_method=method) as pool:  # start-up included in the time
            new = de(executor=pool)
        new_s = time.perf_counter() - t
        ok = old.table.equals(de_ref.table) and new.table.equals(de_ref.table)
        identical &= ok
        rows.append(
            (
                method,
                f"differential evolution, budget {budget}: {new.n_batches} ensembles, "
                f"{new.n_simulations} runs",
                old_s,
                new_s,
                ok,
            )
        )
        # --- many small ensembles
        t = time.perf_counter()
        old_small = small(n_jobs=N_JOBS)
        old_s = time.perf_counter() - t
        t = time.perf_counter()
        with WorkerPool(N_JOBS, start_method=method) as pool:
            new_small = small(executor=pool)
        new_s = time.perf_counter() - t
        ok = same_small(old_small) and same_small(new_small)
        identical &= ok
        rows.append(
            (method, f"{N_CALLS} run_ensemble calls x {RUNS_PER_CALL} runs", old_s, new_s, ok)
        )
        for r in rows[-2:]:
            print(
                f"{r[0]:<6} {r[1]:<62} without pool {r[2]:7.2f} s  with pool {r[3]:7.2f} s  "
                f"x{r[2] / r[3]:.2f}  identical: {r[4]}",
                flush=True,
            )
    multiprocessing.set_start_method(None, force=True)

    size = model.size()
    lines = [
        "# Worker-pool benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), {platform.system()}, Python "
        f"{platform.python_version()}; model {size['species']} species, {size['reactions']} "
        f"reactions (load from cache {load_s:.1f} s). {N_JOBS} worker processes throughout. "
        f"Times include starting the pool.",
        "",
        "Reproduce: `.venv/bin/python analyses/benchmarks/bench_pool.py`.",
        "",
        '* DE: `optimize_schedule(ModelEvaluator(ScheduleTemplate("60 d"), {"responder": '
        '"cure<=10@+50"}), {"session_interval_day": (1, 3), "pdl1_delay_day": (-2, 6)}, '
        f'cohort=sample_cohort(8, seed=1), method="differential_evolution", budget={budget})`, '
        "one `run_ensemble` per generation; *without pool* = new processes for every generation "
        "(the behaviour before `WorkerPool`).",
        f"* small calls: {N_CALLS} `run_ensemble` calls of {RUNS_PER_CALL} runs each "
        '(`ModelEvaluator(ScheduleTemplate("40 d"), ["final_volume_treated_mm3"])`).',
        "* `fork` is the Linux default (new workers inherit the model the parent has loaded); "
        "`spawn` is the macOS/Windows default (every new worker imports mhimmune and loads the "
        "compiled model).",
        "",
        "| start method | workload | without pool (s) | with one pool (s) | speed-up | identical results |",
        "|---|---|---:|---:|---:|---|",
        *[
            f"| {m} | {w} | {a:.2f} | {b:.2f} | {a / b:.2f}× | {'yes' if ok else 'NO'} |"
            for m, w, a, b, ok in rows
        ],
        f"| – | the same in this process (`n_jobs=1`): DE | {de_serial_s:.2f} | – | – | reference |",
        f"| – | the same in this process (`n_jobs=1`): small calls | {small_serial_s:.2f} | – | – "
        f"| reference |",
        "",
        f"Identical tables with and without the pool and with `n_jobs=1`: "
        f"{'yes' if identical else 'NO'}.",
        "",
    ]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out_file}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
