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
DATASET  ?=
JOBS     ?= $(shell nproc 2>/dev/null || echo 1)

FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: all setup setup-ray run report check test faithful bench bench-gpu fashion-mnist clean-venv

all: setup run report check

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

run: setup
	$(HARNESS) run $(EXPERIMENTS) --seeds $(SEEDS) --devices $(DEVICES) --engine $(ENGINE) --results-dir $(RESULTS) --jobs $(JOBS) \
	  $(if $(DATASET),--dataset $(DATASET))

report: setup
	$(HARNESS) report --results-dir $(RESULTS)

check: setup
	$(HARNESS) check --results-dir $(RESULTS)

test: setup
	$(PY) -m pytest -q

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

# Benchmarks, never part of `make test`: training throughput per experiment x engine (see README).
BENCH_EXPERIMENTS ?= mnist-mlp mnist-cnn iris-ce
bench: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cpu --engines reference,fast,multiseed --out $(RESULTS)/bench.csv
	$(PY) -m pytest -q -p no:cacheprovider tests/bench_steps.py --benchmark-only

bench-gpu: setup
	$(HARNESS) bench $(BENCH_EXPERIMENTS) --devices cuda --engines reference,fast,multiseed --seeds 64 --out $(RESULTS)/bench_gpu.csv

clean-venv:
	rm -rf $(VENV)
