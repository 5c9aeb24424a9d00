"""Deprecated operations answer as Spotify answers development-mode apps: 403 Forbidden,
all of them alike (after the token is checked), and they change nothing."""

from __future__ import annotations

from runner.testing.fake.api.base import Ctx, Route
from runner.testing.fake.wire import ApiError, Response

# Every operation the OpenAPI description marks deprecated (tests check this list against it).
DEPRECATED: tuple[tuple[str, str], ...] = (
    ("GET", "/albums"),
    ("GET", "/artists"),
    ("GET", "/artists/{id}/top-tracks"),
    ("GET", "/artists/{id}/related-artists"),
    ("GET", "/shows"),
    ("GET", "/episodes"),
    ("GET", "/audiobooks"),
    ("PUT", "/me/audiobooks"),
    ("DELETE", "/me/audiobooks"),
    ("GET", "/me/audiobooks/contains"),
    ("GET", "/chapters"),
    ("GET", "/tracks"),
    ("GET", "/playlists/{playlist_id}/tracks"),
    ("POST", "/playlists/{playlist_id}/tracks"),
    ("PUT", "/playlists/{playlist_id}/tracks"),
    ("DELETE", "/playlists/{playlist_id}/tracks"),
    ("PUT", "/me/albums"),
    ("DELETE", "/me/albums"),
    ("GET", "/me/albums/contains"),
    ("PUT", "/me/tracks"),
    ("DELETE", "/me/tracks"),
    ("GET", "/me/tracks/contains"),
    ("PUT", "/me/episodes"),
    ("DELETE", "/me/episodes"),
    ("GET", "/me/episodes/contains"),
    ("PUT", "/me/shows"),
    ("DELETE", "/me/shows"),
    ("GET", "/me/shows/contains"),
    ("GET", "/users/{user_id}"),
    ("GET", "/users/{user_id}/playlists"),
    ("POST", "/users/{user_id}/playlists"),
    ("PUT", "/playlists/{playlist_id}/followers"),
    ("DELETE", "/playlists/{playlist_id}/followers"),
    ("GET", "/browse/featured-playlists"),
    ("GET", "/browse/categories"),
    ("GET", "/browse/categories/{category_id}"),
    ("GET", "/browse/categories/{category_id}/playlists"),
    ("GET", "/browse/new-releases"),
    ("PUT", "/me/following"),
    ("DELETE", "/me/following"),
    ("GET", "/me/following/contains"),
    ("GET", "/playlists/{playlist_id}/followers/contains"),
    ("GET", "/audio-features"),
    ("GET", "/audio-features/{id}"),
    ("GET", "/audio-analysis/{id}"),
    ("GET", "/recommendations"),
    ("GET", "/recommendations/available-genre-seeds"),
    ("GET", "/markets"),
)


def forbidden(ctx: Ctx) -> Response:
    """Any deprecated operation: 403, as for development-mode apps."""
    raise ApiError(403, "Forbidden")


ROUTES: tuple[Route, ...] = tuple(Route(method, path, forbidden) for method, path in DEPRECATED)
