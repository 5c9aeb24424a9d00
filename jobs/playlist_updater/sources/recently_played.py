"""`recently_played: {limit: 50}`: the latest plays, newest first (Spotify keeps 50)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from jobs.playlist_updater.candidate import candidate_from_track
from jobs.playlist_updater.sources import Play, Reading, SourceContext
from runner.context import JobOptions


class Options(JobOptions):
    """The latest plays."""

    limit: int = Field(default=50, ge=1, le=50)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def read(src: SourceContext, options: Options) -> Reading:
    """One request; each play carries its `played_at`."""
    page = src.spotify.current_user_recently_played(limit=options.limit)
    plays = []
    for entry in page.get("items", []):
        candidate = candidate_from_track(entry.get("track"))
        if candidate is not None:
            plays.append(Play(track=candidate, played_at=_time(entry.get("played_at"))))
    return Reading(plays, newest_first=True)
