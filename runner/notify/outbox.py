"""A queue and one sender thread: delivery that never blocks a run, the scheduler or a shutdown.

Whoever has something to deliver calls `put()`, which returns at once. The sender thread
delivers items in order; a failed delivery is retried a few times with a growing pause, then
logged (by its redacted name) and dropped. `close()` gives what is queued until a deadline to
go out, then leaves the thread (a daemon thread) behind: a receiver that hangs costs a stop no
more than that deadline.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Enough for a burst of messages; beyond it the receiver is clearly not keeping up.
MAX_QUEUED = 500


@dataclass(frozen=True)
class Delivery(Generic[T]):
    """One item for one destination.

    Attributes:
        item: what to deliver.
        name: how the destination is named in logs (redacted, e.g. `notify.urls[0] (ntfys)`).
    """

    item: T
    name: str


class Outbox(Generic[T]):
    """Delivers items through `deliver` in a background thread.

    Args:
        name: the thread's name, and how log lines name this outbox.
        deliver: sends one item; True when it was delivered. Raising counts as a failure.
        attempts: tries per item.
        backoff: seconds before the second try; doubled after each further failure.
        logger: where dropped deliveries are reported.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[Delivery[T]], bool],
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._log = logger or logging.getLogger("runner.notify")
        self._queue: queue.Queue[Delivery[T] | None] = queue.Queue(MAX_QUEUED)
        self._closing = threading.Event()
        self._abandoned = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, delivery: Delivery[T]) -> None:
        """Queues a delivery; never blocks. A full queue drops it, with a warning."""
        if self._closing.is_set():
            self._log.warning("%s: stopping; not sent to %s", self.name, delivery.name)
            return
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            self._done()
            self._log.warning("%s: too many queued; dropped one for %s", self.name, delivery.name)

    def flush(self, timeout: float) -> bool:
        """Waits until everything queued so far was handled; False when `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self, timeout: float) -> bool:
        """Delivers what is queued for at most `timeout` seconds, then stops.

        Returns:
            True when everything queued was handled in time.
        """
        deadline = time.monotonic() + timeout
        # From here on, each queued item gets one try and no back-off pause.
        self._closing.set()
        drained = self.flush(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        # Whatever is still queued is dropped unsent, so the thread left behind ends soon.
        self._abandoned.set()
        if not drained:
            with self._idle:
                left = self._pending
            self._log.warning(
                "%s: %d delivery(ies) not finished within %gs; dropped", self.name, left, timeout
            )
        return drained

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                if not self._abandoned.is_set():
                    self._send(delivery)
            finally:
                self._done()

    def stopped(self, timeout: float) -> bool:
        """Waits for the sender thread to end after `close()`; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _send(self, delivery: Delivery[T]) -> None:
        pause = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                if self._deliver(delivery):
                    return
                problem = "not delivered"
            except Exception as exc:  # a sender must outlive any receiver's surprise
                problem = type(exc).__name__
            if attempt == self._attempts or self._closing.is_set():
                break
            # Waits on the closing flag, so a stop does not sit out a back-off.
            if self._closing.wait(pause):
                break
            pause *= 2
        self._log.warning(
            "%s: %s to %s after %d attempt(s); dropped",
            self.name,
            problem,
            delivery.name,
            attempt,
        )
