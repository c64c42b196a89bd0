# Two commands for a new user: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# The newest Airflow is whatever pip picks for .venv; these are the older supported lines, each
# tested in a virtualenv of its own (the newest patch of each on PyPI).
AIRFLOW_31 := 3.1.8
AIRFLOW_32 := 3.2.2
# Airflow 3.2.2 sets no upper bound on FastAPI, Cadwyn or svcs, and their newer releases break its
# execution API (svcs 26 breaks the in-process one that dag.test() uses).
# Airflow 3.1.8 sets an attribute on cryptography's MultiFernet, which cryptography 51 (a Rust class)
# refuses: with a Fernet key (unit test mode has one) no connection can be built.
PINS_31 := 'cryptography<51'
PINS_32 := 'fastapi<0.137' 'cadwyn<8' 'svcs<26'
COMPAT_VENVS := .venv-airflow31 .venv-airflow32

# The suite runs on pytest-xdist workers, one per core (`make test PYTEST_WORKERS=1` for one);
# tests/parallel.py says how the tests are shared out between them. PYTEST_ARGS is passed on, e.g.
# `make check PYTEST_ARGS='-k trigger'`.
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=
PYTEST := pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

.PHONY: demo test check static lint types unit docs clean test-compat test-airflow31 test-airflow32 test-matrix

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m marketo_provider.testing.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/$(PYTEST) tests/unit

docs: $(STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

# Lint, types and the docs build side by side (each prints its output when it is done).
static: $(STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint types docs

# Everything: lint, types, docs, then every test (unit, integration, e2e, system) on every core.
test: static
	$(BIN)/$(PYTEST) --durations=15

# The edit-test loop: lint, types, then the unit and integration tests (no DAG runs, no Airflow
# processes). A few minutes at most; `make test` before a change is done.
check: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint types
	$(BIN)/$(PYTEST) tests/unit tests/integration

clean:
	rm -rf $(VENV) $(COMPAT_VENVS) .mypy_cache .ruff_cache .pytest_cache build dist docs/_build demo-output

# The same suite against older Airflow lines: 3.1 (the oldest supported) and 3.2.
$(COMPAT_VENVS:%=%/.installed-stamp): .venv-airflow%/.installed-stamp: pyproject.toml Makefile
	@test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet --upgrade pip
	$(@D)/bin/python -m pip install --quiet 'apache-airflow==$(AIRFLOW_$*)' $(PINS_$*) -e '.[dev]'
	@touch $@

test-airflow31 test-airflow32: test-airflow%: .venv-airflow%/.installed-stamp
	.venv-airflow$*/bin/$(PYTEST) --durations=15

test-compat: test-airflow31

# What CI runs: the newest Airflow with lint, types and docs, then the older lines.
test-matrix: test test-airflow31 test-airflow32
