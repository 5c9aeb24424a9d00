"""The accounts service: `GET /authorize` and `POST /api/token`, as accounts.spotify.com."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
from urllib.parse import urlencode, urlsplit

from runner.testing.fake.model import KNOWN_SCOPES, AccessToken, AuthCode, Grant
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import Request, Response, html_page, json_response, oauth_error

_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")


def _redirect_allowed(state: FakeState, client_id: str, redirect_uri: str) -> bool:
    app = state.apps[client_id]
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    host = parts.netloc.rsplit("@", 1)[-1]
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if (parts.hostname or "").lower() == "localhost":
        return False  # Spotify rejects "localhost"; loopback must be an IP literal
    if redirect_uri in app.redirect_uris:
        return True
    if parts.scheme != "http" or hostname not in _LOOPBACK_HOSTS:
        return False
    if app.any_loopback:
        return True
    # A loopback literal registered without a port accepts any port on the same path.
    for registered in app.redirect_uris:
        reg = urlsplit(registered)
        same_host = reg.scheme == "http" and reg.netloc == hostname  # a portless literal
        if same_host and (reg.path or "/") == (parts.path or "/"):
            return True
    return False


def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(params)}"
    return Response(302, b"", content_type="text/plain", headers={"Location": location})


def _consent_page(params: dict[str, str], user: str) -> Response:
    """A consent page with Approve and Cancel, for tests that click through it in a browser."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
    )
    scopes = html.escape(params.get("scope", "")) or "(no scopes)"
    page = (
        "<!DOCTYPE html><html><head><title>Authorize</title></head><body>"
        f"<h1>Allow this app to use your account?</h1><p>Logged in as {html.escape(user)}</p>"
        f"<p>Scopes: {scopes}</p>"
        f'<form method="post" action="/authorize">{hidden}'
        '<button type="submit" name="decision" value="approve">Approve</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</form></body></html>"
    )
    return Response(200, page.encode(), content_type="text/html; charset=utf-8")


def authorize(state: FakeState, req: Request) -> Response:
    """`/authorize`: validate the app and redirect URI, then approve as `authorize_as`.

    With `consent_page` set, `GET` shows a page whose Approve (or Cancel) button `POST`s the
    same parameters back; otherwise `GET` approves at once.
    """
    posted = req.method == "POST"
    q = dict(req.body) if posted and isinstance(req.body, dict) else req.query
    client_id = q.get("client_id", "")
    redirect_uri = q.get("redirect_uri", "")
    with state.lock:
        if client_id not in state.apps:
            return html_page(400, "INVALID_CLIENT: Invalid client")
        if not redirect_uri or not _redirect_allowed(state, client_id, redirect_uri):
            return html_page(400, "INVALID_CLIENT: Invalid redirect URI")
        extra = {"state": q["state"]} if "state" in q else {}
        if q.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **extra})
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if (challenge is None) != (method is None) or (method is not None and method != "S256"):
            return _redirect(redirect_uri, {"error": "invalid_request", **extra})
        scopes = frozenset(q.get("scope", "").split())
        if not scopes <= KNOWN_SCOPES:
            return _redirect(redirect_uri, {"error": "invalid_scope", **extra})
        if state.consent_page and not posted:
            return _consent_page(
                {k: v for k, v in q.items() if k != "decision"}, state.authorize_as
            )
        if posted and q.get("decision") != "approve":
            return _redirect(redirect_uri, {"error": "access_denied", **extra})
        if state.deny_next_authorize:
            state.deny_next_authorize = False
            return _redirect(redirect_uri, {"error": "access_denied", **extra})
        if state.authorize_as not in state.users:
            return html_page(400, f"No such user: {state.authorize_as}")
        code = state.new_secret("AQ")
        state.codes[code] = AuthCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            user_id=state.authorize_as,
            challenge=challenge,
            expires_at=state.now() + state.code_lifetime,
        )
        return _redirect(redirect_uri, {"code": code, **extra})


def _basic_credentials(req: Request) -> tuple[str, str] | None:
    header = req.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _issue(state: FakeState, grant: Grant) -> AccessToken:
    token = state.new_secret("BQ")
    issued = AccessToken(
        token=token,
        user_id=grant.user_id,
        client_id=grant.client_id,
        scopes=grant.scopes,
        expires_at=state.now() + state.access_token_lifetime,
    )
    state.access_tokens[token] = issued
    return issued


def _token_body(state: FakeState, access: AccessToken, refresh: str | None) -> Response:
    body: dict[str, object] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": int(state.access_token_lifetime),
        "scope": " ".join(sorted(access.scopes)),
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return json_response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def token(state: FakeState, req: Request) -> Response:
    """`POST /api/token`: authorization_code, refresh_token (Basic or PKCE) and
    client_credentials (Basic) grants."""
    form = req.body if isinstance(req.body, dict) else {}
    grant_type = form.get("grant_type")
    if not grant_type:
        return oauth_error(400, "unsupported_grant_type", "grant_type parameter is missing")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        return oauth_error(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials, authorization_code or refresh_token",
        )
    with state.lock:
        basic = _basic_credentials(req)
        if basic is not None:
            client_id, secret = basic
            app = state.apps.get(client_id)
            if app is None:
                return oauth_error(401, "invalid_client", "Invalid client")
            if secret != app.client_secret:
                return oauth_error(401, "invalid_client", "Invalid client secret")
            confidential = True
        else:
            client_id = str(form.get("client_id", ""))
            if client_id not in state.apps:
                return oauth_error(401, "invalid_client", "Invalid client")
            confidential = False
        if grant_type == "authorization_code":
            return _exchange_code(state, form, client_id, confidential)
        if grant_type == "refresh_token":
            return _refresh(state, form, client_id, confidential)
        return _client_credentials(state, client_id, confidential)


def _client_credentials(state: FakeState, client_id: str, confidential: bool) -> Response:
    """The app's own token: catalog reads only (no user, no scopes, no refresh token)."""
    if not confidential:
        return oauth_error(400, "invalid_client", "Invalid client secret")
    token = state.new_secret("BQ")
    state.access_tokens[token] = AccessToken(
        token=token,
        user_id="",
        client_id=client_id,
        scopes=frozenset(),
        expires_at=state.now() + state.access_token_lifetime,
    )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": int(state.access_token_lifetime),
    }
    return json_response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def _exchange_code(
    state: FakeState, form: dict[str, str], client_id: str, confidential: bool
) -> Response:
    code = state.codes.get(form.get("code", ""))
    if code is None or code.used or code.client_id != client_id:
        return oauth_error(400, "invalid_grant", "Invalid authorization code")
    if state.now() >= code.expires_at:
        return oauth_error(400, "invalid_grant", "Authorization code expired")
    if form.get("redirect_uri") != code.redirect_uri:
        return oauth_error(400, "invalid_grant", "Invalid redirect URI")
    if code.challenge is not None:
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if not 43 <= len(verifier) <= 128 or computed != code.challenge:
            return oauth_error(400, "invalid_grant", "code_verifier was incorrect")
    elif not confidential:
        return oauth_error(400, "invalid_request", "code_verifier required")
    code.used = True
    refresh = state.new_secret("AQ")
    grant = Grant(
        token=refresh,
        user_id=code.user_id,
        client_id=client_id,
        scopes=code.scopes,
        authorized_at=state.now(),
        pkce=code.challenge is not None,
    )
    state.grants[refresh] = grant
    return _token_body(state, _issue(state, grant), refresh)


def _refresh(
    state: FakeState, form: dict[str, str], client_id: str, confidential: bool
) -> Response:
    supplied = form.get("refresh_token")
    if not supplied:
        return oauth_error(400, "invalid_request", "refresh_token must be supplied")
    grant = state.grants.get(supplied)
    if grant is None or grant.client_id != client_id:
        return oauth_error(400, "invalid_grant", "Invalid refresh token")
    if grant.revoked:
        return oauth_error(400, "invalid_grant", "Refresh token revoked")
    if state.now() >= grant.authorized_at + state.refresh_token_lifetime:
        return oauth_error(400, "invalid_grant", "Refresh token expired")
    if not confidential and not grant.pkce:
        # Only PKCE authorizations may refresh without the client secret.
        return oauth_error(401, "invalid_client", "Invalid client")
    new_refresh: str | None = None
    if state.rotation != "none":
        new_refresh = state.new_secret("AQ")
        state.grants[new_refresh] = Grant(
            token=new_refresh,
            user_id=grant.user_id,
            client_id=grant.client_id,
            scopes=grant.scopes,
            authorized_at=grant.authorized_at,
            pkce=grant.pkce,
        )
        if state.rotation == "rotate_revoke":
            grant.revoked = True
    return _token_body(state, _issue(state, grant), new_refresh)
