"""`state migrate` under a real daemon: SQLite state made by `run`, carried over, continued.

Issue 16's criterion: the daemon on PostgreSQL continues from a migrated SQLite state with no
re-authorization and with its catch-up anchors kept. The SQLite state is the daemon's own (a
real `spotify-runner run` against the fake Spotify), the fake rotates and revokes the refresh
token on every refresh (so only the token the SQLite daemon last wrote can work), and the
daemon on PostgreSQL has no refresh token in its config at all.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

from daemon_world import World, every, postgres_refresh_token, wait_for

from runner.state import RunRecord, RunStatus
from runner.state.postgres import PostgresStateStore, safe_url
from runner.state.sqlite import STATE_FILE
from runner.testing import Recorded
from runner.tokens import TokenStore

ACTIVE = "is now the active daemon"
INTERVAL = timedelta(seconds=3)
LIFETIME = 4.0  # seconds an access token lives: both daemons refresh, again and again
TABLES = ("runs", "job_state", "memory", "claims")


def _jobs(once_at: datetime) -> dict[str, dict[str, object]]:
    return {
        # Misses a slot while no daemon runs: caught up once, from the migrated anchor.
        "missed": every(3, catch_up=True),
        # A one-off that ran under SQLite: its slot is the anchor that says "done".
        "once": {
            "job": "counter",
            "schedule": {"at": once_at.strftime("%Y-%m-%d %H:%M:%S")},
            "catch_up": True,
        },
        # No catch-up: the missed slot stays missed, and the grid stays where it was.
        "plain": every(3),
    }


def _pg_runs(url: str, job: str) -> list[RunRecord]:
    store = PostgresStateStore(url, readonly=True)
    try:
        return list(reversed(store.runs(job, limit=1000)))
    finally:
        store.close()


def _scheduled(run: RunRecord) -> bool:
    return run.trigger == "schedule" and run.ended_at is not None


def _refreshes(world: World, since: int) -> list[Recorded]:
    """The refreshes the fake answered after its first `since` requests."""
    return [r for r in world.fake.requests[since:] if r.path == "/api/token" and r.method == "POST"]


def _on_grid(slot: datetime | None, anchor: datetime | None) -> bool:
    assert slot is not None
    assert anchor is not None
    return (slot - anchor) % INTERVAL == timedelta(0)


def test_the_daemon_on_postgresql_continues_a_migrated_sqlite_state(
    world: World, postgres_url: str
) -> None:
    world.fake.access_token_lifetime = LIFETIME
    world.fake.rotation = "rotate_revoke"
    once_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    jobs = _jobs(once_at)

    # 1. A real SQLite state, made by the daemon.
    world.write_config(jobs)
    first_token = world.refresh_token
    lite = world.daemon()
    lite.wait_started()
    world.wait_runs("once", lambda runs: len(runs) == 1, what="the one-off's run")
    world.wait_runs("missed", lambda runs: len(runs) >= 2, what="two scheduled runs")
    world.wait_runs("plain", lambda runs: len(runs) >= 2, what="two scheduled runs")
    lite.send(signal.SIGTERM)
    assert lite.wait() == 0
    before = {job: world.runs(job) for job in jobs}
    assert all(r.status is RunStatus.OK for runs in before.values() for r in runs)
    (once_run,) = before["once"]
    assert once_run.scheduled_at == once_at
    last_missed = before["missed"][-1].scheduled_at
    last_plain = before["plain"][-1].scheduled_at
    assert last_missed is not None
    with sqlite3.connect(world.state_dir / STATE_FILE) as db:
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    db.close()
    assert counts["runs"] == sum(len(runs) for runs in before.values())
    assert counts["job_state"] == 3  # each counter job kept its count
    file_token = TokenStore(world.state_dir).load()
    assert file_token is not None
    # The SQLite daemon rotated the token: the one in the config is revoked by now.
    assert file_token.refresh_token != first_token
    assert first_token is not None
    assert world.fake.grants[first_token].revoked

    # 2. Migrate, and let a slot of `missed` pass with no daemon running.
    done = world.cli("state", "migrate", "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"copied {counts['runs']} run(s), {counts['job_state']} job state(s), "
        f"{counts['memory']} remembered value(s), {counts['claims']} claim(s), "
        f"tokens of 1 account(s) (default) from {world.state_dir} into {safe_url(postgres_url)}"
    )
    assert postgres_refresh_token(postgres_url) == file_token.refresh_token
    wait_for(
        lambda: datetime.now(UTC) > last_missed + INTERVAL + timedelta(seconds=0.5),
        timeout=10,
        what="a slot of 'missed' to pass",
    )

    # 3. The same config on PostgreSQL, with no refresh token in it.
    world.write_config(jobs, grant=False, state={"url": postgres_url, "node": "pg"})
    seen = len(world.fake.requests)
    started = datetime.now(UTC)
    pg = world.daemon()
    pg.wait_log(ACTIVE, timeout=60)
    active_at = datetime.now(UTC)
    more = {job: len(runs) for job, runs in before.items()}
    wait_for(
        lambda: [r for r in _pg_runs(postgres_url, "missed")[more["missed"] :] if _scheduled(r)],
        timeout=30,
        what="a scheduled run of 'missed' after its catch-up",
    )
    wait_for(
        lambda: [r for r in _pg_runs(postgres_url, "plain")[more["plain"] :] if _scheduled(r)],
        timeout=30,
        what="a run of 'plain' on PostgreSQL",
    )
    wait_for(
        lambda: _refreshes(world, seen), timeout=30, what="a refresh by the daemon on PostgreSQL"
    )
    pg.send(signal.SIGTERM)
    assert pg.wait() == 0
    log = pg.stderr()

    # No re-authorization: the migrated (rotated) refresh token was spent, and it worked.
    first_refresh = _refreshes(world, seen)[0]
    assert first_refresh.token == file_token.refresh_token
    assert all(r.status == 200 for r in world.fake.requests[seen:]), {
        (r.path, r.status) for r in world.fake.requests[seen:]
    }
    assert "needs authorization" not in log
    assert "spotify-runner auth" not in log
    assert "Traceback" not in log

    after = {job: _pg_runs(postgres_url, job) for job in jobs}
    # The history came along as it was, ids and all; new runs continue after it.
    old_ids = sorted(r.id for runs in before.values() for r in runs)
    for job in jobs:
        assert after[job][: more[job]] == before[job]
    new = sorted(r.id for runs in after.values() for r in runs if r.id not in old_ids)
    assert new
    assert new[0] == old_ids[-1] + 1
    history = world.cli("history", "--json", "--limit", "1000")
    assert history.returncode == 0, history.stderr
    assert sorted(row["id"] for row in json.loads(history.stdout)) == sorted(old_ids + new)

    # `missed`: its missed slot made up exactly once, from the migrated anchor, then the grid.
    made = after["missed"][more["missed"] :]
    catch_ups = [r for r in made if r.trigger == "catch_up"]
    assert len(catch_ups) == 1, [(r.trigger, r.scheduled_at) for r in made]
    (caught,) = catch_ups
    assert made[0] is caught
    slot = caught.scheduled_at
    assert slot is not None
    assert _on_grid(slot, last_missed)
    assert last_missed < slot < active_at
    assert slot + INTERVAL > started  # the latest missed slot, not an older one
    assert f"missed: missed its run at {slot}; catching up once now" in log
    assert caught.status is RunStatus.OK
    assert caught.summary == f"count {more['missed'] + 1}"  # its job state came along
    assert all(_on_grid(r.scheduled_at, last_missed) for r in made)
    assert len({r.scheduled_at for r in made}) == len(made)
    # `once`: its slot ran under SQLite; neither run again nor caught up.
    assert after["once"] == before["once"]
    assert "once: missed its run" not in log
    # `plain`: no catch-up, and its runs stay on the grid its migrated history set.
    plain = after["plain"][more["plain"] :]
    assert [r.trigger for r in plain] == ["schedule"] * len(plain)
    assert all(_on_grid(r.scheduled_at, last_plain) for r in plain)
