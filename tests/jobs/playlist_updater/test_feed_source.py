"""The `feed` source over real HTTP: formats, conditional polls, caps, hostile bodies, overrides.

Fixtures are shaped like the real thing (a station's RSS, a now-playing JSON endpoint, an HTML
playlist table) and served by `FeedServer` on 127.0.0.1; the job runs as the daemon runs it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from runner.cli import main
from runner.errors import JobLoadError
from runner.execution import RunOutcome
from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness
from runner.testing.service import FeedServer

JOB = "playlist_updater"


@pytest.fixture
def feeds(feed_server: FeedServer) -> FeedServer:
    return feed_server  # the installed pytest plugin's fixture


def searches(fake: FakeSpotify) -> int:
    return fake.count("GET", r"/v1/search$")


def append_options(pid: str, url: str, **extra: object) -> dict[str, object]:
    """A job appending one feed's plays at the bottom of a playlist."""
    feed: dict[str, object] = {"url": url}
    if "order" in extra:
        feed["order"] = extra.pop("order")
    return {
        "playlist": pid,
        "sources": [{"feed": feed}],
        "mode": "append",
        "position": "bottom",
        **extra,
    }


def mirror(
    fake: FakeSpotify, harness: JobHarness, source: dict[str, object]
) -> tuple[str, RunOutcome]:
    """A new playlist made the feed's tracks (replace mode); the run must succeed."""
    pid = fake.add_playlist()
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": source}]})
    assert outcome.status is RunStatus.OK, outcome.error
    return pid, outcome


def catalog(fake: FakeSpotify) -> dict[str, str]:
    """A small catalog with decoys: the right tracks by name, plus a live and a karaoke one."""
    return {
        "iko": fake.add_track("Iko Iko", ["Dr. John"]),
        "iko_live": fake.add_track("Iko Iko - Live", ["Dr. John"]),
        "ruler": fake.add_track("Ruler of My Heart", ["Irma Thomas"]),
        "pocky": fake.add_track("Hey Pocky A-Way", ["The Meters"]),
        "pocky_karaoke": fake.add_track("Hey Pocky A-Way (Karaoke Version)", ["Sing Along"]),
        "tipitina": fake.add_track("Tipitina", ["Professor Longhair"]),
    }


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>WXYZ - Recently played</title>
    <link>https://radio.example/playlist</link>
    <description>The last songs on air</description>
    <item>
      <title>Professor Longhair - Tipitina</title>
      <pubDate>Tue, 01 Dec 2026 20:09:00 GMT</pubDate>
      <guid isPermaLink="false">spin-1003</guid>
    </item>
    <item>
      <title>The Meters - Hey Pocky A-Way</title>
      <pubDate>Tue, 01 Dec 2026 20:05:00 GMT</pubDate>
      <guid isPermaLink="false">spin-1002</guid>
    </item>
    <item>
      <title>Dr. John - Iko Iko</title>
      <pubDate>Tue, 01 Dec 2026 20:01:00 GMT</pubDate>
      <guid isPermaLink="false">spin-1001</guid>
    </item>
  </channel>
</rss>
"""


def test_rss_feed_in_play_order_then_an_idle_poll_costs_one_304(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/plays.rss", RSS, "application/rss+xml; charset=utf-8")
    pid = fake.add_playlist()
    options = append_options(pid, feeds.url("/plays.rss"))
    first = harness.run(JOB, options)
    assert first.status is RunStatus.OK, first.error
    # Oldest first at the bottom, by the items' dates (the feed lists newest first).
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]
    assert "matched 0 by id, 3 by text" in (first.summary or "")
    before = searches(fake)
    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.error
    assert feeds.count("/plays.rss") == 2
    assert feeds.requests[-1].headers.get("If-None-Match")  # a conditional request...
    assert searches(fake) == before  # ...answered 304: nothing parsed, nothing searched
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]


def test_a_play_already_taken_is_not_added_again_across_runs(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/plays.rss", RSS, "application/rss+xml")
    pid = fake.add_playlist()
    options = append_options(pid, feeds.url("/plays.rss"), dedupe=False)
    assert harness.run(JOB, options).status is RunStatus.OK
    newer = RSS.replace(
        "<item>",
        "<item><title>Irma Thomas - Ruler of My Heart</title>"
        "<pubDate>Tue, 01 Dec 2026 20:13:00 GMT</pubDate><guid>spin-1004</guid></item><item>",
        1,
    )
    feeds.serve("/plays.rss", newer, "application/rss+xml")  # a new spin; the rest still shown
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"], uris["ruler"]]


NOW_PLAYING = """{
  "station": "WXYZ",
  "data": {"plays": [
    {"artist": {"name": "Irma Thomas"}, "song": "Ruler of My Heart",
     "start": "2026-12-01T20:13:00+0000", "id": 77},
    {"artist": {"name": "Dr. John"}, "song": "Iko Iko", "start": "2026-12-01T20:01:00+0000",
     "id": 76}
  ]}
}"""


def test_json_now_playing_endpoint_with_jmespath(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/nowplaying.json", NOW_PLAYING, "application/json")
    source = {
        "url": feeds.url("/nowplaying.json"),
        "format": "json",
        "json": {"items": "data.plays", "artist": "artist.name", "title": "song"},
    }
    pid, outcome = mirror(fake, harness, source)
    assert fake.playlist_uris(pid) == [uris["iko"], uris["ruler"]]  # by time, oldest first


def test_icecast_status_json_names_the_song_in_one_field(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    status = (
        '{"icestats": {"admin": "icemaster@localhost", "source": {"listenurl": '
        '"http://radio.example:8000/live", "server_name": "WXYZ", "title": "Dr. John - Iko Iko"}}}'
    )
    feeds.serve("/status-json.xsl", status, "application/json")
    source = {
        "url": feeds.url("/status-json.xsl"),
        "format": "json",
        "json": {"items": "icestats.source", "line": "title"},
    }
    pid, outcome = mirror(fake, harness, source)
    assert fake.playlist_uris(pid) == [uris["iko"]]


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>WXYZ playlist</title></head>
<body>
<nav><a href="/">Home</a></nav>
<table class="spins">
  <tr><th>Time</th><th>Artist</th><th>Song</th></tr>
  <tr><td><time datetime="2026-12-01T20:05:00Z">8:05</time></td>
      <td class="artist">The Meters</td><td class="song">Hey Pocky A-Way</td></tr>
  <tr><td><time datetime="2026-12-01T20:01:00Z">8:01</time></td>
      <td class="artist">Dr.&nbsp;John</td><td class="song">Iko Iko</td></tr>
  <tr class="break"><td colspan="3">Station ID</td></tr>
</table>
</body></html>"""


def test_html_playlist_page_with_css_selectors(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/playlist", PAGE, "text/html; charset=utf-8")
    source = {
        "url": feeds.url("/playlist"),
        "format": "html",
        "html": {
            "row": "table.spins tr",
            "artist": ".artist",
            "title": ".song",
            "played_at": "time@datetime",
        },
    }
    pid, outcome = mirror(fake, harness, source)
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"]]


def test_an_html_page_in_auto_mode_says_how_to_read_it(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    feeds.serve("/playlist", PAGE, "text/html")
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB, {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/playlist")}}]}
    )
    assert outcome.status is RunStatus.FAILED
    assert "is an HTML page: set format: html" in (outcome.error or "")


def test_overrides_fix_a_wrong_match_and_null_keeps_a_line_out_without_search(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    uris = catalog(fake)
    feed = tmp_path / "plays.txt"
    # The station played the live take, but its log says only "Iko Iko".
    feed.write_text("Dr. John - Iko Iko\nWXYZ Station ID - Top of the Hour\n")
    plain = {"playlist": fake.add_playlist(), "sources": [{"feed": {"file": str(feed)}}]}
    before = harness.run(JOB, plain, name="plain")
    assert before.status is RunStatus.OK, before.error
    assert fake.playlist_uris(plain["playlist"]) == [uris["iko"]]  # the matcher's (wrong) pick
    assert "1 unmatched" in (before.summary or "")  # the station ID was searched, in vain
    searched = searches(fake)
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB,
        {
            "playlist": pid,
            "sources": [{"feed": {"file": str(feed)}}],
            "overrides": {
                "dr. john -  IKO IKO": uris["iko_live"],  # case and spacing do not matter
                "WXYZ Station ID - Top of the Hour": None,
            },
        },
        name="fixed",
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [uris["iko_live"]]
    assert searches(fake) == searched  # neither line was searched
    assert "0 unmatched" in (outcome.summary or "")


def test_a_feed_that_comes_back_empty_keeps_its_own_tracks(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    # Issue 9, item 4: protection per source, not only when every source is empty.
    mine = fake.make_tracks(21)
    pid = fake.add_playlist()
    feeds.serve("/plays", "\n".join(mine[1:]))
    options = {
        "playlist": pid,
        "sources": [{"tracks": [mine[0]]}, {"feed": {"url": feeds.url("/plays")}}],
    }
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == mine
    feeds.serve("/plays", "")  # an empty 200: the site's database was down
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == mine
    assert outcome.summary is not None
    assert outcome.summary.startswith("+0 -0")
    assert "kept the last tracks of feed" in outcome.summary


def test_a_failing_feed_leaves_the_playlist_and_its_cursor(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = fake.make_tracks(3)
    pid = fake.add_playlist()
    feeds.serve("/plays", "\n".join(uris[:2]))
    options = append_options(pid, feeds.url("/plays"))
    assert harness.run(JOB, options).status is RunStatus.OK
    state = harness.state()
    feeds.serve("/plays", "\n".join(uris))
    feeds.fail(503, retry_after="120", body=b"<html><h1>Service Unavailable</h1></html>")
    failed = harness.run(JOB, options)
    assert failed.status is RunStatus.TRANSIENT
    assert failed.error == f"feed {feeds.url('/plays')} answered HTTP 503; it asked to wait 120s"
    assert fake.playlist_uris(pid) == uris[:2]
    assert harness.state() == state
    again = harness.run(JOB, options)
    assert again.status is RunStatus.OK, again.error
    assert fake.playlist_uris(pid) == uris


def test_a_4xx_html_error_page_is_not_the_message(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    pid = fake.add_playlist()
    feeds.fail(403, body=b"<html>\n<head><title>403</title></head>\n<body>Forbidden</body></html>")
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/p")}}]})
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == f"feed {feeds.url('/p')} answered HTTP 403; the playlist was left alone"


def test_size_cap_counts_decoded_bytes_so_a_gzip_bomb_fails_in_one_line(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    pid = fake.add_playlist()
    bomb = b"\n" * (12 * 1024 * 1024)  # 12 MiB of newlines: 12 KiB gzipped
    feeds.serve("/bomb", bomb, "text/plain", gzip_body=True)
    assert len(gzip.compress(bomb)) < 100_000
    outcome = harness.run(
        JOB, {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/bomb")}}]}
    )
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == f"feed {feeds.url('/bomb')} is over the 10 MiB cap (decoded); not read"
    small = harness.run(
        JOB,
        {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/bomb"), "max_mib": 20}}]},
    )
    assert small.status is RunStatus.OK, small.error  # within a larger cap: just empty lines


def test_charset_bom_control_bytes_and_overlong_lines(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    cafe = fake.add_track("Café", ["Zazie"])
    iko = fake.add_track("Iko Iko", ["Dr. John"])
    pid = fake.add_playlist()
    # Latin-1 as the header says; the first line must not hide behind anything.
    feeds.serve("/latin1", "Zazie - Café\n".encode("iso-8859-1"), "text/plain; charset=iso-8859-1")
    body = (
        b"\xef\xbb\xbfDr. John - Iko Iko\n"  # a UTF-8 BOM before the first line
        + b"\x00\x01\x02\x03binary\xff\xfe\x00\x00\n"
        + b"A - "
        + b"x" * 10_000_000
        + b"\n"  # a 10 MB line: never sent to search
    )
    feeds.serve("/bom", body, "text/plain")
    outcome = harness.run(
        JOB,
        {
            "playlist": pid,
            "sources": [
                {"feed": {"url": feeds.url("/latin1")}},
                {"feed": {"url": feeds.url("/bom")}},
            ],
        },
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [cafe, iko]
    assert "2 unmatched" in (outcome.summary or "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "(a binary line of" in logged
    assert "over 300, skipped" in logged
    assert "\x00" not in logged
    assert "\x01" not in logged
    assert all(len(r.getMessage()) < 2000 for r in caplog.records)


def test_search_that_answers_414_counts_as_no_match(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    from runner.testing import Fault

    feed = tmp_path / "plays.txt"
    feed.write_text("Somebody - Something\n")
    fake.inject(Fault("GET", r"/search$", status=414, times=None))
    pid = fake.add_playlist()
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"file": str(feed)}}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert "1 unmatched" in (outcome.summary or "")


@pytest.mark.parametrize(
    ("source", "where", "message"),
    [
        (
            {"url": "https://example.org/x.json", "format": "json", "json": {"items": "data.["}},
            "options.sources.0.feed.json.items",
            "not a valid JMESPath expression",
        ),
        (
            {
                "url": "https://example.org/p",
                "format": "html",
                "html": {"row": "table[", "line": "td"},
            },
            "options.sources.0.feed.html.row",
            "not a valid CSS selector: 'table['",
        ),
        (
            {"url": "https://example.org/p", "format": "html"},
            "options.sources.0.feed",
            "format: html needs html:",
        ),
        (
            {"url": "https://example.org/p", "formt": "json"},
            "options.sources.0.feed.formt",
            "unknown option (allowed: ",
        ),
    ],
)
def test_bad_feed_options_are_located_config_errors(
    harness: JobHarness, source: dict[str, object], where: str, message: str
) -> None:
    with pytest.raises(JobLoadError) as caught:
        harness.run(JOB, {"playlist": {"name": "P"}, "sources": [{"feed": source}]})
    problems = caught.value.problems
    assert any(f": jobs.job.{where}: {message}" in p for p in problems), problems
    assert all(p.split(":")[1].isdigit() for p in problems)  # file:LINE:col


NPR_COMPOSER = """{
  "ucsNow": "5182cfc4e1c891fe553a5b52",
  "onNow": {"song": {"trackName": "Tipitina", "artistName": "Professor Longhair",
                     "collectionName": "New Orleans Piano", "_start_time": "12-01-2026 20:09:00"}},
  "tracklist": {"results": [
    {"song": {"trackName": "Hey Pocky A-Way", "artistName": "The Meters",
              "collectionName": "Rejuvenation", "_start_time": "12-01-2026 20:05:00"}},
    {"song": {"trackName": "Iko Iko", "artistName": "Dr. John",
              "collectionName": "Gumbo", "_start_time": "12-01-2026 20:01:00"}}
  ]}
}"""


def test_npr_composer_tracks_endpoint_as_in_the_readme(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/v1/widget/UCS/tracks", NPR_COMPOSER, "application/json; charset=utf-8")
    source = {
        "url": feeds.url("/v1/widget/UCS/tracks") + "?format=json",
        "format": "json",
        "order": "newest_first",
        "json": {"items": "tracklist.results[].song", "artist": "artistName", "title": "trackName"},
    }
    pid, outcome = mirror(fake, harness, source)
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"]]


def test_xspf_playlist_with_identifiers(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    exact = fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT29900001")
    fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT29900009")
    linked = fake.add_track("Tipitina", ["Professor Longhair"])
    xspf = f"""<?xml version="1.0" encoding="UTF-8"?>
<playlist version="1" xmlns="http://xspf.org/ns/0/">
  <trackList>
    <track><creator>Dr. John</creator><title>Iko Iko</title>
      <identifier>isrc:USAT29900001</identifier></track>
    <track><creator>Professor Longhair</creator><title>Tipitina</title>
      <location>https://open.spotify.com/track/{linked.rsplit(":", 1)[1]}</location></track>
  </trackList>
</playlist>"""
    feeds.serve("/list.xspf", xspf, "application/xspf+xml")
    pid = fake.add_playlist()
    outcome = harness.run(
        JOB, {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/list.xspf")}}]}
    )
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [exact, linked]
    assert "matched 2 by id, 0 by text" in (outcome.summary or "")


def test_a_malformed_json_body_is_transient(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    feeds.serve("/np.json", '{"data": {"plays": [', "application/json")
    pid = fake.add_playlist()
    source = {"url": feeds.url("/np.json"), "format": "json", "json": {"items": "data.plays"}}
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": source}]})
    assert outcome.status is RunStatus.TRANSIENT
    assert outcome.error == (
        f"feed {feeds.url('/np.json')}: not valid JSON (Expecting value at line 1); retrying later"
    )


def test_unmatched_lines_name_the_best_rejected_candidate_in_the_run_log(
    fake: FakeSpotify, harness: JobHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decoy = fake.add_track("Ruler of My Heart (Karaoke Version)", ["Irma Thomas Tribute Band"])
    feed = tmp_path / "plays.txt"
    feed.write_text("Irma Thomas - Ruler of My Heart\n")
    pid = fake.add_playlist()
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"feed": {"file": str(feed)}}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == []
    expected = (
        "1 line(s) matched no track: Irma Thomas - Ruler of My Heart (closest: Irma Thomas "
        f"Tribute Band - Ruler of My Heart (Karaoke Version) ({decoy}), score 0."
    )
    assert expected in outcome.log_tail
    # `spotify-runner history --run ID` shows the same line: copy the URI into `overrides`.
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "spotify": {
                    "client_id": fake.CLIENT_ID,
                    "client_secret": fake.CLIENT_SECRET,
                    "redirect_uri": "http://127.0.0.1:8888/callback",
                },
                "state_dir": str(harness.state_dir),
                "timezone": "UTC",
                "jobs": {"job": {"job": "hello", "schedule": {"every": "1h"}}},
            }
        )
    )
    with pytest.raises(SystemExit) as done:
        main(["-c", str(config), "history", "--run", str(outcome.run_id)])
    assert done.value.code in (0, None)
    assert expected in capsys.readouterr().out


def test_replace_mode_idle_poll_is_one_304_and_keeps_the_playlist(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    feeds.serve("/plays.rss", RSS, "application/rss+xml")
    pid = fake.add_playlist()
    options = {"playlist": pid, "sources": [{"feed": {"url": feeds.url("/plays.rss")}}]}
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]
    searched, writes = searches(fake), len(fake.writes())
    idle = harness.run(JOB, options)
    assert idle.status is RunStatus.OK, idle.error
    assert feeds.count() == 2
    assert searches(fake) == searched
    assert len(fake.writes()) == writes
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]
    assert idle.summary == "+0 -0 ~0 moved, 0 unmatched, 3 tracks"


def test_a_feed_that_drips_is_cut_at_the_runs_deadline(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    import http.server
    import threading
    import time
    from datetime import timedelta

    stop = threading.Event()

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            # A byte every 0.2 s: each read succeeds, so only the run's deadline ends it.
            for _ in range(600):
                if stop.is_set():
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        pid = fake.add_playlist()
        url = f"http://127.0.0.1:{server.server_address[1]}/plays"
        started = time.monotonic()
        outcome = harness.run(
            JOB,
            {"playlist": pid, "sources": [{"feed": {"url": url}}]},
            timeout=timedelta(seconds=2),
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join()
    assert outcome.status is RunStatus.TIMED_OUT, outcome.error
    assert took < 60  # the drip alone would last 120 s
    assert fake.playlist_uris(pid) == []


def test_a_feed_where_only_some_items_have_a_time_is_read_as_a_log(
    fake: FakeSpotify, harness: JobHarness, feeds: FeedServer
) -> None:
    uris = catalog(fake)
    undated = RSS.replace("<pubDate>Tue, 01 Dec 2026 20:05:00 GMT</pubDate>", "")
    feeds.serve("/plays.rss", undated, "application/rss+xml")
    pid = fake.add_playlist()
    options = append_options(pid, feeds.url("/plays.rss"), order="newest_first", dedupe=False)
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]
    feeds.serve("/plays.rss", undated + " ", "application/rss+xml")  # changed, nothing new
    again = harness.run(JOB, options)
    assert again.status is RunStatus.OK, again.error
    assert fake.playlist_uris(pid) == [uris["iko"], uris["pocky"], uris["tipitina"]]
