"""Plain records the fake keeps: apps, users, tokens, playlists, faults and the request log."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Every scope Spotify documents; /authorize rejects anything else with error=invalid_scope.
KNOWN_SCOPES = frozenset(
    {
        "ugc-image-upload",
        "user-read-playback-state",
        "user-modify-playback-state",
        "user-read-currently-playing",
        "app-remote-control",
        "streaming",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-private",
        "playlist-modify-public",
        "user-follow-modify",
        "user-follow-read",
        "user-read-playback-position",
        "user-top-read",
        "user-read-recently-played",
        "user-library-modify",
        "user-library-read",
        "user-read-email",
        "user-read-private",
        "user-personalized",
        "user-soa-link",
        "user-soa-unlink",
        "soa-manage-entitlements",
        "soa-manage-partner",
        "soa-create-partner",
    }
)

ROTATIONS = ("none", "rotate", "rotate_revoke")
TIME_RANGES = ("short_term", "medium_term", "long_term")
BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
# Anything a playlist may hold: "tracks or episodes", as the spec says.
ITEM_URI = re.compile(r"^spotify:(track|episode):([0-9A-Za-z]{22})$")
# User ids are not base62 ("bob.smith"); other ids are checked as base62 where it matters.
ANY_URI = re.compile(r"^spotify:([a-z]+):([0-9A-Za-z._-]+)$")


@dataclass(frozen=True)
class Fault:
    """A scripted failure for matching requests.

    Attributes:
        method: HTTP method to match (any when None).
        path: regex searched (`re.search`) in the request path, e.g. `r"/items$"` (any when None).
        status: the status to answer; None answers normally (useful with `latency`).
        retry_after: seconds for the `Retry-After` header.
        body: the JSON body to send instead of Spotify's usual one.
        times: how many matching requests it affects; None means forever.
        latency: extra seconds slept before answering.
        drop: close the connection without any response.
        reason: `error.reason` in the body, e.g. "QUOTA_EXCEEDED".
        send_retry_after: whether a 429 carries `Retry-After`. None (the default): yes, unless
            `reason` is "QUOTA_EXCEEDED", which Spotify sends without one. A 429 without
            `retry_after` says 1 second; fractional values round up (never to 0).
    """

    method: str | None = None
    path: str | None = None
    status: int | None = 429
    retry_after: float | None = None
    body: Any = None
    times: int | None = 1
    latency: float = 0.0
    drop: bool = False
    reason: str | None = None
    send_retry_after: bool | None = None


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it.

    Attributes:
        method: HTTP method.
        path: the path without the query string.
        query: query parameters (the last value wins when repeated).
        body: parsed JSON, a form dict, or None.
        token: the bearer access token, or the refresh token / code sent to /api/token.
        status: the status answered (0 when the connection was dropped).
        at: the fake's clock when the request was handled.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str | None = field(repr=False)
    status: int
    at: float


@dataclass
class App:
    """A registered Spotify application."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: list[str]
    any_loopback: bool = False


@dataclass
class User:
    """A Spotify account and its library."""

    id: str
    display_name: str
    country: str
    product: str
    saved: list[tuple[str, float]] = field(default_factory=list)  # (uri, added_at), newest last
    plays: list[tuple[str, float]] = field(default_factory=list)  # (uri, played_at)
    top: dict[str, list[str]] = field(default_factory=dict)
    playlists: list[str] = field(default_factory=list)  # ids in library order, newest first
    # Saved albums, shows, episodes, audiobooks and followed artists and users: uri -> added_at,
    # in the order saved (tracks live in `saved`, followed playlists in `playlists`).
    library: dict[str, float] = field(default_factory=dict)
    top_artists: dict[str, list[str]] = field(default_factory=dict)  # artist ids by time range
    email: str = ""
    player: Player = field(default_factory=lambda: Player())


@dataclass
class Grant:
    """A refresh token and the authorization behind it."""

    token: str = field(repr=False)
    user_id: str
    client_id: str
    scopes: frozenset[str]
    authorized_at: float
    pkce: bool = False
    revoked: bool = False


@dataclass
class AccessToken:
    """An issued access token."""

    token: str = field(repr=False)
    user_id: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    user_id: str
    challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class Item:
    """One entry of a playlist."""

    uri: str
    added_at: float
    added_by: str


@dataclass
class Playlist:
    """A playlist and its history of snapshots."""

    id: str
    owner: str
    name: str
    public: bool
    collaborative: bool
    description: str
    items: list[Item] = field(default_factory=list)
    version: int = 1
    snapshots: list[str] = field(default_factory=list)
    collaborators: set[str] = field(default_factory=set)
    algorithmic: bool = False
    deleted: bool = False
    image: bytes | None = None  # the uploaded JPEG cover
    image_version: int = 0


@dataclass
class TrackRecord:
    """A catalog track."""

    id: str
    name: str
    artists: list[str]
    album: str
    isrc: str | None
    explicit: bool
    duration_ms: int
    order: int


@dataclass
class ArtistRecord:
    """A catalog artist."""

    id: str
    name: str
    genres: list[str] = field(default_factory=list)


@dataclass
class AlbumRecord:
    """A catalog album; its tracks are catalog tracks, in order."""

    id: str
    name: str
    artists: list[str]  # names
    album_type: str = "album"
    release_date: str = "2024-01-01"
    label: str = "Fake Records"
    track_ids: list[str] = field(default_factory=list)
    order: int = 0


@dataclass
class ShowRecord:
    """A podcast show."""

    id: str
    name: str
    publisher: str
    description: str
    episode_ids: list[str] = field(default_factory=list)  # newest first, as Spotify lists them


@dataclass
class EpisodeRecord:
    """A podcast episode."""

    id: str
    name: str
    show_id: str
    duration_ms: int
    release_date: str
    description: str = ""


@dataclass
class AudiobookRecord:
    """An audiobook."""

    id: str
    name: str
    authors: list[str]
    narrators: list[str]
    publisher: str
    description: str
    chapter_ids: list[str] = field(default_factory=list)


@dataclass
class ChapterRecord:
    """An audiobook chapter."""

    id: str
    name: str
    audiobook_id: str
    chapter_number: int
    duration_ms: int


@dataclass
class Device:
    """A Spotify Connect device of one user."""

    id: str
    name: str
    type: str = "Computer"
    volume_percent: int | None = 50
    supports_volume: bool = True
    is_restricted: bool = False
    is_private_session: bool = False


@dataclass
class Player:
    """One user's playback: devices, what plays where, and the queue.

    `progress_ms` is the position at `since` (the fake's clock); while playing, the position
    moves on with the clock.
    """

    devices: list[Device] = field(default_factory=list)
    active: str | None = None  # device id
    context_uri: str | None = None
    uris: list[str] = field(default_factory=list)  # what the context plays, in order
    index: int = 0
    progress_ms: int = 0
    since: float = 0.0
    is_playing: bool = False
    repeat: str = "off"
    shuffle: bool = False
    queue: list[str] = field(default_factory=list)
