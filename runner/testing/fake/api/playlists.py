"""Playlists: details, items (tracks and episodes), the user's list, creation and covers."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from runner.testing.fake import objects
from runner.testing.fake.api.base import (
    MAX_PAGE,
    Ctx,
    Route,
    fields,
    int_param,
    json_body,
    limit,
    offset,
    ok,
    page,
    require_scope,
    route,
)
from runner.testing.fake.catalog import iso
from runner.testing.fake.model import ITEM_URI, Item, Playlist
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import ApiError, Response

MAX_URIS = 100
MAX_COVER_BYTES = 256 * 1024  # "maximum payload size is 256 KB"
READ_PRIVATE = "playlist-read-private"
READ_COLLABORATIVE = "playlist-read-collaborative"
MODIFY_PUBLIC = "playlist-modify-public"
MODIFY_PRIVATE = "playlist-modify-private"
MODIFY = (MODIFY_PUBLIC, MODIFY_PRIVATE)
UPLOAD = "ugc-image-upload"
JPEG_MAGIC = b"\xff\xd8\xff"


# -- objects ------------------------------------------------------------------------


def cover_images(state: FakeState, p: Playlist) -> list[dict[str, Any]]:
    """The playlist's ImageObjects: the uploaded cover, if any (served by the fake itself)."""
    if p.image is None:
        return []
    return [
        {"url": f"{state.base_url}/image/{p.id}/{p.image_version}", "height": None, "width": None}
    ]


def _base(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    return {
        **objects.links(ctx.state, "playlist", p.id),
        "collaborative": p.collaborative,
        "description": p.description,
        "images": cover_images(ctx.state, p),
        "name": p.name,
        "owner": objects.user(ctx.state, p.owner),
        "primary_color": None,
        "public": p.public,
        "snapshot_id": p.snapshots[-1],
    }


def simplified_playlist(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    """SimplifiedPlaylistObject."""
    obj = _base(ctx, p)
    ref = {"href": f"{ctx.state.api_url}/playlists/{p.id}/items", "total": len(p.items)}
    obj["items"] = ref
    obj["tracks"] = dict(ref)
    return obj


def _item_object(ctx: Ctx, item: Item) -> dict[str, Any]:
    thing = objects.playable(ctx.state, item.uri)
    return {
        "added_at": iso(item.added_at),
        "added_by": objects.playlist_user(ctx.state, item.added_by),
        "is_local": False,
        "primary_color": None,
        "item": thing,
        "track": thing,
    }


def _items_page(ctx: Ctx, p: Playlist, start: int, size: int, nested: bool) -> dict[str, Any]:
    chosen = p.items[start : start + size]
    # A page inside the playlist object keeps market and additional_types in its links, not
    # the playlist's own `fields` (they would not fit the items endpoint).
    keep = ("market", "additional_types") if nested else ("fields", "market", "additional_types")
    path = f"/playlists/{p.id}/items"
    items = [_item_object(ctx, i) for i in chosen]
    return page(ctx, path, items, start, size, len(p.items), keep=keep)


def _full(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    obj = _base(ctx, p)
    obj["followers"] = {"href": None, "total": _followers(ctx.state, p)}
    if _is_member(ctx, p):
        items = _items_page(ctx, p, 0, MAX_PAGE, nested=True)
        obj["items"] = items
        obj["tracks"] = items
    return obj


def _followers(state: FakeState, p: Playlist) -> int:
    return sum(1 for u in state.users.values() if p.id in u.playlists and u.id != p.owner)


# -- access ----------------------------------------------------------------------------


def visible(ctx: Ctx) -> Playlist:
    """The playlist of the path: 404 when deleted or Spotify's own algorithmic one."""
    p = ctx.state.playlists.get(ctx.args[0])
    if p is None or p.deleted or p.algorithmic:
        raise ApiError(404, "Resource not found")
    return p


def _is_member(ctx: Ctx, p: Playlist) -> bool:
    return ctx.account is not None and (
        ctx.account.id == p.owner or ctx.account.id in p.collaborators
    )


def _check_read_scope(ctx: Ctx, p: Playlist) -> None:
    if p.public:
        return
    wanted = (READ_PRIVATE, READ_COLLABORATIVE) if p.collaborative else (READ_PRIVATE,)
    require_scope(ctx, *wanted)


def modify_scope(p: Playlist) -> str:
    """Changing a public playlist takes playlist-modify-public, a private one (collaborative
    ones are private) playlist-modify-private."""
    return MODIFY_PUBLIC if p.public else MODIFY_PRIVATE


def _writable(ctx: Ctx, owner_only: bool = False) -> Playlist:
    require_scope(ctx, *MODIFY)
    p = visible(ctx)
    if not _is_member(ctx, p) or (owner_only and ctx.user.id != p.owner):
        raise ApiError(403, "Forbidden")
    require_scope(ctx, modify_scope(p))
    return p


def _snapshot_guard(p: Playlist, body: dict[str, Any]) -> None:
    snapshot = body.get("snapshot_id")
    if snapshot is not None and snapshot not in p.snapshots:
        raise ApiError(400, "Invalid snapshot id")


def _check_uris(state: FakeState, uris: list[Any]) -> list[str]:
    """Track or episode URIs the catalog holds."""
    checked = []
    for uri in uris:
        found = ITEM_URI.match(uri) if isinstance(uri, str) else None
        if found is None:
            raise ApiError(400, f"Invalid track uri: {uri}")
        kind, item_id = found.groups()
        store: dict[str, Any] = state.tracks if kind == "track" else state.episodes
        if item_id not in store:
            raise ApiError(400, "Payload contains a non-existing ID")
        checked.append(uri)
    return checked


def _query_uris(ctx: Ctx) -> list[str]:
    return [u for u in ctx.req.query["uris"].split(",") if u]


# -- handlers -------------------------------------------------------------------------


def my_playlists(ctx: Ctx) -> Response:
    """GET /me/playlists: owned and followed playlists; private ones need the read scopes."""
    size = limit(ctx.req)
    start = offset(ctx.req, 100_000)
    shown = []
    for pid in ctx.user.playlists:
        if not ctx.state.playlist_live(pid):
            continue
        p = ctx.state.playlists[pid]
        if not p.public:
            wanted = {READ_PRIVATE, READ_COLLABORATIVE} if p.collaborative else {READ_PRIVATE}
            if not ctx.token.scopes & wanted:
                continue
        shown.append(p)
    chosen = [simplified_playlist(ctx, p) for p in shown[start : start + size]]
    return ok(page(ctx, "/me/playlists", chosen, start, size, len(shown)))


def create_playlist(ctx: Ctx) -> Response:
    """POST /me/playlists: a public one takes playlist-modify-public, a private one
    playlist-modify-private."""
    body = json_body(ctx.req)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise ApiError(400, "Missing required field: name")
    public = body.get("public", True)
    collaborative = body.get("collaborative", False)
    if not isinstance(public, bool) or not isinstance(collaborative, bool):
        raise ApiError(400, "Invalid boolean value")
    if public and collaborative:
        raise ApiError(400, "Collaborative playlists can't be public")
    require_scope(ctx, MODIFY_PUBLIC if public else MODIFY_PRIVATE)
    description = body.get("description") or ""
    p = ctx.state.new_playlist(ctx.user.id, body["name"], public, collaborative, str(description))
    ctx.user.playlists.insert(0, p.id)
    return ok(_full(ctx, p), 201)


def get_playlist(ctx: Ctx) -> Response:
    """GET /playlists/{playlist_id} (with `fields`)."""
    p = visible(ctx)
    _check_read_scope(ctx, p)
    return ok(fields(ctx.req, _full(ctx, p)))


def change_playlist(ctx: Ctx) -> Response:
    """PUT /playlists/{playlist_id}: name, public, collaborative, description (owner only)."""
    p = _writable(ctx, owner_only=True)
    body = json_body(ctx.req)
    if not isinstance(body, dict):
        raise ApiError(400, "Error parsing json")
    name = body.get("name", p.name)
    public = body.get("public", p.public)
    collaborative = body.get("collaborative", p.collaborative)
    if not isinstance(name, str) or not name:
        raise ApiError(400, "Invalid name")
    if public is None:
        public = p.public
    if public and collaborative:
        raise ApiError(400, "Collaborative playlists can't be public")
    if bool(public) != p.public:
        require_scope(ctx, MODIFY_PUBLIC if public else MODIFY_PRIVATE)
    p.name, p.public, p.collaborative = name, bool(public), bool(collaborative)
    if "description" in body:
        p.description = str(body["description"] or "")
    ctx.state.bump(p)
    return Response(200)


def get_items(ctx: Ctx) -> Response:
    """GET /playlists/{playlist_id}/items: owner or collaborator only, `limit` 1..50."""
    p = visible(ctx)
    _check_read_scope(ctx, p)
    if not _is_member(ctx, p):
        raise ApiError(403, "Forbidden")
    size = limit(ctx.req)
    start = offset(ctx.req)
    return ok(fields(ctx.req, _items_page(ctx, p, start, size, nested=False)))


def add_items(ctx: Ctx) -> Response:
    """POST /playlists/{playlist_id}/items: `uris` (query or body, at most 100), `position`."""
    p = _writable(ctx)
    body = json_body(ctx.req)
    position: Any = None
    if "uris" in ctx.req.query:
        uris: Any = _query_uris(ctx)
    elif isinstance(body, list):
        uris = body  # spotipy sends the bare array
    elif isinstance(body, dict):
        uris = body.get("uris")
        position = body.get("position")
    else:
        uris = None
    if "position" in ctx.req.query:
        position = int_param(ctx.req, "position", 0, -(10**9), None, "Invalid position")
    if not isinstance(uris, list) or not uris:
        raise ApiError(400, "No uris provided")
    if len(uris) > MAX_URIS:
        raise ApiError(400, "Too many ids requested")
    checked = _check_uris(ctx.state, uris)
    if position is None:
        position = len(p.items)
    if not isinstance(position, int) or not 0 <= position <= len(p.items):
        raise ApiError(400, "Index out of bounds")
    at = ctx.state.now()
    p.items[position:position] = [Item(uri, at, ctx.user.id) for uri in checked]
    return ok({"snapshot_id": ctx.state.bump(p)}, 201)


def update_items(ctx: Ctx) -> Response:
    """PUT /playlists/{playlist_id}/items: replace (`uris`) or reorder, never both."""
    p = _writable(ctx)
    body = json_body(ctx.req)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "Error parsing json")
    body = body or {}
    replacing = "uris" in ctx.req.query or "uris" in body
    reordering = any(k in body for k in ("range_start", "insert_before", "range_length"))
    if replacing and reordering:
        raise ApiError(400, "Replace and reorder can't be combined")
    if replacing:
        uris: Any = _query_uris(ctx) if "uris" in ctx.req.query else body["uris"]
        if not isinstance(uris, list):
            raise ApiError(400, "Invalid uris")
        if len(uris) > MAX_URIS:
            raise ApiError(400, "Too many ids requested")
        checked = _check_uris(ctx.state, uris)
        at = ctx.state.now()
        p.items = [Item(uri, at, ctx.user.id) for uri in checked]
        return ok({"snapshot_id": ctx.state.bump(p)})
    if not reordering:
        raise ApiError(400, "Missing uris or range_start")
    _snapshot_guard(p, body)
    start, before, length = (
        body.get("range_start"),
        body.get("insert_before"),
        body.get("range_length", 1),
    )
    if length is None:
        length = 1
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, before, length)):
        raise ApiError(400, "range_start and insert_before are required integers")
    assert isinstance(start, int)
    assert isinstance(before, int)
    assert isinstance(length, int)
    size = len(p.items)
    if start < 0 or length < 1 or start + length > size or not 0 <= before <= size:
        raise ApiError(400, "Index out of bounds")
    block = p.items[start : start + length]
    rest = p.items[:start] + p.items[start + length :]
    if before <= start:
        target = before
    elif before >= start + length:
        target = before - length
    else:
        target = start  # inserting inside the moved range leaves the order as it was
    p.items = rest[:target] + block + rest[target:]
    return ok({"snapshot_id": ctx.state.bump(p)})


def remove_items(ctx: Ctx) -> Response:
    """DELETE /playlists/{playlist_id}/items: removes every occurrence of each URI."""
    p = _writable(ctx)
    body = json_body(ctx.req)
    if not isinstance(body, dict):
        raise ApiError(400, "Missing items")
    entries = body.get("items", body.get("tracks"))
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "Missing items")
    if len(entries) > MAX_URIS:
        raise ApiError(400, "Too many ids requested")
    _snapshot_guard(p, body)
    everywhere: set[str] = set()
    positions: set[int] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise ApiError(400, "Invalid items")
        uri = entry.get("uri")
        if not isinstance(uri, str) or ITEM_URI.match(uri) is None:
            raise ApiError(400, f"Invalid track uri: {uri}")
        wanted = entry.get("positions")
        if wanted is None:
            everywhere.add(uri)
            continue
        for pos in wanted:
            if not isinstance(pos, int) or not 0 <= pos < len(p.items) or p.items[pos].uri != uri:
                raise ApiError(400, "Could not remove tracks, please check parameters.")
            positions.add(pos)
    p.items = [
        item
        for index, item in enumerate(p.items)
        if item.uri not in everywhere and index not in positions
    ]
    return ok({"snapshot_id": ctx.state.bump(p)})


def get_cover(ctx: Ctx) -> Response:
    """GET /playlists/{playlist_id}/images."""
    p = visible(ctx)
    _check_read_scope(ctx, p)
    return ok(cover_images(ctx.state, p))


def put_cover(ctx: Ctx) -> Response:
    """PUT /playlists/{playlist_id}/images: a base64 JPEG body of at most 256 KB (else 413);
    needs ugc-image-upload and the playlist's modify scope; owner only."""
    require_scope(ctx, UPLOAD)
    p = _writable(ctx, owner_only=True)
    raw = ctx.req.raw_body
    if len(raw) > MAX_COVER_BYTES:
        raise ApiError(413, "Payload too large: the maximum is 256 KB")
    try:
        image = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "Image must be base64 encoded") from None
    if not image.startswith(JPEG_MAGIC):
        raise ApiError(400, "Image must be a JPEG")
    p.image = image
    p.image_version += 1
    return Response(202)


def image_file(state: FakeState, path: str) -> Response | None:
    """The uploaded cover behind an image URL (`/image/<playlist>/<version>`), if any."""
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "image":
        return None
    with state.lock:
        p = state.playlists.get(parts[2])
        if p is None or p.image is None or parts[3] != str(p.image_version):
            return None
        return Response(200, p.image, content_type="image/jpeg")


ROUTES: tuple[Route, ...] = (
    # Public playlists list without a scope; private ones need playlist-read-private.
    route("GET", "/me/playlists", my_playlists),
    route("POST", "/me/playlists", create_playlist, *MODIFY),
    route("GET", "/playlists/{playlist_id}", get_playlist),
    route("PUT", "/playlists/{playlist_id}", change_playlist, *MODIFY),
    route("GET", "/playlists/{playlist_id}/items", get_items),
    route("POST", "/playlists/{playlist_id}/items", add_items, *MODIFY),
    route("PUT", "/playlists/{playlist_id}/items", update_items, *MODIFY),
    route("DELETE", "/playlists/{playlist_id}/items", remove_items, *MODIFY),
    route("GET", "/playlists/{playlist_id}/images", get_cover),
    route("PUT", "/playlists/{playlist_id}/images", put_cover, UPLOAD),
)
