"""pytest plugin (entry point `spotify_runner`): fixtures around the embedded fake Spotify.

Fixtures:
    fake_spotify: a started `FakeSpotify` with its default app and user "alice"; stopped after.
    job_harness: a `JobHarness` on `fake_spotify`: runs a job module as the daemon does.
    fake_spotify_client: a spotipy client for "alice" against that fake, holding every scope
        the project uses, on a plain `requests.Session` (no retries: errors surface as sent).
    fake_spotify_client_for: a factory, `fake_spotify_client_for("bob")`: the same for any
        user (added to the fake when missing), each with their own library and playlists.
    accounts_harness: a factory, `accounts_harness({"alice": "alice", "bob": "bob"})`: a
        `JobHarness` whose config has those accounts (account name -> fake user; missing
        users are added); run a job as one with `harness.run(job, options, account="bob")`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import requests
import spotipy

from runner.testing.fake import FakeSpotify
from runner.testing.harness import ALL_SCOPES, JobHarness


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
        # A plain session: spotipy mounts its retry adapter only on sessions it builds, and
        # that adapter hides 429/5xx behind "Max Retries"; this way tests see Spotify's real
        # answers.
        session = requests.Session()
        sessions.append(session)
        client = spotipy.Spotify(auth=token, requests_session=session)
        client.prefix = fake_spotify.api_url + "/"
        return client

    try:
        yield client_for
    finally:
        for session in sessions:
            session.close()


@pytest.fixture
def fake_spotify_client(
    fake_spotify_client_for: Callable[[str], spotipy.Spotify],
) -> spotipy.Spotify:
    """A spotipy client authenticated as "alice" on `fake_spotify`, with every project scope."""
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
def job_harness(fake_spotify: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    """Runs job modules exactly as the daemon does (jobs_dir: `./my_jobs` when it exists)."""
    jobs_dir = Path("my_jobs") if Path("my_jobs").is_dir() else None
    with JobHarness(fake_spotify, tmp_path / "state", jobs_dir=jobs_dir) as harness:
        yield harness
