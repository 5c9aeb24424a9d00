"""Shared helpers for the fake Spotify tests: a settable clock and spotipy clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
import spotipy
from fake_world import World, build_world

from runner.testing import FakeSpotify, ManualClock
from runner.testing.clients import user_client

START = 1_790_000_000.0  # 2026-09-21, a fixed "now" so tests compute instead of sleeping


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSpotify]:
    with FakeSpotify(clock=clock) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


ClientFactory = Callable[..., spotipy.Spotify]


@pytest.fixture
def client_for(fake: FakeSpotify) -> Iterator[ClientFactory]:
    """Makes spotipy clients on `fake` for a user and scopes; closes their sessions after."""

    def make(
        user: str = "alice",
        scopes: tuple[str, ...] = (
            "playlist-read-private",
            "playlist-modify-private",
            "playlist-modify-public",
            "user-library-read",
            "user-read-recently-played",
            "user-top-read",
        ),
        token: str | None = None,
    ) -> spotipy.Spotify:
        session = requests.Session()
        sessions.append(session)
        return user_client(fake, token or fake.issue_access_token(user, scopes), session)

    sessions: list[requests.Session] = []
    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def sp(client_for: ClientFactory) -> spotipy.Spotify:
    return client_for()


@pytest.fixture
def world(fake: FakeSpotify, clock: ManualClock) -> World:
    return build_world(fake, clock)
