"""TokenManager against the embedded fake Spotify: refresh, rotation, failures, single flight."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runner.config import SpotifyConfig
from runner.errors import AuthError, AuthorizationNeeded, TransientError
from runner.testing import FakeSpotify, Fault
from runner.tokens import (
    ClientRejected,
    StoredToken,
    TokenManager,
    TokenReservation,
    TokenStore,
)

T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand, shared by the fake and the manager."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeSpotify]:
    with FakeSpotify(rotation="rotate_revoke", clock=clock) as f:
        yield f


def cfg_for(fake: FakeSpotify, **changes: object) -> SpotifyConfig:
    values: dict[str, object] = {
        "client_id": FakeSpotify.CLIENT_ID,
        "client_secret": FakeSpotify.CLIENT_SECRET,
        "accounts_url": fake.accounts_url,
        "api_url": fake.api_url,
    }
    values.update(changes)
    return SpotifyConfig(**values)  # type: ignore[arg-type]


def run_together(worker: Callable[[], None], n: int) -> None:
    """Runs `worker` in n threads (it waits on a barrier to start them at once) and joins them."""
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def token_posts(fake: FakeSpotify) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/api/token")


def manager(
    fake: FakeSpotify,
    tmp_path: Path,
    clock: Clock,
    sleeps: list[float] | None = None,
    **cfg: object,
) -> TokenManager:
    record = sleeps if sleeps is not None else []
    return TokenManager(
        cfg_for(fake, **cfg), TokenStore(tmp_path), clock=clock, sleep=record.append
    )


def test_config_token_is_refreshed_and_persisted(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    rt = fake.grant(scopes=("playlist-read-private", "user-library-read"))
    tm = manager(fake, tmp_path, clock, refresh_token=rt)
    access = tm.get_access_token()
    assert fake.access_tokens[access].user_id == "alice"
    stored = TokenStore(tmp_path).load()
    assert stored is not None
    assert stored.access_token == access
    assert stored.refresh_token != rt  # rotated, and the rotation was kept
    assert stored.scopes == {"playlist-read-private", "user-library-read"}
    assert stored.expires_at == T0 + 3600
    assert tm.status().scopes == stored.scopes
    assert not tm.needs_auth


def test_fresh_token_is_reused_and_refreshed_ahead_of_expiry(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant())
    first = tm.get_access_token()
    clock.now += 3600 - 361  # just before 90% of the lifetime
    assert tm.get_access_token() == first
    assert token_posts(fake) == 1
    clock.now += 2  # past 90%: refreshed while the old one still has 6 minutes
    second = tm.get_access_token()
    assert second != first
    assert token_posts(fake) == 2


def test_response_without_refresh_token_keeps_the_old_one(tmp_path: Path, clock: Clock) -> None:
    with FakeSpotify(rotation="none", clock=clock) as fake:
        rt = fake.grant()
        tm = manager(fake, tmp_path, clock, refresh_token=rt)
        tm.get_access_token()
        tm.refresh(force=True)
        stored = TokenStore(tmp_path).load()
        assert stored is not None
        assert stored.refresh_token == rt
        assert token_posts(fake) == 2


class FailingStore(TokenStore):
    """Room can be reserved, but the save itself fails (the disk went bad in between)."""

    def save(self, token: StoredToken, reservation: TokenReservation | None = None) -> None:
        if token.access_token is not None:
            if reservation is not None:
                reservation.release()
            raise OSError(28, "No space left on device")
        super().save(token, reservation)


def test_a_rotated_token_the_store_refuses_is_kept_used_and_reported(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    tm = TokenManager(
        cfg_for(fake, refresh_token=fake.grant()), FailingStore(tmp_path), clock=clock
    )
    # Spotify has rotated (and revoked) the old token: the new one is the only one left, so it
    # is used from memory rather than thrown away, and the command is told it is not saved.
    access = tm.get_access_token()
    with fake.lock:
        assert access in fake.access_tokens
    problem = tm.unsaved_error()
    assert problem is not None
    assert "the disk is full" in str(problem)
    assert problem.exit_code == 3


def test_revoked_token_fails_fast_then_recovers_when_auth_stores_a_new_one(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    rt = fake.grant()
    fake.revoke(rt)
    tm = manager(fake, tmp_path, clock, refresh_token=rt)
    with pytest.raises(AuthorizationNeeded) as info:
        tm.get_access_token()
    assert str(info.value) == "authorization expired or revoked: run 'spotify-runner auth'"
    assert info.value.exit_code == 3
    assert tm.needs_auth
    assert tm.status().reason is not None
    assert token_posts(fake) == 1
    with pytest.raises(AuthorizationNeeded):
        tm.get_access_token()
    assert token_posts(fake) == 1  # no retry loop: later runs fail without asking Spotify

    # `spotify-runner auth` (another process) stores a new authorization.
    other = TokenStore(tmp_path)
    old = other.load()
    assert old is not None
    other.save(replace(old, refresh_token=fake.grant(), authorized_at=clock.now))
    access = tm.get_access_token()
    assert access in fake.access_tokens
    assert not tm.needs_auth


def test_5xx_on_the_token_endpoint_is_retried_with_backoff(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    sleeps: list[float] = []
    tm = manager(fake, tmp_path, clock, sleeps, refresh_token=fake.grant())
    fake.inject(Fault("POST", "/api/token", status=503, times=2))
    assert tm.get_access_token() in fake.access_tokens
    assert sleeps == [0.5, 1.0]
    assert token_posts(fake) == 3


def test_persistent_5xx_becomes_a_transient_error(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    sleeps: list[float] = []
    tm = manager(fake, tmp_path, clock, sleeps, refresh_token=fake.grant())
    fake.inject(Fault("POST", "/api/token", status=500, times=None))
    with pytest.raises(TransientError, match="could not refresh the Spotify access token: HTTP"):
        tm.get_access_token()
    assert token_posts(fake) == 3
    assert len(sleeps) == 2
    assert not tm.needs_auth  # transient: the next run tries again


def test_network_error_becomes_a_transient_error(tmp_path: Path, clock: Clock) -> None:
    with FakeSpotify(clock=clock) as fake:
        rt = fake.grant()
        cfg = cfg_for(fake, refresh_token=rt)
    # The fake is gone: connection refused.
    tm = TokenManager(cfg, TokenStore(tmp_path), clock=clock, sleep=lambda s: None)
    with pytest.raises(TransientError) as info:
        tm.get_access_token()
    assert "ConnectionError" in str(info.value)
    assert rt not in str(info.value)


def test_dropped_connection_is_retried(fake: FakeSpotify, tmp_path: Path, clock: Clock) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant())
    fake.inject(Fault("POST", "/api/token", status=None, drop=True, times=1))
    assert tm.get_access_token() in fake.access_tokens


def test_wrong_secret_names_the_settings_to_check(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant(), client_secret="wrong")
    with pytest.raises(ClientRejected) as info:
        tm.get_access_token()
    assert str(info.value) == (
        "Spotify rejected the client id or secret: check spotify.client_id / client_secret"
    )
    assert isinstance(info.value, AuthError)
    assert info.value.exit_code == 3
    assert token_posts(fake) == 1


def test_pkce_token_refreshes_with_client_id_and_no_secret(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    store = TokenStore(tmp_path)
    store.save(
        StoredToken(
            refresh_token=fake.grant(pkce=True),
            access_token=None,
            expires_at=None,
            scopes=frozenset(),
            authorized_at=clock.now,
            client_id=FakeSpotify.CLIENT_ID,
            pkce=True,
        )
    )
    tm = TokenManager(cfg_for(fake, client_secret=None), store, clock=clock)
    assert tm.get_access_token() in fake.access_tokens
    (post,) = [r for r in fake.requests if r.path == "/api/token"]
    assert post.body["client_id"] == FakeSpotify.CLIENT_ID
    assert "client_secret" not in post.body


def test_ten_threads_seeing_the_same_401_cause_one_refresh(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant())
    failed = tm.get_access_token()
    results: list[str] = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        results.append(tm.refresh(force=True, failed_token=failed))

    run_together(worker, 10)
    assert token_posts(fake) == 2
    assert len(set(results)) == 1
    assert results[0] != failed


def test_ten_threads_finding_the_token_stale_cause_one_refresh(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant())
    tm.get_access_token()
    clock.now += 3500
    results: list[str] = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        results.append(tm.get_access_token())

    run_together(worker, 10)
    assert token_posts(fake) == 2
    assert len(set(results)) == 1


def test_a_second_manager_on_the_same_store_reuses_the_persisted_token(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    rt = fake.grant()
    first = manager(fake, tmp_path, clock, refresh_token=rt)
    access = first.get_access_token()
    assert fake.grants[rt].revoked  # rotate_revoke: the config's token is dead now
    second = manager(fake, tmp_path, clock, refresh_token=rt)
    assert second.get_access_token() == access
    clock.now += 3500
    assert second.get_access_token() in fake.access_tokens


def test_warns_from_14_days_before_the_refresh_token_dies_once_a_day(
    fake: FakeSpotify, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    authorized = clock.now - 170 * 86400
    rt = fake.grant(authorized_at=authorized)
    store = TokenStore(tmp_path)
    store.save(StoredToken(rt, None, None, frozenset(), authorized, FakeSpotify.CLIENT_ID))
    tm = TokenManager(cfg_for(fake), store, clock=clock)
    with caplog.at_level(logging.WARNING, logger="runner.tokens"):
        tm.get_access_token()
        clock.now += 3600
        tm.get_access_token()
        warnings = [r for r in caplog.records if "expires in" in r.getMessage()]
        assert len(warnings) == 1
        assert "12 days" in warnings[0].getMessage()
        clock.now += 86400
        tm.get_access_token()
        assert len([r for r in caplog.records if "expires in" in r.getMessage()]) == 2
    status = tm.status()
    assert status.days_left == pytest.approx(182 - 170 - 1 - 1 / 24)
    assert status.expires_at == authorized + 182 * 86400


def test_no_warning_long_before_death(
    fake: FakeSpotify, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    tm = manager(fake, tmp_path, clock, refresh_token=fake.grant())
    with caplog.at_level(logging.WARNING, logger="runner.tokens"):
        tm.get_access_token()
    assert not caplog.records


def test_on_authorized_hears_of_each_return_once_even_from_the_sleeping_refresher(
    fake: FakeSpotify, tmp_path: Path, clock: Clock
) -> None:
    told: list[str] = []
    tm = TokenManager(
        cfg_for(fake, refresh_token=fake.grant()),
        TokenStore(tmp_path, account="bob"),
        clock=clock,
        on_authorized=told.append,
    )
    tm.get_access_token()
    other = TokenStore(tmp_path, account="bob")

    def auth() -> None:  # `spotify-runner auth` in another process
        old = other.load()
        assert old is not None
        other.save(replace(old, refresh_token=fake.grant(), authorized_at=clock.now))

    auth()
    tm.status()
    assert told == []  # a new token while authorized is no return
    tm.start()  # asleep until the token is due, an hour from now
    try:
        stored = other.load()
        assert stored is not None
        fake.revoke(stored.refresh_token)
        with pytest.raises(AuthorizationNeeded):
            tm.refresh(force=True)  # a run meets the revocation
        auth()
        # Nobody asks the manager: its own thread notices, within its 5-second look.
        deadline = time.monotonic() + 10
        while not told and time.monotonic() < deadline:
            time.sleep(0.05)
        assert told == ["bob"]
        tm.status()
        tm.reload_from_store()
        assert told == ["bob"]
    finally:
        tm.stop()


def test_nothing_stored_needs_auth(fake: FakeSpotify, tmp_path: Path, clock: Clock) -> None:
    tm = manager(fake, tmp_path, clock)
    assert tm.needs_auth
    status = tm.status()
    assert status.needs_auth
    assert status.days_left is None
    with pytest.raises(AuthorizationNeeded, match="run 'spotify-runner auth'"):
        tm.get_access_token()
    assert not fake.requests


def test_background_thread_stops_cleanly(fake: FakeSpotify, tmp_path: Path) -> None:
    tm = TokenManager(cfg_for(fake, refresh_token=fake.grant()), TokenStore(tmp_path))
    tm.start()
    tm.stop()
    tm.stop()  # idempotent
