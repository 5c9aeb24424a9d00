"""`spotify-runner demo`: the real auth flow and daemon against the fake, ending by itself."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_every_example_job_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runner", "demo", "--seconds", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Authorized Alice (alice)" in out or "authorized Alice (alice)" in out
    for job in ("hello", "radio", "liked-mirror", "weekly-top", "station"):
        assert f"   {job}: ok in " in out, job
    assert "created playlist 'Radio plays'" in out
    assert "created playlist 'Station spins'" in out  # fed by the Spinitron fake
    assert "1 unmatched" in out  # the line no search can match is reported
    assert "daemon exited with 0" in out
    assert "Traceback" not in out + result.stderr
