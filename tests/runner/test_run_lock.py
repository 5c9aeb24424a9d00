"""Finding 8: one run of a job at a time across processes.

`run-job` beside a daemon that is running the same job used to run it twice at once (an append
job with dedupe got 18 duplicate tracks); now it is refused, names the holder, and is recorded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from daemon_world import World, every, wait_for

from runner.lock import JobLock
from runner.state import RunStatus


@pytest.mark.slow
def test_run_job_beside_the_daemon_running_it_is_refused_and_recorded(world: World) -> None:
    world.write_config({"slow": every(1, job="slow", options={"seconds": 4})})
    daemon = world.daemon()
    daemon.wait_started()
    wait_for(
        lambda: any(r.ended_at is None for r in world.runs("slow")),
        timeout=20,
        what="the daemon's run of slow",
    )
    result = world.cli("run-job", "slow", timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    line = f"error: slow: not run: it is already running in the daemon (PID {daemon.pid})"
    assert result.stderr.strip() == f"{line}; recorded as skipped"
    refused = [r for r in world.runs("slow") if r.summary and "already running in" in r.summary]
    assert len(refused) == 1
    assert refused[0].status is RunStatus.SKIPPED
    # A refused `run-job` is a manual run: never a schedule's slot (nor a catch-up's anchor).
    assert (refused[0].trigger, refused[0].scheduled_at) == ("manual", None)
    # Never two runs of the job at once: each run started after the previous one ended.
    world.wait_runs("slow", lambda rs: sum(r.status is RunStatus.OK for r in rs) >= 2, 30)
    ran = sorted(
        (r for r in world.runs("slow") if r.status is RunStatus.OK), key=lambda r: r.started_at
    )
    for earlier, later in zip(ran, ran[1:], strict=False):
        assert earlier.ended_at is not None
        assert later.started_at >= earlier.ended_at
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_the_lock_is_held_across_processes_and_names_its_holder(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from runner.lock import JobLock
        lock = JobLock(Path({str(tmp_path)!r}), "radio")
        assert lock.acquire("run-job (PID 4242)") is None
        print("held", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "held"
        assert JobLock(tmp_path, "radio").acquire("me") == "run-job (PID 4242)"
        others = [JobLock(tmp_path, "other-job"), JobLock(tmp_path, "radio", account="second")]
        assert [lock.acquire("me") for lock in others] == [None, None]  # per job, per account
        for lock in others:
            lock.release()
        child.stdin.close()
        child.wait(timeout=30)
    # The kernel drops the lock with its holder: nothing stale is left behind.
    mine = JobLock(tmp_path, "radio")
    assert mine.acquire("me") is None
    mine.release()
    mine.release()  # twice is harmless
