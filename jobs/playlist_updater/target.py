"""What the playlist should hold after a run: the target list the planner works towards.

`build_target` is pure: given the tracks the sources produced (oldest first, as a log is read)
and the playlist's current URIs, it returns the URIs the playlist should end with.

- `replace`: the playlist becomes the incoming tracks (filtered, deduplicated, capped keeping the
  first ones); `position` plays no part. An empty source keeps the playlist as it is unless
  `allow_empty` is set, because a feed that came back empty (the radio's site was down) must not
  wipe the playlist; that differs from a source whose every track was excluded, which does
  empty it.
- `append`: incoming tracks go in at `position`. At the top the newest is nearest the top (the
  incoming oldest..newest becomes newest..oldest); at the bottom they go in order. With
  `dedupe`, a track already in the playlist that comes again moves to where a new one goes (the
  "played again" case) instead of being added twice, and copies already in the playlist collapse
  to the one nearest the `position` end. `max_tracks` then trims from the other end, a rolling
  window that drops the oldest; tracks the user added by hand stay unless trimmed.
- `exclude` always filters incoming tracks. In `append` mode it reaches a track already in the
  playlist only when `known` describes that track (the job passes the metadata it has, e.g. of the
  tracks it added itself); a track it knows nothing about is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from jobs.playlist_updater.candidate import Candidate
from jobs.playlist_updater.matching import normalise_artist, normalise_title

Mode = Literal["replace", "append"]
Position = Literal["top", "bottom"]
DedupeBy = Literal["id", "isrc", "artist_title"]

__all__ = ["Candidate", "DedupeBy", "Mode", "Position", "build_target", "dedupe_keys"]


def dedupe_keys(candidate: Candidate, by: DedupeBy) -> tuple[tuple[str, ...], ...]:
    """The keys under which two tracks count as the same.

    The URI always counts; `isrc` adds the ISRC and `artist_title` the normalised main artist and
    title, each only when known, so a track without metadata still dedupes by URI.
    """
    keys: list[tuple[str, ...]] = [("uri", candidate.uri)]
    if by == "isrc" and candidate.isrc:
        keys.append(("isrc", candidate.isrc.strip().upper()))
    elif by == "artist_title" and candidate.name and candidate.artists:
        title = normalise_title(candidate.name)
        artist = normalise_artist(candidate.artists[0])
        if title and artist:
            keys.append(("artist_title", artist, title))
    return tuple(keys)


def _keep_first(candidates: Iterable[Candidate], by: DedupeBy) -> list[Candidate]:
    seen: set[tuple[str, ...]] = set()
    kept: list[Candidate] = []
    for candidate in candidates:
        keys = dedupe_keys(candidate, by)
        if seen.isdisjoint(keys):
            kept.append(candidate)
        # A later track sharing any key with an earlier one is a duplicate, even through a key
        # the earlier one was kept by.
        seen.update(keys)
    return kept


def build_target(
    *,
    mode: Mode,
    incoming: Sequence[Candidate],
    current: Sequence[str],
    max_tracks: int | None,
    position: Position,
    dedupe: bool,
    dedupe_by: DedupeBy = "id",
    exclude: Callable[[Candidate], bool] | None = None,
    known: Mapping[str, Candidate] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """The URIs the playlist should hold, in order.

    Args:
        mode: `replace` (the playlist becomes the sources) or `append` (the sources are added).
        incoming: the sources' tracks, concatenated, oldest first (newest last).
        current: the playlist's URIs now, top first.
        max_tracks: the cap; None for none.
        position: where `append` adds tracks.
        dedupe: whether a track may appear only once.
        dedupe_by: what makes two tracks the same, beyond the URI.
        exclude: true for a track that must not be in the playlist.
        known: metadata of tracks already in the playlist, by URI (see the module docstring).
        allow_empty: in `replace` mode, let an empty source empty the playlist.

    Raises:
        ValueError: `max_tracks` is negative.
    """
    if max_tracks is not None and max_tracks < 0:
        raise ValueError(f"max_tracks must be 0 or more, not {max_tracks}")

    def wanted(candidate: Candidate) -> bool:
        return exclude is None or not exclude(candidate)

    if mode == "replace":
        if not incoming and not allow_empty:
            return list(current)
        chosen = [candidate for candidate in incoming if wanted(candidate)]
        if dedupe:
            chosen = _keep_first(chosen, dedupe_by)
        uris = [candidate.uri for candidate in chosen]
        return uris if max_tracks is None else uris[:max_tracks]

    known = known or {}
    fresh = [candidate for candidate in incoming if wanted(candidate)]
    existing = [
        known.get(uri) or Candidate(uri)
        for uri in current
        if uri not in known or wanted(known[uri])
    ]
    if position == "top":
        ordered = [*reversed(fresh), *existing]
        if dedupe:
            ordered = _keep_first(ordered, dedupe_by)
        uris = [candidate.uri for candidate in ordered]
        return uris if max_tracks is None else uris[:max_tracks]
    ordered = [*existing, *fresh]
    if dedupe:
        # Keep the copy nearest the bottom: the newest.
        ordered = _keep_first(reversed(ordered), dedupe_by)[::-1]
    uris = [candidate.uri for candidate in ordered]
    if max_tracks is None or len(uris) <= max_tracks:
        return uris
    return uris[len(uris) - max_tracks :]
