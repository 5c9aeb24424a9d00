"""`tracks: [spotify:track:ID, https://open.spotify.com/track/ID, ...]`: these tracks, in order."""

from __future__ import annotations

import pydantic

from jobs.playlist_updater.candidate import Candidate
from jobs.playlist_updater.options import TrackUri
from jobs.playlist_updater.sources import Play, Reading, SourceContext


class Options(pydantic.RootModel[list[TrackUri]]):
    """A list of track references."""


def read(src: SourceContext, options: Options) -> Reading:
    """The listed tracks (no request: the job knows them by URI)."""
    return Reading([Play(track=Candidate(uri)) for uri in options.root])
