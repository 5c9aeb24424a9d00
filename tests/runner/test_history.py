"""Run history: `spotify-runner history` and each run's own log lines."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from daemon_world import JOBS_DIR, World, every

from runner.state import MAX_RUN_LOG, open_state
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


def test_history_lists_runs_newest_first_with_their_trigger(world: World) -> None:
    world.write_config({"talk": every("1h", job="chatty"), "bad": every("1h", job="fail")})
    assert world.cli("run-job", "talk").returncode == 0
    assert world.cli("run-job", "bad").returncode == 1
    done = world.cli("history")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "JOB", "ACCOUNT", "TRIGGER", "STARTED", "TOOK", "STATUS"]
    assert lines[1].split()[:4] == ["2", "bad", "default", "manual"]
    assert "failed" in lines[1]
    assert "bad is broken on purpose" in lines[1]
    assert lines[2].split()[:4] == ["1", "talk", "default", "manual"]
    assert "said 3 lines as alice" in lines[2]

    data = json.loads(world.cli("history", "talk", "--json").stdout)
    assert [(row["id"], row["job"], row["status"], row["trigger"]) for row in data] == [
        (1, "talk", "ok", "manual")
    ]
    assert data[0]["duration_seconds"] >= 0
    limited = json.loads(world.cli("history", "--limit", "1", "--json").stdout)
    assert [row["id"] for row in limited] == [2]


def test_history_of_an_unknown_job_is_one_line_exit_2(world: World) -> None:
    world.write_config({"talk": every("1h", job="chatty")})
    done = world.cli("history", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: no job named 'nope' in {world.config_path} (configured: talk)"
    ]
    missing = world.cli("history", "--run", "99")
    assert missing.returncode == 2
    assert "no run with id 99" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_history_run_shows_that_runs_own_lines_only(world: World) -> None:
    world.write_config(
        {"first": every("1h", job="chatty"), "second": every("1h", job="chatty", options={})}
    )
    assert world.cli("run-job", "first").returncode == 0
    assert world.cli("run-job", "second").returncode == 0
    shown = world.cli("history", "--run", "1")
    assert shown.returncode == 0, shown.stderr
    head, *lines = shown.stdout.splitlines()
    assert head.startswith("run 1: first (default, manual) ok in ")
    said = [line for line in lines if " says line " in line]
    assert [line.split(": ", 1)[1] for line in said] == [f"first says line {n}" for n in range(3)]
    assert all(" INFO job.first: " in line for line in said)
    # The runner's own line about the run is there too; the other run's are not.
    assert any("runner.execution: first: ok in" in line for line in lines)
    assert "second" not in shown.stdout
    data = json.loads(world.cli("history", "--run", "2", "--json").stdout)
    assert "second says line 2" in data["log"]
    assert "first says" not in data["log"]


def test_concurrent_runs_keep_their_lines_apart_and_secrets_out(
    fake: FakeSpotify, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with JobHarness(fake, tmp_path, jobs_dir=JOBS_DIR) as harness:
        results = {}

        def run(name: str) -> None:
            results[name] = harness.run("chatty", {"lines": 5, "pause": 0.05}, name=name)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("left", "right")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        state = open_state(harness.state_dir)
        try:
            for name, other in (("left", "right"), ("right", "left")):
                run_id = results[name].run_id
                assert run_id is not None
                text = state.run_log(run_id)
                assert text is not None
                assert text.count(f"{name} says line") == 5
                assert f"{other} says" not in text
                assert fake.CLIENT_SECRET not in text
        finally:
            state.close()


def test_a_run_log_is_capped_at_64_kib(
    fake: FakeSpotify, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with JobHarness(fake, tmp_path, jobs_dir=JOBS_DIR) as harness:
        outcome = harness.run("chatty", {"lines": 5000})
        state = open_state(harness.state_dir)
        try:
            assert outcome.run_id is not None
            text = state.run_log(outcome.run_id)
        finally:
            state.close()
    assert text is not None
    assert len(text.encode()) <= MAX_RUN_LOG
    assert text.endswith("... (log cut at 64 KiB)\n")
    assert "job says line 0" in text
