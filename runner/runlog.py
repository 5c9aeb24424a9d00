"""Each run's own log lines: what its job and the runner logged for it, redacted and capped.

A run is worked on by two threads: the one that calls `Executor.run` (an APScheduler worker, or the
CLI's main thread) and the job's own worker thread. `RunLogCapture` is a logging handler that
sends a record to the run whose thread emitted it, so two jobs running side by side never see
each other's lines. The text is kept with the run's history row (`spotify-runner history --run
ID`), so "what did the 3 a.m. run do?" is answered without journald.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner.logs import RedactingFilter
from runner.state import MAX_RUN_LOG


class RunLog:
    """The lines captured for one run; appends after `close()` (a timed-out job) are dropped."""

    def __init__(self, limit: int = MAX_RUN_LOG) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._size = 0
        self._limit = limit
        self._closed = False
        self._cut = False

    def append(self, line: str) -> None:
        """Adds one (possibly multi-line) entry, unless the run is over or the cap is reached."""
        size = len(line.encode("utf-8")) + 1
        with self._lock:
            if self._closed or self._cut:
                return
            if self._size + size > self._limit:
                self._cut = True
                return
            self._lines.append(line)
            self._size += size

    def close(self) -> None:
        """Stops taking lines."""
        with self._lock:
            self._closed = True

    def text(self) -> str:
        """Everything captured, one entry a line; says so when the cap cut it short."""
        with self._lock:
            body = "".join(line + "\n" for line in self._lines)
            return body + ("... (log cut at 64 KiB)\n" if self._cut else "")

    def tail(self, lines: int = 20, chars: int = 2000) -> str:
        """The last `lines` lines, at most `chars` characters (for a notification)."""
        kept: list[str] = []
        total = 0
        for line in reversed(self.text().splitlines()):
            if len(kept) >= lines or total + len(line) + 1 > chars:
                break
            kept.append(line)
            total += len(line) + 1
        return "\n".join(reversed(kept))


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class RunLogCapture(logging.Handler):
    """Routes log records to the run their thread works for.

    The handler sits on the root logger only while at least one run is being recorded.

    Args:
        redactor: the process's redaction filter (it knows the client secret and tokens); a
            pattern-only one when None.
    """

    def __init__(self, redactor: RedactingFilter | None = None) -> None:
        super().__init__(logging.DEBUG)
        # Applied to a copy: the filter rewrites the record, which other handlers also see.
        self._redactor = redactor or RedactingFilter()
        self.setFormatter(_Formatter())
        self._threads: dict[int, RunLog] = {}
        self._guard = threading.Lock()
        self._active = 0

    def emit(self, record: logging.LogRecord) -> None:
        target = self._threads.get(threading.get_ident())
        if target is None:
            return
        try:
            private = copy.copy(record)
            self._redactor.filter(private)
            target.append(self.format(private))
        except Exception:  # a logging handler must never raise into the code that logs
            self.handleError(record)

    def _attach(self, runlog: RunLog) -> None:
        with self._guard:
            self._threads[threading.get_ident()] = runlog
            self._active += 1
            if self._active == 1:
                logging.getLogger().addHandler(self)

    def _detach(self) -> None:
        with self._guard:
            self._threads.pop(threading.get_ident(), None)
            self._active -= 1
            if self._active == 0:
                logging.getLogger().removeHandler(self)

    @contextmanager
    def recording(self) -> Iterator[RunLog]:
        """Captures this thread's records into a new `RunLog` until the block ends."""
        runlog = RunLog()
        self._attach(runlog)
        try:
            yield runlog
        finally:
            self._detach()
            runlog.close()

    @contextmanager
    def joined(self, runlog: RunLog) -> Iterator[None]:
        """Captures this thread's records (a job's worker thread) into `runlog` as well."""
        self._attach(runlog)
        try:
            yield
        finally:
            self._detach()
