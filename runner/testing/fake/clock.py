"""A clock tests move by hand, for `FakeSpotify(clock=...)` and anything else taking a clock."""

from __future__ import annotations

import threading


class ManualClock:
    """Unix seconds that change only when told to.

    Args:
        now: the starting time.
    """

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        """The current time."""
        return self()

    def advance(self, seconds: float) -> None:
        """Move time forward (or back, with a negative number)."""
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        """Jump to `now`."""
        with self._lock:
            self._now = now
