"""`saved_tracks: {limit: 200}`: Liked Songs, newest first (all of them without a limit)."""

from __future__ import annotations

from pydantic import Field

from jobs.playlist_updater.library import candidates
from jobs.playlist_updater.pages import PAGE, read_rest
from jobs.playlist_updater.sources import Play, Reading, SourceContext
from runner.context import JobOptions


class Options(JobOptions):
    """Liked Songs. `limit`: how many (all when left out)."""

    limit: int | None = Field(default=None, ge=1, le=10_000)


def read(src: SourceContext, options: Options) -> Reading:
    """Liked Songs, newest first, the pages after the first read concurrently."""
    limit = options.limit
    first = src.spotify.current_user_saved_tracks(limit=min(PAGE, limit or PAGE))
    items = read_rest(
        src.job,
        first,
        lambda client, offset, size: client.current_user_saved_tracks(limit=size, offset=offset),
        limit=limit,
    )
    found = candidates(entry.get("track") for entry in items)
    return Reading([Play(track=candidate) for candidate in found], newest_first=True)
