"""The fake beyond playlists: library, covers, the player, search, scopes, client credentials,
faults, paging links, `fields` exclusions and many connections at once."""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Callable

import pytest
import requests
import spotipy
from fake_world import JPEG, World
from spotipy.exceptions import SpotifyException

from runner.testing import FakeSpotify, Fault, ManualClock
from runner.testing.clients import app_client, app_credentials
from runner.testing.fake.server import retry_after_header
from runner.testing.harness import ALL_SCOPES

ClientFactory = Callable[..., spotipy.Spotify]


def _error(call: Callable[[], object]) -> tuple[int, str, str | None]:
    with pytest.raises(SpotifyException) as err:
        call()
    return err.value.http_status, err.value.msg.split("\n ", 1)[1], err.value.reason


def _api(world: World, http: requests.Session, method: str, path: str, **kw: object):
    headers = {"Authorization": f"Bearer {world.token}"}
    return http.request(method, world.fake.api_url + path, headers=headers, timeout=10, **kw)


# -- /me/library ----------------------------------------------------------------------------


def test_library_saves_every_kind_and_answers_contains(world: World, client_for: ClientFactory):
    fake = world.fake
    sp = client_for(scopes=ALL_SCOPES)
    bobs = f"spotify:playlist:{fake.add_playlist('bob', public=True)}"
    uris = [world.tracks[3], fake.add_album("Other"), world.episodes[0], bobs, "spotify:user:bob"]
    sp._put("me/library", uris=",".join(uris))
    # (spotipy's current_user_saved_items drops user URIs, so ask directly)
    contains = sp._get("me/library/contains", uris=",".join([*uris, world.tracks[4]]))
    assert contains == [True] * 5 + [False]
    assert fake.library_uris("alice", "track")[0] == world.tracks[3]
    assert fake.user_playlist_ids("alice")[0] == bobs.rsplit(":", 1)[1]
    sp._delete("me/library", uris=",".join(uris))
    assert sp._get("me/library/contains", uris=",".join(uris)) == [False] * 5


def test_library_limits_and_errors(world: World, client_for: ClientFactory):
    sp = client_for(scopes=ALL_SCOPES)
    many = world.fake.make_tracks(41, seed=7)
    assert _error(lambda: sp._put("me/library", uris=",".join(many)))[:2] == (
        400,
        "Too many ids requested",
    )
    sp._put("me/library", uris=",".join(many[:40]))  # 40 is the maximum
    assert _error(lambda: sp._put("me/library", uris="spotify:track:nope"))[0] == 400
    assert _error(lambda: sp._put("me/library", uris=world.artist))[1] == (
        "Unsupported URI type: artist"
    )
    missing = "spotify:album:" + "0" * 22
    assert _error(lambda: sp._put("me/library", uris=missing))[1] == (
        "Payload contains a non-existing ID"
    )
    assert _error(lambda: sp._get("me/library/contains"))[0] == 400
    world.fake.add_user("bob.smith", "Bob S")  # user ids need not be base62
    sp._put("me/library", uris="spotify:user:bob.smith")  # spotipy itself refuses such ids
    assert world.fake.in_library("alice", "spotify:user:bob.smith")
    assert _error(lambda: sp._put("me/library", uris="spotify:album:not.base62"))[0] == 400


def test_library_scopes_follow_the_uri_type(world: World, client_for: ClientFactory):
    sp = client_for(scopes=("user-library-modify",))
    sp.current_user_saved_tracks_add([world.tracks[4]])  # the library scope saves tracks
    follow = f"spotify:playlist:{world.fake.add_playlist('bob', public=True)}"
    assert _error(lambda: sp._put("me/library", uris=follow))[:2] == (
        403,
        "Insufficient client scope",
    )
    assert _error(lambda: sp.user_follow_users(["bob"]))[0] == 403  # needs user-follow-modify
    reader = client_for(scopes=("user-follow-read",))
    assert reader.current_user_following_artists([world.artist]) == [True]
    assert _error(lambda: reader.current_user_saved_tracks_contains(world.tracks[:1]))[0] == 403


def test_saved_lists_page_newest_first(world: World, sp: spotipy.Spotify, clock: ManualClock):
    fake = world.fake
    albums = []
    for n in range(3):
        clock.advance(10)
        albums.append(fake.add_album(f"Album {n}"))
        fake.save_to_library("alice", [albums[-1]])
    page = sp.current_user_saved_albums(limit=2)
    assert [i["album"]["uri"] for i in page["items"]] == [albums[2], albums[1]]
    assert [i["album"]["uri"] for i in sp.next(page)["items"]] == [albums[0], world.album]
    assert page["total"] == 4


def test_followed_artists_page_by_cursor(world: World, client_for: ClientFactory):
    fake = world.fake
    artists = [fake.add_artist(f"Band {n}") for n in range(3)]
    fake.save_to_library("alice", artists)
    sp = client_for(scopes=("user-follow-read",))
    first = sp.current_user_followed_artists(limit=2)["artists"]
    assert [a["uri"] for a in first["items"]] == [artists[2], artists[1]]
    assert first["cursors"]["after"] == artists[1].rsplit(":", 1)[1]
    rest = sp.next(first)["artists"]
    assert [a["uri"] for a in rest["items"]] == [artists[0], world.artist]
    assert rest["next"] is None
    assert _error(lambda: sp._get("me/following", type="user"))[0] == 400


def test_each_user_has_their_own_library_and_player(world: World, client_for: ClientFactory):
    bob = client_for(user="bob", scopes=ALL_SCOPES)
    assert bob.current_user_saved_albums()["total"] == 0
    bob.current_user_saved_albums_add([world.album])
    assert world.fake.library_uris("bob", "album") == [world.album]
    assert world.fake.library_uris("alice", "album") == [world.album]  # alice's, saved before
    bob.current_user_saved_albums_delete([world.album])
    assert world.fake.in_library("alice", world.album)
    assert bob.current_playback() is None  # alice's playback is hers
    assert _error(bob.next_track)[2] == "NO_ACTIVE_DEVICE"


# -- covers ---------------------------------------------------------------------------------


def test_cover_upload_is_served_back(world: World, sp: spotipy.Spotify, http: requests.Session):
    fake = world.fake
    pid = fake.add_playlist(name="Fresh")
    assert sp.playlist_cover_image(pid) == []
    uploader = spotipy.Spotify(auth=fake.issue_access_token(scopes=ALL_SCOPES))
    uploader.prefix = fake.api_url + "/"
    other = JPEG[:-2] + b"\x00\xff\xd9"
    uploader.playlist_upload_cover_image(pid, base64.b64encode(other))
    (image,) = sp.playlist_cover_image(pid)
    assert http.get(image["url"], timeout=10).content == other
    assert sp.playlist(pid)["images"] == [image]


def test_cover_limits_and_scopes(world: World, client_for: ClientFactory):
    pid = world.playlist
    sp = client_for(scopes=ALL_SCOPES)
    big = base64.b64encode(JPEG + b"\x00" * (200 * 1024))  # 256 KB and a bit, once encoded
    assert len(big) > 256 * 1024
    assert _error(lambda: sp.playlist_upload_cover_image(pid, big))[0] == 413
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    assert _error(lambda: sp.playlist_upload_cover_image(pid, png))[:2] == (
        400,
        "Image must be a JPEG",
    )
    no_upload = client_for(scopes=("playlist-modify-private",))
    assert _error(lambda: no_upload.playlist_upload_cover_image(pid, base64.b64encode(JPEG)))[
        :2
    ] == (403, "Insufficient client scope")
    bob = client_for(user="bob", scopes=ALL_SCOPES)
    assert _error(lambda: bob.playlist_upload_cover_image(pid, base64.b64encode(JPEG)))[0] == 403
    assert world.fake.playlist_cover(pid) == JPEG


# -- the player -----------------------------------------------------------------------------


def test_no_active_device_is_404(fake: FakeSpotify, client_for: ClientFactory):
    sp = client_for(scopes=ALL_SCOPES)
    assert sp.current_playback() is None  # 204: nothing plays
    status, message, reason = _error(sp.pause_playback)
    assert (status, message, reason) == (
        404,
        "Player command failed: No active device found",
        "NO_ACTIVE_DEVICE",
    )
    device = fake.add_device("alice", "Phone", "Smartphone")
    assert _error(sp.next_track)[2] == "NO_ACTIVE_DEVICE"  # present but not active
    assert _error(lambda: sp.start_playback(device_id="nope", uris=fake.make_tracks(1)))[0] == 404
    sp.start_playback(device_id=device, uris=fake.make_tracks(2))
    assert fake.playback()["device"] == device
    assert fake.playback()["is_playing"]


def test_playback_moves_with_the_clock(world: World, client_for: ClientFactory, clock: ManualClock):
    sp = client_for(scopes=ALL_SCOPES)
    clock.advance(12.5)
    assert sp.current_playback()["progress_ms"] == 12_500
    sp.pause_playback()
    clock.advance(30)
    assert sp.current_playback()["progress_ms"] == 12_500
    assert _error(sp.pause_playback)[0] == 403  # already paused
    sp.start_playback()  # resumes
    clock.advance(1)
    assert world.fake.playback()["progress_ms"] == 13_500


def test_next_previous_repeat_seek_and_queue(world: World, client_for: ClientFactory):
    fake, (first, second) = world.fake, world.album_tracks
    sp = client_for(scopes=ALL_SCOPES)
    sp.add_to_queue(world.episodes[0])
    assert [i["uri"] for i in sp.queue()["queue"]] == [world.episodes[0], second]
    sp.next_track()
    assert fake.playback()["item"] == world.episodes[0]  # the queue goes first
    sp.next_track()
    assert fake.playback()["item"] == second
    sp.next_track()  # the end of the album, repeat off: playback stops there
    assert not fake.playback()["is_playing"]
    sp.repeat("context")
    sp.start_playback()
    sp.next_track()
    assert fake.playback()["item"] == first  # wrapped
    sp.seek_track(10_000)
    sp.previous_track()  # past the first seconds: restarts the track
    assert (fake.playback()["item"], fake.playback()["progress_ms"]) == (first, 0)
    sp.seek_track(10 * 60 * 1000)  # past its end: on to the next
    assert fake.playback()["item"] == world.episodes[0]
    assert _error(lambda: sp._put("me/player/repeat?state=sometimes"))[0] == 400


def test_volume_transfer_shuffle_and_premium(world: World, client_for: ClientFactory):
    fake = world.fake
    sp = client_for(scopes=ALL_SCOPES)
    speaker = fake.add_device("alice", "Old radio", volume_percent=None, supports_volume=False)
    sp.transfer_playback(speaker, force_play=False)
    assert fake.playback()["device"] == speaker
    status, _, reason = _error(lambda: sp.volume(30))
    assert (status, reason) == (403, "VOLUME_CONTROL_DISALLOW")
    assert _error(lambda: sp._put("me/player/volume?volume_percent=101"))[0] == 400
    assert (
        _error(lambda: sp._put("me/player", payload={"device_ids": [speaker, world.device]}))[0]
        == 400
    )
    sp.shuffle(True)
    assert fake.playback()["shuffle"] is True
    fake.add_user("alice", "Alice", product="free")
    assert _error(sp.next_track)[2] == "PREMIUM_REQUIRED"
    assert sp.devices()["devices"][0]["id"] == world.device  # reading needs no Premium


def test_player_scopes(world: World, client_for: ClientFactory):
    reader = client_for(scopes=("user-read-playback-state",))
    assert reader.current_playback()["item"]["uri"] == world.album_tracks[0]
    assert _error(reader.pause_playback)[:2] == (403, "Insufficient client scope")
    assert _error(reader.currently_playing)[0] == 403  # needs user-read-currently-playing
    assert reader.queue()["currently_playing"]["uri"] == world.album_tracks[0]


def test_an_episode_plays_only_for_clients_that_take_episodes(
    world: World, client_for: ClientFactory
):
    sp = client_for(scopes=ALL_SCOPES)
    sp.start_playback(uris=[world.episodes[0]])
    assert sp.currently_playing()["item"] is None
    assert sp.currently_playing()["currently_playing_type"] == "episode"
    playing = sp.currently_playing(additional_types="episode")
    assert playing["item"]["uri"] == world.episodes[0]


# -- search, episodes in playlists, scopes ----------------------------------------------------


def test_search_every_type(world: World, sp: spotipy.Spotify):
    kinds = "album,artist,playlist,track,show,episode,audiobook"
    everything = sp.search("blue", type=kinds)
    assert everything["albums"]["items"][0]["uri"] == world.album
    assert everything["tracks"]["items"][0]["uri"] == world.album_tracks[1]
    assert sp.search("miles", type="artist")["artists"]["items"][0]["uri"] == world.artist
    assert sp.search("night talk", type="show")["shows"]["items"][0]["uri"] == world.show
    assert sp.search("night talk", type="episode")["episodes"]["total"] == 3
    assert sp.search("writer", type="audiobook")["audiobooks"]["items"][0]["uri"] == world.audiobook
    public = world.fake.add_playlist("bob", name="Blue Monday", public=True)
    assert [p["id"] for p in sp.search("blue", type="playlist")["playlists"]["items"]] == [public]
    assert sp.search('artist:"Miles Davis"', type="album")["albums"]["total"] == 1
    assert sp.search("isrc:XX", type="album")["albums"]["total"] == 0  # isrc is for tracks
    assert _error(lambda: sp.search("blue", limit=11))[1] == "Invalid limit"
    assert _error(lambda: sp.search("blue", type="podcast"))[0] == 400


def test_episodes_live_in_playlists(world: World, sp: spotipy.Spotify):
    pid = world.fake.add_playlist()
    sp.playlist_add_items(pid, [world.episodes[2], world.tracks[0]])
    items = sp.playlist_items(pid)["items"]
    assert [i["item"]["type"] for i in items] == ["episode", "track"]
    assert items[0]["item"]["show"]["uri"] == world.show
    missing = "spotify:episode:" + "0" * 22
    assert _error(lambda: sp.playlist_add_items(pid, [missing]))[0] == 400
    sp.playlist_remove_all_occurrences_of_items(pid, [world.episodes[2]])
    assert world.fake.playlist_uris(pid) == [world.tracks[0]]


def test_me_fields_need_their_scopes(world: World, client_for: ClientFactory):
    world.fake.set_email("alice", "alice@example.org")
    bare = client_for(scopes=())
    assert {"country", "product", "email", "explicit_content"}.isdisjoint(bare.me())
    assert bare.me()["id"] == "alice"
    private = client_for(scopes=("user-read-private",)).me()
    assert (private["country"], private["product"]) == ("DE", "premium")
    assert "email" not in private
    assert client_for(scopes=("user-read-email",)).me()["email"] == "alice@example.org"


def test_public_and_private_playlists_take_their_own_modify_scope(
    fake: FakeSpotify, client_for: ClientFactory
):
    public_only = client_for(scopes=("playlist-modify-public",))
    assert public_only.current_user_playlist_create("Open")["public"] is True
    assert _error(lambda: public_only.current_user_playlist_create("Closed", public=False))[:2] == (
        403,
        "Insufficient client scope",
    )
    private_only = client_for(scopes=("playlist-modify-private", "playlist-read-private"))
    private = private_only.current_user_playlist_create("Closed", public=False)["id"]
    private_only.playlist_add_items(private, fake.make_tracks(1))
    public = fake.add_playlist(public=True)
    assert _error(lambda: private_only.playlist_add_items(public, fake.make_tracks(1)))[0] == 403
    assert _error(lambda: private_only.playlist_change_details(private, public=True))[0] == 403


# -- client credentials -------------------------------------------------------------------------


def test_client_credentials_read_the_catalog_only(world: World, http: requests.Session):
    fake = world.fake
    app = app_client(fake, http)
    assert app.album(world.album)["name"] == "Kind of Blue"
    assert app.search("blue", type="track")["tracks"]["total"] >= 1
    status, message, _ = _error(app.me)
    assert (status, message) == (401, "This request requires user authentication.")
    assert _error(app.current_user_saved_tracks)[0] == 401
    with pytest.raises(spotipy.SpotifyOauthError):
        app_credentials(fake, client_secret="wrong").get_access_token(as_dict=False)


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "header"),
    [
        (Fault(status=429), "1"),
        (Fault(status=429, retry_after=0.2), "1"),
        (Fault(status=429, retry_after=1.5), "2"),
        (Fault(status=429, retry_after=3600), "3600"),
        (Fault(status=429, reason="QUOTA_EXCEEDED"), None),
        (Fault(status=429, reason="QUOTA_EXCEEDED", retry_after=30), "30"),
        (Fault(status=429, send_retry_after=False), None),
        (Fault(status=503), None),
        (Fault(status=503, retry_after=2.01), "3"),
    ],
)
def test_retry_after_rounds_up_and_quota_sends_none(
    fake: FakeSpotify, http: requests.Session, fault: Fault, header: str | None
):
    assert retry_after_header(fault) == header
    fake.inject(fault)
    answer = http.get(fake.api_url + "/me", timeout=10)
    assert answer.status_code == fault.status
    assert answer.headers.get("Retry-After") == header
    if fault.reason:
        assert answer.json()["error"]["reason"] == fault.reason


# -- paging links and fields ------------------------------------------------------------------


def test_next_links_keep_fields_market_and_additional_types(world: World, sp: spotipy.Spotify):
    pid = world.fake.add_playlist(uris=[*world.fake.make_tracks(3), world.episodes[0]])
    page = sp.playlist_items(
        pid, limit=2, fields="items(item(uri)),next,previous", market="DE",
        additional_types=("track", "episode"),
    )  # fmt: skip
    nxt = sp.next(page)
    assert nxt["items"][1] == {"item": {"uri": world.episodes[0]}}
    assert set(nxt) == {"items", "next", "previous"}
    for link in (page["next"], nxt["previous"]):
        assert "market=DE" in link
        assert "additional_types=track%2Cepisode" in link
        assert "fields=" in link
    albums = sp.search("blue", type="album", market="DE", limit=1)
    assert albums["albums"]["href"].count("market=DE") == 1


def test_fields_exclusion_as_the_spec_example(world: World, sp: spotipy.Spotify):
    got = sp.playlist(world.playlist, fields="items.items.item.album(!external_urls,images)")
    album = got["items"]["items"][0]["item"]["album"]
    assert {"external_urls", "images"}.isdisjoint(album)
    assert {"name", "uri", "artists"} <= set(album)
    items = sp.playlist_items(world.playlist, fields="items.item.album(!external_urls,images)")
    assert set(items["items"][0]["item"]["album"]) == set(album)
    names = sp.playlist_items(world.playlist, fields="items(item(name,album(!name,href)))")
    first = names["items"][0]["item"]
    assert set(first) == {"name", "album"}
    assert {"name", "href"}.isdisjoint(first["album"])
    assert "uri" in first["album"]


# -- load -------------------------------------------------------------------------------------


def test_a_hundred_clients_on_new_connections_are_all_answered(world: World):
    host, port = "127.0.0.1", int(world.fake.base_url.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {world.token}", "Connection": "close"}
    start = threading.Barrier(100)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def client() -> None:
        # http.client, not requests: little work between the barrier and connect(), so the
        # hundred handshakes really arrive together (as they overflowed a backlog of 5).
        connection = http.client.HTTPConnection(host, port, timeout=60)
        start.wait()
        try:
            connection.request("GET", "/v1/me", headers=headers)
            answer = connection.getresponse()
            answer.read()
            status: int | str = answer.status
        except OSError as exc:  # a reset or a handshake never accepted lands here
            status = type(exc).__name__
        finally:
            connection.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 100
