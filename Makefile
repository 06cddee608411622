# Set-up is part of every target: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/tailcast serve $(ARGS)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
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

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
