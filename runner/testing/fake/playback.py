"""The player's small state machine: what plays, where it is, and what comes next.

Positions move with the fake's clock while playing and stop at the end of the item (the fake
does not advance on its own; `next` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.testing.fake.model import Device, Player

if TYPE_CHECKING:
    from runner.testing.fake.state import FakeState

REPEAT_STATES = ("off", "track", "context")
RESTART_AFTER_MS = 3000  # "previous" restarts the item when further in than this


def duration_ms(state: FakeState, uri: str) -> int:
    """How long a track or episode lasts."""
    _, kind, item_id = uri.split(":", 2)
    if kind == "episode":
        return state.episodes[item_id].duration_ms
    return state.tracks[item_id].duration_ms


def current(player: Player) -> str | None:
    """The URI playing (or paused), if any."""
    if not player.uris or not 0 <= player.index < len(player.uris):
        return None
    return player.uris[player.index]


def position(state: FakeState, player: Player) -> int:
    """The position in the current item now, in milliseconds."""
    uri = current(player)
    if uri is None:
        return 0
    moved = (state.now() - player.since) * 1000 if player.is_playing else 0
    return int(min(player.progress_ms + moved, duration_ms(state, uri)))


def settle(state: FakeState, player: Player, progress_ms: int | None = None) -> None:
    """Fix the position at now (optionally moving it), before a change of state."""
    player.progress_ms = position(state, player) if progress_ms is None else progress_ms
    player.since = state.now()


def device(player: Player, device_id: str | None) -> Device | None:
    """A device by id, or the active one when `device_id` is None."""
    wanted = device_id if device_id is not None else player.active
    return next((d for d in player.devices if d.id == wanted), None)


def start(state: FakeState, player: Player, uris: list[str], context: str | None, index: int,
          position_ms: int) -> None:  # fmt: skip
    """Play `uris` (from `context`, when one) from `index` at `position_ms`."""
    player.uris, player.context_uri, player.index = list(uris), context, index
    player.is_playing = True
    settle(state, player, position_ms)


def skip_next(state: FakeState, player: Player) -> None:
    """Go to the queue's head, else the context's next item (wrapping on repeat context)."""
    if player.queue:
        uri = player.queue.pop(0)
        player.uris[player.index + 1 : player.index + 1] = [uri]
        player.index += 1
    elif player.repeat == "track":
        pass
    elif player.index + 1 < len(player.uris):
        player.index += 1
    elif player.repeat == "context":
        player.index = 0
    else:
        player.is_playing = False
        settle(state, player, position(state, player))
        return
    settle(state, player, 0)


def skip_previous(state: FakeState, player: Player) -> None:
    """Restart the item when past its first seconds, else go to the one before."""
    if position(state, player) <= RESTART_AFTER_MS and player.repeat != "track":
        if player.index > 0:
            player.index -= 1
        elif player.repeat == "context":
            player.index = len(player.uris) - 1
    settle(state, player, 0)


def snapshot(state: FakeState, player: Player) -> dict[str, Any]:
    """What a test may want to assert about a player, as plain data."""
    active = device(player, None)
    return {
        "device": active.id if active else None,
        "is_playing": player.is_playing and active is not None,
        "item": current(player),
        "context": player.context_uri,
        "progress_ms": position(state, player),
        "repeat": player.repeat,
        "shuffle": player.shuffle,
        "volume_percent": active.volume_percent if active else None,
        "queue": list(player.queue),
    }
