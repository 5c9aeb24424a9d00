"""Finding 5 against the real daemon: after a catch-up, `every:` never runs twice in a row."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from daemon_world import World, every

from runner.state import RunStatus, open_state


@pytest.mark.slow
def test_the_catch_up_is_its_slots_run_and_the_grid_holds(world: World) -> None:
    interval = timedelta(seconds=6)
    world.write_config({"tick": every(6, catch_up=True)})
    # History: the slot 8 s ago ran, so the slot 2 s ago was missed while the daemon was down.
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=8)
    state = open_state(world.state_dir)
    try:
        run = state.start_run("tick", scheduled_at=slot, started_at=slot)
        state.finish_run(run, RunStatus.OK, ended_at=slot, summary="seeded")
    finally:
        state.close()
    launched = datetime.now(UTC)
    daemon = world.daemon()
    runs = world.wait_runs(
        "tick", lambda rs: sum(r.summary != "seeded" for r in rs) >= 2, timeout=40, what="runs"
    )
    caught_up, regular = sorted(
        (r for r in runs if r.summary != "seeded"), key=lambda r: r.started_at
    )[:2]
    assert caught_up.trigger == "catch_up"
    # The catch-up stands for the latest slot missed before the daemon planned (between its
    # launch and the run): slot + 6 s, or a later grid point when a busy machine was slow to start.
    assert caught_up.scheduled_at is not None
    assert (caught_up.scheduled_at - slot) % interval == timedelta(0)
    assert launched - interval < caught_up.scheduled_at <= caught_up.started_at
    # The old code ran the next grid point (slot + 12 s) right after the catch-up.
    assert regular.started_at - caught_up.started_at >= interval - timedelta(milliseconds=100)
    # ...and recorded its actual start as its schedule; now it is a grid point.
    assert regular.scheduled_at is not None
    assert (regular.scheduled_at - slot) % interval == timedelta(0)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
