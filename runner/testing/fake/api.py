"""The Web API under `/v1`: the routes the project uses, with Spotify's limits and errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from runner.testing.fake import catalog
from runner.testing.fake.fields import FieldsError, apply_fields, parse_fields
from runner.testing.fake.model import BASE62_ID, TIME_RANGES, TRACK_URI, AccessToken, Item, Playlist
from runner.testing.fake.model import User as UserRecord
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import ApiError, Request, Response, api_error, json_response

MAX_PAGE = 50
MAX_SEARCH_PAGE = 10
MAX_SEARCH_OFFSET = 1000
MAX_URIS = 100
READ_PRIVATE = "playlist-read-private"
READ_COLLABORATIVE = "playlist-read-collaborative"
MODIFY = frozenset({"playlist-modify-public", "playlist-modify-private"})
SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")


@dataclass
class Ctx:
    """One authenticated API call."""

    state: FakeState
    req: Request
    token: AccessToken
    user: UserRecord
    args: tuple[str, ...]


Handler = Callable[[Ctx], Response]


@dataclass(frozen=True)
class Route:
    """A served route: method, OpenAPI path template (relative to /v1) and handler."""

    method: str
    template: str
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        """The template as a regex, each `{param}` one path segment."""
        return re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", self.template) + "$")


# -- helpers ------------------------------------------------------------------------


def _int_param(
    req: Request, name: str, default: int, low: int, high: int | None, message: str
) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, message) from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, message)
    return value


def _limit(req: Request, default: int = 20, high: int = MAX_PAGE) -> int:
    return _int_param(req, "limit", default, 1, high, "Invalid limit")


def _offset(req: Request, high: int | None = None) -> int:
    return _int_param(req, "offset", 0, 0, high, "Invalid offset")


def _require_scope(ctx: Ctx, *any_of: str) -> None:
    if not ctx.token.scopes & set(any_of):
        raise ApiError(403, "Insufficient client scope")


def _url(ctx: Ctx, path: str, params: dict[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v is not None}
    return f"{ctx.state.api_url}{path}" + (f"?{urlencode(clean)}" if clean else "")


def _page(
    ctx: Ctx,
    path: str,
    items: list[Any],
    offset: int,
    limit: int,
    total: int,
    extra: dict[str, Any] | None = None,
    max_offset: int | None = None,
) -> dict[str, Any]:
    """A paging object; `items` is the page itself. `next`/`previous` are absolute URLs."""
    params = dict(extra or {})
    next_offset = offset + limit
    has_next = next_offset < total and (max_offset is None or next_offset <= max_offset)
    return {
        "href": _url(ctx, path, {**params, "offset": offset, "limit": limit}),
        "items": items,
        "limit": limit,
        "next": _url(ctx, path, {**params, "offset": next_offset, "limit": limit})
        if has_next
        else None,
        "offset": offset,
        "previous": _url(ctx, path, {**params, "offset": max(0, offset - limit), "limit": limit})
        if offset > 0
        else None,
        "total": total,
    }


def _json_body(req: Request) -> Any:
    if req.raw_body and req.body is None:
        raise ApiError(400, "Error parsing json")
    return req.body


def _fields(req: Request, obj: Any) -> Any:
    text = req.query.get("fields")
    if not text:
        return obj
    try:
        return apply_fields(obj, parse_fields(text))
    except FieldsError:
        raise ApiError(400, "Invalid fields") from None


def _check_uris(state: FakeState, uris: list[Any]) -> list[str]:
    checked = []
    for uri in uris:
        if not isinstance(uri, str) or TRACK_URI.match(uri) is None:
            raise ApiError(400, f"Invalid track uri: {uri}")
        if TRACK_URI.match(uri).group(1) not in state.tracks:  # type: ignore[union-attr]
            raise ApiError(400, "Payload contains a non-existing ID")
        checked.append(uri)
    return checked


# -- objects ------------------------------------------------------------------------


def _owner(ctx: Ctx, user_id: str) -> dict[str, Any]:
    user = ctx.state.users.get(user_id)
    return {
        "display_name": user.display_name if user else user_id,
        "external_urls": {"spotify": f"https://open.spotify.com/user/{user_id}"},
        "href": f"{ctx.state.api_url}/users/{user_id}",
        "id": user_id,
        "type": "user",
        "uri": f"spotify:user:{user_id}",
    }


def _playlist_base(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    return {
        "collaborative": p.collaborative,
        "description": p.description,
        "external_urls": {"spotify": f"https://open.spotify.com/playlist/{p.id}"},
        "href": f"{ctx.state.api_url}/playlists/{p.id}",
        "id": p.id,
        "images": [],
        "name": p.name,
        "owner": _owner(ctx, p.owner),
        "primary_color": None,
        "public": p.public,
        "snapshot_id": p.snapshots[-1],
        "type": "playlist",
        "uri": f"spotify:playlist:{p.id}",
    }


def _simplified_playlist(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    obj = _playlist_base(ctx, p)
    ref = {"href": f"{ctx.state.api_url}/playlists/{p.id}/items", "total": len(p.items)}
    obj["items"] = ref
    obj["tracks"] = dict(ref)
    return obj


def _item_object(ctx: Ctx, item: Item) -> dict[str, Any]:
    track = catalog.track_object(ctx.state.track_record(item.uri), ctx.state.api_url)
    return {
        "added_at": catalog.iso(item.added_at),
        "added_by": {
            "external_urls": {"spotify": f"https://open.spotify.com/user/{item.added_by}"},
            "href": f"{ctx.state.api_url}/users/{item.added_by}",
            "id": item.added_by,
            "type": "user",
            "uri": f"spotify:user:{item.added_by}",
        },
        "is_local": False,
        "primary_color": None,
        "item": track,
        "track": track,
    }


def _items_page(ctx: Ctx, p: Playlist, offset: int, limit: int) -> dict[str, Any]:
    chosen = p.items[offset : offset + limit]
    return _page(
        ctx,
        f"/playlists/{p.id}/items",
        [_item_object(ctx, i) for i in chosen],
        offset,
        limit,
        len(p.items),
    )


def _full_playlist(ctx: Ctx, p: Playlist) -> dict[str, Any]:
    obj = _playlist_base(ctx, p)
    obj["followers"] = {"href": None, "total": 0}
    if _is_member(ctx, p):
        page = _items_page(ctx, p, 0, MAX_PAGE)
        obj["items"] = page
        obj["tracks"] = page
    return obj


# -- playlist access -------------------------------------------------------------------


def _visible(ctx: Ctx) -> Playlist:
    p = ctx.state.playlists.get(ctx.args[0])
    if p is None or p.deleted or p.algorithmic:
        raise ApiError(404, "Resource not found")
    return p


def _is_member(ctx: Ctx, p: Playlist) -> bool:
    return ctx.user.id == p.owner or ctx.user.id in p.collaborators


def _check_read_scope(ctx: Ctx, p: Playlist) -> None:
    if p.public:
        return
    wanted = (READ_PRIVATE, READ_COLLABORATIVE) if p.collaborative else (READ_PRIVATE,)
    _require_scope(ctx, *wanted)


def _writable(ctx: Ctx) -> Playlist:
    _require_scope(ctx, *MODIFY)
    p = _visible(ctx)
    if not _is_member(ctx, p):
        raise ApiError(403, "Forbidden")
    return p


def _snapshot_guard(p: Playlist, body: dict[str, Any]) -> None:
    snapshot = body.get("snapshot_id")
    if snapshot is not None and snapshot not in p.snapshots:
        raise ApiError(400, "Invalid snapshot id")


# -- handlers -------------------------------------------------------------------------


def me(ctx: Ctx) -> Response:
    """GET /me."""
    return json_response(200, ctx.state.user_object(ctx.user))


def my_playlists(ctx: Ctx) -> Response:
    """GET /me/playlists: owned and followed playlists; private ones need the read scopes."""
    limit = _limit(ctx.req)
    offset = _offset(ctx.req, 100_000)
    visible = []
    for pid in ctx.user.playlists:
        if not ctx.state.playlist_live(pid):
            continue
        p = ctx.state.playlists[pid]
        if not p.public:
            wanted = {READ_PRIVATE, READ_COLLABORATIVE} if p.collaborative else {READ_PRIVATE}
            if not ctx.token.scopes & wanted:
                continue
        visible.append(p)
    chosen = [_simplified_playlist(ctx, p) for p in visible[offset : offset + limit]]
    return json_response(200, _page(ctx, "/me/playlists", chosen, offset, limit, len(visible)))


def create_playlist(ctx: Ctx) -> Response:
    """POST /me/playlists."""
    _require_scope(ctx, *MODIFY)
    body = _json_body(ctx.req)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise ApiError(400, "Missing required field: name")
    public = body.get("public", True)
    collaborative = body.get("collaborative", False)
    if not isinstance(public, bool) or not isinstance(collaborative, bool):
        raise ApiError(400, "Invalid boolean value")
    if public and collaborative:
        raise ApiError(400, "Collaborative playlists can't be public")
    description = body.get("description") or ""
    p = ctx.state.new_playlist(ctx.user.id, body["name"], public, collaborative, str(description))
    ctx.user.playlists.insert(0, p.id)
    return json_response(201, _full_playlist(ctx, p))


def get_playlist(ctx: Ctx) -> Response:
    """GET /playlists/{playlist_id} (with `fields`)."""
    p = _visible(ctx)
    _check_read_scope(ctx, p)
    return json_response(200, _fields(ctx.req, _full_playlist(ctx, p)))


def change_playlist(ctx: Ctx) -> Response:
    """PUT /playlists/{playlist_id}: name, public, collaborative, description (owner only)."""
    _require_scope(ctx, *MODIFY)
    p = _visible(ctx)
    if ctx.user.id != p.owner:
        raise ApiError(403, "Forbidden")
    body = _json_body(ctx.req)
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
    p.name, p.public, p.collaborative = name, bool(public), bool(collaborative)
    if "description" in body:
        p.description = str(body["description"] or "")
    ctx.state.bump(p)
    return Response(200)


def get_items(ctx: Ctx) -> Response:
    """GET /playlists/{playlist_id}/items: owner or collaborator only, `limit` 1..50."""
    p = _visible(ctx)
    _check_read_scope(ctx, p)
    if not _is_member(ctx, p):
        raise ApiError(403, "Forbidden")
    limit = _limit(ctx.req)
    offset = _offset(ctx.req)
    return json_response(200, _fields(ctx.req, _items_page(ctx, p, offset, limit)))


def add_items(ctx: Ctx) -> Response:
    """POST /playlists/{playlist_id}/items: `uris` (query or body, at most 100), `position`."""
    p = _writable(ctx)
    body = _json_body(ctx.req)
    position: Any = None
    if "uris" in ctx.req.query:
        uris: Any = [u for u in ctx.req.query["uris"].split(",") if u]
    elif isinstance(body, list):
        uris = body  # spotipy sends the bare array
    elif isinstance(body, dict):
        uris = body.get("uris")
        position = body.get("position")
    else:
        uris = None
    if "position" in ctx.req.query:
        position = _int_param(ctx.req, "position", 0, -(10**9), None, "Invalid position")
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
    return json_response(201, {"snapshot_id": ctx.state.bump(p)})


def update_items(ctx: Ctx) -> Response:
    """PUT /playlists/{playlist_id}/items: replace (`uris`) or reorder, never both."""
    p = _writable(ctx)
    body = _json_body(ctx.req)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "Error parsing json")
    body = body or {}
    replacing = "uris" in ctx.req.query or "uris" in body
    reordering = any(k in body for k in ("range_start", "insert_before", "range_length"))
    if replacing and reordering:
        raise ApiError(400, "Replace and reorder can't be combined")
    if replacing:
        if "uris" in ctx.req.query:
            uris: Any = [u for u in ctx.req.query["uris"].split(",") if u]
        else:
            uris = body["uris"]
        if not isinstance(uris, list):
            raise ApiError(400, "Invalid uris")
        if len(uris) > MAX_URIS:
            raise ApiError(400, "Too many ids requested")
        checked = _check_uris(ctx.state, uris)
        at = ctx.state.now()
        p.items = [Item(uri, at, ctx.user.id) for uri in checked]
        return json_response(200, {"snapshot_id": ctx.state.bump(p)})
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
    return json_response(200, {"snapshot_id": ctx.state.bump(p)})


def remove_items(ctx: Ctx) -> Response:
    """DELETE /playlists/{playlist_id}/items: removes every occurrence of each URI."""
    p = _writable(ctx)
    body = _json_body(ctx.req)
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
        if not isinstance(uri, str) or TRACK_URI.match(uri) is None:
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
    return json_response(200, {"snapshot_id": ctx.state.bump(p)})


def deprecated_tracks(ctx: Ctx) -> Response:
    """Any method on /playlists/{playlist_id}/tracks: 403, as for development-mode apps."""
    raise ApiError(403, "Forbidden")


def saved_tracks(ctx: Ctx) -> Response:
    """GET /me/tracks: Liked Songs, newest first."""
    _require_scope(ctx, "user-library-read")
    limit = _limit(ctx.req)
    offset = _offset(ctx.req)
    newest_first = list(reversed(ctx.user.saved))
    items = [
        {
            "added_at": catalog.iso(at),
            "track": catalog.track_object(ctx.state.track_record(uri), ctx.state.api_url),
        }
        for uri, at in newest_first[offset : offset + limit]
    ]
    return json_response(200, _page(ctx, "/me/tracks", items, offset, limit, len(newest_first)))


def _iso_ms(ts: float) -> str:
    millis = int(round(ts * 1000)) % 1000
    return catalog.iso(ts)[:-1] + f".{millis:03d}Z"


def recently_played(ctx: Ctx) -> Response:
    """GET /me/player/recently-played: newest first, cursors in Unix milliseconds."""
    _require_scope(ctx, "user-read-recently-played")
    limit = _limit(ctx.req)
    after = _int_param(ctx.req, "after", -1, 0, None, "Invalid after")
    before = _int_param(ctx.req, "before", -1, 0, None, "Invalid before")
    if after >= 0 and before >= 0:
        raise ApiError(400, "Only one of 'after' and 'before' may be given")
    plays = [(uri, at, int(round(at * 1000))) for uri, at in ctx.user.plays]
    if after >= 0:
        newer = [p for p in plays if p[2] > after]  # oldest first
        chosen = list(reversed(newer[:limit]))
        more = len(newer) > limit
    else:
        older = [p for p in reversed(plays) if before < 0 or p[2] < before]  # newest first
        chosen = older[:limit]
        more = len(older) > limit
    cursors = {"after": str(chosen[0][2]), "before": str(chosen[-1][2])} if chosen else None
    next_url = None
    if more and chosen:
        cursor = {"after": chosen[0][2]} if after >= 0 else {"before": chosen[-1][2]}
        next_url = _url(ctx, "/me/player/recently-played", {**cursor, "limit": limit})
    body = {
        "href": _url(
            ctx,
            "/me/player/recently-played",
            {
                "after": after if after >= 0 else None,
                "before": before if before >= 0 else None,
                "limit": limit,
            },
        ),
        "items": [
            {
                "track": catalog.track_object(ctx.state.track_record(uri), ctx.state.api_url),
                "played_at": _iso_ms(at),
                "context": None,
            }
            for uri, at, _ in chosen
        ],
        "limit": limit,
        "next": next_url,
        "cursors": cursors,
    }
    return json_response(200, body)


def top_tracks(ctx: Ctx) -> Response:
    """GET /me/top/tracks."""
    _require_scope(ctx, "user-top-read")
    time_range = ctx.req.query.get("time_range", "medium_term")
    if time_range not in TIME_RANGES:
        raise ApiError(400, "Invalid time range")
    limit = _limit(ctx.req)
    offset = _offset(ctx.req)
    uris = ctx.user.top.get(time_range, [])
    items = [
        catalog.track_object(ctx.state.track_record(u), ctx.state.api_url)
        for u in uris[offset : offset + limit]
    ]
    page = _page(ctx, "/me/top/tracks", items, offset, limit, len(uris), {"time_range": time_range})
    return json_response(200, page)


def search(ctx: Ctx) -> Response:
    """GET /search: tracks only (other types answer empty), `limit` 1..10, `offset` <= 1000."""
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
    limit = _limit(ctx.req, default=5, high=MAX_SEARCH_PAGE)
    offset = _offset(ctx.req, MAX_SEARCH_OFFSET)
    extra = {"query": q, "type": ",".join(types)}
    body: dict[str, Any] = {}
    for t in types:
        found: list[Any] = []
        if t == "track":
            free, filters = catalog.parse_query(q)
            scored = []
            for record in ctx.state.tracks.values():
                score = catalog.search_score(record, free, filters)
                if score is not None:
                    scored.append((-score, record.order, record))
            scored.sort(key=lambda s: (s[0], s[1]))
            found = [s[2] for s in scored]
        page_items = [
            catalog.track_object(r, ctx.state.api_url) for r in found[offset : offset + limit]
        ]
        body[t + "s"] = _page(
            ctx, "/search", page_items, offset, limit, len(found), extra, MAX_SEARCH_OFFSET
        )
    return json_response(200, body)


def get_track(ctx: Ctx) -> Response:
    """GET /tracks/{id}."""
    track_id = ctx.args[0]
    if BASE62_ID.match(track_id) is None:
        raise ApiError(400, "invalid id")
    record = ctx.state.tracks.get(track_id)
    if record is None:
        raise ApiError(404, "Resource not found")
    return json_response(200, catalog.track_object(record, ctx.state.api_url))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/me", me),
    Route("GET", "/me/playlists", my_playlists),
    Route("POST", "/me/playlists", create_playlist),
    Route("GET", "/playlists/{playlist_id}", get_playlist),
    Route("PUT", "/playlists/{playlist_id}", change_playlist),
    Route("GET", "/playlists/{playlist_id}/items", get_items),
    Route("POST", "/playlists/{playlist_id}/items", add_items),
    Route("PUT", "/playlists/{playlist_id}/items", update_items),
    Route("DELETE", "/playlists/{playlist_id}/items", remove_items),
    Route("GET", "/playlists/{playlist_id}/tracks", deprecated_tracks),
    Route("POST", "/playlists/{playlist_id}/tracks", deprecated_tracks),
    Route("PUT", "/playlists/{playlist_id}/tracks", deprecated_tracks),
    Route("DELETE", "/playlists/{playlist_id}/tracks", deprecated_tracks),
    Route("GET", "/me/tracks", saved_tracks),
    Route("GET", "/me/player/recently-played", recently_played),
    Route("GET", "/me/top/tracks", top_tracks),
    Route("GET", "/search", search),
    Route("GET", "/tracks/{id}", get_track),
)
DEPRECATED_SERVED = frozenset({"/playlists/{playlist_id}/tracks"})
_COMPILED = tuple((route, route.pattern) for route in ROUTES)


def bearer_token(req: Request) -> str | None:
    """The bearer token a request carries, if any."""
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _authenticate(state: FakeState, req: Request) -> AccessToken:
    header = req.headers.get("authorization", "")
    if not header:
        raise ApiError(401, "No token provided")
    token = bearer_token(req)
    if token is None:
        raise ApiError(400, "Only valid bearer authentication supported")
    issued = state.access_tokens.get(token)
    if issued is None:
        raise ApiError(401, "Invalid access token")
    if state.now() >= issued.expires_at:
        raise ApiError(401, "The access token expired")
    return issued


def handle(state: FakeState, req: Request) -> Response:
    """Answer one request whose path starts with `/v1`."""
    # Spotify ignores a trailing slash, and spotipy sends one on some calls ("me/").
    path = req.path[len("/v1") :].rstrip("/") or "/"
    matched_path = False
    for route, pattern in _COMPILED:
        found = pattern.match(path)
        if found is None:
            continue
        matched_path = True
        if route.method != req.method:
            continue
        with state.lock:
            try:
                token = _authenticate(state, req)
                user = state.users[token.user_id]
                return route.handler(Ctx(state, req, token, user, found.groups()))
            except ApiError as err:
                response = err.response()
                if err.status == 401:
                    response.headers["WWW-Authenticate"] = (
                        f'Bearer realm="spotify", error="invalid_token", '
                        f'error_description="{err.message}"'
                    )
                return response
    if matched_path:
        return api_error(405, "Method not allowed")
    return api_error(404, "Service not found")
