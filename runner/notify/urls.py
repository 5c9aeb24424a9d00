"""Notification and ping URLs: checked with apprise's own parser, never shown in full.

Such URLs often carry a secret (an ntfy topic, a bot token, a mail password, a healthchecks
UUID), so messages name a URL by where it is configured and its scheme only:
`notify.urls[1] (ntfys)`, `jobs.radio.ping (https)`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from runner.config import Config
    from runner.logs import RedactingFilter

# Parts of a URL shorter than this are too common to redact (the redactor ignores them too).
_MIN_SECRET = 6


def scheme_of(url: str) -> str:
    """The URL's scheme, or `?` when it has none: the one part that is safe to show."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() else "?"


def describe(where: str, url: str) -> str:
    """How a URL is named in logs and output: `notify.urls[0] (ntfys)`."""
    return f"{where} ({scheme_of(url)})"


def secret_parts(url: str) -> Iterator[str]:
    """The whole URL and each part of it that may be a secret, for the log redactor.

    The host is included only when it looks like a token (long, or holding a colon, as a
    Telegram bot token does), so that ordinary host names stay readable in the logs.
    """
    yield url
    rest = url.partition("://")[2]
    netloc, _, path_query = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at:
        yield from (part for part in userinfo.split(":") if len(part) >= _MIN_SECRET)
    if len(host) >= 20 or (host.count(":") == 1 and not host.rsplit(":", 1)[1].isdigit()):
        yield host
    path, _, query = path_query.partition("?")
    for segment in path.split("/"):
        if len(segment) >= _MIN_SECRET:
            yield segment
    for _, value in parse_qsl(query):
        if len(value) >= _MIN_SECRET:
            yield value


def apprise_problem(url: str) -> str | None:
    """Why apprise cannot use `url`, without quoting it; None when it can."""
    if "://" not in url:
        return "not a notification URL (value not shown): write it like ntfys://ntfy.sh/TOPIC"
    import apprise

    quiet = logging.getLogger("apprise")
    level = quiet.level
    # apprise logs the URL it cannot parse, secrets and all.
    quiet.setLevel(logging.CRITICAL)
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    finally:
        quiet.setLevel(level)
    if plugin is None:
        return (
            f"apprise cannot use this {scheme_of(url)}:// URL (value not shown): check it "
            "against the apprise documentation of that service"
        )
    return None


def ping_problem(url: str) -> str | None:
    """Why `url` cannot be a healthchecks-style ping URL, without quoting it; None when it can."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL (value not shown): write it like https://hc-ping.com/UUID"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http(s) URL like https://hc-ping.com/UUID (value not shown)"
    return None


def instantiate(url: str, timeout: float) -> Any:
    """An apprise plugin for `url` whose connect and read timeouts are at most `timeout`."""
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return None
    plugin.socket_connect_timeout = min(float(plugin.socket_connect_timeout), timeout)
    plugin.socket_read_timeout = min(float(plugin.socket_read_timeout), timeout)
    return plugin


def configured_urls(config: Config) -> list[tuple[str, str]]:
    """Every notification and ping URL in the config, with where it is: `notify.urls[0]`."""
    found = [(f"notify.urls[{i}]", url) for i, url in enumerate(config.notify.url_values())]
    for name, job in config.jobs.items():
        if job.ping is not None:
            found.append((f"jobs.{name}.ping", job.ping.get_secret_value()))
    return found


def register_url_secrets(redactor: RedactingFilter, config: Config) -> None:
    """Tells the log redactor about every configured URL and the parts of it that are secret."""
    for _, url in configured_urls(config):
        for part in secret_parts(url):
            redactor.add(part)
