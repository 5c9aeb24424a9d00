"""Test-facing helpers that fill the fake's catalog: artists, albums, shows, audiobooks.

Mixed into `FakeState`; every helper returns the new item's Spotify URI.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from runner.testing.fake import catalog, objects
from runner.testing.fake.model import (
    ANY_URI,
    AlbumRecord,
    ArtistRecord,
    AudiobookRecord,
    ChapterRecord,
    EpisodeRecord,
    ShowRecord,
)

if TYPE_CHECKING:
    from runner.testing.fake.state import FakeState


def _as_state(mixin: object) -> FakeState:
    """The `FakeState` this mixin is part of (mypy cannot see it through the mixin)."""
    return cast("FakeState", mixin)


class CatalogSetup:
    """Adds artists, albums, shows with episodes and audiobooks with chapters."""

    def add_artist(self, name: str, genres: Iterable[str] = ()) -> str:
        """Add an artist (tracks add theirs on their own); returns `spotify:artist:<id>`."""
        state = _as_state(self)
        with state.lock:
            record = state.register_artist(name)
            record.genres = list(genres) or record.genres
            return f"spotify:artist:{record.id}"

    def register_artist(self, name: str) -> ArtistRecord:
        """The artist called `name`, created when new (callers hold the lock)."""
        state = _as_state(self)
        aid = objects.artist_id(name)
        if aid not in state.artists:
            state.artists[aid] = ArtistRecord(aid, name)
        return state.artists[aid]

    def register_album(self, name: str, artists: list[str]) -> AlbumRecord:
        """The album `name` by `artists`, created when new (callers hold the lock)."""
        state = _as_state(self)
        aid = objects.album_id(name, artists)
        if aid not in state.albums:
            state.albums[aid] = AlbumRecord(aid, name, list(artists), order=state.next_serial())
        return state.albums[aid]

    def add_album(
        self,
        name: str,
        artists: Iterable[str] = ("Artist",),
        tracks: Iterable[str] | int = 3,
        album_type: str = "album",
        release_date: str = "2024-01-01",
    ) -> str:
        """Add an album and its tracks (track names, or how many to name "Track N").

        Returns:
            `spotify:album:<id>`; `album_tracks(uri)` gives its track URIs.
        """
        state = _as_state(self)
        if album_type not in ("album", "single", "compilation"):
            raise ValueError("album_type must be album, single or compilation")
        names = [f"Track {i + 1}" for i in range(tracks)] if isinstance(tracks, int) else tracks
        who = list(artists)
        with state.lock:
            record = state.register_album(name, who)
            record.album_type, record.release_date = album_type, release_date
            for track_name in names:
                state.add_track(track_name, artists=who, album=name)
            return f"spotify:album:{record.id}"

    def album_tracks(self, album_uri: str) -> list[str]:
        """The track URIs of an album, in order."""
        state = _as_state(self)
        with state.lock:
            record = state.albums[_id_of(album_uri, "album")]
            return [f"spotify:track:{t}" for t in record.track_ids]

    def add_show(
        self,
        name: str,
        publisher: str = "Fake Podcasts",
        episodes: int = 3,
        description: str = "A show.",
    ) -> str:
        """Add a podcast show with `episodes` episodes (newest first, one a week).

        Returns:
            `spotify:show:<id>`; `show_episodes(uri)` gives its episode URIs.
        """
        state = _as_state(self)
        with state.lock:
            sid = catalog.base62_id("show", state.next_serial(), name)
            state.shows[sid] = ShowRecord(sid, name, publisher, description)
            for number in range(episodes, 0, -1):
                state.add_episode(f"spotify:show:{sid}", f"{name} #{number}")
            return f"spotify:show:{sid}"

    def add_episode(self, show_uri: str, name: str, duration_ms: int = 1_800_000) -> str:
        """Add an episode at the end of a show's list; returns `spotify:episode:<id>`."""
        state = _as_state(self)
        with state.lock:
            show = state.shows[_id_of(show_uri, "show")]
            eid = catalog.base62_id("episode", state.next_serial(), name)
            day = 28 - min(len(show.episode_ids), 27)
            state.episodes[eid] = EpisodeRecord(
                eid, name, show.id, duration_ms, f"2026-01-{day:02d}", f"{name}, an episode."
            )
            show.episode_ids.append(eid)
            return f"spotify:episode:{eid}"

    def show_episodes(self, show_uri: str) -> list[str]:
        """A show's episode URIs, newest first."""
        state = _as_state(self)
        with state.lock:
            show = state.shows[_id_of(show_uri, "show")]
            return [f"spotify:episode:{e}" for e in show.episode_ids]

    def add_audiobook(
        self,
        name: str,
        authors: Iterable[str] = ("Author",),
        narrators: Iterable[str] = ("Narrator",),
        chapters: int = 3,
        publisher: str = "Fake Audio",
    ) -> str:
        """Add an audiobook with `chapters` chapters.

        Returns:
            `spotify:audiobook:<id>`; `audiobook_chapters(uri)` gives its chapter URIs.
        """
        state = _as_state(self)
        with state.lock:
            bid = catalog.base62_id("audiobook", state.next_serial(), name)
            book = AudiobookRecord(
                bid, name, list(authors), list(narrators), publisher, f"{name}, a book."
            )
            state.audiobooks[bid] = book
            for number in range(1, chapters + 1):
                cid = catalog.base62_id("chapter", bid, number)
                state.chapters[cid] = ChapterRecord(cid, f"Chapter {number}", bid, number, 600_000)
                book.chapter_ids.append(cid)
            return f"spotify:audiobook:{bid}"

    def audiobook_chapters(self, audiobook_uri: str) -> list[str]:
        """An audiobook's chapter URIs, in order."""
        state = _as_state(self)
        with state.lock:
            book = state.audiobooks[_id_of(audiobook_uri, "audiobook")]
            return [f"spotify:chapter:{c}" for c in book.chapter_ids]

    def catalog_has(self, uri: str) -> bool:
        """Whether `uri` names something the fake knows (any type the library takes)."""
        state = _as_state(self)
        found = ANY_URI.match(uri)
        if found is None:
            return False
        kind, item_id = found.groups()
        stores: dict[str, object] = {
            "track": state.tracks,
            "album": state.albums,
            "artist": state.artists,
            "show": state.shows,
            "episode": state.episodes,
            "audiobook": state.audiobooks,
            "chapter": state.chapters,
            "user": state.users,
        }
        if kind == "playlist":
            return state.playlist_live(item_id)
        store = stores.get(kind)
        return isinstance(store, dict) and item_id in store


def _id_of(uri: str, kind: str) -> str:
    prefix = f"spotify:{kind}:"
    if not uri.startswith(prefix):
        raise KeyError(f"not a {kind} URI: {uri}")
    return uri[len(prefix) :]
