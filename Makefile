# The README's commands. Each creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/spotify-runner demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy runner jobs

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_ready.py
	$(BIN)/python bench/bench_planner.py
	$(BIN)/python bench/bench_playlist_updater.py
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_feed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
