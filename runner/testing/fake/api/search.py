"""`GET /search` over every type: tracks, artists, albums, playlists, shows, episodes and
audiobooks; `limit` 1..10 (default 5), `offset` at most 1000."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from runner.testing.fake import catalog, objects
from runner.testing.fake.api.base import Ctx, Route, limit, offset, ok, page, route
from runner.testing.fake.api.playlists import simplified_playlist
from runner.testing.fake.wire import ApiError, Response

MAX_SEARCH_PAGE = 10
MAX_SEARCH_OFFSET = 1000
SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
# Which field filters narrow which result types (the spec's description of `q`).
FILTERS_FOR = {
    "track": {"artist", "album", "track", "isrc", "year", "genre"},
    "album": {"artist", "album", "year", "upc", "tag"},
    "artist": {"artist", "year", "genre"},
}


def _score(name: str, others: Iterable[str], free: list[str]) -> int | None:
    """None unless every free word is in the name or the other texts; name words weigh more."""
    name_words = catalog.words(name)
    other_words = {w for text in others for w in catalog.words(text)}
    if any(w not in name_words and w not in other_words for w in free):
        return None
    score = sum(2 for w in free if w in name_words) + sum(1 for w in free if w in other_words)
    return score + (100 if free and free == name_words else 0)


def _ranked(candidates: Iterable[tuple[Any, int | None]]) -> list[Any]:
    hits = [
        (-score, index, item) for index, (item, score) in enumerate(candidates) if score is not None
    ]
    hits.sort(key=lambda h: (h[0], h[1]))
    return [h[2] for h in hits]


def _matches(ctx: Ctx, kind: str, free: list[str], filters: dict[str, list[str]]) -> list[Any]:
    """Matching records of one type, best first, each rendered as the search answers it."""
    state = ctx.state
    if any(name not in FILTERS_FOR.get(kind, set()) for name in filters):
        return []  # a filter this type does not take matches nothing of it
    if kind == "track":
        scored = []
        for record in state.tracks.values():
            score = catalog.search_score(record, free, filters)
            if score is not None:
                scored.append((-score, record.order, record))
        scored.sort(key=lambda s: (s[0], s[1]))
        return [objects.track(state, s[2]) for s in scored]
    render: Callable[[Any], dict[str, Any]]
    pool: list[tuple[Any, int | None]]
    if kind == "artist":
        pool = [
            (a, _score(a.name, a.genres, free + filters.get("artist", [])))
            for a in state.artists.values()
        ]
        render = lambda a: objects.artist(state, a)  # noqa: E731
    elif kind == "album":
        wanted = free + filters.get("album", [])
        pool = [
            (a, _score(a.name, a.artists, wanted) if _artist_ok(a.artists, filters) else None)
            for a in sorted(state.albums.values(), key=lambda a: a.order)
            if a.track_ids
        ]
        render = lambda a: objects.simplified_album(state, a)  # noqa: E731
    elif kind == "playlist":
        pool = [
            (p, _score(p.name, [p.description], free))
            for p in state.playlists.values()
            if p.public and not p.deleted and not p.algorithmic
        ]
        render = lambda p: simplified_playlist(ctx, p)  # noqa: E731
    elif kind == "show":
        pool = [(s, _score(s.name, [s.publisher], free)) for s in state.shows.values()]
        render = lambda s: objects.simplified_show(state, s)  # noqa: E731
    elif kind == "episode":
        pool = [
            (e, _score(e.name, [state.shows[e.show_id].name], free))
            for e in state.episodes.values()
        ]
        render = lambda e: objects.simplified_episode(state, e)  # noqa: E731
    else:
        pool = [
            (b, _score(b.name, [*b.authors, *b.narrators], free)) for b in state.audiobooks.values()
        ]
        render = lambda b: objects.simplified_audiobook(state, b)  # noqa: E731
    return [render(item) for item in _ranked(pool)]


def _artist_ok(artists: list[str], filters: dict[str, list[str]]) -> bool:
    words = {w for a in artists for w in catalog.words(a)}
    return all(w in words for w in filters.get("artist", []))


def search(ctx: Ctx) -> Response:
    """GET /search."""
    # Spotify's own `next` links spell the parameter `query`; it accepts both.
    q = ctx.req.query.get("q", ctx.req.query.get("query", ""))
    if not q.strip():
        raise ApiError(400, "No search query")
    types = [t for t in ctx.req.query.get("type", "").split(",") if t]
    if not types:
        raise ApiError(400, "Missing parameter type")
    for t in types:
        if t not in SEARCH_TYPES:
            raise ApiError(400, f"Bad search type field {t}")
    include = ctx.req.query.get("include_external")
    if include is not None and include != "audio":
        raise ApiError(400, "Invalid include_external value")
    size = limit(ctx.req, default=5, high=MAX_SEARCH_PAGE)
    start = offset(ctx.req, MAX_SEARCH_OFFSET)
    free, filters = catalog.parse_query(q)
    extra = {"query": q, "type": ",".join(types)}
    body: dict[str, Any] = {}
    for t in types:
        found = _matches(ctx, t, free, filters)
        body[t + "s"] = page(
            ctx,
            "/search",
            found[start : start + size],
            start,
            size,
            len(found),
            extra,
            MAX_SEARCH_OFFSET,
            keep=("market",),
        )
    return ok(body)


ROUTES: tuple[Route, ...] = (route("GET", "/search", search),)
