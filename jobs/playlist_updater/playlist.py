"""The playlist being updated: finding or creating it, reading it, writing the plan.

What the job remembers in `ctx.state` (saved only when a run succeeds):

- `playlist`: `{name, id, created}` for a playlist configured by name, so the look-up over
  `/me/playlists` happens once, and so a vanished playlist is recreated only when this job
  created it.
- `written`: `{playlist, snapshot, items}`: the playlist's `snapshot_id` after the job's last
  write and the items it then held. The `snapshot_id` a write answers may already include another
  client's edit made while the write was in flight, so the same snapshot alone proves nothing; the
  request that reads it also returns the item total and the first page of items, and only when
  those agree with `items` too are the items not read again (`as_written`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import spotipy

from jobs.playlist_updater.options import PlaylistOption
from jobs.playlist_updater.pages import PAGE, read_rest
from jobs.playlist_updater.planner import Add, Move, Op, Remove, Replace
from jobs.playlist_updater.sources import candidate_from_track
from jobs.playlist_updater.target import Candidate
from runner.context import JobContext
from runner.errors import SpotifyAPIError

ITEM_FIELDS = "item(uri,name,artists(name))"
TRACK_PREFIX = "spotify:track:"


@dataclass
class Target:
    """The playlist this run updates.

    Attributes:
        id: its Spotify ID.
        label: how messages name it.
        created: whether this job created it (now or in an earlier run).
        fresh: created in this run, so known to be empty.
        snapshot: its snapshot_id when created in this run.
    """

    id: str
    label: str
    created: bool = False
    fresh: bool = False
    snapshot: str | None = None


def not_owned(label: str) -> SpotifyAPIError:
    """The error for a playlist the user may not change."""
    return SpotifyAPIError(
        403,
        f"playlist {label} belongs to someone else: spotify-runner can only change playlists "
        "you own or collaborate on",
    )


@contextmanager
def playlist_errors(label: str) -> Iterator[None]:
    """Turns a 403 on the playlist into a plain message (404s are handled where they happen)."""
    try:
        yield
    except spotipy.SpotifyException as exc:
        if exc.http_status == 403:
            raise not_owned(label) from None
        raise


def compact(uris: Sequence[str]) -> list[str]:
    """URIs as kept in the state: the bare ID for a track (a third of the size)."""
    return [uri[len(TRACK_PREFIX) :] if uri.startswith(TRACK_PREFIX) else uri for uri in uris]


def expand(items: Sequence[str]) -> list[str]:
    """The inverse of `compact`."""
    return [item if ":" in item else TRACK_PREFIX + item for item in items]


def _item_track(entry: Any) -> dict[str, Any]:
    track = (entry or {}).get("item") or (entry or {}).get("track") or {}
    return track if isinstance(track, dict) else {}


def _item_uri(entry: Any) -> str | None:
    uri = _item_track(entry).get("uri")
    return uri if isinstance(uri, str) else None


class Playlists:
    """Finds, creates and reads the job's playlist.

    Args:
        ctx: the run's context.
        option: the `playlist` option.
    """

    def __init__(self, ctx: JobContext, option: PlaylistOption) -> None:
        self.ctx = ctx
        self.option = option
        self.state: MutableMapping[str, Any] = ctx.state

    # -- finding --------------------------------------------------------------------------------

    def resolve(self) -> Target:
        """The playlist to update: the configured id, the remembered one, found, or created."""
        option = self.option
        if option.id is not None:
            return Target(option.id, option.label)
        remembered = self.state.get("playlist")
        if isinstance(remembered, dict) and remembered.get("name") == option.name:
            return Target(str(remembered["id"]), option.label, bool(remembered.get("created")))
        return self.find_or_create()

    def find_or_create(self) -> Target:
        """Looks the name up over every page of `/me/playlists`; creates it when missing."""
        found = self.find()
        if found is not None:
            self._remember(found, created=False)
            return Target(found, self.option.label)
        return self.create()

    def find(self) -> str | None:
        """The ID of the user's (or a collaborative) playlist with the configured name."""
        assert self.option.name is not None
        me = self.ctx.spotify.current_user()["id"]
        first = self.ctx.spotify.current_user_playlists(limit=PAGE)
        playlists = read_rest(
            self.ctx,
            first,
            lambda client, offset, size: client.current_user_playlists(limit=size, offset=offset),
        )
        for playlist in playlists:
            if not isinstance(playlist, dict) or playlist.get("name") != self.option.name:
                continue
            owner = (playlist.get("owner") or {}).get("id")
            if owner == me or playlist.get("collaborative"):
                return str(playlist["id"])
        return None

    def create(self) -> Target:
        """Creates the playlist (POST /me/playlists) and remembers that this job made it."""
        option = self.option
        assert option.name is not None
        if self.ctx.dry_run:
            # Nothing may be created in a dry run: plan against the empty playlist it would be.
            return Target("", option.label, created=True, fresh=True)
        created = self.ctx.spotify.current_user_playlist_create(
            option.name, public=option.public, description=option.description
        )
        playlist_id = str(created["id"])
        self._remember(playlist_id, created=True)
        self.ctx.log.info("created playlist %s (%s)", option.label, playlist_id)
        return Target(
            playlist_id, option.label, created=True, fresh=True, snapshot=created.get("snapshot_id")
        )

    def _remember(self, playlist_id: str, *, created: bool) -> None:
        self.state["playlist"] = {"name": self.option.name, "id": playlist_id, "created": created}

    def vanished(self, target: Target) -> Target:
        """What to do when the playlist answers 404: recreate it if this job made it, else fail.

        Raises:
            SpotifyAPIError: the playlist was not created by this job and cannot be found.
        """
        if self.option.name is not None:
            if target.created:
                self.ctx.log.warning("playlist %s was deleted: creating it again", target.label)
                return self.create()
            # Maybe the user made a new one by that name; use it if so.
            found = self.find()
            if found is not None:
                self._remember(found, created=False)
                return Target(found, target.label)
            raise SpotifyAPIError(
                404,
                f"playlist {target.label} no longer exists (404) and was not created by "
                "spotify-runner, so it is not recreated: create it again or change the job's "
                "playlist option",
            )
        raise SpotifyAPIError(
            404,
            f"playlist {target.label} not found (404): it was deleted or the id is wrong; "
            "spotify-runner recreates only playlists it created",
        )

    # -- reading --------------------------------------------------------------------------------

    def first_look(self, target: Target) -> tuple[Target, str | None, dict[str, Any] | None]:
        """The playlist's snapshot_id and first page of items, in one request.

        Returns:
            The target (recreated if it had vanished), its snapshot_id, and the first page of
            its items (None when the playlist was just created and is empty).
        """
        if target.fresh:
            return target, target.snapshot, None
        fields = f"snapshot_id,items(total,items({ITEM_FIELDS}))"
        try:
            with playlist_errors(target.label):
                answer = self.ctx.spotify.playlist(
                    target.id, fields=fields, additional_types=("track",)
                )
        except spotipy.SpotifyException as exc:
            if exc.http_status != 404:
                raise
            replaced = self.vanished(target)
            if replaced.fresh:
                return replaced, replaced.snapshot, None
            return self.first_look(replaced)
        snapshot = answer.get("snapshot_id")
        page = answer.get("items")
        if not isinstance(page, dict):
            # Spotify leaves the items out of playlists the user may not read: not theirs.
            raise not_owned(target.label)
        return target, str(snapshot) if snapshot else None, page

    def as_written(
        self, target: Target, snapshot: str | None, page: dict[str, Any] | None
    ) -> list[str] | None:
        """The items the job last wrote, when the playlist provably still holds them.

        Proof is the same `snapshot_id` plus what the first look returned anyway: the item total
        and the first page. An edit another client made while the job's write was in flight
        (folded into the snapshot that write answered) changes one of them unless it is a
        same-size edit beyond the first page, the one case this cheap check cannot see.

        Returns:
            The URIs, or None when the items must be read.
        """
        written = self.state.get("written")
        if (
            not isinstance(written, dict)
            or page is None
            or snapshot is None
            or written.get("playlist") != target.id
            or written.get("snapshot") != snapshot
        ):
            return None
        items = expand(written.get("items") or [])
        shown = [_item_uri(entry) for entry in page.get("items") or []]
        if page.get("total") != len(items) or shown != items[: len(shown)]:
            self.ctx.log.info(
                "playlist %s changed beside the job's last write: reading it again", target.label
            )
            return None
        return items

    def read_items(
        self, target: Target, first: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, Candidate]]:
        """Every item's URI, in order, and what the items say about their tracks."""
        if first is None:
            return [], {}
        fields = f"items({ITEM_FIELDS})"
        with playlist_errors(target.label):
            items = read_rest(
                self.ctx,
                first,
                lambda client, offset, size: client.playlist_items(
                    target.id,
                    fields=fields,
                    limit=size,
                    offset=offset,
                    additional_types=("track",),
                ),
            )
        uris: list[str] = []
        seen: dict[str, Candidate] = {}
        for entry in items:
            uri = _item_uri(entry)
            if uri is None:
                continue  # an unavailable track: Spotify sends no item; it cannot be re-added
            uris.append(uri)
            candidate = candidate_from_track(_item_track(entry))
            if candidate is not None:
                seen[uri] = candidate
        return uris, seen

    # -- writing --------------------------------------------------------------------------------

    def write(self, target: Target, ops: Sequence[Op], snapshot: str | None) -> str | None:
        """Sends the plan's requests in order; returns the playlist's snapshot_id after them."""
        client = self.ctx.spotify
        with playlist_errors(target.label):
            for op in ops:
                if isinstance(op, Remove):
                    answer = client.playlist_remove_all_occurrences_of_items(
                        target.id, list(op.uris), snapshot_id=snapshot
                    )
                elif isinstance(op, Add):
                    answer = client.playlist_add_items(
                        target.id, list(op.uris), position=op.position
                    )
                elif isinstance(op, Move):
                    answer = client.playlist_reorder_items(
                        target.id,
                        op.range_start,
                        op.insert_before,
                        range_length=op.range_length,
                        snapshot_id=snapshot,
                    )
                elif isinstance(op, Replace):
                    answer = client.playlist_replace_items(target.id, list(op.uris))
                else:  # pragma: no cover
                    raise AssertionError(op)
                snapshot = (answer or {}).get("snapshot_id") or snapshot
        return snapshot
