# Two commands: `make run` (the whole system on the built-in world) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DURATION ?= 0
CONFIG ?= config/ami.yaml
ARGS ?=

.PHONY: setup run test test-all bench chaos clean

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ami_launch --config $(CONFIG) --duration $(DURATION) $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-all: $(STAMP)
	$(PY) -m pytest -m "slow or not slow"

bench: $(STAMP)
	$(PY) -m bench.run_all

chaos: $(STAMP)
	$(PY) -m bench.chaos --minutes 30

clean:
	rm -rf $(VENV) build *.egg-info
