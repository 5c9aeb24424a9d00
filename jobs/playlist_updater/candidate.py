"""A track as the job knows it: the `Candidate` every other module passes around.

Kept apart from `target` and `matching` so that both can use it without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TRACK_URI = re.compile(r"^spotify:track:[0-9A-Za-z]{22}$")


@dataclass(frozen=True)
class Candidate:
    """A track as a source produced it, with what dedupe, excludes and matching need.

    Attributes:
        uri: `spotify:track:ID`.
        name: the track's name on Spotify ("" when unknown).
        artists: the track's artists' names, main artist first.
        isrc: the recording's ISRC, when known.
        explicit: Spotify's explicit flag.
        artist_ids: the artists' Spotify IDs, in the order of `artists`, when known.
        album: the album's name, when known ("Live at Leeds" says what the track name may not).
    """

    uri: str
    name: str = ""
    artists: tuple[str, ...] = ()
    isrc: str | None = None
    explicit: bool = False
    artist_ids: tuple[str, ...] = ()
    album: str = ""


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
        album=str((track.get("album") or {}).get("name") or ""),
    )


def label(candidate: Candidate | None, uri: str) -> str:
    """ "Artist - Title" when known, else the URI."""
    if candidate is not None and candidate.name and candidate.artists:
        return f"{candidate.artists[0]} - {candidate.name}"
    return uri
