"""The exception hierarchy. Each class knows its exit code; the CLI maps them in one place.

Messages are one line, say what to do, and never contain a secret.
"""

from __future__ import annotations

from datetime import timedelta

from runner.durations import format_duration

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3


def with_auth_hint(reason: str, command: str = "spotify-runner auth") -> str:
    """`reason: run 'spotify-runner auth'`, with the hint given once however often it is added."""
    return reason if "'spotify-runner auth" in reason else f"{reason}: run '{command}'"


class RunnerError(Exception):
    """An expected failure: printed as one line, no traceback."""

    exit_code = EXIT_JOB_FAILED


class UsageError(RunnerError):
    """The command line or the environment is wrong."""

    exit_code = EXIT_USAGE


class ConfigError(RunnerError):
    """The configuration is invalid. Carries every problem found, not just the first.

    Args:
        problems: one line each, `file:line:col: key.path: message`.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class JobLoadError(ConfigError):
    """A job module could not be found, imported, or has invalid options."""


class AuthError(RunnerError):
    """Authorization is missing, expired, revoked, or lacks scopes."""

    exit_code = EXIT_AUTH


class AuthorizationNeeded(AuthError):
    """No usable refresh token: the user must run `spotify-runner auth`."""

    def __init__(
        self, reason: str = "authorization expired or revoked", command: str = "spotify-runner auth"
    ) -> None:
        super().__init__(with_auth_hint(reason, command))


class MissingScopes(AuthError):
    """The stored token does not cover the scopes the configured jobs need."""

    def __init__(self, missing: set[str], command: str = "spotify-runner auth") -> None:
        self.missing = frozenset(missing)
        names = " ".join(sorted(missing))
        super().__init__(f"the authorization lacks scopes {names}: run '{command}' to grant them")


class TransientError(RunnerError):
    """Worth retrying later: network trouble, 5xx, rate limiting.

    Attributes:
        retry_after: seconds a service (not Spotify) asked to be left alone, when it said: the
            job's own retry waits at least that long; other jobs are not held.
    """

    retry_after: float | None = None


class RateLimited(TransientError):
    """Spotify answered 429 with a Retry-After too long to wait inside a run.

    Attributes:
        retry_after: Spotify's Retry-After in seconds; None when it gave none (`QuotaExceeded`).
    """

    retry_after: float | None

    def __init__(self, retry_after: float, detail: str = "") -> None:
        self.retry_after = retry_after
        extra = f" ({detail})" if detail else ""
        # Whole seconds, shown as "1h30m": never "infs" or "5400s".
        shown = format_duration(timedelta(seconds=round(retry_after)))
        super().__init__(f"rate-limited by Spotify for {shown}{extra}")


class QuotaExceeded(RateLimited):
    """429 `QUOTA_EXCEEDED` without a Retry-After: the developer account's shared quota is spent.

    Every development-mode app of one developer shares it, and Spotify says neither when it
    resets nor how long to wait: the caller backs off for long (see `runner.holds`).
    """

    def __init__(self) -> None:
        TransientError.__init__(
            self,
            "Spotify's shared development-mode quota is spent (429 QUOTA_EXCEEDED, no Retry-After)",
        )
        self.retry_after = None


class RunTimedOut(RunnerError):
    """The run exceeded its timeout; its further Spotify calls fail fast."""


class DryRunWrite(RunnerError):
    """A job tried to write to Spotify during a dry run; the request was not sent."""


class SpotifyAPIError(RunnerError):
    """Spotify refused a request for a reason retrying will not fix (400, 403, 404...)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
