# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean bench

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mhimmune demo --out results

# lint, format and type checks first (configured in pyproject.toml), then the suite;
# notebooks in analyses/ run too (small sample sizes when CI=true)
test: lint
	$(PY) -m pytest tests analyses --nbmake --nbmake-timeout=600

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow"

clean:
	rm -rf $(VENV) results build dist .pytest_cache

# ensembles and sensitivity analysis
.PHONY: bench-ensemble sa-notebook
SA_N ?= 1024

# runs/s on 1 and 2 processes and a 2-worker Dask LocalCluster; wall time of the
# 16-factor Sobol analysis at N=1024; writes analyses/benchmarks/results/ensemble.md
bench-ensemble: $(STAMP)
	$(PY) analyses/benchmarks/bench_ensemble.py

# the schedule sensitivity notebook at full size (MH_SA_N=$(SA_N)), outputs written back
sa-notebook: $(STAMP)
	MH_SA_N=$(SA_N) $(PY) -m pytest --nbmake --overwrite --nbmake-timeout=3600 analyses/sensitivity_schedule.ipynb

# engines side by side: mhimmune simulate vs libroadrunner on the SBML export vs
# PySB ScipyOdeSimulator, cold start from an empty cache, profile; writes
# analyses/benchmarks/results/engines.md (BENCH_RUNS, BENCH_PYSB_RUNS, BENCH_COLD=0 to adjust)
.PHONY: bench-engines
bench-engines: $(STAMP)
	$(PY) analyses/benchmarks/bench_engines.py

# one reusable WorkerPool vs a pool per ensemble (fork and spawn); writes
# analyses/benchmarks/results/pool.md (about 2 minutes)
.PHONY: bench-pool
bench-pool: $(STAMP)
	$(PY) analyses/benchmarks/bench_pool.py

# virtual trial, synergy and schedule optimisation: the notebook at full size
# (MH_TRIAL_N animals, outputs written back) and the hypothesis report of the shipped spec
.PHONY: virtual-trial hypotheses
MH_TRIAL_N ?= 40

virtual-trial: $(STAMP)
	TQDM_DISABLE=1 MH_TRIAL_N=$(MH_TRIAL_N) $(PY) -m pytest --nbmake --overwrite --nbmake-timeout=3600 analyses/virtual_trial.ipynb

hypotheses: $(STAMP)
	$(VENV)/bin/mhimmune hypotheses analyses/hypotheses/mh_pdl1.toml --out analyses/hypotheses/results
	$(VENV)/bin/mhimmune hypotheses analyses/hypotheses/mh_checkpoints_mc38.toml --out analyses/hypotheses/results_mc38

# the validation suite: every published target simulated with the default model;
# writes report.md, validation.csv and validation.png (about 25 s)
.PHONY: validate
validate: $(STAMP)
	TQDM_DISABLE=1 $(VENV)/bin/mhimmune validate --out analyses/validation/results

# can any values of the shared T-cell parameters pass the T-cell targets together?
# (analyses/validation/feasibility.toml; 1,024 draws on 2 processes, about 3 minutes)
.PHONY: feasibility
feasibility: $(STAMP)
	TQDM_DISABLE=1 $(VENV)/bin/mhimmune validate --feasibility --out analyses/validation/results

# re-fit the calibration blocks (analyses/validation/calibration.toml), then validate;
# writes calibration.md beside report.md (about 2 minutes)
.PHONY: calibrate
calibrate: $(STAMP)
	TQDM_DISABLE=1 $(VENV)/bin/mhimmune validate --calibrate --out analyses/validation/results
