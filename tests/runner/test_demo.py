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
        timeout=600,  # a safety net only: the demo ends by itself, later on a busy machine
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "authorized Alice (alice) as account alice" in out
    assert "authorized Bob (bob) as account bob" in out
    for job in ("hello", "radio", "liked-mirror", "weekly-top", "station", "bob-liked"):
        assert f"   {job}: ok in " in out, job
    # Bob's access is revoked midway: his job pauses, alice's go on, auth brings his back.
    revoked = out.index(">> bob removes spotify-runner's access")
    refused = out.index(
        "bob-liked: needs auth in", revoked
    )  # only bob's job, and only after the revocation
    assert "needs auth" not in out[:revoked]
    reauthorized = out.index(">> spotify-runner auth --account bob", refused)
    assert "   bob-liked: ok in " in out[reauthorized:]
    assert "alice's jobs never stopped" in out
    assert "   account bob: Bob (bob), authorized" in out
    assert "created playlist 'Radio plays'" in out
    assert "created playlist 'Station spins'" in out  # fed by the Spinitron fake
    assert "1 unmatched" in out  # the line no search can match is reported
    assert "daemon exited with 0" in out
    assert "Traceback" not in out + result.stderr
