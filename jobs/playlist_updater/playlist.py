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
- `pending`: the write a run is about to send, saved (`ctx.checkpoint`) before the first request:
  `{playlist, base, adds, had, after, then, sent_at}`: the snapshot_id it started from, the tracks
  it adds (bare IDs) and how many copies of each the playlist held before, the items it leads to,
  the state entries that become true once it is applied (the sources' positions, `sources`), and
  when its latest request was sent.
  A run that crashed, timed out or never heard back leaves it behind, and the next one settles it
  before reading the sources (`settle`): what landed is not sent again. A request that was never
  answered may still be applied for a while (`SETTLE_SECONDS`); until then the next attempt waits
  rather than send the tracks a second time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import spotipy

from jobs.playlist_updater.candidate import Candidate, candidate_from_track
from jobs.playlist_updater.options import PlaylistOption
from jobs.playlist_updater.pages import PAGE, read_rest
from jobs.playlist_updater.planner import Add, Move, Op, Remove, Replace
from runner.context import JobContext
from runner.errors import RateLimited, RunTimedOut, SpotifyAPIError, TransientError

ITEM_FIELDS = "item(uri,name,artists(name))"
TRACK_PREFIX = "spotify:track:"

SETTLE_SECONDS = 60.0
"""How long Spotify may still apply a write request whose answer never arrived."""

RESEND_SECONDS = 10.0
"""`pending.sent_at` is renewed before a request once it is older than this, so that
`sent_at + RESEND_SECONDS` bounds when the last request was sent without a save per request."""


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


@dataclass
class Look:
    """What a run knows of the playlist before it plans.

    Attributes:
        target: the playlist.
        snapshot: its snapshot_id.
        page: the first page of its items (None when just created, so empty).
        items: its URIs when already read, else None.
        details: what the items read say about their tracks.
        base: what the target is built from when it differs from `items`: the items with the
            tracks an earlier attempt meant to add but that did not land, where it meant them.
    """

    target: Target
    snapshot: str | None
    page: dict[str, Any] | None
    items: list[str] | None = None
    details: dict[str, Candidate] = field(default_factory=dict)
    base: list[str] | None = None


def _not_landed(adds: Sequence[str], had: Mapping[str, Any], items: Sequence[str]) -> list[str]:
    """The tracks of `adds` the playlist lacks, counting copies: it held `had[id]` before."""
    have = Counter(items)
    short: Counter[str] = Counter()
    for uri, n in Counter(adds).items():
        before = had.get(compact([uri])[0], 0)
        landed = have[uri] - (before if isinstance(before, int) else 0)
        short[uri] = n - max(0, min(n, landed))
    missing = []
    for uri in adds:
        if short[uri] > 0:
            short[uri] -= 1
            missing.append(uri)
    return missing


def _restore(items: Sequence[str], after: Sequence[str], missing: Sequence[str]) -> list[str]:
    """`items` with each of `missing` put back after the track it followed in `after`."""
    result = list(items)
    present = set(result)
    wanted = Counter(missing)
    for index, uri in enumerate(after):
        if wanted[uri] <= 0:
            continue
        wanted[uri] -= 1
        before = next((u for u in reversed(after[:index]) if u in present), None)
        result.insert(0 if before is None else result.index(before) + 1, uri)
        present.add(uri)
    return result


def _clock_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


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

    def look(self) -> Look:
        """The first look at the playlist this run updates (one request)."""
        return Look(*self.first_look(self.resolve()))

    def current(self, look: Look) -> tuple[list[str], dict[str, Candidate]]:
        """The playlist's URIs, in order, read only when the job cannot know them already."""
        if look.page is None:
            return [], {}
        if look.items is not None:
            return look.items, look.details
        trusted = self.as_written(look.target, look.snapshot, look.page)
        if trusted is not None:
            return trusted, {}
        return self.read_items(look.target, look.page)

    @property
    def pending(self) -> bool:
        """Whether an earlier attempt left a write whose outcome this run must settle first."""
        return isinstance(self.state.get("pending"), dict)

    def settle(self, look: Look) -> Look:
        """Finds out what became of the write an earlier attempt left pending.

        Applied: the state entries it was to make true (the sources' positions) are taken over,
        so its tracks are not added again. Partly applied: the same, and `look.base` puts the
        tracks that did not land where they were meant to go. Not applied: forgotten, so the run
        does it again.

        Raises:
            TransientError: some of it has not landed yet but still may (see `SETTLE_SECONDS`).
        """
        pending = self.state.pop("pending")
        target = look.target
        adds = expand(pending.get("adds") or [])
        if look.page is None or pending.get("playlist") != target.id or not adds:
            # Another playlist, or only removals and moves: doing those again does no harm.
            return look
        if look.snapshot is not None and look.snapshot == pending.get("base"):
            missing = adds  # not a single change since it was sent
        else:
            look.items, look.details = self.read_items(target, look.page)
            missing = _not_landed(adds, pending.get("had") or {}, look.items)
        sent_at = pending.get("sent_at")
        if missing and isinstance(sent_at, int | float):
            settled_at = float(sent_at) + RESEND_SECONDS + SETTLE_SECONDS
            if time.time() < settled_at and not self.ctx.dry_run:
                self.state["pending"] = pending  # still to settle next time
                raise TransientError(
                    f"playlist {target.label}: the previous attempt's write (sent "
                    f"{_clock_text(float(sent_at))}) was never answered and may still be "
                    f"applied; not adding its {len(missing)} track(s) again before "
                    f"{_clock_text(settled_at)}"
                )
        if len(missing) == len(adds):
            self.ctx.log.info(
                "playlist %s: the previous attempt's write never landed", target.label
            )
            return look
        self.state.update(pending.get("then") or {})
        if missing:
            self.ctx.log.warning(
                "playlist %s: %d of the previous attempt's %d track(s) landed; adding the rest",
                target.label,
                len(adds) - len(missing),
                len(adds),
            )
        else:
            self.ctx.log.info(
                "playlist %s: the previous attempt's write landed; not sending it again",
                target.label,
            )
        if missing:
            look.base = _restore(look.items or [], expand(pending.get("after") or []), missing)
        return look

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

    def write(
        self,
        target: Target,
        ops: Sequence[Op],
        snapshot: str | None,
        *,
        current: Sequence[str],
        after: Sequence[str],
        adds: Sequence[str],
        then: Mapping[str, Any],
    ) -> str | None:
        """Sends the plan's requests in order; returns the playlist's snapshot_id after them.

        Before the first request the write is saved as `pending` (see the module docstring), so
        that whatever happens to this run the next one knows what may have landed.

        Args:
            target: the playlist.
            ops: the requests.
            snapshot: its snapshot_id before them.
            current: its URIs before them.
            after: its URIs after them.
            adds: the tracks the requests add, oldest first.
            then: state entries that become true once they are applied.
        """
        had = Counter(current)
        pending: dict[str, Any] = {
            "playlist": target.id,
            "base": snapshot,
            "adds": compact(adds),
            "had": {compact([uri])[0]: had[uri] for uri in dict.fromkeys(adds) if had[uri]},
            "after": compact(after),
            "then": dict(then),
            "sent_at": time.time(),
        }
        self.state["pending"] = pending
        self.ctx.checkpoint()
        client = self.ctx.spotify
        with playlist_errors(target.label):
            for op in ops:
                if time.time() - pending["sent_at"] > RESEND_SECONDS:
                    pending["sent_at"] = time.time()
                    self.ctx.checkpoint()
                try:
                    answer = self._send(client, target, op, snapshot)
                except (spotipy.SpotifyException, RateLimited) as exc:
                    if not isinstance(exc, RateLimited) and exc.http_status >= 500:
                        raise
                    # Answered with a refusal: nothing of this request can land later.
                    pending["sent_at"] = None
                    with suppress(RunTimedOut):
                        self.ctx.checkpoint()
                    raise
                snapshot = (answer or {}).get("snapshot_id") or snapshot
        return snapshot

    @staticmethod
    def _send(client: spotipy.Spotify, target: Target, op: Op, snapshot: str | None) -> Any:
        if isinstance(op, Remove):
            return client.playlist_remove_all_occurrences_of_items(
                target.id, list(op.uris), snapshot_id=snapshot
            )
        if isinstance(op, Add):
            return client.playlist_add_items(target.id, list(op.uris), position=op.position)
        if isinstance(op, Move):
            return client.playlist_reorder_items(
                target.id,
                op.range_start,
                op.insert_before,
                range_length=op.range_length,
                snapshot_id=snapshot,
            )
        if isinstance(op, Replace):
            return client.playlist_replace_items(target.id, list(op.uris))
        raise AssertionError(op)  # pragma: no cover
