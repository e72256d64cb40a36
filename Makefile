# Two commands for a newcomer: `make demo` runs the default (micro) benchmark, `make test` the tests.
# Each creates the virtual environment on first use (Python 3.11, packages from requirements.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test clean-results

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) run_benchmark.py $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q tests $(ARGS)

clean-results:
	rm -rf results/micro
