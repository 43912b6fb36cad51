# Two commands are the whole set-up: `make all` (reproduce every result) and `make test`.
# `make results` re-makes the committed results/ (see docs/results-files.md).
PYTHON   ?= python3.11
VENV     ?= .venv
PY       := $(VENV)/bin/python
HARNESS  := $(PY) -m harness
# SEEDS empty: each experiment's own default, seeds 0 to its registry file's `seeds` - 1.
SEEDS    ?=
DEVICES  ?= auto
ENGINE   ?= fast
# Where `make all` trains: git-ignored, so a fresh clone reproduces the committed results instead of
# reading them back, and a second `make all` resumes (it trains only what is missing).
RESULTS  ?= build/results
EXPERIMENTS ?= all
DATASET  ?=
JOBS     ?= $(shell nproc 2>/dev/null || echo 1)

FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

COMMITTED := results
# What `make all` checks: the experiments it ran (all: every one, and each variant where it has results).
CHECKED  = $(filter-out all,$(EXPERIMENTS)) $(if $(DATASET),--dataset $(DATASET))
RUN_ARGS = $(EXPERIMENTS) $(if $(SEEDS),--seeds $(SEEDS)) --devices $(DEVICES) --engine $(ENGINE) --results-dir $(RESULTS) \
  --jobs $(JOBS) $(if $(DATASET),--dataset $(DATASET))
# Where `make results` trains before its rows replace the committed ones.
REMAKE   ?= build/remake

.PHONY: all setup setup-ray setup-mlflow run report check compare results test test-fast lint mutate faithful bench bench-gpu gpu-check gpu-data fashion-mnist clean-venv

# Train every cell into $(RESULTS), report and check there, and end with the comparison against the
# committed results: its summary line is the answer (the whole comparison goes to $(RESULTS)/COMPARE.txt).
# The default seeds are a subset of the committed ones (each registry file's `seeds`); the report judges
# them together with the committed seeds not re-made (`--add-seeds-from`), so its verdicts use every seed.
# The status says whether the runs and the thresholds passed (2: bad input); a "different" verdict is
# printed, not failed: `make compare` is the gate (exit 1 on a difference).
all: setup
	@status=0; \
	$(HARNESS) run $(RUN_ARGS) --costs-from $(COMMITTED) || status=$$?; \
	if [ $$status -eq 2 ]; then exit 2; fi; \
	added=; if [ "$(abspath $(RESULTS))" != "$(abspath $(COMMITTED))" ] && [ -f $(COMMITTED)/runs.csv ]; then \
	  added="--add-seeds-from $(COMMITTED)"; fi; \
	$(HARNESS) report --results-dir $(RESULTS) $$added || exit $$?; \
	$(HARNESS) check --results-dir $(RESULTS) $(CHECKED) || status=1; \
	if [ "$(abspath $(RESULTS))" != "$(abspath $(COMMITTED))" ]; then \
	  echo "Compared with the committed results in $(COMMITTED)/:"; \
	  $(HARNESS) compare $(COMMITTED) $(RESULTS) --out $(RESULTS)/COMPARE.txt || true; \
	fi; \
	exit $$status

# Re-make the committed results: every experiment on the CPU at its default seeds and the Fashion-MNIST
# variants at seeds 0-4, trained into $(REMAKE) (resumed where interrupted), then their rows replace those
# in results/ and the report is drawn again. After a change that alters what trains (a recipe's hash, a new
# column); CUDA rows come afterwards from the GPU check (docs/benchmarks.md#gpu-check).
results: setup
	$(HARNESS) run all --devices cpu --engine $(ENGINE) --results-dir $(REMAKE) --jobs $(JOBS)
	$(HARNESS) run all --dataset fashion-mnist --seeds 0-4 --devices cpu --engine $(ENGINE) --results-dir $(REMAKE) --jobs $(JOBS)
	$(HARNESS) check --results-dir $(REMAKE)
	cp $(REMAKE)/runs.csv $(REMAKE)/epochs.csv $(REMAKE)/trace.csv $(COMMITTED)/
	$(HARNESS) report --results-dir $(COMMITTED)
	$(HARNESS) check --results-dir $(COMMITTED)

# The venv is rebuilt when the pinned requirements change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Optional: Ray, for `harness run --executor ray` (a local Ray instance or a cluster).
$(VENV)/.installed-ray: $(VENV)/.installed requirements-ray.txt
	$(VENV)/bin/pip install --quiet -r requirements-ray.txt
	touch $@

setup-ray: $(VENV)/.installed-ray

# Optional: MLflow and TensorBoard, for `harness export` (and Selenium, for its browser test).
$(VENV)/.installed-mlflow: $(VENV)/.installed requirements-mlflow.txt
	$(VENV)/bin/pip install --quiet -r requirements-mlflow.txt -c requirements.txt
	touch $@

setup-mlflow: $(VENV)/.installed-mlflow

run: setup
	$(HARNESS) run $(RUN_ARGS)

report: setup
	$(HARNESS) report --results-dir $(RESULTS)

check: setup
	$(HARNESS) check --results-dir $(RESULTS)

compare: setup
	$(HARNESS) compare $(COMMITTED) $(RESULTS)

test: setup
	$(PY) -m pytest -q

# The inner loop: every test but those marked slow (MNIST training, processes of their own, simulations, MLflow), under two minutes.
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check harness tests scripts

# The tutorials' own code against reference and fast, at each recipe's full length (`make test` runs the same
# comparisons shortened): one line per experiment as it finishes, then a table. The 50-epoch recipes are the
# long ones. `make faithful EXPERIMENTS="iris-ce mnist-mlp" SEED=3`.
SEED ?= 0
faithful: setup
	$(PY) -m tests.faithful $(filter-out all,$(EXPERIMENTS)) --seed $(SEED)

# Fashion-MNIST (for the <id>@fashion-mnist variants) from Debian's package, installed where apt-get is
# at hand as root; otherwise how to get it. Not part of setup: `make all` runs MNIST only, and the
# Fashion-MNIST tests skip where the data cannot be had.
fashion-mnist:
	@if [ -f $(FASHION_MNIST_DIR)/t10k-labels-idx1-ubyte.gz ]; then \
	  echo "Fashion-MNIST is installed in $(FASHION_MNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "Fashion-MNIST is not installed. Either install Debian's package as root"; \
	  echo "  (apt-get install dataset-fashion-mnist: files in $(FASHION_MNIST_DIR)),"; \
	  echo "or pass --data-mirror DIR naming a directory with its four *.gz files, or go online:"; \
	  echo "torchvision downloads it on first use."; \
	  exit 1; \
	fi

# Mutation testing, never part of `make test` (docs/testing.md): one-line mutations of the verdict machinery,
# each of which some test must catch. MUTANTS narrows the run to one or more patterns:
# MUTANTS="'harness.bounds.*' 'harness.check.*'". Offline, set HARNESS_DATA_MIRROR so that the MNIST tests run; every
# mutant's tests (each a pytest session of its own) share one data directory instead of copying MNIST again.
MUTANTS ?=
mutate: setup
	$(VENV)/bin/pip install -q mutmut==3.8.1
	rm -rf mutants && mkdir -p build/test-data
	OMP_NUM_THREADS=1 HARNESS_TEST_DATA_DIR=$${HARNESS_TEST_DATA_DIR:-$(abspath build/test-data)} \
	  $(VENV)/bin/mutmut run $(MUTANTS) > build/mutmut.log 2>&1 || { tail -c 2000 build/mutmut.log; exit 1; }
	$(VENV)/bin/mutmut results --all true > build/mutants.txt
	grep -v -e ': killed$$' -e ': not checked$$' build/mutants.txt | tee build/mutants-left.txt
	@echo "$$(grep -c ': killed$$' build/mutants.txt) of $$(grep -vc ': not checked$$' build/mutants.txt) mutants run were killed; the others are in build/mutants-left.txt"

# Benchmarks, never part of `make test`: training throughput per experiment x engine (docs/benchmarks.md).
BENCH_EXPERIMENTS ?= mnist-mlp mnist-cnn iris-ce
bench: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cpu --engines reference,fast,multiseed --out $(COMMITTED)/bench.csv
	$(PY) -m pytest -q -p no:cacheprovider tests/bench_steps.py --benchmark-only

bench-gpu: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cuda --engines reference,fast,multiseed --seeds 64 --out $(COMMITTED)/bench_gpu.csv

# The GPU check (docs/benchmarks.md#gpu-check): every CUDA path tested and measured, each step time-boxed; where there is
# no CUDA, a dry run of its plumbing on the CPU. No setup: any Python with the harness's requirements
# (GPU_PYTHON=python3 on a machine where nothing can be installed).
GPU_PYTHON  ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_OUT     ?= build/gpu-check/out
GPU_RESULTS ?=
GPU_ARGS    ?=
GPU_DATA    := data/mnist-mirror

gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py --out $(GPU_OUT) --bench-experiments "$(BENCH_EXPERIMENTS)" \
	  $(if $(GPU_RESULTS),--results $(GPU_RESULTS)) $(if $(HARNESS_DATA_MIRROR),--data-mirror $(HARNESS_DATA_MIRROR)) $(GPU_ARGS)

# The four MNIST *.gz files, copied where the GPU check finds them (data/ is not under version control).
gpu-data:
	@test -n "$(HARNESS_DATA_MIRROR)" || { echo "gpu-data: set HARNESS_DATA_MIRROR=DIR, a directory with the four MNIST *.gz files"; exit 2; }
	mkdir -p $(GPU_DATA)
	cp -f $(HARNESS_DATA_MIRROR)/train-images-idx3-ubyte.gz $(HARNESS_DATA_MIRROR)/train-labels-idx1-ubyte.gz \
	  $(HARNESS_DATA_MIRROR)/t10k-images-idx3-ubyte.gz $(HARNESS_DATA_MIRROR)/t10k-labels-idx1-ubyte.gz $(GPU_DATA)/

clean-venv:
	rm -rf $(VENV)
