"""The fake accounts service, driven by spotipy's own auth managers over real HTTP."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError, SpotifyPKCE

from runner.testing import FakeSpotify, ManualClock

REDIRECT = "http://127.0.0.1:8888/callback"
SCOPES = "playlist-modify-private playlist-read-private"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def oauth(fake: FakeSpotify, http: requests.Session) -> SpotifyOAuth:
    """spotipy's code-flow manager pointed at the fake (class attributes on a subclass)."""
    cls = type(
        "FakeOAuth",
        (SpotifyOAuth,),
        {"OAUTH_AUTHORIZE_URL": fake.accounts_url + "/authorize",
         "OAUTH_TOKEN_URL": fake.accounts_url + "/api/token"},
    )  # fmt: skip
    return cls(
        client_id=FakeSpotify.CLIENT_ID,
        client_secret=FakeSpotify.CLIENT_SECRET,
        redirect_uri=REDIRECT,
        scope=SCOPES.split(),
        state="st4te",
        cache_handler=MemoryCacheHandler(),
        requests_session=http,
        open_browser=False,
    )


@pytest.fixture
def pkce(fake: FakeSpotify, http: requests.Session) -> SpotifyPKCE:
    cls = type(
        "FakePKCE",
        (SpotifyPKCE,),
        {"OAUTH_AUTHORIZE_URL": fake.accounts_url + "/authorize",
         "OAUTH_TOKEN_URL": fake.accounts_url + "/api/token"},
    )  # fmt: skip
    return cls(
        client_id=FakeSpotify.CLIENT_ID,
        redirect_uri=REDIRECT,
        scope=SCOPES.split(),
        cache_handler=MemoryCacheHandler(),
        requests_session=http,
        open_browser=False,
    )


def _approve(http: requests.Session, authorize_url: str) -> dict[str, str]:
    answer = http.get(authorize_url, allow_redirects=False)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _me(fake: FakeSpotify, access_token: str) -> str:
    with requests.Session() as session:
        sp = spotipy.Spotify(auth=access_token, requests_session=session)
        sp.prefix = fake.api_url + "/"
        return str(sp.me()["id"])


def _token_raw(http: requests.Session, fake: FakeSpotify, **form: str) -> requests.Response:
    return http.post(
        fake.accounts_url + "/api/token",
        data=form,
        headers=_basic(FakeSpotify.CLIENT_ID, FakeSpotify.CLIENT_SECRET),
    )


# -- authorize ---------------------------------------------------------------------------


def test_basic_code_exchange(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    params = _approve(http, oauth.get_authorize_url())
    assert params["state"] == "st4te"
    access = oauth.get_access_token(params["code"], as_dict=False, check_cache=False)
    assert _me(fake, access) == "alice"
    info = oauth.cache_handler.get_cached_token()
    assert info["refresh_token"]
    assert info["token_type"] == "Bearer"
    assert info["expires_in"] == 3600
    exchange = [r for r in fake.requests if r.path == "/api/token"][-1]
    assert exchange.token == params["code"]
    assert exchange.body["grant_type"] == "authorization_code"


def test_code_is_single_use(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    code = _approve(http, oauth.get_authorize_url())["code"]
    oauth.get_access_token(code, as_dict=False, check_cache=False)
    with pytest.raises(SpotifyOauthError) as err:
        oauth.get_access_token(code, as_dict=False, check_cache=False)
    assert err.value.error == "invalid_grant"
    assert err.value.error_description == "Invalid authorization code"


def test_code_expires_after_ten_minutes(
    fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session, clock: ManualClock
):
    code = _approve(http, oauth.get_authorize_url())["code"]
    clock.advance(601)
    with pytest.raises(SpotifyOauthError) as err:
        oauth.get_access_token(code, as_dict=False, check_cache=False)
    assert err.value.error == "invalid_grant"


def test_code_bound_to_redirect_uri(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    code = _approve(http, oauth.get_authorize_url())["code"]
    answer = _token_raw(
        http, fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "2"
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Invalid redirect URI"}


def test_pkce_exchange_and_refresh(fake: FakeSpotify, pkce: SpotifyPKCE, http: requests.Session):
    url = pkce.get_authorize_url(state="xyz")
    assert "code_challenge_method=S256" in url
    params = _approve(http, url)
    access = pkce.get_access_token(params["code"], check_cache=False)
    assert _me(fake, access) == "alice"
    refresh = pkce.cache_handler.get_cached_token()["refresh_token"]
    renewed = pkce.refresh_access_token(refresh)
    assert renewed["access_token"] != access
    last = fake.requests[-1]
    assert last.body["client_id"] == FakeSpotify.CLIENT_ID
    assert "authorization" not in {k.lower() for k in last.body}


def test_pkce_wrong_verifier(fake: FakeSpotify, pkce: SpotifyPKCE, http: requests.Session):
    code = _approve(http, pkce.get_authorize_url())["code"]
    answer = http.post(
        fake.accounts_url + "/api/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": FakeSpotify.CLIENT_ID,
            "code_verifier": "x" * 50,
        },
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier was incorrect",
    }


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ({"client_id": "nope", "redirect_uri": REDIRECT}, "INVALID_CLIENT: Invalid client"),
        (
            {"client_id": FakeSpotify.CLIENT_ID, "redirect_uri": "http://localhost:8888/callback"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        (
            {"client_id": FakeSpotify.CLIENT_ID, "redirect_uri": "https://evil.example/cb"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
    ],
)
def test_authorize_rejects_client_or_redirect(
    fake: FakeSpotify, http: requests.Session, query: dict[str, str], page: str
):
    answer = http.get(
        fake.accounts_url + "/authorize",
        params={"response_type": "code", "state": "s", **query},
        allow_redirects=False,
    )
    assert answer.status_code == 400
    assert page in answer.text


@pytest.mark.parametrize(
    "redirect", ["http://127.0.0.1:43123/cb", "http://[::1]:9000/callback", REDIRECT]
)
def test_authorize_accepts_loopback_literals(
    fake: FakeSpotify, http: requests.Session, redirect: str
):
    answer = http.get(
        fake.accounts_url + "/authorize",
        params={"response_type": "code", "client_id": FakeSpotify.CLIENT_ID,
                "redirect_uri": redirect, "state": "s"},
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(redirect + "?code=")


def test_registered_app_needs_its_redirect(fake: FakeSpotify, http: requests.Session):
    fake.register_app("other", "sekrit", ["http://127.0.0.1/cb"])
    base = {"response_type": "code", "client_id": "other"}
    url = fake.accounts_url + "/authorize"
    ok = http.get(url, params={**base, "redirect_uri": "http://127.0.0.1:5555/cb"},
                  allow_redirects=False)  # fmt: skip
    assert ok.status_code == 302  # a portless loopback registration accepts any port
    bad = http.get(url, params={**base, "redirect_uri": "http://127.0.0.1:5555/other"},
                   allow_redirects=False)  # fmt: skip
    assert bad.status_code == 400


def test_deny_next_authorize(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    fake.deny_next_authorize = True
    params = _approve(http, oauth.get_authorize_url())
    assert params == {"error": "access_denied", "state": "st4te"}
    assert "code" in _approve(http, oauth.get_authorize_url())


def test_authorize_as_other_user(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    fake.add_user("bob", "Bob")
    fake.authorize_as = "bob"
    code = _approve(http, oauth.get_authorize_url())["code"]
    access = oauth.get_access_token(code, as_dict=False, check_cache=False)
    assert _me(fake, access) == "bob"


# -- refresh -----------------------------------------------------------------------------


def test_refresh_without_rotation(fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session):
    refresh = fake.grant(scopes=("playlist-modify-private",))
    raw = _token_raw(http, fake, grant_type="refresh_token", refresh_token=refresh).json()
    assert "refresh_token" not in raw
    assert raw["scope"] == "playlist-modify-private"
    assert oauth.refresh_access_token(refresh)["refresh_token"] == refresh
    assert oauth.refresh_access_token(refresh)["access_token"]  # still good


def test_refresh_rotate_keeps_old(fake: FakeSpotify, oauth: SpotifyOAuth):
    fake.rotation = "rotate"
    old = fake.grant()
    new = oauth.refresh_access_token(old)["refresh_token"]
    assert new != old
    assert oauth.refresh_access_token(old)["access_token"]
    assert oauth.refresh_access_token(new)["access_token"]


def test_refresh_rotate_revoke(fake: FakeSpotify, oauth: SpotifyOAuth):
    fake.rotation = "rotate_revoke"
    old = fake.grant()
    new = oauth.refresh_access_token(old)["refresh_token"]
    assert new != old
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(old)
    assert (err.value.error, err.value.error_description) == (
        "invalid_grant",
        "Refresh token revoked",
    )
    assert oauth.refresh_access_token(new)["refresh_token"] != new


def test_revoked_token(fake: FakeSpotify, oauth: SpotifyOAuth):
    refresh = fake.grant()
    fake.revoke(refresh)
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(refresh)
    assert err.value.error_description == "Refresh token revoked"


def test_revoke_user_ends_only_that_users_grants_and_access_tokens(
    fake: FakeSpotify, oauth: SpotifyOAuth
):
    fake.add_user("bob", "Bob")
    alice, bob = fake.grant("alice"), fake.grant("bob")
    bob_access = fake.issue_access_token("bob")
    alice_access = fake.issue_access_token("alice")
    assert fake.revoke_user("bob") == 1
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(bob)
    assert err.value.error_description == "Refresh token revoked"
    with pytest.raises(spotipy.SpotifyException) as gone:
        _me(fake, bob_access)
    assert gone.value.http_status == 401
    assert _me(fake, alice_access) == "alice"
    assert oauth.refresh_access_token(alice)["access_token"]


def test_six_month_death_counts_from_original_authorization(
    fake: FakeSpotify, oauth: SpotifyOAuth, clock: ManualClock
):
    fake.rotation = "rotate"
    first = fake.grant()
    clock.advance(100 * 86400)
    rotated = oauth.refresh_access_token(first)["refresh_token"]
    clock.advance(82 * 86400)  # 182 days after the authorization, 82 after the rotation
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(rotated)
    assert (err.value.error, err.value.error_description) == (
        "invalid_grant",
        "Refresh token expired",
    )


def test_grant_with_old_authorization(fake: FakeSpotify, oauth: SpotifyOAuth, clock: ManualClock):
    refresh = fake.grant(authorized_at=clock.now - fake.refresh_token_lifetime - 1)
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(refresh)
    assert err.value.error_description == "Refresh token expired"


def test_unknown_refresh_token(fake: FakeSpotify, oauth: SpotifyOAuth):
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token("AQnotatoken")
    assert (err.value.error, err.value.error_description) == (
        "invalid_grant",
        "Invalid refresh token",
    )


@pytest.mark.parametrize(
    ("client_id", "secret", "description"),
    [
        (FakeSpotify.CLIENT_ID, "wrong", "Invalid client secret"),
        ("unknown", "x", "Invalid client"),
    ],
)
def test_bad_client_credentials(
    fake: FakeSpotify, http: requests.Session, client_id: str, secret: str, description: str
):
    refresh = fake.grant()
    answer = http.post(
        fake.accounts_url + "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        headers=_basic(client_id, secret),
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client", "error_description": description}


def test_wrong_secret_through_spotipy(fake: FakeSpotify, oauth: SpotifyOAuth):
    oauth.client_secret = "wrong"
    with pytest.raises(SpotifyOauthError) as err:
        oauth.refresh_access_token(fake.grant())
    assert err.value.error == "invalid_client"


def test_missing_grant_type(fake: FakeSpotify, http: requests.Session):
    answer = _token_raw(http, fake, refresh_token="x")
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant_type parameter is missing",
    }


def test_confidential_grant_needs_secret_to_refresh(fake: FakeSpotify, http: requests.Session):
    answer = http.post(
        fake.accounts_url + "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": fake.grant(),
              "client_id": FakeSpotify.CLIENT_ID},
    )  # fmt: skip
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_access_token_expiry_follows_clock(
    fake: FakeSpotify, oauth: SpotifyOAuth, http: requests.Session, clock: ManualClock
):
    fake.access_token_lifetime = 120.0
    info = oauth.refresh_access_token(fake.grant())
    assert info["expires_in"] == 120
    headers = {"Authorization": f"Bearer {info['access_token']}"}
    assert http.get(fake.api_url + "/me", headers=headers).status_code == 200
    clock.advance(120)
    answer = http.get(fake.api_url + "/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": {"status": 401, "message": "The access token expired"}}
