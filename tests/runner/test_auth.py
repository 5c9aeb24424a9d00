"""`spotify-runner auth` end to end against the embedded fake, and the no-secrets-anywhere check."""

from __future__ import annotations

import io
import logging
import socket
import sys
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import spotipy
from pydantic import SecretStr

from runner.auth import AuthResult, _exchange, authorize
from runner.config import SpotifyConfig
from runner.errors import AuthError, AuthorizationNeeded, RateLimited, TransientError
from runner.spotify import make_client, spotify_error_message
from runner.testing import FakeSpotify, Fault
from runner.testing.ports import free_port
from runner.tokens import ClientRejected, TokenManager, TokenStore

SCOPES = ("playlist-modify-private", "user-library-read")
BROWSER = f"{sys.executable} -m runner.testing.browser %s"


def config(fake: FakeSpotify, **changes: object) -> SpotifyConfig:
    values: dict[str, object] = {
        "client_id": FakeSpotify.CLIENT_ID,
        "client_secret": FakeSpotify.CLIENT_SECRET,
        "redirect_uri": "http://127.0.0.1:8888/callback",
        "accounts_url": fake.accounts_url,
        "api_url": fake.api_url,
    }
    values.update(changes)
    return SpotifyConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as f:
        yield f


def use_browser(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """Points $BROWSER at `command`; webbrowser caches its choice, so forget it."""
    monkeypatch.setenv("BROWSER", command)
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> None:
    use_browser(monkeypatch, BROWSER)


class PastingUser(io.StringIO):
    """stdin of a user who opens the printed URL elsewhere and pastes where it led.

    Args:
        shown: the flow's stdout, to find the URL in.
        edit: turns the redirected address into what is pasted.
    """

    def __init__(self, shown: io.StringIO, edit: Callable[[str], str] = lambda s: s) -> None:
        super().__init__()
        self.shown = shown
        self.edit = edit

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        url = next(
            line for line in self.shown.getvalue().splitlines() if "/authorize?" in line
        ).strip()
        response = requests.get(url, allow_redirects=False, timeout=5)
        location = response.headers["Location"]
        response.close()
        return self.edit(location) + "\n"


def authorize_query(fake: FakeSpotify) -> dict[str, str]:
    (entry,) = [r for r in fake.requests if r.path == "/authorize"]
    return entry.query


def test_loopback_flow_through_browser(fake: FakeSpotify, tmp_path: Path, browser: None) -> None:
    port = free_port()
    cfg = config(fake, redirect_uri=f"http://127.0.0.1:{port}/callback")
    out = io.StringIO()
    store = TokenStore(tmp_path)
    result = authorize(cfg, store, scopes=SCOPES, stdout=out, clock=lambda: 1_800_000_000.0)
    assert result == AuthResult(
        display_name="Alice",
        user_id="alice",
        scopes=frozenset(SCOPES),
        refresh_expires_at=1_800_000_000.0 + 182 * 86400,
        pkce=False,
    )
    query = authorize_query(fake)
    assert query["redirect_uri"] == f"http://127.0.0.1:{port}/callback"
    assert query["response_type"] == "code"
    assert query["scope"] == " ".join(SCOPES)
    assert len(query["state"]) >= 32
    assert "code_challenge" not in query
    assert fake.accounts_url + "/authorize?" in out.getvalue()
    stored = store.load()
    assert stored is not None
    assert stored.refresh_token in fake.grants
    assert stored.authorized_at == 1_800_000_000.0
    assert not stored.pkce
    # The stored token is what the daemon then uses.
    assert make_client(TokenManager(cfg, store), fake.api_url).me()["id"] == "alice"
    assert "authorized Alice (alice)" in result.summary()


def test_port_option_overrides_the_redirect_port(
    fake: FakeSpotify, tmp_path: Path, browser: None
) -> None:
    port = free_port()
    authorize(config(fake), TokenStore(tmp_path), scopes=SCOPES, port=port, stdout=io.StringIO())
    assert authorize_query(fake)["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


def test_portless_loopback_redirect_uses_a_free_port(
    fake: FakeSpotify, tmp_path: Path, browser: None
) -> None:
    cfg = config(fake, redirect_uri="http://127.0.0.1/cb")
    authorize(cfg, TokenStore(tmp_path), scopes=SCOPES, stdout=io.StringIO())
    sent = urlsplit(authorize_query(fake)["redirect_uri"])
    assert sent.port is not None
    assert sent.path == "/cb"


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 here")
def test_ipv6_loopback_redirect(fake: FakeSpotify, tmp_path: Path, browser: None) -> None:
    cfg = config(fake, redirect_uri="http://[::1]/callback")
    result = authorize(cfg, TokenStore(tmp_path), scopes=SCOPES, stdout=io.StringIO())
    assert result.user_id == "alice"
    assert authorize_query(fake)["redirect_uri"].startswith("http://[::1]:")


def test_paste_flow_with_the_redirected_url(fake: FakeSpotify, tmp_path: Path) -> None:
    out = io.StringIO()
    store = TokenStore(tmp_path)
    result = authorize(
        config(fake), store, scopes=SCOPES, open_browser=False, stdin=PastingUser(out), stdout=out
    )
    assert result.display_name == "Alice"
    assert "Paste that whole address here (or just the code)" in out.getvalue()
    stored = store.load()
    assert stored is not None
    assert stored.scopes == frozenset(SCOPES)


def test_paste_flow_with_a_bare_code(fake: FakeSpotify, tmp_path: Path) -> None:
    out = io.StringIO()

    def code_only(location: str) -> str:
        return parse_qs(urlsplit(location).query)["code"][0]

    result = authorize(
        config(fake),
        TokenStore(tmp_path),
        scopes=SCOPES,
        open_browser=False,
        stdin=PastingUser(out, code_only),
        stdout=out,
    )
    assert result.user_id == "alice"


def test_pkce_flow(fake: FakeSpotify, tmp_path: Path, browser: None) -> None:
    cfg = config(fake, client_secret=None, redirect_uri=f"http://127.0.0.1:{free_port()}/cb")
    store = TokenStore(tmp_path)
    result = authorize(cfg, store, scopes=SCOPES, pkce=True, stdout=io.StringIO())
    assert result.pkce
    query = authorize_query(fake)
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    (exchange,) = [r for r in fake.requests if r.path == "/api/token"]
    assert exchange.body["client_id"] == FakeSpotify.CLIENT_ID
    assert len(exchange.body["code_verifier"]) == 64
    stored = store.load()
    assert stored is not None
    assert stored.pkce
    # Refreshing needs no secret either (the fake refuses secret-less refreshes of non-PKCE tokens).
    tokens = TokenManager(cfg, store)
    assert tokens.refresh(force=True) in fake.access_tokens


def test_wrong_state_stores_nothing(fake: FakeSpotify, tmp_path: Path) -> None:
    out = io.StringIO()

    def forged(location: str) -> str:
        parts = urlsplit(location)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["state"] = "someone-elses-state"
        return parts._replace(query=urlencode(query)).geturl()

    store = TokenStore(tmp_path)
    with pytest.raises(AuthError, match="state mismatch") as info:
        authorize(
            config(fake),
            store,
            scopes=SCOPES,
            open_browser=False,
            stdin=PastingUser(out, forged),
            stdout=out,
        )
    assert info.value.exit_code == 3
    assert store.load() is None
    assert not [r for r in fake.requests if r.path == "/api/token"]


def test_denied_consent(fake: FakeSpotify, tmp_path: Path, browser: None) -> None:
    fake.deny_next_authorize = True
    store = TokenStore(tmp_path)
    cfg = config(fake, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    with pytest.raises(AuthError) as info:
        authorize(cfg, store, scopes=SCOPES, stdout=io.StringIO())
    assert str(info.value) == "you denied access in the browser: run 'spotify-runner auth' again"
    assert store.load() is None


def test_port_in_use_falls_back_to_paste_with_one_line(
    fake: FakeSpotify, tmp_path: Path, browser: None
) -> None:
    """The daemon holds the redirect port while it runs: never "address in use"."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = config(fake, redirect_uri=f"http://127.0.0.1:{port}/callback")
        out = io.StringIO()
        with pytest.raises(AuthError, match="nothing was pasted"):
            authorize(cfg, TokenStore(tmp_path), scopes=SCOPES, stdout=out, stdin=io.StringIO("\n"))
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"127.0.0.1:{port} is taken (by the running spotify-runner daemon, most likely), so the "
        "redirect cannot be caught here: authorize by pasting."
    )
    assert "Paste that whole address here" in out.getvalue()
    assert "in use" not in out.getvalue()
    assert not any(r.path == "/authorize" for r in fake.requests)  # no browser was opened


def test_timeout(fake: FakeSpotify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_browser(monkeypatch, f"{sys.executable} -c pass %s")  # a browser that goes nowhere
    cfg = config(fake, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    with pytest.raises(AuthError, match=r"no answer from the browser within 0.3s") as info:
        authorize(cfg, TokenStore(tmp_path), scopes=SCOPES, timeout=0.3, stdout=io.StringIO())
    assert "\n" not in str(info.value)


def test_no_browser_falls_back_to_pasting(
    fake: FakeSpotify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_browser(monkeypatch, f"{sys.executable} -c 'raise SystemExit(1)' %s")
    out = io.StringIO()
    cfg = config(fake, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    result = authorize(cfg, TokenStore(tmp_path), scopes=SCOPES, stdin=PastingUser(out), stdout=out)
    assert result.user_id == "alice"
    assert "No browser could be opened" in out.getvalue()


def test_wrong_client_secret(fake: FakeSpotify, tmp_path: Path) -> None:
    out = io.StringIO()
    store = TokenStore(tmp_path)
    with pytest.raises(ClientRejected, match="check spotify.client_id / client_secret"):
        authorize(
            config(fake, client_secret="nope"),
            store,
            scopes=SCOPES,
            open_browser=False,
            stdin=PastingUser(out),
            stdout=out,
        )
    assert store.load() is None


def test_redirect_uri_mismatch_names_the_uri(fake: FakeSpotify) -> None:
    query = urlencode(
        {
            "client_id": FakeSpotify.CLIENT_ID,
            "response_type": "code",
            "redirect_uri": "http://127.0.0.1:9999/a",
            "state": "s",
        }
    )
    location = requests.get(
        f"{fake.accounts_url}/authorize?{query}", allow_redirects=False, timeout=5
    ).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    with pytest.raises(AuthError) as info:
        _exchange(config(fake), code, "http://127.0.0.1:9999/b", FakeSpotify.CLIENT_SECRET, None)
    assert str(info.value).startswith(
        "Spotify refused the redirect URI http://127.0.0.1:9999/b: it must be registered"
    )


def test_pkce_is_required_without_a_secret(fake: FakeSpotify, tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="--pkce"):
        authorize(config(fake, client_secret=None), TokenStore(tmp_path), scopes=SCOPES)


# -- no secret anywhere ----------------------------------------------------------------------


def test_no_secret_appears_in_any_output_log_repr_or_error(
    fake: FakeSpotify,
    tmp_path: Path,
    browser: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)  # root: spotipy, urllib3, runner.*, everything
    for name in ("spotipy", "urllib3", "runner", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        config_token = fake.grant(scopes=SCOPES)
        cfg = config(
            fake,
            redirect_uri=f"http://127.0.0.1:{free_port()}/callback",
            refresh_token=SecretStr(config_token),
        )
        store = TokenStore(tmp_path)
        out = io.StringIO()
        result = authorize(cfg, store, scopes=SCOPES, stdout=out)
        texts += [out.getvalue(), repr(result), result.summary()]

        fake.rotation = "rotate_revoke"
        tokens = TokenManager(cfg, store)
        client = make_client(tokens, fake.api_url, sleep=lambda s: None)
        client.me()
        fake.access_tokens[tokens.get_access_token()].expires_at = 0  # a 401 and a refresh
        client.me()
        fake.inject(Fault("GET", "/me/?$", status=429, retry_after=3600))
        fake.inject(Fault("GET", "/playlists/", status=500, times=None))
        for call in (client.me, lambda: client.playlist("0000000000000000000000")):
            try:
                call()
            except (RateLimited, TransientError, spotipy.SpotifyException) as exc:
                texts += [str(exc), repr(exc), spotify_error_message(exc)]
        fake.clear_faults()
        with pytest.raises(spotipy.SpotifyException) as missing:
            client.playlist("1111111111111111111111")
        texts += [str(missing.value), spotify_error_message(missing.value)]
        texts += [repr(tokens), repr(tokens.status()), repr(store), repr(store.load())]
        texts += [repr(client._session.headers)]

        for rt in list(fake.grants):
            fake.revoke(rt)
        with pytest.raises(AuthorizationNeeded) as revoked:
            tokens.refresh(force=True)
        texts += [str(revoked.value), repr(revoked.value)]
        bad = TokenManager(
            config(fake, client_secret=SecretStr("wrong-secret-value")), TokenStore(tmp_path / "b")
        )
        with pytest.raises(AuthError) as rejected:
            bad.get_access_token()
        texts += [str(rejected.value), repr(cfg)]
        client._session.close()
    finally:
        for name in ("spotipy", "urllib3", "runner", "requests"):
            logging.getLogger(name).setLevel(logging.NOTSET)

    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert any("Bearer" in t for t in texts)  # spotipy's header log is there, and was checked
    assert len(caplog.records) > 20

    secrets = {FakeSpotify.CLIENT_SECRET, "wrong-secret-value", config_token}
    secrets |= set(fake.grants) | set(fake.access_tokens)
    assert len(secrets) >= 6
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret not in blob
