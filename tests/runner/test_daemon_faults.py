"""The daemon in a hostile world: a token store that fills up or turns read-only, a state database
deleted under it, and Spotify's spent quota. Real processes, real mounts, the fake over HTTP."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
from collections.abc import Callable, Iterator

import pytest
from daemon_world import World, every
from faults import read_only, small_disk

from runner.holds import HOLD_KEY
from runner.state import RunStatus, open_state
from runner.testing import FakeSpotify, Fault
from runner.tokens import TokenStore


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    """Access tokens that live 3 s, and single-use refresh tokens."""
    with FakeSpotify(rotation="rotate_revoke", access_token_lifetime=3) as started:
        yield started


def alive(fake: FakeSpotify, refresh_token: str) -> bool:
    with fake.lock:
        grant = fake.grants.get(refresh_token)
        return grant is not None and not grant.revoked


def ok_runs(world: World) -> int:
    return sum(1 for r in world.runs("tick") if r.status is RunStatus.OK)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_the_background_refresher_keeps_a_rotated_token_the_disk_refuses(
    world: World, fault: str
) -> None:
    accounts = world.state_dir / "accounts"
    with contextlib.ExitStack() as stack:
        disk = stack.enter_context(small_disk(accounts)) if fault == "full" else None
        world.write_config({"tick": every(1)})
        daemon = world.daemon()
        daemon.wait_started()
        world.wait_runs("tick", lambda runs: any(r.status is RunStatus.OK for r in runs))
        breaking: Callable[[], contextlib.AbstractContextManager[object]]
        if disk is not None:
            disk.fill()
            breaking = contextlib.nullcontext
        else:
            account = TokenStore(world.state_dir).path.parent
            breaking = lambda: read_only(account)  # noqa: E731
        with breaking():
            log = daemon.wait_log("could not be saved", timeout=60)
            assert "ERROR" in log
            assert "kept in memory only" in log
            expected = "the disk is full" if disk is not None else "read-only"
            assert expected in log
            # The jobs keep running on the token held in memory, through further rotations.
            before = ok_runs(world)
            world.wait_runs(
                "tick",
                lambda runs: sum(r.status is RunStatus.OK for r in runs) >= before + 4,
                timeout=30,
                what="ok runs on the unsaved token",
            )
            if disk is not None:
                disk.free()
        daemon.wait_log("saved the new refresh token", timeout=30)
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0
        stored = TokenStore(world.state_dir).load()
        assert stored is not None
        assert alive(world.fake, stored.refresh_token)
        # Nothing was lost: the next command carries on from the store.
        assert world.cli("run-job", "tick").returncode == 0
        assert "Traceback" not in daemon.stderr()


@pytest.mark.slow
def test_a_stop_with_a_rotated_token_the_disk_still_refuses_says_it_is_lost(world: World) -> None:
    """The write is tried once more at the stop; failing, the stop says so and what to do."""
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda runs: any(r.status is RunStatus.OK for r in runs))
    with read_only(TokenStore(world.state_dir).path.parent):
        daemon.wait_log("could not be saved", timeout=60)
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0
    stop = daemon.stderr().split("stopping: no new runs", 1)[1]
    (line,) = [line for line in stop.splitlines() if "lost with this stop" in line]
    assert "ERROR" in line
    assert "could not be saved" in line
    assert "read-only" in line
    assert "run 'spotify-runner auth'" in line
    assert "Traceback" not in daemon.stderr()


@pytest.mark.slow
@pytest.mark.parametrize("header", [float("inf"), 99999999999999.0])
def test_an_endless_retry_after_sets_the_hold_and_nothing_fires_into_the_429s(
    world: World, header: float
) -> None:
    world.fake.inject(
        Fault(method="GET", path="/me/playlists$", status=429, retry_after=header, times=None)
    )
    world.write_config({"limited": every(1, job="limited"), "tick": every(1)})
    daemon = world.daemon()
    (run,) = world.wait_runs("limited", lambda rs: len(rs) >= 1, what="the limited run")[:1]
    assert run.status is RunStatus.RATE_LIMITED
    assert run.error is not None
    assert run.error.startswith("rate-limited by Spotify for 1d")
    world.wait_runs(
        "tick",
        lambda rs: any("rate-limited this app until" in (r.summary or "") for r in rs),
        what="a held run",
    )
    limited_calls = world.fake.count("GET", "^/v1/me/playlists$")
    world.wait_runs(
        "limited", lambda rs: sum(r.status is RunStatus.SKIPPED for r in rs) >= 3, what="holds"
    )
    assert world.fake.count("GET", "^/v1/me/playlists$") == limited_calls == 1
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    log = daemon.stderr()
    assert "Traceback" not in log
    assert "machinery failed" not in log


@pytest.mark.slow
def test_a_state_database_deleted_under_the_daemon_is_noticed_and_recreated(
    world: World,
) -> None:
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    before = world.wait_runs("tick", lambda rs: len(rs) >= 2, what="runs before the deletion")
    db = world.state_dir / "state.sqlite3"
    db.unlink()
    log = daemon.wait_log("was deleted while in use", timeout=60)
    assert "ERROR" in log
    assert str(db) in log
    # Nothing recorded before is lost, and what comes after lands in the new file.
    after = world.wait_runs(
        "tick", lambda rs: len(rs) >= len(before) + 3, what="runs after the deletion"
    )
    assert [r.id for r in after[: len(before)]] == [r.id for r in before]
    state = world.state_dir / "state.sqlite3"
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert state.exists()
    restarted = world.runs("tick")
    assert len(restarted) >= len(after)
    assert world.cli("jobs").returncode == 0
    assert "Traceback" not in daemon.stderr()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(path="/me/playlists$", reason="QUOTA_EXCEEDED", times=None), "QUOTA_EXCEEDED"),
        (Fault(path="/me/playlists$", retry_after=3600, times=None), "Retry-After 1h"),
    ],
    ids=["quota", "retry-after"],
)
def test_a_hold_is_shown_in_jobs_and_kept_across_a_restart(
    world: World, fault: Fault, reason: str
) -> None:
    world.fake.inject(fault)
    world.write_config({"limited": every(1, job="limited"), "tick": every(1)})
    daemon = world.daemon()
    (run,) = world.wait_runs("limited", lambda rs: len(rs) >= 1, what="the limited run")[:1]
    assert run.status is RunStatus.RATE_LIMITED
    if reason == "QUOTA_EXCEEDED":
        assert run.error is not None
        assert run.error.endswith("every job waits 5m")
    world.wait_runs("tick", lambda rs: any(r.status is RunStatus.SKIPPED for r in rs))
    jobs = world.cli("jobs")
    assert jobs.returncode == 0, jobs.stderr
    held_line = next(line for line in jobs.stdout.splitlines() if line.startswith("spotify:"))
    assert "rate-limited until" in held_line
    assert reason in held_line
    assert "every job waits" in held_line
    as_json = json.loads(world.cli("jobs", "--json").stdout)
    assert reason in as_json["rate_limit"]["reason"]
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    calls = world.fake.count("GET", "^/v1/me/playlists$")
    me_calls = world.fake.count("GET", "^/v1/me/?$")
    # A restart keeps the hold: nothing reaches Spotify, every run is recorded as held.
    again = world.daemon()
    again.wait_log("rate-limited this app before the restart")
    skipped_before = sum(r.status is RunStatus.SKIPPED for r in world.runs("tick"))
    world.wait_runs(
        "tick",
        lambda rs: sum(r.status is RunStatus.SKIPPED for r in rs) >= skipped_before + 2,
        what="held runs after the restart",
    )
    assert world.fake.count("GET", "^/v1/me/playlists$") == calls == 1
    assert world.fake.count("GET", "^/v1/me/?$") == me_calls
    again.send(signal.SIGTERM)
    assert again.wait() == 0
    assert "Traceback" not in again.stderr() + daemon.stderr()


@pytest.mark.slow
def test_a_full_disk_under_the_daemon_is_said_in_one_line_and_it_carries_on(world: World) -> None:
    with small_disk(world.state_dir, size="600k") as disk:
        world.write_config({"tick": every(1)})
        daemon = world.daemon()
        daemon.wait_started()
        world.wait_runs("tick", lambda rs: len(rs) >= 1)
        disk.fill()
        log = daemon.wait_log("the disk is full", timeout=60)
        disk.free()
        # Runs are recorded again once there is room.
        count = len(world.runs("tick"))
        world.wait_runs("tick", lambda rs: len(rs) >= count + 2, what="runs after freeing")
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0
        log = daemon.stderr()
        assert "Traceback" not in log
        assert "disk I/O error" not in log


@pytest.mark.slow
def test_damaged_pause_and_hold_records_neither_escape_nor_stop_the_runs(world: World) -> None:
    """The bookkeeping before a run (pause, hold, skips) is guarded like the run itself."""
    open_state(world.state_dir).close()
    with contextlib.closing(sqlite3.connect(world.state_dir / "state.sqlite3")) as db, db:
        # Hand-edited rows: a hold that is not a mapping, a pause that is not even JSON.
        db.execute(
            "INSERT INTO memory (key, value, updated_at) VALUES (?, ?, '2026-01-01T00:00:00')",
            (HOLD_KEY, '["until", "tomorrow"]'),
        )
        db.execute(
            "INSERT INTO memory (key, value, updated_at) VALUES (?, ?, '2026-01-01T00:00:00')",
            ("paused:default:held", "{since forever"),
        )
    world.write_config({"tick": every(1), "held": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    # A hold that cannot be read is no hold: the other job's runs go on, every one recorded.
    runs = world.wait_runs("tick", lambda rs: ok_runs(world) >= 2, what="2 ok runs")
    assert all(r.status is RunStatus.OK for r in runs)
    # The damaged pause is said in one line per due run, naming the fix; the job does not run.
    line = daemon.wait_log("DELETE FROM memory WHERE key = 'paused:default:held'", count=2)
    assert "held: the record 'paused:default:held'" in line
    assert "is not valid JSON" in line
    assert world.runs("held") == []
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    log = daemon.stderr()
    assert "Traceback" not in log
    assert "machinery failed" not in log
    assert "raised an exception" not in log  # APScheduler's own report of an escaped error
