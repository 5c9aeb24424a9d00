"""`make demo-ha` as a user runs it: two daemons on the local PostgreSQL, the active one killed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.testing.postgres import unreachable_reason


def test_demo_ha_fails_over_and_runs_nothing_twice() -> None:
    reason = unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, "-m", "runner.demo_ha"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "daemon a (node a) is active",
        "daemon b (node b) stands by",
        "SIGKILL to daemon a",
    ]
    took = float(lines[3].removeprefix("daemon b took over ").removesuffix("s after the kill"))
    assert took < 15
    assert lines[4] == "daemon a is back and stands by"
    assert lines[5].endswith(", 0 fire time(s) run twice")
