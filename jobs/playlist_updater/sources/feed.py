"""`feed: {url: ..., format: auto}` or `feed: {file: plays.txt}`: a web page, feed or log of plays.

`format` is `auto` (told from the Content-Type and the first bytes), `lines` (one track a line:
a URI/URL, "Artist - Title" or a JSON object; `uris` and `artist_title` accept one kind only),
`json` (JMESPath paths in `json:`), `rss` (RSS or Atom), `xspf`, or `html` (CSS selectors in
`html:`). See `formats` for how each is read.

Cheap to poll: a URL is fetched with the ETag and Last-Modified of the last successful read,
so an unchanged feed costs one 304. In `append` mode a feed whose plays carry no time is read
as a log: only what comes after the last lines seen before is new (a growing log, a sliding
window, or a rewritten feed, which counts as new entirely).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobs.playlist_updater.sources import Play, Reading, SourceContext
from jobs.playlist_updater.sources.formats import (
    FormatError,
    check_selector,
    compile_path,
    detect,
    html_plays,
    json_plays,
    lines_plays,
    load_json,
    rss_plays,
    split_lines,
    xspf_plays,
)
from jobs.playlist_updater.sources.http import decode, shown
from runner.context import JobOptions
from runner.errors import RunnerError, TransientError

TAIL = 5
"""Lines of a feed remembered to find where the last run stopped reading it."""

ACCEPT = {
    "json": ("json",),
    "rss": ("xml", "rss", "atom"),
    "xspf": ("xml", "xspf"),
    "html": ("html", "xml"),
}


class JsonPaths(JobOptions):
    """JMESPath expressions for `format: json` (each optional; see `formats.JSON_DEFAULTS`).

    Attributes:
        items: the list of plays (a single object counts as one play).
        artist: inside an item, the artist; `title`: the title.
        line: inside an item, "Artist - Title" in one field (instead of artist and title).
        uri: a Spotify URI/URL; `isrc`, `mbid`: exact identifiers; `played_at`: ISO or Unix time.
        id: the service's id of a play.
    """

    items: str | None = None
    artist: str | None = None
    title: str | None = None
    line: str | None = None
    uri: str | None = None
    isrc: str | None = None
    mbid: str | None = None
    played_at: str | None = None
    id: str | None = None

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_path(value)
            except ValueError as exc:
                raise PydanticCustomError("jmespath", "{why}", {"why": str(exc)}) from None
        return value


class HtmlSelectors(JobOptions):
    """CSS selectors for `format: html`; `selector@attribute` takes an attribute's value.

    Attributes:
        row: each play's element (a table row, a list item).
        artist: inside a row; `title`, `line` ("Artist - Title"), `uri` (e.g. `a@href`),
            `isrc`, `played_at` (e.g. `time@datetime`) likewise.
    """

    row: str
    artist: str | None = None
    title: str | None = None
    line: str | None = None
    uri: str | None = None
    isrc: str | None = None
    played_at: str | None = None

    @field_validator("*")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_selector(value)
            except ValueError as exc:
                raise PydanticCustomError("css", "{why}", {"why": str(exc)}) from None
        return value

    @model_validator(mode="after")
    def _names_a_track(self) -> HtmlSelectors:
        if not (self.line or self.uri or self.isrc or (self.artist and self.title)):
            raise PydanticCustomError(
                "html", "give artist and title, or line, uri or isrc: what names the track"
            )
        return self


class Options(JobOptions):
    """A file or URL of plays.

    Attributes:
        file: a path, relative to the config file's folder.
        url: an http(s) URL, fetched each run (conditionally).
        order: `oldest_first` (a log, newest last) or `newest_first`, for plays without times.
        format: how to read it (see the module docstring).
        json: paths for `format: json`.
        html: selectors for `format: html`.
        max_mib: the largest body read, decoded (MiB).
    """

    file: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    order: Literal["oldest_first", "newest_first"] = "oldest_first"
    format: Literal["auto", "lines", "uris", "artist_title", "json", "rss", "xspf", "html"] = "auto"
    json_paths: JsonPaths | None = Field(default=None, alias="json")
    html: HtmlSelectors | None = None
    max_mib: int = Field(default=10, ge=1, le=200)

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> Options:
        if (self.file is None) == (self.url is None):
            raise PydanticCustomError("feed", "a feed has either a file or a url")
        if self.format == "html" and self.html is None:
            raise PydanticCustomError(
                "feed", "format: html needs html: {row: ..., artist: ..., title: ...}"
            )
        if self.html is not None and self.format not in ("auto", "html"):
            raise PydanticCustomError("feed", "html: selectors go with format: html")
        if self.json_paths is not None and self.format not in ("auto", "json"):
            raise PydanticCustomError("feed", "json: paths go with format: json")
        return self

    @property
    def where(self) -> str:
        """How messages name the feed."""
        return f"feed {self.file}" if self.file is not None else f"feed {shown(self.url or '')}"


def _read_file(src: SourceContext, options: Options) -> bytes:
    assert options.file is not None
    path = Path(options.file).expanduser()
    if not path.is_absolute():
        path = src.base_dir / path
    cap = options.max_mib * 1024 * 1024
    try:
        with path.open("rb") as handle:
            body = handle.read(cap + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunnerError(
            f"feed file {path} cannot be read ({reason}); the playlist was left as it was"
        ) from None
    if len(body) > cap:
        raise RunnerError(f"feed file {path} is over the {options.max_mib} MiB cap; not read")
    return body


def read(src: SourceContext, options: Options) -> Reading:
    """Reads the feed in its format; a URL conditionally, with the validators of last time."""
    cursor: dict[str, Any] = dict(src.cursor) if isinstance(src.cursor, dict) else {}
    content_type = ""
    charset: str | None = None
    if options.url is not None:
        response = src.http.get(
            options.url,
            what=options.where,
            etag=cursor.get("etag") if isinstance(cursor.get("etag"), str) else None,
            last_modified=cursor.get("last_modified")
            if isinstance(cursor.get("last_modified"), str)
            else None,
            accept=ACCEPT.get(options.format, ()),
            max_bytes=options.max_mib * 1024 * 1024,
        )
        if response.not_modified:
            return Reading(cursor=cursor, unchanged=True)
        cursor = {key: value for key, value in cursor.items() if key == "tail"}
        cursor.update(response.validators)
        body, content_type, charset = response.body, response.content_type, response.charset
    else:
        body = _read_file(src, options)
    fmt: str = options.format
    if fmt == "auto":
        fmt = (
            "json" if options.json_paths else "html" if options.html else detect(content_type, body)
        )
    if fmt == "html" and options.html is None:
        raise RunnerError(
            f"{options.where} is an HTML page: set format: html with html: "
            "{row: ..., artist: ..., title: ...} to read it"
        )
    plays, unmatched = _parse(options, fmt, body, charset)
    # A feed is a log, oldest first: by the plays' times when every play has one, else as
    # `order` says.
    if plays and all(play.played_at is not None for play in plays):
        plays.sort(key=lambda play: play.played_at or 0)
    else:
        # Some without a time: the feed's own order, and no time at all, so that the last lines
        # seen (not the times) tell what is new.
        plays = [replace(play, played_at=None) for play in plays]
        if options.order == "newest_first":
            plays.reverse()
    if src.mode == "append" and not any(play.played_at for play in plays):
        plays, cursor = _new_since_tail(plays, cursor)
    return Reading(plays, cursor=cursor, skipped=unmatched)


def _parse(
    options: Options, fmt: str, body: bytes, charset: str | None
) -> tuple[list[Play], list[str]]:
    try:
        if fmt in ("lines", "uris", "artist_title"):
            lines, skipped = split_lines(decode(body, charset))
            plays, unmatched = lines_plays(lines, fmt)
            return plays, skipped + unmatched
        if fmt == "json":
            text = decode(body, charset)
            try:
                doc = load_json(text)
            except FormatError:
                if options.json_paths is None and text.lstrip().startswith("{"):
                    # JSON Lines: one object a line, as `format: json` read them before.
                    lines, skipped = split_lines(text)
                    plays, unmatched = lines_plays(lines, "json")
                    return plays, skipped + unmatched
                raise
            paths = options.json_paths.model_dump() if options.json_paths else {}
            return json_plays(doc, {k: v for k, v in paths.items() if v is not None})
        if fmt == "rss":
            return rss_plays(body)
        if fmt == "xspf":
            return xspf_plays(body)
        assert options.html is not None
        return html_plays(decode(body, charset), options.html.model_dump())
    except FormatError as exc:
        raise TransientError(f"{options.where}: {exc}; retrying later") from None


def new_lines(lines: list[str], tail: list[str]) -> list[str]:
    """The lines after the latest place where `tail` (the last lines read before) ends.

    A growing log gives its new lines; a feed showing a sliding window gives the ones past the
    last seen; a rotated or rewritten feed, where the tail is gone, gives every line.
    """
    size = len(tail)
    if size == 0:
        return lines
    for end in range(len(lines), size - 1, -1):
        if lines[end - size : end] == tail:
            return lines[end:]
    return lines


def _new_since_tail(log: list[Play], cursor: dict[str, Any]) -> tuple[list[Play], dict[str, Any]]:
    """The plays after those seen last time, for a feed whose plays carry no time."""
    keys = [play.line for play in log]
    old = cursor.get("tail")
    tail = [str(key) for key in old] if isinstance(old, list) else []
    fresh_keys = new_lines(keys, tail)
    fresh = log[len(log) - len(fresh_keys) :] if fresh_keys else []
    cursor = {**cursor, "tail": keys[-TAIL:] if keys else tail}
    return fresh, cursor
