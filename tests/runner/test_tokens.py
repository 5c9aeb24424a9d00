"""The token store: private, atomic, readable errors; and the store-versus-config precedence."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from runner.config import SpotifyConfig
from runner.errors import AuthorizationNeeded
from runner.tokens import (
    REFRESH_TOKEN_LIFETIME,
    StoredToken,
    TokenStore,
    fingerprint,
    refresh_lead,
    resolve_initial_token,
)

NOW = 1_800_000_000.0


def Cfg(**changes: object) -> SpotifyConfig:  # noqa: N802 - reads like the class it builds
    values: dict[str, object] = {
        "client_id": "client-1",
        "client_secret": "secret-xyz",
        "accounts_url": "http://127.0.0.1:1",
        "api_url": "http://127.0.0.1:1/v1",
    }
    values.update(changes)
    return SpotifyConfig(**values)  # type: ignore[arg-type]


def token(**changes: object) -> StoredToken:
    base = StoredToken(
        refresh_token="RT-secret-1",
        access_token="AT-secret-1",
        expires_at=NOW + 3600,
        scopes=frozenset({"playlist-read-private", "user-library-read"}),
        authorized_at=NOW,
        client_id="client-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    assert store.load() is None
    saved = token(pkce=True, access_lifetime=3600.0, config_token_fingerprint="ab")
    store.save(saved)
    assert store.path == tmp_path / "accounts" / "default" / "token.json"
    assert store.load() == saved


def test_accounts_are_separate_files(tmp_path: Path) -> None:
    TokenStore(tmp_path, "alice").save(token(refresh_token="RT-a"))
    TokenStore(tmp_path, "bob").save(token(refresh_token="RT-b"))
    alice = TokenStore(tmp_path, "alice").load()
    assert alice is not None
    assert alice.refresh_token == "RT-a"


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_file_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = TokenStore(tmp_path)
        store.save(token())
        store.save(token(refresh_token="RT-2"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    loaded = store.load()
    assert loaded is not None
    assert loaded.refresh_token == "RT-2"


def test_replace_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token())
    inode = store.path.stat().st_ino
    store.save(token(refresh_token="RT-2"))
    # A new inode: the file was replaced by rename, never rewritten in place.
    assert store.path.stat().st_ino != inode
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["token.json", "token.lock"]


def test_stale_temp_files_from_a_crash_are_removed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token())
    leftover = store.path.parent / ".token.json.999.deadbeef.tmp"
    leftover.write_text("half a token")
    store.save(token(refresh_token="RT-2"))
    assert not leftover.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"refresh_token": 5}', b"\xff\xfe", b'{"refresh_token": "x"}'],
)
def test_corrupt_file_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    store = TokenStore(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    with pytest.raises(AuthorizationNeeded) as info:
        store.load()
    message = str(info.value)
    # Corrupt, not "unreadable": the file was read; what it holds is wrong. The hint comes once.
    assert re.fullmatch(
        rf"token store {re.escape(str(store.path))} is corrupt \((not JSON|not an object|"
        r"refresh_token missing|client_id missing)\): run 'spotify-runner auth'",
        message,
    ), message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_repr_hides_tokens() -> None:
    text = repr(token()) + str(token())
    assert "RT-secret-1" not in text
    assert "AT-secret-1" not in text
    assert "client-1" in text


def test_refresh_token_death_is_counted_from_authorization() -> None:
    t = token(authorized_at=NOW)
    assert t.refresh_expires_at() == NOW + REFRESH_TOKEN_LIFETIME
    assert t.days_left(NOW + 172 * 86400) == pytest.approx(10.0)


def test_store_json_holds_what_the_issue_lists(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token())
    data = json.loads(store.path.read_text())
    assert {"refresh_token", "access_token", "expires_at", "scopes", "authorized_at"} <= set(data)


# -- precedence -------------------------------------------------------------------------------


def test_nothing_anywhere(tmp_path: Path) -> None:
    assert resolve_initial_token(Cfg(), TokenStore(tmp_path), NOW) is None


def test_config_token_is_adopted_into_an_empty_store(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    got = resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW)
    assert got is not None
    assert got.refresh_token == "RT-config"
    assert got.authorized_at == NOW
    assert got.scopes == frozenset()
    assert got.access_token is None
    assert store.load() == got
    assert got.config_token_fingerprint == fingerprint("RT-config")
    assert "RT-config" not in json.dumps(got.config_token_fingerprint)


def test_store_wins_over_the_config_value_it_was_made_from(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW)
    rotated = replace(store.load(), refresh_token="RT-rotated")  # type: ignore[type-var]
    store.save(rotated)
    got = resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW + 100)
    assert got == rotated


def test_a_newly_pasted_config_token_wins_over_the_store(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW)
    store.save(replace(store.load(), refresh_token="RT-rotated"))  # type: ignore[type-var]
    got = resolve_initial_token(Cfg(refresh_token="RT-pasted"), store, NOW + 100)
    assert got is not None
    assert got.refresh_token == "RT-pasted"
    assert got.authorized_at == NOW + 100
    assert store.load() == got


def test_store_made_by_auth_wins_while_the_config_value_is_unchanged(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token(config_token_fingerprint=fingerprint("RT-config")))
    got = resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW)
    assert got is not None
    assert got.refresh_token == "RT-secret-1"


def test_store_without_config_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token())
    assert resolve_initial_token(Cfg(), store, NOW) == token()


def test_token_of_another_client_id_is_ignored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(token(client_id="other-app"))
    assert resolve_initial_token(Cfg(), store, NOW) is None


def test_unreadable_store_with_a_config_token_adopts_the_config(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("garbage")
    with pytest.raises(AuthorizationNeeded):
        resolve_initial_token(Cfg(), store, NOW)
    got = resolve_initial_token(Cfg(refresh_token="RT-config"), store, NOW)
    assert got is not None
    assert got.refresh_token == "RT-config"


@pytest.mark.parametrize(
    ("lifetime", "margin", "lead"),
    [(3600.0, 300.0, 360.0), (3600.0, 600.0, 600.0), (4.0, 300.0, 0.4), (60.0, 20.0, 20.0)],
)
def test_refresh_lead(lifetime: float, margin: float, lead: float) -> None:
    assert refresh_lead(lifetime, margin) == pytest.approx(lead)
