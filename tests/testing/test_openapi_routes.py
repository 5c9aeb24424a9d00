"""The fake serves exactly Spotify's OpenAPI description: every current operation, every
deprecated one refused with 403 as for development-mode apps, nothing else, and the scopes the
description lists."""

from __future__ import annotations

import re

import pytest
import requests
from openapi_spec import Operation, current, operations, require_spec

from runner.testing import FakeSpotify
from runner.testing.fake.api import DEPRECATED_SERVED, ROUTES, Route
from runner.testing.fake.api.deprecated import forbidden

SERVED = {(r.method, r.template): r for r in ROUTES}
# Operations whose scopes the spec lists but that answer without them, each with the reason;
# the handler checks what it needs itself (tests in test_fake_api.py and test_fake_breadth.py).
SCOPE_IN_HANDLER = {
    "GET /me": "user-read-private / user-read-email unlock fields, not the call",
    "GET /me/playlists": "public playlists list without a scope; private ones need it",
    "GET /playlists/{playlist_id}/items": "needs playlist-read-private only for private ones",
    "PUT /me/library": "the scope depends on each URI's type",
    "DELETE /me/library": "the scope depends on each URI's type",
    "GET /me/library/contains": "the scope depends on each URI's type",
    "GET /shows/{id}": "user-read-playback-position unlocks the resume point",
    "GET /shows/{id}/episodes": "user-read-playback-position unlocks the resume point",
    "GET /episodes/{id}": "user-read-playback-position unlocks the resume point",
}


def _fill(template: str) -> str:
    """A concrete path for a template (any well-formed id will do for these checks)."""
    return re.sub(r"\{[^}]+\}", "4uLU6hMCjMI75M1A2tKUQC", template)


def test_the_description_is_here_and_lists_operations() -> None:
    require_spec()  # fails in CI (which has ../shared), skips elsewhere
    assert len(current()) >= 49
    assert all(op.method in ("GET", "PUT", "POST", "DELETE") for op in operations())


@pytest.mark.parametrize("op", current(), ids=lambda op: op.name)
def test_every_current_operation_is_served(op: Operation) -> None:
    route = SERVED.get((op.method, op.path))
    assert route is not None, f"the fake does not serve {op.name}"
    assert route.handler is not forbidden, f"{op.name} is current but the fake refuses it"


@pytest.mark.parametrize("op", [o for o in operations() if o.deprecated], ids=lambda o: o.name)
def test_every_deprecated_operation_is_refused(op: Operation) -> None:
    assert (op.method, op.path) in DEPRECATED_SERVED
    assert SERVED[(op.method, op.path)].handler is forbidden


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.template}" for r in ROUTES])
def test_every_route_is_in_the_description(route: Route) -> None:
    require_spec()
    known = {(op.method, op.path): op for op in operations()}
    op = known.get((route.method, route.template))
    assert op is not None, f"{route.method} {route.template} is not in the description"
    assert op.deprecated == ((route.method, route.template) in DEPRECATED_SERVED)


@pytest.mark.parametrize("op", current(), ids=lambda op: op.name)
def test_scopes_are_the_descriptions(op: Operation) -> None:
    route = SERVED[(op.method, op.path)]
    assert route.scopes <= op.scopes, f"{op.name} asks for scopes the description does not list"
    if op.scopes and not route.scopes:
        assert op.name in SCOPE_IN_HANDLER, f"{op.name} needs one of {sorted(op.scopes)}"


def test_a_token_without_the_scope_is_refused_everywhere(
    fake: FakeSpotify, http: requests.Session
) -> None:
    token = fake.issue_access_token(scopes=())
    checked = 0
    for route in ROUTES:
        if not route.scopes:
            continue
        answer = http.request(
            route.method,
            fake.api_url + _fill(route.template),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 403, route
        assert answer.json()["error"]["message"] == "Insufficient client scope"
        checked += 1
    assert checked >= 25


def test_deprecated_operations_answer_403_and_change_nothing(
    fake: FakeSpotify, http: requests.Session
) -> None:
    pid = fake.add_playlist(uris=fake.make_tracks(1))
    uri = fake.make_tracks(1)[0]
    token = fake.issue_access_token(scopes=("playlist-read-private", "playlist-modify-private"))
    for method, template in sorted(DEPRECATED_SERVED):
        path = template.replace("{playlist_id}", pid).replace("{id}", uri.rsplit(":", 1)[1])
        path = _fill(path)
        answer = http.request(
            method,
            fake.api_url + path,
            params={"ids": uri.rsplit(":", 1)[1], "type": "artist"},
            json={"uris": [uri]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 403, (method, template)
        assert answer.json() == {"error": {"status": 403, "message": "Forbidden"}}
        unauthenticated = http.request(method, fake.api_url + path, timeout=10)
        assert unauthenticated.status_code == 401
    assert fake.playlist_uris(pid) == fake.make_tracks(1)
    assert fake.library_uris("alice", "track") == []
