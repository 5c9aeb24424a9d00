"""`playlist: spotify:playlist:ID`: the tracks of a playlist you own or collaborate on."""

from __future__ import annotations

import pydantic

from jobs.playlist_updater.library import playlist_tracks
from jobs.playlist_updater.options import PlaylistId
from jobs.playlist_updater.sources import Play, Reading, SourceContext


class Options(pydantic.RootModel[PlaylistId]):
    """A playlist reference: an id, `spotify:playlist:ID` or an open.spotify.com URL."""


def read(src: SourceContext, options: Options) -> Reading:
    """Every track of the playlist, in its order."""
    found = playlist_tracks(src.job, options.root, f"source playlist {options.root}")
    return Reading([Play(track=candidate) for candidate in found])
