"""Pause, resume and manual runs: `spotify-runner pause/resume`, and the daemon honouring them."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from daemon_world import World, every, wait_for

from runner.daemon import Daemon
from runner.errors import UsageError
from runner.pause import is_paused, pause, paused_since, resume
from runner.state import RunStatus, open_state

pytestmark = pytest.mark.slow


def ok_runs(runs: list) -> int:  # type: ignore[type-arg]
    return sum(r.status is RunStatus.OK for r in runs)


def serve_beside(daemon: Daemon, drive: Callable[[], None]) -> None:
    """Serves the in-process daemon while `drive()` runs in a thread once it is scheduling.

    Then stops the daemon with SIGTERM; what `drive` raised is raised here.
    """
    problems: list[BaseException] = []

    def beside() -> None:
        try:
            wait_for(lambda: getattr(daemon, "scheduler", None) is not None, 20, "the scheduler")
            wait_for(lambda: daemon.scheduler.running, 60, "the scheduler to start")
            drive()
        except BaseException as exc:  # reported by the main thread
            problems.append(exc)
        finally:
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=beside)
    helper.start()
    try:
        assert daemon.serve() == 0
    finally:
        helper.join()
    if problems:
        raise problems[0]


def test_pause_is_kept_in_the_store_per_account_and_resume_clears_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = open_state(tmp_path)
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        assert pause(state, "radio", "default", now=moment) is True
        assert pause(state, "radio", "default", now=moment + timedelta(hours=1)) is False
        assert paused_since(state, "radio", "default") == moment  # the first pause's time
        assert not is_paused(state, "radio", "bob")
    finally:
        state.close()
    state = open_state(tmp_path)  # a new process (a restart) sees the same
    try:
        assert is_paused(state, "radio", "default")
        assert resume(state, "radio", "default") is True
        assert resume(state, "radio", "default") is False
        assert not is_paused(state, "radio", "default")
    finally:
        state.close()


def test_cli_pause_and_resume_show_in_jobs(world: World) -> None:
    world.write_config({"tick": every(60)})
    paused = world.cli("pause", "tick")
    assert (paused.returncode, paused.stdout) == (0, "tick: paused\n")
    again = world.cli("pause", "tick")
    assert again.stdout == "tick: already paused\n"
    listed = json.loads(world.cli("jobs", "--json").stdout)
    (job,) = listed["jobs"]
    assert job["paused"] is True
    assert job["next_run"] is not None  # it keeps its schedule
    table = world.cli("jobs").stdout
    assert "paused (" in table
    resumed = world.cli("resume", "tick")
    assert resumed.stdout == "tick: resumed\n"
    assert json.loads(world.cli("jobs", "--json").stdout)["jobs"][0]["paused"] is False
    unknown = world.cli("pause", "nope")
    assert unknown.returncode == 2
    assert (
        unknown.stderr == f"error: no job named 'nope' in {world.config_path} (configured: tick)\n"
    )


def test_a_pause_with_the_state_on_postgresql_is_kept_there(
    world: World, postgres_url: str
) -> None:
    # The CLI (and the status page) must write the pause where the daemons read it: the shared
    # database, not a SQLite file in this machine's state_dir.
    world.write_config({"tick": every(60)}, state={"url": postgres_url})
    assert world.cli("pause", "tick").stdout == "tick: paused\n"
    from runner.state.postgres import PostgresStateStore

    store = PostgresStateStore(postgres_url)
    try:
        assert is_paused(store, "tick", "default")
    finally:
        store.close()
    assert not (world.state_dir / "state.sqlite3").exists()
    assert json.loads(world.cli("jobs", "--json").stdout)["jobs"][0]["paused"] is True
    assert world.cli("resume", "tick").stdout == "tick: resumed\n"
    store = PostgresStateStore(postgres_url)
    try:
        assert not is_paused(store, "tick", "default")
    finally:
        store.close()


def test_a_paused_job_does_not_run_until_resumed_and_the_pause_survives_restart_and_reload(
    world: World,
) -> None:
    world.write_config({"tick": every(1), "tock": every(1)})
    assert world.cli("pause", "tick").returncode == 0
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= 3, timeout=60, what="3 ok runs")
    assert world.runs("tick") == []
    daemon.send(signal.SIGHUP)
    daemon.wait_log("reloaded")
    seen = ok_runs(world.runs("tock"))
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= seen + 2, timeout=60, what="2 more runs")
    assert world.runs("tick") == []  # still paused after the reload
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0

    restarted = world.daemon()
    restarted.wait_started()
    seen = ok_runs(world.runs("tock"))
    world.wait_runs("tock", lambda rs: ok_runs(rs) >= seen + 2, timeout=60, what="2 more runs")
    assert world.runs("tick") == []  # still paused after the restart
    assert "tick: paused, not running" in restarted.stderr()

    assert world.cli("resume", "tick").returncode == 0  # beside the running daemon
    runs = world.wait_runs("tick", lambda rs: ok_runs(rs) >= 2, timeout=60, what="2 ok runs")
    assert {r.trigger for r in runs} <= {"schedule", "catch_up"}
    restarted.send(signal.SIGTERM)
    assert restarted.wait() == 0


def test_run_now_records_a_manual_run_and_is_refused_while_it_runs(world: World) -> None:
    """In-process: `run_now` is what the status page's Run now calls."""
    world.write_config(
        {"nap": {"job": "slow", "schedule": {"every": "1h"}, "options": {"seconds": 1.5}}}
    )
    assert world.cli("pause", "nap").returncode == 0  # a manual run is not held by a pause
    daemon = Daemon(str(world.config_path))
    refusals: list[str] = []

    def drive() -> None:
        daemon.run_now("nap")
        try:
            daemon.run_now("nap")
        except UsageError as exc:
            refusals.append(str(exc))
        wait_for(lambda: any(r.ended_at for r in world.runs("nap")), 20, "the manual run")
        try:
            daemon.run_now("nope")
        except UsageError as exc:
            refusals.append(str(exc))

    serve_beside(daemon, drive)
    assert refusals == [
        "nap is running right now; try again when this run has ended",
        "no job named 'nope' (configured: nap)",
    ]
    (run,) = world.runs("nap")
    assert (run.status, run.trigger, run.scheduled_at) == (RunStatus.OK, "manual", None)


def test_a_run_now_is_requested_until_its_end_is_in_the_history(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page refreshes itself while `run_requested`; asked first, then the history read.

    Between APScheduler dropping the one-off job from its store and the run taking the job's
    lock the daemon reads the state store (the rate-limit hold): slowed here to half a second, as
    a loaded machine may. At no moment may a Run now be neither requested nor ended in the
    history, or the page stops refreshing before the run shows up.
    """
    import runner.daemon

    real_hold = runner.daemon.current_hold

    def slow_hold(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return real_hold(*args, **kwargs)

    monkeypatch.setattr(runner.daemon, "current_hold", slow_hold)
    world.write_config(
        {"nap": {"job": "slow", "schedule": {"every": "1h"}, "options": {"seconds": 0.5}}}
    )
    daemon = Daemon(str(world.config_path))
    gaps: list[float] = []

    def drive() -> None:
        asked = time.monotonic()
        daemon.run_now("nap")
        deadline = asked + 20
        while not any(r.ended_at for r in world.runs("nap")) or daemon.run_requested("nap"):
            assert time.monotonic() < deadline, "the manual run did not end within 20 s"
            if not daemon.run_requested("nap") and not any(r.ended_at for r in world.runs("nap")):
                gaps.append(round(time.monotonic() - asked, 2))
            time.sleep(0.02)

    serve_beside(daemon, drive)
    assert gaps == [], "seconds after Run now when it was neither requested nor in the history"
    (run,) = world.runs("nap")
    assert (run.status, run.trigger) == (RunStatus.OK, "manual")
