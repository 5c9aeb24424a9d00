"""Finding 6: a run that times out is really stopped, and its slot stays busy until it is.

A feed server on 127.0.0.1 drips one byte every 0.2 s, so no single socket read ever waits long
enough for `requests`' per-read timeout: only the run's deadline can end the read.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from daemon_world import JOBS_DIR

from runner.deadline import Deadline
from runner.errors import RunTimedOut
from runner.lock import JobLock
from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


class DrippingServer:
    """Answers every request with headers, then one body byte every `interval` seconds."""

    def __init__(self, interval: float = 0.2, length: int = 10_000) -> None:
        self.interval = interval
        self.length = length
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = 0  # connections still being dripped into
        self.closed_by_client = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed.xml"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
        try:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.length}\r\n\r\n"
            conn.sendall(head.encode())
            for _ in range(self.length):
                if self._stop.wait(self.interval):
                    return
                conn.sendall(b"x")
        except OSError:
            with self._lock:
                self.closed_by_client += 1
        finally:
            conn.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join()
        self.listener.close()


@pytest.fixture
def drip() -> Iterator[DrippingServer]:
    server = DrippingServer()
    yield server
    server.close()


@pytest.fixture
def harness(fake: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    with JobHarness(fake, tmp_path, jobs_dir=JOBS_DIR) as h:
        yield h


def job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "job-job"]


def wait_until(check: object, what: str, limit: float = 30.0) -> None:
    give_up = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert time.monotonic() < give_up, what
        time.sleep(0.05)


def open_sockets() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if _is_socket(fd))


def _is_socket(fd: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    except OSError:
        return False


def test_a_dripping_feed_is_cut_at_the_deadline(harness: JobHarness, drip: DrippingServer) -> None:
    sockets_before = open_sockets()
    started = time.monotonic()
    outcome = harness.run("dripfeed", {"url": drip.url}, timeout=timedelta(seconds=1))
    assert outcome.status is RunStatus.TIMED_OUT
    # The run ends at its deadline plus at most the cut's grace, not when the drip ends (2000 s).
    assert time.monotonic() - started < 120  # a bound for a busy machine, far below 2000 s
    # No thread and no socket outlives the run: the old code kept both (threads 5 -> 13).
    wait_until(lambda: not job_threads(), "the timed-out job's thread never ended")
    wait_until(lambda: drip.open == 0, "the server still drips into a connection")
    wait_until(lambda: open_sockets() <= sockets_before, "a socket of the run stayed open")


def test_repeated_timeouts_do_not_pile_up_threads(
    harness: JobHarness, drip: DrippingServer
) -> None:
    threads_before = threading.active_count()
    for _ in range(3):
        outcome = harness.run("dripfeed", {"url": drip.url}, timeout=timedelta(seconds=1))
        assert outcome.status is RunStatus.TIMED_OUT
        # The cut socket ends the job's thread a moment after the outcome; until then the slot
        # is busy by design (see the next test), and a run started at once would be skipped.
        wait_until(lambda: not job_threads(), "the timed-out job's thread never ended")
    wait_until(lambda: threading.active_count() <= threads_before + 1, "threads piled up")
    wait_until(lambda: drip.open == 0, "connections piled up")


def test_the_slot_stays_busy_until_the_timed_out_thread_ends(harness: JobHarness) -> None:
    # `slow` sleeps through its deadline (no socket to cut): its thread outlives the outcome.
    outcome = harness.run("slow", {"seconds": 5}, timeout=timedelta(seconds=1))
    assert outcome.status is RunStatus.TIMED_OUT
    assert job_threads(), "the job's thread should still be sleeping"
    again = harness.run("slow", {"seconds": 0}, timeout=timedelta(seconds=5))
    assert again.status is RunStatus.SKIPPED
    assert again.summary is not None
    assert again.summary.startswith(f"not run: it is already running in PID {os.getpid()}")
    wait_until(lambda: not job_threads(), "the timed-out job's thread never ended")
    after = harness.run("slow", {"seconds": 0}, timeout=timedelta(seconds=5))
    assert after.status is RunStatus.OK


def test_requests_after_the_cut_are_refused_and_capped_before() -> None:
    deadline = Deadline(60)
    assert 59 < deadline.remaining() <= 60
    deadline.cut()
    assert deadline.expired
    with deadline.session() as session, pytest.raises(RunTimedOut, match="GET http://127"):
        session.get("http://127.0.0.1:9/never", timeout=5)


def test_the_deadline_is_exposed_to_jobs_as_ctx_deadline(harness: JobHarness) -> None:
    # `careless` is any job; what matters is that the context carries the deadline.
    from runner.context import JobContext

    assert "deadline" in JobContext.__dataclass_fields__
    lock = JobLock(harness.state_dir, "x")
    assert lock.acquire("me") is None
    assert JobLock(harness.state_dir, "x").acquire("other") == "me"
    lock.release()
    assert JobLock(harness.state_dir, "x").acquire("other") is None


def test_a_lock_that_cannot_be_taken_fails_the_run_in_one_line(harness: JobHarness) -> None:
    # The systemd test found it: a state_dir given to another user made this a traceback.
    harness.state_dir.mkdir(parents=True, exist_ok=True)
    (harness.state_dir / "locks").write_text("not a folder")
    outcome = harness.run("counter")
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("cannot take the run lock ")
    assert str(harness.state_dir / "locks") in outcome.error
    assert "\n" not in outcome.error
    (harness.state_dir / "locks").unlink()
    assert harness.run("counter").status is RunStatus.OK  # the next run tries again
