"""The Web API under `/v1`: every operation of Spotify's OpenAPI description, one module per
area (playlists, library, catalog, search, player, users), deprecated ones answering 403.
"""

from __future__ import annotations

import re

from runner.testing.fake.api import catalog, deprecated, library, player, playlists, search, users
from runner.testing.fake.api.base import Ctx, Route
from runner.testing.fake.model import AccessToken
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import ApiError, Request, Response, api_error

ROUTES: tuple[Route, ...] = (
    *users.ROUTES,
    *playlists.ROUTES,
    *library.ROUTES,
    *catalog.ROUTES,
    *search.ROUTES,
    *player.ROUTES,
    *deprecated.ROUTES,
)
# (method, template) of the deprecated operations, served only to refuse them.
DEPRECATED_SERVED = frozenset(deprecated.DEPRECATED)
_COMPILED = tuple((route, route.pattern) for route in ROUTES)
_MARKET = re.compile(r"^([A-Z]{2}|from_token)$")

__all__ = ["DEPRECATED_SERVED", "ROUTES", "Route", "bearer_token", "handle"]


def bearer_token(req: Request) -> str | None:
    """The bearer token a request carries, if any."""
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _authenticate(state: FakeState, req: Request) -> AccessToken:
    header = req.headers.get("authorization", "")
    if not header:
        raise ApiError(401, "No token provided")
    token = bearer_token(req)
    if token is None:
        raise ApiError(400, "Only valid bearer authentication supported")
    issued = state.access_tokens.get(token)
    if issued is None:
        raise ApiError(401, "Invalid access token")
    if state.now() >= issued.expires_at:
        raise ApiError(401, "The access token expired")
    return issued


def _call(state: FakeState, req: Request, route: Route, args: tuple[str, ...]) -> Response:
    token = _authenticate(state, req)
    ctx = Ctx(state, req, token, state.users.get(token.user_id), args)
    if route.scopes and not token.scopes & route.scopes:
        if ctx.account is None:
            raise ApiError(401, "This request requires user authentication.")
        raise ApiError(403, "Insufficient client scope")
    market = req.query.get("market")
    if market is not None and _MARKET.match(market) is None:
        raise ApiError(400, "Invalid market code")
    return route.handler(ctx)


def handle(state: FakeState, req: Request) -> Response:
    """Answer one request whose path starts with `/v1`."""
    # Spotify ignores a trailing slash, and spotipy sends one on some calls ("me/").
    path = req.path[len("/v1") :].rstrip("/") or "/"
    matched_path = False
    for route, pattern in _COMPILED:
        found = pattern.match(path)
        if found is None:
            continue
        matched_path = True
        if route.method != req.method:
            continue
        with state.lock:
            try:
                return _call(state, req, route, found.groups())
            except ApiError as err:
                response = err.response()
                if err.status == 401:
                    response.headers["WWW-Authenticate"] = (
                        f'Bearer realm="spotify", error="invalid_token", '
                        f'error_description="{err.message}"'
                    )
                return response
    if matched_path:
        return api_error(405, "Method not allowed")
    return api_error(404, "Service not found")
