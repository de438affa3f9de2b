# Two entry points, both safe on a fresh machine: each creates .venv and installs
# everything it needs first (the stamp file makes the second run skip the install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install quickstart test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The main job: run the quickstart study (small, fast, no download needed).
quickstart: install
	$(BIN)/autosize data list
	$(BIN)/autosize run studies/quickstart.toml

test: install
	$(BIN)/ruff check autosize tests benchmarks
	$(BIN)/ruff format --check autosize tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check autosize tests benchmarks
	$(BIN)/ruff format --check autosize tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff format autosize tests benchmarks
	$(BIN)/ruff check --fix autosize tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
