"""A daemon that lost its lead runs nothing, even before its next leadership check.

Two daemon processes on one real PostgreSQL database. The active one's leadership session is
ended from outside (`pg_terminate_backend`, what the server does to a session whose machine
vanished behind a network cut) while its other sessions live on: the standby takes the lock
at its next poll, and the old active daemon finds out at its own next check, up to a poll
later. A run due in between must not be claimed there (it was, once, in CI).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import psycopg
from daemon_world import World, every, wait_for

from runner.state.leadership import LEADER_LOCK

ACTIVE = "is now the active daemon"
ROUNDS = 6


def _leader(url: str) -> tuple[int, str, int, datetime] | None:
    """(session pid, node, epoch, since) of the daemon holding the lead, if one does.

    In this database only: other tests' pairs hold the same lock in theirs.
    """
    with psycopg.connect(url, autocommit=True) as db:
        held = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = %s AND objsubid = 2 AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LEADER_LOCK,),
        ).fetchone()
        row = db.execute("SELECT node, epoch, since FROM leadership WHERE id = 1").fetchone()
    if held is None or row is None:
        return None
    return int(held[0]), str(row[0]), int(row[1]), row[2]


def _taken_after(url: str, epoch: int) -> tuple[int, str, int, datetime] | None:
    """The lead, once someone took it after `epoch`."""
    lead = _leader(url)
    return lead if lead is not None and lead[2] > epoch else None


def _claims(url: str, node: str, after: datetime) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(
            "SELECT job, scheduled_at, claimed_at FROM claims WHERE node = %s AND claimed_at > %s",
            (node, after),
        ).fetchall()


def test_the_old_active_daemon_claims_nothing_once_the_standby_has_taken_over(
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
    handovers = 0
    for _ in range(ROUNDS):
        before = wait_for(lambda: _leader(postgres_url), 30, "a daemon leading")
        pid, node, epoch, _ = before
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        after = wait_for(lambda e=epoch: _taken_after(postgres_url, e), 30, "the lead taken again")
        _, winner, _, since = after
        if winner == node:
            continue  # it won its lock back before the standby's poll: still the only active
        handovers += 1
        time.sleep(3)  # past the old active daemon's next check
        assert _claims(postgres_url, node, since) == [], (
            f"node {node} claimed runs after node {winner} took the lead at {since}"
        )
    assert handovers >= 1, f"in {ROUNDS} rounds the standby never took over"
    for daemon in (first, second):
        assert "Traceback" not in daemon.stderr()
