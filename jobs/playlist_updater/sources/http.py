"""Polite, bounded HTTP for the sources that read a service or a URL.

Every request names the project in its `User-Agent`, asks for gzip, and is bounded: a connect and
read timeout (shortened to what is left of the run's deadline), at most `MAX_REDIRECTS`
redirects, and a body cap (`MAX_BYTES`, 10 MiB by default) counted on the *decoded* bytes while
they stream in, so neither a huge body nor a gzip bomb is ever held whole. A `Retry-After` (or a
service's `X-RateLimit-*` headers) up to `SHORT_WAIT` seconds is waited for once; a longer one
ends the run as transient, carrying the delay, instead of sleeping. Conditional requests
(`If-None-Match`, `If-Modified-Since`) let an idle poll cost one small 304.

Messages are one line and never contain a response body (an HTML error page is not a message)
nor a query string (it may carry a key).
"""

from __future__ import annotations

import codecs
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

import requests

from runner.errors import RunnerError, TransientError

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = (5.0, 30.0)
MAX_REDIRECTS = 5
SHORT_WAIT = 5.0
"""A Retry-After up to this many seconds is waited for inside the run, once."""
LONGEST_HOLD = 86_400.0
"""A Retry-After beyond a day (or `inf`) is read as a day."""
_CHUNK = 16 * 1024


def _user_agent() -> str:
    try:
        release = version("spotify-runner")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        release = "dev"
    return f"spotify-runner/{release} (playlist updater; +https://pypi.org/project/spotify-runner/)"


USER_AGENT = _user_agent()


class SourceUnavailable(TransientError):
    """A service asked to be left alone for a while (429/503): the run is retried after it.

    `retry_after` holds the seconds the service asked for, when it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


def shown(url: str) -> str:
    """A URL as messages show it: no query string or fragment (either may carry a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a `Retry-After` header (seconds or an HTTP date), capped at a day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), LONGEST_HOLD)


@dataclass
class Response:
    """A response whose body was read within the cap.

    Attributes:
        status: the HTTP status (304 for "not modified", with an empty body).
        headers: the response headers (case-insensitive).
        body: the decoded bytes (gzip undone).
        url: the URL finally answered (after redirects).
        what: how messages name the service.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    what: str = "the service"

    @property
    def not_modified(self) -> bool:
        """The server said the resource has not changed since the validators sent."""
        return self.status == 304

    @property
    def content_type(self) -> str:
        """The media type, lowercase, without parameters ("" when absent)."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The `charset` parameter of the Content-Type, when given and known to Python."""
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "charset":
                name = val.strip().strip("\"'")
                try:
                    return codecs.lookup(name).name
                except LookupError:
                    return None
        return None

    @property
    def validators(self) -> dict[str, str]:
        """`etag` and `last_modified` to send next time, as far as the server gave them."""
        found = {
            "etag": self.headers.get("ETag"),
            "last_modified": self.headers.get("Last-Modified"),
        }
        return {key: value for key, value in found.items() if value}

    def text(self) -> str:
        """The body as text: a BOM first, then the declared charset, else UTF-8."""
        return decode(self.body, self.charset)

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            TransientError: it is not JSON (a proxy's error page, a truncated body).
        """
        try:
            return json.loads(self.text())
        except ValueError:
            raise TransientError(
                f"{self.what} answered a body that is not JSON; retrying later"
            ) from None


def decode(body: bytes, charset: str | None = None) -> str:
    """Bytes to text: a byte-order mark wins, then `charset`, then UTF-8; bad bytes replaced."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    return body.decode(charset or "utf-8", errors="replace")


@dataclass
class Http:
    """One run's HTTP for the sources; `sent` counts the requests it made.

    Args:
        remaining: seconds left of the run (its deadline); None when unbounded.
        session_factory: makes the session (the run's deadline-bound one, when it has one).
        max_bytes: the default body cap.
        clock: monotonic seconds (tests pass their own).
        sleep: how waits are made (tests pass their own).
    """

    remaining: Callable[[], float] | None = None
    session_factory: Callable[[], requests.Session] = requests.Session
    max_bytes: int = MAX_BYTES
    timeout: tuple[float, float] = TIMEOUT
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sent: int = 0
    _session: requests.Session | None = field(default=None, repr=False)
    _not_before: dict[str, float] = field(default_factory=dict, repr=False)

    def session(self) -> requests.Session:
        """The run's session (made on first use)."""
        if self._session is None:
            self._session = self.session_factory()
            self._session.max_redirects = MAX_REDIRECTS
            self._session.headers.update(
                {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
            )
        return self._session

    def close(self) -> None:
        """Closes the session's connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _wait_for(self, host: str, what: str) -> None:
        """Waits out a short hold on `host`; a long one fails the run instead."""
        until = self._not_before.get(host)
        if until is None:
            return
        delay = until - self.clock()
        if delay <= 0:
            return
        if delay > SHORT_WAIT or not self._time_left(delay + 1.0):
            raise SourceUnavailable(
                f"{what} asked to wait {delay:.0f}s (rate limit); retrying later", delay
            )
        self.sleep(delay)

    def _time_left(self, needed: float) -> bool:
        return self.remaining is None or self.remaining() > needed

    def _timeouts(self, what: str) -> tuple[float, float]:
        connect, read = self.timeout
        if self.remaining is None:
            return connect, read
        left = self.remaining()
        if left <= 0.5:
            raise TransientError(f"{what}: the run's time is up before the request could start")
        return min(connect, left), min(read, left)

    def pace(self, host_url: str, interval: float) -> None:
        """Keeps requests to one host at least `interval` seconds apart (a documented limit)."""
        host = urlsplit(host_url).netloc
        self._not_before[host] = max(self._not_before.get(host, 0.0), self.clock() + interval)

    def get(
        self,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: tuple[str, ...] = (),
        max_bytes: int | None = None,
        raise_for_status: bool = True,
    ) -> Response:
        """GETs `url` within the bounds; returns a 304 as a `Response` with `not_modified`.

        Args:
            url: the URL (http or https).
            what: how messages name it ("feed https://example.org/plays", "Last.fm").
            params: query parameters.
            headers: extra request headers (Authorization, Accept).
            etag: the ETag from last time, sent as If-None-Match.
            last_modified: the Last-Modified from last time, sent as If-Modified-Since.
            accept: media type fragments a 2xx body must have ("json", "xml"); any when empty.
            max_bytes: this request's cap instead of the default.
            raise_for_status: when false, a 4xx comes back as a Response (its body capped at
                64 KiB) for the caller to read the service's own error.

        Raises:
            SourceUnavailable: 429 or 503 with a long or no Retry-After.
            TransientError: network trouble, a timeout, 5xx, a body of the wrong type.
            RunnerError: 4xx (when raising), too many redirects, a body over the cap.
        """
        host = urlsplit(url).netloc
        sent = {"Accept": ", ".join(_accept_header(accept))}
        sent.update(headers or {})
        if etag:
            sent["If-None-Match"] = etag
        if last_modified:
            sent["If-Modified-Since"] = last_modified
        cap = max_bytes or self.max_bytes
        for attempt in (1, 2):
            self._wait_for(host, what)
            response = self._send(url, what, params, sent, cap, raise_for_status)
            status = response.status
            if status in (429, 503) or status >= 500:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is None and status == 429:
                    # ListenBrainz and others say when the window resets instead.
                    wait = parse_retry_after(response.headers.get("X-RateLimit-Reset-In"))
                if status == 429 or wait is not None:
                    if wait is not None and wait <= SHORT_WAIT and attempt == 1:
                        self._not_before[host] = self.clock() + wait
                        continue
                    after = f"; it asked to wait {wait:.0f}s" if wait is not None else ""
                    raise SourceUnavailable(f"{what} answered HTTP {status}{after}", wait)
                raise TransientError(f"{what} answered HTTP {status}; retrying later")
            self._note_rate_limit(host, response.headers)
            if status == 304:
                return response
            if status >= 400:
                if raise_for_status:
                    raise RunnerError(f"{what} answered HTTP {status}; the playlist was left alone")
                return response
            if accept and not any(kind in response.content_type for kind in accept):
                got = response.content_type or "no Content-Type"
                raise TransientError(
                    f"{what} answered {got}, not {' or '.join(accept)}; retrying later"
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_rate_limit(self, host: str, headers: Mapping[str, str]) -> None:
        """Reads `X-RateLimit-Remaining` and `X-RateLimit-Reset-In` (ListenBrainz and others)."""
        remaining = headers.get("X-RateLimit-Remaining")
        reset_in = headers.get("X-RateLimit-Reset-In")
        if remaining is None or reset_in is None:
            return
        try:
            left, reset = int(remaining), float(reset_in)
        except ValueError:
            return
        if left <= 0 and math.isfinite(reset):
            until = self.clock() + min(max(reset, 0.0), LONGEST_HOLD)
            self._not_before[host] = max(self._not_before.get(host, 0.0), until)

    def _send(
        self,
        url: str,
        what: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        cap: int,
        raise_for_status: bool,
    ) -> Response:
        self.sent += 1
        try:
            with self.session().get(
                url,
                params=params,
                headers=dict(headers),
                timeout=self._timeouts(what),
                stream=True,
                allow_redirects=True,
            ) as answer:
                status = answer.status_code
                if status == 304 or status >= 500 or status == 429:
                    body = b""
                elif status >= 400:
                    body = _read(answer, 64 * 1024, what) if not raise_for_status else b""
                else:
                    body = _read(answer, cap, what)
                return Response(status, answer.headers, body, answer.url, what)
        except requests.TooManyRedirects:
            raise RunnerError(f"{what} redirected more than {MAX_REDIRECTS} times") from None
        except requests.RequestException as exc:
            raise TransientError(
                f"{what} could not be fetched ({type(exc).__name__}); retrying later"
            ) from None


def _accept_header(accept: tuple[str, ...]) -> list[str]:
    types = {
        "json": "application/json",
        "xml": "application/xml",
        "rss": "application/rss+xml",
        "atom": "application/atom+xml",
        "xspf": "application/xspf+xml",
        "html": "text/html",
        "text": "text/plain",
    }
    return [types.get(kind, kind) for kind in accept] + ["*/*;q=0.1"]


def _read(answer: requests.Response, cap: int, what: str) -> bytes:
    """The decoded body, streamed, failing as soon as it passes `cap` bytes."""
    declared = answer.headers.get("Content-Length", "")
    encoded = answer.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if declared.isdigit() and int(declared) > cap and not encoded:
        raise RunnerError(f"{what} is {int(declared)} bytes, over the {_size(cap)} cap")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in answer.iter_content(_CHUNK):
            total += len(chunk)
            if total > cap:
                raise RunnerError(f"{what} is over the {_size(cap)} cap (decoded); not read")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise TransientError(
            f"{what} could not be read ({type(exc).__name__}); retrying later"
        ) from None
    return b"".join(chunks)


def _size(cap: int) -> str:
    if cap % (1024 * 1024) == 0:
        return f"{cap // (1024 * 1024)} MiB"
    return f"{cap} bytes"
