"""The units under a real systemd: booted as PID 1 of its own namespaces, the project installed
from a wheel, the units and the README's commands used as they are.

One machine for the whole module (see systemd_machine.py); the tests run in order on it, each a
step of the README: install and authorize, runs, reloads, a re-authorization while the daemon
runs, the journal, a stop with a run in flight, and the user unit under a user manager. The last
test powers the machine off and checks that nothing of it is left on the host.

The fake Spotify runs inside the machine as a transient unit: the machine has loopback only.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from systemd_machine import Machine, MachineError, cannot_boot_reason, wait_until
from wheelhouse import build_wheelhouse

from runner.testing import FakeSpotify

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
UNITS = ROOT / "contrib" / "systemd"
SLOW_JOB = ROOT / "tests" / "runner" / "test_jobs_dir" / "slow.py"
FAKE_SERVICE = Path(__file__).with_name("fake_spotify_service.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")

VENV = "/opt/spotify-runner"
FAKE_PORT = 8900
FAKE_URL = f"http://127.0.0.1:{FAKE_PORT}"
CONFIG = "/etc/spotify-runner/config.yaml"
STATE = "/var/lib/private/spotify-runner"  # DynamicUser=: /var/lib/spotify-runner links here
TOKEN = f"{STATE}/accounts/default/token.json"
SHUTDOWN_TIMEOUT = 5
USER = "listener"


def spotify_section() -> dict[str, str]:
    return {
        "client_id": FakeSpotify.CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8888/callback",
        "accounts_url": FAKE_URL,
        "api_url": f"{FAKE_URL}/v1",
    }


def system_config(**jobs: dict[str, Any]) -> str:
    """The system daemon's config: no secret (LoadCredential= brings it), the unit's state_dir."""
    data = {
        "spotify": spotify_section(),
        "state_dir": "/var/lib/spotify-runner",
        "timezone": "UTC",
        "jobs_dir": "/etc/spotify-runner/jobs",
        "shutdown_timeout": f"{SHUTDOWN_TIMEOUT}s",
        "jobs": jobs or {"hello": HELLO},
    }
    return yaml.safe_dump(data, sort_keys=False)


HELLO = {"job": "hello", "schedule": {"every": "2s"}}


def readme_commands() -> list[str]:
    """The shell lines of the README's "Running under systemd" block, in order."""
    text = README.read_text()
    section = text.split("## Running under systemd", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "the README's systemd section has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def readme_command(starting: str) -> str:
    (line,) = [c for c in readme_commands() if c.startswith(starting)]
    return line


# -- the machine -----------------------------------------------------------------------------------


def system_python_version() -> str:
    return subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def make_seed(seed: Path, scratch: Path) -> None:
    """What the machine gets in /opt/seed: wheels, the units as shipped, configs, the fake."""
    build_wheelhouse(seed / "wheels", scratch, system_python_version())
    project = seed / "project"
    shutil.copytree(UNITS, project / "contrib" / "systemd")
    (project / "config.yaml").write_text(system_config())
    (seed / "jobs").mkdir()
    shutil.copy2(SLOW_JOB, seed / "jobs" / "slow.py")
    shutil.copy2(FAKE_SERVICE, seed / "fake_spotify_service.py")


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    reason = cannot_boot_reason()
    if reason is not None:
        pytest.skip(f"cannot boot systemd in namespaces here: {reason}")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} (the system's Python, for the venv under /opt) is missing")
    system = system_python_version()
    here = ".".join(map(str, sys.version_info[:2]))
    if not system.startswith(here + "."):
        # The dependencies' wheels are packed from this venv: compiled ones fit one Python only.
        pytest.skip(f"the system's Python is {system}, this venv's is {here}: its wheels won't fit")
    work = tmp_path_factory.mktemp("systemd-boot")
    seed = work / "seed"
    make_seed(seed, work / "scratch")
    m = Machine(work, seed)
    try:
        m.boot()
        # The README: a venv under /opt with the system's Python (ProtectHome= hides /root).
        m.run([str(SYSTEM_PYTHON), "-m", "venv", VENV])
        m.run(
            [f"{VENV}/bin/pip", "install", "--quiet", "--find-links", "/opt/seed/wheels"]
            + ["spotify-runner"],
            timeout=300,
        )
        m.run(["ln", "-s", f"{VENV}/bin/spotify-runner", "/usr/local/bin/spotify-runner"])
        m.run(["install", "-Dm644", "/opt/seed/jobs/slow.py", "/etc/spotify-runner/jobs/slow.py"])
        m.run(
            ["systemd-run", "--unit=fake-spotify", "--quiet", f"{VENV}/bin/python"]
            + ["/opt/seed/fake_spotify_service.py", str(FAKE_PORT)]
        )
        probe = f"import socket; socket.create_connection(('127.0.0.1', {FAKE_PORT}), 1)"
        wait_until(
            lambda: m.run([f"{VENV}/bin/python", "-c", probe], check=False).returncode == 0,
            60,
            "the fake Spotify to listen",
        )
        yield m
    except MachineError as exc:
        pytest.fail(f"{exc}\n--- console ---\n{m.console_text()[-5000:]}")
    finally:
        m.destroy()
        left = m.leftovers()
        if left:
            pytest.fail(f"the machine left things behind: {left}")


# -- helpers ---------------------------------------------------------------------------------------


class Reader:
    """Collects a process's output lines in a thread, so reads can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, left))
            except queue.Empty:
                line = None
                left = 0
            if line is None:
                raise MachineError(f"no {pattern!r} in the output:\n{''.join(self.seen)}")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def rest(self, timeout: float = 60.0) -> str:
        self.proc.wait(timeout)
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)


def authorize(m: Machine, shell_line: str, *, user: str | None = None, env: dict[str, str]) -> str:
    """Runs an `auth --no-browser` command line, approves in the fake, pastes the redirect back.

    Returns everything the command printed; fails unless it exited 0.
    """
    with m.popen(["/bin/bash", "-c", shell_line], user=user, env=env) as proc:
        try:
            out = Reader(proc)
            url = out.until(r"(http://127\.0\.0\.1:\d+/authorize\?\S+)").group(1)
            # The user's browser: the fake approves at once and redirects to the redirect URI.
            follow = (
                "import sys, requests; "
                "r = requests.get(sys.argv[1], allow_redirects=False, timeout=10); "
                "print(r.headers['Location'])"
            )
            location = m.run([f"{VENV}/bin/python", "-c", follow, url]).stdout.strip()
            assert proc.stdin is not None
            proc.stdin.write(location + "\n")
            proc.stdin.flush()
            text = out.rest()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, text
    assert "authorized" in text, text
    return text


def show(m: Machine, unit: str, *props: str, user: str | None = None) -> dict[str, str]:
    args = ["systemctl", *(["--user"] if user else []), "show", unit, *[f"-p{p}" for p in props]]
    out = m.run(args, user=user, env=user_env(m, user) if user else None).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(m: Machine, *args: str) -> str:
    return m.run(["journalctl", "--no-pager", "-o", "cat", *args]).stdout


def wait_journal(m: Machine, text: str, *args: str, timeout: float = 60.0) -> str:
    def seen() -> str | None:
        log = journal(m, *args)
        return log if text in log else None

    return wait_until(seen, timeout, f"{text!r} in the journal")


def status_json(
    m: Machine, config: str = CONFIG, user: str | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    done = m.run(["spotify-runner", "-c", config, "jobs", "--json"], user=user, env=env)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def job(status: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [j for j in status["jobs"] if j["name"] == name]
    return dict(found)


def wait_run(
    m: Machine,
    name: str,
    status: str = "ok",
    *,
    after: str = "",
    timeout: float = 60.0,
    **where: Any,
) -> dict[str, Any]:
    """Waits until `name`'s last run has `status` and started after `after` (ISO text)."""

    def done() -> dict[str, Any] | None:
        last = job(status_json(m, **where), name)["last_run"]
        if last and last["status"] == status and last["started_at"] > after:
            return dict(last)
        return None

    return wait_until(done, timeout, f"a {status} run of {name}")


def main_uid(m: Machine, unit: str = "spotify-runner") -> int:
    pid = show(m, unit, "MainPID")["MainPID"]
    text = m.run(["cat", f"/proc/{pid}/status"]).stdout
    return int(re.search(r"^Uid:\s+(\d+)", text, flags=re.M).group(1))  # type: ignore[union-attr]


def owner(m: Machine, path: str) -> int:
    return int(m.run(["stat", "-c", "%u", path]).stdout)


def secret_env() -> dict[str, str]:
    return {"SPOTIFY_CLIENT_SECRET": FakeSpotify.CLIENT_SECRET}


def now_iso(m: Machine) -> str:
    return m.run(["date", "-u", "+%Y-%m-%dT%H:%M:%S"]).stdout.strip()


# -- the system unit -------------------------------------------------------------------------------


def test_installed_as_the_readme_says_it_reaches_active_with_ready(machine: Machine) -> None:
    m = machine
    lines = readme_commands()
    setup = [line for line in lines if line.startswith("install ")]
    assert len(setup) == 3
    for line in setup:
        m.run(["/bin/bash", "-c", f"cd /opt/seed/project && {line}"], env=secret_env())
    assert m.run(["stat", "-c", "%a", "/etc/spotify-runner/client_secret"]).stdout.strip() == "600"
    authorize(m, readme_command("systemd-run "), env=secret_env())
    # Type=notify: `enable --now` returns once READY=1 has arrived (or fails).
    m.run(["/bin/bash", "-c", readme_command("systemctl daemon-reload")])
    props = show(m, "spotify-runner", "ActiveState", "SubState", "StatusText", "NRestarts")
    assert props["ActiveState"] == "active", props
    assert props["SubState"] == "running", props
    assert props["NRestarts"] == "0"
    # READY=1 came with a STATUS= line; later ones keep it current.
    assert re.match(r"(next run: \w+ at |no runs scheduled)", props["StatusText"]), props
    assert "spotify-runner started: 1 job(s)" in journal(m, "-u", "spotify-runner")
    # The unit's own sandbox: a dynamic user, not root.
    assert main_uid(m) != 0


def test_a_job_runs_and_jobs_as_root_sees_the_daemon(machine: Machine) -> None:
    m = machine
    run = wait_run(m, "hello")
    assert run["summary"].startswith("Hello, ")
    status = status_json(m)
    pid = int(show(m, "spotify-runner", "MainPID")["MainPID"])
    assert status["daemon"] == {"running": True, "pid": pid}
    (account,) = status["accounts"]
    assert account["authorized"] is True
    assert "hint" not in status
    # The same config without state_dir reads root's own default, which is empty: it says so.
    m.sh(f"grep -v '^state_dir:' {CONFIG} > /root/no-state-dir.yaml")
    text = m.run(["spotify-runner", "-c", "/root/no-state-dir.yaml", "jobs"]).stdout
    assert text.startswith(
        "note: /root/.local/state/spotify-runner holds no runs and no token, but "
        "/var/lib/spotify-runner (the system unit's StateDirectory=) does: add "
        "'state_dir: /var/lib/spotify-runner' to /root/no-state-dir.yaml"
    ), text


def test_reload_adds_a_job_and_a_bad_reload_keeps_the_old_config(machine: Machine) -> None:
    m = machine
    pid = show(m, "spotify-runner", "MainPID")["MainPID"]
    tock = {"job": "hello", "schedule": {"every": "2s"}, "options": {"greeting": "Hi"}}
    m.run(["tee", CONFIG], input=system_config(hello=HELLO, tock=tock))
    m.run(["systemctl", "reload", "spotify-runner"])
    wait_journal(m, "reloaded: 2 job(s), added tock", "-u", "spotify-runner")
    assert wait_run(m, "tock")["summary"].startswith("Hi, ")

    good = m.run(["cat", CONFIG]).stdout
    m.run(["tee", "/root/good.yaml"], input=good)  # for `jobs` while the real one is broken
    m.run(["tee", CONFIG], input=good + "  oops: [\n")
    before = now_iso(m)
    m.run(["systemctl", "reload", "spotify-runner"])
    log = wait_journal(m, "reload failed, keeping the running config", "-u", "spotify-runner")
    assert f"{CONFIG}:" in log
    props = show(m, "spotify-runner", "ActiveState", "MainPID")
    assert props == {"ActiveState": "active", "MainPID": pid}
    # The old config still runs both jobs.
    wait_run(m, "tock", after=before, config="/root/good.yaml")
    m.run(["tee", CONFIG], input=good)


def test_reauthorizing_as_the_readme_says_works_while_the_daemon_runs(machine: Machine) -> None:
    m = machine
    uid = main_uid(m)
    assert owner(m, STATE) == uid
    before = m.run(["stat", "-c", "%i %Y.%y", TOKEN]).stdout
    authorize(m, readme_command("systemd-run "), env=secret_env())
    assert m.run(["stat", "-c", "%i %Y.%y", TOKEN]).stdout != before  # a new token was stored
    # Still the service's own user: the daemon keeps reading its store.
    assert owner(m, STATE) == uid
    assert owner(m, TOKEN) == uid
    assert main_uid(m) == uid
    wait_run(m, "hello", after=now_iso(m))
    assert "cannot read its own token store" not in journal(m, "-u", "spotify-runner")


def test_reauthorizing_as_another_user_is_named_and_the_readme_line_repairs_it(
    machine: Machine,
) -> None:
    """Without -p User=, systemd re-owns the state directory to a new dynamic user."""
    m = machine
    uid = main_uid(m)
    right = readme_command("systemd-run ")
    wrong = right.replace(" -p User=spotify-runner", "")
    assert wrong != right
    authorize(m, wrong, env=secret_env())
    assert owner(m, STATE) != uid
    wait_journal(m, "cannot read its own token store: Permission denied", "-u", "spotify-runner")
    log = journal(m, "-u", "spotify-runner")
    # The daemon's user namespace (PrivateUsers=) shows the new owner as the overflow uid.
    assert f"belongs to another user (uid 65534), this process runs as uid {uid}" in log
    assert "authorization expired or revoked" not in log
    assert "the run machinery failed" not in log

    authorize(m, right, env=secret_env())
    assert owner(m, STATE) == uid
    wait_journal(m, "can read the token store", "-u", "spotify-runner")
    wait_run(m, "hello", after=now_iso(m))


def test_journal_priorities_let_p_err_show_the_errors(machine: Machine) -> None:
    m = machine
    errors = journal(m, "-u", "spotify-runner", "-p", "err")
    assert "cannot read its own token store: Permission denied" in errors
    assert "spotify-runner started" not in errors  # INFO stays out of -p err
    info = journal(m, "-u", "spotify-runner", "-p", "info")
    assert "spotify-runner started" in info
    # The prefix is consumed by journald, not left in the message.
    assert not re.search(r"^<\d>", info, flags=re.M)
    fields = m.run(
        ["journalctl", "--no-pager", "-u", "spotify-runner", "-o", "json", "-p", "err"]
    ).stdout
    assert {json.loads(line)["PRIORITY"] for line in fields.splitlines()} == {"3"}


def test_stop_with_a_slow_run_ends_within_shutdown_timeout_and_exits_0(machine: Machine) -> None:
    m = machine
    soon = m.run(["date", "-u", "-d", "+4 seconds", "+%Y-%m-%dT%H:%M:%S"]).stdout.strip()
    slow_seconds = 300
    slow = {
        "job": "slow",
        "schedule": {"at": soon},
        "catch_up": True,  # runs even if a busy machine took longer than 4 s to reload
        "options": {"seconds": slow_seconds},
        "timeout": "10m",
    }
    m.run(["tee", CONFIG], input=system_config(hello=HELLO, slow=slow))
    m.run(["systemctl", "reload", "spotify-runner"])
    wait_run(m, "slow", "running")
    started = time.monotonic()
    m.run(["systemctl", "stop", "spotify-runner"], timeout=120)
    took = time.monotonic() - started
    props = show(m, "spotify-runner", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    assert props["ActiveState"] == "inactive", props
    assert props["Result"] == "success", props
    assert props["ExecMainStatus"] == "0", props
    # The daemon stopped on its own shutdown_timeout: it says so below, and systemd did not have
    # to kill it (Result=success, not timeout, after TimeoutStopSec=90s); the job's 300 s were
    # not waited for. No tighter bound on the time: on a busy machine it is not the behaviour.
    assert took < slow_seconds, f"stop took {took:.1f}s"
    last = job(status_json(m), "slow")["last_run"]
    assert (last["status"], last["error"]) == ("failed", "interrupted (daemon stopped)")
    log = journal(m, "-u", "spotify-runner")
    assert f"stopped after shutdown_timeout ({SHUTDOWN_TIMEOUT}s) with 1 run(s) still going" in log
    # No traceback in the whole journal: not at this stop, nor while another user held the
    # state directory (each refused run is one line).
    assert "closed database" not in log, log[-6000:]
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]


# -- the user unit ---------------------------------------------------------------------------------


def user_env(m: Machine, user: str | None) -> dict[str, str]:
    uid = m.run(["id", "-u", user or USER]).stdout.strip()
    return {
        "HOME": f"/home/{user or USER}",
        "XDG_RUNTIME_DIR": f"/run/user/{uid}",
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path=/run/user/{uid}/bus",
    }


def test_the_user_unit_runs_and_reloads_under_a_user_manager(machine: Machine) -> None:
    m = machine
    m.run(["useradd", "--create-home", "--shell", "/bin/bash", USER])
    env = user_env(m, USER)
    uid = m.run(["id", "-u", USER]).stdout.strip()
    m.run(["systemctl", "start", f"user@{uid}.service"])
    home = env["HOME"]
    config = f"{home}/.config/spotify-runner/config.yaml"
    user_config = {
        "spotify": {**spotify_section(), "client_secret_file": "client_secret"},
        "timezone": "UTC",
        "jobs": {"hello": HELLO},
    }

    def as_user(script: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("env", env)
        return m.run(["/bin/bash", "-euo", "pipefail", "-c", script], user=USER, **kwargs)

    # (Not `install /dev/stdin`: the pipe is root's, and reopening it as the user is refused.)
    as_user(
        f"mkdir -p ~/.config/spotify-runner && cat > {config}", input=yaml.safe_dump(user_config)
    )
    # As the unit's header says.
    as_user(
        "install -Dm644 /opt/seed/project/contrib/systemd/spotify-runner-user.service "
        "~/.config/systemd/user/spotify-runner.service"
        ' && install -Dm600 /dev/stdin ~/.config/spotify-runner/client_secret <<<"$SECRET"'
        f" && mkdir -p ~/.local/bin && ln -s {VENV}/bin/spotify-runner ~/.local/bin/",
        env={**env, "SECRET": FakeSpotify.CLIENT_SECRET},
    )
    authorize(
        m, f"~/.local/bin/spotify-runner auth --no-browser --config {config}", user=USER, env=env
    )
    assert (
        as_user("test -f ~/.local/state/spotify-runner/accounts/default/token.json").returncode == 0
    )
    as_user("systemctl --user daemon-reload && systemctl --user enable --now spotify-runner")
    props = show(m, "spotify-runner", "ActiveState", "SubState", "StatusText", user=USER)
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    # The daemon uses the token `auth` stored: its runs are ok.
    wait_run(m, "hello", config=config, user=USER, env=env)
    assert as_user("ls -A ~/.config/spotify-runner").stdout.split() == [
        "client_secret",
        "config.yaml",
    ]
    as_user("systemctl --user reload spotify-runner")
    user_journal = ("_SYSTEMD_USER_UNIT=spotify-runner.service",)
    wait_journal(m, "reloaded: 1 job(s)", *user_journal)
    props = show(m, "spotify-runner", "ActiveState", "NRestarts", user=USER)
    assert props == {"ActiveState": "active", "NRestarts": "0"}, props
    as_user("systemctl --user stop spotify-runner")
    m.run(["systemctl", "stop", f"user@{uid}.service"])


# -- afterwards ------------------------------------------------------------------------------------


def test_poweroff_leaves_no_process_mount_or_cgroup(machine: Machine) -> None:
    machine.destroy()
    assert machine.leftovers() == []
