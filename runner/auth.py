"""`spotify-runner auth`: authorize once, in a browser, and keep the token in the store.

Desktop: the authorize page opens in the browser (Python's `webbrowser`, so `$BROWSER` is
honoured) and a one-shot HTTP server on the redirect URI's loopback address and port catches
Spotify's redirect.

Headless server (`--no-browser`, or no browser available): the URL is printed; open it on any
machine, approve, and paste back the address the browser was sent to (it starts with the redirect
URI; the page itself may fail to load, which is fine), or just the `code` from it.

Headless server over SSH, the other way: forward the redirect URI's port from your desktop, e.g.
`ssh -L 8888:127.0.0.1:8888 server` for `http://127.0.0.1:8888/callback`, run
`spotify-runner auth` on the server, and open the printed URL in your desktop browser: the
redirect reaches the server's catcher through the tunnel.

The redirect URI sent must be registered in the Spotify dashboard exactly (`http://127.0.0.1:PORT`
or `http://[::1]:PORT` for loopback; `localhost` is refused by Spotify). A loopback URI registered
without a port accepts any port, which is what makes `--port` and a port-less redirect URI useful.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from runner.config import SpotifyConfig
from runner.errors import AuthError, TransientError, UsageError
from runner.tokens import (
    ClientRejected,
    StoredToken,
    TokenReservation,
    TokenStore,
    fingerprint,
    secret_value,
)

_LOOPBACK_HOSTS = ("127.0.0.1", "::1")


@dataclass
class AuthResult:
    """What `spotify-runner auth` reports.

    Attributes:
        display_name: the account's display name (its id when it has none).
        user_id: the Spotify user id.
        scopes: the scopes granted.
        refresh_expires_at: when the refresh token dies (Unix time); re-run `auth` before.
        pkce: authorized through PKCE.
        account: the account name it was stored for.
        command: the command that renews it.
        replaced: the user the account was authorized as before, when `--replace` changed it.
    """

    display_name: str
    user_id: str
    scopes: frozenset[str]
    refresh_expires_at: float
    pkce: bool
    account: str = "default"
    command: str = "spotify-runner auth"
    replaced: str | None = None

    def summary(self) -> str:
        """The lines `auth` prints after success."""
        until = time.strftime("%Y-%m-%d", time.localtime(self.refresh_expires_at))
        scopes = " ".join(sorted(self.scopes)) or "(none)"
        account = "" if self.account == "default" else f" as account {self.account}"
        replaced = f" (replacing {self.replaced})" if self.replaced else ""
        return (
            f"authorized {self.display_name} ({self.user_id}){account}{replaced}\n"
            f"scopes: {scopes}\n"
            f"the authorization expires on {until}: run '{self.command}' again before then"
        )


def with_port(redirect_uri: str, port: int) -> str:
    """The redirect URI with its port replaced (for `--port`)."""
    parts = urlsplit(redirect_uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def pkce_pair() -> tuple[str, str]:
    """A 64-character code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)  # 48 bytes -> 64 URL-safe characters
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(
    config: SpotifyConfig,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    challenge: str | None,
) -> str:
    """The accounts service's `/authorize` URL for this request."""
    params = {
        "client_id": config.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        "scope": " ".join(sorted(set(scopes))),
    }
    if challenge is not None:
        params["code_challenge_method"] = "S256"
        params["code_challenge"] = challenge
    return config.accounts_url.rstrip("/") + "/authorize?" + urlencode(params)


@dataclass
class _Answer:
    """The query of the redirect Spotify sent the browser to."""

    params: dict[str, str] = field(default_factory=dict)
    bare_code: bool = False


def _parse_pasted(text: str) -> _Answer:
    text = text.strip()
    if not text:
        raise AuthError("nothing was pasted: run 'spotify-runner auth' again")
    if "=" not in text and "?" not in text and "/" not in text:
        return _Answer({"code": text}, bare_code=True)
    query = urlsplit(text).query if "?" in text else text
    return _Answer({k: v[-1] for k, v in parse_qs(query).items()})


# -- the loopback catcher ----------------------------------------------------------------------


class _Catcher(HTTPServer):
    """One-shot server: the first request on the redirect path ends the wait."""

    def __init__(self, address: tuple[str, int], family: int, path: str, state: str) -> None:
        self.address_family = family
        self.expected_path = path
        self.expected_state = state
        self.answer: _Answer | None = None
        self.arrived = threading.Event()
        super().__init__(address, _CatchHandler)


class _CatchHandler(BaseHTTPRequestHandler):
    server: _Catcher

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: the default access log would print the authorization code."""

    def do_GET(self) -> None:  # noqa: N802
        """The browser arriving from Spotify's redirect."""
        parts = urlsplit(self.path)
        if (parts.path or "/") != self.server.expected_path or self.server.arrived.is_set():
            self._page(404, "Not found", "This is spotify-runner's authorization catcher.")
            return
        answer = _Answer({k: v[-1] for k, v in parse_qs(parts.query).items()})
        problem = _problem(answer, self.server.expected_state)
        if problem is None:
            self._page(
                200,
                "spotify-runner is authorized",
                "Done: you can close this tab and return to the terminal.",
            )
        else:
            self._page(400, "spotify-runner was not authorized", str(problem))
        self.server.answer = answer
        self.server.arrived.set()

    def _page(self, status: int, title: str, text: str) -> None:
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            "</body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def _port_taken(redirect_uri: str) -> bool:
    """True when something already listens on the redirect URI's (fixed) loopback port."""
    parts = urlsplit(redirect_uri)
    if not parts.port:
        return False
    host = parts.hostname or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, parts.port)) == 0


def _bind_catcher(redirect_uri: str, state: str) -> tuple[_Catcher, str]:
    """Binds the catcher; returns it and the redirect URI to send (with the port if chosen)."""
    parts = urlsplit(redirect_uri)
    host = address = parts.hostname or ""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    port = parts.port or 0  # a port-less loopback URI: Spotify accepts any port
    try:
        catcher = _Catcher((address, port), family, parts.path or "/", state)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host} port {port} for the redirect ({exc.strerror}): "
            "free the port, use --port N with a registered redirect URI, or use --no-browser"
        ) from None
    if not parts.port:
        redirect_uri = with_port(redirect_uri, catcher.server_address[1])
    return catcher, redirect_uri


def _open_browser(url: str) -> bool:
    try:
        browser = webbrowser.get()
        return bool(browser.open(url))
    except webbrowser.Error:
        return False


# -- the flow ------------------------------------------------------------------------------------


def _problem(answer: _Answer, state: str) -> AuthError | None:
    """What is wrong with a redirect's query, if anything."""
    params = answer.params
    error = params.get("error")
    if error == "access_denied":
        return AuthError("you denied access in the browser: run 'spotify-runner auth' again")
    if not answer.bare_code and params.get("state") != state:
        return AuthError(
            "the answer does not belong to this request (state mismatch): nothing was stored; "
            "run 'spotify-runner auth' again and use the newest URL"
        )
    if error:
        return AuthError(f"Spotify refused the authorization ({error}): check the scopes")
    if not params.get("code"):
        return AuthError("the pasted address has no code: paste the whole address from the browser")
    return None


def authorize(
    config: SpotifyConfig,
    store: TokenStore,
    *,
    scopes: Iterable[str],
    open_browser: bool = True,
    port: int | None = None,
    pkce: bool = False,
    timeout: float = 300.0,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    clock: Callable[[], float] = time.time,
    refresh_token: Any = None,
    others: Mapping[str, TokenStore] | None = None,
    replace: bool = False,
    command: str = "spotify-runner auth",
) -> AuthResult:
    """Runs the authorization code flow and stores the token.

    Args:
        config: the `spotify` section of the config.
        store: where the token goes.
        scopes: the scopes to ask for (the configured jobs' plus extras).
        open_browser: open a browser and catch the redirect; False prints the URL and reads
            the redirected address (or bare code) from `stdin`. A bare code carries no
            `state`, so only a pasted address is checked against it.
        port: replaces the redirect URI's port; the resulting URI must be registered in the
            Spotify dashboard (a loopback URI registered without a port accepts any).
        pkce: use PKCE (S256); no client secret is used, now or on refresh.
        timeout: seconds to wait for the browser's redirect.
        stdin: where the pasted address is read.
        stdout: where the URL and instructions go.
        clock: wall-clock time (for the authorization time).
        refresh_token: the account's refresh token in the config, if any (its fingerprint is
            recorded so the store wins over it from now on); `spotify.refresh_token` if None.
        others: the token stores of the config's other accounts, by account name.
        replace: accept a Spotify user other than the one the account was authorized as
            (or one that another account already is).
        command: the command that authorizes this account, for messages.

    Returns:
        Who authorized, the scopes, and when the refresh token dies.

    Raises:
        AuthError: denied, state mismatch, a refused code, a rejected client, or (without
            `replace`) a consent given by another Spotify user than the account's; nothing
            stored.
        UsageError: the redirect port is in use.
        TransientError: Spotify could not be reached.
        TokenStoreUnwritable: the store cannot take a token; checked before the browser opens.
    """
    secret = None if pkce else secret_value(config.client_secret)
    if not pkce and secret is None:
        raise AuthError(
            "spotify.client_secret is not set: set it, or run 'spotify-runner auth --pkce'"
        )
    redirect_uri = config.redirect_uri if port is None else with_port(config.redirect_uri, port)
    # Before the browser: a code, once exchanged, cannot be exchanged again, so the store must
    # be known to take the token (room reserved, no directory in the way) first.
    with store.reserve() as reservation:
        state = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair() if pkce else (None, None)
        scopes = frozenset(scopes)

        answer: _Answer | None = None
        parts = urlsplit(redirect_uri)
        loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        if open_browser and not loopback:
            stdout.write(
                f"{redirect_uri} is not a loopback address, so the redirect cannot be caught "
                "here.\n"
            )
        if open_browser and loopback and _port_taken(redirect_uri):
            # The daemon serves /metrics on the redirect URI's port while it runs.
            stdout.write(
                f"{parts.hostname}:{parts.port} is taken (by the running spotify-runner daemon, "
                "most likely), so the redirect cannot be caught here: authorize by pasting.\n"
            )
            open_browser = False
        if open_browser and loopback:
            catcher, redirect_uri = _bind_catcher(redirect_uri, state)
            url = authorize_url(config, redirect_uri, scopes, state, challenge)
            thread = threading.Thread(
                target=catcher.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            thread.start()
            try:
                stdout.write(
                    "Opening the browser to authorize spotify-runner. If it does not open, visit:\n"
                    f"{url}\n"
                )
                stdout.flush()
                if _open_browser(url):
                    if not catcher.arrived.wait(timeout):
                        raise AuthError(
                            f"no answer from the browser within {timeout:g}s (if Spotify showed "
                            f"'Invalid redirect URI', register {redirect_uri} in the Spotify "
                            "dashboard): run 'spotify-runner auth' again, or with --no-browser"
                        )
                    answer = catcher.answer
                else:
                    stdout.write("No browser could be opened; authorize by pasting instead.\n")
            finally:
                catcher.shutdown()
                catcher.server_close()
                thread.join()
        if answer is None:
            url = authorize_url(config, redirect_uri, scopes, state, challenge)
            answer = _paste(url, redirect_uri, stdin, stdout)

        problem = _problem(answer, state)
        if problem is not None:
            raise problem
        return complete(
            config,
            store,
            reservation,
            code=answer.params["code"],
            redirect_uri=redirect_uri,
            verifier=verifier,
            scopes=scopes,
            clock=clock,
            refresh_token=refresh_token,
            others=others,
            replace=replace,
            command=command,
        )


def complete(
    config: SpotifyConfig,
    store: TokenStore,
    reservation: TokenReservation,
    *,
    code: str,
    redirect_uri: str,
    verifier: str | None,
    scopes: frozenset[str],
    clock: Callable[[], float] = time.time,
    refresh_token: Any = None,
    others: Mapping[str, TokenStore] | None = None,
    replace: bool = False,
    command: str = "spotify-runner auth",
) -> AuthResult:
    """Exchanges an authorization code, checks who gave it, and stores the token.

    The second half of every authorization, shared by `spotify-runner auth` and the daemon's
    own `/callback` (the status page's Re-authorize), so both apply the same different-user
    check and write the same atomic store. `verifier` set means PKCE (no client secret).

    Raises:
        AuthError: a refused code or client, or a consent by another Spotify user than the
            account's (without `replace`); nothing stored.
        TransientError: Spotify could not be reached.
    """
    pkce = verifier is not None
    secret = None if pkce else secret_value(config.client_secret)
    body = _exchange(config, code, redirect_uri, secret, verifier)
    now = clock()
    me = _whoami(config, str(body["access_token"]))
    replaced = _check_user(store, others or {}, me, replace=replace, command=command)
    granted = body.get("scope")
    stored = StoredToken(
        refresh_token=str(body["refresh_token"]),
        access_token=str(body["access_token"]),
        expires_at=now + float(body.get("expires_in", 3600)),
        scopes=frozenset(granted.split()) if isinstance(granted, str) else scopes,
        authorized_at=now,
        client_id=config.client_id,
        config_token_fingerprint=_config_fingerprint(
            config.refresh_token if refresh_token is None else refresh_token
        ),
        pkce=pkce,
        access_lifetime=float(body.get("expires_in", 3600)),
        user_id=me[0] if me else None,
        user_name=me[1] if me else None,
    )
    store.save(stored, reservation)
    user_id, display_name = me or ("unknown user", "unknown user")
    return AuthResult(
        display_name=display_name,
        user_id=user_id,
        scopes=stored.scopes,
        refresh_expires_at=stored.refresh_expires_at(),
        pkce=pkce,
        account=store.account,
        command=command,
        replaced=replaced,
    )


def _config_fingerprint(refresh_token: Any) -> str | None:
    # Recording the config's current value makes the store win over it from now on, while a
    # newly pasted config token still wins later (see runner.tokens).
    token = secret_value(refresh_token)
    return fingerprint(token) if token else None


def _who(user_id: str, name: str | None) -> str:
    return f"{name} ({user_id})" if name and name != user_id else user_id


def _recorded(store: TokenStore) -> StoredToken | None:
    try:
        return store.load()
    except AuthError:  # an unreadable store is replaced, as before
        return None


def _check_user(
    store: TokenStore,
    others: Mapping[str, TokenStore],
    me: tuple[str, str] | None,
    *,
    replace: bool,
    command: str,
) -> str | None:
    """Refuses a consent by the wrong Spotify user; returns the user it replaces, if any.

    Two accounts mixed up silently is how someone's playlist ends up in someone else's
    library, so a different user than the account's, or one another account already is,
    needs `--replace`.
    """
    previous = _recorded(store)
    known = previous is not None and previous.user_id is not None
    if me is None:
        if known or others:
            raise TransientError(
                "could not ask Spotify which user authorized (GET /me failed), so nothing was "
                f"stored: run '{command}' again"
            )
        return None
    user_id, name = me
    account = store.account
    if previous is not None and previous.user_id is not None and previous.user_id != user_id:
        if not replace:
            raise AuthError(
                f"account {account} is {_who(previous.user_id, previous.user_name)}, but "
                f"{_who(user_id, name)} gave this consent: nothing was stored; log in to "
                f"Spotify as {previous.user_name or previous.user_id} and run '{command}' "
                f"again, or add --replace to make account {account} {_who(user_id, name)}"
            )
        return _who(previous.user_id, previous.user_name)
    for other, other_store in sorted(others.items()):
        token = _recorded(other_store)
        if token is not None and token.user_id == user_id and not replace:
            raise AuthError(
                f"{_who(user_id, name)} is already account {other}, so this consent cannot "
                f"be account {account} too: nothing was stored; log in to Spotify as "
                f"account {account}'s user (a private browser window helps) and run "
                f"'{command}' again, or add --replace"
            )
    return None


def _paste(url: str, redirect_uri: str, stdin: TextIO, stdout: TextIO) -> _Answer:
    stdout.write(
        "Open this URL in a browser on any machine, log in and approve:\n"
        f"\n{url}\n\n"
        f"The browser is then sent to {redirect_uri}?code=... (the page may fail to load; "
        "that is fine).\nPaste that whole address here (or just the code) and press Enter:\n"
    )
    stdout.flush()
    return _parse_pasted(stdin.readline())


def _exchange(
    config: SpotifyConfig, code: str, redirect_uri: str, secret: str | None, verifier: str | None
) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    auth: tuple[str, str] | None = None
    if verifier is not None:
        form["client_id"] = config.client_id
        form["code_verifier"] = verifier
    else:
        assert secret is not None
        auth = (config.client_id, secret)
    url = config.accounts_url.rstrip("/") + "/api/token"
    try:
        with requests.Session() as session:
            response = session.post(url, data=form, auth=auth, timeout=30)
    except requests.RequestException as exc:
        raise TransientError(
            f"could not reach Spotify's accounts service ({type(exc).__name__}): try again"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 500:
        raise TransientError(f"Spotify's accounts service failed (HTTP {response.status_code})")
    if response.status_code != 200:
        error = str(body.get("error", ""))
        description = str(body.get("error_description", ""))
        if error == "invalid_client":
            raise ClientRejected()
        if error == "invalid_grant" and "redirect" in description.lower():
            raise AuthError(
                f"Spotify refused the redirect URI {redirect_uri}: it must be registered in the "
                "Spotify dashboard exactly as spotify.redirect_uri says"
            )
        if error == "invalid_grant":
            raise AuthError(
                f"Spotify refused the authorization code ({description or error}): "
                "run 'spotify-runner auth' again and paste the newest address"
            )
        raise AuthError(
            f"Spotify refused the code exchange: HTTP {response.status_code} "
            f"{error} {description}".strip()
        )
    if not isinstance(body.get("access_token"), str) or not isinstance(
        body.get("refresh_token"), str
    ):
        raise TransientError("Spotify's token response lacked a token: try again")
    return body


def _whoami(config: SpotifyConfig, access_token: str) -> tuple[str, str] | None:
    """(user id, display name) from `/me`, or None when Spotify did not say."""
    try:
        with requests.Session() as session:
            response = session.get(
                config.api_url.rstrip("/") + "/me",
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=30,
            )
        me = response.json() if response.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        me = {}
    if not isinstance(me, dict) or not me.get("id"):
        return None
    user_id = str(me["id"])
    return user_id, str(me.get("display_name") or user_id)
