"""What keeps the status page the user's own: Host and Origin checks, CSRF tokens, basic auth,
and headers that keep the page out of frames and caches.

A page on loopback is still reachable by every web page the user's browser opens: a foreign
page can POST a form to it (CSRF: refused without the page's token, or with a foreign Origin)
and can point a name of its own at 127.0.0.1 (DNS rebinding: refused by the Host check, since
the browser then sends the foreign name).
"""

from __future__ import annotations

import hmac
import secrets
from base64 import b64decode
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Request, Response, abort
from itsdangerous import BadSignature, TimestampSigner

CSRF_FIELD = "csrf_token"
# A page refreshes itself every few seconds while a run goes, and each render signs a new
# token; a day covers a form left open in a tab.
CSRF_MAX_AGE = 24 * 3600
_CSRF_PAYLOAD = b"status-page-form"


def security_policy(accounts_url: str) -> str:
    """The Content-Security-Policy: our own stylesheet, forms to us and to Spotify, no scripts.

    `form-action` covers the redirect after a form is sent too, so the accounts service
    (where Re-authorize leads) is named.
    """
    parts = urlsplit(accounts_url)
    spotify = f"{parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action 'self' {spotify}; frame-ancestors 'none'; base-uri 'none'"
    )


@dataclass
class Guard:
    """The checks for one listener.

    Args:
        hosts: the Host header values allowed (`127.0.0.1:8888`, and `http.hosts` names).
        password: the basic-auth password (`http.password_file`); None on loopback without one.
        accounts_url: the accounts service, for the CSP.
        key: signs CSRF tokens; a fresh random one per daemon unless given.
    """

    hosts: Iterable[str]
    password: str | None = field(default=None, repr=False)
    accounts_url: str = "https://accounts.spotify.com"
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        self.hosts = frozenset(host.lower() for host in self.hosts)
        self._signer = TimestampSigner(self.key, salt="csrf")

    def csrf_token(self) -> str:
        """A token for the next form (a fresh one per page)."""
        return self._signer.sign(
            _CSRF_PAYLOAD + b"." + secrets.token_bytes(8).hex().encode()
        ).decode()

    def _csrf_ok(self, token: str | None) -> bool:
        if not token:
            return False
        try:
            value = self._signer.unsign(token, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return value.startswith(_CSRF_PAYLOAD + b".")

    def check(self, request: Request) -> None:
        """Refuses the request (421, 401 or 403) unless it passes every check.

        Order matters: the Host check first (a rebinding page must learn nothing, not even
        that a password is asked for), then the password, then, for a POST, Origin and CSRF.
        """
        host = (request.headers.get("Host") or "").lower()
        if host not in self.hosts:
            abort(Response("misdirected request: this host name is not served here\n", 421))
        if self.password is not None and not self._password_ok(request):
            abort(
                Response(
                    "authentication needed\n",
                    401,
                    {"WWW-Authenticate": 'Basic realm="spotify-runner", charset="UTF-8"'},
                )
            )
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin.lower() not in {
                f"http://{host}",
                f"https://{host}",
            }:
                abort(Response("refused: this form was sent from another site\n", 403))
            if request.headers.get("Sec-Fetch-Site", "same-origin") not in (
                "same-origin",
                "none",
            ):
                abort(Response("refused: this form was sent from another site\n", 403))
            if not self._csrf_ok(request.form.get(CSRF_FIELD)):
                abort(
                    Response(
                        "refused: the form's token is missing or stale: reload the page and "
                        "try again\n",
                        403,
                    )
                )

    def _password_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _user, _, given = b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        assert self.password is not None
        return hmac.compare_digest(given.encode(), self.password.encode())

    def headers(self, response: Response) -> Response:
        """The headers every page gets."""
        response.headers["Content-Security-Policy"] = security_policy(self.accounts_url)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not no-referrer: with it Chromium sends `Origin: null` on our own forms. same-origin
        # still keeps our URLs from Spotify's pages.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response
