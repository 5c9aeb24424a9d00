"""The daemon never silent, end to end: real receivers on 127.0.0.1 behind apprise and pings."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daemon_world import World, every
from receivers import Receiver

from runner.daemon import Daemon
from runner.state import RunStatus
from runner.testing import Fault


def events(receiver: Receiver) -> list[str]:
    """The notifications received, by title word: failed, recovered, ..."""
    return [r.json()["title"] for r in receiver.requests()]


def serve_until(daemon: Daemon, done: Callable[[], bool], timeout: float = 40.0) -> int:
    """Runs an in-process daemon until `done()` holds, then stops it with SIGTERM."""

    def stopper() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=stopper)
    thread.start()
    try:
        return daemon.serve()
    finally:
        thread.join()


def assert_no_secrets(world: World, receiver: Receiver) -> None:
    bodies = [r.body.decode() for r in receiver.requests()]
    for secret in world.secrets():
        assert all(secret not in body for body in bodies)


def test_three_failed_runs_notify_once_and_the_fix_once(world: World, receiver: Receiver) -> None:
    """In-process, so the retry back-off can be short: the first run and its two retries fail."""
    # Each run tries its request three times: nine 503s fail one run and both its retries.
    # The first run and its retries take 5.5 s here (each run ~1.5 s of spotipy's own back-off
    # between requests); 10 s between scheduled runs keeps the next one from starting before
    # the last retry on a loaded machine (at 4 s it did so in CI).
    world.fake.inject(Fault(method="GET", path="/me/playlists$", status=503, times=9))
    world.write_config(
        {"flaky": every("10s", job="limited", retries=2)},
        notify={"urls": [receiver.url("json")]},
    )
    daemon = Daemon(str(world.config_path), retry_base=0.2)
    code = serve_until(daemon, lambda: any("recovered" in t for t in events(receiver)))
    assert code == 0
    runs = [r for r in world.runs("flaky") if r.status is not RunStatus.SKIPPED]
    assert [(r.status, r.attempt) for r in runs[:3]] == [
        (RunStatus.TRANSIENT, 1),
        (RunStatus.TRANSIENT, 2),
        (RunStatus.TRANSIENT, 3),
    ]
    assert runs[3].status is RunStatus.OK
    assert events(receiver) == ["spotify-runner: flaky failed", "spotify-runner: flaky recovered"]
    failed = receiver.requests()[0].json()["message"]
    assert "flaky (account default) failed: Spotify answered HTTP 503" in failed
    assert "Runs failed so far: 3." in failed
    assert "Next run: " in failed
    assert "Last log lines:" in failed
    assert_no_secrets(world, receiver)


def test_two_jobs_of_a_revoked_account_notify_needs_auth_once(
    world: World, receiver: Receiver
) -> None:
    world.write_config({"one": every(1), "two": every(1)}, notify={"urls": [receiver.url("json")]})
    daemon = world.daemon()
    daemon.wait_started()
    for job in ("one", "two"):
        world.wait_runs(
            job, lambda rs: any(r.status is RunStatus.OK for r in rs), what="an ok run", timeout=30
        )
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    with world.fake.lock:
        world.fake.access_tokens.clear()
    for job in ("one", "two"):
        world.wait_runs(
            job,
            lambda rs: sum(r.status is RunStatus.NEEDS_AUTH for r in rs) >= 3,
            what="needs_auth runs",
            timeout=30,
        )
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert events(receiver) == ["spotify-runner: account default needs authorization"]
    body = receiver.requests()[0].json()["message"]
    assert body.endswith("Its jobs wait until you run: spotify-runner auth")
    assert_no_secrets(world, receiver)


def test_a_restart_mid_outage_still_sends_one_failed_and_one_recovered(
    world: World, receiver: Receiver
) -> None:
    flag = world.dir / "broken"
    flag.touch()
    jobs = {"talk": every(1, job="chatty", options={"lines": 1, "fail_file": str(flag)})}
    world.write_config(jobs, notify={"urls": [receiver.url("json")]})
    first = world.daemon()
    first.wait_started()
    receiver.wait_for(1)
    world.wait_runs(
        "talk", lambda rs: sum(r.status is RunStatus.FAILED for r in rs) >= 2, timeout=30
    )
    first.send(signal.SIGTERM)
    assert first.wait() == 0

    second = world.daemon()
    second.wait_started()
    count = len(world.runs("talk"))
    world.wait_runs(
        "talk", lambda rs: len(rs) >= count + 2, what="failures after the restart", timeout=30
    )
    flag.unlink()
    receiver.wait_for(2)
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    assert events(receiver) == ["spotify-runner: talk failed", "spotify-runner: talk recovered"]
    failed = receiver.requests()[0].json()["message"]
    assert "talk failed as asked, run for user 4711" in failed
    assert "INFO job.talk: talk says line 0" in failed  # the run's own last log lines
    assert_no_secrets(world, receiver)


def test_a_hanging_receiver_delays_neither_runs_nor_sigterm(world: World) -> None:
    hanging = Receiver(hang=120)
    try:
        world.write_config(
            {"bad": every(1, job="fail", retries=0), "tick": every(1)},
            notify={"urls": [hanging.url("json")], "timeout": "1s"},
        )
        daemon = world.daemon()
        daemon.wait_started()
        hanging.wait_for(1)  # the failure message is stuck in the receiver
        seen = len(world.runs("tick"))
        world.wait_runs(
            "tick", lambda rs: len(rs) >= seen + 3, what="runs while it hangs", timeout=30
        )
        stopping = time.monotonic()
        daemon.send(signal.SIGTERM)
        assert daemon.wait(30) == 0
        took = time.monotonic() - stopping
    finally:
        hanging.close()
    # The stop waits for the 1s delivery timeout at most (plus the process's own exit), never
    # for the receiver's 120s.
    assert took < 1.0 + 10.0
    assert "; dropped" in daemon.stderr()  # logged, by its redacted name


def test_a_healthchecks_receiver_sees_start_then_success_or_fail(
    world: World, receiver: Receiver
) -> None:
    good = receiver.url(path="/ping/aaaa-good")
    bad = receiver.url(path="/ping/bbbb-bad")
    world.write_config(
        {
            "tick": every(1, ping=good),
            "bad": every(1, job="fail", retries=0, ping=bad),
        }
    )
    daemon = world.daemon()
    daemon.wait_started()
    for job in ("tick", "bad"):
        world.wait_runs(job, lambda rs: len(rs) >= 3, timeout=30)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    got = receiver.requests()
    for base, ok_path, word in (
        ("/ping/aaaa-good", "/ping/aaaa-good", "count "),
        ("/ping/bbbb-bad", "/ping/bbbb-bad/fail", "bad is broken on purpose"),
    ):
        mine = [r for r in got if r.path.startswith(base)]
        paths = [r.path for r in mine]
        assert len(paths) >= 6
        # Strictly alternating: each run's start, then its end.
        assert paths[0::2] == [f"{base}/start"] * len(paths[0::2])
        assert paths[1::2] == [ok_path] * len(paths[1::2])
        assert all(word in r.body.decode() for r in mine[1::2])
    runs_seen = {job: len([r for r in world.runs(job) if r.ended_at]) for job in ("tick", "bad")}
    assert runs_seen["tick"] >= 3
    assert "aaaa-good" not in daemon.stderr()


def test_a_notify_false_job_is_quiet(world: World, receiver: Receiver, tmp_path: Path) -> None:
    world.write_config(
        {"bad": every(1, job="fail", retries=0, notify=False), "tick": every(1)},
        notify={"urls": [receiver.url("json")]},
    )
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("bad", lambda rs: len(rs) >= 2, timeout=30)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert receiver.requests() == []
