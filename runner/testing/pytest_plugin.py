"""pytest plugin (entry point `spotify_runner`): fixtures around the embedded fake Spotify.

Fixtures:
    fake_spotify: a started `FakeSpotify` with its default app and user "alice"; stopped after.
    fake_spotify_client: a spotipy client for "alice" against that fake, holding every scope
        Spotify knows, on a plain `requests.Session` (no retries: errors surface as sent).
    fake_spotify_app_client: a spotipy client with the app's own client-credentials token:
        catalog reads (albums, artists, tracks, shows, episodes, audiobooks, search) work,
        anything about a user answers 401, as Spotify does.
    job_harness: a `JobHarness` on `fake_spotify`: runs a job module as the daemon does.
    fake_spotify_client_for: a factory, `fake_spotify_client_for("bob")`: a client like
        `fake_spotify_client` for any user (added to the fake when missing), each with their
        own library and playlists.
    accounts_harness: a factory, `accounts_harness({"alice": "alice", "bob": "bob"})`: a
        `JobHarness` whose config has those accounts (account name -> fake user; missing
        users are added); run a job as one with `harness.run(job, options, account="bob")`.
    feed_server: a started `FeedServer` (`serve(path, body, content_type)`, ETag and
        Last-Modified, gzip): feeds and pages for the playlist updater's `feed` source or yours.
    fake_spinitron, fake_lastfm, fake_listenbrainz: started fakes of those services, as their
        APIs document them; point a source's `api_url` at their `api_url`.

What the fake serves: every operation of Spotify's OpenAPI description that is not
deprecated, with its limits (`limit` 50, search 10, artist albums 10, `/me/library` 40 URIs,
playlist writes 100 URIs, covers 256 KB), its scopes and its response shapes; deprecated
operations answer 403 Forbidden, as for development-mode apps. Set it up with its helpers
(each returns what a test needs next, URIs for catalog items):

    catalog:   make_tracks(n), add_track(name, artists, album), add_album(name, artists,
               tracks), album_tracks(uri), add_artist(name), add_show(name, episodes=3),
               show_episodes(uri), add_episode(show, name), add_audiobook(name, chapters=3),
               audiobook_chapters(uri)
    users:     add_user(id, name, country, product), set_email(id, email), grant(...) and
               issue_access_token(user, scopes) for tokens
    playlists: add_playlist(owner, name, uris, public, collaborative) (tracks or episodes),
               add_collaborator, delete_playlist, add_algorithmic_playlist,
               playlist_uris/details/snapshot, set_playlist_cover(id, jpeg), playlist_cover(id)
    library:   save_tracks, save_to_library(user, uris) (albums, shows, episodes, audiobooks,
               followed artists, users, playlists), remove_from_library, in_library,
               library_uris(user, kind), set_top_tracks/set_top_artists, add_play
    player:    add_device(user, name, active=True), remove_device, start_playback(user,
               uris, context_uri), playback(user) (device, item, progress_ms, queue, ...);
               the position moves with the fake's clock (`FakeSpotify(clock=ManualClock())`)
    faults:    inject(Fault(method, path, status=429, retry_after=...)); a 429 carries
               Retry-After (1 s unless said, rounded up) except QUOTA_EXCEEDED; latency, drop
    log:       requests, count(method, path), writes(), clear_requests()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import requests
import spotipy

from runner.testing.clients import app_client, user_client
from runner.testing.fake import FakeSpotify
from runner.testing.harness import ALL_SCOPES, JobHarness
from runner.testing.lastfm import FakeLastfm
from runner.testing.listenbrainz import FakeListenBrainz
from runner.testing.service import FeedServer
from runner.testing.spinitron import FakeSpinitron


@pytest.fixture
def fake_spotify() -> Iterator[FakeSpotify]:
    """A started fake Spotify on 127.0.0.1 (one app, one user "alice"), stopped afterwards."""
    with FakeSpotify() as fake:
        yield fake


def _ensure_user(fake: FakeSpotify, user_id: str) -> None:
    if user_id not in fake.users:
        fake.add_user(user_id, user_id.capitalize())


@pytest.fixture
def fake_spotify_client_for(
    fake_spotify: FakeSpotify,
) -> Iterator[Callable[[str], spotipy.Spotify]]:
    """A factory of spotipy clients on `fake_spotify`, one per user, with every project scope."""
    sessions: list[requests.Session] = []

    def client_for(user_id: str) -> spotipy.Spotify:
        _ensure_user(fake_spotify, user_id)
        token = fake_spotify.issue_access_token(user_id, ALL_SCOPES, lifetime=10 * 365 * 86400.0)
        session = requests.Session()
        sessions.append(session)
        return user_client(fake_spotify, token, session)

    try:
        yield client_for
    finally:
        for session in sessions:
            session.close()


@pytest.fixture
def fake_spotify_client(
    fake_spotify_client_for: Callable[[str], spotipy.Spotify],
) -> spotipy.Spotify:
    """A spotipy client authenticated as "alice" on `fake_spotify`, with every scope."""
    return fake_spotify_client_for("alice")


@pytest.fixture
def accounts_harness(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> Iterator[Callable[[Mapping[str, str]], JobHarness]]:
    """A factory of `JobHarness`es with several accounts on `fake_spotify`."""
    made: list[JobHarness] = []
    jobs_dir = Path("my_jobs") if Path("my_jobs").is_dir() else None

    def harness(accounts: Mapping[str, str]) -> JobHarness:
        for user_id in accounts.values():
            _ensure_user(fake_spotify, user_id)
        state_dir = tmp_path / f"accounts-state-{len(made)}"
        made.append(JobHarness(fake_spotify, state_dir, jobs_dir=jobs_dir, accounts=accounts))
        return made[-1]

    try:
        yield harness
    finally:
        for each in made:
            each.close()


@pytest.fixture
def fake_spotify_app_client(fake_spotify: FakeSpotify) -> Iterator[spotipy.Spotify]:
    """A spotipy client on the app's client-credentials token (no user, no scopes)."""
    with requests.Session() as session:
        yield app_client(fake_spotify, session)


@pytest.fixture
def job_harness(fake_spotify: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    """Runs job modules exactly as the daemon does (jobs_dir: `./my_jobs` when it exists)."""
    jobs_dir = Path("my_jobs") if Path("my_jobs").is_dir() else None
    with JobHarness(fake_spotify, tmp_path / "state", jobs_dir=jobs_dir) as harness:
        yield harness


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started `FeedServer` on 127.0.0.1, stopped afterwards."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def fake_spinitron() -> Iterator[FakeSpinitron]:
    """A started fake Spinitron (API v2 spins), stopped afterwards."""
    with FakeSpinitron() as server:
        yield server


@pytest.fixture
def fake_lastfm() -> Iterator[FakeLastfm]:
    """A started fake Last.fm (user methods), stopped afterwards."""
    with FakeLastfm() as server:
        yield server


@pytest.fixture
def fake_listenbrainz() -> Iterator[FakeListenBrainz]:
    """A started fake ListenBrainz (listens and statistics), stopped afterwards."""
    with FakeListenBrainz() as server:
        yield server
