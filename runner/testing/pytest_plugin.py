"""pytest plugin (entry point `spotify_runner`): fixtures around the embedded fake Spotify.

Fixtures:
    fake_spotify: a started `FakeSpotify` with its default app and user "alice"; stopped after.
    job_harness: a `JobHarness` on `fake_spotify`: runs a job module as the daemon does.
    fake_spotify_client: a spotipy client for "alice" against that fake, holding every scope
        the project uses, on a plain `requests.Session` (no retries: errors surface as sent).
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def fake_spotify_client(fake_spotify: FakeSpotify) -> Iterator[spotipy.Spotify]:
    """A spotipy client authenticated as "alice" on `fake_spotify`, with every project scope."""
    token = fake_spotify.issue_access_token("alice", ALL_SCOPES, lifetime=10 * 365 * 86400.0)
    # A plain session: spotipy mounts its retry adapter only on sessions it builds, and that
    # adapter hides 429/5xx behind "Max Retries"; this way tests see Spotify's real answers.
    with requests.Session() as session:
        client = spotipy.Spotify(auth=token, requests_session=session)
        client.prefix = fake_spotify.api_url + "/"
        yield client


@pytest.fixture
def job_harness(fake_spotify: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    """Runs job modules exactly as the daemon does (jobs_dir: `./my_jobs` when it exists)."""
    jobs_dir = Path("my_jobs") if Path("my_jobs").is_dir() else None
    with JobHarness(fake_spotify, tmp_path / "state", jobs_dir=jobs_dir) as harness:
        yield harness
