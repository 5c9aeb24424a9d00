"""`search: ["Artist - Title", ...]`: each line matched through Spotify search, in order."""

from __future__ import annotations

import pydantic

from jobs.playlist_updater.matching import parse_line
from jobs.playlist_updater.options import ArtistTitle
from jobs.playlist_updater.sources import Play, Reading, SourceContext


class Options(pydantic.RootModel[list[ArtistTitle]]):
    """A list of "Artist - Title" lines."""


def read(src: SourceContext, options: Options) -> Reading:
    """The lines as plays; the job matches them (overrides first, then the matcher)."""
    plays = []
    for text in options.root:
        artist, title = parse_line(text) or ("", "")  # validated to parse
        plays.append(Play(artist=artist, title=title, text=text))
    return Reading(plays)
