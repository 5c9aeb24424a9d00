"""A throw-away machine: systemd 252 booted as PID 1 of its own namespaces over an overlay of `/`.

`Machine.boot()` starts `boot_machine.sh` under a pty (systemd wants a console; its output is the
best log of a failed boot) inside `unshare --pid --fork --mount --uts --ipc --net --cgroup`, in a
cgroup of its own under the host's cgroup2 hierarchy. Commands go in with `nsenter`. Nothing of it
outlives `Machine.destroy()`: the tmpfs and every mount die with the mount namespace, every process
with PID 1, and the cgroup is removed; `leftovers()` says what would be left otherwise.
"""

from __future__ import annotations

import contextlib
import os
import pty
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
BOOT_SCRIPT = HERE / "boot_machine.sh"
SYSTEMD = Path("/lib/systemd/systemd")
TARGET = "spotify-runner-test.target"
# Where the host's cgroup2 hierarchy may be: hybrid hosts mount it at unified/.
CGROUP2_CANDIDATES = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
# A clean environment for commands inside: nothing of the host's (pip's index settings, venvs).
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INDEX": "1",
    "PIP_CONFIG_FILE": "/dev/null",
}

T = TypeVar("T")


class MachineError(Exception):
    """The machine did not boot, or a command inside failed."""


def cgroup2_root() -> Path | None:
    """The host's cgroup2 mount, or None."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = {line.split()[1] for line in mounts if line.split()[2] == "cgroup2"}
    for candidate in CGROUP2_CANDIDATES:
        if str(candidate) in points:
            return candidate
    return None


def cannot_boot_reason() -> str | None:
    """Why this host cannot boot the machine, in words; None when it can."""
    if os.geteuid() != 0:
        return "booting systemd in namespaces needs root (unshare, mount, pivot_root)"
    for tool in ("unshare", "nsenter", "pivot_root", "systemd-id128"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is not installed"
    if cgroup2_root() is None:
        return "no cgroup2 hierarchy is mounted (systemd needs one to delegate)"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--cgroup", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare cannot create namespaces here: {probe.stderr.strip()}"
    return None


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Polls `check` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise MachineError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


class Machine:
    """One booted systemd in its own namespaces.

    Args:
        workdir: an empty host directory for the machine's tmpfs and the seed.
        seed: a host directory copied to /opt/seed inside before systemd starts.
    """

    def __init__(self, workdir: Path, seed: Path) -> None:
        self.workdir = workdir
        self.seed = seed
        self.mountpoint = workdir / "machine"
        self.console = bytearray()
        self._console_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._master: int | None = None
        root = cgroup2_root()
        assert root is not None
        self.cgroup = root / f"spotify-runner-test-{os.getpid()}-{time.monotonic_ns()}"
        self.pid1: int | None = None

    # -- lifetime -------------------------------------------------------------------------------

    def boot(self, timeout: float = 120.0) -> None:
        """Boots and waits until `systemctl is-system-running` says running (or degraded)."""
        self.mountpoint.mkdir()
        self.cgroup.mkdir()
        master, slave = pty.openpty()
        self._master = master
        cgroup_procs = self.cgroup / "cgroup.procs"
        # The shell moves itself into the new cgroup, so `unshare --cgroup` makes that the
        # machine's cgroup root; systemd then owns everything below it.
        command = (
            f'echo $$ > "{cgroup_procs}" && exec unshare --pid --fork --mount --uts --ipc '
            f"--net --cgroup --propagation private /bin/sh {BOOT_SCRIPT} "
            f'"{self.mountpoint}" "{self.seed}" {TARGET}'
        )
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._drain, name="machine-console", daemon=True)
        self._reader.start()
        self.pid1 = wait_until(self._find_pid1, 30, "the machine's PID 1")
        wait_until(self._booted, timeout, "the boot to finish")

    def _drain(self) -> None:
        assert self._master is not None
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._console_lock:
                self.console.extend(data)

    def console_text(self) -> str:
        """What systemd wrote on its console so far."""
        with self._console_lock:
            return self.console.decode(errors="replace")

    def _find_pid1(self) -> int | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise MachineError(
                f"the boot script exited {self._proc.returncode}:\n{self.console_text()}"
            )
        # `unshare --fork` is the Popen'd process (the shell exec'd it); PID 1 is its child.
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        if not pids:
            return None
        pid = int(pids[0])
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        return pid if exe == os.path.realpath(SYSTEMD) else None

    def _booted(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise MachineError(f"systemd exited {self._proc.returncode}:\n{self.console_text()}")
        state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
        if state in ("running", "degraded"):
            return True
        if state == "maintenance":
            raise MachineError(f"the boot failed:\n{self.console_text()}")
        return False

    def destroy(self, timeout: float = 60.0) -> None:
        """Powers off (killing PID 1 if it will not), then removes the machine's cgroup."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(MachineError, subprocess.TimeoutExpired):
                self.run(["systemctl", "--no-block", "poweroff"], check=False, timeout=20)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Killing a PID namespace's init kills every process in it.
                if self.pid1 is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid1, signal.SIGKILL)
                proc.wait(30)
        if self._reader is not None:
            self._reader.join(10)
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        self._remove_cgroup()

    def _remove_cgroup(self) -> None:
        if not self.cgroup.exists():
            return
        deadline = time.monotonic() + 30
        while self._cgroup_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        # Bottom-up: a cgroup can only be removed once its children are.
        for folder, _dirs, _files in sorted(
            os.walk(self.cgroup), key=lambda entry: entry[0].count("/"), reverse=True
        ):
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    def _cgroup_pids(self) -> list[int]:
        pids: list[int] = []
        if not self.cgroup.exists():
            return pids
        for folder, _dirs, files in os.walk(self.cgroup):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    text = (Path(folder) / "cgroup.procs").read_text()
                    pids.extend(int(p) for p in text.split())
        return pids

    def leftovers(self) -> list[str]:
        """Whatever of the machine is still on the host: processes, mounts, its cgroup."""
        found = [f"process {pid} in {self.cgroup}" for pid in self._cgroup_pids()]
        if self.cgroup.exists():
            found.append(f"cgroup {self.cgroup}")
        if self.pid1 is not None and Path(f"/proc/{self.pid1}").exists():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self.pid1}/exe") == os.path.realpath(SYSTEMD):
                    found.append(f"the machine's PID 1 ({self.pid1})")
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(str(self.workdir)):
                found.append(f"mount {point}")
        return found

    # -- commands inside ------------------------------------------------------------------------

    def command(self, args: Sequence[str], *, user: str | None = None) -> list[str]:
        """The host command line that runs `args` inside (as `user`, with runuser)."""
        assert self.pid1 is not None
        inside = list(args)
        if user is not None:
            inside = ["runuser", "-u", user, "--", *inside]
        return [
            "nsenter",
            "-t",
            str(self.pid1),
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "-C",
            "-r",
            "-w",
            "--",
            "/usr/bin/env",
            "-i",
            *[f"{k}={v}" for k, v in INSIDE_ENV.items()],
            *inside,
        ]

    def run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 120.0,
        input: str | None = None,  # noqa: A002
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `args` inside and waits; `check` fails with its output when it exits non-zero."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        cmd = self.command([*(["/usr/bin/env", *extra] if extra else []), *args], user=user)
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
        if check and done.returncode != 0:
            raise MachineError(
                f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def popen(
        self, args: Sequence[str], *, user: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Starts `args` inside with pipes for stdin and stdout (stderr joins stdout)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        cmd = self.command([*(["/usr/bin/env", *extra] if extra else []), *args], user=user)
        return subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Runs a bash script inside."""
        return self.run(["/bin/bash", "-euo", "pipefail", "-c", script], **kwargs)  # type: ignore[arg-type]
