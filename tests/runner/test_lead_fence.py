"""A daemon that lost its lead runs nothing, even before its next leadership check.

Two daemon processes on one real PostgreSQL database. The active one's leadership session is
ended from outside (`pg_terminate_backend`, what the server does to a session whose machine
vanished behind a network cut) while its other sessions live on, and the test takes the lock
itself at once, as a standby that won it would. Until its next check, up to a poll later, the
old active daemon still thinks it leads: a run due meanwhile must not be claimed there (it was,
once, in CI). Holding the lock in the test makes the hand-over certain each round, instead of
a race between the old daemon winning its lock back and the standby's poll.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from daemon_world import World, every, wait_for

from runner.state.leadership import LEADER_LOCK

ACTIVE = "is now the active daemon"
ROUNDS = 3
HOLD = 3.0  # seconds: past the old active daemon's next check (every 2 s)


def _leader_pid(url: str) -> int | None:
    """The session holding the lead, in this database only (other tests' pairs hold theirs)."""
    with psycopg.connect(url, autocommit=True) as db:
        held = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = %s AND objsubid = 2 AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LEADER_LOCK,),
        ).fetchone()
    return None if held is None else int(held[0])


def _claims(url: str, since: datetime, until: datetime) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(
            "SELECT node, job, scheduled_at FROM claims WHERE claimed_at > %s AND claimed_at < %s",
            (since, until),
        ).fetchall()


def _take_the_lead(db: psycopg.Connection, pid: int) -> bool:
    """Ends session `pid` and takes its lock before either daemon can: True when taken."""
    db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = db.execute("SELECT pg_try_advisory_lock(%s, 0)", (LEADER_LOCK,)).fetchone()
        if row and row[0]:
            return True
        if _leader_pid(str(db.info.dsn)) not in (pid, None):
            return False  # a daemon won it first: not this round
        time.sleep(0.005)
    return False


def test_the_old_active_daemon_claims_nothing_once_another_holds_the_lead(
    world: World, postgres_url: str
) -> None:
    paths = [
        world.write_node_config(
            node,
            {"tick": every(1, job="counter")},
            state={"url": postgres_url, "node": node},
            http=False,
        )  # fmt: skip
        for node in ("a", "b")
    ]
    first = world.daemon(config=paths[0])
    first.wait_log(ACTIVE, timeout=30)
    second = world.daemon(config=paths[1])
    second.wait_log("spotify-runner started", timeout=30)
    held = 0
    for _ in range(ROUNDS):
        pid = wait_for(lambda: _leader_pid(postgres_url), 30, "a daemon leading")
        wait_for(lambda: _claims(postgres_url, datetime.now(UTC).replace(year=2000),
                                 datetime.now(UTC)), 30, "a claimed run")  # fmt: skip
        with psycopg.connect(postgres_url, autocommit=True) as db:
            if not _take_the_lead(db, pid):
                continue
            held += 1
            since = datetime.now(UTC)
            time.sleep(HOLD)
            until = datetime.now(UTC)
            # Neither daemon leads while the test holds the lock: nothing may be claimed.
            assert _claims(postgres_url, since, until) == []
        # Closing the session gives the lead back: a daemon takes it and runs go on.
        wait_for(lambda: _leader_pid(postgres_url), 30, "a daemon leading again")
    assert held >= 2, f"the test took the lead in {held} of {ROUNDS} rounds"
    for daemon in (first, second):
        assert "Traceback" not in daemon.stderr()
