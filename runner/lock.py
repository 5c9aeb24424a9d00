"""One daemon per state_dir: an advisory lock on a PID file.

The kernel drops a `flock` when its holder dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from runner.errors import UsageError
from runner.files import describe_os_error, private_dir

LOCK_NAME = "daemon.pid"
# How long a starting daemon waits for a lock held by no live daemon (a reader's instant).
READER_GRACE = 1.0


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True while a process with this PID exists (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class DaemonLock:
    """Held by the running daemon for its whole life.

    Args:
        state_dir: the folder it guards.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises UsageError naming the PID that holds it."""
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # `daemon_pid()` (the `jobs` command) holds a shared lock for an instant while it looks;
        # a daemon starting in that instant waits it out instead of refusing. A live PID in the
        # file means a daemon holds the lock: refuse at once.
        deadline = time.monotonic() + READER_GRACE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _read_pid(fd)
                if (pid is None or not pid_alive(pid)) and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                os.close(fd)
                who = f"PID {pid}" if pid else "another process"
                raise UsageError(
                    f"another spotify-runner daemon ({who}) is running with state_dir "
                    f"{self.path.parent}: stop it first, or give this one its own state_dir"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drops the lock (also dropped by the kernel if the process dies)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def daemon_pid(state_dir: Path) -> int | None:
    """The PID of the daemon running on `state_dir`, or None when none is."""
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class JobLock:
    """One run of a job at a time, across every process on this state_dir.

    An advisory `flock` on `state_dir/locks/ACCOUNT/JOB.lock`, held from the start of a run until
    its thread has ended (a timed-out run's thread included), by the daemon and `run-job` alike.
    The file says who holds it, for the refusal message; the kernel drops the lock when its
    holder dies.

    Args:
        state_dir: the state folder.
        job: the job's name.
        account: the account it runs for.
    """

    def __init__(self, state_dir: Path, job: str, account: str = "default") -> None:
        self.path = state_dir / "locks" / account / f"{job}.lock"
        self._fd: int | None = None

    def acquire(self, holder: str) -> str | None:
        """Takes the lock, writing `holder` into it; or returns who holds it (and takes nothing).

        Args:
            holder: who we are, e.g. "the daemon (PID 123)".

        Raises:
            UsageError: the lock file cannot be created or opened (permissions, read-only disk),
                with what that means.
        """
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot take the run lock {self.path}: {describe_os_error(exc)}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            return text or "another process"
        self._fd = fd
        # Who holds it is only for the refusal message: a full disk must not fail the run (or,
        # worse, leave the lock taken by a run that never started).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder}\n".encode(), 0)
        return None

    def release(self) -> None:
        """Drops the lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)
