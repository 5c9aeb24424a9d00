"""Fixtures for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# Loggers whose levels `runner.logs.setup_logging` sets.
_TOUCHED = ("", "spotipy", "urllib3", "requests", "apscheduler")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undoes what an in-process CLI run did to global logging, so tests stay independent."""
    loggers = [logging.getLogger(name) for name in _TOUCHED]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
