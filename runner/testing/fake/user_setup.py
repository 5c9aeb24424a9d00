"""Test-facing helpers for one user's library, follows, top artists, devices and playback.

Mixed into `FakeState`. Each user has their own library and player; `user_id` says whose.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from runner.testing.fake import catalog, playback
from runner.testing.fake.model import ANY_URI, TIME_RANGES, Device

if TYPE_CHECKING:
    from runner.testing.fake.state import FakeState


def _as_state(mixin: object) -> FakeState:
    """The `FakeState` this mixin is part of (mypy cannot see it through the mixin)."""
    return cast("FakeState", mixin)


# What `/me/library` takes, and which scopes saving and reading each kind needs.
LIBRARY_KINDS = ("track", "album", "episode", "show", "audiobook", "artist", "user", "playlist")
MODIFY_SCOPE = {
    "track": "user-library-modify",
    "album": "user-library-modify",
    "episode": "user-library-modify",
    "show": "user-library-modify",
    "audiobook": "user-library-modify",
    "artist": "user-follow-modify",
    "user": "user-follow-modify",
    "playlist": "playlist-modify-public",
}
READ_SCOPE = {
    "track": "user-library-read",
    "album": "user-library-read",
    "episode": "user-library-read",
    "show": "user-library-read",
    "audiobook": "user-library-read",
    "artist": "user-follow-read",
    "user": "user-follow-read",
    "playlist": "playlist-read-private",
}


class UserSetup:
    """Library, follows, top artists, devices and playback of the fake's users."""

    def save_to_library(
        self, user_id: str, uris: Iterable[str], added_at: float | None = None
    ) -> None:
        """Save items as `PUT /me/library` would: tracks, albums, episodes, shows, audiobooks;
        follow artists, users and playlists. The last one saved is listed first."""
        state = _as_state(self)
        with state.lock:
            user = state._require_user(user_id)
            at = state.now() if added_at is None else added_at
            for uri in uris:
                kind = _kind(uri)
                if not state.catalog_has(uri):
                    raise KeyError(f"no such {kind}: {uri}")
                if kind == "track":
                    state.save_tracks(user_id, [uri], added_at=at)
                elif kind == "playlist":
                    pid = uri.rsplit(":", 1)[1]
                    if pid not in user.playlists:
                        user.playlists.insert(0, pid)
                else:
                    user.library.pop(uri, None)
                    user.library[uri] = at

    def remove_from_library(self, user_id: str, uris: Iterable[str]) -> None:
        """Remove items as `DELETE /me/library` would (unknown ones are ignored)."""
        state = _as_state(self)
        with state.lock:
            user = state._require_user(user_id)
            for uri in uris:
                kind = _kind(uri)
                if kind == "track":
                    user.saved = [s for s in user.saved if s[0] != uri]
                elif kind == "playlist":
                    pid = uri.rsplit(":", 1)[1]
                    if pid in user.playlists:
                        user.playlists.remove(pid)
                else:
                    user.library.pop(uri, None)

    def in_library(self, user_id: str, uri: str) -> bool:
        """Whether the user saved (or follows) `uri`."""
        state = _as_state(self)
        with state.lock:
            user = state._require_user(user_id)
            kind = _kind(uri)
            if kind == "track":
                return any(s[0] == uri for s in user.saved)
            if kind == "playlist":
                return uri.rsplit(":", 1)[1] in user.playlists
            return uri in user.library

    def library_uris(self, user_id: str, kind: str) -> list[str]:
        """The user's saved items of one kind ("album", "artist", ...), newest first."""
        state = _as_state(self)
        if kind not in LIBRARY_KINDS:
            raise ValueError(f"kind must be one of {', '.join(LIBRARY_KINDS)}")
        with state.lock:
            user = state._require_user(user_id)
            if kind == "track":
                return [s[0] for s in reversed(user.saved)]
            if kind == "playlist":
                return [f"spotify:playlist:{p}" for p in state.user_playlist_ids(user_id)]
            return [u for u in reversed(user.library) if _kind(u) == kind]

    def library_added_at(self, user_id: str, uri: str) -> float:
        """When the user saved `uri` (KeyError when not saved)."""
        state = _as_state(self)
        with state.lock:
            return state._require_user(user_id).library[uri]

    def set_top_artists(self, user_id: str, time_range: str, uris: Iterable[str]) -> None:
        """Set the user's top artists (artist URIs) for a time range."""
        state = _as_state(self)
        if time_range not in TIME_RANGES:
            raise ValueError(f"time_range must be one of {', '.join(TIME_RANGES)}")
        with state.lock:
            user = state._require_user(user_id)
            ids = []
            for uri in uris:
                if _kind(uri) != "artist" or not state.catalog_has(uri):
                    raise KeyError(f"no such artist: {uri}")
                ids.append(uri.rsplit(":", 1)[1])
            user.top_artists[time_range] = ids

    def set_email(self, user_id: str, email: str) -> None:
        """The address `/me` shows with `user-read-email`."""
        state = _as_state(self)
        with state.lock:
            state._require_user(user_id).email = email

    # -- player -----------------------------------------------------------------------

    def add_device(
        self,
        user_id: str = "alice",
        name: str = "Kitchen speaker",
        device_type: str = "Speaker",
        volume_percent: int | None = 50,
        active: bool = False,
        supports_volume: bool = True,
        restricted: bool = False,
    ) -> str:
        """Give the user a Spotify Connect device; `active` makes it the one commands go to.

        Returns:
            The device id.
        """
        state = _as_state(self)
        with state.lock:
            player = state._require_user(user_id).player
            did = catalog.base62_id("device", state.next_serial(), name)[:20]
            player.devices.append(
                Device(did, name, device_type, volume_percent, supports_volume, restricted)
            )
            if active:
                player.active = did
            return did

    def remove_device(self, user_id: str, device_id: str) -> None:
        """Take a device away (as when it goes offline); playback stops if it was active."""
        state = _as_state(self)
        with state.lock:
            player = state._require_user(user_id).player
            player.devices = [d for d in player.devices if d.id != device_id]
            if player.active == device_id:
                player.active = None
                player.is_playing = False

    def playback(self, user_id: str = "alice") -> dict[str, Any]:
        """The user's playback as plain data: device, is_playing, item, context, progress_ms,
        repeat, shuffle, volume_percent and queue."""
        state = _as_state(self)
        with state.lock:
            return playback.snapshot(state, state._require_user(user_id).player)

    def start_playback(
        self,
        user_id: str,
        uris: Iterable[str],
        context_uri: str | None = None,
        index: int = 0,
        position_ms: int = 0,
    ) -> None:
        """Start playing `uris` (from `context_uri`) on the active device, as if the user
        pressed play in the app."""
        state = _as_state(self)
        with state.lock:
            player = state._require_user(user_id).player
            if player.active is None:
                raise ValueError("the user has no active device: add_device(..., active=True)")
            items = state._check_uris(uris, episodes=True)
            if not 0 <= index < len(items):
                raise ValueError("index is outside uris")
            playback.start(state, player, items, context_uri, index, position_ms)

    # -- playlist covers ------------------------------------------------------------------

    def set_playlist_cover(self, playlist_id: str, jpeg: bytes) -> None:
        """Set a playlist's cover image, as its owner would in the app."""
        state = _as_state(self)
        with state.lock:
            playlist = state._require_playlist(playlist_id)
            playlist.image = jpeg
            playlist.image_version += 1

    def playlist_cover(self, playlist_id: str) -> bytes | None:
        """The JPEG uploaded as the playlist's cover, if any."""
        state = _as_state(self)
        with state.lock:
            return state._require_playlist(playlist_id).image


def _kind(uri: str) -> str:
    found = ANY_URI.match(uri)
    if found is None or found.group(1) not in LIBRARY_KINDS:
        raise ValueError(f"not a URI the library takes: {uri}")
    return found.group(1)
