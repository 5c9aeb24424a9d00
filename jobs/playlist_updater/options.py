"""The playlist updater's options, validated in one pass with every mistake named by its path.

References are accepted in the forms Spotify's apps share them: `spotify:track:ID`,
`https://open.spotify.com/track/ID` (with or without `intl-xx/` and `?si=...`), or the bare
22-character ID. Validators raise `PydanticCustomError` so that the loader prints their message as
it is, after the config file position and key path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from jobs.playlist_updater.matching import parse_line
from runner.context import JobOptions

_ID = r"[0-9A-Za-z]{22}"


def _url_pattern(kind: str) -> str:
    return rf"https?://open\.spotify\.com/(?:intl-[A-Za-z-]+/)?{kind}/({_ID})/?(?:[?#].*)?"


def parse_ref(kind: str, value: Any) -> str:
    """The ID in a Spotify reference of `kind` (track, playlist, artist).

    Args:
        kind: what the reference must point at.
        value: `spotify:KIND:ID`, an open.spotify.com URL, or a bare ID.

    Raises:
        PydanticCustomError: the value is none of the accepted forms.
    """
    if isinstance(value, str):
        text = value.strip()
        for pattern in (rf"spotify:{kind}:({_ID})", _url_pattern(kind), f"({_ID})"):
            found = re.fullmatch(pattern, text)
            if found is not None:
                return found.group(1)
    raise PydanticCustomError(
        f"{kind}_reference",
        "expected {article} {kind}: spotify:{kind}:ID, https://open.spotify.com/{kind}/ID or the "
        "22-character ID, got {got}",
        {"article": "an" if kind[0] in "aeiou" else "a", "kind": kind, "got": repr(value)[:80]},
    )


def _track_uri(value: Any) -> str:
    return f"spotify:track:{parse_ref('track', value)}"


def _playlist_id(value: Any) -> str:
    return parse_ref("playlist", value)


def _artist(value: Any) -> str:
    """An artist's URI when given as a reference, else the name as written."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.startswith(("spotify:", "http://", "https://")):
            return f"spotify:artist:{parse_ref('artist', text)}"
        return text
    raise PydanticCustomError(
        "artist", "expected an artist's name or spotify:artist:ID, got {got}", {"got": repr(value)}
    )


def _artist_title(value: Any) -> str:
    if isinstance(value, str) and parse_line(value) is not None:
        return value.strip()
    raise PydanticCustomError(
        "artist_title",
        'expected "Artist - Title" (a dash with spaces around it), got {got}',
        {"got": repr(value)[:80]},
    )


TrackUri = Annotated[str, BeforeValidator(_track_uri)]
PlaylistId = Annotated[str, BeforeValidator(_playlist_id)]
ArtistRef = Annotated[str, BeforeValidator(_artist)]
ArtistTitle = Annotated[str, BeforeValidator(_artist_title)]


class PlaylistOption(JobOptions):
    """The playlist to update: `{name, public, description}` or an id / URI / URL.

    Attributes:
        id: the playlist's ID when given as a reference.
        name: looked up among the user's playlists, created when missing.
        public: for a playlist this job creates.
        description: for a playlist this job creates.
    """

    id: PlaylistId | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    public: bool = False
    description: str = Field(default="", max_length=300)

    @model_validator(mode="before")
    @classmethod
    def _from_reference(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"id": _playlist_id(value)}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "playlist",
                "expected {name: ...} or a playlist: spotify:playlist:ID, "
                "https://open.spotify.com/playlist/ID or the 22-character ID",
            )
        return value

    @model_validator(mode="after")
    def _one_way(self) -> PlaylistOption:
        if (self.id is None) == (self.name is None):
            raise PydanticCustomError(
                "playlist", "give the playlist either a name or an id/URI/URL, not both"
            )
        return self

    @property
    def label(self) -> str:
        """How messages name the playlist."""
        return f"'{self.name}'" if self.name is not None else f"spotify:playlist:{self.id}"


class Feed(JobOptions):
    """A file or URL with one track a line: a URI/URL, "Artist - Title" or a JSON object.

    Attributes:
        file: a path, relative to the config file's folder.
        url: an http(s) URL, fetched each run.
        order: `oldest_first` (a log, newest last) or `newest_first`.
        format: `auto` tells each line's kind by its look; the others accept one kind only.
    """

    file: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    order: Literal["oldest_first", "newest_first"] = "oldest_first"
    format: Literal["auto", "uris", "artist_title", "json"] = "auto"

    @model_validator(mode="after")
    def _one_place(self) -> Feed:
        if (self.file is None) == (self.url is None):
            raise PydanticCustomError("feed", "a feed has either a file or a url")
        return self


class SavedTracks(JobOptions):
    """Liked Songs, newest first. `limit`: how many (all when left out)."""

    limit: int | None = Field(default=None, ge=1, le=10_000)


class RecentlyPlayed(JobOptions):
    """The latest plays, newest first (Spotify keeps 50)."""

    limit: int = Field(default=50, ge=1, le=50)


class TopTracks(JobOptions):
    """The user's top tracks, best first."""

    time_range: Literal["short_term", "medium_term", "long_term"] = "medium_term"
    limit: int = Field(default=50, ge=1, le=100)


SOURCE_KINDS = (
    "tracks",
    "feed",
    "search",
    "playlist",
    "saved_tracks",
    "recently_played",
    "top_tracks",
)


class Source(JobOptions):
    """One entry of `sources`: a mapping with exactly one of `SOURCE_KINDS`."""

    tracks: list[TrackUri] | None = None
    feed: Feed | None = None
    search: list[ArtistTitle] | None = None
    playlist: PlaylistId | None = None
    saved_tracks: SavedTracks | None = None
    recently_played: RecentlyPlayed | None = None
    top_tracks: TopTracks | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, value: Any) -> Any:
        kinds = ", ".join(SOURCE_KINDS)
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "source", "expected a source: a mapping with one of {kinds}", {"kinds": kinds}
            )
        unknown = [str(key) for key in value if key not in SOURCE_KINDS]
        if unknown:
            raise PydanticCustomError(
                "source",
                "unknown source {unknown}: expected one of {kinds}",
                {"unknown": ", ".join(repr(key) for key in unknown), "kinds": kinds},
            )
        given = [key for key in SOURCE_KINDS if key in value]
        if len(given) > 1:
            raise PydanticCustomError(
                "source",
                "one source per list entry: split {given} into separate entries",
                {"given": " and ".join(given)},
            )
        if not given and not value:
            raise PydanticCustomError(
                "source", "empty source: expected one of {kinds}", {"kinds": kinds}
            )
        # `- saved_tracks:` with nothing after it means the defaults.
        return {
            key: (
                {}
                if item is None and key in ("saved_tracks", "recently_played", "top_tracks")
                else item
            )
            for key, item in value.items()
        }

    @property
    def kind(self) -> str:
        """Which source this is."""
        for key in SOURCE_KINDS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated sources have a kind")  # pragma: no cover


class Exclude(JobOptions):
    """Tracks that must not be in the playlist.

    Attributes:
        explicit: leave out tracks Spotify marks explicit.
        tracks: these tracks.
        artists: tracks by these artists (names, compared loosely, or spotify:artist:ID).
        playlists: the tracks of these playlists (yours or ones you collaborate on).
    """

    explicit: bool = False
    tracks: list[TrackUri] = Field(default_factory=list)
    artists: list[ArtistRef] = Field(default_factory=list)
    playlists: list[PlaylistId] = Field(default_factory=list)


class Options(JobOptions):
    """Options of the playlist updater (see the package docstring and issue 5).

    Attributes:
        playlist: which playlist to keep up to date.
        sources: where tracks come from, concatenated in order.
        mode: `replace` (the playlist becomes the sources) or `append` (the sources are added).
        max_tracks: a cap; with `append`, a rolling window that drops the oldest.
        position: where `append` adds new tracks.
        dedupe: a track at most once.
        dedupe_by: what else makes two tracks the same besides the track id.
        exclude: what must never be in the playlist.
        allow_empty: with `replace`, let sources that gave no track at all empty the playlist;
            off by default, so a feed that came back empty (its site was down) cannot wipe it.
    """

    playlist: PlaylistOption
    sources: list[Source] = Field(min_length=1)
    mode: Literal["replace", "append"] = "replace"
    max_tracks: int | None = Field(default=None, ge=1, le=10_000)
    position: Literal["top", "bottom"] = "top"
    dedupe: bool = True
    dedupe_by: Literal["id", "isrc", "artist_title"] = "id"
    exclude: Exclude = Field(default_factory=Exclude)
    allow_empty: bool = False
