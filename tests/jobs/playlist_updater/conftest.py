"""Fixtures shared by the playlist updater's tests: a fake Spotify and a harness on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as server:
        yield server


@pytest.fixture
def harness(fake: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    with JobHarness(fake, tmp_path / "state") as h:
        yield h
