"""The JSON objects the Web API answers with, built from the fake's records.

Shapes follow the OpenAPI description's schemas. Fields the description marks deprecated are
left out (development-mode apps no longer get them since the February 2026 migration), except
on the user object, whose `country`, `product` and `email` the scopes still unlock, and the
playlist's `tracks` beside `items`, which older clients still read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.testing.fake.catalog import base62_id, iso
from runner.testing.fake.model import (
    AlbumRecord,
    ArtistRecord,
    AudiobookRecord,
    ChapterRecord,
    EpisodeRecord,
    ShowRecord,
    TrackRecord,
)

if TYPE_CHECKING:
    from runner.testing.fake.state import FakeState


def links(state: FakeState, kind: str, item_id: str) -> dict[str, Any]:
    """`external_urls`, `href`, `id`, `type` and `uri` of any catalog object."""
    plural = "users" if kind == "user" else f"{kind}s"
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
        "href": f"{state.api_url}/{plural}/{item_id}",
        "id": item_id,
        "type": kind,
        "uri": f"spotify:{kind}:{item_id}",
    }


def artist_id(name: str) -> str:
    """The id of the artist called `name` (artists are keyed by name in the fake)."""
    return base62_id("artist", name)


def album_id(name: str, artists: list[str]) -> str:
    """The id of an album, from its name and first artist."""
    return base62_id("album", name, artists[0] if artists else "")


def simplified_artist(state: FakeState, name: str) -> dict[str, Any]:
    """SimplifiedArtistObject."""
    return {**links(state, "artist", artist_id(name)), "name": name}


def artist(state: FakeState, record: ArtistRecord) -> dict[str, Any]:
    """ArtistObject (without the deprecated followers, genres and popularity)."""
    return {**links(state, "artist", record.id), "images": [], "name": record.name}


def _album_base(state: FakeState, album: AlbumRecord) -> dict[str, Any]:
    return {
        **links(state, "album", album.id),
        "album_type": album.album_type,
        "total_tracks": len(album.track_ids),
        "images": [],
        "name": album.name,
        "release_date": album.release_date,
        "release_date_precision": "day",
        "artists": [simplified_artist(state, a) for a in album.artists],
    }


def simplified_album(state: FakeState, album: AlbumRecord) -> dict[str, Any]:
    """SimplifiedAlbumObject."""
    return _album_base(state, album)


def discography_album(state: FakeState, album: AlbumRecord) -> dict[str, Any]:
    """ArtistDiscographyAlbumObject (`album_group` is deprecated and left out)."""
    return _album_base(state, album)


def album(state: FakeState, album: AlbumRecord, tracks_page: dict[str, Any]) -> dict[str, Any]:
    """AlbumObject, with the first page of its tracks."""
    return {
        **_album_base(state, album),
        "tracks": tracks_page,
        "copyrights": [{"text": f"(C) {album.release_date[:4]} {album.label}", "type": "C"}],
        "external_ids": {"upc": "0" + str(int(album.id.encode().hex(), 16) % 10**11).zfill(11)},
    }


def simplified_track(state: FakeState, track: TrackRecord) -> dict[str, Any]:
    """SimplifiedTrackObject (what album tracks list)."""
    return {
        **links(state, "track", track.id),
        "artists": [simplified_artist(state, a) for a in track.artists],
        "disc_number": 1,
        "duration_ms": track.duration_ms,
        "explicit": track.explicit,
        "is_playable": True,
        "name": track.name,
        "track_number": track_number(state, track),
        "is_local": False,
    }


def track_number(state: FakeState, track: TrackRecord) -> int:
    """The track's position on its album, from 1."""
    record = state.albums.get(album_id(track.album, track.artists))
    if record is None or track.id not in record.track_ids:
        return 1
    return record.track_ids.index(track.id) + 1


def track(state: FakeState, track: TrackRecord) -> dict[str, Any]:
    """TrackObject."""
    record = state.albums.get(album_id(track.album, track.artists))
    if record is None:  # a track stored before its album was (tests may build records directly)
        record = AlbumRecord(album_id(track.album, track.artists), track.album, track.artists)
        record.track_ids.append(track.id)
    return {
        **simplified_track(state, track),
        "album": simplified_album(state, record),
        "external_ids": {"isrc": track.isrc} if track.isrc else {},
    }


def _copyright(publisher: str) -> list[dict[str, str]]:
    return [{"text": f"(P) {publisher}", "type": "P"}]


def simplified_show(state: FakeState, show: ShowRecord) -> dict[str, Any]:
    """SimplifiedShowObject (`publisher` and `available_markets` are deprecated)."""
    return {
        **links(state, "show", show.id),
        "copyrights": _copyright(show.publisher),
        "description": show.description,
        "html_description": f"<p>{show.description}</p>",
        "explicit": False,
        "images": [],
        "is_externally_hosted": False,
        "languages": ["en"],
        "media_type": "audio",
        "name": show.name,
        "total_episodes": len(show.episode_ids),
    }


def show(state: FakeState, show: ShowRecord, episodes_page: dict[str, Any]) -> dict[str, Any]:
    """ShowObject, with the first page of its episodes."""
    return {**simplified_show(state, show), "episodes": episodes_page}


def simplified_episode(
    state: FakeState, episode: EpisodeRecord, resume: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SimplifiedEpisodeObject; `resume` is the resume point, given only with the scope for it."""
    obj: dict[str, Any] = {
        **links(state, "episode", episode.id),
        "description": episode.description,
        "html_description": f"<p>{episode.description}</p>",
        "duration_ms": episode.duration_ms,
        "explicit": False,
        "images": [],
        "is_externally_hosted": False,
        "is_playable": True,
        "languages": ["en"],
        "name": episode.name,
        "release_date": episode.release_date,
        "release_date_precision": "day",
    }
    if resume is not None:
        obj["resume_point"] = resume
    return obj


def episode(
    state: FakeState, episode: EpisodeRecord, resume: dict[str, Any] | None = None
) -> dict[str, Any]:
    """EpisodeObject, with its show."""
    return {
        **simplified_episode(state, episode, resume),
        "show": simplified_show(state, state.shows[episode.show_id]),
    }


def simplified_audiobook(state: FakeState, book: AudiobookRecord) -> dict[str, Any]:
    """SimplifiedAudiobookObject."""
    return {
        **links(state, "audiobook", book.id),
        "authors": [{"name": a} for a in book.authors],
        "copyrights": _copyright(book.publisher),
        "description": book.description,
        "html_description": f"<p>{book.description}</p>",
        "edition": "Unabridged",
        "explicit": False,
        "images": [],
        "languages": ["en"],
        "media_type": "audio",
        "name": book.name,
        "narrators": [{"name": n} for n in book.narrators],
        "total_chapters": len(book.chapter_ids),
    }


def audiobook(state: FakeState, book: AudiobookRecord, chapters: dict[str, Any]) -> dict[str, Any]:
    """AudiobookObject, with the first page of its chapters."""
    return {**simplified_audiobook(state, book), "chapters": chapters}


def simplified_chapter(state: FakeState, chapter: ChapterRecord) -> dict[str, Any]:
    """SimplifiedChapterObject: the spec gives chapters `type` "episode" (and episode URIs),
    as Spotify answers; `href` is the chapter endpoint."""
    return {
        **links(state, "episode", chapter.id),
        "href": f"{state.api_url}/chapters/{chapter.id}",
        "chapter_number": chapter.chapter_number,
        "description": f"Chapter {chapter.chapter_number}",
        "html_description": f"<p>Chapter {chapter.chapter_number}</p>",
        "duration_ms": chapter.duration_ms,
        "explicit": False,
        "images": [],
        "is_playable": True,
        "languages": ["en"],
        "name": chapter.name,
        "release_date": "2024-01-01",
        "release_date_precision": "day",
    }


def chapter(state: FakeState, chapter: ChapterRecord) -> dict[str, Any]:
    """ChapterObject, with its audiobook."""
    book = state.audiobooks[chapter.audiobook_id]
    return {**simplified_chapter(state, chapter), "audiobook": simplified_audiobook(state, book)}


def playable(state: FakeState, uri: str) -> dict[str, Any]:
    """The TrackObject or EpisodeObject for a track or episode URI (KeyError when unknown)."""
    _, kind, item_id = uri.split(":", 2)
    if kind == "episode":
        return episode(state, state.episodes[item_id])
    return track(state, state.track_record(uri))


def user(state: FakeState, user_id: str) -> dict[str, Any]:
    """PublicUserObject (PlaylistOwnerObject too)."""
    record = state.users.get(user_id)
    return {
        **links(state, "user", user_id),
        "display_name": record.display_name if record else user_id,
    }


def playlist_user(state: FakeState, user_id: str) -> dict[str, Any]:
    """PlaylistUserObject (`added_by`)."""
    return links(state, "user", user_id)


def timestamp(ts: float) -> str:
    """Spotify's ISO 8601 timestamps."""
    return iso(ts)
