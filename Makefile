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

.PHONY: all setup setup-ray run report check test clean-venv

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
	$(HARNESS) run $(EXPERIMENTS) --seeds $(SEEDS) --devices $(DEVICES) --engine $(ENGINE) --results-dir $(RESULTS)

report: setup
	$(HARNESS) report --results-dir $(RESULTS)

check: setup
	$(HARNESS) check --results-dir $(RESULTS)

test: setup
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
