# Two commands are the whole set-up: `make all` (reproduce every result) and `make test`.
PYTHON   ?= python3.11
VENV     ?= .venv
PY       := $(VENV)/bin/python
HARNESS  := $(PY) -m harness
SEEDS    ?= 0-4
DEVICES  ?= auto
ENGINE   ?= fast
RESULTS  ?= results
EXPERIMENTS ?= all

.PHONY: all setup run report check test bench bench-gpu clean-venv

all: setup run report check

# The venv is rebuilt when the pinned requirements change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

run: setup
	$(HARNESS) run $(EXPERIMENTS) --seeds $(SEEDS) --devices $(DEVICES) --engine $(ENGINE) --results-dir $(RESULTS)

report: setup
	$(HARNESS) report --results-dir $(RESULTS)

check: setup
	$(HARNESS) check --results-dir $(RESULTS)

test: setup
	$(PY) -m pytest -q

# Benchmarks, never part of `make test`: training throughput per experiment x engine (see README).
BENCH_EXPERIMENTS ?= mnist-mlp mnist-cnn iris-ce
bench: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cpu --engines reference,fast,multiseed --out $(RESULTS)/bench.csv
	$(PY) -m pytest -q -p no:cacheprovider tests/bench_steps.py --benchmark-only

bench-gpu: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cuda --engines reference,fast,multiseed --seeds 64 --out $(RESULTS)/bench_gpu.csv

clean-venv:
	rm -rf $(VENV)
