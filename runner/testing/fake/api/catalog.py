"""The catalog: albums, artists, tracks, shows, episodes, audiobooks and chapters by id."""

from __future__ import annotations

from typing import Any

from runner.testing.fake import objects
from runner.testing.fake.api.base import MAX_PAGE, Ctx, Route, catalog_id, ok, page, paged, route
from runner.testing.fake.model import AlbumRecord, AudiobookRecord, EpisodeRecord
from runner.testing.fake.wire import ApiError, Response

POSITION_SCOPE = "user-read-playback-position"
ALBUM_GROUPS = ("album", "single", "appears_on", "compilation")
MAX_DISCOGRAPHY_PAGE = 10  # artist albums: limit 0..10, default 5, since 2026


def resume_point(ctx: Ctx) -> dict[str, Any] | None:
    """An episode's resume point, shown only with user-read-playback-position."""
    if ctx.account is None or not ctx.has_scope(POSITION_SCOPE):
        return None
    return {"fully_played": False, "resume_position_ms": 0}


def first_page(ctx: Ctx, path: str, items: list[Any]) -> dict[str, Any]:
    """The page an object embeds (its first 50 children); links keep only the market."""
    shown = items[:MAX_PAGE]
    return page(ctx, path, shown, 0, MAX_PAGE, len(items), keep=("market",))


def full_album(ctx: Ctx, album: AlbumRecord) -> dict[str, Any]:
    """The AlbumObject with the first page of its tracks."""
    tracks = [objects.simplified_track(ctx.state, ctx.state.tracks[t]) for t in album.track_ids]
    embedded = first_page(ctx, f"/albums/{album.id}/tracks", tracks)
    return objects.album(ctx.state, album, embedded)


def full_audiobook(ctx: Ctx, book: AudiobookRecord) -> dict[str, Any]:
    """The AudiobookObject with the first page of its chapters."""
    state = ctx.state
    chapters = [objects.simplified_chapter(state, state.chapters[c]) for c in book.chapter_ids]
    embedded = first_page(ctx, f"/audiobooks/{book.id}/chapters", chapters)
    return objects.audiobook(state, book, embedded)


def get_album(ctx: Ctx) -> Response:
    """GET /albums/{id}."""
    return ok(full_album(ctx, catalog_id(ctx, ctx.state.albums)))


def album_tracks(ctx: Ctx) -> Response:
    """GET /albums/{id}/tracks."""
    album: AlbumRecord = catalog_id(ctx, ctx.state.albums)
    return ok(
        paged(
            ctx,
            f"/albums/{album.id}/tracks",
            album.track_ids,
            lambda t: objects.simplified_track(ctx.state, ctx.state.tracks[t]),
        )
    )


def get_artist(ctx: Ctx) -> Response:
    """GET /artists/{id}."""
    return ok(objects.artist(ctx.state, catalog_id(ctx, ctx.state.artists)))


def artist_albums(ctx: Ctx) -> Response:
    """GET /artists/{id}/albums: `include_groups`, `limit` 0..10 (default 5)."""
    artist = catalog_id(ctx, ctx.state.artists)
    raw = ctx.req.query.get("include_groups", "")
    groups = [g for g in raw.split(",") if g] or list(ALBUM_GROUPS)
    for name in groups:
        if name not in ALBUM_GROUPS:
            raise ApiError(400, f"Invalid include_groups value: {name}")
    found = []
    for album in sorted(ctx.state.albums.values(), key=lambda a: a.order):
        if not album.track_ids:
            continue
        own = album.artists[:1] == [artist.name]
        on_it = not own and any(artist.name in ctx.state.tracks[t].artists for t in album.track_ids)
        group = album.album_type if own else ("appears_on" if on_it else None)
        if group in groups:
            found.append(album)
    extra = {"include_groups": ",".join(groups)} if raw else None
    body = paged(
        ctx,
        f"/artists/{artist.id}/albums",
        found,
        lambda a: objects.discography_album(ctx.state, a),
        default_limit=5,
        high=MAX_DISCOGRAPHY_PAGE,
        extra=extra,
        low=0,
    )
    return ok(body)


def get_track(ctx: Ctx) -> Response:
    """GET /tracks/{id}."""
    return ok(objects.track(ctx.state, catalog_id(ctx, ctx.state.tracks)))


def _episodes(ctx: Ctx, show_id: str) -> list[EpisodeRecord]:
    return [ctx.state.episodes[e] for e in ctx.state.shows[show_id].episode_ids]


def get_show(ctx: Ctx) -> Response:
    """GET /shows/{id}."""
    show = catalog_id(ctx, ctx.state.shows)
    resume = resume_point(ctx)
    episodes = [objects.simplified_episode(ctx.state, e, resume) for e in _episodes(ctx, show.id)]
    embedded = first_page(ctx, f"/shows/{show.id}/episodes", episodes)
    return ok(objects.show(ctx.state, show, embedded))


def show_episodes(ctx: Ctx) -> Response:
    """GET /shows/{id}/episodes."""
    show = catalog_id(ctx, ctx.state.shows)
    resume = resume_point(ctx)
    return ok(
        paged(
            ctx,
            f"/shows/{show.id}/episodes",
            _episodes(ctx, show.id),
            lambda e: objects.simplified_episode(ctx.state, e, resume),
        )
    )


def get_episode(ctx: Ctx) -> Response:
    """GET /episodes/{id}."""
    episode = catalog_id(ctx, ctx.state.episodes)
    return ok(objects.episode(ctx.state, episode, resume_point(ctx)))


def get_audiobook(ctx: Ctx) -> Response:
    """GET /audiobooks/{id}."""
    return ok(full_audiobook(ctx, catalog_id(ctx, ctx.state.audiobooks)))


def audiobook_chapters(ctx: Ctx) -> Response:
    """GET /audiobooks/{id}/chapters."""
    book = catalog_id(ctx, ctx.state.audiobooks)
    return ok(
        paged(
            ctx,
            f"/audiobooks/{book.id}/chapters",
            book.chapter_ids,
            lambda c: objects.simplified_chapter(ctx.state, ctx.state.chapters[c]),
        )
    )


def get_chapter(ctx: Ctx) -> Response:
    """GET /chapters/{id}."""
    return ok(objects.chapter(ctx.state, catalog_id(ctx, ctx.state.chapters)))


ROUTES: tuple[Route, ...] = (
    route("GET", "/albums/{id}", get_album),
    route("GET", "/albums/{id}/tracks", album_tracks),
    route("GET", "/artists/{id}", get_artist),
    route("GET", "/artists/{id}/albums", artist_albums),
    route("GET", "/tracks/{id}", get_track),
    # The spec lists user-read-playback-position on shows and episodes: it unlocks the
    # resume point; without it they answer all the same.
    route("GET", "/shows/{id}", get_show),
    route("GET", "/shows/{id}/episodes", show_episodes),
    route("GET", "/episodes/{id}", get_episode),
    route("GET", "/audiobooks/{id}", get_audiobook),
    route("GET", "/audiobooks/{id}/chapters", audiobook_chapters),
    route("GET", "/chapters/{id}", get_chapter),
)
