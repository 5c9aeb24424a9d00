"""The fake Web API, driven by spotipy 2.26 over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests
import spotipy
from spotipy.exceptions import SpotifyException

from runner.testing import FakeSpotify, Fault, ManualClock

ClientFactory = Callable[..., spotipy.Spotify]


def _error(call: Callable[[], object]) -> SpotifyException:
    with pytest.raises(SpotifyException) as err:
        call()
    return err.value


def _message(exc: SpotifyException) -> str:
    # spotipy puts "<url>:\n <message>" in msg
    return exc.msg.split("\n ", 1)[1]


# -- playlists -----------------------------------------------------------------------------


def test_pages_a_thousand_track_playlist_in_order(fake: FakeSpotify, sp: spotipy.Spotify):
    uris = fake.make_tracks(1000)
    pid = fake.add_playlist(name="Big", uris=uris)
    fake.clear_requests()
    page = sp.playlist_items(pid)
    seen = []
    while page:
        seen.extend(item["item"]["uri"] for item in page["items"])
        assert all(item["track"] == item["item"] for item in page["items"])
        page = sp.next(page)
    assert seen == uris
    assert fake.count("GET", r"/items$") == 20
    assert all(r.query["limit"] == "50" for r in fake.requests)


def test_item_object_shape(fake: FakeSpotify, sp: spotipy.Spotify, clock: ManualClock):
    uri = fake.add_track("Song", artists=["A", "B"], album="Al", isrc="QZABC2600001")
    pid = fake.add_playlist(uris=[uri])
    item = sp.playlist_items(pid)["items"][0]
    assert item["added_at"] == "2026-09-21T14:13:20Z"
    assert item["added_by"]["id"] == "alice"
    assert item["is_local"] is False
    track = item["item"]
    assert track["uri"] == uri
    assert [a["name"] for a in track["artists"]] == ["A", "B"]
    assert track["album"]["name"] == "Al"
    assert track["external_ids"] == {"isrc": "QZABC2600001"}
    assert fake.track(uri) == track


def test_add_with_position_replace_reorder_remove(fake: FakeSpotify, sp: spotipy.Spotify):
    a, b, c, d = fake.make_tracks(4)
    pid = sp.current_user_playlist_create("Mix", public=False)["id"]
    snapshots = [fake.playlist_snapshot(pid)]

    def step(result: dict[str, str]) -> None:
        assert result["snapshot_id"] == fake.playlist_snapshot(pid)
        assert result["snapshot_id"] not in snapshots
        snapshots.append(result["snapshot_id"])

    step(sp.playlist_add_items(pid, [a, b, a]))
    step(sp.playlist_add_items(pid, [c], position=1))
    assert fake.playlist_uris(pid) == [a, c, b, a]
    step(sp.playlist_reorder_items(pid, range_start=0, insert_before=4))
    assert fake.playlist_uris(pid) == [c, b, a, a]
    step(sp.playlist_reorder_items(pid, range_start=2, range_length=2, insert_before=0))
    assert fake.playlist_uris(pid) == [a, a, c, b]
    step(sp.playlist_remove_all_occurrences_of_items(pid, [a]))
    assert fake.playlist_uris(pid) == [c, b]
    step(sp.playlist_replace_items(pid, [d, d, a]))
    assert fake.playlist_uris(pid) == [d, d, a]
    step(sp.playlist_remove_all_occurrences_of_items(pid, [d], snapshot_id=snapshots[-1]))
    assert fake.playlist_uris(pid) == [a]
    step(sp.playlist_replace_items(pid, []))
    assert fake.playlist_uris(pid) == []


def test_delete_removes_every_occurrence(fake: FakeSpotify, sp: spotipy.Spotify):
    a, b = fake.make_tracks(2)
    pid = fake.add_playlist(uris=[a, b, a, a, b, a])
    sp.playlist_remove_all_occurrences_of_items(pid, [a])
    assert fake.playlist_uris(pid) == [b, b]
    delete = fake.requests[-1]
    assert delete.method == "DELETE"
    assert delete.body == {"items": [{"uri": a}]}


def test_reads_do_not_change_snapshot(fake: FakeSpotify, sp: spotipy.Spotify):
    pid = fake.add_playlist(uris=fake.make_tracks(3))
    before = fake.playlist_snapshot(pid)
    assert sp.playlist(pid, fields="snapshot_id") == {"snapshot_id": before}
    sp.playlist_items(pid)
    sp.current_user_playlists()
    assert fake.playlist_snapshot(pid) == before


def test_fields_filter(fake: FakeSpotify, sp: spotipy.Spotify):
    uris = fake.make_tracks(2)
    pid = fake.add_playlist(name="F", uris=uris)
    got = sp.playlist(pid, fields="name,items.total,items.items(item(uri))")
    assert got == {
        "name": "F",
        "items": {"total": 2, "items": [{"item": {"uri": u}} for u in uris]},
    }
    assert sp.playlist_items(pid, fields="total,limit") == {"total": 2, "limit": 50}


def test_change_details(fake: FakeSpotify, sp: spotipy.Spotify):
    pid = fake.add_playlist(name="Old")
    before = fake.playlist_snapshot(pid)
    sp.playlist_change_details(pid, name="New", description="d")
    assert fake.playlist_details(pid)["name"] == "New"
    assert fake.playlist_details(pid)["description"] == "d"
    assert fake.playlist_snapshot(pid) != before


def test_me_playlists_and_create(fake: FakeSpotify, sp: spotipy.Spotify):
    first = fake.add_playlist(name="One")
    created = sp.current_user_playlist_create("Two", public=False, description="x")
    assert created["owner"]["id"] == "alice"
    assert created["public"] is False
    assert created["items"]["total"] == 0
    listed = sp.current_user_playlists(limit=1)
    assert [p["name"] for p in listed["items"]] == ["Two"]
    assert listed["total"] == 2
    assert listed["items"][0]["tracks"] == listed["items"][0]["items"]
    assert [p["id"] for p in sp.next(listed)["items"]] == [first]


def test_private_playlists_need_read_scope(fake: FakeSpotify, client_for: ClientFactory):
    fake.add_playlist(name="Secret")
    public = fake.add_playlist(name="Open", public=True)
    sp = client_for(scopes=("playlist-modify-private",))
    assert [p["id"] for p in sp.current_user_playlists()["items"]] == [public]
    secret = fake.user_playlist_ids()[1]
    exc = _error(lambda: sp.playlist(secret))
    assert (exc.http_status, _message(exc)) == (403, "Insufficient client scope")


def test_writes_need_modify_scope(fake: FakeSpotify, client_for: ClientFactory):
    pid = fake.add_playlist()
    sp = client_for(scopes=("playlist-read-private",))
    exc = _error(lambda: sp.playlist_add_items(pid, fake.make_tracks(1)))
    assert (exc.http_status, _message(exc)) == (403, "Insufficient client scope")


def test_someone_elses_playlist_is_forbidden(fake: FakeSpotify, sp: spotipy.Spotify):
    fake.add_user("bob", "Bob")
    pid = fake.add_playlist(owner="bob", name="Bob's", public=True, uris=fake.make_tracks(2))
    assert "items" not in sp.playlist(pid)  # only owners and collaborators see items
    for call in (
        lambda: sp.playlist_items(pid),
        lambda: sp.playlist_add_items(pid, fake.make_tracks(1)),
        lambda: sp.playlist_remove_all_occurrences_of_items(pid, fake.make_tracks(1)),
    ):
        exc = _error(call)
        assert exc.http_status == 403
    fake.add_collaborator(pid, "alice")
    sp.playlist_add_items(pid, fake.make_tracks(1, seed=9))
    assert len(sp.playlist_items(pid)["items"]) == 3


def test_deleted_and_algorithmic_playlists_are_404(fake: FakeSpotify, sp: spotipy.Spotify):
    gone = fake.add_playlist()
    fake.delete_playlist(gone)
    weekly = fake.add_algorithmic_playlist()
    for pid in (gone, weekly, "0000000000000000000000"):
        exc = _error(lambda pid=pid: sp.playlist_items(pid))
        assert (exc.http_status, _message(exc)) == (404, "Resource not found")
        assert _error(lambda pid=pid: sp.playlist(pid)).http_status == 404
    assert fake.user_playlist_ids() == []


def test_deprecated_tracks_path_is_403(fake: FakeSpotify, sp: spotipy.Spotify):
    pid = fake.add_playlist(uris=fake.make_tracks(1))
    for method in ("GET", "POST", "PUT", "DELETE"):
        exc = _error(lambda m=method: sp._internal_call(m, f"playlists/{pid}/tracks", None, {}))
        assert (exc.http_status, _message(exc)) == (403, "Forbidden")


# -- limits ----------------------------------------------------------------------------------


def test_limits(fake: FakeSpotify, sp: spotipy.Spotify):
    many = fake.make_tracks(101)
    pid = fake.add_playlist(uris=many[:3])
    cases = [
        (lambda: sp.playlist_add_items(pid, many), "Too many ids requested"),
        (lambda: sp.playlist_replace_items(pid, many), "Too many ids requested"),
        (lambda: sp.playlist_remove_all_occurrences_of_items(pid, many), "Too many ids requested"),
        (lambda: sp.playlist_items(pid, limit=51), "Invalid limit"),
        (lambda: sp.playlist_items(pid, limit=0), "Invalid limit"),
        (lambda: sp.current_user_playlists(limit=51), "Invalid limit"),
        (lambda: sp.current_user_saved_tracks(limit=51), "Invalid limit"),
        (lambda: sp.current_user_recently_played(limit=51), "Invalid limit"),
        (lambda: sp.current_user_top_tracks(limit=51), "Invalid limit"),
        (lambda: sp.search("x", limit=11), "Invalid limit"),
        (lambda: sp.search("x", offset=1001), "Invalid offset"),
        (lambda: sp.playlist_add_items(pid, many[:1], position=4), "Index out of bounds"),
        (lambda: sp.playlist_reorder_items(pid, 2, 0, range_length=2), "Index out of bounds"),
    ]
    before = fake.playlist_snapshot(pid)
    for call, message in cases:
        exc = _error(call)
        assert (exc.http_status, _message(exc)) == (400, message)
    assert fake.playlist_uris(pid) == many[:3]
    assert fake.playlist_snapshot(pid) == before
    body = requests.get(
        f"{fake.api_url}/playlists/{pid}/items",
        params={"limit": 51},
        headers={"Authorization": f"Bearer {fake.requests[-1].token}"},
    ).json()
    assert body == {"error": {"status": 400, "message": "Invalid limit"}}


def test_replace_and_reorder_together_is_400(fake: FakeSpotify, sp: spotipy.Spotify):
    uris = fake.make_tracks(2)
    pid = fake.add_playlist(uris=uris)
    exc = _error(
        lambda: sp._put(
            f"playlists/{pid}/items", payload={"uris": uris, "range_start": 0, "insert_before": 2}
        )
    )
    assert exc.http_status == 400


def test_unknown_track_uri_is_rejected(fake: FakeSpotify, sp: spotipy.Spotify):
    pid = fake.add_playlist()
    assert _error(lambda: sp.playlist_add_items(pid, ["spotify:track:bad"])).http_status == 400
    exc = _error(lambda: sp.playlist_add_items(pid, ["spotify:track:" + "0" * 22]))
    assert exc.http_status == 400


def test_add_with_query_uris_and_object_body(fake: FakeSpotify, sp: spotipy.Spotify):
    a, b, c = fake.make_tracks(3)
    pid = fake.add_playlist(uris=[a])
    sp._post(f"playlists/{pid}/items", uris=f"{b},{c}")
    sp._post(f"playlists/{pid}/items", payload={"uris": [c], "position": 0})
    assert fake.playlist_uris(pid) == [c, a, b, c]


# -- auth on the API -------------------------------------------------------------------------


def test_missing_unknown_and_expired_tokens(
    fake: FakeSpotify, http: requests.Session, clock: ManualClock
):
    url = fake.api_url + "/me"
    assert http.get(url).json() == {"error": {"status": 401, "message": "No token provided"}}
    bad = http.get(url, headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()["error"]["message"]) == (401, "Invalid access token")
    token = fake.issue_access_token(lifetime=60)
    clock.advance(60)
    expired = http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}


def test_expired_token_through_spotipy(
    fake: FakeSpotify, client_for: ClientFactory, clock: ManualClock
):
    sp = client_for(token=fake.issue_access_token(lifetime=3600))
    assert sp.me()["id"] == "alice"
    clock.advance(3600)
    exc = _error(sp.me)
    assert (exc.http_status, _message(exc)) == (401, "The access token expired")


def test_unknown_route(fake: FakeSpotify, sp: spotipy.Spotify):
    exc = _error(lambda: sp._get("no-such-endpoint"))
    assert (exc.http_status, _message(exc)) == (404, "Service not found")


# -- library, history, search, tracks ----------------------------------------------------------


def test_saved_tracks_newest_first(fake: FakeSpotify, sp: spotipy.Spotify, clock: ManualClock):
    a, b, c = fake.make_tracks(3)
    fake.save_tracks("alice", [a], added_at=clock.now - 300)
    fake.save_tracks("alice", [b, c])
    page = sp.current_user_saved_tracks(limit=2)
    assert [i["track"]["uri"] for i in page["items"]] == [c, b]
    assert page["total"] == 3
    rest = sp.next(page)
    assert [i["track"]["uri"] for i in rest["items"]] == [a]
    assert rest["items"][0]["added_at"] == "2026-09-21T14:08:20Z"


def test_recently_played_with_cursors(fake: FakeSpotify, sp: spotipy.Spotify, clock: ManualClock):
    uris = fake.make_tracks(5)
    for minutes, uri in enumerate(uris):
        fake.add_play("alice", uri, played_at=clock.now - 3600 + minutes * 60)
    page = sp.current_user_recently_played(limit=2)
    assert [i["track"]["uri"] for i in page["items"]] == [uris[4], uris[3]]
    assert page["items"][0]["played_at"] == "2026-09-21T13:17:20.000Z"
    assert page["cursors"]["before"] == str(int((clock.now - 3600 + 180) * 1000))
    older = sp.next(page)
    assert [i["track"]["uri"] for i in older["items"]] == [uris[2], uris[1]]
    after_ms = int((clock.now - 3600 + 60) * 1000)
    newer = sp.current_user_recently_played(limit=50, after=after_ms)
    assert [i["track"]["uri"] for i in newer["items"]] == [uris[4], uris[3], uris[2]]


def test_top_tracks(fake: FakeSpotify, sp: spotipy.Spotify):
    uris = fake.make_tracks(3)
    fake.set_top_tracks("alice", "short_term", uris)
    got = sp.current_user_top_tracks(time_range="short_term", limit=2)
    assert [t["uri"] for t in got["items"]] == uris[:2]
    assert [t["uri"] for t in sp.next(got)["items"]] == uris[2:]
    assert sp.current_user_top_tracks(time_range="long_term")["items"] == []


def test_library_scopes(fake: FakeSpotify, client_for: ClientFactory):
    sp = client_for(scopes=("playlist-read-private",))
    for call in (
        sp.current_user_saved_tracks,
        sp.current_user_recently_played,
        sp.current_user_top_tracks,
    ):
        exc = _error(call)
        assert (exc.http_status, _message(exc)) == (403, "Insufficient client scope")


def test_search(fake: FakeSpotify, sp: spotipy.Spotify):
    wanted = fake.add_track("Blue in Green", artists=["Miles Davis"], album="Kind of Blue")
    other = fake.add_track("Green Onions", artists=["Booker T"])
    fake.add_track("So What", artists=["Miles Davis"])
    fake.make_tracks(30)
    assert [t["uri"] for t in sp.search("blue in green")["tracks"]["items"]] == [wanted]
    by_artist = sp.search('artist:"Miles Davis" track:green')["tracks"]["items"]
    assert [t["uri"] for t in by_artist] == [wanted]
    greens = sp.search("green", limit=10)["tracks"]
    assert {wanted, other} <= {t["uri"] for t in greens["items"]}
    assert sp.search("Beyoncé nowhere")["tracks"]["total"] == 0
    assert sp.search("green")["tracks"] == greens  # deterministic


def test_search_pages(fake: FakeSpotify, sp: spotipy.Spotify):
    for i in range(25):
        fake.add_track(f"Song {i}")
    page = sp.search("song", limit=10)
    assert page["tracks"]["total"] == 25
    assert page["tracks"]["next"] is not None
    nxt = sp.next(page["tracks"])
    assert nxt["tracks"]["offset"] == 10


def test_get_track(fake: FakeSpotify, sp: spotipy.Spotify):
    uri = fake.make_tracks(1)[0]
    assert sp.track(uri)["uri"] == uri
    assert _error(lambda: sp.track("0" * 22)).http_status == 404
    exc = _error(lambda: sp._get("tracks/not-an-id"))
    assert (exc.http_status, _message(exc)) == (400, "invalid id")


def test_make_tracks_is_deterministic(fake: FakeSpotify):
    first = fake.make_tracks(50, seed=3)
    assert fake.make_tracks(50, seed=3) == first
    assert len(set(first)) == 50
    assert set(first).isdisjoint(fake.make_tracks(50, seed=4))
    isrcs = {fake.track(u)["external_ids"]["isrc"] for u in first}
    assert len(isrcs) == 50
    with FakeSpotify() as other:
        assert other.make_tracks(50, seed=3) == first


# -- faults, latency and the log ------------------------------------------------------------


def test_429_with_retry_after_and_reason(fake: FakeSpotify, sp: spotipy.Spotify):
    fake.inject(Fault(path=r"^/v1/me$", status=429, retry_after=3600, reason="QUOTA_EXCEEDED"))
    exc = _error(sp.me)
    assert exc.http_status == 429
    assert exc.headers["Retry-After"] == "3600"
    assert exc.reason == "QUOTA_EXCEEDED"
    assert sp.me()["id"] == "alice"  # times=1


def test_5xx_fault_with_times(fake: FakeSpotify, sp: spotipy.Spotify):
    fake.inject(Fault(method="GET", path="/me", status=503, times=2))
    for _ in range(2):
        exc = _error(sp.me)
        assert (exc.http_status, _message(exc)) == (503, "Service unavailable")
    assert sp.me()["id"] == "alice"
    fake.inject(Fault(status=500, times=None))
    assert _error(sp.me).http_status == 500
    assert _error(sp.me).http_status == 500
    fake.clear_faults()
    assert sp.me()["id"] == "alice"


def test_dropped_connection(fake: FakeSpotify, sp: spotipy.Spotify):
    fake.inject(Fault(path="/me", drop=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        sp.me()
    assert fake.requests[-1].status == 0
    assert sp.me()["id"] == "alice"


def test_latency(fake: FakeSpotify, sp: spotipy.Spotify):
    fake.inject(Fault(path="/me", status=None, latency=0.2))
    started = time.monotonic()
    assert sp.me()["id"] == "alice"  # status None: answered normally, only later
    assert time.monotonic() - started >= 0.2
    fake.latency = 0.1
    started = time.monotonic()
    sp.me()
    assert time.monotonic() - started >= 0.1


def test_request_log(fake: FakeSpotify, client_for: ClientFactory, clock: ManualClock):
    token = fake.issue_access_token(scopes=("playlist-modify-private",))
    sp = client_for(token=token)
    uri = fake.make_tracks(1)[0]
    pid = fake.add_playlist()
    fake.clear_requests()
    sp.playlist_add_items(pid, [uri], position=0)
    (entry,) = fake.requests
    assert entry.method == "POST"
    assert entry.path == f"/v1/playlists/{pid}/items"
    assert entry.query == {"position": "0"}
    assert entry.body == [uri]
    assert entry.token == token
    assert entry.status == 201
    assert entry.at == clock.now
    assert token not in repr(entry)
    assert fake.writes() == [entry]
    assert fake.count("POST") == 1
    assert fake.count(path="/me$") == 0


def test_concurrent_writes(fake: FakeSpotify, client_for: ClientFactory):
    pid = fake.add_playlist()
    batches = [fake.make_tracks(20, seed=s) for s in range(4)]
    clients = [client_for() for _ in batches]
    errors: list[BaseException] = []

    def worker(sp: spotipy.Spotify, uris: list[str]) -> None:
        try:
            for uri in uris:
                sp.playlist_add_items(pid, [uri])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=a) for a in zip(clients, batches, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(fake.playlist_uris(pid)) == sorted(u for b in batches for u in b)
    assert {r.status for r in fake.requests} == {201}


# -- lifecycle --------------------------------------------------------------------------------


def test_stop_closes_idle_keepalive_connections():
    fake = FakeSpotify().start()
    session = requests.Session()
    try:
        token = fake.issue_access_token()
        response = session.get(fake.api_url + "/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        fake.stop()  # the session still holds the connection open
        assert not [t for t in threading.enumerate() if t.name.startswith("fake-spotify")]
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(fake.api_url + "/me", headers={"Authorization": f"Bearer {token}"})
    finally:
        session.close()
        fake.stop()


def test_pytest_plugin_fixtures(fake_spotify: FakeSpotify, fake_spotify_client: spotipy.Spotify):
    assert fake_spotify.base_url.startswith("http://127.0.0.1:")
    assert fake_spotify_client.me()["id"] == "alice"
    pid = fake_spotify_client.current_user_playlist_create("Fixture", public=False)["id"]
    assert fake_spotify.playlist_uris(pid) == []
