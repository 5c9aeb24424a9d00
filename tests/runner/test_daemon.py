"""The real daemon, as a subprocess, against the embedded fake Spotify.

Each test writes a config whose `every: 1s` schedules make things happen within a second or
two, then polls the run history (the daemon's own SQLite file) with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_world import World, every, wait_for

from runner.daemon import Daemon
from runner.state import RunRecord, RunStatus, open_state
from runner.testing import Fault

pytestmark = pytest.mark.slow

REVOKED = "authorization expired or revoked: run 'spotify-runner auth'"


def ok_runs(runs: list) -> int:  # type: ignore[type-arg]
    return sum(r.status is RunStatus.OK for r in runs)


def soon(seconds: float) -> str:
    """An `at` moment at least `seconds` from now, in UTC (whole seconds, rounded up)."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds + 1)
    return moment.replace(microsecond=0).isoformat(timespec="seconds")


# A daemon process on a loaded machine may take seconds to start scheduling: a one-off due
# sooner would be in the past by then, and (rightly) never run.
START = 8


def test_jobs_run_on_every_schedules_and_keep_their_state(world: World) -> None:
    world.write_config({"tick": every(1), "tock": every(1, job="limited")})
    daemon = world.daemon()
    daemon.wait_started()
    ticks = world.wait_runs("tick", lambda rs: ok_runs(rs) >= 3, what="3 ok runs")
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= 3, what="3 ok runs")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert {r.trigger for r in ticks} == {"schedule"}
    assert all(r.scheduled_at is not None for r in ticks)
    # ctx.state carried from one run to the next: the counter went 1, 2, 3.
    assert [r.summary for r in ticks if r.status is RunStatus.OK][:3] == [
        "count 1",
        "count 2",
        "count 3",
    ]


def test_a_failing_job_does_not_stop_the_others(world: World) -> None:
    world.write_config({"broken": every(1, job="fail", retries=0), "tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= 3, what="3 ok runs")
    failed = world.wait_runs(
        "broken", lambda rs: sum(r.status is RunStatus.FAILED for r in rs) >= 2, what="failures"
    )
    assert daemon.proc.poll() is None
    error = failed[0].error
    assert error == "job error: RuntimeError: broken is broken on purpose"
    assert "\n" not in error
    log = daemon.wait_log("broken: failed")
    assert "ERROR runner.execution: broken: failed in" in log
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_retry_after_1_is_waited_out_and_the_run_succeeds(world: World) -> None:
    world.fake.inject(Fault(method="GET", path="/me/playlists$", status=429, retry_after=1))
    world.write_config({"limited": {"job": "limited", "schedule": {"at": soon(START)}}})
    daemon = world.daemon()
    runs = world.wait_runs("limited", lambda rs: len(rs) >= 1, timeout=60, what="the run")
    assert [(r.status, r.attempt, r.summary) for r in runs] == [(RunStatus.OK, 1, "0 playlists")]
    sent = [r for r in world.fake.requests if r.path == "/v1/me/playlists"]
    assert [r.status for r in sent] == [429, 200]
    # The second request came after the Retry-After, not before.
    assert sent[1].at - sent[0].at >= 0.9
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_retry_after_3600_ends_the_run_and_schedules_a_retry(world: World) -> None:
    world.fake.inject(
        Fault(method="GET", path="/me/playlists$", status=429, retry_after=3600, times=None)
    )
    world.write_config(
        {
            "limited": {"job": "limited", "schedule": {"at": soon(START)}, "retries": 2},
            "tick": every(1, job="hello"),
        }
    )
    daemon = world.daemon()
    runs = world.wait_runs("limited", lambda rs: len(rs) >= 1, timeout=60, what="the run")
    assert len(runs) == 1
    run = runs[0]
    assert run.status is RunStatus.RATE_LIMITED
    assert run.error is not None
    assert run.error.startswith("rate-limited by Spotify for 1h")
    assert run.ended_at is not None
    assert (run.ended_at - run.started_at).total_seconds() < 30  # not an hour asleep
    log = daemon.wait_log("limited: retrying in 3600s (attempt 2 of 3)")
    assert "Traceback" not in log

    # Spotify's limit is per app: the other job waits for it too instead of meeting 429s.
    def held(rs: list[RunRecord]) -> list[RunRecord]:
        return [
            r
            for r in rs
            if r.status is RunStatus.SKIPPED and "rate-limited this app until" in (r.summary or "")
        ]

    world.wait_runs("tick", lambda rs: len(held(rs)) >= 1, what="a held run")
    me_calls = world.fake.count("GET", "^/v1/me/?$")
    world.wait_runs("tick", lambda rs: len(held(rs)) >= 3, what="more held runs")
    assert world.fake.count("GET", "^/v1/me/?$") == me_calls
    # Still responsive: a stop is immediate.
    daemon.send(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    # One request: the 429 was not slept on, and nothing retried it within the run.
    assert world.fake.count("GET", "^/v1/me/playlists$") == 1


def test_sigterm_lets_the_running_run_finish_then_exits_0(world: World) -> None:
    world.write_config({"slow": every(1, job="slow", options={"seconds": 4})})
    daemon = world.daemon()
    running = wait_for(
        lambda: [r for r in world.runs("slow") if r.status is RunStatus.RUNNING],
        what="a run in progress",
    )
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    runs = world.runs("slow")
    finished = next(r for r in runs if r.id == running[0].id)
    assert finished.status is RunStatus.OK
    assert finished.summary == "slept 4s as alice"
    # Nothing is left running, and nothing started once the daemon was stopping: the one run
    # still going then (at most one: the slot is busy) ended after it, as every run, ok. (Read
    # from the log's order, not from when the test sent the signal: on a loaded machine 25 s
    # once passed between the test seeing the run going and the daemon stopping.)
    assert all(r.ended_at is not None for r in runs)
    before, stopping, after = daemon.stderr().partition(
        "stopping: no new runs; waiting for running ones"
    )
    assert stopping
    assert after.count("slow: ok in") == 1
    ok = [r for r in runs if r.status is RunStatus.OK]
    assert len(ok) == before.count("slow: ok in") + 1
    assert [r.status for r in runs if r.status is not RunStatus.SKIPPED] == [RunStatus.OK] * len(ok)


def test_a_second_sigterm_exits_at_once_and_the_run_is_marked_interrupted(world: World) -> None:
    world.write_config(
        {"slow": every(1, job="slow", options={"seconds": 60}, timeout="2m")},
        shutdown_timeout="2m",
    )
    daemon = world.daemon()
    running = wait_for(
        lambda: [r for r in world.runs("slow") if r.status is RunStatus.RUNNING],
        what="a run in progress",
    )
    daemon.send(signal.SIGTERM)
    daemon.wait_log("stopping: no new runs")
    daemon.send(signal.SIGTERM)
    assert daemon.wait(timeout=30) != 0  # the run would sleep 60 s
    assert "second signal: exiting at once" in daemon.stderr()
    # The next start notices the run that was cut short.
    world.write_config({"slow": every("1h", job="slow")})
    second = world.daemon()
    second.wait_log("1 run(s) were interrupted by the last stop")
    second.wait_started()  # the line above comes before the signal handlers are installed
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    cut = next(r for r in world.runs("slow") if r.id == running[0].id)
    assert cut.status is RunStatus.FAILED
    assert cut.error == "interrupted (daemon stopped)"


def test_a_run_outliving_shutdown_timeout_is_recorded_interrupted_and_the_exit_is_0(
    world: World,
) -> None:
    """systemd's stop must not wait for a job past shutdown_timeout, nor meet a closed database."""
    world.write_config(
        {"slow": every(1, job="slow", options={"seconds": 60}, timeout="2m")},
        shutdown_timeout="1s",
    )
    daemon = world.daemon()
    running = wait_for(
        lambda: [r for r in world.runs("slow") if r.status is RunStatus.RUNNING],
        what="a run in progress",
    )
    daemon.send(signal.SIGTERM)
    # Out after its 1s of grace, not after the 60 s the job would take: the bound only stops a
    # daemon that waits for the job; the log line and the interrupted run below are the proof.
    assert daemon.wait(timeout=45) == 0
    cut = next(r for r in world.runs("slow") if r.id == running[0].id)
    assert (cut.status, cut.error) == (RunStatus.FAILED, "interrupted (daemon stopped)")
    assert cut.ended_at is not None
    err = daemon.stderr()
    assert "stopped after shutdown_timeout (1s) with 1 run(s) still going" in err
    assert "closed database" not in err
    assert "Traceback" not in err
    # Nothing is left for the next start to find.
    world.write_config({"slow": every("1h", job="slow")})
    second = world.daemon()
    second.wait_started()
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    assert "were interrupted by the last stop" not in second.stderr()


def test_a_state_dir_that_refuses_a_run_is_one_line_per_run(world: World) -> None:
    """What a state directory taken over by another user does to runs: no traceback each time."""
    world.write_config({"tick": every(1)})
    world.state_dir.mkdir(parents=True, exist_ok=True)
    (world.state_dir / "locks").write_text("in the way of the run locks' folder\n")
    daemon = world.daemon()
    daemon.wait_started()
    # Each run is recorded as failed, in one line (see test_deadline's run-lock test).
    line = f"cannot take the run lock {world.state_dir / 'locks' / 'default' / 'tick.lock'}: "
    log = daemon.wait_log(line, count=2)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "Traceback" not in log
    assert "the run machinery failed" not in log


def test_sighup_adds_a_job_and_a_broken_config_keeps_the_old_one(world: World) -> None:
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= 1, what="a first run")

    world.write_config({"tick": every(1), "tock": every(1, job="limited")})
    daemon.send(signal.SIGHUP)
    daemon.wait_log("reloaded: 2 job(s), added tock")
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= 2, what="runs of the added job")

    good = world.config_path.read_text()
    world.config_path.write_text(good + "  oops: [\n")
    daemon.send(signal.SIGHUP)
    log = daemon.wait_log("reload failed, keeping the running config")
    assert f"{world.config_path}:" in log
    # A job option its module refuses is a broken config too.
    world.write_config({"tick": every(1), "slow": every(1, job="slow", options={"secs": 1})})
    daemon.send(signal.SIGHUP)
    log = daemon.wait_log("reload failed, keeping the running config", count=2)
    assert "jobs.slow.options.secs: unknown option" in log
    # A config file that went missing is reported the same way.
    world.config_path.unlink()
    daemon.send(signal.SIGHUP)
    daemon.wait_log("reload failed, keeping the running config", count=3)

    for job in ("tick", "tock"):
        before = ok_runs(world.runs(job))
        world.wait_runs(job, lambda rs, n=before: ok_runs(rs) >= n + 2, what="runs after reloads")
    assert world.runs("slow") == []
    assert "Traceback" not in daemon.stderr()
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_a_second_daemon_on_the_same_state_dir_is_refused(world: World) -> None:
    world.write_config({"tick": every("1h")})
    first = world.daemon()
    first.wait_started()
    second = world.cli("run", timeout=60)
    assert second.returncode == 2
    assert f"(PID {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.proc.poll() is None
    first.send(signal.SIGTERM)
    assert first.wait() == 0


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET (short path: 108 bytes max)."""
    with tempfile.TemporaryDirectory(prefix="sdn") as folder:
        path = str(Path(folder) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(path)
            sock.settimeout(0.2)
            yield sock, path
        finally:
            sock.close()


def test_sd_notify_messages_arrive(world: World, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    world.write_config({"tick": every(1)})
    daemon = world.daemon(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    messages: list[str] = []

    def until(field: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            if field in messages[-1].splitlines():
                return messages[-1]
        pytest.fail(f"no {field} among {messages}")

    ready = until("READY=1")
    status = next(line for line in ready.splitlines() if line.startswith("STATUS="))
    assert status.startswith("STATUS=next run: tick at ")
    until("WATCHDOG=1")
    until("WATCHDOG=1")  # again: it is periodic
    daemon.send(signal.SIGHUP)
    reloading = until("RELOADING=1")
    assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.splitlines())
    until("READY=1")  # the reload is done
    daemon.send(signal.SIGTERM)
    until("STOPPING=1")
    assert daemon.wait() == 0
    assert any(m.startswith("STATUS=") for m in messages if "READY=1" not in m)


def seed_history(world: World, job: str, scheduled_at: datetime) -> None:
    """A run of `job` that was scheduled (and ran fine) at `scheduled_at`."""
    state = open_state(world.state_dir)
    try:
        run = state.start_run(job, scheduled_at=scheduled_at, started_at=scheduled_at)
        state.finish_run(run, RunStatus.OK, ended_at=scheduled_at + timedelta(seconds=1))
    finally:
        state.close()


def test_catch_up_runs_exactly_once_after_downtime(world: World) -> None:
    now = datetime.now(UTC)
    world.write_config(
        {
            "hourly": every("1h", catch_up=True),
            "yearly": {"job": "counter", "schedule": {"cron": "0 0 1 1 *"}, "catch_up": True},
            "lazy": every("1h", catch_up=False),
            "fresh": every("1h", catch_up=True),  # never ran: nothing to catch up
        }
    )
    five_hours_ago = now - timedelta(hours=5, minutes=30)
    seed_history(world, "hourly", five_hours_ago)
    seed_history(world, "yearly", datetime(now.year - 2, 1, 1, tzinfo=UTC))
    seed_history(world, "lazy", five_hours_ago)
    daemon = world.daemon()
    daemon.wait_started()
    hourly = world.wait_runs("hourly", lambda rs: len(rs) >= 2, what="the catch-up run")
    yearly = world.wait_runs("yearly", lambda rs: len(rs) >= 2, what="the catch-up run")
    # Anything else at start would have been started by now: stop, and count.
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    hourly, yearly = world.runs("hourly"), world.runs("yearly")
    assert [(r.trigger, r.status) for r in hourly[1:]] == [("catch_up", RunStatus.OK)]
    assert [(r.trigger, r.status) for r in yearly[1:]] == [("catch_up", RunStatus.OK)]
    # The one run stands for the latest missed time, not for all five.
    assert hourly[1].scheduled_at == five_hours_ago + timedelta(hours=5)
    assert yearly[1].scheduled_at == datetime(now.year, 1, 1, tzinfo=UTC)
    assert len(world.runs("lazy")) == 1
    assert world.runs("fresh") == []
    assert daemon.stderr().count("catching up once now") == 2


def test_a_run_over_its_timeout_is_recorded_and_its_thread_stops_calling(world: World) -> None:
    world.write_config(
        {
            "slow": {
                "job": "slow",
                "schedule": {"at": soon(START)},
                "timeout": "1s",
                "options": {"seconds": 2.5},
            },
            "tick": every(1, job="limited"),
        }
    )
    daemon = world.daemon()
    runs = world.wait_runs("slow", lambda rs: len(rs) >= 1, timeout=60, what="the timed-out run")
    assert [(r.status, r.error) for r in runs] == [(RunStatus.TIMED_OUT, "timed out after 1s")]
    assert runs[0].ended_at is not None
    assert (runs[0].ended_at - runs[0].started_at).total_seconds() < 2.5
    # The daemon goes on; by the time the job wakes up, its next call is refused unsent.
    before = ok_runs(world.runs("tick"))
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= before + 3, what="runs after the timeout")
    assert world.fake.count("GET", "^/v1/me/?$") == 1
    assert world.runs("slow")[0].status is RunStatus.TIMED_OUT
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_a_revoked_token_pauses_runs_until_auth_stores_a_new_one(world: World) -> None:
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= 1, what="a first run")

    # The user removes the app's access: the refresh token and its access tokens die.
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    with world.fake.lock:
        world.fake.access_tokens.clear()
    runs = world.wait_runs(
        "tick",
        lambda rs: sum(r.status is RunStatus.NEEDS_AUTH for r in rs) >= 3,
        what="needs_auth runs",
    )
    needs = [r for r in runs if r.status is RunStatus.NEEDS_AUTH]
    assert {r.error for r in needs} == {REVOKED}
    assert daemon.proc.poll() is None
    # No retry loop against the token endpoint: one refusal is enough.
    refreshes = [r for r in world.fake.requests if r.path == "/api/token" and r.status != 200]
    assert len(refreshes) == 1
    assert "Traceback" not in daemon.stderr()
    account = json.loads(world.cli("jobs", "--json").stdout)["accounts"][0]
    assert (account["authorized"], account["problem"]) == (False, REVOKED)

    done = world.authorize()
    assert done.returncode == 0, done.stderr
    last_needs = max(r.id for r in world.runs("tick") if r.status is RunStatus.NEEDS_AUTH)
    world.wait_runs(
        "tick",
        lambda rs: sum(r.status is RunStatus.OK and r.id > last_needs for r in rs) >= 2,
        what="ok runs with the new authorization",
    )
    assert daemon.proc.poll() is None
    account = json.loads(world.cli("jobs", "--json").stdout)["accounts"][0]
    assert (account["authorized"], account["problem"]) == (True, None)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_jobs_shows_the_running_daemon(world: World) -> None:
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= 1, what="a first run")
    shown = world.cli("jobs", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["daemon"] == {"running": True, "pid": daemon.pid}
    (tick,) = status["jobs"]
    assert tick["last_run"]["status"] in ("ok", "running")
    assert tick["next_run"] is not None
    text = world.cli("jobs")
    assert f"daemon: running (PID {daemon.pid})" in text.stdout
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    after = json.loads(world.cli("jobs", "--json").stdout)
    assert after["daemon"] == {"running": False, "pid": None}


def test_a_transient_failure_is_retried_later_as_the_same_scheduled_run(world: World) -> None:
    """In-process, so the back-off can be shortened: 503s outlast the run's own retries."""
    world.fake.inject(Fault(method="GET", path="/me/playlists$", status=503, times=3))
    world.write_config(
        {"limited": {"job": "limited", "schedule": {"at": soon(START)}, "retries": 2}}
    )
    daemon = Daemon(str(world.config_path), retry_base=0.4)

    def stop_once_retried() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            r.attempt == 2 and r.ended_at for r in world.runs("limited")
        ):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Thread(target=stop_once_retried)
    stopper.start()
    try:
        assert daemon.serve() == 0
    finally:
        stopper.join()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
    first, second = world.runs("limited")
    assert (first.status, first.attempt, first.trigger) == (RunStatus.TRANSIENT, 1, "schedule")
    assert first.error == "Spotify answered HTTP 503 to GET /v1/me/playlists after 3 attempts"
    assert (second.status, second.attempt, second.trigger) == (RunStatus.OK, 2, "retry")
    assert second.scheduled_at == first.scheduled_at


def test_the_status_line_says_what_needs_attention_even_with_nothing_scheduled(
    world: World, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    # Not authorized, and its only job disabled: nothing is scheduled, but the user must act.
    world.write_config({"tick": every(1, enabled=False)}, grant=False)
    daemon = world.daemon(env={"NOTIFY_SOCKET": path})
    deadline = time.monotonic() + 30
    ready = ""
    while "READY=1" not in ready.splitlines() and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            ready = sock.recv(4096).decode()
    status = next(line for line in ready.splitlines() if line.startswith("STATUS="))
    assert status == "STATUS=needs authorization; no runs scheduled"
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_sighup_removing_a_job_stops_its_runs_and_keeps_the_others(world: World) -> None:
    world.write_config({"tick": every(1), "tock": every(1, job="limited")})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= 1, what="a run of tock")
    world.write_config({"tick": every(1)})
    daemon.send(signal.SIGHUP)
    daemon.wait_log("reloaded: 1 job(s), removed tock")
    time.sleep(1.5)  # a run that had started before the reload may still end
    after = len(world.runs("tock"))
    before_tick = ok_runs(world.runs("tick"))
    world.wait_runs("tick", lambda rs: ok_runs(rs) >= before_tick + 2, what="tick going on")
    assert len(world.runs("tock")) == after  # nothing of tock was started since
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
