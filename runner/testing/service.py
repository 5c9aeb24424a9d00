"""A small embedded HTTP service on 127.0.0.1, the base of the fakes of services beyond Spotify.

Each fake (`FeedServer` here, `FakeSpinitron`, `FakeLastfm`, `FakeListenBrainz`) answers real
HTTP on a free loopback port, logs every request it gets (`requests`, `count`), and can be told
to fail (`fail(status, retry_after=..., times=...)`) so tests drive the real source code over
the wire, errors included.

Example:
    >>> with FeedServer() as feeds:  # doctest: +SKIP
    ...     feeds.serve("/plays.rss", body, "application/rss+xml")
    ...     url = feeds.url("/plays.rss")
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request a fake service received.

    Attributes:
        method: the HTTP method.
        path: the path, without the query string.
        query: the query parameters (the last value of each).
        headers: the request headers.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass
class Answer:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
        """A JSON answer."""
        return cls(status, json.dumps(data).encode(), "application/json", dict(headers or {}))


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    times: int | None
    body: bytes
    content_type: str
    path: str | None


Route = Callable[[Request], Answer]


class Service:
    """An HTTP service on 127.0.0.1 whose answers come from `route(request)`.

    Subclasses implement `route`; a started service has `base_url`.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts serving on a free loopback port."""
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                service._handle(self)

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                service._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        if self._server is None:
            raise RuntimeError("the service is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        """The full URL of a path on this service."""
        return self.base_url + path

    # -- what tests look at ---------------------------------------------------------------------

    def count(self, path_prefix: str = "/") -> int:
        """How many requests were made to paths starting with `path_prefix`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def fail(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        times: int | None = 1,
        body: bytes = b"",
        content_type: str = "text/html",
        path: str | None = None,
    ) -> None:
        """Makes the next `times` requests (all when None) answer `status`."""
        with self._lock:
            self._failures.append(_Failure(status, retry_after, times, body, content_type, path))

    def clear_failures(self) -> None:
        """Stops failing."""
        with self._lock:
            self._failures.clear()

    # -- serving --------------------------------------------------------------------------------

    def route(self, request: Request) -> Answer:
        """The answer to a request (subclasses override)."""
        return Answer(404, b"not found", "text/plain")

    def _failure(self, request: Request) -> Answer | None:
        with self._lock:
            for failure in self._failures:
                if failure.path is not None and not request.path.startswith(failure.path):
                    continue
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                return Answer(failure.status, failure.body, failure.content_type, headers)
        return None

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        request = Request(handler.command, parts.path, query, dict(handler.headers.items()))
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        with self._lock:
            self.requests.append(request)
        answer = self._failure(request) or self.route(request)
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.body)


@dataclass
class _Document:
    body: bytes
    content_type: str
    etag: bool
    last_modified: str
    gzip: bool


class FeedServer(Service):
    """Serves documents (feeds, pages, JSON endpoints) with ETag and Last-Modified support."""

    def __init__(self) -> None:
        super().__init__()
        self._documents: dict[str, _Document] = {}
        self._version = 0

    def serve(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/plain; charset=utf-8",
        *,
        etag: bool = True,
        gzip_body: bool = False,
    ) -> None:
        """Serves `body` at `path` from now on (replacing what was there)."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._version += 1
            stamp = formatdate(1_700_000_000 + self._version * 60, usegmt=True)
            self._documents[path] = _Document(data, content_type, etag, stamp, gzip_body)

    def route(self, request: Request) -> Answer:
        """The document at the path; 304 when the client's validators still hold."""
        with self._lock:
            document = self._documents.get(request.path)
        if document is None:
            return Answer(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        headers = {"Last-Modified": document.last_modified}
        tag = '"' + hashlib.sha256(document.body).hexdigest()[:16] + '"'
        if document.etag:
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                return Answer(304, b"", document.content_type, headers)
        elif request.headers.get("If-Modified-Since") == document.last_modified:
            return Answer(304, b"", document.content_type, headers)
        body = document.body
        if document.gzip and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return Answer(200, body, document.content_type, headers)
