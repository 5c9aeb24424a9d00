"""The formats a `feed` reads, each turned into plays by a library made for it.

- `lines`: one track a line: a Spotify URI/URL, "Artist - Title", or a JSON object.
- `json`: a JSON document; JMESPath expressions (jmespath) pick the items and their fields.
- `rss`: RSS or Atom, read by feedparser; an entry's title is "Artist - Title" (or its author is
  the artist), its date the play's time, a Spotify link in it the track.
- `xspf`: an XSPF playlist (`trackList/track` with `creator`, `title`, `location`,
  `identifier`), read with the standard library's XML parser (expat, which refuses entity
  expansion bombs).
- `html`: a web page, parsed by a real HTML5 parser (selectolax, the Lexbor engine); CSS
  selectors pick the rows and their fields (`selector@attribute` takes an attribute).

`detect` picks one from the Content-Type and the body's first bytes for `format: auto`.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from calendar import timegm
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import feedparser  # type: ignore[import-untyped]
import jmespath
from jmespath.exceptions import IncompleteExpressionError, JMESPathError, ParseError
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from jobs.playlist_updater.matching import parse_line
from jobs.playlist_updater.sources import Play

MAX_LINE = 300
"""Characters in a line beyond which it names no track (it is skipped and reported)."""

_ISRC = re.compile(r"^(?:isrc:)?([A-Z]{2}[A-Z0-9]{3}[0-9]{7})$", re.IGNORECASE)
_MBID = re.compile(
    r"(?:^|musicbrainz\.org/recording/|^mbid:)"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
    re.IGNORECASE,
)
_SPOTIFY = re.compile(
    r"(?:spotify:track:|open\.spotify\.com/(?:intl-[A-Za-z-]+/)?track/)([0-9A-Za-z]{22})"
)
_BARE_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_XSPF_NS = "{http://xspf.org/ns/0/}"


class FormatError(ValueError):
    """The body is not what its format says (malformed JSON, XML, a feed that is not one)."""


# -- identifiers, times, text -------------------------------------------------------------------


def spotify_uri(value: Any, *, bare: bool = False) -> str | None:
    """`spotify:track:ID` from a URI, an open.spotify.com URL (or a bare id, with `bare`)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    found = _SPOTIFY.search(text)
    if found is not None:
        return f"spotify:track:{found.group(1)}"
    if bare and _BARE_ID.match(text):
        return f"spotify:track:{text}"
    return None


def isrc(value: Any) -> str | None:
    """A normalised ISRC (`USRC17607839`), dashes and spaces ignored; None when it is not one."""
    if not isinstance(value, str):
        return None
    found = _ISRC.match(value.replace("-", "").replace(" ", "").strip())
    return found.group(1).upper() if found else None


def mbid(value: Any) -> str | None:
    """A MusicBrainz recording id from a bare UUID or a musicbrainz.org recording URL."""
    if not isinstance(value, str):
        return None
    found = _MBID.search(value.strip())
    return found.group(1).lower() if found else None


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware time from ISO 8601 text or Unix seconds (or milliseconds)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def clean(text: str) -> str:
    """Text with control characters (and other unprintables) turned into spaces, trimmed."""
    if text.isprintable():
        return text.strip()
    kept = (" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join("".join(kept).split())


def _looks_binary(line: str) -> bool:
    if "\x00" in line:
        return True
    if line.isprintable():
        return False
    odd = sum(1 for ch in line if ch == "\ufffd" or (unicodedata.category(ch) == "Cc"))
    return odd > max(2, len(line) // 10)


def play_from_text(
    text: str,
    *,
    artist: str = "",
    title: str = "",
    uri: Any = None,
    isrc_value: Any = None,
    mbid_value: Any = None,
    played_at: Any = None,
    play_id: Any = None,
) -> Play | None:
    """A play from what a format found; None when it names no track at all."""
    artist, title, line = clean(artist), clean(title), clean(text)
    if not (artist and title) and line:
        found = parse_line(line)
        if found is not None:
            artist, title = found
    track = spotify_uri(uri, bare=True) or spotify_uri(line)
    code = isrc(isrc_value)
    recording = mbid(mbid_value)
    if not (artist and title) and track is None and code is None:
        return None
    return Play(
        artist=artist if title else "",
        title=title if artist else "",
        uri=track,
        isrc=code,
        mbid=recording,
        played_at=parse_time(played_at),
        id=str(play_id)
        if isinstance(play_id, str | int) and not isinstance(play_id, bool)
        else None,
        text=line if line and (track is None or parse_line(line)) else "",
    )


# -- lines --------------------------------------------------------------------------------------


def parse_feed_line(line: str, fmt: str = "auto") -> str | tuple[str, str] | None:
    """What a feed line names: a track URI, an (artist, title) pair, or None when neither.

    Args:
        line: one stripped line.
        fmt: `auto` (or `lines`), or `uris`, `artist_title`, `json` to accept that kind only.
    """
    if fmt in ("auto", "lines", "json") and line.startswith("{"):
        return _json_line(line)
    if fmt in ("auto", "lines", "uris"):
        found = spotify_uri(line, bare=True)
        if found is not None and (line.startswith(("spotify:", "http")) or _BARE_ID.match(line)):
            return found
        if fmt == "uris":
            return None
    if fmt in ("auto", "lines", "artist_title"):
        return parse_line(line)
    return None


def _json_line(line: str) -> str | tuple[str, str] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    for key in ("uri", "url", "spotify_uri", "track_uri"):
        found = spotify_uri(obj.get(key), bare=True)
        if found is not None:
            return found
    artist = obj.get("artist", obj.get("artists"))
    if isinstance(artist, list):
        artist = ", ".join(str(a) for a in artist)
    title = obj.get("title", obj.get("track", obj.get("song", obj.get("name"))))
    if isinstance(artist, str) and isinstance(title, str) and artist.strip() and title.strip():
        return artist.strip(), title.strip()
    return None


def split_lines(text: str) -> tuple[list[str], list[str]]:
    """A text's meaningful lines (no blanks, no `#` comments) and the reports of skipped ones.

    Control characters become spaces; a binary line and a line over `MAX_LINE` characters are
    skipped, and reported by a short description rather than their content.
    """
    kept: list[str] = []
    skipped: list[str] = []
    for raw in text.splitlines():
        if _looks_binary(raw):
            skipped.append(f"(a binary line of {len(raw)} characters, skipped)")
            continue
        line = clean(raw)
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE:
            skipped.append(
                f"(a line of {len(line)} characters, over {MAX_LINE}, skipped: {line[:40]}...)"
            )
            continue
        kept.append(line)
    return kept, skipped


def lines_plays(lines: Iterable[str], fmt: str) -> tuple[list[Play], list[str]]:
    """Plays from feed lines; the lines that name nothing are returned as unmatched."""
    plays: list[Play] = []
    unmatched: list[str] = []
    for line in lines:
        parsed = parse_feed_line(line, fmt)
        if parsed is None:
            unmatched.append(line)
        elif isinstance(parsed, str):
            plays.append(
                Play(uri=parsed, text=line if not line.startswith(("spotify:", "http")) else "")
            )
        else:
            plays.append(Play(artist=parsed[0], title=parsed[1], text=line))
    return plays, unmatched


# -- json ---------------------------------------------------------------------------------------

JSON_DEFAULTS = {
    "items": None,
    "artist": "artist.name || artist || artist_name || artistName || artists[0].name || artists[0]",
    "title": "title || song || track_name || trackName || track || name",
    "line": None,
    "uri": "uri || spotify_uri || spotify_url || spotify_id || url",
    "isrc": "isrc",
    "mbid": "recording_mbid || mbid",
    "played_at": "played_at || start || started_at || timestamp || time || date",
    "id": "id",
}
"""What `format: json` looks for when `json:` does not say (JMESPath, first truthy wins)."""


def compile_path(expression: str) -> Any:
    """A compiled JMESPath expression.

    Raises:
        ValueError: with the parser's one-line reason.
    """
    try:
        return jmespath.compile(expression)
    except IncompleteExpressionError:
        raise ValueError(f"not a valid JMESPath expression: {expression!r} ends too soon") from None
    except ParseError as exc:
        where = f" at character {exc.lex_position + 1}" if exc.lex_position is not None else ""
        token = f" ({exc.token_value!r})" if exc.token_value else ""
        raise ValueError(f"not a valid JMESPath expression: {expression!r}{where}{token}") from None
    except JMESPathError:
        raise ValueError(f"not a valid JMESPath expression: {expression!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if isinstance(v, str | int))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _default_items(doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return value
        return [doc]
    return []


def json_plays(doc: Any, paths: dict[str, str | None]) -> tuple[list[Play], list[str]]:
    """Plays from a JSON document: `paths["items"]` picks the items, the others their fields."""
    items_path = paths.get("items")
    if items_path:
        found = compile_path(items_path).search(doc)
        items = found if isinstance(found, list) else ([found] if isinstance(found, dict) else [])
    else:
        items = _default_items(doc)
    compiled = {
        key: compile_path(expr)
        for key in ("artist", "title", "line", "uri", "isrc", "mbid", "played_at", "id")
        if (expr := paths.get(key, JSON_DEFAULTS[key])) is not None
    }
    plays: list[Play] = []
    unmatched: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        got = {key: expr.search(item) for key, expr in compiled.items()}
        play = play_from_text(
            _text(got.get("line")),
            artist=_text(got.get("artist")),
            title=_text(got.get("title")),
            uri=got.get("uri"),
            isrc_value=got.get("isrc"),
            mbid_value=got.get("mbid"),
            played_at=got.get("played_at"),
            play_id=got.get("id"),
        )
        if play is not None:
            plays.append(play)
        else:
            shown = clean(_text(got.get("line")) or _text(got.get("title")))
            if shown:
                unmatched.append(shown[:MAX_LINE])
    return plays, unmatched


def load_json(text: str) -> Any:
    """The parsed document.

    Raises:
        FormatError: it is not JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None


# -- rss / atom ---------------------------------------------------------------------------------


def rss_plays(body: bytes, content_type: str = "") -> tuple[list[Play], list[str]]:
    """Plays from an RSS or Atom feed, in the feed's order.

    Raises:
        FormatError: the body is not a feed feedparser can read.
    """
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers={"content-type": content_type or "application/xml"}
    )
    if not parsed.get("version") and not parsed.entries:
        raise FormatError("not an RSS or Atom feed")
    plays: list[Play] = []
    unmatched: list[str] = []
    for entry in parsed.entries:
        title = str(entry.get("title") or "")
        author = str(entry.get("author") or "")
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        when = timegm(stamp) if stamp else None
        links = [str(entry.get("link") or "")] + [
            str(link.get("href") or "") for link in entry.get("links", [])
        ]
        uri = next((u for u in map(spotify_uri, links) if u), None)
        artist_title = parse_line(clean(title))
        play = play_from_text(
            title,
            artist=author if author and artist_title is None else "",
            title=title if author and artist_title is None else "",
            uri=uri,
            played_at=when,
            play_id=entry.get("id"),
        )
        if play is not None:
            plays.append(play)
        elif clean(title):
            unmatched.append(clean(title)[:MAX_LINE])
    return plays, unmatched


# -- xspf ---------------------------------------------------------------------------------------


def xspf_plays(body: bytes) -> tuple[list[Play], list[str]]:
    """Plays from an XSPF playlist, in its order.

    Raises:
        FormatError: the body is not XML, or not an XSPF playlist.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FormatError(f"not valid XML ({exc})") from None
    if root.tag not in (f"{_XSPF_NS}playlist", "playlist"):
        raise FormatError("not an XSPF playlist (its root is not <playlist>)")
    ns = _XSPF_NS if root.tag.startswith("{") else ""
    plays: list[Play] = []
    unmatched: list[str] = []
    for track in root.iter(f"{ns}track"):

        def field(name: str, node: ET.Element = track) -> list[str]:
            return [(child.text or "").strip() for child in node.findall(f"{ns}{name}")]

        refs = field("location") + field("identifier")
        artist = next(iter(field("creator")), "")
        title = next(iter(field("title")), "")
        play = play_from_text(
            "",
            artist=artist,
            title=title,
            uri=next((r for r in refs if spotify_uri(r)), None),
            isrc_value=next((r for r in refs if isrc(r)), None),
            mbid_value=next((r for r in refs if mbid(r)), None),
        )
        if play is not None:
            plays.append(play)
        elif title or artist:
            unmatched.append(clean(f"{artist} - {title}")[:MAX_LINE])
    return plays, unmatched


# -- html ---------------------------------------------------------------------------------------


def check_selector(selector: str) -> str:
    """The selector, checked by the HTML parser itself.

    Raises:
        ValueError: it is not a CSS selector the parser accepts.
    """
    css = selector.rsplit("@", 1)[0] if "@" in selector else selector
    if not css.strip():
        raise ValueError("empty CSS selector")
    try:
        LexborHTMLParser("<p></p>").css(css)
    except SelectolaxError:
        raise ValueError(f"not a valid CSS selector: {css!r}") from None
    return selector


def _pick(row: LexborNode, selector: str | None) -> str:
    if not selector:
        return ""
    css, _, attribute = selector.rpartition("@") if "@" in selector else (selector, "", "")
    node = row.css_first(css)
    if node is None:
        return ""
    if attribute:
        return str(node.attributes.get(attribute) or "")
    return node.text(separator=" ", strip=True)


def html_plays(text: str, selectors: dict[str, str | None]) -> tuple[list[Play], list[str]]:
    """Plays from a web page: a row per play, fields by CSS selectors inside the row."""
    tree = LexborHTMLParser(text)
    row_selector = selectors.get("row") or "tr"
    plays: list[Play] = []
    unmatched: list[str] = []
    for row in tree.css(row_selector):
        got = {key: _pick(row, selectors.get(key)) for key in selectors if key != "row"}
        if not any(got.values()):
            continue  # a header row or a spacer
        play = play_from_text(
            got.get("line", ""),
            artist=got.get("artist", ""),
            title=got.get("title", ""),
            uri=got.get("uri"),
            isrc_value=got.get("isrc"),
            played_at=got.get("played_at") or None,
        )
        if play is not None:
            plays.append(play)
        else:
            shown = clean(" - ".join(v for v in (got.get("artist"), got.get("title")) if v))
            if shown:
                unmatched.append(shown[:MAX_LINE])
    return plays, unmatched


# -- detection ----------------------------------------------------------------------------------


def detect(content_type: str, body: bytes) -> str:
    """The format a body is in, from its Content-Type, else from its first bytes."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if "json" in content_type:
        return "json"
    if "xspf" in content_type or b"xspf.org/ns" in head:
        return "xspf"
    if any(kind in content_type for kind in ("rss", "atom")):
        return "rss"
    if "html" in content_type or head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if "xml" in content_type or head.startswith((b"<?xml", b"<rss", b"<feed", b"<rdf")):
        return "rss"
    if head.startswith((b"{", b"[")):
        try:
            json.loads(body.decode("utf-8-sig", errors="replace"))
        except ValueError:
            return "lines"  # JSON Lines: one object a line
        return "json"
    return "lines"
