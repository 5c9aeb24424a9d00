"""kill -9 at random moments while a process keeps replacing the token store."""

from __future__ import annotations

import json
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.tokens import StoredToken, TokenStore

CHILD = Path(__file__).with_name("token_crash_child.py")
KILLS = 60


@pytest.mark.slow
def test_store_survives_kill_9_at_random_moments(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(
        StoredToken(
            refresh_token="rt-0",
            access_token=None,
            expires_at=None,
            scopes=frozenset({"playlist-modify-private"}),
            authorized_at=1_800_000_000.0,
            client_id="client",
        )
    )
    rng = random.Random(20260718)
    last = 0
    progressed = 0
    mid_write = 0
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path)],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        # Wait until it is inside its save loop, then kill it somewhere in the next few saves.
        assert child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, 0.02))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL

        raw = store.path.read_text()
        data = json.loads(raw)  # valid JSON, never truncated
        token = store.load()
        assert token is not None
        assert token.refresh_token == data["refresh_token"]
        n = int(token.refresh_token.removeprefix("rt-"))
        assert n >= last, "the store went back to an older token"
        progressed += n > last
        last = n
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        leftovers = [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
        assert len(leftovers) <= 1, leftovers
        mid_write += bool(leftovers)
    # The kills landed while saves were happening, not between runs of nothing.
    assert progressed > KILLS // 2
    # Some kills hit a save between creating its temp file and the rename (about a third
    # do when measured), which is the instant the atomic replace exists for.
    assert mid_write >= 1
