"""The daemon's re-authorization requests: single-use, expiring states; the same checks as auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from runner.config import SpotifyConfig
from runner.errors import AuthError
from runner.reauth import PendingAuthorizations
from runner.testing import FakeSpotify
from runner.tokens import TokenStore

SCOPES = ("playlist-modify-private",)


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as f:
        yield f


def spotify(fake: FakeSpotify, *, secret: bool = True) -> SpotifyConfig:
    return SpotifyConfig(
        client_id=FakeSpotify.CLIENT_ID,
        client_secret=FakeSpotify.CLIENT_SECRET if secret else None,  # type: ignore[arg-type]
        redirect_uri="http://127.0.0.1:8888/callback",
        accounts_url=fake.accounts_url,
        api_url=fake.api_url,
    )


def consent(url: str) -> dict[str, str]:
    """What the fake's consent sends back to the callback (its redirect's query)."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return {key: values[0] for key, values in query.items()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stores(tmp_path: Path, *names: str) -> dict[str, TokenStore]:
    return {name: TokenStore(tmp_path, account=name) for name in names}


def finish(pending: PendingAuthorizations, config: SpotifyConfig, params, found):  # type: ignore[no-untyped-def]
    return pending.finish(
        config, params, found, command=lambda a: f"spotify-runner auth --account {a}"
    )


@pytest.mark.parametrize("secret", [True, False], ids=["client-secret", "pkce"])
def test_a_state_completes_once_and_stores_the_token(
    fake: FakeSpotify, tmp_path: Path, secret: bool
) -> None:
    config = spotify(fake, secret=secret)
    pending = PendingAuthorizations()
    state, url = pending.start(config, "bob", SCOPES)
    query = parse_qs(urlsplit(url).query)
    assert query["state"] == [state]
    assert ("code_challenge" in query) is not secret  # PKCE without a client secret
    assert pending.waiting("bob")
    params = consent(url)
    found = stores(tmp_path, "default", "bob")
    result = finish(pending, config, params, found)
    assert (result.account, result.user_id, result.pkce) == ("bob", "alice", not secret)
    token = found["bob"].load()
    assert token is not None
    assert token.user_id == "alice"
    assert found["default"].load() is None
    assert not pending.waiting("bob")
    before = found["bob"].path.read_bytes()
    with pytest.raises(AuthError, match="already used"):
        finish(pending, config, params, found)  # the same state again
    assert found["bob"].path.read_bytes() == before


def test_a_wrong_or_missing_state_stores_nothing(fake: FakeSpotify, tmp_path: Path) -> None:
    config = spotify(fake)
    pending = PendingAuthorizations()
    _state, url = pending.start(config, "default", SCOPES)
    params = consent(url)
    found = stores(tmp_path, "default")
    for forged in ({**params, "state": "forged"}, {"code": params["code"]}):
        with pytest.raises(AuthError, match="nothing was stored"):
            finish(pending, config, forged, found)
    assert not found["default"].path.exists()
    assert pending.waiting("default")  # the real request is still good


def test_a_state_expires_after_ten_minutes(fake: FakeSpotify, tmp_path: Path) -> None:
    config = spotify(fake)
    clock = Clock()
    pending = PendingAuthorizations(clock=clock)
    _state, url = pending.start(config, "default", SCOPES)
    params = consent(url)
    clock.now += 601
    assert not pending.waiting("default")
    with pytest.raises(AuthError, match="older than 10 minutes"):
        finish(pending, config, params, stores(tmp_path, "default"))
    assert not TokenStore(tmp_path).path.exists()


def test_the_different_user_check_applies(fake: FakeSpotify, tmp_path: Path) -> None:
    config = spotify(fake)
    pending = PendingAuthorizations()
    found = stores(tmp_path, "default", "bob")
    _state, url = pending.start(config, "default", SCOPES)
    finish(pending, config, consent(url), found)  # default is alice
    _state, url = pending.start(config, "bob", SCOPES)
    with pytest.raises(AuthError, match="already account default"):
        finish(pending, config, consent(url), found)  # alice again, for bob
    assert not found["bob"].path.exists()


def test_denied_consent_stores_nothing(fake: FakeSpotify, tmp_path: Path) -> None:
    config = spotify(fake)
    pending = PendingAuthorizations()
    _state, url = pending.start(config, "default", SCOPES)
    fake.deny_next_authorize = True
    with pytest.raises(AuthError, match="denied"):
        finish(pending, config, consent(url), stores(tmp_path, "default"))
    assert not TokenStore(tmp_path).path.exists()
