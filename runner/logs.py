"""Logging to stderr (text or JSON) with a filter that keeps secrets out of every record.

spotipy logs request headers, `Authorization: Bearer ...` included, at DEBUG; requests and urllib3
log URLs. Redaction happens on the handler, so it covers every logger, whatever its level.

Under systemd, stderr is a stream to journald, which files every line at the unit's default
priority (6, info) unless the line starts with a `<N>` prefix (sd-daemon(3)); the prefix is added
when `$JOURNAL_STREAM` names the very stream stderr is, so `journalctl -p err` finds errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import TextIO

REDACTED = "[redacted]"

# Shapes a secret takes on the wire or in a dict's repr, whatever its value.
_PATTERNS = [
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"(Basic\s+)[A-Za-z0-9+/=]+", re.IGNORECASE),
    re.compile(
        r"""((?:access_token|refresh_token|client_secret|code_verifier|api_key|access-token)"""
        r"""["']?\s*[:=]\s*["']?)[^"'&\s,}]+""",
        re.IGNORECASE,
    ),
    # ListenBrainz's `Authorization: Token <uuid>` (case-sensitive: "token" is a common word).
    re.compile(r"(\bToken\s+)[0-9A-Fa-f-]{20,}"),
    # "code" is also an ordinary word: only a URL or form parameter, a quoted key, or a long
    # opaque value is an authorization code. `Error code: 414`, `exit code=3` stay as they are.
    re.compile(r"""((?:[?&]|^)code=|["']code["']\s*[:=]\s*["']?)[^"'&\s,}]+""", re.IGNORECASE),
    re.compile(r"""(\bcode\s*[:=]\s*)[A-Za-z0-9_~.+/=-]{16,}""", re.IGNORECASE),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Returns text with every known secret value and secret-shaped substring replaced."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with secrets removed.

    Known secret values (the client secret, tokens as they are issued) are added with `add()`;
    secret-shaped substrings (bearer headers, `refresh_token=...`) are caught by pattern.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = {s for s in secrets if s}

    def add(self, secret: str | None) -> None:
        """Adds a value that must never be logged."""
        if secret:
            with self._lock:
                self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        """`text` with every known secret and secret-shaped substring replaced."""
        with self._lock:
            secrets = tuple(self._secrets)
        return redact(text, secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(self._secrets)
        record.msg = redact(record.getMessage(), secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and job/run fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job", "run_id", "status"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


# syslog priorities (sd-daemon(3)) for logging's levels; the nearest lower level decides.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
    (logging.DEBUG, 7),
)


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a logging level: ERROR is 3, WARNING 4, INFO 6, DEBUG 7."""
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return 7


def is_journal_stream(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journald stream systemd passed (`$JOURNAL_STREAM=DEV:INODE`).

    Comparing the device and inode (not just the variable's presence) keeps a child whose stderr
    was redirected elsewhere, but which inherited the variable, from writing prefixes to a file.
    """
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        # No such variable, a malformed one, or a stream without a descriptor (a test's StringIO).
        return False


class JournalPrefixFormatter(logging.Formatter):
    """Wraps a formatter and starts every line with `<N>`, so a traceback keeps the priority too."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


# Third-party loggers that are noisy below WARNING; shown only at -vv.
_CHATTY = ("spotipy", "urllib3", "requests", "apscheduler", "apprise", "waitress")


def setup_logging(
    *,
    verbosity: int = 0,
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> RedactingFilter:
    """Configures the root logger once for the process and returns its redaction filter.

    Args:
        verbosity: 0 info, 1 debug for our loggers, 2 debug for third-party ones too.
        fmt: "text" (journald adds timestamps) or "json".
        secrets: values to redact from the start.
        stream: where to log; stderr by default. Each line gets a `<N>` priority prefix when
            it is the journal stream (see `is_journal_stream`).
    """
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    redactor = RedactingFilter(secrets)
    handler.addFilter(redactor)
    formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    if is_journal_stream(target):
        formatter = JournalPrefixFormatter(formatter)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    # spotipy logs every HTTP error at ERROR even when the job handles it (a 404 it expects).
    if verbosity < 2:
        logging.getLogger("spotipy").setLevel(logging.CRITICAL)
        # apprise may quote a URL, secret and all; our own lines name it without one.
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
    return redactor
