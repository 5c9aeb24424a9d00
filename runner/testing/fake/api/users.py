"""The current user: profile, top tracks and artists, recently played."""

from __future__ import annotations

from typing import Any

from runner.testing.fake import objects
from runner.testing.fake.api.base import Ctx, Route, int_param, limit, ok, paged, route, url
from runner.testing.fake.catalog import iso
from runner.testing.fake.model import TIME_RANGES
from runner.testing.fake.wire import ApiError, Response

# /me answers every user its public profile; these fields only with the scope for them.
PRIVATE_FIELDS = ("country", "product", "explicit_content")


def me(ctx: Ctx) -> Response:
    """GET /me: `country`, `product` and `explicit_content` need user-read-private, `email`
    needs user-read-email."""
    obj = ctx.state.user_object(ctx.user)
    if not ctx.has_scope("user-read-private"):
        for name in PRIVATE_FIELDS:
            obj.pop(name, None)
    if not ctx.has_scope("user-read-email"):
        obj.pop("email", None)
    return ok(obj)


def _time_range(ctx: Ctx) -> str:
    time_range = ctx.req.query.get("time_range", "medium_term")
    if time_range not in TIME_RANGES:
        raise ApiError(400, "Invalid time range")
    return time_range


def top_tracks(ctx: Ctx) -> Response:
    """GET /me/top/tracks."""
    time_range = _time_range(ctx)
    uris = ctx.user.top.get(time_range, [])
    body = paged(
        ctx,
        "/me/top/tracks",
        uris,
        lambda u: objects.track(ctx.state, ctx.state.track_record(u)),
        extra={"time_range": time_range},
    )
    return ok(body)


def top_artists(ctx: Ctx) -> Response:
    """GET /me/top/artists."""
    time_range = _time_range(ctx)
    ids = ctx.user.top_artists.get(time_range, [])
    body = paged(
        ctx,
        "/me/top/artists",
        ids,
        lambda a: objects.artist(ctx.state, ctx.state.artists[a]),
        extra={"time_range": time_range},
    )
    return ok(body)


def _iso_ms(ts: float) -> str:
    millis = int(round(ts * 1000)) % 1000
    return iso(ts)[:-1] + f".{millis:03d}Z"


def _play(ctx: Ctx, uri: str, at: float) -> dict[str, Any]:
    """A PlayHistoryObject; the fake plays every track from its album."""
    track = objects.track(ctx.state, ctx.state.track_record(uri))
    context = {k: track["album"][k] for k in ("type", "href", "external_urls", "uri")}
    return {"track": track, "played_at": _iso_ms(at), "context": context}


def recently_played(ctx: Ctx) -> Response:
    """GET /me/player/recently-played: newest first, cursors in Unix milliseconds."""
    size = limit(ctx.req)
    after = int_param(ctx.req, "after", -1, 0, None, "Invalid after")
    before = int_param(ctx.req, "before", -1, 0, None, "Invalid before")
    if after >= 0 and before >= 0:
        raise ApiError(400, "Only one of 'after' and 'before' may be given")
    plays = [(uri, at, int(round(at * 1000))) for uri, at in ctx.user.plays]
    if after >= 0:
        newer = [p for p in plays if p[2] > after]  # oldest first
        chosen = list(reversed(newer[:size]))
        more = len(newer) > size
    else:
        older = [p for p in reversed(plays) if before < 0 or p[2] < before]  # newest first
        chosen = older[:size]
        more = len(older) > size
    # No plays: no cursors (an empty object; the spec's CursorObject is not nullable).
    cursors = {"after": str(chosen[0][2]), "before": str(chosen[-1][2])} if chosen else {}
    next_url = None
    path = "/me/player/recently-played"
    if more and chosen:
        cursor = {"after": chosen[0][2]} if after >= 0 else {"before": chosen[-1][2]}
        next_url = url(ctx, path, {**cursor, "limit": size})
    query = {
        "after": after if after >= 0 else None,
        "before": before if before >= 0 else None,
        "limit": size,
    }
    body: dict[str, Any] = {
        "href": url(ctx, path, query),
        "items": [_play(ctx, uri, at) for uri, at, _ in chosen],
        "limit": size,
        "next": next_url,
        "cursors": cursors,
    }
    return ok(body)


ROUTES: tuple[Route, ...] = (
    route("GET", "/me", me),
    route("GET", "/me/top/tracks", top_tracks, "user-top-read"),
    route("GET", "/me/top/artists", top_artists, "user-top-read"),
    route("GET", "/me/player/recently-played", recently_played, "user-read-recently-played"),
)
