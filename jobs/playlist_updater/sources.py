"""The sources: what tracks the playlist should get, concatenated in the order configured.

Spotify lists (Liked Songs, recently played) come newest first, as Spotify shows them; feeds come
as a log, oldest first (`order: newest_first` reverses one listed the other way). In `append`
mode the job treats the incoming tracks as a log, so the Spotify lists are reversed there (see
`Gathered.as_log`), and a feed contributes only the lines added since the last successful run.

"Artist - Title" lines are matched through search once and remembered in `ctx.state` (matches
and misses), as is what the job learnt about tracks (name, artists, ISRC, explicit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import spotipy

from jobs.playlist_updater import matching
from jobs.playlist_updater.options import Feed, Options, Source, parse_ref
from jobs.playlist_updater.pages import PAGE, read_rest, run_concurrently
from jobs.playlist_updater.target import Candidate
from runner.context import JobContext
from runner.errors import RunnerError, SpotifyAPIError, TransientError

CACHE_SIZE = 5_000
"""Lines (and tracks) remembered in `ctx.state`; the least recently used go first."""

FEED_TAIL = 5
"""Lines of a feed remembered to find where the last run stopped reading it."""

FEED_TIMEOUT = (5.0, 30.0)
TRACK_FIELDS = "uri,name,explicit,is_local,type,artists(name,id),external_ids(isrc)"
ALGORITHMIC = (
    "Spotify no longer lets apps read Discover Weekly and other algorithmic playlists (404)"
)
_TRACK_URI = re.compile(r"^spotify:track:[0-9A-Za-z]{22}$")


# -- what the job remembers ---------------------------------------------------------------------


class Lru:
    """A bounded mapping kept inside `ctx.state` (JSON objects keep their order)."""

    def __init__(self, state: MutableMapping[str, Any], key: str, size: int = CACHE_SIZE) -> None:
        stored = state.get(key)
        self.data: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        self.state, self.key, self.size = state, key, size

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str) -> Any:
        """The value, marked as recently used."""
        value = self.data.pop(key)
        self.data[key] = value
        return value

    def put(self, key: str, value: Any) -> None:
        """Stores a value, dropping the least recently used beyond the size."""
        self.data.pop(key, None)
        self.data[key] = value
        while len(self.data) > self.size:
            del self.data[next(iter(self.data))]

    def save(self) -> None:
        """Writes the mapping back into the state (kept only if the run succeeds)."""
        self.state[self.key] = self.data


def candidate_from_track(track: Any) -> Candidate | None:
    """A candidate from a Spotify track object; None for episodes, local files and gaps."""
    if not isinstance(track, dict):
        return None
    uri = track.get("uri")
    if not isinstance(uri, str) or _TRACK_URI.match(uri) is None or track.get("is_local"):
        return None
    artists = [a for a in track.get("artists") or [] if isinstance(a, dict)]
    isrc = (track.get("external_ids") or {}).get("isrc")
    return Candidate(
        uri=uri,
        name=str(track.get("name") or ""),
        artists=tuple(str(a.get("name") or "") for a in artists),
        isrc=str(isrc) if isrc else None,
        explicit=bool(track.get("explicit")),
        artist_ids=tuple(str(a.get("id") or "") for a in artists),
    )


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


def label(candidate: Candidate | None, uri: str) -> str:
    """ "Artist - Title" when known, else the URI."""
    if candidate is not None and candidate.name and candidate.artists:
        return f"{candidate.artists[0]} - {candidate.name}"
    return uri


# -- errors -------------------------------------------------------------------------------------


@contextmanager
def source_errors(what: str) -> Iterator[None]:
    """Turns Spotify's refusals while reading a source playlist into plain messages."""
    try:
        yield
    except spotipy.SpotifyException as exc:
        if exc.http_status == 404:
            raise SpotifyAPIError(
                404, f"{what} not found: {ALGORITHMIC}, or it was deleted"
            ) from None
        if exc.http_status == 403:
            raise SpotifyAPIError(
                403,
                f"{what}: Spotify lets apps read only playlists you own or collaborate on (403)",
            ) from None
        raise


# -- feeds --------------------------------------------------------------------------------------


def read_feed(ctx: JobContext, feed: Feed) -> list[str]:
    """The feed's non-blank, non-comment lines, oldest first.

    Raises:
        TransientError: the URL could not be fetched for now (network, 5xx, 429).
        RunnerError: the file cannot be read or the URL answers 4xx; the playlist is left alone.
    """
    if feed.file is not None:
        path = Path(feed.file).expanduser()
        if not path.is_absolute():
            path = ctx.base_dir / path
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise RunnerError(
                f"feed file {path} cannot be read ({reason}); the playlist was left as it was"
            ) from None
    else:
        assert feed.url is not None
        text = _fetch(feed.url)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if feed.order == "newest_first":
        lines.reverse()
    return lines


def _fetch(url: str) -> str:
    shown = url.split("?", 1)[0]  # a query string may carry a key
    try:
        with requests.Session() as session, session.get(url, timeout=FEED_TIMEOUT) as response:
            status = response.status_code
            body = response.content
    except requests.RequestException as exc:
        raise TransientError(f"feed {shown} could not be fetched ({type(exc).__name__})") from None
    if status >= 500 or status == 429:
        raise TransientError(f"feed {shown} answered HTTP {status}; the playlist was left alone")
    if status >= 400:
        raise RunnerError(f"feed {shown} answered HTTP {status}; the playlist was left alone")
    return body.decode("utf-8", errors="replace")


def parse_feed_line(line: str, fmt: str = "auto") -> str | tuple[str, str] | None:
    """What a feed line names: a track URI, an (artist, title) pair, or None when neither.

    Args:
        line: one stripped line.
        fmt: `auto`, or `uris`, `artist_title`, `json` to accept that kind only.
    """
    if fmt in ("auto", "json") and line.startswith("{"):
        return _json_line(line)
    if fmt in ("auto", "uris"):
        try:
            return f"spotify:track:{parse_ref('track', line)}"
        except ValueError:
            if fmt == "uris":
                return None
    if fmt in ("auto", "artist_title"):
        return matching.parse_line(line)
    return None


def _json_line(line: str) -> str | tuple[str, str] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    for key in ("uri", "url", "spotify_uri", "track_uri"):
        if isinstance(obj.get(key), str):
            try:
                return f"spotify:track:{parse_ref('track', obj[key])}"
            except ValueError:
                pass
    artist = obj.get("artist", obj.get("artists"))
    if isinstance(artist, list):
        artist = ", ".join(str(a) for a in artist)
    title = obj.get("title", obj.get("track", obj.get("song", obj.get("name"))))
    if isinstance(artist, str) and isinstance(title, str) and artist.strip() and title.strip():
        return artist.strip(), title.strip()
    return None


def new_lines(lines: list[str], tail: list[str]) -> list[str]:
    """The lines after the latest place where `tail` (the last lines read before) ends.

    A growing log gives its new lines; a feed showing a sliding window gives the ones past the
    last seen; a rotated or rewritten feed, where the tail is gone, gives every line.
    """
    size = len(tail)
    if size == 0:
        return lines
    for end in range(len(lines), size - 1, -1):
        if lines[end - size : end] == tail:
            return lines[end:]
    return lines


def _line_key(artist: str, title: str) -> str:
    return " ".join(f"{artist} - {title}".casefold().split())


# -- gathering ----------------------------------------------------------------------------------


@dataclass
class _Line:
    """An "Artist - Title" line waiting to be matched."""

    text: str
    artist: str
    title: str


@dataclass
class Gathered:
    """What the sources produced.

    Attributes:
        tracks: the candidates, sources concatenated, each in its display order.
        log_order: the same in log order (oldest first): what `append` mode adds.
        unmatched: lines that named no track found (or could not be read), in order.
        searches: how many search requests were made.
        tails: each feed's last lines, to remember once the run succeeds.
    """

    tracks: list[Candidate] = field(default_factory=list)
    log_order: list[Candidate] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    searches: int = 0
    tails: dict[str, list[str]] = field(default_factory=dict)


class Gatherer:
    """Reads every source of one run, with the caches kept in `ctx.state`."""

    def __init__(self, ctx: JobContext, options: Options) -> None:
        self.ctx = ctx
        self.options = options
        self.matches = Lru(ctx.state, "matches")
        self.tracks = Lru(ctx.state, "tracks")

    def known(self, uri: str) -> Candidate | None:
        """What the job remembers about a track."""
        key = uri.rsplit(":", 1)[-1]
        return _unpack(uri, self.tracks.get(key)) if key in self.tracks else None

    def remember(self, candidate: Candidate) -> None:
        """Keeps a track's metadata for later runs."""
        if candidate.name:
            self.tracks.put(candidate.uri.rsplit(":", 1)[-1], _pack(candidate))

    def save(self) -> None:
        """Writes the caches into `ctx.state`."""
        self.matches.save()
        self.tracks.save()

    def gather(self) -> Gathered:
        """Reads the sources in order and matches their "Artist - Title" lines."""
        result = Gathered()
        feeds = self.ctx.state.get("feeds")
        old_tails: dict[str, Any] = feeds if isinstance(feeds, dict) else {}
        # Each source gives slots: a candidate, or a line to match; and whether its display
        # order is newest first (then its log order is the reverse).
        per_source: list[tuple[list[Candidate | _Line], bool]] = []
        for index, source in enumerate(self.options.sources):
            slots, newest_first = self._read(index, source, old_tails, result)
            per_source.append((slots, newest_first))
        lines = [slot for slots, _ in per_source for slot in slots if isinstance(slot, _Line)]
        found = self._match(lines, result)
        for slots, newest_first in per_source:
            resolved: list[Candidate] = []
            for slot in slots:
                if isinstance(slot, Candidate):
                    resolved.append(slot)
                elif (match := found.get(_line_key(slot.artist, slot.title))) is not None:
                    resolved.append(match)
            result.tracks.extend(resolved)
            result.log_order.extend(reversed(resolved) if newest_first else resolved)
        if self._needs_metadata():
            self._fill_metadata(result)
        return result

    def _needs_metadata(self) -> bool:
        exclude = self.options.exclude
        return exclude.explicit or bool(exclude.artists) or self.options.dedupe_by != "id"

    def _read(
        self, index: int, source: Source, old_tails: dict[str, Any], result: Gathered
    ) -> tuple[list[Candidate | _Line], bool]:
        kind = source.kind
        slots: list[Candidate | _Line] = []
        if source.tracks is not None:
            slots.extend(self.known(uri) or Candidate(uri) for uri in source.tracks)
        elif source.search is not None:
            for text in source.search:
                parsed = matching.parse_line(text)
                assert parsed is not None  # validated
                slots.append(_Line(text, *parsed))
        elif source.feed is not None:
            slots.extend(self._feed(index, source.feed, old_tails, result))
        elif source.playlist is not None:
            what = f"source playlist {source.playlist}"
            slots.extend(self.playlist_tracks(source.playlist, what))
        elif source.saved_tracks is not None:
            slots.extend(self._saved(source.saved_tracks.limit))
            return slots, True
        elif source.recently_played is not None:
            page = self.ctx.spotify.current_user_recently_played(limit=source.recently_played.limit)
            slots.extend(self._candidates(entry.get("track") for entry in page.get("items", [])))
            return slots, True
        elif source.top_tracks is not None:
            top = source.top_tracks
            first = self.ctx.spotify.current_user_top_tracks(
                limit=min(PAGE, top.limit), offset=0, time_range=top.time_range
            )
            items = read_rest(
                self.ctx,
                first,
                lambda client, offset, limit: client.current_user_top_tracks(
                    limit=limit, offset=offset, time_range=top.time_range
                ),
                limit=top.limit,
            )
            slots.extend(self._candidates(items))
        else:  # pragma: no cover - Source validates to exactly one kind
            raise AssertionError(kind)
        return slots, False

    @staticmethod
    def _candidates(tracks: Any) -> list[Candidate]:
        # Not remembered: Spotify lists come with their details every run. (Also called from
        # search threads, which must not touch the caches.)
        return [c for c in map(candidate_from_track, tracks) if c is not None]

    def _feed(
        self, index: int, feed: Feed, old_tails: dict[str, Any], result: Gathered
    ) -> list[Candidate | _Line]:
        lines = read_feed(self.ctx, feed)
        key = f"{index}:{feed.file or feed.url}"
        if self.options.mode == "append":
            tail = old_tails.get(key)
            fresh = new_lines(lines, list(tail) if isinstance(tail, list) else [])
            if lines:
                result.tails[key] = lines[-FEED_TAIL:]
            elif isinstance(tail, list):
                result.tails[key] = list(tail)
            lines = fresh
        slots: list[Candidate | _Line] = []
        for line in lines:
            parsed = parse_feed_line(line, feed.format)
            if parsed is None:
                result.unmatched.append(line)
            elif isinstance(parsed, str):
                slots.append(self.known(parsed) or Candidate(parsed))
            else:
                slots.append(_Line(line, *parsed))
        return slots

    def _saved(self, limit: int | None) -> list[Candidate]:
        first = self.ctx.spotify.current_user_saved_tracks(limit=min(PAGE, limit or PAGE))
        items = read_rest(
            self.ctx,
            first,
            lambda client, offset, size: client.current_user_saved_tracks(
                limit=size, offset=offset
            ),
            limit=limit,
        )
        return self._candidates(entry.get("track") for entry in items)

    def playlist_tracks(self, playlist_id: str, what: str) -> list[Candidate]:
        """Every track of a playlist the user owns or collaborates on, read concurrently."""
        fields = f"total,items(item({TRACK_FIELDS}))"
        with source_errors(what):
            first = self.ctx.spotify.playlist_items(
                playlist_id, fields=fields, limit=PAGE, additional_types=("track",)
            )
            items = read_rest(
                self.ctx,
                first,
                lambda client, offset, size: client.playlist_items(
                    playlist_id,
                    fields=fields,
                    limit=size,
                    offset=offset,
                    additional_types=("track",),
                ),
            )
        return self._candidates(entry.get("item") or entry.get("track") for entry in items)

    # -- matching -------------------------------------------------------------------------------

    def _match(self, lines: list[_Line], result: Gathered) -> dict[str, Candidate]:
        found: dict[str, Candidate] = {}
        missed: set[str] = set()
        to_search: dict[str, _Line] = {}
        for line in lines:
            key = _line_key(line.artist, line.title)
            if key in found or key in missed or key in to_search:
                continue
            if key in self.matches:
                uri = self.matches.get(key)
                if uri:
                    found[key] = self.known(uri) or Candidate(uri)
                else:
                    missed.add(key)
            else:
                to_search[key] = line
        pending = list(to_search.items())
        answers = run_concurrently(
            self.ctx, pending, lambda client, item: self._search(client, item[1], result)
        )
        for (key, _), match in zip(pending, answers, strict=True):
            self.matches.put(key, match.uri if match is not None else "")
            if match is None:
                missed.add(key)
            else:
                self.remember(match)
                found[key] = match
        reported: set[str] = set()
        for line in lines:
            key = _line_key(line.artist, line.title)
            if key in missed and key not in reported:
                reported.add(key)
                result.unmatched.append(line.text)
        return found

    def _search(self, client: spotipy.Spotify, line: _Line, result: Gathered) -> Candidate | None:
        seen: list[Candidate] = []
        for query in matching.search_queries(line.artist, line.title):
            try:
                answer = client.search(query, limit=10, type="track")
            except spotipy.SpotifyException as exc:
                if exc.http_status == 400:  # a query Spotify cannot parse finds nothing
                    continue
                raise
            finally:
                result.searches += 1  # ints are atomic enough under the GIL for a count
            items = ((answer or {}).get("tracks") or {}).get("items") or []
            known = {c.uri for c in seen}
            seen.extend(c for c in self._candidates(items) if c.uri not in known)
            best = matching.best_match(line.artist, line.title, seen)
            if best is not None:
                return best
        return None

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
