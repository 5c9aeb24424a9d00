# The README's commands. Each creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo demo-ha test lint bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/spotify-runner demo

# Two daemons on the local PostgreSQL; the active one is killed and the other takes over.
demo-ha: $(STAMP)
	$(BIN)/python -m runner.demo_ha

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy runner jobs

# Most of the suite waits on real processes and real time rather than on the CPU, so it runs on
# more workers than CI's 2 cores. Each file runs whole, in order, on one worker (--dist loadfile:
# module fixtures such as the systemd boot test's machine are made once), files in the order they
# are collected (--no-loadscope-reorder), so the longest, the boot test, starts first.
# (Not --dist loadgroup: xdist 3.8 cannot tag test ids under pytest 9, so its groups split.)
TEST_WORKERS ?= 4

test: lint chromium
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The status page's browser tests drive Debian's Chromium through Playwright (never
# `playwright install`). As root, install the package when it is missing; otherwise those
# tests say what is missing (and fail under CI, where they must run).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/bench_ready.py
	$(BIN)/python bench/bench_planner.py
	$(BIN)/python bench/bench_playlist_updater.py
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_feed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
