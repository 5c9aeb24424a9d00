"""Is the scheduler alive and ticking? One signal for the systemd watchdog and for `/healthz`.

The scheduler runs a heartbeat every `HEARTBEAT` seconds through the same thread pool as the
jobs; the main loop sends `WATCHDOG=1` only while the last beat is recent, and `/healthz`
answers 200 or 503 from the same test. A scheduler that stalled (a dead thread, an exhausted
pool, a deadlock) stops both, so systemd restarts the daemon and a monitor sees the 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

HEARTBEAT = 5.0  # seconds between beats
STALE_AFTER = 30.0  # seconds without a beat that mean "stalled"


class Liveness:
    """The heartbeat and the verdict on it.

    Args:
        stale_after: seconds without a beat after which the scheduler counts as stalled.
        clock: monotonic seconds.
    """

    def __init__(
        self, *, stale_after: float = STALE_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._beats = 0

    def beat(self) -> None:
        """The scheduler ran its heartbeat."""
        with self._lock:
            self._last = self._clock()
            self._beats += 1

    def seconds_since_beat(self) -> float:
        """How long ago the last beat was."""
        with self._lock:
            return self._clock() - self._last

    def alive(self) -> bool:
        """True while the last beat is at most `stale_after` seconds old."""
        return self.seconds_since_beat() <= self.stale_after

    def detail(self) -> dict[str, Any]:
        """What `/healthz` reports besides its status."""
        with self._lock:
            beats = self._beats
        return {
            "seconds_since_tick": round(self.seconds_since_beat(), 3),
            "stale_after_seconds": self.stale_after,
            "ticks": beats,
        }
