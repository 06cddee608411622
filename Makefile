# Set-up is part of every target: `make run` and `make test` work on a fresh clone, and
# install exactly the versions in the lock files (requirements*.txt, with hashes).
# `make lock` refreshes them after a change to pyproject.toml; `make lock UPGRADE=1`
# moves every pin to the newest release the bounds in pyproject.toml allow.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
PIP_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes --no-deps
EDITABLE := $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

.PHONY: run test lint format clean bench lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)

$(VENV)/.installed-run: requirements.txt pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements.txt
	$(EDITABLE)
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements-dev.txt
	$(EDITABLE)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/tailcast serve $(ARGS)

$(VENV)/.installed-bench: requirements-bench.txt pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements-bench.txt
	$(EDITABLE)
	touch $@ $(VENV)/.installed-run

# Benchmarks (docs/BENCHMARKS.md): COMPARE=nchan adds nginx + Nchan, QUICK=1 is a smoke
# check (1 run, short steps), PROFILE=1 samples the server with py-spy; BENCH_ARGS passes
# more flags (python -m bench --help).
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench $(if $(COMPARE),--compare $(COMPARE)) \
		$(if $(filter-out 0,$(QUICK)),--quick) $(if $(filter-out 0,$(PROFILE)),--profile) \
		--command "make bench$(if $(COMPARE), COMPARE=$(COMPARE))$(if $(filter-out 0,$(QUICK)), QUICK=1)$(if $(filter-out 0,$(PROFILE)), PROFILE=1)$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" \
		$(BENCH_ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The dev and bench locks are constrained by the run lock: one version of each package.
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --build-deps-for editable \
	$(if $(filter-out 0,$(UPGRADE)),--upgrade)
lock: $(VENV)/.installed-dev
	$(LOCK) --extra server -o requirements.txt pyproject.toml
	$(LOCK) -c requirements.txt --extra server --extra dev -o requirements-dev.txt pyproject.toml
	$(LOCK) -c requirements.txt --extra server --extra bench -o requirements-bench.txt pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
