"""Fixtures for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis times each example (200 ms by default) and fails a slow one: on a machine busy with
# parallel workers that is a timing failure, not a wrong answer. Speed belongs in the
# benchmarks; here every example still has to hold.
settings.register_profile(
    "spotify-runner", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("spotify-runner")

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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A scratch database on the machine's real PostgreSQL for this test run, dropped after it.

    Skips (with the exact reason) only when the server cannot be reached.
    """
    from runner.testing.postgres import scratch_database, unreachable_reason

    reason = unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    with scratch_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The run's scratch database, emptied for this test."""
    from runner.testing.postgres import reset

    reset(postgres_database)
    return postgres_database
