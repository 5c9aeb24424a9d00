"""The playlist updater run as the daemon runs it (JobHarness), against the embedded fake Spotify.

Every test checks the exact final playlist (content and order) or the exact requests made.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
import spotipy
import yaml

from jobs.playlist_updater.sources.feed import new_lines
from jobs.playlist_updater.sources.formats import parse_feed_line
from runner.errors import JobLoadError
from runner.state import RunStatus
from runner.testing import FakeSpotify, Fault
from runner.testing.harness import JobHarness

JOB = "playlist_updater"
REPO = Path(__file__).resolve().parents[3]


def artist_title(fake: FakeSpotify, uri: str) -> str:
    track = fake.track(uri)
    return f"{track['artists'][0]['name']} - {track['name']}"


def api_calls(fake: FakeSpotify) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.path.startswith("/v1/")]


def item_reads(fake: FakeSpotify) -> int:
    return fake.count("GET", r"/playlists/[^/]+/items$")


def write_feed(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def append_feed(path: Path, lines: list[str]) -> None:
    with path.open("a") as out:
        out.writelines(line + "\n" for line in lines)


def playlist_id(harness: JobHarness) -> str:
    return str(harness.state()["playlist"]["id"])


# -- replace ----------------------------------------------------------------------------------


def test_replace_makes_the_playlist_exactly_the_sources(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(8)
    pid = fake.add_playlist(name="Mine", uris=[uris[7], uris[0], uris[6], uris[1]])
    outcome = harness.run(
        JOB,
        {
            "playlist": f"https://open.spotify.com/playlist/{pid}?si=abc",
            "sources": [{"tracks": [uris[0], uris[1]]}, {"tracks": [uris[2], uris[3]]}],
            "mode": "replace",
        },
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris[:4]
    assert outcome.summary == "+2 -2 ~0 moved, 0 unmatched, 4 tracks"


def test_duplicates_already_in_the_playlist_are_collapsed(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    # DELETE removes every copy: a track that must stay once but is there twice is re-added.
    a, b, c = fake.make_tracks(3)
    pid = fake.add_playlist(uris=[a, b, a, c, a])
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"tracks": [a, b, c]}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [a, b, c]


def test_more_than_100_changes(fake: FakeSpotify, harness: JobHarness) -> None:
    uris = fake.make_tracks(400)
    pid = fake.add_playlist(uris=uris[:150])
    wanted = uris[300:400] + uris[50:100] + uris[150:300]
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"tracks": wanted}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == wanted
    assert outcome.summary == "+250 -100 ~0 moved, 0 unmatched, 300 tracks"
    assert len(fake.writes()) <= 3  # a full replace: PUT 100 + POST 100 + POST 100


def test_empty_source_leaves_the_playlist_untouched(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = fake.make_tracks(3)
    pid = fake.add_playlist(uris=uris)
    feed = tmp_path / "empty.txt"
    feed.write_text("# the radio's site was down\n\n")
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"file": str(feed)}}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris
    assert fake.writes() == []
    assert "playlist left as it was" in (outcome.summary or "")


def test_empty_source_empties_the_playlist_when_allowed(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    pid = fake.add_playlist(uris=fake.make_tracks(3))
    feed = tmp_path / "empty.txt"
    feed.write_text("")
    options = {"playlist": pid, "sources": [{"feed": {"file": str(feed)}}], "allow_empty": True}
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == []
    assert outcome.summary == "+0 -3 ~0 moved, 0 unmatched, 0 tracks"


# -- append -----------------------------------------------------------------------------------


def test_append_top_newest_first_with_a_rolling_window(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = fake.make_tracks(10)
    hand = uris[9]
    pid = fake.add_playlist(uris=[hand])  # added by hand: stays until trimmed
    feed = tmp_path / "plays.txt"
    options = {
        "playlist": pid,
        "sources": [{"feed": {"file": str(feed)}}],
        "mode": "append",
        "position": "top",
        "max_tracks": 4,
    }
    write_feed(feed, uris[:2])
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [uris[1], uris[0], hand]
    append_feed(feed, uris[2:5])
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [uris[4], uris[3], uris[2], uris[1]]
    assert outcome.summary == "+3 -2 ~0 moved, 0 unmatched, 4 tracks; matched 3 by id, 0 by text"


def test_append_bottom_keeps_the_order_of_the_log(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = fake.make_tracks(6)
    pid = fake.add_playlist(uris=[uris[5]])
    feed = tmp_path / "plays.txt"
    options = {
        "playlist": pid,
        "sources": [{"feed": {"file": str(feed)}}],
        "mode": "append",
        "position": "bottom",
        "max_tracks": 4,
    }
    write_feed(feed, uris[:2])
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [uris[5], uris[0], uris[1]]
    append_feed(feed, uris[2:4])
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == uris[:4]  # the oldest, at the top, trimmed first


def test_played_again_moves_to_the_top_across_runs(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    a, b, c, d = fake.make_tracks(4)
    feed = tmp_path / "plays.txt"
    options = {
        "playlist": {"name": "Radio plays"},
        "sources": [{"feed": {"file": str(feed)}}],
        "mode": "append",
        "max_tracks": 3,
        "dedupe": True,
    }
    write_feed(feed, [a, b, c])
    assert harness.run(JOB, options).status is RunStatus.OK
    pid = playlist_id(harness)
    assert fake.playlist_uris(pid) == [c, b, a]
    # `a`, the oldest, is played again: it moves to the top instead of being trimmed away.
    append_feed(feed, [a])
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [a, c, b]
    append_feed(feed, [d, c])
    outcome = harness.run(JOB, options)
    assert fake.playlist_uris(pid) == [c, d, a]
    assert outcome.summary == "+1 -1 ~1 moved, 0 unmatched, 3 tracks; matched 2 by id, 0 by text"


def test_dedupe_by_isrc_and_without_dedupe(fake: FakeSpotify, harness: JobHarness) -> None:
    one = fake.add_track("Song", ["Band"], isrc="USAAA0000001")
    again = fake.add_track("Song", ["Band"], isrc="USAAA0000001")  # the same recording reissued
    other = fake.add_track("Other", ["Band"], isrc="USAAA0000002")
    pid = fake.add_playlist()
    base = {"playlist": pid, "sources": [{"tracks": [one, other, again, other]}]}
    assert harness.run(JOB, {**base, "dedupe_by": "isrc"}).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [one, other]
    assert harness.run(JOB, {**base, "dedupe": False}).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [one, other, again, other]


def test_excludes(fake: FakeSpotify, harness: JobHarness) -> None:
    clean = fake.add_track("Clean", ["Good Band"])
    rude = fake.add_track("Rude", ["Good Band"], explicit=True)
    by_them = fake.add_track("Hit", ["The Noisy Ones"])
    banned = fake.add_track("Banned", ["Good Band"])
    listed = fake.add_track("Listed", ["Good Band"])
    keep = fake.add_track("Keep", ["Good Band"])
    elsewhere = fake.add_playlist(name="Not these", uris=[listed])
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB,
        {
            "playlist": pid,
            "sources": [{"tracks": [clean, rude, by_them, banned, listed, keep]}],
            "exclude": {
                "explicit": True,
                "artists": ["noisy ones"],
                "tracks": [banned],
                "playlists": [f"spotify:playlist:{elsewhere}"],
            },
        },
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [clean, keep]


# -- sources ----------------------------------------------------------------------------------


def test_feed_lines_of_every_kind_newest_first(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = fake.make_tracks(5)
    ids = [uri.rsplit(":", 1)[1] for uri in uris]
    artist, title = artist_title(fake, uris[3]).split(" - ", 1)
    (tmp_path / "feeds").mkdir()
    feed = tmp_path / "feeds" / "latest.txt"
    write_feed(
        feed,
        [  # newest first, as a "last played" page lists them
            json.dumps({"artist": artist, "title": title}),
            artist_title(fake, uris[2]),
            f"https://open.spotify.com/intl-de/track/{ids[1]}?si=x",
            "# a comment",
            uris[0],
        ],
    )
    # A relative path is read from the config file's folder (the harness puts it in state/).
    relative = Path("..") / "feeds" / "latest.txt"
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB,
        {
            "playlist": pid,
            "sources": [{"feed": {"file": str(relative), "order": "newest_first"}}],
        },
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris[:4]


def test_feed_from_a_url_and_its_failures(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = fake.make_tracks(2)
    body = "\n".join(uris).encode()

    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status = 200 if self.path == "/plays" else 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Feed)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        pid = fake.add_playlist(uris=[uris[1]])
        ok = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"url": f"{base}/plays"}}]})
        missing = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"url": f"{base}/x"}}]})
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert ok.status is RunStatus.OK, ok.error
    assert fake.playlist_uris(pid) == uris
    assert missing.status is RunStatus.FAILED
    assert missing.error == f"feed {base}/x answered HTTP 404; the playlist was left alone"
    gone = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"url": f"{base}/plays"}}]})
    assert gone.status is RunStatus.TRANSIENT  # nobody listens there any more
    assert fake.playlist_uris(pid) == uris
    unreadable = harness.run(
        JOB, {"playlist": pid, "sources": [{"feed": {"file": str(tmp_path / "nope.txt")}}]}
    )
    assert unreadable.status is RunStatus.FAILED
    assert "cannot be read" in (unreadable.error or "")


def test_search_matches_once_and_reports_misses(
    fake: FakeSpotify, harness: JobHarness, caplog: pytest.LogCaptureFixture
) -> None:
    studio = fake.add_track("Heroes", ["David Bowie"])
    fake.add_track("Heroes - Live", ["David Bowie"])
    fake.add_track("Heroes", ["Someone Else"])
    pid = fake.add_playlist()
    options = {
        "playlist": pid,
        "sources": [{"search": ["David Bowie - Heroes (2017 Remaster)", "Nobody - No Such Song"]}],
    }
    with caplog.at_level(logging.WARNING):
        first = harness.run(JOB, options)
    assert first.status is RunStatus.OK, first.error
    assert fake.playlist_uris(pid) == [studio]
    assert first.summary == "+1 -0 ~0 moved, 1 unmatched, 1 tracks; matched 0 by id, 1 by text"
    assert "Nobody - No Such Song" in caplog.text
    assert fake.count("GET", r"/search$") >= 2
    fake.clear_requests()
    second = harness.run(JOB, options)
    assert second.summary == "+0 -0 ~0 moved, 1 unmatched, 1 tracks; matched 0 by id, 1 by text"
    assert fake.count("GET", r"/search$") == 0  # matches and misses both remembered


def test_spotify_sources(fake: FakeSpotify, harness: JobHarness) -> None:
    uris = fake.make_tracks(130)
    fake.save_tracks("alice", uris[:120])  # the last saved is listed first
    fake.set_top_tracks("alice", "short_term", uris[5:8])
    for uri in uris[120:123]:
        fake.add_play("alice", uri)
    mine = fake.add_playlist(name="Source", uris=uris[125:130])
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB,
        {
            "playlist": pid,
            "sources": [
                {"saved_tracks": {"limit": 110}},
                {"top_tracks": {"time_range": "short_term", "limit": 2}},
                {"recently_played": {"limit": 2}},
                {"playlist": f"spotify:playlist:{mine}"},
            ],
            "dedupe": False,
        },
    )
    assert outcome.status is RunStatus.OK, outcome.error
    expected = list(reversed(uris[:120]))[:110] + uris[5:7] + [uris[122], uris[121]] + uris[125:130]
    assert fake.playlist_uris(pid) == expected


def test_algorithmic_source_fails_plainly(fake: FakeSpotify, harness: JobHarness) -> None:
    weekly = fake.add_algorithmic_playlist()
    pid = fake.add_playlist(uris=fake.make_tracks(1))
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"playlist": weekly}]})
    assert outcome.status is RunStatus.FAILED
    assert (
        "Spotify no longer lets apps read Discover Weekly and other algorithmic playlists (404)"
        in (outcome.error or "")
    )
    assert fake.writes() == []


# -- cheap runs -------------------------------------------------------------------------------


def test_unchanged_second_run_reads_one_snapshot_and_writes_nothing(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(120)
    pid = fake.add_playlist(uris=uris[:60])
    options = {"playlist": pid, "sources": [{"tracks": uris[20:120]}]}
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == uris[20:120]
    fake.clear_requests()
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK
    assert api_calls(fake) == [("GET", f"/v1/playlists/{pid}")]
    assert fake.requests[-1].query["fields"].startswith("snapshot_id")
    assert outcome.summary == "+0 -0 ~0 moved, 0 unmatched, 100 tracks"


def test_changed_sources_on_an_unchanged_playlist_skip_the_item_reads(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(200)
    pid = fake.add_playlist(uris=uris[:150])
    assert harness.run(JOB, {"playlist": pid, "sources": [{"tracks": uris[:150]}]}).status
    fake.clear_requests()
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"tracks": uris[:151]}]})
    assert outcome.status is RunStatus.OK
    assert item_reads(fake) == 0
    assert fake.playlist_uris(pid) == uris[:151]
    assert len(fake.writes()) == 1


def test_a_playlist_edited_by_hand_is_read_again(fake: FakeSpotify, harness: JobHarness) -> None:
    uris = fake.make_tracks(120)
    pid = fake.add_playlist()
    options = {"playlist": pid, "sources": [{"tracks": uris[:110]}]}
    assert harness.run(JOB, options).status is RunStatus.OK
    assert item_reads(fake) == 0  # the playlist was empty: its first look said so
    edit_as_the_user(fake, pid, uris[115])
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK
    assert item_reads(fake) == 2  # 110 items: the first 50 came with the snapshot check
    assert fake.playlist_uris(pid) == uris[:110]


def edit_as_the_user(fake: FakeSpotify, pid: str, uri: str) -> None:
    """Adds a track through the API, as the user would in the app (a new snapshot)."""
    token = fake.issue_access_token("alice", ("playlist-modify-private",), lifetime=600.0)
    with requests.Session() as session:
        client = spotipy.Spotify(auth=token, requests_session=session)
        client.prefix = fake.api_url + "/"
        client.playlist_add_items(pid, [uri], position=0)


# -- the playlist itself ----------------------------------------------------------------------


def test_found_by_name_over_every_page(fake: FakeSpotify, harness: JobHarness) -> None:
    uris = fake.make_tracks(2)
    wanted = fake.add_playlist(name="Radio plays", uris=[uris[1]])
    for n in range(60):  # listed before it: it is on the second page
        fake.add_playlist(name=f"Other {n}")
    outcome = harness.run(JOB, {"playlist": {"name": "Radio plays"}, "sources": [{"tracks": uris}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(wanted) == uris
    assert fake.count("POST", r"/me/playlists$") == 0
    assert fake.count("GET", r"/me/playlists$") == 2
    assert harness.state()["playlist"] == {"name": "Radio plays", "id": wanted, "created": False}


def test_created_when_missing_and_recreated_after_deletion(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(3)
    options = {
        "playlist": {"name": "New one", "public": True, "description": "made by a job"},
        "sources": [{"tracks": uris}],
    }
    first = harness.run(JOB, options)
    assert first.status is RunStatus.OK, first.error
    pid = playlist_id(harness)
    details = fake.playlist_details(pid)
    assert (details["name"], details["public"], details["description"]) == (
        "New one",
        True,
        "made by a job",
    )
    assert fake.playlist_uris(pid) == uris
    assert "created playlist 'New one'" in (first.summary or "")
    fake.delete_playlist(pid)
    again = harness.run(JOB, options)
    assert again.status is RunStatus.OK, again.error
    new_pid = playlist_id(harness)
    assert new_pid != pid
    assert fake.playlist_uris(new_pid) == uris


def test_a_vanished_playlist_the_job_did_not_create_fails_clearly(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(2)
    by_id = fake.add_playlist(uris=uris)
    by_name = fake.add_playlist(name="Found")
    assert harness.run(JOB, {"playlist": by_id, "sources": [{"tracks": uris}]}).status
    assert harness.run(
        JOB, {"playlist": {"name": "Found"}, "sources": [{"tracks": uris}]}, name="named"
    ).status
    fake.delete_playlist(by_id)
    fake.delete_playlist(by_name)
    outcome = harness.run(JOB, {"playlist": by_id, "sources": [{"tracks": uris}]})
    named = harness.run(
        JOB, {"playlist": {"name": "Found"}, "sources": [{"tracks": uris}]}, name="named"
    )
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == (
        f"playlist spotify:playlist:{by_id} not found (404): it was deleted or the id is wrong; "
        "spotify-runner recreates only playlists it created"
    )
    assert named.status is RunStatus.FAILED
    assert "'Found' no longer exists (404) and was not created by spotify-runner" in (
        named.error or ""
    )
    assert fake.count("POST", r"/me/playlists$") == 0


def test_someone_elses_playlist(fake: FakeSpotify, harness: JobHarness) -> None:
    fake.add_user("bob", "Bob")
    uris = fake.make_tracks(2)
    theirs = fake.add_playlist(owner="bob", name="Bob's", uris=uris[:1], public=True)
    outcome = harness.run(JOB, {"playlist": theirs, "sources": [{"tracks": uris}]})
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == (
        f"playlist spotify:playlist:{theirs} belongs to someone else: spotify-runner can only "
        "change playlists you own or collaborate on"
    )
    assert fake.playlist_uris(theirs) == uris[:1]


# -- dry run, rate limits, options --------------------------------------------------------------


def test_dry_run_lists_the_changes_and_writes_nothing(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    a, b, c = fake.make_tracks(3)
    pid = fake.add_playlist(uris=[b, a])
    outcome = harness.run(
        JOB,
        {"playlist": pid, "sources": [{"tracks": [a, c]}, {"search": ["Nobody - Nothing"]}]},
        dry_run=True,
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.writes() == []
    assert fake.playlist_uris(pid) == [b, a]
    assert outcome.summary == (
        "dry run: +1 -1 ~0 moved, 1 unmatched, 2 tracks; "
        f"add: {artist_title(fake, c)}; remove: {artist_title(fake, b)}; "
        "unmatched: Nobody - Nothing"
    )
    assert harness.state() == {}


def test_dry_run_of_a_playlist_still_to_create(fake: FakeSpotify, harness: JobHarness) -> None:
    uris = fake.make_tracks(2)
    options = {"playlist": {"name": "Not yet"}, "sources": [{"tracks": uris}]}
    outcome = harness.run(JOB, options, dry_run=True)
    assert outcome.status is RunStatus.OK, outcome.error
    assert outcome.summary is not None
    assert outcome.summary.startswith(
        "dry run: +2 -0 ~0 moved, 0 unmatched, 2 tracks; would create playlist 'Not yet'; add: "
    )
    assert fake.writes() == []


def test_a_short_retry_after_on_a_page_read_is_waited_out(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(120)
    pid = fake.add_playlist(uris=uris)
    fake.inject(Fault("GET", r"/items$", status=429, retry_after=1))
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"tracks": uris[::-1]}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris[::-1]
    assert fake.count("GET", r"/items$") == 3  # two pages after the first, one of them twice


def test_a_long_retry_after_ends_the_run_as_rate_limited(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    uris = fake.make_tracks(1000)
    pid = fake.add_playlist(uris=uris)
    fake.inject(Fault("GET", r"/items$", status=429, retry_after=3600, times=None))
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"tracks": uris[:10]}]})
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == 3600
    # 19 pages to read after the first: every worker stops at its first 429.
    assert fake.count("GET", r"/items$") <= 4
    assert fake.writes() == []


def test_options_name_each_mistake(fake: FakeSpotify, harness: JobHarness) -> None:
    with pytest.raises(JobLoadError) as caught:
        harness.run(
            JOB,
            {
                "playlist": {"name": "P"},
                "sources": [{"tracks": ["spotify:album:0123456789012345678901"]}, {"feeds": {}}],
                "mode": "sometimes",
            },
        )
    problems = caught.value.problems
    assert any(
        "options.sources.0.tracks.0: expected a track: spotify:track:ID, "
        "https://open.spotify.com/track/ID or the 22-character ID" in p
        for p in problems
    )
    assert any("options.sources.1: unknown source 'feeds'" in p for p in problems)
    assert any("options.mode:" in p for p in problems)


# -- config.example.yaml ----------------------------------------------------------------------


def test_the_example_jobs_run(fake: FakeSpotify, harness: JobHarness, tmp_path: Path) -> None:
    jobs = yaml.safe_load((REPO / "config.example.yaml").read_text())["jobs"]
    uris = fake.make_tracks(120, seed=7)
    fake.save_tracks("alice", uris[:60])
    fake.set_top_tracks("alice", "short_term", uris[60:110])
    feed = tmp_path / "plays.txt"
    write_feed(feed, [artist_title(fake, uris[110]), uris[111], artist_title(fake, uris[110])])
    for name, job in jobs.items():
        if job["job"] != JOB:
            continue
        options = job["options"]
        for source in options["sources"]:
            if "feed" in source:
                source["feed"]["file"] = str(feed)
        outcome = harness.run(JOB, options, name=name)
        assert outcome.status is RunStatus.OK, (name, outcome.error)
        pid = playlist_id_of(harness, name)
        if name == "radio":
            assert fake.playlist_uris(pid) == [uris[110], uris[111]]
        elif name == "liked-mirror":
            assert fake.playlist_uris(pid) == list(reversed(uris[:60]))
        else:
            assert fake.playlist_uris(pid) == uris[60:110]


def playlist_id_of(harness: JobHarness, name: str) -> str:
    return str(harness.state(name)["playlist"]["id"])


# -- feed lines and the feed cursor (pure) ------------------------------------------------------


ID = "0123456789abcdefghijAB"


@pytest.mark.parametrize(
    ("line", "fmt", "expected"),
    [
        (f"spotify:track:{ID}", "auto", f"spotify:track:{ID}"),
        (f"https://open.spotify.com/track/{ID}?si=1", "auto", f"spotify:track:{ID}"),
        ("Abba - Waterloo", "auto", ("Abba", "Waterloo")),
        ('{"artist": "Abba", "title": "SOS"}', "auto", ("Abba", "SOS")),
        (f'{{"uri": "spotify:track:{ID}"}}', "json", f"spotify:track:{ID}"),
        ("Abba - Waterloo", "uris", None),
        (f"spotify:track:{ID}", "artist_title", None),
        ("just some words", "auto", None),
        ("{not json", "auto", None),
    ],
)
def test_feed_line_kinds(line: str, fmt: str, expected: object) -> None:
    assert parse_feed_line(line, fmt) == expected


def test_feed_cursor_finds_new_lines_after_growth_window_and_rotation() -> None:
    assert new_lines(["a", "b", "c", "d"], ["b", "c"]) == ["d"]  # a growing log
    assert new_lines(["b", "c", "x", "b", "c"], ["b", "c"]) == []  # the latest place counts
    assert new_lines(["x", "y"], ["b", "c"]) == ["x", "y"]  # rotated: everything is new
    assert new_lines(["a"], []) == ["a"]
