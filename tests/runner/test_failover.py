"""Two daemons, one PostgreSQL database: SIGKILL the active one mid-run, again and again.

The standby must take over within 15 s, the killed one (restarted) must stand by, and no fire
time may run twice: each ran once, or its run was interrupted by the kill and made up once by
the new active daemon (`catch_up: true`). Real processes, a real server, real signals.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from daemon_world import DaemonProcess, World, every, free_port, wait_for

from runner.state import INTERRUPTED, RunRecord, RunStatus
from runner.state.postgres import PostgresStateStore

FAILOVERS = 10
TAKEOVER_LIMIT = 15.0
JOB = "slow"
ACTIVE = "is now the active daemon"


def runs(url: str) -> list[RunRecord]:
    store = PostgresStateStore(url, readonly=True)
    try:
        return list(reversed(store.runs(JOB, limit=1000)))
    finally:
        store.close()


def running_since(url: str, seen: set[int]) -> Callable[[], list[RunRecord]]:
    """A check for a run going that is not one of `seen`."""
    return lambda: [r for r in runs(url) if r.id not in seen and r.ended_at is None]


def configs(world: World, url: str) -> list[Path]:
    """Two configs alike but for the node name, state_dir and HTTP port (two nodes on one host)."""
    paths = []
    for node in ("a", "b"):
        world.write_config(
            {JOB: every(2, job="slow", catch_up=True, options={"seconds": 0.5})},
            state={"url": url, "node": node},
            http={"listen": f"127.0.0.1:{free_port()}"},  # each node serves its own /healthz
        )
        text = world.config_path.read_text().replace(str(world.state_dir), str(world.dir / node))
        path = world.dir / f"config-{node}.yaml"
        path.write_text(text)
        paths.append(path)
    return paths


def test_ten_failovers_run_every_fire_time_once(world: World, postgres_url: str) -> None:
    first, second = configs(world, postgres_url)
    active = world.daemon(config=first)
    active.wait_log(ACTIVE, timeout=30)
    standby = world.daemon(config=second)
    standby.wait_log("spotify-runner started", timeout=30)
    config_of: dict[DaemonProcess, Path] = {active: first, standby: second}
    takeovers: list[float] = []
    for _ in range(FAILOVERS):
        # Kill it during a run: one it started after the last takeover.
        wait_for(
            running_since(postgres_url, {r.id for r in runs(postgres_url)}),
            timeout=20,
            what="a run going on the active daemon",
        )
        active.kill()
        killed_at = time.monotonic()
        standby.wait_log(ACTIVE, timeout=TAKEOVER_LIMIT + 5)
        takeovers.append(time.monotonic() - killed_at)
        back = world.daemon(config=config_of[active])  # the old active one comes back...
        back.wait_log("spotify-runner started", timeout=30)
        config_of[back] = config_of[active]
        active, standby = standby, back
    time.sleep(3)
    for proc in (active, standby):
        proc.kill()

    assert max(takeovers) < TAKEOVER_LIMIT, takeovers
    # ... and stood by: every daemon became active at most once, only after a kill.
    assert [p.stderr().count(ACTIVE) for p in world.daemons] == [1] * (FAILOVERS + 1) + [0]
    by_slot: dict[datetime | None, list[RunRecord]] = defaultdict(list)
    for run in runs(postgres_url):
        by_slot[run.scheduled_at].append(run)
    interrupted = made_up = 0
    for slot, slot_runs in by_slot.items():
        assert slot is not None
        started = [r for r in slot_runs if r.status is not RunStatus.SKIPPED]
        if len(started) == 1 and started[0].error != INTERRUPTED:
            continue
        # Interrupted by a kill, then made up once: never two runs of one fire time otherwise.
        kinds = [(r.trigger, r.error == INTERRUPTED) for r in started]
        assert len(started) == 2, (
            slot,
            kinds,
            [(r.status, r.summary, r.trigger) for r in slot_runs],
        )
        assert started[0].error == INTERRUPTED, (slot, kinds)
        assert started[1].trigger == "catch_up", (slot, kinds)
        interrupted += 1
        made_up += 1
    assert interrupted >= FAILOVERS // 2  # most kills met a run going (the rest: between runs)
    assert made_up == interrupted
