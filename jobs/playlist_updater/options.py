"""The playlist updater's options, validated in one pass with every mistake named by its path.

References are accepted in the forms Spotify's apps share them: `spotify:track:ID`,
`https://open.spotify.com/track/ID` (with or without `intl-xx/` and `?si=...`), or the bare
22-character ID. Validators raise `PydanticCustomError` so that the loader prints their message as
it is, after the config file position and key path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator, Field, PlainSerializer, SkipValidation, model_validator
from pydantic_core import PydanticCustomError

from jobs.playlist_updater.matching import parse_line
from jobs.playlist_updater.sources import SourceModule, available_sources, find_source
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


def line_key(line: str) -> str:
    """A line folded for look-ups: case and runs of spaces do not matter."""
    return " ".join(line.casefold().split())


@dataclass(frozen=True)
class SourceSpec:
    """One validated entry of `sources`.

    Attributes:
        name: the source's name (the entry's key).
        options: what its module's `Options` made of the entry's value.
        module: the source module.
        index: the entry's position in `sources`.
    """

    name: str
    options: Any
    module: SourceModule
    index: int

    @property
    def value(self) -> Any:
        """The options, unwrapped when the model is a root model (`tracks: [...]`)."""
        return self.options.root if isinstance(self.options, pydantic.RootModel) else self.options


def _dump_sources(specs: list[SourceSpec]) -> list[dict[str, Any]]:
    """The sources as the config writes them (secrets stay masked by `SecretStr`)."""
    return [{spec.name: spec.options} for spec in specs]


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
        allow_empty: with `replace`, let a source that gave no track empty its part of the
            playlist; off by default, so a feed that came back empty (its site was down) keeps
            the tracks it gave last time instead of wiping them.
        overrides: a line ("Artist - Title", as reports show it) to the track it means, or to
            None for "never match this"; applied before any search.
    """

    playlist: PlaylistOption
    sources: Annotated[SkipValidation[list[SourceSpec]], PlainSerializer(_dump_sources)]
    overrides: dict[str, TrackUri | None] = Field(default_factory=dict)
    mode: Literal["replace", "append"] = "replace"
    max_tracks: int | None = Field(default=None, ge=1, le=10_000)
    position: Literal["top", "bottom"] = "top"
    dedupe: bool = True
    dedupe_by: Literal["id", "isrc", "artist_title"] = "id"
    exclude: Exclude = Field(default_factory=Exclude)
    allow_empty: bool = False

    @model_validator(mode="wrap")
    @classmethod
    def _validate_sources(cls, data: Any, handler: Callable[[Any], Options]) -> Options:
        """Validates each source entry with its own module's `Options`, errors at their keys."""
        if not isinstance(data, dict) or "sources" not in data:
            return handler(data)
        problems: list[Any] = []
        specs = _source_specs(data["sources"], problems)
        try:
            result = handler({**data, "sources": specs})
        except pydantic.ValidationError as exc:
            if not problems:
                raise
            problems.extend(_line_error(err, ()) for err in exc.errors())
            raise pydantic.ValidationError.from_exception_data(cls.__name__, problems) from None
        if problems:
            raise pydantic.ValidationError.from_exception_data(cls.__name__, problems)
        return result

    @property
    def override_keys(self) -> dict[str, str | None]:
        """`overrides` by their folded line (case and spacing do not matter)."""
        return {line_key(line): uri for line, uri in self.overrides.items()}


def _line_error(err: Any, prefix: tuple[str | int, ...]) -> dict[str, Any]:
    loc = (*prefix, *err["loc"])
    return {
        "type": PydanticCustomError(err["type"], err["msg"]),
        "loc": loc,
        "input": err.get("input"),
    }


def _source_error(index: int, kind: str, message: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": PydanticCustomError(kind, message, context),
        "loc": ("sources", index),
        "input": None,
    }


def _source_specs(raw: Any, problems: list[Any]) -> list[SourceSpec]:
    """The entries of `sources`, validated; every problem is added to `problems`."""
    kinds = ", ".join(available_sources())
    if not isinstance(raw, list) or not raw:
        problems.append(
            {
                "type": PydanticCustomError(
                    "sources", "expected a list of at least one source: {kinds}", {"kinds": kinds}
                ),
                "loc": ("sources",),
                "input": raw,
            }
        )
        return []
    specs: list[SourceSpec] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry:
            problems.append(
                _source_error(
                    index,
                    "source",
                    "expected a source: a mapping with one of {kinds}",
                    {"kinds": kinds},
                )
            )
            continue
        if len(entry) > 1:
            given = " and ".join(str(key) for key in entry)
            problems.append(
                _source_error(
                    index,
                    "source",
                    "one source per list entry: split {given} into separate entries",
                    {"given": given},
                )
            )
            continue
        ((name, value),) = entry.items()
        try:
            module = find_source(str(name))
        except LookupError as exc:
            problems.append(_source_error(index, "source", "{why}", {"why": str(exc)}))
            continue
        model = module.options_model
        if model is None:
            if value not in (None, {}):
                problems.append(
                    _source_error(index, "source", "source {name} takes no options", {"name": name})
                )
                continue
            specs.append(SourceSpec(str(name), None, module, index))
            continue
        if value is None and not issubclass(model, pydantic.RootModel):
            value = {}  # `- saved_tracks:` with nothing after it means the defaults
        try:
            options = model.model_validate(value)
        except pydantic.ValidationError as exc:
            problems.extend(
                _unknown_keys(model, err, ("sources", index, name)) for err in exc.errors()
            )
            continue
        specs.append(SourceSpec(str(name), options, module, index))
    return specs


def _unknown_keys(
    model: type[pydantic.BaseModel], err: Any, prefix: tuple[str | int, ...]
) -> dict[str, Any]:
    """An error inside a source's options; an unknown key lists the keys its model allows."""
    if err["type"] != "extra_forbidden":
        return _line_error(err, prefix)
    owner: type[pydantic.BaseModel] | None = model
    for part in err["loc"][:-1]:
        field = owner.model_fields.get(str(part)) if owner is not None else None
        annotation = field.annotation if field is not None else None
        owner = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
            else None
        )
        if owner is None:
            for arg in getattr(annotation, "__args__", ()):
                if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                    owner = arg
    allowed = f" (allowed: {', '.join(sorted(owner.model_fields))})" if owner is not None else ""
    return {
        "type": PydanticCustomError(
            "unknown_option", "unknown option{allowed}", {"allowed": allowed}
        ),
        "loc": (*prefix, *err["loc"]),
        "input": err.get("input"),
    }
