"""`FakeSpotify`: the fake's state served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from runner.testing.fake import accounts, api
from runner.testing.fake.api.playlists import image_file
from runner.testing.fake.model import Fault, Recorded
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import Request, Response, api_error, fault_message, json_response

_JOIN_TIMEOUT = 5.0
# socketserver listens with a backlog of 5: a burst of new connections overflows it and the
# kernel resets some of them. Spotify does not; a test opening 100 connections at once must
# see 100 answers.
LISTEN_BACKLOG = 1024
DEFAULT_RETRY_AFTER = 1


class _Server(ThreadingHTTPServer):
    """A threading server that can close its keep-alive connections on shutdown."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], fake: FakeSpotify) -> None:
        self.fake = fake
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._work,
            args=(request, client_address),
            name="fake-spotify-conn",
            daemon=True,
        )
        with self._conn_lock:
            self._connections.add(request)
            self._workers.add(worker)
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early is its own business; anything else is a fake bug."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Wake every worker blocked on an idle keep-alive connection, then wait for them."""
        with self._conn_lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its worker
                conn.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(_JOIN_TIMEOUT)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSpotify/1.0"
    sys_version = ""
    timeout = 60
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's
    # delayed ACK adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log (it would print tokens in query strings)."""

    def do_GET(self) -> None:  # noqa: N802
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        """Serve POST."""
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        """Serve PUT."""
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve DELETE."""
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        """Serve PATCH (always refused)."""
        self._serve()

    def _read_request(self) -> Request:
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body: Any = None
        if raw:
            content_type = headers.get("content-type", "")
            if content_type.startswith("image/"):
                body = None  # the raw bytes are the body (a base64 cover image)
            elif "application/x-www-form-urlencoded" in content_type:
                body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
        return Request(self.command, split.path, query, headers, body, raw)

    def _serve(self) -> None:
        fake = self.server.fake
        try:
            req = self._read_request()
        except ValueError:
            self._write(api_error(400, "Bad request"))
            return
        fault = fake.take_fault(req.method, req.path)
        delay = fake.latency + (fault.latency if fault is not None else 0.0)
        if delay > 0:
            time.sleep(delay)  # outside the lock: other requests go on meanwhile
        token = _token_of(req)
        if fault is not None and fault.drop:
            fake.record(Recorded(req.method, req.path, req.query, req.body, token, 0, fake.now()))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.status is not None:
            response = _fault_response(fault)
        else:
            response = fake.dispatch(req)
        fake.record(
            Recorded(req.method, req.path, req.query, req.body, token, response.status, fake.now())
        )
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        if response.body or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)


def _token_of(req: Request) -> str | None:
    if req.path == "/api/token":
        form = req.body if isinstance(req.body, dict) else {}
        value = form.get("refresh_token") or form.get("code")
        return str(value) if value else None
    return api.bearer_token(req)


def retry_after_header(fault: Fault) -> str | None:
    """The `Retry-After` a fault's answer carries: whole seconds, rounded up, at least 1.

    A 429 carries one unless the fault says not to, or is a spent quota (QUOTA_EXCEEDED),
    which Spotify answers without one; other statuses only when `retry_after` is set.
    """
    send = fault.send_retry_after
    if send is None:
        if fault.status == 429:
            send = fault.reason != "QUOTA_EXCEEDED" or fault.retry_after is not None
        else:
            send = fault.retry_after is not None
    if not send:
        return None
    seconds = DEFAULT_RETRY_AFTER if fault.retry_after is None else fault.retry_after
    if not math.isfinite(seconds):
        return str(seconds)  # "inf": what a broken server might send
    return str(max(1, math.ceil(seconds)))


def _fault_response(fault: Fault) -> Response:
    status = fault.status or 500
    headers = {}
    retry_after = retry_after_header(fault)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if fault.body is not None:
        if isinstance(fault.body, bytes | str):
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return Response(status, raw, content_type="text/plain", headers=headers)
        return json_response(status, fault.body, headers)
    return api_error(status, fault_message(status), fault.reason, headers)


class FakeSpotify(FakeState):
    """An in-process fake of accounts.spotify.com and api.spotify.com/v1 over real HTTP.

    Use `start()`/`stop()` or `with FakeSpotify() as fake:`. It binds 127.0.0.1 on an ephemeral
    port; `accounts_url` and `api_url` are what the auth managers and `spotipy.Spotify.prefix`
    point at. A default app (`CLIENT_ID`/`CLIENT_SECRET`) and a default user "alice" exist from
    construction.

    Args:
        access_token_lifetime: seconds an access token lives (`expires_in`).
        rotation: "none", "rotate" or "rotate_revoke": what a refresh does to the refresh token.
        clock: unix seconds; every time-based behaviour reads it.
        latency: seconds slept before every answer.
        port: the port to bind (0: any free one).
    """

    def __init__(
        self,
        access_token_lifetime: float = 3600.0,
        rotation: str = "none",
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
        port: int = 0,
    ) -> None:
        super().__init__(access_token_lifetime, rotation, clock, latency)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FakeSpotify(base_url={self.base_url!r})"

    def start(self) -> FakeSpotify:
        """Start serving; returns self."""
        if self._server is not None:
            raise RuntimeError("FakeSpotify is already running")
        server = _Server(("127.0.0.1", self._port), self)
        port = server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-spotify"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def dispatch(self, req: Request) -> Response:
        """Answer a parsed request (no faults or latency): accounts, then the Web API."""
        if req.path == "/authorize":
            if req.method not in ("GET", "POST"):
                return api_error(405, "Method not allowed")
            return accounts.authorize(self, req)
        if req.path == "/api/token":
            if req.method != "POST":
                return api_error(405, "Method not allowed")
            return accounts.token(self, req)
        if req.path == "/v1" or req.path.startswith("/v1/"):
            return api.handle(self, req)
        if req.method == "GET" and req.path.startswith("/image/"):
            image = image_file(self, req.path)
            if image is not None:
                return image
        return api_error(404, "Service not found")
