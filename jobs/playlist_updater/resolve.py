"""Plays to tracks: overrides first, then exact identifiers, then "Artist - Title" text.

For each play, in this order:

1. `options.overrides`: the play's line ("Artist - Title", as reports show it) mapped to a track
   URI, or to None ("never match this"). No search is made for it.
2. A track the source named exactly: a Spotify track (Spotify's own sources), a Spotify URI/URL.
3. An ISRC: Spotify search `isrc:CODE`, remembered like any match.
4. A MusicBrainz recording id already resolved once (through its ISRC or text).
5. The text, through `matching` (its threshold, its queries), remembered as a match or a miss.

Counts say how many plays were resolved by id (2-4) and by text (5), and for each line that
matched nothing the best candidate it rejected and its score, so that writing an override is
copy and paste.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import spotipy

from jobs.playlist_updater import matching
from jobs.playlist_updater.candidate import Candidate, label
from jobs.playlist_updater.library import candidates
from jobs.playlist_updater.options import line_key
from jobs.playlist_updater.pages import run_concurrently
from jobs.playlist_updater.sources import Play
from runner.context import JobContext

CACHE_SIZE = 5_000
"""Lines (and tracks) remembered in `ctx.state`; the least recently used go first."""

_UNPARSABLE = (400, 414)
"""Search answers that mean "this query finds nothing" (unparsable, or a URI too long)."""


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


@dataclass
class Resolved:
    """What resolving one run's plays found.

    Attributes:
        tracks: for each play, its track or None.
        by_id: plays resolved by an exact identifier.
        by_text: plays resolved by "Artist - Title".
        by_override: plays an override decided (a track or "never").
        unmatched: each line that matched nothing, once, in order.
        rejected: for an unmatched line searched this run, its best candidate, score and why not.
        searches: search requests made.
    """

    tracks: list[Candidate | None] = field(default_factory=list)
    by_id: int = 0
    by_text: int = 0
    by_override: int = 0
    unmatched: list[str] = field(default_factory=list)
    rejected: dict[str, tuple[str, float, str]] = field(default_factory=dict)
    searches: int = 0


def text_key(play: Play) -> str | None:
    """The cache key of a play's "Artist - Title" (None when it has no artist and title)."""
    if not (play.artist and play.title):
        return None
    return line_key(f"{play.artist} - {play.title}")


class Resolver:
    """Resolves plays with the caches kept in `ctx.state` (`matches`)."""

    def __init__(
        self,
        ctx: JobContext,
        overrides: dict[str, str | None],
        known: Callable[[str], Candidate | None],
        remember: Callable[[Candidate], None],
    ) -> None:
        self.ctx = ctx
        self.overrides = overrides
        self.matches = matching.MatchMemory(ctx.state, "matches")
        self.known = known
        self.remember = remember

    def save(self) -> None:
        """Writes the match cache into `ctx.state`."""
        self.matches.save()

    def _cached(self, key: str) -> Candidate | None | bool:
        """The cached answer for a key: a track, None for a remembered miss, False if unknown."""
        if key not in self.matches:
            return False
        uri = self.matches.get(key)
        return (self.known(uri) or Candidate(uri)) if uri else None

    def resolve(self, plays: list[Play]) -> Resolved:
        """Each play's track, or None, with the counts."""
        out = Resolved(tracks=[None] * len(plays))
        pending_isrc: dict[str, list[int]] = {}
        pending_text: dict[str, list[int]] = {}
        how: dict[int, str] = {}
        for index, play in enumerate(plays):
            override_key = line_key(play.line)
            if override_key in self.overrides:
                uri = self.overrides[override_key]
                out.tracks[index] = (self.known(uri) or Candidate(uri)) if uri else None
                how[index] = "override"
                continue
            if play.track is not None:
                track = play.track
                out.tracks[index] = track if track.name else (self.known(track.uri) or track)
                how[index] = "spotify"
                continue
            if play.uri is not None:
                out.tracks[index] = self.known(play.uri) or Candidate(play.uri)
                how[index] = "id"
                continue
            found = self._by_ids(play)
            if found is not None:
                out.tracks[index] = found
                how[index] = "id"
                continue
            if play.isrc and f"isrc:{play.isrc}" not in self.matches:
                pending_isrc.setdefault(play.isrc, []).append(index)
                continue
            self._text_or_pending(index, play, out, pending_text, how)

        # Exact identifiers first: one `isrc:` search each, concurrently.
        codes = list(pending_isrc)
        answers = run_concurrently(
            self.ctx, codes, lambda client, code: self._search_isrc(client, code, out)
        )
        for code, match in zip(codes, answers, strict=True):
            self.matches.put(f"isrc:{code}", match.uri if match is not None else "")
            for index in pending_isrc[code]:
                if match is not None:
                    self.remember(match)
                    out.tracks[index] = match
                    how[index] = "id"
                    self._note_mbid(plays[index], match)
                else:
                    self._text_or_pending(index, plays[index], out, pending_text, how)

        # Then the text of whatever is left, once per distinct line.
        keys = list(pending_text)
        answers = run_concurrently(
            self.ctx,
            keys,
            lambda client, key: self._search_text(client, plays[pending_text[key][0]], out),
        )
        for key, match in zip(keys, answers, strict=True):
            self.matches.put(key, match.uri if match is not None else "")
            if match is not None:
                self.remember(match)
            for index in pending_text[key]:
                out.tracks[index] = match
                how[index] = "text"
                if match is not None:
                    self._note_mbid(plays[index], match)

        reported: set[str] = set()
        for index, play in enumerate(plays):
            kind = how.get(index)
            if out.tracks[index] is None:
                if kind != "override" and play.line not in reported:
                    reported.add(play.line)
                    out.unmatched.append(play.line)
            elif kind == "id":
                out.by_id += 1
            elif kind == "text":
                out.by_text += 1
            if kind == "override":
                out.by_override += 1
        return out

    def _by_ids(self, play: Play) -> Candidate | None:
        """A track already known by the play's ISRC or MusicBrainz id."""
        for key in (
            f"isrc:{play.isrc}" if play.isrc else "",
            f"mbid:{play.mbid}" if play.mbid else "",
        ):
            if key:
                cached = self._cached(key)
                if isinstance(cached, Candidate):
                    return cached
        return None

    def _note_mbid(self, play: Play, match: Candidate) -> None:
        if play.mbid:
            self.matches.put(f"mbid:{play.mbid}", match.uri)

    def _text_or_pending(
        self,
        index: int,
        play: Play,
        out: Resolved,
        pending: dict[str, list[int]],
        how: dict[int, str],
    ) -> None:
        key = text_key(play)
        how[index] = "text"
        if key is None:
            return
        cached = self._cached(key)
        if cached is False:
            pending.setdefault(key, []).append(index)
        elif isinstance(cached, Candidate):
            out.tracks[index] = cached

    def _search(self, client: spotipy.Spotify, query: str, out: Resolved) -> list[Candidate]:
        try:
            answer = client.search(query, limit=10, type="track")
        except spotipy.SpotifyException as exc:
            if exc.http_status in _UNPARSABLE:
                return []
            raise
        finally:
            out.searches += 1  # ints are atomic enough under the GIL for a count
        return candidates(((answer or {}).get("tracks") or {}).get("items") or [])

    def _search_isrc(self, client: spotipy.Spotify, code: str, out: Resolved) -> Candidate | None:
        found = [c for c in self._search(client, f"isrc:{code}", out) if c.isrc in (None, code)]
        return found[0] if found else None

    def _search_text(self, client: spotipy.Spotify, play: Play, out: Resolved) -> Candidate | None:
        seen: list[Candidate] = []
        for query in matching.search_queries(play.artist, play.title):
            known = {c.uri for c in seen}
            seen.extend(c for c in self._search(client, query, out) if c.uri not in known)
            best = matching.best_match(play.artist, play.title, seen)
            if best is not None:
                return best
        closest = matching.best_rejected(play.artist, play.title, seen)
        if closest is not None:
            candidate = closest.candidate
            out.rejected[play.line] = (
                f"{label(candidate, candidate.uri)} ({candidate.uri})",
                closest.score,
                closest.why or "",
            )
        return None
