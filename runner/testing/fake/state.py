"""Everything the fake Spotify knows, behind one lock, and the helpers tests use to set it up."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from runner.testing.fake import catalog, objects
from runner.testing.fake.catalog_setup import CatalogSetup
from runner.testing.fake.model import (
    BASE62_ID,
    ITEM_URI,
    KNOWN_SCOPES,
    ROTATIONS,
    TIME_RANGES,
    TRACK_URI,
    AccessToken,
    AlbumRecord,
    App,
    ArtistRecord,
    AudiobookRecord,
    AuthCode,
    ChapterRecord,
    EpisodeRecord,
    Fault,
    Grant,
    Item,
    Playlist,
    Recorded,
    ShowRecord,
    TrackRecord,
    User,
)
from runner.testing.fake.user_setup import UserSetup

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


class FakeState(CatalogSetup, UserSetup):
    """The fake's data and its test-facing helpers; `FakeSpotify` adds the HTTP server.

    Args:
        access_token_lifetime: seconds an access token lives (`expires_in`).
        rotation: "none", "rotate" or "rotate_revoke": what a refresh does to the refresh token.
        clock: unix seconds; every time-based behaviour reads it.
        latency: seconds slept before every answer.

    Attributes tests may read (and, with care, change) directly:
        grants: refresh token -> `Grant` (`revoked`, `authorized_at`, `scopes`, `user_id`).
        access_tokens: access token -> `AccessToken` (`expires_at`, `scopes`, `user_id`).
        refresh_token_lifetime: seconds from the original authorization to a refresh token's
            death (182 days).
        authorize_as: the user `/authorize` approves as.
        deny_next_authorize: when true, the next `/authorize` answers `error=access_denied`.
        consent_page: when true, `GET /authorize` shows a page with an Approve button (for
            browser tests) instead of approving at once.
    """

    CLIENT_ID = "fake-client-id"
    CLIENT_SECRET = "fake-client-secret"
    DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"

    def __init__(
        self,
        access_token_lifetime: float = 3600.0,
        rotation: str = "none",
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
    ) -> None:
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {', '.join(ROTATIONS)}")
        self.access_token_lifetime = access_token_lifetime
        self.rotation = rotation
        self.clock = clock
        self.latency = latency
        self.refresh_token_lifetime = 182 * 86400.0
        self.code_lifetime = 600.0
        self.authorize_as = "alice"
        self.deny_next_authorize = False
        self.consent_page = False
        self.base_url = ""
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tracks: dict[str, TrackRecord] = {}  # by id
        self.artists: dict[str, ArtistRecord] = {}
        self.albums: dict[str, AlbumRecord] = {}
        self.shows: dict[str, ShowRecord] = {}
        self.episodes: dict[str, EpisodeRecord] = {}
        self.audiobooks: dict[str, AudiobookRecord] = {}
        self.chapters: dict[str, ChapterRecord] = {}
        self.playlists: dict[str, Playlist] = {}
        self.faults: list[list[Any]] = []  # [fault, remaining]
        self._log: list[Recorded] = []
        self._serial = 0
        self.register_app(self.CLIENT_ID, self.CLIENT_SECRET, [self.DEFAULT_REDIRECT_URI])
        self.apps[self.CLIENT_ID].any_loopback = True
        self.add_user()

    # -- urls -----------------------------------------------------------------

    @property
    def accounts_url(self) -> str:
        """Where `/authorize` and `/api/token` are served (as accounts.spotify.com)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The Web API base (as https://api.spotify.com/v1)."""
        return self.base_url + "/v1"

    # -- internals -------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock."""
        return float(self.clock())

    def next_serial(self) -> int:
        """A number never handed out before by this fake."""
        with self.lock:
            self._serial += 1
            return self._serial

    def new_secret(self, prefix: str) -> str:
        """An unguessable token string."""
        return prefix + secrets.token_urlsafe(48)

    def _require_user(self, user_id: str) -> User:
        if user_id not in self.users:
            raise KeyError(f"no such user: {user_id}")
        return self.users[user_id]

    def _require_playlist(self, playlist_id: str) -> Playlist:
        playlist = self.playlists.get(playlist_id)
        if playlist is None or playlist.deleted:
            raise KeyError(f"no such playlist: {playlist_id}")
        return playlist

    def track_record(self, uri: str) -> TrackRecord:
        """The catalog record for a track URI; KeyError when unknown."""
        match = TRACK_URI.match(uri)
        if match is None or match.group(1) not in self.tracks:
            raise KeyError(f"no such track: {uri}")
        return self.tracks[match.group(1)]

    def bump(self, playlist: Playlist) -> str:
        """Record a mutation: a new snapshot id."""
        playlist.version += 1
        snapshot = self._snapshot_for(playlist)
        playlist.snapshots.append(snapshot)
        return snapshot

    def _snapshot_for(self, playlist: Playlist) -> str:
        # Opaque like Spotify's; playlist ids are never reused, so (id, version) is unique.
        return "AA" + catalog.base62_id("snapshot", playlist.id, playlist.version)

    def issue_access_token(
        self,
        user_id: str = "alice",
        scopes: Iterable[str] = (),
        client_id: str | None = None,
        lifetime: float | None = None,
    ) -> str:
        """Mint an access token directly, skipping OAuth (for tests of the API side).

        Args:
            user_id: whose token it is.
            scopes: the scopes it carries.
            client_id: the app it was issued to (the default app when None).
            lifetime: seconds until it expires (`access_token_lifetime` when None).

        Returns:
            The access token.
        """
        with self.lock:
            self._require_user(user_id)
            token = self.new_secret("BQ")
            life = self.access_token_lifetime if lifetime is None else lifetime
            self.access_tokens[token] = AccessToken(
                token=token,
                user_id=user_id,
                client_id=client_id or self.CLIENT_ID,
                scopes=frozenset(scopes),
                expires_at=self.now() + life,
            )
            return token

    # -- apps, users and authorization ------------------------------------------

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        """Register an application with its exact redirect URIs."""
        with self.lock:
            self.apps[client_id] = App(client_id, client_secret, list(redirect_uris))

    def add_user(
        self,
        user_id: str = "alice",
        display_name: str = "Alice",
        country: str = "DE",
        product: str = "premium",
    ) -> dict[str, Any]:
        """Create (or replace the profile of) a user.

        Returns:
            The user's `/me` object.
        """
        with self.lock:
            existing = self.users.get(user_id)
            user = User(user_id, display_name, country, product)
            if existing is not None:
                user.saved, user.plays = existing.saved, existing.plays
                user.top, user.playlists = existing.top, existing.playlists
                user.library, user.top_artists = existing.library, existing.top_artists
                user.email, user.player = existing.email, existing.player
            self.users[user_id] = user
            return self.user_object(user)

    def user_object(self, user: User) -> dict[str, Any]:
        """The private user object `/me` answers."""
        return {
            "country": user.country,
            "display_name": user.display_name,
            "email": user.email or f"{user.id}@example.com",
            "explicit_content": {"filter_enabled": False, "filter_locked": False},
            "external_urls": {"spotify": f"https://open.spotify.com/user/{user.id}"},
            "followers": {"href": None, "total": 0},
            "href": f"{self.api_url}/users/{user.id}",
            "id": user.id,
            "images": [],
            "product": user.product,
            "type": "user",
            "uri": f"spotify:user:{user.id}",
        }

    def grant(
        self,
        user_id: str = "alice",
        scopes: Iterable[str] = ("playlist-modify-private",),
        client_id: str | None = None,
        authorized_at: float | None = None,
        pkce: bool = False,
    ) -> str:
        """Record an authorization as if the user had approved it, and return its refresh token.

        Args:
            user_id: who authorized.
            scopes: the scopes granted.
            client_id: the app (the default app when None).
            authorized_at: when the user authorized (now when None); the token dies
                `refresh_token_lifetime` seconds after this.
            pkce: whether it was a PKCE authorization (refresh then needs only `client_id`).

        Returns:
            The refresh token.
        """
        with self.lock:
            self._require_user(user_id)
            app_id = client_id or self.CLIENT_ID
            if app_id not in self.apps:
                raise KeyError(f"no such app: {app_id}")
            unknown = set(scopes) - KNOWN_SCOPES
            if unknown:
                raise ValueError(f"unknown scopes: {' '.join(sorted(unknown))}")
            token = self.new_secret("AQ")
            self.grants[token] = Grant(
                token=token,
                user_id=user_id,
                client_id=app_id,
                scopes=frozenset(scopes),
                authorized_at=self.now() if authorized_at is None else authorized_at,
                pkce=pkce,
            )
            return token

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token (as when the user removes the app's access)."""
        with self.lock:
            self.grants[refresh_token].revoked = True

    def revoke_user(self, user_id: str, client_id: str | None = None) -> int:
        """The user removes the app's access: every refresh token of theirs for the app is
        revoked and their access tokens stop working at once. Other users are untouched.

        Returns:
            How many refresh tokens were revoked.
        """
        app_id = client_id or self.CLIENT_ID
        with self.lock:
            self._require_user(user_id)
            revoked = 0
            for grant in self.grants.values():
                if grant.user_id == user_id and grant.client_id == app_id and not grant.revoked:
                    grant.revoked = True
                    revoked += 1
            for token, access in list(self.access_tokens.items()):
                if access.user_id == user_id and access.client_id == app_id:
                    del self.access_tokens[token]
            return revoked

    # -- catalog -------------------------------------------------------------------

    def add_track(
        self,
        name: str,
        artists: Iterable[str] = ("Artist",),
        album: str = "Album",
        isrc: str | None = None,
        explicit: bool = False,
        duration_ms: int = 200000,
        track_id: str | None = None,
    ) -> str:
        """Add a track to the catalog.

        Returns:
            Its URI, `spotify:track:<22-char base62 id>`.
        """
        artists_list = list(artists)
        with self.lock:
            serial = self.next_serial()
            tid = track_id or catalog.base62_id("added-track", serial, name)
            if not BASE62_ID.match(tid):
                raise ValueError("track_id must be 22 base62 characters")
            self.tracks[tid] = TrackRecord(
                id=tid,
                name=name,
                artists=artists_list,
                album=album,
                isrc=isrc,
                explicit=explicit,
                duration_ms=duration_ms,
                order=serial,
            )
            for artist in artists_list:
                self.register_artist(artist)
            album_record = self.register_album(album, artists_list)
            if tid not in album_record.track_ids:
                album_record.track_ids.append(tid)
            return f"spotify:track:{tid}"

    def make_tracks(self, n: int, seed: int = 0) -> list[str]:
        """Add `n` deterministic, distinct tracks (names, artists, ISRCs); same seed, same tracks.

        Returns:
            Their URIs in order.
        """
        uris = []
        with self.lock:
            for index in range(n):
                spec = catalog.generated_track(seed, index)
                if spec["track_id"] in self.tracks:
                    uris.append(f"spotify:track:{spec['track_id']}")
                else:
                    uris.append(self.add_track(**spec))
        return uris

    def track(self, uri: str) -> dict[str, Any]:
        """The full track object for a URI."""
        with self.lock:
            return objects.track(self, self.track_record(uri))

    def _check_uris(self, uris: Iterable[str], episodes: bool = False) -> list[str]:
        checked = list(uris)
        for uri in checked:
            found = ITEM_URI.match(uri)
            if episodes and found is not None and found.group(1) == "episode":
                if found.group(2) not in self.episodes:
                    raise KeyError(f"no such episode: {uri}")
                continue
            self.track_record(uri)
        return checked

    # -- playlists -----------------------------------------------------------------

    def add_playlist(
        self,
        owner: str = "alice",
        name: str = "P",
        uris: Iterable[str] = (),
        public: bool = False,
        collaborative: bool = False,
        description: str = "",
    ) -> str:
        """Create a playlist owned by `owner`, holding `uris` (catalog tracks or episodes).

        Returns:
            The playlist id.
        """
        with self.lock:
            user = self._require_user(owner)
            items = self._check_uris(uris, episodes=True)
            playlist = self.new_playlist(owner, name, public, collaborative, description)
            at = self.now()
            playlist.items = [Item(uri, at, owner) for uri in items]
            user.playlists.insert(0, playlist.id)
            return playlist.id

    def new_playlist(
        self, owner: str, name: str, public: bool, collaborative: bool, description: str
    ) -> Playlist:
        """Create and store an empty playlist (callers hold the lock)."""
        serial = self.next_serial()
        playlist = Playlist(
            id=catalog.base62_id("playlist", serial, owner, name),
            owner=owner,
            name=name,
            public=public,
            collaborative=collaborative,
            description=description,
        )
        playlist.snapshots.append(self._snapshot_for(playlist))
        self.playlists[playlist.id] = playlist
        return playlist

    def add_collaborator(self, playlist_id: str, user_id: str) -> None:
        """Let `user_id` edit (and list) the playlist, as a collaborator."""
        with self.lock:
            playlist = self._require_playlist(playlist_id)
            user = self._require_user(user_id)
            playlist.collaborators.add(user_id)
            if playlist_id not in user.playlists:
                user.playlists.insert(0, playlist_id)

    def playlist_uris(self, playlist_id: str) -> list[str]:
        """The playlist's current items, in order."""
        with self.lock:
            return [item.uri for item in self._require_playlist(playlist_id).items]

    def playlist_snapshot(self, playlist_id: str) -> str:
        """The playlist's current snapshot id."""
        with self.lock:
            return self._require_playlist(playlist_id).snapshots[-1]

    def playlist_details(self, playlist_id: str) -> dict[str, Any]:
        """Name, owner, public, collaborative and description of a playlist."""
        with self.lock:
            p = self._require_playlist(playlist_id)
            return {
                "id": p.id,
                "owner": p.owner,
                "name": p.name,
                "public": p.public,
                "collaborative": p.collaborative,
                "description": p.description,
            }

    def user_playlist_ids(self, user_id: str = "alice") -> list[str]:
        """The ids `/me/playlists` lists for the user, in its order."""
        with self.lock:
            return [pid for pid in self._require_user(user_id).playlists if self.playlist_live(pid)]

    def playlist_live(self, playlist_id: str) -> bool:
        """Whether apps can see the playlist at all."""
        playlist = self.playlists.get(playlist_id)
        return playlist is not None and not playlist.deleted and not playlist.algorithmic

    def delete_playlist(self, playlist_id: str) -> None:
        """Make the playlist vanish (404 afterwards), as when its owner deletes it."""
        with self.lock:
            self._require_playlist(playlist_id).deleted = True
            for user in self.users.values():
                if playlist_id in user.playlists:
                    user.playlists.remove(playlist_id)

    def add_algorithmic_playlist(self, name: str = "Discover Weekly") -> str:
        """A Spotify-owned playlist id that answers 404 to apps, as algorithmic ones now do."""
        with self.lock:
            if "spotify" not in self.users:
                self.add_user("spotify", "Spotify", "SE", "premium")
            playlist = self.new_playlist("spotify", name, True, False, "")
            playlist.algorithmic = True
            return playlist.id

    # -- library and history --------------------------------------------------------

    def save_tracks(self, user_id: str, uris: Iterable[str], added_at: float | None = None) -> None:
        """Save tracks to the user's Liked Songs; the last one saved is listed first."""
        with self.lock:
            user = self._require_user(user_id)
            at = self.now() if added_at is None else added_at
            for uri in self._check_uris(uris):
                user.saved = [s for s in user.saved if s[0] != uri]
                user.saved.append((uri, at))
            user.saved.sort(key=lambda s: s[1])

    def add_play(self, user_id: str, uri: str, played_at: float | None = None) -> None:
        """Add a play to the user's recently-played history."""
        with self.lock:
            user = self._require_user(user_id)
            self._check_uris([uri])
            user.plays.append((uri, self.now() if played_at is None else played_at))
            user.plays.sort(key=lambda p: p[1])

    def set_top_tracks(self, user_id: str, time_range: str, uris: Iterable[str]) -> None:
        """Set the user's top tracks for `short_term`, `medium_term` or `long_term`."""
        if time_range not in TIME_RANGES:
            raise ValueError(f"time_range must be one of {', '.join(TIME_RANGES)}")
        with self.lock:
            self._require_user(user_id).top[time_range] = self._check_uris(uris)

    # -- faults and the request log ------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Make matching requests fail (or slow down) as `fault` says."""
        if fault.path is not None:
            re.compile(fault.path)
        with self.lock:
            self.faults.append([fault, fault.times])

    def clear_faults(self) -> None:
        """Forget all injected faults."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first live fault matching the request, counting it down."""
        with self.lock:
            for entry in self.faults:
                fault, remaining = entry
                if remaining is not None and remaining <= 0:
                    continue
                if fault.method is not None and fault.method.upper() != method:
                    continue
                if fault.path is not None and not _path_matches(fault.path, path):
                    continue
                if remaining is not None:
                    entry[1] = remaining - 1
                return fault  # type: ignore[no-any-return]
            return None

    def record(self, entry: Recorded) -> None:
        """Append to the request log."""
        with self.lock:
            self._log.append(entry)

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request received, in order."""
        with self.lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self.lock:
            self._log.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many logged requests match `method` and the `path` regex (`re.search`)."""
        return len(self._matching(method, path))

    def writes(self) -> list[Recorded]:
        """Logged Web API requests that could change something (POST, PUT, DELETE under /v1)."""
        return [r for r in self._matching(None, r"^/v1/") if r.method in WRITE_METHODS]

    def _matching(self, method: str | None, path: str | None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path is None or re.search(path, r.path) is not None)
        ]


def _path_matches(pattern: str, path: str) -> bool:
    """Whether a fault's regex matches the path as sent or without its trailing slash.

    spotipy sends some paths with a trailing slash ("/v1/me/"), which Spotify ignores; a fault
    written as `/me$` should hit those too.
    """
    trimmed = path.rstrip("/") or "/"
    return re.search(pattern, path) is not None or re.search(pattern, trimmed) is not None
