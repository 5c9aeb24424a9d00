"""The transport seam between spotipy and Spotify.

Every job's `spotipy.Spotify` talks through a `RunnerSession`, which owns what spotipy lacks:
- the bearer token comes from the shared `TokenManager`, and a 401 causes one refresh and one retry;
- a 429 with a short `Retry-After` is waited out, a long one fails the run at once (never an hour
  asleep inside a request);
- 5xx and connection errors are retried a bounded number of times with backoff and jitter;
- past the run's deadline every call fails fast, so a timed-out job's thread ends at its next call;
- in a dry run, writes are refused before anything is sent.

spotipy only mounts its own urllib3 `Retry` adapter when it builds the session itself
(`Spotify._build_session`); handing it a `Session` instance skips that, so Spotify's
`Retry-After` is seen by this module alone.

spotipy logs every request's headers at DEBUG. So that the bearer token is never among them,
the client gets a placeholder auth manager and the real token is set here, at the last moment.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import spotipy

from runner.deadline import Deadline
from runner.durations import format_duration
from runner.errors import (
    DryRunWrite,
    QuotaExceeded,
    RateLimited,
    RunnerError,
    RunTimedOut,
    SpotifyAPIError,
    TransientError,
)
from runner.tokens import TokenManager

# Told about each answer (or "error" for no answer): method, URL, status. For metrics.
RequestObserver = Callable[[str, str, str], None]

# The longest hold a Retry-After can set: reports of real ones reach 24 hours.
MAX_RETRY_AFTER = 86400.0
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# A POST that failed this way was not processed, so repeating it cannot add items twice.
_POST_RETRY_STATUSES = frozenset({502, 503})
_PLACEHOLDER = "token-set-by-runner-session"


def _path(url: str | bytes) -> str:
    """The path of a URL, without host or query (for messages)."""
    text = url.decode() if isinstance(url, bytes) else url
    return urlsplit(text).path or "/"


def _retry_after(response: requests.Response) -> tuple[float, str]:
    """Seconds to wait, within [0, MAX_RETRY_AFTER], and a note when the header was odd."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        # Missing or an HTTP date: Spotify sends seconds; wait a little and retry.
        return 1.0, ""
    if math.isnan(seconds):
        return 1.0, ""
    if seconds > MAX_RETRY_AFTER:
        # `inf` or 99999999999999: a hold must still end, and must still be set.
        cap = format_duration(timedelta(seconds=MAX_RETRY_AFTER))
        return MAX_RETRY_AFTER, f"Retry-After {value}, held for the {cap} cap"
    return max(0.0, seconds), ""


def _error_reason(response: requests.Response) -> str:
    """Spotify's `error.reason` (e.g. QUOTA_EXCEEDED) or `error.message`, if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("message") or "")
    return ""


def _status_label(response: requests.Response) -> str:
    """The status for metrics: Spotify's shared development-mode quota is told apart from a 429."""
    if response.status_code == 429 and _error_reason(response) == "QUOTA_EXCEEDED":
        return "429_quota_exceeded"
    return str(response.status_code)


class RunnerSession(requests.Session):
    """A `requests.Session` with the runner's policies (see the module docstring).

    Not thread-safe, like any `requests.Session`: one per client, one client per thread.

    Args:
        tokens: supplies the bearer token; None sends requests as they are.
        deadline: `clock()` value after which every request raises `RunTimedOut`.
        clock: monotonic time for the deadline.
        dry_run: refuse POST, PUT, DELETE and PATCH with `DryRunWrite`, sending nothing.
        max_retry_after: longest `Retry-After` (seconds) waited out inside a run.
        max_attempts: tries per request on 429, 5xx and connection errors.
        sleep: waits between tries.
        timeout: upper bound on each request's timeout (seconds).
        rng: jitter source.
        on_response: told about every try's outcome (method, URL, status); never raises into us.
    """

    def __init__(
        self,
        tokens: TokenManager | None,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        dry_run: bool = False,
        max_retry_after: float = 60.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        rng: random.Random | None = None,
        on_response: RequestObserver | None = None,
    ) -> None:
        super().__init__()
        self.on_response = on_response
        self.tokens = tokens
        self.deadline = deadline
        self.clock = clock
        self.dry_run = dry_run
        self.max_retry_after = max_retry_after
        self.max_attempts = max(1, max_attempts)
        self.sleep = sleep
        self.timeout = timeout
        self._rng = rng or random.Random()

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def _check_deadline(self, method: str, url: str | bytes) -> None:
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise RunTimedOut(f"the run's time limit has passed; {method} {_path(url)} not sent")

    def _bounded_timeout(self, requested: Any) -> float:
        limit = self.timeout
        if isinstance(requested, int | float) and requested > 0:
            limit = min(limit, float(requested))
        elif isinstance(requested, tuple) and all(isinstance(v, int | float) for v in requested):
            limit = min(limit, float(sum(requested)))
        remaining = self._remaining()
        if remaining is not None:
            limit = min(limit, max(remaining, 0.001))
        return limit

    def _backoff(self, attempt: int) -> float:
        return float(0.5 * 2 ** (attempt - 1) * self._rng.uniform(0.5, 1.5))

    def _wait(self, seconds: float, method: str, url: str | bytes) -> None:
        remaining = self._remaining()
        if remaining is not None and seconds >= remaining:
            raise RunTimedOut(
                f"the run's time limit would pass while waiting to retry {method} {_path(url)}"
            )
        self.sleep(seconds)

    def _observe(self, method: str, url: str | bytes, status: str) -> None:
        if self.on_response is None:
            return
        try:
            self.on_response(method, url.decode() if isinstance(url, bytes) else url, status)
        except Exception:  # counting a request must never fail it
            return

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        """Sends a request under the runner's policies.

        Raises:
            RunTimedOut: the deadline has passed (nothing sent) or would pass while waiting.
            DryRunWrite: a write in a dry run (nothing sent).
            RateLimited: 429 with a `Retry-After` longer than `max_retry_after`, or too many.
            TransientError: 5xx or connection errors persisted.
            AuthorizationNeeded: no usable token.
        """
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        self._check_deadline(verb, url)
        if self.dry_run and verb in WRITE_METHODS:
            raise DryRunWrite(f"dry run: refused to send {verb} {_path(url)}")
        headers = dict(kwargs.pop("headers", None) or {})
        kwargs["timeout"] = self._bounded_timeout(kwargs.get("timeout"))
        token: str | None = None
        if self.tokens is not None:
            token = self.tokens.get_access_token()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            kwargs["timeout"] = self._bounded_timeout(kwargs["timeout"])
            try:
                response = super().request(verb, url, headers=headers, **kwargs)
            except requests.RequestException as exc:
                self._observe(verb, url, "error")
                retryable = verb != "POST" or isinstance(exc, requests.ConnectTimeout)
                if not retryable or attempt >= self.max_attempts:
                    raise TransientError(
                        f"could not reach Spotify for {verb} {_path(url)} ({type(exc).__name__})"
                    ) from None
                self._wait(self._backoff(attempt), verb, url)
                self._check_deadline(verb, url)
                continue
            status = response.status_code
            self._observe(verb, url, _status_label(response))
            if status == 401 and self.tokens is not None and not refreshed and token is not None:
                response.close()
                refreshed = True
                token = self.tokens.refresh(force=True, failed_token=token)
                attempt -= 1  # the retry after a refresh is not a failure
                self._check_deadline(verb, url)
                continue
            if status == 429:
                wait, odd = _retry_after(response)
                said = _error_reason(response)
                reason = "; ".join(part for part in (said, odd) if part)
                response.close()
                if said == "QUOTA_EXCEEDED" and "Retry-After" not in response.headers:
                    # Retrying within the run would only spend what is left of nothing.
                    raise QuotaExceeded()
                if wait > self.max_retry_after or attempt >= self.max_attempts:
                    raise RateLimited(wait, reason)
                self._wait(wait, verb, url)
                self._check_deadline(verb, url)
                continue
            if status >= 500:
                retryable = verb != "POST" or status in _POST_RETRY_STATUSES
                if not retryable or attempt >= self.max_attempts:
                    response.close()
                    raise TransientError(
                        f"Spotify answered HTTP {status} to {verb} {_path(url)}"
                        f" after {attempt} attempt{'s' if attempt > 1 else ''}"
                    )
                response.close()
                self._wait(self._backoff(attempt), verb, url)
                self._check_deadline(verb, url)
                continue
            return response


class _SessionSuppliedToken:
    """spotipy's auth manager for runner clients: the real token is added by `RunnerSession`.

    spotipy logs request headers at DEBUG; with this, all it can log is a placeholder.

    Attributes:
        tokens: the real token manager (for `spotify-runner token` and the like).
    """

    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens

    def get_access_token(self, as_dict: bool = False) -> str:
        """A placeholder; `RunnerSession` replaces the header with the real token."""
        del as_dict
        return _PLACEHOLDER


def make_client(
    tokens: TokenManager,
    api_url: str,
    *,
    deadline: float | None = None,
    dry_run: bool = False,
    guard: Deadline | None = None,
    **session_kwargs: Any,
) -> spotipy.Spotify:
    """A spotipy client whose requests go through a fresh `RunnerSession`.

    Args:
        tokens: the daemon's token manager.
        api_url: the Web API base, e.g. `https://api.spotify.com/v1` (or the fake's).
        deadline: the run's deadline in the session clock's terms (monotonic by default).
        dry_run: refuse writes.
        guard: the run's `Deadline`: its sockets are cut when the run times out.
        **session_kwargs: passed on to `RunnerSession` (clock, sleep, max_retry_after...).

    Returns:
        A client for one thread.
    """
    session = RunnerSession(tokens, deadline=deadline, dry_run=dry_run, **session_kwargs)
    if guard is not None:
        guard.bind(session)
    client = spotipy.Spotify(
        auth_manager=_SessionSuppliedToken(tokens),
        requests_session=session,
        retries=0,
        status_retries=0,
        requests_timeout=session.timeout,
    )
    client.prefix = api_url.rstrip("/") + "/"
    return client


def spotify_error_message(exc: BaseException) -> str:
    """A one-line, secret-free message for an error met while talking to Spotify.

    Args:
        exc: a `spotipy.SpotifyException`, one of our errors, or a requests error.

    Returns:
        A message saying what happened and, where possible, what to do.
    """
    if isinstance(exc, spotipy.SpotifyException):
        status = int(exc.http_status)
        raw = str(exc.msg or "")
        url, sep, detail = raw.partition(":\n")
        path = _path(url) if sep else ""
        detail = (detail if sep else raw).strip()
        where = f" {path}" if path else ""
        said = f": {detail}" if detail and detail != "None" else ""
        if status == 401:
            return "Spotify rejected the access token: run 'spotify-runner auth'"
        if status == 403:
            return f"Spotify refused{where}{said} (not your playlist, or a missing scope?)"
        if status == 404:
            return f"not found:{where or ' the requested item'}{said}"
        if status == 429:
            return f"rate-limited by Spotify{where}{said}"
        if status >= 500:
            return f"Spotify failed with HTTP {status}{where}: try again later"
        return f"Spotify rejected the request{where} (HTTP {status}){said}"
    if isinstance(exc, SpotifyAPIError | RunnerError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, requests.RequestException):
        return f"could not reach Spotify ({type(exc).__name__})"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
