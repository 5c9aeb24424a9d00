"""Fixtures for the daemon and CLI tests: a started fake Spotify and a `World` around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_world import World

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the status page's screenshots went, so a person can look at them."""
    from browser_world import SHOTS

    if SHOTS:
        terminalreporter.section("status page screenshots")
        for path in SHOTS:
            terminalreporter.write_line(str(path))
