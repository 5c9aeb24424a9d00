"""Every route the fake serves exists in Spotify's OpenAPI description and is not deprecated,
except `/playlists/{playlist_id}/tracks`, served on purpose to answer 403 as Spotify does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from runner.testing import FakeSpotify
from runner.testing.fake.api import DEPRECATED_SERVED, ROUTES, Route

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "spotify-web-api" / "openapi.yml"


@pytest.fixture(scope="module")
def spec_paths() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"the Spotify OpenAPI description is not at {SPEC.resolve()}")
    with SPEC.open(encoding="utf-8") as handle:
        paths: dict[str, Any] = yaml.safe_load(handle)["paths"]
    return paths


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.template}" for r in ROUTES])
def test_route_is_in_spec(spec_paths: dict[str, Any], route: Route) -> None:
    operations = spec_paths.get(route.template)
    assert operations is not None, f"{route.template} is not in the OpenAPI description"
    operation = operations.get(route.method.lower())
    assert operation is not None, f"{route.method} {route.template} is not in the description"
    deprecated = bool(operation.get("deprecated", False))
    if route.template in DEPRECATED_SERVED:
        assert deprecated, f"{route.template} was expected to be deprecated"
    else:
        assert not deprecated, f"{route.method} {route.template} is deprecated"


def test_deprecated_routes_only_answer_403(fake: FakeSpotify, http: requests.Session) -> None:
    pid = fake.add_playlist(uris=fake.make_tracks(1))
    token = fake.issue_access_token(scopes=("playlist-read-private", "playlist-modify-private"))
    for route in ROUTES:
        if route.template not in DEPRECATED_SERVED:
            continue
        path = route.template.replace("{playlist_id}", pid)
        answer = http.request(
            route.method, fake.api_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 403
        assert answer.json() == {"error": {"status": 403, "message": "Forbidden"}}
    assert fake.playlist_uris(pid) == fake.make_tracks(1)
