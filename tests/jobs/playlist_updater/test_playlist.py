"""The playlist as other clients and crashes leave it: seen as it is, every write applied once.

Real spotipy over real HTTP against the embedded fake; the other client is a second spotipy
client with its own token, and "in flight" is a request the fake holds with a latency fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import spotipy

from runner.execution import RunOutcome
from runner.state import RunStatus
from runner.testing import FakeSpotify, Fault
from runner.testing.harness import JobHarness

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
