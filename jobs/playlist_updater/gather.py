"""Reading every source of one run and turning their plays into tracks.

Each entry of `sources` is read by its source module (see `sources`), then all plays are resolved
together (`resolve`), so a line two sources share is searched once. Spotify lists (Liked Songs,
recently played) come newest first, as Spotify shows them; feeds come as a log, oldest first. In
`append` mode the job treats the incoming tracks as a log (`Gathered.log_order`).

What each source entry keeps in `ctx.state["sources"]` (saved only when the run succeeds, so a
failed run never consumes anything), under a key made of its position, name and options:

- `cursor`: whatever its module returned (a feed's ETag, Last-Modified and last lines).
- `seen`: in `append` mode, the time of the newest play taken and the ids of the plays at that
  time: a play at or before it is not added again, across runs.
- `uris`: for sources outside Spotify (feeds, services), the tracks it gave last time: in
  `replace` mode a source that answers "not modified" or, without `allow_empty`, comes back
  empty keeps its part of the playlist instead of wiping it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic

from jobs.playlist_updater.candidate import Candidate, candidate_from_track
from jobs.playlist_updater.library import playlist_tracks
from jobs.playlist_updater.options import Options, SourceSpec
from jobs.playlist_updater.pages import run_concurrently
from jobs.playlist_updater.resolve import Lru, Resolved, Resolver
from jobs.playlist_updater.sources import Http, Play, Reading, SourceContext
from runner.context import JobContext

SEEN_IDS = 200
"""Ids remembered at the newest play time (plays logged in the same second)."""


@dataclass
class Gathered:
    """What the sources produced.

    Attributes:
        tracks: the candidates, sources concatenated, each in its display order.
        log_order: the same in log order (oldest first): what `append` mode adds.
        unmatched: lines that named no track found (or could not be read), in order.
        rejected: for unmatched lines searched this run, the best candidate, its score and why not.
        searches: how many search requests were made.
        by_id: plays matched by an exact identifier; `by_text`: by "Artist - Title".
        requests: HTTP requests made to services and feeds.
        kept: sources whose part of the playlist was kept from last time (304 or empty).
        states: each source entry's state, to remember once the run succeeds.
    """

    tracks: list[Candidate] = field(default_factory=list)
    log_order: list[Candidate] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    rejected: dict[str, tuple[str, float, str]] = field(default_factory=dict)
    searches: int = 0
    by_id: int = 0
    by_text: int = 0
    requests: int = 0
    kept: list[str] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)


TUNING = frozenset({"limit", "count", "max_pages", "max_mib"})
"""Options that change how much is read, not what: changing them keeps the source's cursor."""


def source_key(spec: SourceSpec) -> str:
    """The key of a source entry's state: its position, name and a digest of what it reads.

    Secrets are `SecretStr` in the options, so their dump (and the digest) does not hold them.
    """
    options = spec.options
    if isinstance(options, pydantic.BaseModel) and not isinstance(options, pydantic.RootModel):
        dumped = options.model_dump_json(by_alias=True, exclude=set(TUNING))
    else:
        dumped = options.model_dump_json() if options is not None else "null"
    digest = hashlib.sha256(dumped.encode()).hexdigest()[:12]
    return f"{spec.index}:{spec.name}:{digest}"


def _filter_seen(plays: list[Play], seen: Any) -> tuple[list[Play], dict[str, Any] | None]:
    """Plays newer than `seen` (time and ids), and the `seen` to keep after this run."""
    at = None
    ids: set[str] = set()
    if isinstance(seen, dict) and isinstance(seen.get("at"), str):
        try:
            at = datetime.fromisoformat(seen["at"])
        except ValueError:
            at = None
        ids = {str(i) for i in seen.get("ids") or []}
    timed = [play for play in plays if play.played_at is not None]
    if not timed:
        return plays, seen if isinstance(seen, dict) else None
    fresh = [
        play
        for play in plays
        if play.played_at is None
        or at is None
        or play.played_at > at
        or (play.played_at == at and (play.id or play.line) not in ids)
    ]
    newest = max(play.played_at for play in timed if play.played_at is not None)
    if at is not None and at > newest:
        newest = at
    at_newest = [p.id or p.line for p in timed if p.played_at == newest]
    kept_ids = (ids if at == newest else set()) | set(at_newest)
    return fresh, {"at": newest.isoformat(), "ids": sorted(kept_ids)[-SEEN_IDS:]}


class Gatherer:
    """Reads every source of one run, with the caches kept in `ctx.state`."""

    def __init__(self, ctx: JobContext, options: Options, http: Http | None = None) -> None:
        self.ctx = ctx
        self.options = options
        self.tracks = Lru(ctx.state, "tracks")
        self.http = http or _http_for(ctx)
        self.resolver = Resolver(ctx, options.override_keys, self.known, self.remember)

    def known(self, uri: str) -> Candidate | None:
        """What the job remembers about a track."""
        key = uri.rsplit(":", 1)[-1]
        return _unpack(uri, self.tracks.get(key)) if key in self.tracks else None

    def remember(self, candidate: Candidate) -> None:
        """Keeps a track's metadata for later runs."""
        if candidate.name:
            self.tracks.put(candidate.uri.rsplit(":", 1)[-1], _pack(candidate))

    def save(self, gathered: Gathered) -> None:
        """Writes the caches and the sources' states into `ctx.state`."""
        self.resolver.save()
        self.tracks.save()
        self.ctx.state["sources"] = gathered.states
        self.ctx.state.pop("feeds", None)  # the per-feed tails of before; now in `sources`

    def playlist_tracks(self, playlist_id: str, what: str) -> list[Candidate]:
        """Every track of a playlist the user owns or collaborates on."""
        return playlist_tracks(self.ctx, playlist_id, what)

    def gather(self) -> Gathered:
        """Reads the sources in order and resolves their plays."""
        result = Gathered()
        stored = self.ctx.state.get("sources")
        old_states: dict[str, Any] = stored if isinstance(stored, dict) else {}
        readings: list[tuple[SourceSpec, str, Reading]] = []
        try:
            for spec in self.options.sources:
                key = source_key(spec)
                old = old_states.get(key)
                state: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
                reading = self._read(spec, state)
                readings.append((spec, key, reading))
                result.states[key] = state
        finally:
            result.requests = self.http.sent
            self.http.close()
        plays = [play for _, _, reading in readings for play in reading.plays]
        resolved = self.resolver.resolve(plays)
        self._assemble(readings, resolved, result)
        if self._needs_metadata():
            self._fill_metadata(result)
        return result

    def _read(self, spec: SourceSpec, state: dict[str, Any]) -> Reading:
        """One source's reading, its new plays only in `append` mode; updates its state."""
        append = self.options.mode == "append"
        seen = state.get("seen")
        since = None
        if append and isinstance(seen, dict) and isinstance(seen.get("at"), str):
            try:
                since = datetime.fromisoformat(seen["at"])
            except ValueError:
                since = None
        cursor = state.get("cursor")
        if cursor is None and spec.name == "feed":
            cursor = self._legacy_feed_cursor(spec)
        src = SourceContext(
            job=self.ctx, mode=self.options.mode, cursor=cursor, since=since, http=self.http
        )
        reading = spec.module.read(src, spec.options)
        if not isinstance(reading, Reading):
            raise TypeError(f"source {spec.name}: read() must return a Reading")
        if append and not reading.unchanged:
            reading.plays, new_seen = _filter_seen(reading.plays, seen)
            if new_seen is not None:
                state["seen"] = new_seen
        if reading.cursor is not None:
            state["cursor"] = reading.cursor
        return reading

    def _legacy_feed_cursor(self, spec: SourceSpec) -> Any:
        """The tail an older version kept for this feed under `feeds`, so no line comes twice."""
        feeds = self.ctx.state.get("feeds")
        options = spec.value
        if not isinstance(feeds, dict):
            return None
        tail = feeds.get(f"{spec.index}:{options.file or options.url}")
        return {"tail": tail} if isinstance(tail, list) else None

    def _assemble(
        self, readings: list[tuple[SourceSpec, str, Reading]], resolved: Resolved, result: Gathered
    ) -> None:
        result.unmatched.extend(line for _, _, reading in readings for line in reading.skipped)
        result.unmatched.extend(resolved.unmatched)
        result.rejected = resolved.rejected
        result.searches = resolved.searches
        result.by_id, result.by_text = resolved.by_id, resolved.by_text
        position = 0
        for spec, key, reading in readings:
            found = resolved.tracks[position : position + len(reading.plays)]
            position += len(reading.plays)
            tracks = [track for track in found if track is not None]
            outside = any(play.track is None for play in reading.plays)
            state = result.states[key]
            if self.options.mode == "replace":
                previous = state.get("uris")
                if (reading.unchanged or (not reading.plays and not self.options.allow_empty)) and (
                    isinstance(previous, list) and previous
                ):
                    tracks = [self.known(str(uri)) or Candidate(str(uri)) for uri in previous]
                    if not reading.unchanged:  # "not modified" is the normal idle poll
                        result.kept.append(spec.name)
                elif outside or "uris" in state:
                    state["uris"] = [track.uri for track in tracks]
            result.tracks.extend(tracks)
            result.log_order.extend(reversed(tracks) if reading.newest_first else tracks)

    def _needs_metadata(self) -> bool:
        exclude = self.options.exclude
        return exclude.explicit or bool(exclude.artists) or self.options.dedupe_by != "id"

    def _fill_metadata(self, result: Gathered) -> None:
        """Looks up tracks known only by URI, when excludes or dedupe need their details."""
        bare = list(dict.fromkeys(c.uri for c in result.tracks if not c.name))
        if not bare:
            return
        looked_up = run_concurrently(
            self.ctx, bare, lambda client, uri: candidate_from_track(client.track(uri))
        )
        filled: dict[str, Candidate] = {}
        for candidate in looked_up:
            if candidate is not None:
                self.remember(candidate)
                filled[candidate.uri] = candidate
        result.tracks = [filled.get(c.uri, c) if not c.name else c for c in result.tracks]
        result.log_order = [filled.get(c.uri, c) if not c.name else c for c in result.log_order]


def _http_for(ctx: JobContext) -> Http:
    """The run's source HTTP, bound to the run's deadline: no read outlives the run's timeout."""
    if ctx.deadline is None:
        return Http()
    return Http(remaining=ctx.deadline.remaining, session_factory=ctx.http)


def _pack(candidate: Candidate) -> list[Any]:
    return [
        candidate.name,
        list(candidate.artists),
        candidate.isrc,
        candidate.explicit,
        list(candidate.artist_ids),
    ]


def _unpack(uri: str, packed: Any) -> Candidate:
    name, artists, isrc, explicit, artist_ids = packed
    return Candidate(uri, name, tuple(artists), isrc, bool(explicit), tuple(artist_ids))


def describe(gathered: Gathered) -> str:
    """`3 by id, 5 by text` when any play was matched by id or text, else ""."""
    if not (gathered.by_id or gathered.by_text):
        return ""
    return f"matched {gathered.by_id} by id, {gathered.by_text} by text"
