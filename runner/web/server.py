"""waitress serving the app from a daemon thread, on a socket bound before the daemon is READY.

`start()` binds the socket in the caller's thread, so a port in use fails start-up with one line
(exit 2) instead of a traceback in a thread nobody watches. `serve()`, called once the daemon is
READY, imports Flask and waitress and builds the app in the server thread, off the path to READY.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from runner.errors import UsageError

log = logging.getLogger("runner.web")


class WebServer:
    """One waitress server for one WSGI app.

    Args:
        make_app: builds the WSGI application (called in the server thread).
        host: the address to listen on.
        port: the port; 0 picks a free one (see `port` after `start()`).
        threads: request worker threads.
    """

    def __init__(
        self, make_app: Callable[[], Any], host: str, port: int, *, threads: int = 4
    ) -> None:
        self.make_app = make_app
        self.host = host
        self.port = port
        self.threads = threads
        self.ready = threading.Event()
        self._map: dict[int, Any] = {}
        self._server: Any = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Set by `stop()` once requests are done: the loop then closes the sockets and ends.
        self._closing = False
        self._closed = False

    @property
    def address(self) -> str:
        """`host:port` as a URL writes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> None:
        """Binds; `serve()` then answers. Until it does, connections wait in the backlog.

        Raises:
            UsageError: the address is in use or cannot be bound (exit 2).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # As waitress does: a restart may rebind while old connections sit in TIME_WAIT; a
        # live listener still makes bind() fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"http.listen {self.address} is in use (another spotify-runner, or something "
                    "else): stop it, set http.listen to a free host:port, or set http: false"
                ) from None
            raise UsageError(
                f"cannot listen on http.listen {self.address}: {exc.strerror or exc}"
            ) from None
        self._socket = sock
        self.port = int(sock.getsockname()[1])

    def serve(self) -> None:
        """Builds the app and serves it from a daemon thread (after READY: off its path)."""
        if self._socket is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="http-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from waitress.server import create_server

            app = self.make_app()
            self._server = create_server(
                app,
                map=self._map,
                sockets=[self._socket],
                threads=self.threads,
                ident="spotify-runner",
                clear_untrusted_proxy_headers=True,
            )
        except Exception:
            log.exception("the HTTP server could not start")
            return
        finally:
            self.ready.set()
        if self._stopped:
            return
        log.info("serving /metrics and /healthz on http://%s", self.address)
        self._loop()

    def _loop(self) -> None:
        """waitress's own loop, until `stop()` asks; then its sockets are closed here.

        Only this thread may close them: a socket closed from another could vanish between the
        loop listing it and select() (EBADF: a traceback in this thread), and a trigger pipe
        closed here could be written to by the stopping thread (or its number reused) after.
        """
        from waitress import wasyncore

        server = self._server
        adj = server.adj
        while not self._closing and self._map:
            wasyncore.loop(
                timeout=adj.asyncore_loop_timeout, map=self._map, use_poll=adj.asyncore_use_poll,
                count=1,
            )  # fmt: skip
        with server.trigger.lock:
            self._close_all()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops listening and closes open connections; waits up to `timeout` for the thread."""
        self._stopped = True
        if self._thread is not None:
            self.ready.wait(timeout)
        server = self._server
        thread = self._thread
        if server is None:  # never served, or the app could not be built
            if self._socket is not None:
                self._socket.close()
            if thread is not None:
                thread.join(timeout)
            return
        server.task_dispatcher.shutdown(timeout=timeout)
        # The loop closes the sockets under the trigger's lock: while it is held here, the
        # trigger's pipe is open, and pulling it wakes the loop to close them and end.
        with server.trigger.lock:
            self._closing = True
            if not self._closed:
                server.pull_trigger()
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            with server.trigger.lock:
                self._close_all()  # the loop never ran: nothing selects on them

    def _close_all(self) -> None:
        """Closes every socket of the server, once (the caller holds the trigger's lock)."""
        if not self._closed:
            for dispatcher in list(self._map.values()):
                dispatcher.close()
            self._closed = True
