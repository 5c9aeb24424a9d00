"""`top_tracks: {time_range: short_term, limit: 50}`: the user's top tracks, best first."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobs.playlist_updater.library import candidates
from jobs.playlist_updater.pages import PAGE, read_rest
from jobs.playlist_updater.sources import Play, Reading, SourceContext
from runner.context import JobOptions


class Options(JobOptions):
    """The user's top tracks."""

    time_range: Literal["short_term", "medium_term", "long_term"] = "medium_term"
    limit: int = Field(default=50, ge=1, le=100)


def read(src: SourceContext, options: Options) -> Reading:
    """The top tracks, best first."""
    first = src.spotify.current_user_top_tracks(
        limit=min(PAGE, options.limit), offset=0, time_range=options.time_range
    )
    items = read_rest(
        src.job,
        first,
        lambda client, offset, limit: client.current_user_top_tracks(
            limit=limit, offset=offset, time_range=options.time_range
        ),
        limit=options.limit,
    )
    return Reading([Play(track=candidate) for candidate in candidates(items)])
