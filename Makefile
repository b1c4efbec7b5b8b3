# Quick start (README): `make demo` and `make test` each set up everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
STUDY  ?= studies/thoracic-losses.toml

.PHONY: demo test stress setup setup-dev lint format clean screenshot

demo: setup
	$(BIN)/tricklab run $(STUDY)

# The README's picture of report.html (1280 px, the top of the page) after the demo study.
screenshot: demo
	$(BIN)/python scripts/screenshot.py runs/thoracic-losses/report.html docs/report.png

# The house plan's layers (import-linter, pyproject.toml) and types (mypy) first: seconds.
test: setup-dev
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

# Longer robustness runs (README, "The run store"): kill -9 a study 20 times per engine, stop
# workers past their lease and damage finished runs at random moments, kill -9 a search.
stress: setup-dev
	$(BIN)/python -m pytest -n 2 -m stress $(PYTEST_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.setup: pyproject.toml constraints.txt | $(BIN)/python
	scripts/system-deps.sh demo
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

$(VENV)/.setup-dev: $(VENV)/.setup
	scripts/system-deps.sh test
	$(PIP) -e '.[dev,tensorflow,ray,search,mlflow]'
	touch $@

setup: $(VENV)/.setup
setup-dev: $(VENV)/.setup-dev

lint: setup-dev
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

format: setup-dev
	$(BIN)/ruff format src tests examples benchmarks
	$(BIN)/ruff check --fix src tests examples benchmarks

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info .pytest_cache .ruff_cache
