"""Reading the user's Spotify library and playlists, for the sources and excludes that need it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import spotipy

from jobs.playlist_updater.candidate import Candidate, candidate_from_track
from jobs.playlist_updater.pages import PAGE, read_rest
from runner.context import JobContext
from runner.errors import SpotifyAPIError

TRACK_FIELDS = "uri,name,explicit,is_local,type,artists(name,id),external_ids(isrc)"
ALGORITHMIC = (
    "Spotify no longer lets apps read Discover Weekly and other algorithmic playlists (404)"
)


def candidates(tracks: Iterable[Any]) -> list[Candidate]:
    """The tracks among Spotify track objects (episodes, local files and gaps left out)."""
    return [c for c in map(candidate_from_track, tracks) if c is not None]


@contextmanager
def source_errors(what: str) -> Iterator[None]:
    """Turns Spotify's refusals while reading a source playlist into plain messages."""
    try:
        yield
    except spotipy.SpotifyException as exc:
        if exc.http_status == 404:
            raise SpotifyAPIError(
                404, f"{what} not found: {ALGORITHMIC}, or it was deleted"
            ) from None
        if exc.http_status == 403:
            raise SpotifyAPIError(
                403,
                f"{what}: Spotify lets apps read only playlists you own or collaborate on (403)",
            ) from None
        raise


def playlist_tracks(ctx: JobContext, playlist_id: str, what: str) -> list[Candidate]:
    """Every track of a playlist the user owns or collaborates on, read concurrently."""
    fields = f"total,items(item({TRACK_FIELDS}))"
    with source_errors(what):
        first = ctx.spotify.playlist_items(
            playlist_id, fields=fields, limit=PAGE, additional_types=("track",)
        )
        items = read_rest(
            ctx,
            first,
            lambda client, offset, size: client.playlist_items(
                playlist_id,
                fields=fields,
                limit=size,
                offset=offset,
                additional_types=("track",),
            ),
        )
    return candidates(entry.get("item") or entry.get("track") for entry in items)
