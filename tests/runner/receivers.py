"""Real HTTP receivers on 127.0.0.1 for notification and ping tests.

`Receiver` records every request (method, path, body); with `hang`, it holds each request that
long before answering, as a dead webhook would.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON (what apprise's json:// sends)."""
        return json.loads(self.body)


class Receiver:
    """A recording HTTP server on 127.0.0.1, started on creation.

    Args:
        hang: seconds to hold each request before answering (or until `close()`).
        status: the status it answers with.
    """

    def __init__(self, hang: float = 0.0, status: int = 200) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver.lock:
                    receiver.received.append(Received(self.command, self.path, body))
                if hang:
                    receiver._release.wait(hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting: what a hanging receiver is for

            do_GET = do_POST = do_HEAD = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http", path: str = "/hook") -> str:
        """This receiver's address with `scheme` (json:// for apprise)."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[Received]:
        """What arrived so far."""
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Waits until `count` requests arrived; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while len(self.requests()) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"receiver got {len(self.requests())} of {count} requests")
            time.sleep(0.05)
        return self.requests()

    def close(self) -> None:
        """Releases hanging requests and stops."""
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
