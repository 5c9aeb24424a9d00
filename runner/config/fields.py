"""Field checks and conversions the models share, each raising one plain-language message.

Messages never quote a secret; `show()` is how any other value is quoted.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator, SecretStr
from pydantic_core import PydanticCustomError

from runner.durations import format_duration, parse_duration


def fail(message: str) -> PydanticCustomError:
    # The message goes through a context value so that braces in it ("{every: 15m}") are
    # never taken for template fields.
    return PydanticCustomError("config", "{detail}", {"detail": message})


def show(value: Any) -> str:
    """How a (non-secret) value is quoted in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"'{shown}'"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def as_text(value: Any) -> Any:
    # Integers are taken as their text: our YAML reads only canonical decimals as ints, so
    # str() gives back exactly what was written (a numeric client id stays intact).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise fail(f"expected a string, got {show(value)}")


def non_empty(value: str) -> str:
    if not value:
        raise fail("must not be empty")
    return value


def _secret_text(value: Any) -> Any:
    """Secrets: empty means absent; the value itself never appears in a message."""
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise fail("invalid value (not shown): expected a string")


def to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise fail(f"expected an integer, got {show(value)}")


def between(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise fail(f"must be between {low} and {high}, got {value}")
        return value

    return check


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise fail(f"expected true or false, got {show(value)}")


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(f"expected a duration like 15m, got {show(value)}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


def at_least(minimum: timedelta, *, strict: bool = False) -> Callable[[timedelta], timedelta]:
    def check(value: timedelta) -> timedelta:
        if value < minimum or (strict and value == minimum):
            word = "more than" if strict else "at least"
            raise fail(f"must be {word} {format_duration(minimum)}, got {format_duration(value)}")
        return value

    return check


def at_most(maximum: timedelta) -> Callable[[timedelta], timedelta]:
    def check(value: timedelta) -> timedelta:
        if value > maximum:
            raise fail(f"must be at most {format_duration(maximum)}, got {format_duration(value)}")
        return value

    return check


# One-off times outside this are typos (`20026`) or would overflow date arithmetic.
AT_YEARS = (2000, 2999)


def check_at(value: datetime) -> datetime:
    low, high = AT_YEARS
    if not low <= value.year <= high:
        raise fail(f"the year must be between {low} and {high}, got {value.year}")
    return value


def to_datetime(value: Any) -> Any:
    # A bare YAML date (`at: 2026-12-24`) means midnight; pydantic would refuse a date object.
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


def empty_mapping(value: Any) -> Any:
    # `options:` with every line commented out reads as null; that means "no options".
    return {} if value is None else value


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
Text = Annotated[str, BeforeValidator(as_text)]
Secret = Annotated[SecretStr | None, BeforeValidator(_secret_text)]
Flag = Annotated[bool, BeforeValidator(_to_bool)]


def check_redirect_uri(value: str) -> str:
    hint = "use http://127.0.0.1:PORT/callback or an https URL"
    try:
        parts = urlsplit(value)
    except ValueError:
        raise fail(f"not a valid URL: {show(value)}; {hint}") from None
    _check_port(parts, value)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return value
    if parts.scheme == "http":
        if host == "localhost":
            raise fail(
                "Spotify rejects 'localhost' in redirect URIs: "
                "use http://127.0.0.1:PORT/callback (or http://[::1]:PORT/callback)"
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and str(address) in ("127.0.0.1", "::1"):
            return value
    raise fail(
        f"must be https, or http on a loopback IP literal "
        f"(http://127.0.0.1:PORT/... or http://[::1]:PORT/...), got {show(value)}"
    )


def check_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(f"expected an http(s) URL, got {show(value)}")
    _check_port(parts, value)
    return value.rstrip("/")


def _check_port(parts: Any, value: str) -> None:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise fail(f"the port must be 1 to 65535, in {show(value)}")


def check_state_url(value: str | None) -> str | None:
    """A PostgreSQL URL; the message never quotes it (it may hold a password)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise fail(
            "expected postgresql://USER@HOST/DATABASE (leave state.url out to keep the state "
            "in SQLite in state_dir)"
        )
    if not parts.path.strip("/") and not parts.hostname:
        raise fail("name the database: postgresql://USER@HOST/DATABASE")
    return value


def check_cron(value: str) -> str:
    # Imported here: the scheduler's import cost is paid only by configs that use cron.
    from runner.cron import CronError, normalize

    try:
        normalize(value)  # the scheduler's own check: crontab(5), macros, never-firing days
    except CronError as exc:
        raise fail(str(exc)) from None
    return " ".join(value.split())


def check_timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected a time zone name like Europe/Berlin, got {show(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        if close:
            raise fail(f"unknown time zone '{name}' (did you mean '{close[0]}'?)") from None
        raise fail(
            f"unknown time zone '{name}': use an IANA name like Europe/Berlin or UTC"
        ) from None
    return name


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_name(kind: str) -> Callable[[str], str]:
    """A check for job and account names: they name history keys and folders."""

    def check(value: str) -> str:
        if not _NAME.fullmatch(value):
            raise fail(
                f"bad {kind} name '{value}': use letters, digits, '_' and '-', "
                "starting with a letter or digit"
            )
        return value

    return check
