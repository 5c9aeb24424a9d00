"""One daemon per state_dir: the PID-file lock."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.lock import LOCK_NAME, DaemonLock, daemon_pid


def test_the_lock_writes_our_pid_and_daemon_pid_reads_it(tmp_path: Path) -> None:
    lock = DaemonLock(tmp_path / "state")
    lock.acquire()
    try:
        assert (tmp_path / "state" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        assert (tmp_path / "state" / LOCK_NAME).stat().st_mode & 0o777 == 0o600
        assert daemon_pid(tmp_path / "state") == os.getpid()
    finally:
        lock.release()
    assert daemon_pid(tmp_path / "state") is None
    assert (tmp_path / "state" / LOCK_NAME).read_text() == ""


def test_no_pid_file_means_no_daemon(tmp_path: Path) -> None:
    assert daemon_pid(tmp_path) is None


def test_a_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = DaemonLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(UsageError, match=rf"\(PID {os.getpid()}\)") as caught:
            DaemonLock(tmp_path).acquire()
        assert caught.value.exit_code == 2
        assert str(tmp_path) in str(caught.value)
    finally:
        first.release()
    # Released: the next one gets it.
    again = DaemonLock(tmp_path)
    again.acquire()
    again.release()


def test_a_dead_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The kernel drops the lock with the process, even after kill -9 and a PID file left full."""
    code = (
        "import sys, time; from pathlib import Path; from runner.lock import DaemonLock;"
        "DaemonLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n"
        assert daemon_pid(tmp_path) == child.pid
        with pytest.raises(UsageError, match=rf"PID {child.pid}"):
            DaemonLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert daemon_pid(tmp_path) is None
    lock = DaemonLock(tmp_path)
    lock.acquire()
    lock.release()


def test_a_reader_looking_at_the_same_moment_does_not_refuse_a_daemon(tmp_path: Path) -> None:
    """`spotify-runner jobs` takes a shared lock for an instant to ask who runs; a daemon
    starting in that instant must not mistake it for another daemon."""
    tmp_path.mkdir(exist_ok=True)
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what daemon_pid() holds while it looks
    timer = threading.Timer(0.1, lambda: (fcntl.flock(fd, fcntl.LOCK_UN), os.close(fd)))
    timer.start()
    lock = DaemonLock(tmp_path)
    try:
        lock.acquire()
    finally:
        timer.join()
    try:
        assert daemon_pid(tmp_path) == os.getpid()
    finally:
        lock.release()
