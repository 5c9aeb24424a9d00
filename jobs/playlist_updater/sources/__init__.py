"""Where a playlist's tracks come from: one module per source, found by name like jobs are.

A source is a plain module with one function and, optionally, an options model:

    read(src: SourceContext, options) -> Reading    # required
    Options                                        # a `JobOptions` model for its entry

The entry `- NAME: {...}` of `options.sources` names the source; its mapping is validated with the
module's `Options` when the config is checked (`spotify-runner check`), and every mistake is
reported at its own line. `read` returns the source's plays in its own display order (newest first
or oldest first, as `Reading.newest_first` says) and, optionally, a JSON-able `cursor` that the
next run receives as `src.cursor` (only once this run succeeded: a failed run never consumes it).

The job does the rest for every source alike: in `append` mode it drops plays already taken
(by their time and id, or by the lines a feed showed last), resolves plays to tracks (overrides,
then exact identifiers, then "Artist - Title" through the matcher), and in `replace` mode keeps
what a source gave last time when it now gives nothing (`Reading.unchanged`, or an empty reading
without `allow_empty`).

Sources are found in the built-in modules of this package (`BUILTIN`) and in entry points of the
group `spotify_runner.sources` (name -> module). A name found in both is an error, as is an
unknown name, which lists what exists. Built-in sources use exactly this interface.

Raise freely from `read`: `TransientError` (network, 5xx, 429, a malformed body) makes the run
transient, so it is retried; `RunnerError` fails it with its one-line message. Either way the
playlist and every cursor are left as they were.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pydantic
import spotipy

from jobs.playlist_updater.candidate import Candidate
from jobs.playlist_updater.sources.http import Http
from runner.context import JobContext

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Http",
    "Play",
    "Reading",
    "SourceContext",
    "SourceModule",
    "available_sources",
    "find_source",
]

ENTRY_POINT_GROUP = "spotify_runner.sources"

BUILTIN = (
    "tracks",
    "feed",
    "search",
    "playlist",
    "saved_tracks",
    "recently_played",
    "top_tracks",
    "spinitron",
    "lastfm",
    "listenbrainz",
)
"""The built-in sources, in the order the README lists them."""


@dataclass(frozen=True)
class Play:
    """One thing a source says was played (or listed): a track, or what names one.

    Give whatever the service knows; exact identifiers are tried before text.

    Attributes:
        artist: the artist as the service wrote it.
        title: the title as the service wrote it.
        uri: `spotify:track:ID` when the service names the Spotify track.
        isrc: the recording's ISRC.
        mbid: the MusicBrainz recording id.
        played_at: when it was played (timezone-aware), if the service says.
        id: the service's own id for this play, if any (tells two plays at one time apart).
        text: the line as shown in reports and matched by `overrides`; "Artist - Title" by default.
        track: the full track, for sources that read Spotify itself.
    """

    artist: str = ""
    title: str = ""
    uri: str | None = None
    isrc: str | None = None
    mbid: str | None = None
    played_at: datetime | None = None
    id: str | None = None
    text: str = ""
    track: Candidate | None = None

    @property
    def line(self) -> str:
        """How reports and `overrides` name the play."""
        if self.text:
            return self.text
        if self.artist and self.title:
            return f"{self.artist} - {self.title}"
        return self.uri or (self.track.uri if self.track else "") or self.isrc or ""


@dataclass
class Reading:
    """What one source gave in one run.

    Attributes:
        plays: in the source's display order (see `newest_first`).
        newest_first: the plays come newest first (a log read backwards, a "recent" list).
        cursor: JSON-able; handed back as `src.cursor` next run, once this run succeeded.
        unchanged: the service said nothing changed (HTTP 304): in `replace` mode the job keeps
            what this source gave last time; in `append` mode there is nothing new.
        skipped: lines the source read but could not understand (reported as unmatched).
    """

    plays: list[Play] = field(default_factory=list)
    newest_first: bool = False
    cursor: Any = None
    unchanged: bool = False
    skipped: list[str] = field(default_factory=list)


@dataclass
class SourceContext:
    """What a source's `read` receives.

    Attributes:
        job: the run's context (Spotify client, logger, state, base_dir, dry_run).
        mode: the job's mode: `replace` wants the source's whole current list; `append` only
            what is new.
        cursor: what this source's `read` returned as `cursor` after the last successful run.
        since: in `append` mode, the time of the newest play already taken from this source
            (None at first and in `replace` mode): pass it to the service's own "since"
            parameter so an idle poll fetches nothing.
        http: polite HTTP for services and feeds (timeouts, size cap, redirect cap,
            User-Agent, Retry-After); it counts the requests made.
    """

    job: JobContext
    mode: Literal["replace", "append"]
    cursor: Any
    since: datetime | None
    http: Http

    @property
    def spotify(self) -> spotipy.Spotify:
        """The run's Spotify client."""
        return self.job.spotify

    @property
    def base_dir(self) -> Path:
        """The config file's folder: relative paths in options are read from here."""
        return self.job.base_dir


@dataclass(frozen=True)
class SourceModule:
    """A source module that passed the checks.

    Attributes:
        name: the key of its entries in `sources`.
        origin: "built-in" or "entry point MODULE".
        read: its `read(src, options)`.
        options_model: its `Options`, or None when its entries take no options.
    """

    name: str
    origin: str
    read: Callable[[SourceContext, Any], Reading]
    options_model: type[pydantic.BaseModel] | None


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_sources() -> dict[str, str]:
    """Every source name that can be used, with where it comes from."""
    found = dict.fromkeys(BUILTIN, "built-in")
    for name in sorted(_entry_points()):
        found.setdefault(name, "entry point")
    return found


def _check(name: str, module: ModuleType, origin: str) -> SourceModule:
    read = getattr(module, "read", None)
    if not callable(read):
        raise LookupError(f"source module '{name}' ({origin}) has no read(src, options) function")
    model = getattr(module, "Options", None)
    if model is not None and not (
        isinstance(model, type) and issubclass(model, pydantic.BaseModel)
    ):
        raise LookupError(f"source module '{name}': Options must be a pydantic model class")
    return SourceModule(name, origin, read, model)


def find_source(name: str) -> SourceModule:
    """Finds, imports and checks the source called `name`.

    Raises:
        LookupError: with a one-line message when it cannot be used.
    """
    eps = _entry_points()
    if name in BUILTIN and name in eps:
        raise LookupError(
            f"source '{name}' is built in and also an entry point ({eps[name].value}): "
            "rename the entry point"
        )
    try:
        if name in BUILTIN:
            return _check(name, importlib.import_module(f"{__name__}.{name}"), "built-in")
        if name in eps:
            loaded = eps[name].load()
            if not isinstance(loaded, ModuleType):
                raise LookupError(f"entry point source '{name}' must name a module")
            return _check(name, loaded, f"entry point {eps[name].value}")
    except LookupError:
        raise
    except Exception as exc:  # the module's own import failed: a bug in the source
        raise LookupError(
            f"source module '{name}' failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    known = ", ".join(available_sources())
    raise LookupError(f"unknown source '{name}': expected one of {known}")
