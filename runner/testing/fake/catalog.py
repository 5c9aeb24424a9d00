"""Ids, timestamps, track objects and search matching for the fake catalog."""

from __future__ import annotations

import hashlib
import random
import re
import time
import unicodedata
from typing import Any

from runner.testing.fake.model import TrackRecord

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_ADJECTIVES = (
    "Silver", "Golden", "Quiet", "Electric", "Broken", "Midnight", "Velvet", "Neon", "Wild",
    "Paper", "Crystal", "Hollow", "Burning", "Frozen", "Distant", "Lonely", "Restless", "Scarlet",
)  # fmt: skip
_NOUNS = (
    "River", "Heart", "Highway", "Summer", "Echo", "Garden", "Mirror", "Ocean", "Signal", "Dream",
    "Harbor", "Comet", "Lantern", "Shadow", "Window", "Thunder", "Meadow", "Satellite",
)  # fmt: skip
_ARTISTS = (
    "The Night Owls", "Ada Lux", "Marlo Keys", "Fjord", "Sunny Vale", "Kite Collective",
    "June Alder", "Copper Sound", "Ivo Brand", "Lumen", "Rosa Fray", "The Tin Hearts",
)  # fmt: skip
_ALBUMS = ("First Light", "Northbound", "Glass Houses", "Late Bloom", "Open Water", "Static")


def base62_id(*parts: object) -> str:
    """A deterministic 22-character base62 id derived from `parts`."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    number = int.from_bytes(digest, "big")
    out = []
    for _ in range(22):
        number, rem = divmod(number, 62)
        out.append(_BASE62[rem])
    return "".join(out)


def iso(ts: float) -> str:
    """Unix seconds as Spotify's ISO 8601 UTC form, e.g. `2026-11-29T18:31:06Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def words(text: str) -> list[str]:
    """Lower-case words with accents and punctuation removed, for search matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.findall(r"[0-9a-z]+", plain.casefold())


def generated_track(seed: int, index: int) -> dict[str, Any]:
    """Name, artists, album and ISRC for the `index`-th track of `make_tracks(seed=...)`."""
    rng = random.Random(f"{seed}:{index}")
    name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {index + 1}"
    artists = [rng.choice(_ARTISTS)]
    if rng.random() < 0.2:
        artists.append(rng.choice([a for a in _ARTISTS if a != artists[0]]))
    serial = int(base62_id("isrc", seed, index).encode().hex(), 16) % 100000
    return {
        "name": name,
        "artists": artists,
        "album": rng.choice(_ALBUMS),
        "isrc": f"QZFAK{seed % 100:02d}{serial:05d}",
        "explicit": rng.random() < 0.1,
        "duration_ms": rng.randint(120_000, 360_000),
        "track_id": base62_id("track", seed, index),
    }


def _artist_object(name: str, api_url: str) -> dict[str, Any]:
    artist_id = base62_id("artist", name)
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"{api_url}/artists/{artist_id}",
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


def track_object(track: TrackRecord, api_url: str) -> dict[str, Any]:
    """The full track object Spotify returns for `track`."""
    artists = [_artist_object(a, api_url) for a in track.artists]
    album_id = base62_id("album", track.album, track.artists[0] if track.artists else "")
    return {
        "album": {
            "album_type": "album",
            "total_tracks": 1,
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"{api_url}/albums/{album_id}",
            "id": album_id,
            "images": [],
            "name": track.album,
            "release_date": "2024-01-01",
            "release_date_precision": "day",
            "type": "album",
            "uri": f"spotify:album:{album_id}",
            "artists": artists,
        },
        "artists": artists,
        "disc_number": 1,
        "duration_ms": track.duration_ms,
        "explicit": track.explicit,
        "external_ids": {"isrc": track.isrc} if track.isrc else {},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
        "href": f"{api_url}/tracks/{track.id}",
        "id": track.id,
        "is_playable": True,
        "name": track.name,
        "track_number": 1,
        "type": "track",
        "uri": f"spotify:track:{track.id}",
        "is_local": False,
    }


_FILTER = re.compile(r'(\w+):(?:"([^"]*)"|(\S+))')


def parse_query(q: str) -> tuple[list[str], dict[str, list[str]]]:
    """Split a search query into free-text words and `field:` filters (`artist:"A B"` too)."""
    filters: dict[str, list[str]] = {}

    def take(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name not in ("artist", "track", "album", "isrc", "year", "genre"):
            return match.group(0)
        value = match.group(2) if match.group(2) is not None else match.group(3)
        filters.setdefault(name, []).extend(words(value) if name != "isrc" else [value.upper()])
        return " "

    rest = _FILTER.sub(take, q)
    return words(rest), filters


def search_score(track: TrackRecord, free: list[str], filters: dict[str, list[str]]) -> int | None:
    """How well `track` matches, or None when it does not match at all.

    Every word must be present in the field it targets (free text: name, artists or album);
    more words hitting the track name, and an exact name match, rank higher.
    """
    name_words = words(track.name)
    artist_words = [w for a in track.artists for w in words(a)]
    album_words = words(track.album)
    if any(w not in artist_words for w in filters.get("artist", [])):
        return None
    if any(w not in name_words for w in filters.get("track", [])):
        return None
    if any(w not in album_words for w in filters.get("album", [])):
        return None
    if any(v != (track.isrc or "").upper() for v in filters.get("isrc", [])):
        return None
    if filters.get("year") or filters.get("genre"):
        return None  # the fake's tracks carry neither
    everything = set(name_words) | set(artist_words) | set(album_words)
    if any(w not in everything for w in free):
        return None
    wanted_name = filters.get("track") or free
    score = sum(2 for w in wanted_name if w in name_words)
    score += sum(1 for w in free if w in artist_words)
    if wanted_name and wanted_name == name_words:
        score += 100
    return score
