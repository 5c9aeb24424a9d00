"""A rotated refresh token survives a store that cannot be written: a real full tmpfs and a real
read-only bind mount, against the fake's single-use (rotate and revoke) refresh tokens."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from faults import read_only, small_disk

from runner.config import SpotifyConfig
from runner.testing import FakeSpotify, ManualClock
from runner.tokens import StoredToken, TokenManager, TokenStore, TokenStoreUnwritable

Clock = ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeSpotify]:
    with FakeSpotify(rotation="rotate_revoke", clock=clock) as f:
        yield f


def spotify_cfg(fake: FakeSpotify) -> SpotifyConfig:
    return SpotifyConfig(
        client_id=FakeSpotify.CLIENT_ID,
        client_secret=FakeSpotify.CLIENT_SECRET,  # type: ignore[arg-type]
        accounts_url=fake.accounts_url,
        api_url=fake.api_url,
    )


def stored_expired(fake: FakeSpotify, store: TokenStore, clock: Clock) -> StoredToken:
    """A store holding a valid refresh token and an access token that has just expired."""
    token = StoredToken(
        refresh_token=fake.grant(),
        access_token="expired-access-token",
        expires_at=clock.now - 1,
        scopes=frozenset(),
        authorized_at=clock.now,
        client_id=FakeSpotify.CLIENT_ID,
    )
    store.save(token)
    return token


def token_posts(fake: FakeSpotify) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/api/token")


def works(fake: FakeSpotify, access_token: str) -> bool:
    with fake.lock:
        return access_token in fake.access_tokens


def refresh_token_alive(fake: FakeSpotify, refresh_token: str) -> bool:
    with fake.lock:
        grant = fake.grants.get(refresh_token)
        return grant is not None and not grant.revoked


# Makes the account folder unwritable for as long as its context lasts.
Fault = Callable[[Path], contextlib.AbstractContextManager[object]]


@pytest.fixture(params=["full", "read-only"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Fault]]:
    """(state_dir, how to break it): a full tmpfs, or a read-only bind mount of the account."""
    state_dir = tmp_path / "state"
    if request.param == "full":
        with small_disk(state_dir) as disk:

            @contextlib.contextmanager
            def fill(_account: Path) -> Iterator[object]:
                disk.fill()
                try:
                    yield disk
                finally:
                    disk.free()

            yield state_dir, fill
    else:
        yield state_dir, read_only


EXPECTED = {"full": "the disk is full", "read-only": "the file system is read-only"}


def test_a_command_spends_nothing_it_cannot_save(
    fake: FakeSpotify,
    clock: Clock,
    unwritable: tuple[Path, Fault],
    request: pytest.FixtureRequest,
) -> None:
    state_dir, broken = unwritable
    store = TokenStore(state_dir)
    old = stored_expired(fake, store, clock)
    tm = TokenManager(spotify_cfg(fake), store, clock=clock, sleep=lambda _s: None)
    with broken(store.path.parent):
        with pytest.raises(TokenStoreUnwritable) as caught:
            tm.get_access_token()
        assert EXPECTED[request.node.callspec.params["unwritable"]] in str(caught.value)
        assert str(store.path) in str(caught.value)
        # The single-use refresh token was not spent: no request reached the token endpoint.
        assert token_posts(fake) == 0
        assert refresh_token_alive(fake, old.refresh_token)
    # Once the disk is writable again the same token refreshes, and the rotation is stored.
    access = tm.get_access_token()
    assert works(fake, access)
    saved = store.load()
    assert saved is not None
    assert saved.refresh_token != old.refresh_token
    assert refresh_token_alive(fake, saved.refresh_token)
    assert not list(store.path.parent.glob(".token.json.*"))


def test_a_daemon_keeps_the_rotated_token_in_memory_uses_it_and_saves_it_later(
    fake: FakeSpotify,
    clock: Clock,
    unwritable: tuple[Path, Fault],
    caplog: pytest.LogCaptureFixture,
) -> None:
    state_dir, broken = unwritable
    store = TokenStore(state_dir)
    old = stored_expired(fake, store, clock)
    tm = TokenManager(
        spotify_cfg(fake), store, clock=clock, sleep=lambda _s: None, spend_when_unwritable=True
    )
    with broken(store.path.parent):
        first = tm.get_access_token()
        assert works(fake, first)  # used: the jobs keep running
        # The old refresh token is revoked by the rotation; the new one lives in memory only.
        assert not refresh_token_alive(fake, old.refresh_token)
        status = tm.status()
        assert status.unsaved is not None
        assert "could not be saved" in caplog.text
        assert str(store.path) in caplog.text
        assert tm.save_pending() is False
        # Refreshing again spends the in-memory token, not the revoked one on disk.
        clock.advance(3600)
        second = tm.get_access_token()
        assert works(fake, second)
        assert tm.status().unsaved is not None
    assert tm.save_pending() is True
    assert tm.status().unsaved is None
    assert "saved the new refresh token" in caplog.text
    saved = store.load()
    assert saved is not None
    assert refresh_token_alive(fake, saved.refresh_token)
    # A fresh process (a restart) carries on from the store.
    clock.advance(3600)
    again = TokenManager(spotify_cfg(fake), TokenStore(state_dir), clock=clock)
    assert works(fake, again.get_access_token())


def test_the_pending_write_is_retried_by_the_next_request(
    fake: FakeSpotify, clock: Clock, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    with small_disk(state_dir) as disk:
        store = TokenStore(state_dir)
        stored_expired(fake, store, clock)
        tm = TokenManager(spotify_cfg(fake), store, clock=clock, spend_when_unwritable=True)
        disk.fill()
        tm.get_access_token()
        assert tm.status().unsaved is not None
        disk.free()
        tm.get_access_token()  # no refresh due; the write is retried on the way
        assert tm.status().unsaved is None
        saved = store.load()
        assert saved is not None
        assert refresh_token_alive(fake, saved.refresh_token)


def test_a_directory_where_the_token_file_goes_is_reported_before_anything_is_spent(
    fake: FakeSpotify, clock: Clock, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.mkdir()
    with pytest.raises(TokenStoreUnwritable, match="it is a directory"):
        store.reserve()


def test_state_dir_and_account_folders_are_created_0700(
    fake: FakeSpotify, clock: Clock, tmp_path: Path
) -> None:
    state_dir = tmp_path / "deep" / "state"
    store = TokenStore(state_dir)
    store.save(replace(stored_expired(fake, TokenStore(tmp_path / "x"), clock)))
    for folder in (tmp_path / "deep", state_dir, state_dir / "accounts", store.path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
