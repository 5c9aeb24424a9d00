"""The user's library: `/me/library` (save, remove, contains) and the saved-item lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.testing.fake import objects
from runner.testing.fake.api.base import (
    Ctx,
    Route,
    limit,
    ok,
    paged,
    require_scope,
    required,
    route,
    url,
)
from runner.testing.fake.api.catalog import full_album, full_audiobook, resume_point
from runner.testing.fake.catalog import iso
from runner.testing.fake.model import ANY_URI, BASE62_ID
from runner.testing.fake.user_setup import MODIFY_SCOPE, READ_SCOPE
from runner.testing.fake.wire import ApiError, Response

MAX_LIBRARY_URIS = 40
# What PUT and DELETE accept; contains also takes artists (the spec lists no artist for
# saving: following artists is not open to apps).
SAVABLE = ("track", "album", "episode", "show", "audiobook", "user", "playlist")
CHECKABLE = (*SAVABLE, "artist")
LIBRARY_READ = "user-library-read"


def _uris(ctx: Ctx, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """The `uris` parameter as (uri, kind) pairs, checked as the spec says."""
    uris = [u for u in required(ctx.req, "uris").split(",") if u]
    if not uris:
        raise ApiError(400, "Missing required parameter: uris")
    if len(uris) > MAX_LIBRARY_URIS:
        raise ApiError(400, "Too many ids requested")
    checked = []
    for uri in uris:
        found = ANY_URI.match(uri)
        if found is None or (found.group(1) != "user" and not BASE62_ID.match(found.group(2))):
            raise ApiError(400, f"Invalid URI: {uri}")
        if found.group(1) not in kinds:
            raise ApiError(400, f"Unsupported URI type: {found.group(1)}")
        checked.append((uri, found.group(1)))
    return checked


def _scopes_for(ctx: Ctx, pairs: list[tuple[str, str]], table: dict[str, str]) -> None:
    for scope in {table[kind] for _, kind in pairs}:
        require_scope(ctx, scope)


def save(ctx: Ctx) -> Response:
    """PUT /me/library: user-library-modify for tracks, albums, episodes, shows and
    audiobooks, user-follow-modify for users, playlist-modify-public for playlists."""
    pairs = _uris(ctx, SAVABLE)
    _scopes_for(ctx, pairs, MODIFY_SCOPE)
    for uri, _ in pairs:
        if not ctx.state.catalog_has(uri):
            raise ApiError(400, "Payload contains a non-existing ID")
    ctx.state.save_to_library(ctx.user.id, [u for u, _ in pairs])
    return Response(200)


def remove(ctx: Ctx) -> Response:
    """DELETE /me/library (same scopes as saving)."""
    pairs = _uris(ctx, SAVABLE)
    _scopes_for(ctx, pairs, MODIFY_SCOPE)
    ctx.state.remove_from_library(ctx.user.id, [u for u, _ in pairs])
    return Response(200)


def contains(ctx: Ctx) -> Response:
    """GET /me/library/contains: one boolean per URI, in order."""
    pairs = _uris(ctx, CHECKABLE)
    _scopes_for(ctx, pairs, READ_SCOPE)
    return ok([ctx.state.in_library(ctx.user.id, uri) for uri, _ in pairs])


def saved_tracks(ctx: Ctx) -> Response:
    """GET /me/tracks: Liked Songs, newest first."""
    newest_first = list(reversed(ctx.user.saved))
    return ok(
        paged(
            ctx,
            "/me/tracks",
            newest_first,
            lambda s: {
                "added_at": iso(s[1]),
                "track": objects.track(ctx.state, ctx.state.track_record(s[0])),
            },
        )
    )


def _saved(ctx: Ctx, kind: str, render: Callable[[str], dict[str, Any]]) -> Response:
    uris = [u for u in reversed(ctx.user.library) if u.startswith(f"spotify:{kind}:")]
    library = ctx.user.library

    def item(uri: str) -> dict[str, Any]:
        return {"added_at": iso(library[uri]), kind: render(uri.rsplit(":", 1)[1])}

    return ok(paged(ctx, f"/me/{kind}s", uris, item))


def saved_albums(ctx: Ctx) -> Response:
    """GET /me/albums: SavedAlbumObjects, newest first."""
    return _saved(ctx, "album", lambda a: full_album(ctx, ctx.state.albums[a]))


def saved_episodes(ctx: Ctx) -> Response:
    """GET /me/episodes (the resume point needs user-read-playback-position)."""
    resume = resume_point(ctx)
    return _saved(
        ctx, "episode", lambda e: objects.episode(ctx.state, ctx.state.episodes[e], resume)
    )


def saved_shows(ctx: Ctx) -> Response:
    """GET /me/shows."""
    return _saved(ctx, "show", lambda s: objects.simplified_show(ctx.state, ctx.state.shows[s]))


def saved_audiobooks(ctx: Ctx) -> Response:
    """GET /me/audiobooks."""
    return _saved(ctx, "audiobook", lambda b: full_audiobook(ctx, ctx.state.audiobooks[b]))


def followed_artists(ctx: Ctx) -> Response:
    """GET /me/following?type=artist: cursor-paged by the last artist id seen (`after`)."""
    if required(ctx.req, "type") != "artist":
        raise ApiError(400, "Only type=artist is supported")
    size = limit(ctx.req)
    prefix = "spotify:artist:"
    ids = [u[len(prefix) :] for u in reversed(ctx.user.library) if u.startswith(prefix)]
    after = ctx.req.query.get("after")
    start = 0
    if after:
        if after not in ids:
            raise ApiError(400, "Invalid after cursor")
        start = ids.index(after) + 1
    chosen = ids[start : start + size]
    more = start + size < len(ids)
    last = chosen[-1] if chosen else None
    params = {"type": "artist", "limit": size}
    body = {
        "href": url(ctx, "/me/following", {**params, "after": after}),
        "limit": size,
        "next": url(ctx, "/me/following", {**params, "after": last}) if more else None,
        "cursors": {"after": last} if more else {},
        "total": len(ids),
        "items": [objects.artist(ctx.state, ctx.state.artists[a]) for a in chosen],
    }
    return ok({"artists": body})


ROUTES: tuple[Route, ...] = (
    # /me/library checks the scope each URI's type needs.
    route("PUT", "/me/library", save),
    route("DELETE", "/me/library", remove),
    route("GET", "/me/library/contains", contains),
    route("GET", "/me/tracks", saved_tracks, LIBRARY_READ),
    route("GET", "/me/albums", saved_albums, LIBRARY_READ),
    route("GET", "/me/episodes", saved_episodes, LIBRARY_READ),
    route("GET", "/me/shows", saved_shows, LIBRARY_READ),
    route("GET", "/me/audiobooks", saved_audiobooks, LIBRARY_READ),
    route("GET", "/me/following", followed_artists, "user-follow-read"),
)
