"""Spotify Web API requests for metrics: each URL reduced to its OpenAPI path template.

`/v1/playlists/37i9dQZF1DX.../items` is counted as `/playlists/{playlist_id}/items`: labels never
carry a raw id, so their number stays bounded. The templates are the `paths` of the Web API's
OpenAPI description (a test keeps this list equal to it).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

OTHER = "other"

TEMPLATES = (
    "/albums",
    "/albums/{id}",
    "/albums/{id}/tracks",
    "/artists",
    "/artists/{id}",
    "/artists/{id}/albums",
    "/artists/{id}/related-artists",
    "/artists/{id}/top-tracks",
    "/audio-analysis/{id}",
    "/audio-features",
    "/audio-features/{id}",
    "/audiobooks",
    "/audiobooks/{id}",
    "/audiobooks/{id}/chapters",
    "/browse/categories",
    "/browse/categories/{category_id}",
    "/browse/categories/{category_id}/playlists",
    "/browse/featured-playlists",
    "/browse/new-releases",
    "/chapters",
    "/chapters/{id}",
    "/episodes",
    "/episodes/{id}",
    "/markets",
    "/me",
    "/me/albums",
    "/me/albums/contains",
    "/me/audiobooks",
    "/me/audiobooks/contains",
    "/me/episodes",
    "/me/episodes/contains",
    "/me/following",
    "/me/following/contains",
    "/me/library",
    "/me/library/contains",
    "/me/player",
    "/me/player/currently-playing",
    "/me/player/devices",
    "/me/player/next",
    "/me/player/pause",
    "/me/player/play",
    "/me/player/previous",
    "/me/player/queue",
    "/me/player/recently-played",
    "/me/player/repeat",
    "/me/player/seek",
    "/me/player/shuffle",
    "/me/player/volume",
    "/me/playlists",
    "/me/shows",
    "/me/shows/contains",
    "/me/top/artists",
    "/me/top/tracks",
    "/me/tracks",
    "/me/tracks/contains",
    "/playlists/{playlist_id}",
    "/playlists/{playlist_id}/followers",
    "/playlists/{playlist_id}/followers/contains",
    "/playlists/{playlist_id}/images",
    "/playlists/{playlist_id}/items",
    "/playlists/{playlist_id}/tracks",
    "/recommendations",
    "/recommendations/available-genre-seeds",
    "/search",
    "/shows",
    "/shows/{id}",
    "/shows/{id}/episodes",
    "/tracks",
    "/tracks/{id}",
    "/users/{user_id}",
    "/users/{user_id}/playlists",
)


def _split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


_PARSED = tuple((template, _split(template)) for template in TEMPLATES)


@lru_cache(maxsize=1024)
def endpoint_template(url: str, base_path: str = "/v1") -> str:
    """The OpenAPI path template a request URL matches, or `other`.

    Args:
        url: the request URL (or its path).
        base_path: the API's base path, stripped first (`/v1`, the `servers` URL's path).
    """
    path = urlsplit(url).path
    if base_path and (path == base_path or path.startswith(base_path.rstrip("/") + "/")):
        path = path[len(base_path.rstrip("/")) :]
    parts = _split(path)
    best: tuple[int, str] | None = None
    for template, pattern in _PARSED:
        if len(pattern) != len(parts):
            continue
        literal = 0
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{"):
                continue
            if want != got:
                break
            literal += 1
        else:
            # The template with the most literal segments wins: /me/playlists over /users/{id}/...
            if best is None or literal > best[0]:
                best = (literal, template)
    return best[1] if best else OTHER
