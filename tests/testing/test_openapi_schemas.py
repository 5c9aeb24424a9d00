"""Every answer of every current operation fits the OpenAPI description's response schema
(deprecated fields aside), checked by a real OpenAPI 3.0 schema validator."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from fake_world import JPEG, World
from openapi_spec import Operation, current, require_spec, response_schema, validate

from runner.testing import FakeSpotify, Fault
from runner.testing.fake.api import ROUTES
from runner.testing.harness import ALL_SCOPES

SERVED = {(r.method, r.template): r for r in ROUTES}


@dataclass
class Call:
    """One request: path (under /v1), query, JSON body or raw bytes, and the status expected."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: bytes | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def _many(w: World) -> str:
    return ",".join([w.tracks[0], w.album, w.artist, w.show, f"spotify:playlist:{w.playlist}"])


CALLS: dict[str, Callable[[World], list[Call]]] = {
    "GET /albums/{id}": lambda w: [Call(f"/albums/{w.id(w.album)}", {"market": "DE"})],
    "GET /albums/{id}/tracks": lambda w: [Call(f"/albums/{w.id(w.album)}/tracks", {"limit": 1})],
    "GET /artists/{id}": lambda w: [Call(f"/artists/{w.id(w.artist)}")],
    "GET /artists/{id}/albums": lambda w: [
        Call(f"/artists/{w.id(w.artist)}/albums", {"include_groups": "album,single"})
    ],
    "GET /shows/{id}": lambda w: [Call(f"/shows/{w.id(w.show)}")],
    "GET /shows/{id}/episodes": lambda w: [Call(f"/shows/{w.id(w.show)}/episodes", {"limit": 2})],
    "GET /episodes/{id}": lambda w: [Call(f"/episodes/{w.id(w.episodes[0])}")],
    "GET /audiobooks/{id}": lambda w: [Call(f"/audiobooks/{w.id(w.audiobook)}")],
    "GET /audiobooks/{id}/chapters": lambda w: [
        Call(f"/audiobooks/{w.id(w.audiobook)}/chapters", {"limit": 2})
    ],
    "GET /me/audiobooks": lambda w: [Call("/me/audiobooks")],
    "GET /chapters/{id}": lambda w: [Call(f"/chapters/{w.id(w.chapters[0])}")],
    "GET /tracks/{id}": lambda w: [Call(f"/tracks/{w.id(w.tracks[0])}")],
    "GET /search": lambda w: [
        Call(
            "/search",
            {
                "q": "blue",
                "type": "album,artist,playlist,track,show,episode,audiobook",
                "limit": 10,
            },
        ),
        Call("/search", {"q": "night", "type": "show,episode"}),
        Call("/search", {"q": "long book", "type": "audiobook"}),
        Call("/search", {"q": "mix", "type": "playlist"}),
    ],
    "GET /me": lambda w: [Call("/me")],
    "GET /playlists/{playlist_id}": lambda w: [
        Call(f"/playlists/{w.playlist}", {"additional_types": "track,episode"})
    ],
    "PUT /playlists/{playlist_id}": lambda w: [
        Call(f"/playlists/{w.playlist}", json={"name": "Renamed", "description": "d"})
    ],
    "GET /playlists/{playlist_id}/items": lambda w: [
        Call(f"/playlists/{w.playlist}/items", {"limit": 2, "additional_types": "episode"})
    ],
    "POST /playlists/{playlist_id}/items": lambda w: [
        Call(f"/playlists/{w.playlist}/items", json={"uris": [w.tracks[4]]}, status=201)
    ],
    "PUT /playlists/{playlist_id}/items": lambda w: [
        Call(f"/playlists/{w.playlist}/items", json={"range_start": 0, "insert_before": 2}),
        Call(f"/playlists/{w.playlist}/items", json={"uris": [w.tracks[0], w.episodes[2]]}),
    ],
    "DELETE /playlists/{playlist_id}/items": lambda w: [
        Call(f"/playlists/{w.playlist}/items", json={"items": [{"uri": w.tracks[0]}]})
    ],
    "GET /me/playlists": lambda w: [Call("/me/playlists")],
    "POST /me/playlists": lambda w: [Call("/me/playlists", json={"name": "New"}, status=201)],
    "PUT /me/library": lambda w: [Call("/me/library", {"uris": _many(w).replace(w.artist, "")})],
    "DELETE /me/library": lambda w: [Call("/me/library", {"uris": w.album})],
    "GET /me/library/contains": lambda w: [Call("/me/library/contains", {"uris": _many(w)})],
    "GET /me/albums": lambda w: [Call("/me/albums")],
    "GET /me/tracks": lambda w: [Call("/me/tracks")],
    "GET /me/episodes": lambda w: [Call("/me/episodes")],
    "GET /me/shows": lambda w: [Call("/me/shows")],
    "GET /playlists/{playlist_id}/images": lambda w: [Call(f"/playlists/{w.playlist}/images")],
    "PUT /playlists/{playlist_id}/images": lambda w: [
        Call(
            f"/playlists/{w.playlist}/images",
            data=base64.b64encode(JPEG),
            headers={"Content-Type": "image/jpeg"},
            status=202,
        )
    ],
    "GET /me/following": lambda w: [Call("/me/following", {"type": "artist", "limit": 1})],
    "GET /me/player": lambda w: [Call("/me/player", {"additional_types": "episode"})],
    "PUT /me/player": lambda w: [
        Call("/me/player", json={"device_ids": [w.other_device], "play": True}, status=204)
    ],
    "GET /me/player/devices": lambda w: [Call("/me/player/devices")],
    "GET /me/player/currently-playing": lambda w: [Call("/me/player/currently-playing")],
    "PUT /me/player/play": lambda w: [
        Call(
            "/me/player/play",
            json={"context_uri": w.album, "offset": {"position": 1}},
            status=204,
        ),
        Call("/me/player/play", {"device_id": w.device}, json={"uris": w.tracks}, status=204),
    ],
    "PUT /me/player/pause": lambda w: [Call("/me/player/pause", status=204)],
    "POST /me/player/next": lambda w: [Call("/me/player/next", status=204)],
    "POST /me/player/previous": lambda w: [Call("/me/player/previous", status=204)],
    "PUT /me/player/seek": lambda w: [Call("/me/player/seek", {"position_ms": 1000}, status=204)],
    "PUT /me/player/repeat": lambda w: [
        Call("/me/player/repeat", {"state": "context"}, status=204)
    ],
    "PUT /me/player/volume": lambda w: [
        Call("/me/player/volume", {"volume_percent": 80}, status=204)
    ],
    "PUT /me/player/shuffle": lambda w: [Call("/me/player/shuffle", {"state": "true"}, status=204)],
    "GET /me/player/recently-played": lambda w: [Call("/me/player/recently-played")],
    "GET /me/player/queue": lambda w: [Call("/me/player/queue")],
    "POST /me/player/queue": lambda w: [
        Call("/me/player/queue", {"uri": w.episodes[0]}, status=204)
    ],
    "GET /me/top/artists": lambda w: [Call("/me/top/artists")],
    "GET /me/top/tracks": lambda w: [Call("/me/top/tracks", {"time_range": "medium_term"})],
}


def test_every_current_operation_has_a_call() -> None:
    require_spec()
    assert sorted(CALLS) == sorted(op.name for op in current())


@pytest.mark.parametrize("op", current(), ids=lambda op: op.name)
def test_answers_fit_the_schema(op: Operation, world: World, http: requests.Session) -> None:
    for call in CALLS[op.name](world):
        answer = http.request(
            op.method,
            world.fake.api_url + call.path,
            params=call.params,
            json=call.json,
            data=call.data,
            headers={"Authorization": f"Bearer {world.token}", **call.headers},
            timeout=10,
        )
        assert answer.status_code == call.status, (call, answer.text)
        assert str(answer.status_code) in op.responses, f"{op.name} never answers {call.status}"
        if response_schema(op, answer.status_code) is None:
            assert answer.content == b"", f"{op.name} {call.status} has no body in the spec"
            continue
        validate(op, answer.status_code, answer.json())


@pytest.mark.parametrize("op", current(), ids=lambda op: op.name)
def test_refusals_fit_the_schema(op: Operation, world: World, http: requests.Session) -> None:
    """No token (401), no scope (403, where one is needed) and rate limited (429), as the
    operation's own error responses describe them."""
    call = CALLS[op.name](world)[0]
    url = world.fake.api_url + call.path
    refused = {401: http.request(op.method, url, params=call.params, timeout=10)}
    if SERVED[(op.method, op.path)].scopes:
        bare = world.fake.issue_access_token("alice", ())
        headers = {"Authorization": f"Bearer {bare}"}
        refused[403] = http.request(op.method, url, params=call.params, headers=headers, timeout=10)
    world.fake.inject(Fault(op.method, "^/v1" + re.escape(call.path) + "$", status=429))
    headers = {"Authorization": f"Bearer {world.token}"}
    refused[429] = http.request(op.method, url, params=call.params, headers=headers, timeout=10)
    for status, answer in refused.items():
        assert answer.status_code == status, (status, answer.text)
        validate(op, status, answer.json())
    assert refused[429].headers["Retry-After"] == "1"


def _bounded() -> list[tuple[Operation, str, Any, bool]]:
    """(operation, query parameter, value, accepted) for every bound the description sets:
    the minimum and maximum are taken, one past them and a value outside an enum are not."""
    cases = []
    for op in current():
        for param in op.parameters:
            schema = param.get("schema", {})
            if param["in"] != "query":
                continue
            name = param["name"]
            if "minimum" in schema:
                cases += [
                    (op, name, schema["minimum"], True),
                    (op, name, schema["minimum"] - 1, False),
                ]
            if "maximum" in schema:
                cases += [
                    (op, name, schema["maximum"], True),
                    (op, name, schema["maximum"] + 1, False),
                ]
            enum = schema.get("enum") or schema.get("items", {}).get("enum")
            if enum:
                cases += [(op, name, enum[-1], True), (op, name, "bogus", False)]
    return cases


@pytest.mark.parametrize(
    ("op", "name", "value", "accepted"),
    _bounded(),
    ids=lambda v: v.name if isinstance(v, Operation) else str(v),
)
def test_parameter_bounds_are_the_descriptions(
    op: Operation, name: str, value: Any, accepted: bool, world: World, http: requests.Session
) -> None:
    call = CALLS[op.name](world)[0]
    answer = http.request(
        op.method,
        world.fake.api_url + call.path,
        params={**call.params, name: value},
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=10,
    )
    if accepted:
        assert answer.status_code == call.status, answer.text
    else:
        assert answer.status_code == 400, answer.text
        validate(op, 401, answer.json())  # every refusal carries the same error object


@pytest.mark.parametrize(
    ("status", "path"),
    [(400, "/tracks/not-an-id"), (401, "/me"), (403, "/me/tracks"), (404, "/albums/" + "0" * 22)],
)
def test_errors_fit_the_error_schema(
    world: World, http: requests.Session, status: int, path: str
) -> None:
    token = world.fake.issue_access_token("alice", ())
    headers = {} if status == 401 else {"Authorization": f"Bearer {token}"}
    answer = http.get(world.fake.api_url + path, headers=headers, timeout=10)
    assert answer.status_code == status
    op = next(o for o in current() if o.name == "GET /me")
    validate(op, 401, answer.json())  # every error answer is the same ErrorObject wrapper


EMPTY = {
    "GET /me": {},
    "GET /me/playlists": {},
    "GET /me/tracks": {},
    "GET /me/albums": {},
    "GET /me/episodes": {},
    "GET /me/shows": {},
    "GET /me/audiobooks": {},
    "GET /me/following": {"type": "artist"},
    "GET /me/top/artists": {},
    "GET /me/top/tracks": {},
    "GET /me/player/devices": {},
    "GET /me/player/recently-played": {},
    "GET /me/player/queue": {},
    "GET /search": {"q": "nothing", "type": "album,artist,playlist,track,show,episode,audiobook"},
    "GET /me/library/contains": {"uris": "spotify:track:" + "0" * 22},
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_answers_about_nothing_fit_the_schema(
    name: str, fake: FakeSpotify, http: requests.Session
) -> None:
    """A new user with nothing saved, played or playing still gets well-formed answers."""
    op = next(o for o in current() if o.name == name)
    token = fake.issue_access_token("alice", ALL_SCOPES)
    answer = http.get(
        fake.api_url + op.path,
        params=EMPTY[name],
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    validate(op, 200, answer.json())
