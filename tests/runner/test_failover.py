"""Two daemons, one PostgreSQL database: SIGKILL the active one mid-run, again and again.

The standby must take over within 15 s, the killed one (restarted) must stand by, and no fire
time may run twice: each ran once, or its run was interrupted by the kill and made up once by
the new active daemon (`catch_up: true`). Real processes, a real server, real signals.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
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
    """A check for a regular run going that is not one of `seen`.

    Not a make-up or a late run of the gap: those run first after a takeover, and the regular
    run waits for them, so a kill during it leaves them done.
    """
    return lambda: [
        r for r in runs(url) if r.id not in seen and r.ended_at is None and r.trigger == "schedule"
    ]


def configs(world: World, url: str) -> list[Path]:
    """Two configs alike but for the node name, state_dir and HTTP port (two nodes on one host)."""
    return [
        world.write_node_config(
            node,
            {JOB: every(2, job="slow", catch_up=True, options={"seconds": 0.5})},
            state={"url": url, "node": node},
            http={"listen": f"127.0.0.1:{free_port()}"},  # each node serves its own /healthz
        )
        for node in ("a", "b")
    ]


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
    ended = runs(postgres_url)[-1].scheduled_at  # the fire time going when both are stopped
    for proc in (active, standby):
        proc.kill()

    assert max(takeovers) < TAKEOVER_LIMIT, takeovers
    # ... and stood by: every daemon became active at most once, only after a kill.
    assert [p.stderr().count(ACTIVE) for p in world.daemons] == [1] * (FAILOVERS + 1) + [0]
    assert ended is not None
    history = runs(postgres_url)
    interrupted = check_every_fire_time(history, until=ended, at_least=FAILOVERS)
    assert interrupted >= FAILOVERS // 2  # most kills met a run going (the rest: between runs)
    # The figures, for `pytest -s`: what the note quotes.
    slots = {
        r.scheduled_at for r in history if r.scheduled_at is not None and r.scheduled_at < ended
    }
    print(  # noqa: T201 (a figure, shown with -s)
        f"\n{FAILOVERS} SIGKILLs: takeover {min(takeovers):.1f}-{max(takeovers):.1f} s after the "
        f"kill; {len(slots)} fire times, each ran once, {interrupted} of them interrupted and "
        "made up once"
    )


def check_every_fire_time(history: list[RunRecord], *, until: datetime, at_least: int) -> int:
    """Every fire time on the 2-second grid, from the first run to `until` (excluded), ran once,
    or its run was interrupted and made up once; never twice, never not at all.

    Returns how many fire times were interrupted (and made up).
    """
    by_slot: dict[datetime, list[RunRecord]] = defaultdict(list)
    for run in history:
        assert run.scheduled_at is not None, run
        by_slot[run.scheduled_at].append(run)
    first = min(by_slot)
    slots = [
        first + timedelta(seconds=2 * k) for k in range(int((until - first).total_seconds() // 2))
    ]
    assert len(slots) >= at_least, (first, until)
    assert all(slot in slots or slot >= until for slot in by_slot), sorted(by_slot)  # one grid
    interrupted = 0
    for slot in slots:
        slot_runs = by_slot.get(slot, [])
        kinds = [(r.trigger, r.status.value, r.error == INTERRUPTED) for r in slot_runs]
        assert slot_runs, f"the fire time {slot} never ran (nor was it recorded at all)"
        assert all(r.status is not RunStatus.SKIPPED for r in slot_runs), (slot, kinds)
        if len(slot_runs) == 1:
            assert slot_runs[0].error != INTERRUPTED, (slot, kinds, "interrupted, not made up")
            continue
        # Interrupted by a kill, then made up once: never two runs of one fire time otherwise.
        assert len(slot_runs) == 2, (slot, kinds)
        assert slot_runs[0].error == INTERRUPTED, (slot, kinds)
        assert slot_runs[1].trigger == "catch_up", (slot, kinds)
        interrupted += 1
    return interrupted


def test_the_fire_times_of_a_failover_gap_each_run_once_on_the_new_active_daemon(
    world: World, postgres_url: str
) -> None:
    # A frozen active daemon (SIGSTOP: a hung machine) holds the lead while several fire times
    # pass; then it dies. The standby saw it lead all along: this is a failover, not a cold
    # start, so each of those fire times runs once, late, and none is coalesced away.
    first, second = configs(world, postgres_url)
    active = world.daemon(config=first)
    active.wait_log(ACTIVE, timeout=30)
    standby = world.daemon(config=second)
    standby.wait_log("spotify-runner started", timeout=30)
    wait_for(lambda: len(runs(postgres_url)) >= 2, timeout=20, what="two runs on the active daemon")
    wait_for(
        lambda: all(r.ended_at is not None for r in runs(postgres_url)),
        timeout=10,
        what="no run going",
    )
    active.send(signal.SIGSTOP)
    time.sleep(7)  # three or four fire times pass with nobody to run them
    active.kill()
    standby.wait_log(ACTIVE, timeout=TAKEOVER_LIMIT + 5)
    line = standby.wait_log("fell while no daemon was active", timeout=10)
    time.sleep(4)
    ended = runs(postgres_url)[-1].scheduled_at
    standby.kill()
    assert ended is not None
    assert check_every_fire_time(runs(postgres_url), until=ended, at_least=6) == 0
    gap_runs = [r for r in runs(postgres_url) if r.trigger == "catch_up"]
    assert len(gap_runs) >= 3, (line, gap_runs)
    assert all(r.status is RunStatus.OK for r in gap_runs), gap_runs
