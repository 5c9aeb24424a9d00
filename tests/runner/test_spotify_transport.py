"""RunnerSession and make_client against the embedded fake Spotify."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import spotipy
from pydantic import SecretStr

from runner.config import SpotifyConfig
from runner.errors import DryRunWrite, QuotaExceeded, RateLimited, RunTimedOut, TransientError
from runner.spotify import MAX_RETRY_AFTER, RunnerSession, make_client, spotify_error_message
from runner.testing import FakeSpotify, Fault
from runner.tokens import TokenManager, TokenStore


def cfg_for(fake: FakeSpotify, refresh_token: str) -> SpotifyConfig:
    return SpotifyConfig(
        client_id=FakeSpotify.CLIENT_ID,
        client_secret=SecretStr(FakeSpotify.CLIENT_SECRET),
        refresh_token=SecretStr(refresh_token),
        accounts_url=fake.accounts_url,
        api_url=fake.api_url,
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as f:
        yield f


@pytest.fixture
def tokens(fake: FakeSpotify, tmp_path: Path) -> TokenManager:
    scopes = ("playlist-modify-private", "playlist-read-private", "user-read-private")
    return TokenManager(cfg_for(fake, fake.grant(scopes=scopes)), TokenStore(tmp_path))


def api_requests(fake: FakeSpotify) -> list[tuple[str, str, int]]:
    # The path as recorded, without the trailing slash spotipy puts on some calls ("me/").
    return [
        (r.method, r.path.rstrip("/"), r.status) for r in fake.requests if r.path.startswith("/v1")
    ]


def token_posts(fake: FakeSpotify) -> int:
    return sum(1 for r in fake.requests if r.path == "/api/token")


def test_make_client_talks_to_the_api_url_without_spotipys_retry_adapter(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    client = make_client(tokens, fake.api_url)
    assert client.prefix == fake.api_url + "/"
    session = client._session
    assert isinstance(session, RunnerSession)
    for adapter in session.adapters.values():
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
    assert client.me()["id"] == "alice"
    assert client.retries == 0


def test_401_mid_run_refreshes_once_and_retries_once(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    client = make_client(tokens, fake.api_url)
    first = tokens.get_access_token()
    fake.access_tokens[first].expires_at = 0  # Spotify considers it expired; we do not yet
    fake.clear_requests()
    assert client.me()["id"] == "alice"
    assert api_requests(fake) == [("GET", "/v1/me", 401), ("GET", "/v1/me", 200)]
    assert token_posts(fake) == 1
    assert tokens.get_access_token() != first


def test_401_twice_is_not_retried_forever(fake: FakeSpotify, tokens: TokenManager) -> None:
    client = make_client(tokens, fake.api_url)
    client.me()
    fake.inject(Fault("GET", "/me/?$", status=401, times=None))
    with pytest.raises(spotipy.SpotifyException) as info:
        client.me()
    assert info.value.http_status == 401
    assert [s for _, p, s in api_requests(fake) if p == "/v1/me"] == [200, 401, 401]


def test_429_with_short_retry_after_is_slept_and_retried(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    slept: list[float] = []
    client = make_client(tokens, fake.api_url, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=429, retry_after=1))
    assert client.me()["id"] == "alice"
    assert slept == [1.0]
    assert [s for _, _, s in api_requests(fake)] == [429, 200]


def test_429_with_long_retry_after_fails_at_once(fake: FakeSpotify, tokens: TokenManager) -> None:
    slept: list[float] = []
    client = make_client(tokens, fake.api_url, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=429, retry_after=3600, reason="QUOTA_EXCEEDED"))
    with pytest.raises(RateLimited) as info:
        client.me()
    assert slept == []
    assert info.value.retry_after == 3600
    assert "QUOTA_EXCEEDED" in str(info.value)
    assert len(api_requests(fake)) == 1


def test_a_spent_quota_without_retry_after_ends_the_run_at_once(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    slept: list[float] = []
    client = make_client(tokens, fake.api_url, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=429, reason="QUOTA_EXCEEDED", times=None))
    with pytest.raises(QuotaExceeded) as info:
        client.me()
    assert slept == []  # not retried within the run: that would only spend nothing again
    assert len(api_requests(fake)) == 1
    assert info.value.retry_after is None
    assert "QUOTA_EXCEEDED" in str(info.value)


@pytest.mark.parametrize("header", [float("inf"), 99999999999999.0])
def test_an_endless_retry_after_is_held_for_the_cap_and_said_plainly(
    fake: FakeSpotify, tokens: TokenManager, header: float
) -> None:
    slept: list[float] = []
    client = make_client(tokens, fake.api_url, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=429, retry_after=header))
    with pytest.raises(RateLimited) as info:
        client.me()
    assert slept == []
    assert info.value.retry_after == MAX_RETRY_AFTER  # a finite hold that can be set
    message = str(info.value)
    assert message.startswith("rate-limited by Spotify for 1d (")
    assert "infs" not in message
    assert "held for the 1d cap" in message


def test_retry_after_is_never_slept_past_the_deadline(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    slept: list[float] = []
    clock = Clock(100.0)
    client = make_client(tokens, fake.api_url, deadline=105.0, clock=clock, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=429, retry_after=10))
    with pytest.raises(RunTimedOut):
        client.me()
    assert slept == []


def test_5xx_is_retried_with_backoff_then_succeeds(fake: FakeSpotify, tokens: TokenManager) -> None:
    slept: list[float] = []
    client = make_client(tokens, fake.api_url, sleep=slept.append)
    fake.inject(Fault("GET", "/me/?$", status=503, times=2))
    assert client.me()["id"] == "alice"
    assert len(slept) == 2
    assert 0.25 <= slept[0] <= 0.75
    assert 0.5 <= slept[1] <= 1.5


def test_persistent_5xx_is_a_one_line_transient_error(
    fake: FakeSpotify, tokens: TokenManager
) -> None:
    client = make_client(tokens, fake.api_url, sleep=lambda s: None)
    fake.inject(Fault("GET", "/me/?$", status=500, times=None))
    with pytest.raises(TransientError) as info:
        client.me()
    assert str(info.value) == "Spotify answered HTTP 500 to GET /v1/me/ after 3 attempts"
    assert len(api_requests(fake)) == 3


def test_post_is_not_repeated_after_a_500(fake: FakeSpotify, tokens: TokenManager) -> None:
    client = make_client(tokens, fake.api_url, sleep=lambda s: None)
    playlist = client.current_user_playlist_create("Mix", public=False)
    fake.inject(Fault("POST", "/items$", status=500, times=None))
    with pytest.raises(TransientError):
        client.playlist_add_items(playlist["id"], fake.make_tracks(1))
    assert [m for m, p, _ in api_requests(fake) if p.endswith("/items")] == ["POST"]


def test_connection_errors_become_transient(fake: FakeSpotify, tokens: TokenManager) -> None:
    client = make_client(tokens, fake.api_url, sleep=lambda s: None)
    fake.inject(Fault("GET", "/me/?$", status=None, drop=True, times=None))
    with pytest.raises(TransientError, match=r"could not reach Spotify for GET /v1/me"):
        client.me()
    assert len(api_requests(fake)) == 3


def test_dry_run_refuses_writes_and_sends_nothing(fake: FakeSpotify, tokens: TokenManager) -> None:
    client = make_client(tokens, fake.api_url, dry_run=True)
    assert client.me()["id"] == "alice"  # reads go through
    fake.clear_requests()
    with pytest.raises(DryRunWrite, match="POST /v1/me/playlists"):
        client.current_user_playlist_create("Mix", public=False)
    with pytest.raises(DryRunWrite):
        client.playlist_add_items("37i9dQZF1DXcBWIGoYBM5M", fake.make_tracks(1))
    with pytest.raises(DryRunWrite):
        client.current_user_unfollow_playlist("37i9dQZF1DXcBWIGoYBM5M")
    assert fake.requests == []
    assert fake.user_playlist_ids() == []


def test_past_the_deadline_nothing_is_sent(fake: FakeSpotify, tokens: TokenManager) -> None:
    clock = Clock(50.0)
    client = make_client(tokens, fake.api_url, deadline=60.0, clock=clock)
    client.me()
    fake.clear_requests()
    clock.now = 60.0
    with pytest.raises(RunTimedOut, match="time limit"):
        client.me()
    assert fake.requests == []


def test_requests_get_a_bounded_timeout(fake: FakeSpotify, tokens: TokenManager) -> None:
    clock = Clock(0.0)
    session = RunnerSession(tokens, deadline=5.0, clock=clock, timeout=30.0)
    assert session._bounded_timeout(None) == 5.0
    assert session._bounded_timeout(120) == 5.0
    session.deadline = None
    assert session._bounded_timeout(None) == 30.0
    assert session._bounded_timeout(2) == 2.0
    session.close()


def test_error_messages_are_plain(fake: FakeSpotify, tokens: TokenManager) -> None:
    client = make_client(tokens, fake.api_url)
    with pytest.raises(spotipy.SpotifyException) as info:
        client.playlist("0000000000000000000000")
    message = spotify_error_message(info.value)
    assert message.startswith("not found: /v1/playlists/0000000000000000000000")
    assert "\n" not in message
    assert "http" not in message
    assert spotify_error_message(RateLimited(30.0)) == "rate-limited by Spotify for 30s"
    assert spotify_error_message(requests.ConnectionError("x")) == (
        "could not reach Spotify (ConnectionError)"
    )
    forbidden = spotipy.SpotifyException(403, -1, "https://x/v1/playlists/abc/items:\n Forbidden")
    assert spotify_error_message(forbidden) == (
        "Spotify refused /v1/playlists/abc/items: Forbidden"
        " (not your playlist, or a missing scope?)"
    )


@pytest.mark.slow
def test_five_threads_for_40s_with_8s_tokens_and_rotation(tmp_path: Path) -> None:
    # Refreshes come at 90% of a token's life: 8 s tokens leave 0.8 s for a request to arrive
    # before its token expires, enough for a machine busy with parallel test workers.
    lifetime = 8.0
    duration = 40.0
    with FakeSpotify(access_token_lifetime=lifetime, rotation="rotate_revoke") as fake:
        original = fake.grant(scopes=("user-read-private",))
        cfg = cfg_for(fake, original)
        tm = TokenManager(cfg, TokenStore(tmp_path))
        tm.start()
        errors: list[BaseException] = []
        calls = [0] * 5
        stop_at = time.monotonic() + duration

        def worker(i: int) -> None:
            client = make_client(tm, fake.api_url)
            try:
                while time.monotonic() < stop_at:
                    client.me()
                    calls[i] += 1
                    # Not faster: the refresher is one thread among these in a process that
                    # shares a busy machine, and it must not starve (still 5 x ~400 calls).
                    time.sleep(0.1)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                client._session.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tm.stop()
        assert errors == []
        assert min(calls) > 50

        log = fake.requests
        api = [r for r in log if r.path.startswith("/v1")]
        assert all(r.status == 200 for r in api), {r.status for r in api}
        for r in api:  # no request carried a token that was expired when it arrived
            assert r.token is not None
            assert r.at < fake.access_tokens[r.token].expires_at
        refreshes = [r.at for r in log if r.method == "POST" and r.path == "/api/token"]
        assert all(r.status == 200 for r in log if r.path == "/api/token")
        # One refresh per lifetime window, never two at once. That refreshing comes *ahead* of
        # expiry is shown above (no request carried an expired token); a gap longer than the
        # lifetime only means the whole process was starved, requests included (seen at 9.3 s
        # with four test workers on two cores), so it is not a bound.
        gaps = [b - a for a, b in zip(refreshes, refreshes[1:], strict=False)]
        assert all(0.5 * lifetime < g for g in gaps), gaps
        assert duration / lifetime <= len(refreshes) <= duration / (0.9 * lifetime) + 2

        # A restart: a new manager on the same store, the config still naming the original
        # (now revoked) refresh token.
        assert fake.grants[original].revoked
        restarted = TokenManager(cfg, TokenStore(tmp_path))
        client = make_client(restarted, fake.api_url)
        assert client.me()["id"] == "alice"
        restarted.refresh(force=True)
        assert client.me()["id"] == "alice"
        client._session.close()
