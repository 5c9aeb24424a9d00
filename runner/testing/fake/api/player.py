"""The player: devices, playback state, play/pause/next/previous, seek, repeat, shuffle,
volume and the queue. Commands need Premium and a device: 404 "no active device" without one.
"""

from __future__ import annotations

from typing import Any

from runner.testing.fake import objects, playback
from runner.testing.fake.api.base import (
    Ctx,
    Route,
    int_param,
    json_body,
    no_content,
    ok,
    required,
    route,
)
from runner.testing.fake.model import ANY_URI, ITEM_URI, Device, Player
from runner.testing.fake.wire import ApiError, Response

READ_STATE = "user-read-playback-state"
READ_CURRENT = "user-read-currently-playing"
MODIFY_STATE = "user-modify-playback-state"
CONTEXT_KINDS = ("album", "artist", "playlist", "show")


def _player(ctx: Ctx) -> Player:
    return ctx.user.player


def _command_device(ctx: Ctx) -> Device:
    """The device a command goes to: `device_id` (which becomes active) or the active one."""
    if ctx.user.product != "premium":
        raise ApiError(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
    player = _player(ctx)
    wanted = ctx.req.query.get("device_id") or None
    device = playback.device(player, wanted)
    if device is None:
        if wanted is not None:
            raise ApiError(404, "Device not found")
        raise ApiError(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE")
    if device.is_restricted:
        raise ApiError(403, "Player command failed: Restriction violated", "UNKNOWN")
    if player.active != device.id:
        playback.settle(ctx.state, player)
        player.active = device.id
    return device


def _loaded(ctx: Ctx) -> Player:
    player = _player(ctx)
    if playback.current(player) is None:
        raise ApiError(403, "Player command failed: Restriction violated", "UNKNOWN")
    return player


def _device_object(player: Player, device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "is_active": player.active == device.id,
        "is_private_session": device.is_private_session,
        "is_restricted": device.is_restricted,
        "name": device.name,
        "type": device.type,
        "volume_percent": device.volume_percent,
        "supports_volume": device.supports_volume,
    }


def _context(ctx: Ctx, uri: str | None) -> dict[str, Any] | None:
    if uri is None:
        return None
    kind, item_id = uri.split(":")[1:3]
    return {
        "type": kind,
        "href": f"{ctx.state.api_url}/{kind}s/{item_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
        "uri": uri,
    }


def _item(ctx: Ctx, uri: str | None) -> dict[str, Any] | None:
    """The playing item; an episode only when the client said it takes them."""
    if uri is None:
        return None
    if uri.startswith("spotify:episode:"):
        types = ctx.req.query.get("additional_types", "").split(",")
        if "episode" not in types:
            return None  # as Spotify: clients that did not ask for episodes get no item
    return objects.playable(ctx.state, uri)


def _playing(ctx: Ctx) -> dict[str, Any] | None:
    """The CurrentlyPlayingObject fields, or None when nothing plays anywhere."""
    player = _player(ctx)
    device = playback.device(player, None)
    uri = playback.current(player)
    if device is None or uri is None:
        return None
    is_playing = player.is_playing
    return {
        "context": _context(ctx, player.context_uri),
        "timestamp": int(player.since * 1000),
        "progress_ms": playback.position(ctx.state, player),
        "is_playing": is_playing,
        "item": _item(ctx, uri),
        "currently_playing_type": uri.split(":")[1],
        "actions": {
            "interrupting_playback": False,
            "pausing": not is_playing,
            "resuming": is_playing,
            "seeking": False,
            "skipping_next": False,
            "skipping_prev": False,
            "toggling_repeat_context": False,
            "toggling_shuffle": False,
            "toggling_repeat_track": False,
            "transferring_playback": False,
        },
    }


def state(ctx: Ctx) -> Response:
    """GET /me/player: 204 when nothing plays on any device."""
    playing = _playing(ctx)
    if playing is None:
        return no_content()
    player = _player(ctx)
    device = playback.device(player, None)
    assert device is not None
    return ok(
        {
            "device": _device_object(player, device),
            "repeat_state": player.repeat,
            "shuffle_state": player.shuffle,
            **playing,
        }
    )


def currently_playing(ctx: Ctx) -> Response:
    """GET /me/player/currently-playing: 204 when nothing plays."""
    playing = _playing(ctx)
    return no_content() if playing is None else ok(playing)


def devices(ctx: Ctx) -> Response:
    """GET /me/player/devices."""
    player = _player(ctx)
    return ok({"devices": [_device_object(player, d) for d in player.devices]})


def transfer(ctx: Ctx) -> Response:
    """PUT /me/player: `device_ids` (exactly one), `play`."""
    body = json_body(ctx.req)
    ids = body.get("device_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
        raise ApiError(400, "Exactly one device_id is supported")
    if ctx.user.product != "premium":
        raise ApiError(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
    player = _player(ctx)
    device = playback.device(player, ids[0])
    if device is None:
        raise ApiError(404, "Device not found")
    playback.settle(ctx.state, player)
    player.active = device.id
    if body.get("play") is True and playback.current(player) is not None:
        player.is_playing = True
    return no_content()


def _context_items(ctx: Ctx, uri: str) -> list[str]:
    state_ = ctx.state
    found = ANY_URI.match(uri)
    if found is None or found.group(1) not in CONTEXT_KINDS:
        raise ApiError(400, "Invalid context uri")
    kind, item_id = found.groups()
    if kind == "album" and item_id in state_.albums:
        return [f"spotify:track:{t}" for t in state_.albums[item_id].track_ids]
    if kind == "playlist" and state_.playlist_live(item_id):
        return [i.uri for i in state_.playlists[item_id].items]
    if kind == "artist" and item_id in state_.artists:
        name = state_.artists[item_id].name
        tracks = sorted(state_.tracks.values(), key=lambda t: t.order)
        return [f"spotify:track:{t.id}" for t in tracks if name in t.artists]
    if kind == "show" and item_id in state_.shows:
        return [f"spotify:episode:{e}" for e in state_.shows[item_id].episode_ids]
    raise ApiError(404, "Context not found")


def _playable_uri(ctx: Ctx, uri: Any) -> str:
    found = ITEM_URI.match(uri) if isinstance(uri, str) else None
    if found is None:
        raise ApiError(400, f"Invalid track uri: {uri}")
    kind, item_id = found.groups()
    store: dict[str, Any] = ctx.state.tracks if kind == "track" else ctx.state.episodes
    if item_id not in store:
        raise ApiError(404, "Track not found")
    return str(uri)


def play(ctx: Ctx) -> Response:
    """PUT /me/player/play: `context_uri` or `uris`, `offset`, `position_ms`; no body resumes."""
    body = json_body(ctx.req)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "Error parsing json")
    body = body or {}
    _command_device(ctx)
    player = _player(ctx)
    if "context_uri" not in body and "uris" not in body:
        _loaded(ctx)
        if not player.is_playing:
            playback.settle(ctx.state, player)
            player.is_playing = True
        return no_content()
    if "context_uri" in body and "uris" in body:
        raise ApiError(400, "Only one of context_uri and uris may be given")
    if "uris" in body:
        raw = body["uris"]
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "Invalid uris")
        uris, context = [_playable_uri(ctx, u) for u in raw], None
    else:
        context = str(body["context_uri"])
        uris = _context_items(ctx, context)
    index = _offset(body.get("offset"), uris)
    position_ms = body.get("position_ms", 0)
    if not isinstance(position_ms, int) or isinstance(position_ms, bool) or position_ms < 0:
        raise ApiError(400, "Invalid position_ms")
    playback.start(ctx.state, player, uris, context, index, position_ms)
    player.progress_ms = min(position_ms, playback.duration_ms(ctx.state, uris[index]))
    return no_content()


def _offset(raw: Any, uris: list[str]) -> int:
    if raw is None:
        if not uris:
            raise ApiError(400, "Nothing to play")
        return 0
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid offset")
    if "uri" in raw:
        if raw["uri"] not in uris:
            raise ApiError(400, "Offset uri is not in the context")
        return uris.index(raw["uri"])
    position = raw.get("position")
    if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position < len(uris):
        raise ApiError(400, "Invalid offset position")
    return position


def pause(ctx: Ctx) -> Response:
    """PUT /me/player/pause: 403 when already paused, as Spotify answers."""
    _command_device(ctx)
    player = _loaded(ctx)
    if not player.is_playing:
        raise ApiError(403, "Player command failed: Restriction violated", "UNKNOWN")
    playback.settle(ctx.state, player)
    player.is_playing = False
    return no_content()


def skip_next(ctx: Ctx) -> Response:
    """POST /me/player/next."""
    _command_device(ctx)
    playback.skip_next(ctx.state, _loaded(ctx))
    return no_content()


def skip_previous(ctx: Ctx) -> Response:
    """POST /me/player/previous."""
    _command_device(ctx)
    playback.skip_previous(ctx.state, _loaded(ctx))
    return no_content()


def seek(ctx: Ctx) -> Response:
    """PUT /me/player/seek: past the item's end goes on to the next one."""
    required(ctx.req, "position_ms")
    position_ms = int_param(ctx.req, "position_ms", 0, 0, None, "Invalid position_ms")
    _command_device(ctx)
    player = _loaded(ctx)
    uri = playback.current(player)
    assert uri is not None
    if position_ms >= playback.duration_ms(ctx.state, uri):
        playback.skip_next(ctx.state, player)
    else:
        playback.settle(ctx.state, player, position_ms)
    return no_content()


def repeat(ctx: Ctx) -> Response:
    """PUT /me/player/repeat: `state` track, context or off."""
    wanted = required(ctx.req, "state")
    if wanted not in playback.REPEAT_STATES:
        raise ApiError(400, "Invalid state: must be track, context or off")
    _command_device(ctx)
    _player(ctx).repeat = wanted
    return no_content()


def shuffle(ctx: Ctx) -> Response:
    """PUT /me/player/shuffle: `state` true or false."""
    wanted = required(ctx.req, "state")
    if wanted not in ("true", "false"):
        raise ApiError(400, "Invalid state: must be true or false")
    _command_device(ctx)
    _player(ctx).shuffle = wanted == "true"
    return no_content()


def volume(ctx: Ctx) -> Response:
    """PUT /me/player/volume: `volume_percent` 0..100, on devices that support it."""
    required(ctx.req, "volume_percent")
    percent = int_param(ctx.req, "volume_percent", 0, 0, 100, "Invalid volume_percent")
    device = _command_device(ctx)
    if not device.supports_volume:
        raise ApiError(
            403, "Player command failed: Cannot control device volume", "VOLUME_CONTROL_DISALLOW"
        )
    device.volume_percent = percent
    return no_content()


def get_queue(ctx: Ctx) -> Response:
    """GET /me/player/queue: what plays and what comes after it."""
    player = _player(ctx)
    now = playback.current(player)
    upcoming = player.queue + player.uris[player.index + 1 :] if now else list(player.queue)
    return ok(
        {
            "currently_playing": objects.playable(ctx.state, now) if now else None,
            "queue": [objects.playable(ctx.state, u) for u in upcoming],
        }
    )


def add_to_queue(ctx: Ctx) -> Response:
    """POST /me/player/queue: `uri` of a track or episode."""
    uri = _playable_uri(ctx, required(ctx.req, "uri"))
    _command_device(ctx)
    _player(ctx).queue.append(uri)
    return no_content()


ROUTES: tuple[Route, ...] = (
    route("GET", "/me/player", state, READ_STATE),
    route("PUT", "/me/player", transfer, MODIFY_STATE),
    route("GET", "/me/player/devices", devices, READ_STATE),
    route("GET", "/me/player/currently-playing", currently_playing, READ_CURRENT),
    route("PUT", "/me/player/play", play, MODIFY_STATE),
    route("PUT", "/me/player/pause", pause, MODIFY_STATE),
    route("POST", "/me/player/next", skip_next, MODIFY_STATE),
    route("POST", "/me/player/previous", skip_previous, MODIFY_STATE),
    route("PUT", "/me/player/seek", seek, MODIFY_STATE),
    route("PUT", "/me/player/repeat", repeat, MODIFY_STATE),
    route("PUT", "/me/player/volume", volume, MODIFY_STATE),
    route("PUT", "/me/player/shuffle", shuffle, MODIFY_STATE),
    route("GET", "/me/player/queue", get_queue, READ_CURRENT, READ_STATE),
    route("POST", "/me/player/queue", add_to_queue, MODIFY_STATE),
)
