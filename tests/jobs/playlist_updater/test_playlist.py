"""The playlist as other clients and crashes leave it: seen as it is, every write applied once.

Real spotipy over real HTTP against the embedded fake; the other client is a second spotipy
client with its own token, and "in flight" is a request the fake holds with a latency fault.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import spotipy
import yaml

from jobs.playlist_updater import playlist
from runner.execution import RunOutcome
from runner.state import RunStatus
from runner.testing import FakeSpotify, Fault
from runner.testing.harness import ALL_SCOPES, JobHarness

JOB = "playlist_updater"
WAIT = 60.0
"""Upper bound for anything a test waits for; a loaded machine is slow, not this slow."""


@pytest.fixture
def harness(fake_spotify: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    with JobHarness(fake_spotify, tmp_path / "state") as h:
        yield h


def wait_until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def fault_taken(fake: FakeSpotify) -> bool:
    """Whether the one injected fault has met its request (which the fake now holds)."""
    with fake.lock:
        return all(remaining == 0 for _, remaining in fake.faults)


def in_background(action: Callable[[], RunOutcome]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(outcome=action()), daemon=True)
    thread.start()
    return thread, box


# -- item 9.2: another client's edit during a run ----------------------------------------------


def test_an_edit_by_another_client_while_the_job_writes_is_seen_next_run(
    fake_spotify: FakeSpotify, harness: JobHarness, fake_spotify_client: spotipy.Spotify
) -> None:
    fake = fake_spotify
    a, b, c, d, x = fake.make_tracks(5)
    pid = fake.add_playlist(name="Mine", uris=[a, b])
    options = {"playlist": pid, "sources": [{"tracks": [a, b, c, d]}], "mode": "replace"}
    # The job's POST is held 2 s; meanwhile the other client appends X, so the snapshot_id the
    # POST answers already includes X.
    fake.inject(Fault(method="POST", path=r"/items$", status=None, latency=2.0))
    thread, box = in_background(lambda: harness.run(JOB, options))
    wait_until(lambda: fault_taken(fake), "the job's POST to reach the fake")
    fake_spotify_client.playlist_add_items(pid, [x])
    thread.join(WAIT)
    first: RunOutcome = box["outcome"]
    assert first.status is RunStatus.OK, first.error
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/items")]
    assert [r.body for r in posts] == [[x], [c, d]], "X must land during the job's POST"
    assert fake.playlist_uris(pid) == [a, b, x, c, d]

    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.error
    assert second.summary == "+0 -1 ~0 moved, 0 unmatched, 4 tracks"
    assert fake.playlist_uris(pid) == [a, b, c, d]


def test_a_same_size_edit_on_the_first_page_is_seen_too(
    fake_spotify: FakeSpotify, harness: JobHarness, fake_spotify_client: spotipy.Spotify
) -> None:
    # Another client swaps two tracks while the job writes: the count is the same, but the
    # first page (which the same request returns) differs from what the job wrote.
    fake = fake_spotify
    a, b, c, d = fake.make_tracks(4)
    pid = fake.add_playlist(uris=[a, b])
    options = {"playlist": pid, "sources": [{"tracks": [a, b, c, d]}], "mode": "replace"}
    fake.inject(Fault(method="POST", path=r"/items$", status=None, latency=2.0))
    thread, box = in_background(lambda: harness.run(JOB, options))
    wait_until(lambda: fault_taken(fake), "the job's POST to reach the fake")
    fake_spotify_client.playlist_reorder_items(pid, range_start=1, insert_before=0)
    thread.join(WAIT)
    assert box["outcome"].status is RunStatus.OK, box["outcome"].error
    assert fake.playlist_uris(pid) == [b, a, c, d]

    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.error
    assert fake.playlist_uris(pid) == [a, b, c, d]
    assert second.summary == "+0 -0 ~1 moved, 0 unmatched, 4 tracks"


def test_when_nobody_else_wrote_the_next_run_costs_one_request_plus_its_writes(
    fake_spotify: FakeSpotify, harness: JobHarness
) -> None:
    fake = fake_spotify
    uris = fake.make_tracks(250)
    pid = fake.add_playlist(uris=uris[:120])
    options = {"playlist": pid, "sources": [{"tracks": uris[:150]}], "mode": "replace"}
    assert harness.run(JOB, options).status is RunStatus.OK
    fake.clear_requests()
    options["sources"] = [{"tracks": uris[100:250]}]
    outcome = harness.run(JOB, options)
    assert outcome.status is RunStatus.OK, outcome.error
    assert fake.playlist_uris(pid) == uris[100:250]
    reads = [r for r in fake.requests if r.path.startswith("/v1/") and r.method == "GET"]
    assert len(reads) == 1  # the first look, trusted: snapshot, total and first page agree
    assert len(fake.writes()) == 2  # DELETE 100, POST 100


# -- item 9.3: a write Spotify applied is never applied again ----------------------------------


def plays_feed(tmp_path: Path, uris: list[str]) -> Path:
    feed = tmp_path / "plays.txt"
    feed.write_text("".join(uri + "\n" for uri in uris))
    return feed


def append_options(pid: str, feed: Path) -> dict[str, Any]:
    # Without dedupe, a write applied twice shows as duplicates.
    return {
        "playlist": pid,
        "sources": [{"feed": {"file": str(feed)}}],
        "mode": "append",
        "dedupe": False,
    }


def radio(fake: FakeSpotify, tmp_path: Path, plays: list[str]) -> tuple[str, dict[str, Any]]:
    """An empty playlist, a feed of `plays`, and the options that append them to it."""
    pid = fake.add_playlist(uris=[])
    return pid, append_options(pid, plays_feed(tmp_path, plays))


@pytest.fixture
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """No request may still land after its run: the next attempt need not wait."""
    monkeypatch.setattr(playlist, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(playlist, "RESEND_SECONDS", 0.0)


def test_a_post_answered_after_the_deadline_is_not_sent_again(
    fake_spotify: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    fake = fake_spotify
    plays = fake.make_tracks(6)
    pid, options = radio(fake, tmp_path, plays[:5])
    # The fake holds the POST for 8 s and applies it then, long after the 1 s run gave up.
    fake.inject(Fault(method="POST", path=r"/items$", status=None, latency=8.0))
    first = harness.run(JOB, options, timeout=timedelta(seconds=1))
    assert first.status in (RunStatus.TIMED_OUT, RunStatus.TRANSIENT), first.line()

    # The daemon's retry comes while the POST is still held: it must not send it again.
    retry = harness.run(JOB, options)
    assert retry.status is RunStatus.TRANSIENT, retry.line()
    assert "was never answered and may still be applied" in (retry.error or "")
    assert fake.count("POST", r"/items$") <= 1

    wait_until(lambda: len(fake.playlist_uris(pid)) == 5, "the held POST to be applied")
    settled = harness.run(JOB, options)
    assert settled.status is RunStatus.OK, settled.line()
    assert fake.playlist_uris(pid) == plays[4::-1]  # newest on top, each once
    assert "pending" not in harness.state()

    # The five plays count as read: the next play is the only one added.
    plays_feed(tmp_path, plays)
    assert harness.run(JOB, options).status is RunStatus.OK
    assert fake.playlist_uris(pid) == plays[::-1]


@pytest.mark.usefixtures("settled_at_once")
def test_a_post_that_never_arrived_is_sent_again_once_it_cannot_land(
    fake_spotify: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    fake = fake_spotify
    plays = fake.make_tracks(5)
    pid, options = radio(fake, tmp_path, plays)
    fake.inject(Fault(method="POST", path=r"/items$", drop=True))  # the connection just closes
    first = harness.run(JOB, options)
    assert first.status is RunStatus.TRANSIENT, first.line()
    assert fake.playlist_uris(pid) == []
    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.line()
    assert fake.playlist_uris(pid) == plays[::-1]


def test_a_refused_post_is_sent_again_at_once(
    fake_spotify: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    # An answer, even a refusal, means nothing of that request can land later: no waiting.
    fake = fake_spotify
    plays = fake.make_tracks(5)
    pid, options = radio(fake, tmp_path, plays)
    fake.inject(Fault(method="POST", path=r"/items$", status=400))
    assert harness.run(JOB, options).status is RunStatus.FAILED
    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.line()
    assert fake.playlist_uris(pid) == plays[::-1]


@pytest.mark.usefixtures("settled_at_once")
def test_a_write_cut_off_after_its_first_request_is_finished_where_it_was_meant(
    fake_spotify: FakeSpotify, harness: JobHarness, tmp_path: Path
) -> None:
    # 150 plays take two POSTs (100 newest at the top, then the 50 older below them); the
    # second never arrives. The next attempt adds only those 50, below the 100.
    fake = fake_spotify
    old = fake.make_tracks(3, seed=1)
    plays = fake.make_tracks(150, seed=2)
    pid = fake.add_playlist(uris=old)
    options = append_options(pid, plays_feed(tmp_path, plays))
    fake.inject(Fault(method="POST", path=r"/items$", status=None, times=1))
    fake.inject(Fault(method="POST", path=r"/items$", drop=True))
    first = harness.run(JOB, options)
    assert first.status is RunStatus.TRANSIENT, first.line()
    assert fake.playlist_uris(pid) == plays[:49:-1] + old
    second = harness.run(JOB, options)
    assert second.status is RunStatus.OK, second.line()
    assert fake.playlist_uris(pid) == plays[::-1] + old
    assert (second.summary or "").startswith("+50 -0")


def test_a_write_applied_by_spotify_after_sigkill_is_not_applied_again(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> None:
    fake = fake_spotify
    plays = fake.make_tracks(5)
    pid, options = radio(fake, tmp_path, plays)
    config = write_config(fake, tmp_path, options)
    fake.inject(Fault(method="POST", path=r"/items$", status=None, latency=3.0))
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", "-c", str(config), "run-job", "radio"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: fault_taken(fake) or child.poll() is not None, "the POST")
        assert child.poll() is None, child.communicate()[1]
        child.send_signal(signal.SIGKILL)
    finally:
        child.communicate(timeout=WAIT)
    assert child.returncode == -signal.SIGKILL
    wait_until(lambda: len(fake.playlist_uris(pid)) == 5, "the POST to be applied")

    again = run_cli(config, "run-job", "radio")
    assert again.returncode == 0, again.stderr
    assert "radio: ok" in again.stdout + again.stderr
    assert fake.playlist_uris(pid) == plays[::-1]


def write_config(fake: FakeSpotify, tmp_path: Path, options: dict[str, Any]) -> Path:
    data = {
        "spotify": {
            "client_id": fake.CLIENT_ID,
            "client_secret": fake.CLIENT_SECRET,
            "refresh_token": fake.grant(scopes=ALL_SCOPES),
            "accounts_url": fake.accounts_url,
            "api_url": fake.api_url,
        },
        "state_dir": str(tmp_path / "state"),
        "timezone": "UTC",
        "jobs": {"radio": {"job": JOB, "schedule": {"every": "1h"}, "options": options}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_a_playlist_created_by_a_run_that_then_fails_is_remembered_as_the_jobs(
    fake_spotify: FakeSpotify, harness: JobHarness
) -> None:
    fake = fake_spotify
    uris = fake.make_tracks(2)
    options = {"playlist": {"name": "Made here"}, "sources": [{"tracks": uris}]}
    fake.inject(Fault(method="POST", path=r"/playlists/[^/]+/items$", status=400))
    assert harness.run(JOB, options).status is RunStatus.FAILED
    created = harness.state()["playlist"]
    assert created["created"] is True
    fake.delete_playlist(created["id"])  # the user deletes it: the job made it, so makes it again
    again = harness.run(JOB, options)
    assert again.status is RunStatus.OK, again.line()
    assert [pid for pid in fake.user_playlist_ids() if fake.playlist_live(pid)] == [
        harness.state()["playlist"]["id"]
    ]
    assert fake.playlist_uris(harness.state()["playlist"]["id"]) == uris
