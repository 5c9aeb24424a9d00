"""Fixtures for the daemon and CLI tests: a started fake Spotify and a `World` around it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_world import World
from receivers import Receiver

from runner.testing import FakeSpotify


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    """A started fake Spotify, stopped after the test."""
    with FakeSpotify() as started:
        yield started


@pytest.fixture
def world(fake: FakeSpotify, tmp_path: Path) -> Iterator[World]:
    """A `World`; its daemons are killed and its output checked for secrets afterwards."""
    w = World(fake, tmp_path)
    try:
        yield w
    finally:
        w.close()
    w.assert_no_secrets()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver on 127.0.0.1."""
    started = Receiver()
    try:
        yield started
    finally:
        started.close()


_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the status page's screenshots went, so a person can look at them.

    Read from the folder rather than from `browser_world.SHOTS`: under xdist the browser tests
    run in a worker process, and this summary is written by the controlling one.
    """
    from browser_world import ARTIFACTS

    shots = sorted(
        path
        for path in (ARTIFACTS.glob("*.png") if ARTIFACTS.is_dir() else ())
        if path.stat().st_mtime >= _SESSION_STARTED - 1
    )
    if shots:
        terminalreporter.section("status page screenshots")
        for path in shots:
            terminalreporter.write_line(str(path))
