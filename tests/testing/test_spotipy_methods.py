"""Every public `spotipy.Spotify` method, driven against the fake over real HTTP.

Each method is in exactly one list: driven (it maps to current operations and must pass, every
request it sends being one the OpenAPI description lists as current), deprecated (it sends a
deprecated operation, and the fake refuses it with 403 as Spotify does for development-mode
apps), spotipy is wrong (with the reason), or not a request at all.
"""

from __future__ import annotations

import base64
import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
import spotipy
from fake_world import JPEG, World
from openapi_spec import operations, require_spec
from spotipy.exceptions import SpotifyException

from runner.testing.harness import ALL_SCOPES

Sp = spotipy.Spotify
Drive = Callable[[Sp, World], None]


def _ids(uris: list[str]) -> list[str]:
    return [u.rsplit(":", 1)[1] for u in uris]


def _search_markets(sp: Sp, w: World) -> None:
    found = sp.search_markets("blue", limit=5, type="track", markets=["DE", "US"])
    assert set(found) == {"DE", "US"}
    assert found["DE"]["tracks"]["items"][0]["uri"] == w.album_tracks[1]


def _paging(sp: Sp, w: World) -> None:
    w.fake.add_album("Big", ["Miles Davis"], 5)
    first = sp.artist_albums(w.artist, limit=1)
    second = sp.next(first)
    assert second["offset"] == 1
    assert sp.previous(second)["items"] == first["items"]


def _upload(sp: Sp, w: World) -> None:
    sp.playlist_upload_cover_image(w.playlist, base64.b64encode(JPEG))
    assert w.fake.playlist_cover(w.playlist) == JPEG


def _play(sp: Sp, w: World) -> None:
    sp.start_playback(context_uri=w.album, offset={"position": 1})
    assert w.fake.playback()["item"] == w.album_tracks[1]


def _specific(sp: Sp, w: World) -> None:
    sp.playlist_remove_specific_occurrences_of_items(
        w.playlist, [{"uri": w.tracks[0], "positions": [0]}]
    )
    assert w.fake.playlist_uris(w.playlist)[0] == w.tracks[1]


DRIVEN: dict[str, Drive] = {
    "track": lambda sp, w: _eq(sp.track(w.tracks[0])["uri"], w.tracks[0]),
    "artist": lambda sp, w: _eq(sp.artist(w.artist)["name"], "Miles Davis"),
    # spotipy's default limit (20) is above the 2026 maximum of 10; with a valid one it works.
    "artist_albums": lambda sp, w: _eq(
        [a["uri"] for a in sp.artist_albums(w.artist, limit=10)["items"]], [w.album]
    ),
    "album": lambda sp, w: _eq(sp.album(w.album)["tracks"]["total"], 2),
    "album_tracks": lambda sp, w: _eq(
        [t["uri"] for t in sp.album_tracks(w.album)["items"]], w.album_tracks
    ),
    "show": lambda sp, w: _eq(sp.show(w.show)["total_episodes"], 3),
    "show_episodes": lambda sp, w: _eq(
        [e["uri"] for e in sp.show_episodes(w.show)["items"]], w.episodes
    ),
    "episode": lambda sp, w: _eq(sp.episode(w.episodes[0])["show"]["uri"], w.show),
    "get_audiobook": lambda sp, w: _eq(sp.get_audiobook(w.audiobook)["total_chapters"], 3),
    "get_audiobook_chapters": lambda sp, w: _eq(
        len(sp.get_audiobook_chapters(w.audiobook)["items"]), 3
    ),
    "search": lambda sp, w: _eq(
        sp.search("blue in green", type="track")["tracks"]["items"][0]["uri"], w.album_tracks[1]
    ),
    "search_markets": _search_markets,
    "next": _paging,
    "previous": _paging,
    "me": lambda sp, w: _eq(sp.me()["id"], "alice"),
    "current_user": lambda sp, w: _eq(sp.current_user()["country"], "DE"),
    "current_user_playlists": lambda sp, w: _eq(
        [p["id"] for p in sp.current_user_playlists()["items"]], [w.playlist]
    ),
    "playlist": lambda sp, w: _eq(sp.playlist(w.playlist, fields="name")["name"], "Mix"),
    "user_playlist": lambda sp, w: _eq(sp.user_playlist("alice", w.playlist)["name"], "Mix"),
    "playlist_items": lambda sp, w: _eq(
        sp.playlist_items(w.playlist)["items"][3]["item"]["type"], "episode"
    ),
    "playlist_tracks": lambda sp, w: _eq(sp.playlist_tracks(w.playlist)["total"], 4),
    "user_playlist_tracks": lambda sp, w: _eq(
        sp.user_playlist_tracks("alice", w.playlist, limit=50)["total"], 4
    ),
    "playlist_cover_image": lambda sp, w: _eq(len(sp.playlist_cover_image(w.playlist)), 1),
    "playlist_upload_cover_image": _upload,
    "current_user_playlist_create": lambda sp, w: _eq(
        sp.current_user_playlist_create("New", public=False)["public"], False
    ),
    "playlist_change_details": lambda sp, w: _then(
        sp.playlist_change_details(w.playlist, name="Renamed"),
        lambda: w.fake.playlist_details(w.playlist)["name"] == "Renamed",
    ),
    "user_playlist_change_details": lambda sp, w: _then(
        sp.user_playlist_change_details("alice", w.playlist, description="new"),
        lambda: w.fake.playlist_details(w.playlist)["description"] == "new",
    ),
    "playlist_add_items": lambda sp, w: _then(
        sp.playlist_add_items(w.playlist, [w.tracks[4], w.episodes[2]]),
        lambda: w.fake.playlist_uris(w.playlist)[-2:] == [w.tracks[4], w.episodes[2]],
    ),
    "user_playlist_add_tracks": lambda sp, w: _then(
        sp.user_playlist_add_tracks("alice", w.playlist, [w.tracks[4]]),
        lambda: w.fake.playlist_uris(w.playlist)[-1] == w.tracks[4],
    ),
    "user_playlist_add_episodes": lambda sp, w: _then(
        sp.user_playlist_add_episodes("alice", w.playlist, [w.episodes[2]]),
        lambda: w.fake.playlist_uris(w.playlist)[-1] == w.episodes[2],
    ),
    "playlist_replace_items": lambda sp, w: _then(
        sp.playlist_replace_items(w.playlist, [w.tracks[4]]),
        lambda: w.fake.playlist_uris(w.playlist) == [w.tracks[4]],
    ),
    "user_playlist_replace_tracks": lambda sp, w: _then(
        sp.user_playlist_replace_tracks("alice", w.playlist, [w.tracks[4]]),
        lambda: w.fake.playlist_uris(w.playlist) == [w.tracks[4]],
    ),
    "playlist_reorder_items": lambda sp, w: _then(
        sp.playlist_reorder_items(w.playlist, range_start=0, insert_before=2),
        lambda: w.fake.playlist_uris(w.playlist)[:2] == [w.tracks[1], w.tracks[0]],
    ),
    "user_playlist_reorder_tracks": lambda sp, w: _then(
        sp.user_playlist_reorder_tracks("alice", w.playlist, range_start=0, insert_before=2),
        lambda: w.fake.playlist_uris(w.playlist)[:2] == [w.tracks[1], w.tracks[0]],
    ),
    "playlist_remove_all_occurrences_of_items": lambda sp, w: _then(
        sp.playlist_remove_all_occurrences_of_items(w.playlist, [w.tracks[0]]),
        lambda: w.tracks[0] not in w.fake.playlist_uris(w.playlist),
    ),
    "user_playlist_remove_all_occurrences_of_tracks": lambda sp, w: _then(
        sp.user_playlist_remove_all_occurrences_of_tracks("alice", w.playlist, [w.tracks[0]]),
        lambda: w.tracks[0] not in w.fake.playlist_uris(w.playlist),
    ),
    "playlist_remove_specific_occurrences_of_items": _specific,
    "current_user_follow_playlist": lambda sp, w: _then(
        sp.current_user_follow_playlist(w.fake.add_playlist("bob", public=True)),
        lambda: len(w.fake.user_playlist_ids("alice")) == 2,
    ),
    "user_playlist_follow_playlist": lambda sp, w: _then(
        sp.user_playlist_follow_playlist("bob", w.fake.add_playlist("bob", public=True)),
        lambda: len(w.fake.user_playlist_ids("alice")) == 2,
    ),
    "current_user_saved_items": lambda sp, w: _eq(
        sp.current_user_saved_items([w.tracks[0], w.tracks[1], w.album]), [True, False, True]
    ),
    "current_user_saved_albums": lambda sp, w: _eq(
        sp.current_user_saved_albums()["items"][0]["album"]["uri"], w.album
    ),
    "current_user_saved_albums_add": lambda sp, w: _then(
        sp.current_user_saved_albums_add([w.fake.add_album("Other")]),
        lambda: len(w.fake.library_uris("alice", "album")) == 2,
    ),
    "current_user_saved_albums_delete": lambda sp, w: _then(
        sp.current_user_saved_albums_delete([w.album]),
        lambda: w.fake.library_uris("alice", "album") == [],
    ),
    "current_user_saved_albums_contains": lambda sp, w: _eq(
        sp.current_user_saved_albums_contains([w.album]), [True]
    ),
    "current_user_saved_tracks": lambda sp, w: _eq(
        sp.current_user_saved_tracks()["items"][0]["track"]["uri"], w.tracks[0]
    ),
    "current_user_saved_tracks_add": lambda sp, w: _then(
        sp.current_user_saved_tracks_add(_ids(w.tracks[1:3])),
        lambda: w.fake.library_uris("alice", "track")[0] == w.tracks[2],
    ),
    "current_user_saved_tracks_delete": lambda sp, w: _then(
        sp.current_user_saved_tracks_delete([w.tracks[0]]),
        lambda: w.fake.library_uris("alice", "track") == [],
    ),
    "current_user_saved_tracks_contains": lambda sp, w: _eq(
        sp.current_user_saved_tracks_contains(w.tracks[:2]), [True, False]
    ),
    "current_user_saved_episodes": lambda sp, w: _eq(
        sp.current_user_saved_episodes()["items"][0]["episode"]["uri"], w.episodes[1]
    ),
    "current_user_saved_episodes_add": lambda sp, w: _then(
        sp.current_user_saved_episodes_add([w.episodes[0]]),
        lambda: w.fake.in_library("alice", w.episodes[0]),
    ),
    "current_user_saved_episodes_delete": lambda sp, w: _then(
        sp.current_user_saved_episodes_delete([w.episodes[1]]),
        lambda: not w.fake.in_library("alice", w.episodes[1]),
    ),
    "current_user_saved_shows": lambda sp, w: _eq(
        sp.current_user_saved_shows()["items"][0]["show"]["uri"], w.show
    ),
    "current_user_saved_shows_add": lambda sp, w: _then(
        sp.current_user_saved_shows_add([w.fake.add_show("Other")]),
        lambda: len(w.fake.library_uris("alice", "show")) == 2,
    ),
    "current_user_saved_shows_delete": lambda sp, w: _then(
        sp.current_user_saved_shows_delete([w.show]),
        lambda: w.fake.library_uris("alice", "show") == [],
    ),
    "current_user_saved_shows_contains": lambda sp, w: _eq(
        sp.current_user_saved_shows_contains([w.show]), [True]
    ),
    "current_user_followed_artists": lambda sp, w: _eq(
        sp.current_user_followed_artists()["artists"]["items"][0]["uri"], w.artist
    ),
    "current_user_following_artists": lambda sp, w: _eq(
        sp.current_user_following_artists([w.artist]), [True]
    ),
    "current_user_following_users": lambda sp, w: _eq(
        sp.current_user_following_users(["bob"]), [False]
    ),
    "user_follow_users": lambda sp, w: _then(
        sp.user_follow_users(["bob"]), lambda: w.fake.in_library("alice", "spotify:user:bob")
    ),
    "user_unfollow_users": lambda sp, w: _then(
        sp.user_unfollow_users(["bob"]), lambda: not w.fake.in_library("alice", "spotify:user:bob")
    ),
    "current_user_top_artists": lambda sp, w: _eq(
        sp.current_user_top_artists()["items"][0]["uri"], w.artist
    ),
    "current_user_top_tracks": lambda sp, w: _eq(
        [t["uri"] for t in sp.current_user_top_tracks()["items"]], w.tracks[:2]
    ),
    "current_user_recently_played": lambda sp, w: _eq(
        sp.current_user_recently_played()["items"][0]["track"]["uri"], w.tracks[1]
    ),
    "devices": lambda sp, w: _eq(len(sp.devices()["devices"]), 2),
    "current_playback": lambda sp, w: _eq(sp.current_playback()["device"]["id"], w.device),
    "currently_playing": lambda sp, w: _eq(
        sp.currently_playing()["item"]["uri"], w.album_tracks[0]
    ),
    "current_user_playing_track": lambda sp, w: _eq(
        sp.current_user_playing_track()["item"]["uri"], w.album_tracks[0]
    ),
    "transfer_playback": lambda sp, w: _then(
        sp.transfer_playback(w.other_device), lambda: w.fake.playback()["device"] == w.other_device
    ),
    "start_playback": _play,
    "pause_playback": lambda sp, w: _then(
        sp.pause_playback(), lambda: not w.fake.playback()["is_playing"]
    ),
    "next_track": lambda sp, w: _then(
        sp.next_track(), lambda: w.fake.playback()["item"] == w.album_tracks[1]
    ),
    "previous_track": lambda sp, w: _then(
        sp.previous_track(), lambda: w.fake.playback()["item"] == w.album_tracks[0]
    ),
    "seek_track": lambda sp, w: _then(
        sp.seek_track(5000), lambda: w.fake.playback()["progress_ms"] == 5000
    ),
    "repeat": lambda sp, w: _then(
        sp.repeat("track"), lambda: w.fake.playback()["repeat"] == "track"
    ),
    "shuffle": lambda sp, w: _then(sp.shuffle(True), lambda: w.fake.playback()["shuffle"]),
    "volume": lambda sp, w: _then(sp.volume(70), lambda: w.fake.playback()["volume_percent"] == 70),
    "queue": lambda sp, w: _eq(sp.queue()["queue"][0]["uri"], w.album_tracks[1]),
    "add_to_queue": lambda sp, w: _then(
        sp.add_to_queue(w.tracks[3]), lambda: w.fake.playback()["queue"] == [w.tracks[3]]
    ),
}

# Methods that send a deprecated operation (spotipy keeps them; Spotify refuses them now).
DEPRECATED: dict[str, Drive] = {
    "tracks": lambda sp, w: sp.tracks(w.tracks[:2]),
    "artists": lambda sp, w: sp.artists([w.artist]),
    "albums": lambda sp, w: sp.albums([w.album]),
    "shows": lambda sp, w: sp.shows([w.show]),
    "episodes": lambda sp, w: sp.episodes(w.episodes[:1]),
    "get_audiobooks": lambda sp, w: sp.get_audiobooks([w.audiobook]),
    "artist_top_tracks": lambda sp, w: sp.artist_top_tracks(w.artist),
    "artist_related_artists": lambda sp, w: sp.artist_related_artists(w.artist),
    "user": lambda sp, w: sp.user("alice"),
    "user_playlists": lambda sp, w: sp.user_playlists("alice"),
    "user_playlist_create": lambda sp, w: sp.user_playlist_create("alice", "P"),
    "current_user_unfollow_playlist": lambda sp, w: sp.current_user_unfollow_playlist(w.playlist),
    "user_playlist_unfollow": lambda sp, w: sp.user_playlist_unfollow("alice", w.playlist),
    "current_user_saved_episodes_contains": lambda sp, w: sp.current_user_saved_episodes_contains(
        w.episodes[:1]
    ),
    "featured_playlists": lambda sp, w: sp.featured_playlists(),
    "new_releases": lambda sp, w: sp.new_releases(),
    "category": lambda sp, w: sp.category("pop"),
    "categories": lambda sp, w: sp.categories(),
    "category_playlists": lambda sp, w: sp.category_playlists("pop"),
    "recommendations": lambda sp, w: sp.recommendations(seed_tracks=w.tracks[:1]),
    "recommendation_genre_seeds": lambda sp, w: sp.recommendation_genre_seeds(),
    "audio_analysis": lambda sp, w: sp.audio_analysis(w.tracks[0]),
    "audio_features": lambda sp, w: sp.audio_features(w.tracks[:1]),
    "available_markets": lambda sp, w: sp.available_markets(),
}

# Where spotipy itself is wrong: what it sends is not a current operation of the description.
SPOTIPY_WRONG: dict[str, str] = {
    "user_follow_artists": "sends artist URIs to PUT /me/library, whose `uris` takes no artists "
    "(the description lists track, album, episode, show, audiobook, user, playlist): 400",
    "user_unfollow_artists": "sends artist URIs to DELETE /me/library, which takes no artists: 400",
    "playlist_is_following": "crashes before sending: its warnings.warn() passes half its "
    "message as the warning category (TypeError); it would send the deprecated "
    "GET /playlists/{playlist_id}/followers/contains",
    "user_playlist_is_following": "calls playlist_is_following (see there)",
    "user_playlist_remove_specific_occurrences_of_tracks": "sends DELETE "
    "/users/{user_id}/playlists/{playlist_id}/tracks, which is not in the description at all",
}
NOT_REQUESTS = {"set_auth"}  # sets the token; sends nothing


def _eq(got: Any, wanted: Any) -> None:
    assert got == wanted


def _then(result: Any, check: Callable[[], bool]) -> None:
    assert check(), result


def _public_methods() -> set[str]:
    return {n for n, _ in inspect.getmembers(Sp, inspect.isfunction) if not n.startswith("_")}


def _operation_of(method: str, path: str) -> tuple[str, bool] | None:
    """The description's operation a request hit, as (template, deprecated)."""
    trimmed = path.removeprefix("/v1").rstrip("/") or "/"
    for op in operations():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", op.path) + "$"
        if op.method == method and re.match(pattern, trimmed):
            return op.path, op.deprecated
    return None


@pytest.fixture
def client(world: World, client_for: Callable[..., Sp]) -> Sp:
    return client_for(scopes=ALL_SCOPES)


def test_every_public_method_is_in_one_list() -> None:
    lists = [set(DRIVEN), set(DEPRECATED), set(SPOTIPY_WRONG), NOT_REQUESTS]
    assert sum(len(s) for s in lists) == len(set().union(*lists)), "a method is in two lists"
    assert set().union(*lists) == _public_methods()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(DRIVEN))
def test_driven_methods_pass(name: str, world: World, client: Sp) -> None:
    require_spec()
    world.fake.clear_requests()
    DRIVEN[name](client, world)
    sent = world.fake.requests
    assert sent, f"{name} sent nothing"
    for request in sent:
        hit = _operation_of(request.method, request.path)
        assert hit is not None, f"{name}: {request.method} {request.path} is not in the spec"
        assert not hit[1], f"{name}: {request.method} {hit[0]} is deprecated"
        assert request.status < 400, (name, request)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(DEPRECATED))
def test_deprecated_methods_are_refused(name: str, world: World, client: Sp) -> None:
    require_spec()
    world.fake.clear_requests()
    with pytest.raises(SpotifyException) as err:
        DEPRECATED[name](client, world)
    assert err.value.http_status == 403
    (request,) = world.fake.requests
    hit = _operation_of(request.method, request.path)
    assert hit is not None, f"{name}: {request.method} {request.path} is not in the spec"
    assert hit[1], f"{name}: {request.method} {hit[0]} is not deprecated"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_where_spotipy_is_wrong_the_fake_says_so(world: World, client: Sp) -> None:
    with pytest.raises(SpotifyException) as err:
        client.user_follow_artists([world.artist])
    assert (err.value.http_status, err.value.msg.split("\n ")[-1]) == (
        400,
        "Unsupported URI type: artist",
    )
    with pytest.raises(SpotifyException) as err:
        client.user_unfollow_artists([world.artist])
    assert err.value.http_status == 400
    with pytest.raises(SpotifyException) as err:
        client.user_playlist_remove_specific_occurrences_of_tracks(
            "alice", world.playlist, [{"uri": world.tracks[0], "positions": [0]}]
        )
    assert err.value.http_status == 404
    assert world.fake.playlist_uris(world.playlist)[0] == world.tracks[0]
    with pytest.raises(TypeError):
        client.playlist_is_following(world.playlist, ["alice"])
