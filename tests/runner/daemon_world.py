"""Helpers for the daemon and CLI tests: a fake Spotify world, a config writer, processes.

Every command a test runs goes through `World`, which keeps its output; at teardown every
daemon still running is killed and all output is searched for the fake's secrets (the client
secret, every refresh and access token it ever issued).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from runner.config import SpotifyConfig
from runner.state import RunRecord, open_state, postgres_token_store
from runner.testing import FakeSpotify
from runner.testing.ports import free_port

JOBS_DIR = Path(__file__).resolve().parent / "test_jobs_dir"
BROWSER = f"{sys.executable} -m runner.testing.browser %s"
# Environment the tests must not inherit: it would change what the runner does.
_SCRUB = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "SPOTIFY_RUNNER_CONFIG",
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
    "BROWSER",
)

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Polls `check` until it returns something truthy; fails the test after `timeout`.

    The timeout is only a safety net (it ends a test that would hang): it returns as soon as
    the condition holds, so it is generous, for a machine busy with parallel test workers.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours, minus what would change its behaviour."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class DaemonProcess:
    """`spotify-runner run` as a subprocess; its stdout and stderr go to files in tmp."""

    def __init__(self, world: World, args: list[str], env: dict[str, str], name: str) -> None:
        self.world = world
        self.out_path = world.dir / f"{name}.out"
        self.err_path = world.dir / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )

    @property
    def pid(self) -> int:
        """The daemon's PID."""
        return self.proc.pid

    def stderr(self) -> str:
        """Everything it logged so far."""
        return self.err_path.read_text(errors="replace")

    def stdout(self) -> str:
        """Everything it printed so far."""
        return self.out_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0, count: int = 1) -> str:
        """Waits until `text` appears `count` times in its log; returns the log."""

        def seen() -> str:
            log = self.stderr()
            if self.proc.poll() is not None and log.count(text) < count:
                pytest.fail(f"daemon exited {self.proc.returncode} before logging {text!r}:\n{log}")
            return log if log.count(text) >= count else ""

        return wait_for(seen, timeout, f"{text!r} in the daemon's log")

    def wait_started(self, timeout: float = 60.0) -> None:
        """Waits until scheduling has started."""
        self.wait_log("spotify-runner started", timeout)

    def send(self, sig: int) -> None:
        """Sends a signal."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Waits for it to exit; returns its exit code."""
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, if still running, and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class World:
    """One test's world: a fake Spotify, a config file, a state_dir, and every output seen.

    Args:
        fake: a started fake.
        tmp: the test's tmp_path.
    """

    def __init__(self, fake: FakeSpotify, tmp: Path) -> None:
        self.fake = fake
        self.dir = tmp
        self.state_dir = tmp / "state"
        self.config_path = tmp / "config.yaml"
        self.outputs: list[tuple[str, str]] = []
        self.daemons: list[DaemonProcess] = []
        self.redirect_port = free_port()
        # The daemon's HTTP server gets its own port, so `auth` can still catch its redirect.
        self.http_port = free_port()
        self.refresh_token: str | None = None

    def write_config(
        self,
        jobs: Mapping[str, Mapping[str, Any]],
        *,
        refresh_token: str | None = None,
        grant: bool = True,
        scopes: tuple[str, ...] = ("playlist-modify-private",),
        **top: Any,
    ) -> Path:
        """Writes the config file and returns its path.

        Args:
            jobs: the `jobs` section.
            refresh_token: put this token in the config; with None and `grant`, a fresh grant.
            grant: make a grant in the fake when no token is given (False: no token at all).
            scopes: the scopes of that fresh grant.
            **top: other top-level keys (shutdown_timeout...).
        """
        if refresh_token is None and grant and self.refresh_token is None:
            self.refresh_token = self.fake.grant(scopes=scopes)
        token = refresh_token or (self.refresh_token if grant else None)
        spotify: dict[str, Any] = {
            "client_id": self.fake.CLIENT_ID,
            "client_secret": self.fake.CLIENT_SECRET,
            "redirect_uri": f"http://127.0.0.1:{self.redirect_port}/callback",
            "accounts_url": self.fake.accounts_url,
            "api_url": self.fake.api_url,
        }
        if token is not None:
            spotify["refresh_token"] = token
        data: dict[str, Any] = {
            "spotify": spotify,
            "state_dir": str(self.state_dir),
            "timezone": "UTC",
            "jobs_dir": str(JOBS_DIR),
            "shutdown_timeout": "15s",
            "http": {"listen": f"127.0.0.1:{self.http_port}"},
            **top,
            "jobs": {name: dict(job) for name, job in jobs.items()},
        }
        self.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        return self.config_path

    def write_node_config(
        self, node: str, jobs: Mapping[str, Mapping[str, Any]], **top: Any
    ) -> Path:
        """The config of one node of a pair on this host: its own state_dir, `config-NODE.yaml`.

        `top` is as for `write_config` (give `state={"url": ..., "node": node}` and an own HTTP
        port or `http=False`: two nodes on one host are two daemons).
        """
        self.write_config(jobs, **top)
        text = self.config_path.read_text().replace(str(self.state_dir), str(self.dir / node))
        path = self.dir / f"config-{node}.yaml"
        path.write_text(text)
        return path

    # -- processes ---------------------------------------------------------------------------

    def cli(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,  # noqa: A002
        timeout: float = 60.0,
        config: Path | None = None,
        record_stdout: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `spotify-runner -c CONFIG ARGS...` to completion and keeps its output.

        `record_stdout=False` leaves stdout out of the secrets check (`token` prints one).
        """
        cmd = [sys.executable, "-m", "runner", "-c", str(config or self.config_path), *args]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            input=input,
            env=child_env(env),
            timeout=timeout,
            check=False,
        )
        if record_stdout:
            self.outputs.append((" ".join(args) + " (stdout)", done.stdout))
        self.outputs.append((" ".join(args) + " (stderr)", done.stderr))
        return done

    def daemon(
        self, *options: str, env: Mapping[str, str] | None = None, config: Path | None = None
    ) -> DaemonProcess:
        """Starts `spotify-runner [OPTIONS] -c CONFIG run`; it is killed at teardown."""
        cmd = [sys.executable, "-m", "runner", *options, "-c", str(config or self.config_path)]
        name = f"daemon{len(self.daemons)}"
        proc = DaemonProcess(self, [*cmd, "run"], child_env(env), name)
        self.daemons.append(proc)
        return proc

    def authorize(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """`spotify-runner auth [ARGS]` through the scripted browser.

        Args:
            *args: more options, like `--account bob`.
            user: the fake user who consents (`fake.authorize_as`); alice unless set before.
        """
        if user is not None:
            self.fake.authorize_as = user
        return self.cli("auth", "--timeout", "20", *args, env={"BROWSER": BROWSER})

    # -- history -----------------------------------------------------------------------------

    def runs(self, job: str | None = None, account: str = "default") -> list[RunRecord]:
        """The recorded runs (of `account`'s jobs), oldest first."""
        if not self.state_dir.exists():
            return []
        state = open_state(self.state_dir)
        try:
            return list(reversed(state.runs(job, limit=1000, account=account)))
        finally:
            state.close()

    def wait_runs(
        self,
        job: str,
        check: Callable[[list[RunRecord]], bool],
        timeout: float = 30.0,
        what: str = "runs",
        account: str = "default",
    ) -> list[RunRecord]:
        """Polls the history of `job` until `check(finished runs)` holds; returns them."""

        def done() -> list[RunRecord] | None:
            finished = [r for r in self.runs(job, account) if r.ended_at is not None]
            return finished if check(finished) else None

        found = wait_for(done, timeout, f"{what} of {job}")
        assert found is not None
        return found

    # -- secrets -----------------------------------------------------------------------------

    def secrets(self) -> set[str]:
        """Every secret the fake knows: the client secret and every token it issued."""
        with self.fake.lock:
            found = set(self.fake.grants) | set(self.fake.access_tokens) | set(self.fake.codes)
        found.add(self.fake.CLIENT_SECRET)
        return found

    def all_output(self) -> list[tuple[str, str]]:
        """Every output seen: commands run and daemon logs."""
        out = list(self.outputs)
        for proc in self.daemons:
            out.append((f"{proc.err_path.name}", proc.stderr()))
            out.append((f"{proc.out_path.name}", proc.stdout()))
        return out

    def assert_no_secrets(self) -> None:
        """Fails naming the output in which a secret appeared."""
        secrets = self.secrets()
        for where, text in self.all_output():
            for secret in secrets:
                assert secret not in text, f"a secret appeared in {where}"

    def close(self) -> None:
        """Kills every daemon still running."""
        for proc in self.daemons:
            proc.kill()


def postgres_refresh_token(url: str, account: str = "default") -> str | None:
    """The refresh token the state database at `url` holds for `account`, if any."""
    store = postgres_token_store(url, account)
    try:
        stored = store.load()
    finally:
        store.close()  # type: ignore[attr-defined]
    return None if stored is None else stored.refresh_token


def every(seconds: int | str, job: str = "counter", **more: Any) -> dict[str, Any]:
    """A job entry on an `every` schedule."""
    value = f"{seconds}s" if isinstance(seconds, int) else seconds
    return {"job": job, "schedule": {"every": value}, **more}


def spotify_config(fake: FakeSpotify, refresh_token: str | None = None) -> SpotifyConfig:
    """The `spotify:` settings that point a token manager at `fake`."""
    return SpotifyConfig(
        client_id=fake.CLIENT_ID,
        client_secret=fake.CLIENT_SECRET,  # type: ignore[arg-type]
        refresh_token=refresh_token,  # type: ignore[arg-type]
        accounts_url=fake.accounts_url,
        api_url=fake.api_url,
    )
