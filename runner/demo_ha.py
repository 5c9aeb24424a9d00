"""`make demo-ha`: two daemons, one PostgreSQL database, and the active one killed.

Runs against the machine's PostgreSQL (a scratch database, dropped afterwards) and the embedded
fake Spotify; nothing reaches the internet. It starts daemon "a", then daemon "b" (which stands
by), SIGKILLs "a" in the middle of its schedule, shows "b" taking over, starts "a" again (it
stands by), and prints the history both wrote into the one database.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from runner.testing import FakeSpotify
from runner.testing.ports import free_port
from runner.testing.postgres import scratch_database, unreachable_reason

ACTIVE = "is now the active daemon"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _config(tmp: Path, fake: FakeSpotify, url: str, node: str, token: str) -> Path:
    data = {
        "spotify": {
            "client_id": fake.CLIENT_ID,
            "client_secret": fake.CLIENT_SECRET,
            "refresh_token": token,
            "accounts_url": fake.accounts_url,
            "api_url": fake.api_url,
        },
        "state_dir": str(tmp / node),
        "state": {"url": url, "node": node},
        # Two nodes on one host: each serves its own /healthz on its own port.
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "timezone": "UTC",
        "jobs": {"hello": {"job": "hello", "schedule": {"every": "2s"}, "catch_up": True}},
    }
    path = tmp / f"{node}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class _Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runner", "-c", str(config), "run"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def wait_for(self, text: str, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if text in self.log.read_text(errors="replace"):
                return time.monotonic() - start
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"demo-ha: no {text!r} in {self.log} after {timeout:g}s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _fail_over(tmp: Path, fake: FakeSpotify, url: str, started: list[_Daemon]) -> bool:
    """Starts a, then b, kills a, brings a back; True when the returning a stands by."""
    token = fake.grant(scopes=())
    a_config = _config(tmp, fake, url, "a", token)
    b_config = _config(tmp, fake, url, "b", token)
    a = _Daemon(a_config, tmp / "a.log")
    started.append(a)
    a.wait_for(ACTIVE, 30)
    _say("daemon a (node a) is active")
    b = _Daemon(b_config, tmp / "b.log")
    started.append(b)
    b.wait_for("spotify-runner started", 30)
    _say("daemon b (node b) stands by")
    time.sleep(5)
    a.stop(signal.SIGKILL)
    _say("SIGKILL to daemon a")
    took = b.wait_for(ACTIVE, 20)
    _say(f"daemon b took over {took:.1f}s after the kill")
    a = _Daemon(a_config, tmp / "a2.log")
    started.append(a)
    a.wait_for("spotify-runner started", 30)
    time.sleep(5)
    standing = ACTIVE not in (tmp / "a2.log").read_text()
    _say(f"daemon a is back and {'stands by' if standing else 'LEADS (wrong)'}")
    return standing


def main() -> int:
    """Runs the demo; 2 when PostgreSQL cannot be reached (with the reason)."""
    reason = unreachable_reason()
    if reason is not None:
        sys.stderr.write(f"demo-ha: {reason}\n")
        return 2
    from runner.state.postgres import PostgresStateStore

    with (
        tempfile.TemporaryDirectory(prefix="spotify-runner-demo-ha-") as tmp_text,
        FakeSpotify() as fake,
        scratch_database("spotify_runner_demo_ha") as url,
    ):
        tmp = Path(tmp_text)
        started: list[_Daemon] = []
        try:
            standing = _fail_over(tmp, fake, url, started)
        finally:
            for daemon in started:  # also when a step failed: leave no daemon behind
                daemon.stop()
        store = PostgresStateStore(url, readonly=True)
        try:
            runs = list(reversed(store.runs("hello", limit=1000)))
        finally:
            store.close()
        slots = [r.scheduled_at for r in runs if r.trigger == "schedule"]
        _say(
            f"history in the one database: {len(runs)} runs of hello "
            f"({sum(r.status == 'ok' for r in runs)} ok, "
            f"{sum(r.trigger == 'catch_up' for r in runs)} caught up after the takeover), "
            f"{len(slots) - len(set(slots))} fire time(s) run twice"
        )
    return 0 if standing else 1


if __name__ == "__main__":
    sys.exit(main())
