"""The `spinitron` source against the embedded Spinitron fake, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.playlist_updater.options import Options
from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness
from runner.testing.spinitron import FakeSpinitron

JOB = "playlist_updater"


@pytest.fixture
def station(fake_spinitron: FakeSpinitron) -> FakeSpinitron:
    return fake_spinitron  # the installed pytest plugin's fixture


def searches(fake: FakeSpotify) -> list[str]:
    return [r.query.get("q", "") for r in fake.requests if r.path == "/v1/search"]


def options(station: FakeSpinitron, pid: str, **extra: Any) -> dict[str, Any]:
    source = {"api_key": station.API_KEY, "api_url": station.api_url, "count": 50}
    return {
        "playlist": pid,
        "sources": [{"spinitron": source}],
        "mode": "append",
        "position": "bottom",
        **extra,
    }


def test_spins_with_isrcs_are_mirrored_exactly_then_an_idle_poll_costs_one_request(
    fake: FakeSpotify, harness: JobHarness, station: FakeSpinitron
) -> None:
    # The same song three times on Spotify: only the ISRC tells the recording apart.
    studio = fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT29900001")
    live = fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT29900002")
    fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT29900003")
    ruler = fake.add_track("Ruler of My Heart", ["Irma Thomas"], isrc="USIR16300001")
    station.add_spin("Dr. John", "Iko Iko", isrc="USAT29900002")
    station.add_spin("Irma Thomas", "Ruler of My Heart", isrc="US-IR1-63-00001")
    station.add_spin("Dr John", "Iko Iko", isrc="USAT29900001")
    pid = fake.add_playlist()
    first = harness.run(JOB, options(station, pid, dedupe=False))
    assert first.status is RunStatus.OK, first.error
    assert fake.playlist_uris(pid) == [live, ruler, studio]
    assert "matched 3 by id, 0 by text" in (first.summary or "")
    assert sorted(searches(fake)) == ["isrc:USAT29900001", "isrc:USAT29900002", "isrc:USIR16300001"]
    assert station.requests[0].headers["Authorization"] == f"Bearer {station.API_KEY}"
    assert "access-token" not in station.requests[0].query

    before_spotify, before_station = len(searches(fake)), station.count()
    idle = harness.run(JOB, options(station, pid, dedupe=False))
    assert idle.status is RunStatus.OK, idle.error
    assert station.count() == before_station + 1
    assert station.requests[-1].query["start"] == "2026-12-01T20:06:00+0000"  # the newest spin
    assert len(searches(fake)) == before_spotify
    assert fake.playlist_uris(pid) == [live, ruler, studio]

    station.add_spin("Irma Thomas", "Ruler of My Heart", isrc="USIR16300001")
    again = harness.run(JOB, options(station, pid, dedupe=False))
    assert again.status is RunStatus.OK, again.error
    assert fake.playlist_uris(pid) == [live, ruler, studio, ruler]  # played again: added again
    assert len(searches(fake)) == before_spotify  # the ISRC was remembered


def test_spins_without_isrcs_go_through_the_matcher_and_no_wrong_track_is_added(
    fake: FakeSpotify, harness: JobHarness, station: FakeSpinitron
) -> None:
    pocky = fake.add_track("Hey Pocky A-Way", ["The Meters"])
    fake.add_track("Hey Pocky A-Way - Live", ["The Meters"])
    fake.add_track("Ruler of My Heart (Karaoke Version)", ["Sing Along Stars"])
    station.add_spin("The Meters", "Hey Pocky A-Way")
    station.add_spin("Irma Thomas", "Ruler of My Heart")  # only a karaoke decoy exists
    station.add_spin("WWOZ", "Station ID")
    pid = fake.add_playlist()
    outcome = harness.run(JOB, options(station, pid, overrides={"WWOZ - Station ID": None}))
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [pocky]
    assert "1 unmatched" in (outcome.summary or "")
    assert "matched 0 by id, 1 by text" in (outcome.summary or "")


def test_replace_mode_mirrors_the_latest_count_spins(
    fake: FakeSpotify, harness: JobHarness, station: FakeSpinitron
) -> None:
    uris = [fake.add_track(f"Song {n}", ["Band"], isrc=f"QZABC260000{n}") for n in range(5)]
    for n in range(5):
        station.add_spin("Band", f"Song {n}", isrc=f"QZABC260000{n}")
    pid = fake.add_playlist()
    source = {"api_key": station.API_KEY, "api_url": station.api_url, "count": 3}
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"spinitron": source}]})
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == [uris[4], uris[3], uris[2]]  # newest first, as shown
    assert station.requests[-1].query["count"] == "3"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (500, None, RunStatus.TRANSIENT),
        (503, "600", RunStatus.TRANSIENT),
        (429, "3600", RunStatus.TRANSIENT),
    ],
)
def test_a_failing_station_leaves_the_playlist_and_the_cursor(
    fake: FakeSpotify,
    harness: JobHarness,
    station: FakeSpinitron,
    status: int,
    retry_after: str | None,
    expected: RunStatus,
) -> None:
    first = fake.add_track("Tipitina", ["Professor Longhair"], isrc="USAT20000001")
    second = fake.add_track("Iko Iko", ["Dr. John"], isrc="USAT20000002")
    station.add_spin("Professor Longhair", "Tipitina", isrc="USAT20000001")
    pid = fake.add_playlist()
    assert harness.run(JOB, options(station, pid)).status is RunStatus.OK
    state = harness.state()
    station.add_spin("Dr. John", "Iko Iko", isrc="USAT20000002")
    station.fail(status, retry_after=retry_after, body=b"<html><body>down</body></html>")
    failed = harness.run(JOB, options(station, pid))
    assert failed.status is expected
    assert "<html" not in (failed.error or "")
    if retry_after:
        assert failed.retry_after == float(retry_after)
    assert fake.playlist_uris(pid) == [first]
    assert harness.state() == state
    recovered = harness.run(JOB, options(station, pid))
    assert recovered.status is RunStatus.OK, recovered.error
    assert fake.playlist_uris(pid) == [first, second]


def test_a_wrong_key_fails_in_one_line_without_the_key(
    fake: FakeSpotify, harness: JobHarness, station: FakeSpinitron
) -> None:
    pid = fake.add_playlist()
    source = {"api_key": "not-the-key-0123", "api_url": station.api_url}
    outcome = harness.run(JOB, {"playlist": pid, "sources": [{"spinitron": source}]})
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "Spinitron refused the API key (HTTP 401): check spinitron.api_key"
    validated = Options.model_validate({"playlist": pid, "sources": [{"spinitron": source}]})
    assert "not-the-key" not in repr(validated)
    assert "not-the-key" not in validated.model_dump_json()


def test_append_after_a_long_pause_pages_through_next_links(
    fake: FakeSpotify, harness: JobHarness, station: FakeSpinitron
) -> None:
    uris = [fake.add_track(f"Song {n}", ["Band"], isrc=f"QZABC2600{n:03d}") for n in range(7)]
    station.add_spin("Band", "Song 0", isrc="QZABC2600000")
    pid = fake.add_playlist()
    source = {"api_key": station.API_KEY, "api_url": station.api_url, "count": 2}
    opts = {
        "playlist": pid,
        "sources": [{"spinitron": source}],
        "mode": "append",
        "position": "bottom",
    }
    assert harness.run(JOB, opts).status is RunStatus.OK
    for n in range(1, 7):
        station.add_spin("Band", f"Song {n}", isrc=f"QZABC2600{n:03d}")
    outcome = harness.run(JOB, opts)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris  # 7 spins since the last one: 4 pages of 2
