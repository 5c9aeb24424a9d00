"""Benchmark: the playlist updater against a naive read-then-replace script (`make bench`).

A 10,000-track playlist whose target differs by 100 tracks (100 new at the top, the 100 oldest
trimmed), on the embedded fake Spotify with 20 ms of latency before every answer:

- the job, run as the daemon runs it (JobHarness: real executor, transport, state), first with no
  remembered state, then unchanged, then with 100 more new tracks while the playlist is unchanged,
  then while another app inserts a track during the job's POST (the next run must see it);
- a plain sequential spotipy script: read every page of 50, then replace (PUT the first 100, POST
  the rest in 100s); it skips the writes when nothing changed, to be fair to it.

Optimum: ceil(N / 50) reads (none when the playlist is known unchanged) plus the fewest writes.
Run: .venv/bin/python bench/bench_playlist_updater.py
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import spotipy

from runner.state import RunStatus
from runner.testing import FakeSpotify, Fault
from runner.testing.harness import JobHarness

SIZE = 10_000
CHANGE = 100
LATENCY = 0.02
PAGE = 50


OTHER_APP: set[str] = set()
"""Access tokens of the other app, whose requests are not the job's."""


def api_requests(fake: FakeSpotify) -> tuple[int, int]:
    """(reads, writes) made to the Web API since the log was last cleared."""
    calls = [r for r in fake.requests if r.path.startswith("/v1/") and r.token not in OTHER_APP]
    writes = sum(1 for r in calls if r.method in ("POST", "PUT", "DELETE"))
    return len(calls) - writes, writes


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def other_app_inserts(fake: FakeSpotify, playlist_id: str, uri: str) -> threading.Thread:
    """Inserts `uri` at the top, with another token, once the fake holds the job's POST."""

    def insert() -> None:
        while True:
            with fake.lock:
                if all(remaining == 0 for _, remaining in fake.faults):
                    break
            time.sleep(0.005)
        token = fake.issue_access_token("alice", ("playlist-modify-private",), lifetime=3600.0)
        OTHER_APP.add(token)
        client = spotipy.Spotify(auth=token)
        client.prefix = fake.api_url + "/"
        client.playlist_add_items(playlist_id, [uri], position=0)

    thread = threading.Thread(target=insert, daemon=True)
    thread.start()
    return thread


def naive(fake: FakeSpotify, playlist_id: str, target: list[str]) -> None:
    """Read every page in turn, then replace the whole playlist (100 URIs a request)."""
    scopes = ("playlist-read-private", "playlist-modify-private")
    token = fake.issue_access_token("alice", scopes, lifetime=3600.0)
    with requests.Session() as session:
        client = spotipy.Spotify(auth=token, requests_session=session)
        client.prefix = fake.api_url + "/"
        current: list[str] = []
        offset = 0
        while True:
            page = client.playlist_items(playlist_id, limit=PAGE, offset=offset)
            current.extend(item["item"]["uri"] for item in page["items"])
            offset += PAGE
            if page["next"] is None:
                break
        if current == target:
            return
        client.playlist_replace_items(playlist_id, target[:100])
        for start in range(100, len(target), 100):
            client.playlist_add_items(playlist_id, target[start : start + 100])


def main() -> None:
    rows: list[tuple[str, int, int, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, FakeSpotify() as fake:
        uris = fake.make_tracks(SIZE + 3 * CHANGE + 1)
        old, new = uris[:SIZE], uris[SIZE : SIZE + CHANGE]
        newer, newest_batch = uris[SIZE + CHANGE : SIZE + 2 * CHANGE], uris[SIZE + 2 * CHANGE : -1]
        intruder = uris[-1]
        mine = fake.add_playlist(name="Job's", uris=old)
        theirs = fake.add_playlist(name="Naive", uris=old)
        feed = Path(tmp) / "plays.txt"
        feed.write_text("".join(uri + "\n" for uri in new))
        options = {
            "playlist": mine,
            "sources": [{"feed": {"file": str(feed)}}],
            "mode": "append",
            "position": "top",
            "max_tracks": SIZE,
        }
        expected = list(reversed(new)) + old[: SIZE - CHANGE]
        reads = math.ceil(SIZE / PAGE)

        with JobHarness(fake, Path(tmp) / "state") as harness:
            fake.latency = LATENCY

            def job_run(label: str, optimum: int, after: list[str]) -> float:
                fake.clear_requests()
                outcome, seconds = timed(lambda: harness.run("playlist_updater", options))
                if outcome.status is not RunStatus.OK or fake.playlist_uris(mine) != after:
                    raise SystemExit(f"{label}: wrong result: {outcome.line()}")
                r, w = api_requests(fake)
                rows.append((label, r, w, optimum, seconds))
                return seconds

            job_changed = job_run("job: 100 new, 100 trimmed (no state)", reads + 2, expected)
            job_run("job: unchanged", 1, expected)
            job_run("job: unchanged again", 1, expected)
            with feed.open("a") as out:
                out.writelines(uri + "\n" for uri in newer)
            newest = list(reversed(newer)) + expected[: SIZE - CHANGE]
            job_run("job: 100 more new (playlist as last written)", 1 + 2, newest)

            # Another app inserts a track while the job's POST is in flight: the snapshot_id
            # that POST answers already includes it, yet the next run sees the item count differ
            # and reads the playlist again; the run after that is one request again.
            with feed.open("a") as out:
                out.writelines(uri + "\n" for uri in newest_batch)
            fake.inject(Fault(method="POST", path=r"/items$", status=None, latency=0.5))
            meanwhile = other_app_inserts(fake, mine, intruder)
            during = list(reversed(newest_batch)) + [intruder] + newest[: SIZE - CHANGE]
            job_run("job: 100 more new, other app adds 1 meanwhile", 1 + 2, during)
            meanwhile.join()
            job_run(
                "job: next run reads again, trims 1",
                math.ceil((SIZE + 1) / PAGE) + 1,
                during[:SIZE],
            )
            job_run("job: unchanged after that", 1, during[:SIZE])

            fake.clear_requests()
            _, naive_changed = timed(lambda: naive(fake, theirs, expected))
            assert fake.playlist_uris(theirs) == expected
            r, w = api_requests(fake)
            rows.append(("naive: 100 new, 100 trimmed", r, w, reads + 2, naive_changed))
            fake.clear_requests()
            _, seconds = timed(lambda: naive(fake, theirs, expected))
            r, w = api_requests(fake)
            rows.append(("naive: unchanged", r, w, 1, seconds))
            fake.latency = 0.0

    print(f"{SIZE:,}-track playlist, {LATENCY * 1000:.0f} ms latency per request (fake Spotify)")
    print()
    print(f"| {'run':<46} | reads | writes | total | optimum | wall time |")
    print(f"|{'-' * 48}|------:|-------:|------:|--------:|----------:|")
    for label, r, w, optimum, seconds in rows:
        print(f"| {label:<46} | {r:>5} | {w:>6} | {r + w:>5} | {optimum:>7} | {seconds:>8.2f}s |")
    print()
    print(f"speed-up on the changed playlist: {naive_changed / job_changed:.1f}x")


if __name__ == "__main__":
    main()
