"""A run's deadline, enforced on its sockets: no HTTP read outlives the run's timeout.

`requests`' `timeout` bounds each socket operation, not a whole response: a server that drips
one byte every few seconds keeps a read going forever, and a thread cannot be killed. So every
socket that a run's sessions open is registered with the run's `Deadline`; when the executor
gives up on the run it calls `cut()`, which shuts those sockets down: a read blocked in them
returns at once and the job's thread ends with a connection error. Requests started after the
cut are refused (`RunTimedOut`), and each request's `timeout` is also capped at what is left.

Jobs and sources get it as `ctx.deadline`, and `ctx.http()` gives them a `requests.Session`
bound to it for anything that is not Spotify (feeds, pages); the Spotify clients are bound too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from runner.errors import RunTimedOut


class Deadline:
    """When a run must be over, and the sockets to cut then.

    Args:
        seconds: how long from now.
        clock: monotonic seconds.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.at = clock() + seconds
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._cut = False

    def remaining(self) -> float:
        """Seconds left; 0 once the deadline has passed or the run was cut."""
        if self._cut:
            return 0.0
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed or the run was cut."""
        return self.remaining() <= 0

    def check(self, what: str = "the request") -> None:
        """Raises `RunTimedOut` when the run's time is up."""
        if self.expired:
            raise RunTimedOut(f"the run's time limit has passed; {what} not sent")

    def cut(self) -> None:
        """Ends the run's network I/O now: shuts down every socket it has open."""
        with self._lock:
            self._cut = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def register(self, sock: socket.socket) -> None:
        """Adds a socket the run opened; one opened after the cut is shut down at once."""
        with self._lock:
            if not self._cut:
                self._sockets.add(sock)
                return
        _shut(sock)

    def bind(self, session: requests.Session) -> requests.Session:
        """Makes `session`'s connections obey this deadline (http and https); returns it."""
        adapter = _DeadlineAdapter(self)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def session(self) -> requests.Session:
        """A new `requests.Session` bound to this deadline, for one thread of the run."""
        return self.bind(requests.Session())


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _pool_classes(deadline: Deadline) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools whose every new socket is registered with `deadline`."""

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.register(sock)
            return sock

    class SecureConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.register(sock)
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    return {"http": Pool, "https": SecurePool}


class _DeadlineAdapter(HTTPAdapter):
    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.deadline)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.deadline.check(f"{request.method} {request.url}")
        left = max(self.deadline.remaining(), 0.001)
        if isinstance(timeout, tuple):
            bounded: float | tuple[float, float] = tuple(  # type: ignore[assignment]
                left if part is None else min(part, left) for part in timeout
            )
        else:
            bounded = left if timeout is None else min(timeout, left)
        return super().send(request, stream, bounded, verify, cert, proxies)
