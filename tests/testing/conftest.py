"""Shared helpers for the fake Spotify tests: a settable clock and spotipy clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
import spotipy

from runner.testing import FakeSpotify, ManualClock
from runner.testing.harness import ALL_SCOPES

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
        access = token or fake.issue_access_token(user, scopes)
        # A plain session: spotipy mounts no retry adapter on it, so 429/5xx reach the caller
        # with their headers (its own adapter turns them into "Max Retries" even at retries=0).
        session = requests.Session()
        sessions.append(session)
        sp = spotipy.Spotify(auth=access, requests_session=session)
        sp.prefix = fake.api_url + "/"
        return sp

    sessions: list[requests.Session] = []
    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def sp(client_for: ClientFactory) -> spotipy.Spotify:
    return client_for()


JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # a minimal JFIF


@dataclass
class World:
    """A fake with something of everything, for alice, with every scope."""

    fake: FakeSpotify
    token: str
    tracks: list[str]
    album: str
    album_tracks: list[str]
    artist: str
    show: str
    episodes: list[str]
    audiobook: str
    chapters: list[str]
    playlist: str
    device: str
    other_device: str

    @staticmethod
    def id(uri: str) -> str:
        return uri.rsplit(":", 1)[1]


@pytest.fixture
def world(fake: FakeSpotify, clock: ManualClock) -> World:
    tracks = fake.make_tracks(5)
    album = fake.add_album("Kind of Blue", ["Miles Davis"], ["So What", "Blue in Green"])
    album_tracks = fake.album_tracks(album)
    artist = fake.add_artist("Miles Davis")
    show = fake.add_show("Night Talk", episodes=3)
    episodes = fake.show_episodes(show)
    audiobook = fake.add_audiobook("The Long Book", authors=["A. Writer"], chapters=3)
    chapters = fake.audiobook_chapters(audiobook)
    playlist = fake.add_playlist(name="Mix", uris=[*tracks[:3], episodes[0]])
    fake.set_playlist_cover(playlist, JPEG)
    fake.save_to_library("alice", [tracks[0], album, show, episodes[1], audiobook, artist])
    fake.set_top_tracks("alice", "medium_term", tracks[:2])
    fake.set_top_artists("alice", "medium_term", [artist])
    fake.add_play("alice", tracks[1], played_at=clock.now - 60)
    device = fake.add_device("alice", "Laptop", "Computer", active=True)
    other = fake.add_device("alice", "Kitchen", "Speaker")
    fake.start_playback("alice", album_tracks, context_uri=album)
    token = fake.issue_access_token("alice", ALL_SCOPES)
    return World(
        fake, token, tracks, album, album_tracks, artist, show, episodes, audiobook, chapters,
        playlist, device, other,
    )  # fmt: skip
