"""The `lastfm` and `listenbrainz` sources against their embedded fakes, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness
from runner.testing.lastfm import FakeLastfm
from runner.testing.listenbrainz import FakeListenBrainz

JOB = "playlist_updater"


@pytest.fixture
def lastfm(fake_lastfm: FakeLastfm) -> FakeLastfm:
    return fake_lastfm  # the installed pytest plugin's fixture


@pytest.fixture
def listenbrainz(fake_listenbrainz: FakeListenBrainz) -> FakeListenBrainz:
    return fake_listenbrainz  # the installed pytest plugin's fixture


def searches(fake: FakeSpotify) -> int:
    return fake.count("GET", r"/v1/search$")


def lastfm_options(lastfm: FakeLastfm, pid: str, **source: Any) -> dict[str, Any]:
    entry = {"user": "rj", "api_key": FakeLastfm.API_KEY, "api_url": lastfm.api_url, **source}
    return {"playlist": pid, "sources": [{"lastfm": entry}], "mode": "append", "position": "bottom"}


def test_lastfm_recent_skips_now_playing_and_an_idle_poll_is_one_request(
    fake: FakeSpotify, harness: JobHarness, lastfm: FakeLastfm
) -> None:
    iko = fake.add_track("Iko Iko", ["Dr. John"])
    ruler = fake.add_track("Ruler of My Heart", ["Irma Thomas"])
    tipitina = fake.add_track("Tipitina", ["Professor Longhair"])
    lastfm.scrobble("rj", "Dr. John", "Iko Iko")
    lastfm.scrobble("rj", "Irma Thomas", "Ruler of My Heart")
    lastfm.play_now("rj", "Professor Longhair", "Tipitina")  # not a play yet
    pid = fake.add_playlist()
    first = harness.run(JOB, lastfm_options(lastfm, pid))
    assert first.status is RunStatus.OK, first.error
    assert fake.playlist_uris(pid) == [iko, ruler]
    assert lastfm.requests[0].query["method"] == "user.getrecenttracks"
    assert "from" not in lastfm.requests[0].query

    before, calls = searches(fake), lastfm.count()
    idle = harness.run(JOB, lastfm_options(lastfm, pid))
    assert idle.status is RunStatus.OK, idle.error
    assert lastfm.count() == calls + 1
    assert lastfm.requests[-1].query["from"] == str(1_764_619_200 + 120)  # the newest scrobble
    assert searches(fake) == before
    assert fake.playlist_uris(pid) == [iko, ruler]

    lastfm.scrobble("rj", "Professor Longhair", "Tipitina")  # now it has been played
    later = harness.run(JOB, lastfm_options(lastfm, pid))
    assert later.status is RunStatus.OK, later.error
    assert fake.playlist_uris(pid) == [iko, ruler, tipitina]


def test_lastfm_pages_within_its_rate_limit(
    fake: FakeSpotify, harness: JobHarness, lastfm: FakeLastfm
) -> None:
    uris = [fake.add_track(f"Song {n}", ["Band"]) for n in range(450)]
    for n in range(450):
        lastfm.scrobble("rj", "Band", f"Song {n}")
    pid = fake.add_playlist()
    outcome = harness.run(JOB, {**lastfm_options(lastfm, pid, limit=450), "mode": "replace"})
    assert outcome.status is RunStatus.OK, outcome.error
    assert lastfm.count() == 3  # 200 + 200 + 50, spaced: never error 29
    assert fake.playlist_uris(pid) == list(reversed(uris))


def test_lastfm_loved_and_top(fake: FakeSpotify, harness: JobHarness, lastfm: FakeLastfm) -> None:
    iko = fake.add_track("Iko Iko", ["Dr. John"])
    ruler = fake.add_track("Ruler of My Heart", ["Irma Thomas"])
    lastfm.love("rj", "Dr. John", "Iko Iko")
    lastfm.set_top("rj", "1month", [("Irma Thomas", "Ruler of My Heart"), ("Dr. John", "Iko Iko")])
    loved, top = fake.add_playlist(), fake.add_playlist()
    one = harness.run(JOB, {**lastfm_options(lastfm, loved, kind="loved"), "mode": "replace"})
    two = harness.run(
        JOB, {**lastfm_options(lastfm, top, kind="top", period="1month"), "mode": "replace"}
    )
    assert one.status is RunStatus.OK, one.error
    assert two.status is RunStatus.OK, two.error
    assert fake.playlist_uris(loved) == [iko]  # a single loved track: Last.fm sends an object
    assert fake.playlist_uris(top) == [ruler, iko]
    assert lastfm.requests[-1].query["period"] == "1month"


@pytest.mark.parametrize(
    ("source", "status", "message"),
    [
        ({"api_key": "wrong-key"}, RunStatus.FAILED, "Last.fm refused the API key (error 10: "),
        ({"user": "nobody"}, RunStatus.FAILED, "Last.fm user 'nobody': error 6: User not found"),
    ],
)
def test_lastfm_errors_are_one_line(
    fake: FakeSpotify,
    harness: JobHarness,
    lastfm: FakeLastfm,
    source: dict[str, Any],
    status: RunStatus,
    message: str,
) -> None:
    lastfm.scrobble("rj", "Dr. John", "Iko Iko")
    pid = fake.add_playlist()
    outcome = harness.run(JOB, lastfm_options(lastfm, pid, **source))
    assert outcome.status is status
    assert (outcome.error or "").startswith(message), outcome.error
    assert "wrong-key" not in (outcome.error or "")


def test_lastfm_rate_limit_error_is_transient_and_keeps_the_cursor(
    fake: FakeSpotify, harness: JobHarness, lastfm: FakeLastfm
) -> None:
    iko = fake.add_track("Iko Iko", ["Dr. John"])
    lastfm.scrobble("rj", "Dr. John", "Iko Iko")
    pid = fake.add_playlist()
    assert harness.run(JOB, lastfm_options(lastfm, pid)).status is RunStatus.OK
    state = harness.state()
    lastfm.fail(
        400,
        body=b'{"error": 29, "message": "Rate Limit Exceeded"}',
        content_type="application/json",
    )
    outcome = harness.run(JOB, lastfm_options(lastfm, pid))
    assert outcome.status is RunStatus.TRANSIENT
    assert (
        outcome.error
        == "Last.fm rate-limited this address (error 29: Rate Limit Exceeded); retrying later"
    )
    assert harness.state() == state
    assert fake.playlist_uris(pid) == [iko]


def lb_options(listenbrainz: FakeListenBrainz, pid: str, **source: Any) -> dict[str, Any]:
    entry = {"user": "iliekcomputers", "api_url": listenbrainz.api_url, **source}
    return {
        "playlist": pid,
        "sources": [{"listenbrainz": entry}],
        "mode": "append",
        "position": "bottom",
        "dedupe": False,
    }


def test_listenbrainz_listens_by_spotify_id_isrc_then_text_never_min_and_max_ts(
    fake: FakeSpotify, harness: JobHarness, listenbrainz: FakeListenBrainz
) -> None:
    exact = fake.add_track("Iko Iko", ["Dr. John"])
    fake.add_track("Iko Iko", ["Dr. John"])  # the same name: only the id tells them apart
    by_isrc = fake.add_track("Tipitina", ["Professor Longhair"], isrc="USAT20099999")
    by_text = fake.add_track("Ruler of My Heart", ["Irma Thomas"])
    spotify_id = "https://open.spotify.com/track/" + exact.rsplit(":", 1)[1]
    listenbrainz.listen("iliekcomputers", "Dr. John", "Iko Iko", spotify_id=spotify_id)
    listenbrainz.listen("iliekcomputers", "Professor Longhair", "Tipitina", isrc="USAT20099999")
    listenbrainz.listen(
        "iliekcomputers",
        "Irma Thomas",
        "Ruler of My Heart",
        recording_mbid="2f9ecbed-27be-40e6-abca-6de49d50299e",
    )
    pid = fake.add_playlist()
    first = harness.run(JOB, lb_options(listenbrainz, pid))
    assert first.status is RunStatus.OK, first.error
    assert fake.playlist_uris(pid) == [exact, by_isrc, by_text]
    assert "matched 2 by id, 1 by text" in (first.summary or "")

    before = searches(fake)
    idle = harness.run(JOB, lb_options(listenbrainz, pid))
    assert idle.status is RunStatus.OK, idle.error
    assert listenbrainz.count() == 2
    last = listenbrainz.requests[-1].query
    assert last["min_ts"] == str(1_764_619_200 + 180)
    assert "max_ts" not in last
    assert searches(fake) == before

    # The same recording again, known now by its MusicBrainz id: no search at all.
    listenbrainz.listen(
        "iliekcomputers",
        "Irma Thomas",
        "Ruler Of My Heart (2011 Remaster)",
        recording_mbid="2f9ecbed-27be-40e6-abca-6de49d50299e",
    )
    again = harness.run(JOB, lb_options(listenbrainz, pid))
    assert again.status is RunStatus.OK, again.error
    assert fake.playlist_uris(pid) == [exact, by_isrc, by_text, by_text]
    assert searches(fake) == before
    assert "matched 1 by id, 0 by text" in (again.summary or "")


def test_listenbrainz_rate_limit_headers_are_honoured(
    fake: FakeSpotify, harness: JobHarness
) -> None:
    with FakeListenBrainz(limit=2, window=30.0) as listenbrainz:
        fake.add_track("Song 0", ["Band"])
        listenbrainz.listen("iliekcomputers", "Band", "Song 0")
        pid = fake.add_playlist()
        assert harness.run(JOB, lb_options(listenbrainz, pid)).status is RunStatus.OK
        for n in range(1, 6):
            fake.add_track(f"Song {n}", ["Band"])
            listenbrainz.listen("iliekcomputers", "Band", f"Song {n}")
        # Two listens a page: the second page leaves X-RateLimit-Remaining at 0 with the
        # window resetting in ~30 s, so the third page is not asked for (no 429 earned);
        # the run ends as transient with the reset as its delay, its cursor untouched.
        state = harness.state()
        paged = harness.run(JOB, lb_options(listenbrainz, pid, limit=6, count=2))
        statuses = [r.path for r in listenbrainz.requests]
        assert len(statuses) == 2
        # A new run does not know the window is spent: the service says so with a 429.
        refused = harness.run(JOB, lb_options(listenbrainz, pid))
        assert listenbrainz.count() == 3
    assert paged.status is RunStatus.TRANSIENT
    assert paged.error is not None
    assert paged.error.startswith("ListenBrainz asked to wait")
    assert paged.retry_after is not None
    assert 5 < paged.retry_after <= 30  # the window's reset, whatever the machine's speed
    assert harness.state() == state
    assert refused.status is RunStatus.TRANSIENT
    assert refused.retry_after is not None
    assert 5 < refused.retry_after <= 30


def test_listenbrainz_top_and_stats_not_ready(
    fake: FakeSpotify, harness: JobHarness, listenbrainz: FakeListenBrainz
) -> None:
    iko = fake.add_track("Iko Iko", ["Dr. John"])
    ruler = fake.add_track("Ruler of My Heart", ["Irma Thomas"])
    pid = fake.add_playlist()
    listenbrainz.listen("iliekcomputers", "Dr. John", "Iko Iko")
    options = {**lb_options(listenbrainz, pid, kind="top", range="month"), "mode": "replace"}
    not_ready = harness.run(JOB, options)
    assert not_ready.status is RunStatus.OK, not_ready.error  # 204: no statistics yet
    assert fake.playlist_uris(pid) == []
    listenbrainz.set_top(
        "iliekcomputers", "month", [("Irma Thomas", "Ruler of My Heart"), ("Dr. John", "Iko Iko")]
    )
    ready = harness.run(JOB, options)
    assert ready.status is RunStatus.OK, ready.error
    assert fake.playlist_uris(pid) == [ruler, iko]
    assert listenbrainz.requests[-1].path == "/1/stats/user/iliekcomputers/recordings"


def test_listenbrainz_unknown_user(
    fake: FakeSpotify, harness: JobHarness, listenbrainz: FakeListenBrainz
) -> None:
    pid = fake.add_playlist()
    outcome = harness.run(JOB, lb_options(listenbrainz, pid, user="nobody"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == (
        "ListenBrainz user 'nobody' not found (HTTP 404): Cannot find user: nobody"
    )
