# Two commands for a newcomer: `make demo` runs the default (micro) benchmark, `make test` the tests.
# Each creates the virtual environment on first use (Python 3.11, packages from requirements.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-numerics clean-results browser

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) run_benchmark.py $(ARGS)

# Two pytest-xdist workers, one per core (tests/conftest.py: one torch thread each); --dist loadgroup keeps
# each file marked with an xdist_group on one worker, so its module fixture is made once;
# --no-loadscope-reorder hands the tests out in collection order, costliest files first (conftest.py).
TEST_WORKERS ?= 2
test: $(VENV)/.installed browser
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(ARGS)

# The headless browser that tests/evaluation/reporting/test_report_html.py opens report.html in: Debian's (or Ubuntu's)
# Chromium package, driven by Playwright's Python package (requirements.txt; Playwright's own browser
# download is never used). Nothing to do where a Chromium is already installed; apt-get needs root
# (or sudo). CFBENCH_CHROMIUM=/path/to/chromium points the test at another one.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CFBENCH_CHROMIUM" ] || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; }

# The tests whose floats depend on the CPU's kernels (losses and distances against hand computations,
# training, probes, records compared bit for bit), under two emulated numeric paths of
# benchmark/numerics.py: an AVX2-only machine and one with nothing beyond SSE4. A tolerance that only
# holds on this machine's kernels fails here. The two paths run at once, one core each, each with its
# own empty cache (a cache never hands one path's floats to another); about 3 minutes on 2 cores.
NUMERICS_PATHS ?= avx2 generic
# The tests marked `numerics` (pytest.ini; the marker sits on each such test or file).
NUMERICS_MARK ?= numerics

test-numerics: $(VENV)/.installed
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; start=$$(date +%s); \
	for path in $(NUMERICS_PATHS); do \
	  mkdir "$$tmp/cache-$$path"; \
	  ( CFBENCH_CACHE="$$tmp/cache-$$path" $(PY) -m benchmark.numerics --path $$path -- \
	      $(PY) -m pytest -q -p no:cacheprovider tests -m "$(NUMERICS_MARK)" $(ARGS) \
	      > "$$tmp/$$path.log" 2>&1; echo $$? > "$$tmp/$$path.rc" ) & \
	done; wait; status=0; \
	for path in $(NUMERICS_PATHS); do \
	  echo "== numeric path $$path ($$($(PY) -m benchmark.numerics --path $$path -- env | grep -E '^(ATEN|ONEDNN|MKL|OPENBLAS)_' | tr '\n' ' '))"; \
	  cat "$$tmp/$$path.log"; [ "$$(cat "$$tmp/$$path.rc")" = 0 ] || status=1; \
	done; \
	echo "test-numerics: $$([ $$status = 0 ] && echo passed || echo FAILED) on $(NUMERICS_PATHS) in $$(( $$(date +%s) - start )) s"; \
	exit $$status

clean-results:
	rm -rf results/micro
