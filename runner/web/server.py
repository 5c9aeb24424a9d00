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
        self._server.run()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops listening and closes open connections; waits up to `timeout` for the thread."""
        self._stopped = True
        if self._thread is not None:
            self.ready.wait(timeout)
        server = self._server
        if server is not None:
            server.task_dispatcher.shutdown(timeout=timeout)
            # With nothing left in its map, waitress's loop ends.
            for dispatcher in list(self._map.values()):
                dispatcher.close()
        elif self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout)
