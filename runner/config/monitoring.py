"""The `notify:` and `http:` sections, and the check of a job's `ping:` URL.

Notification and ping URLs often hold secrets, so they are `SecretStr` and no message quotes
them; apprise's own parser decides whether a notification URL is usable, so `check` reports a
bad one at its own line.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from runner.config.fields import Duration, at_least, fail, show

NOTIFY_EVENTS = ("failed", "recovered", "needs_auth", "auth_expiring")
DEFAULT_HTTP_PORT = 8888


def _url_text(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise fail(f"expected a URL string, got {show(value)}")
    if not value.strip():
        raise fail("must not be empty")
    return SecretStr(value.strip())


def _apprise_url(value: SecretStr) -> SecretStr:
    from runner.notify.urls import apprise_problem

    problem = apprise_problem(value.get_secret_value())
    if problem is not None:
        raise fail(problem)
    return value


def _ping_url(value: SecretStr) -> SecretStr:
    from runner.notify.urls import ping_problem

    problem = ping_problem(value.get_secret_value())
    if problem is not None:
        raise fail(problem)
    return value


def _event(value: Any) -> Any:
    if value not in NOTIFY_EVENTS:
        raise fail(f"unknown event {show(value)}; events are {', '.join(NOTIFY_EVENTS)}")
    return value


NotifyUrl = Annotated[SecretStr, BeforeValidator(_url_text), AfterValidator(_apprise_url)]
PingUrl = Annotated[SecretStr, BeforeValidator(_url_text), AfterValidator(_ping_url)]


class NotifyConfig(BaseModel):
    """Where failures, recoveries and authorization trouble are sent (apprise URLs).

    Attributes:
        urls: apprise URLs (ntfys://..., mailtos://..., json://...); none sends nothing.
        events: which of failed, recovered, needs_auth, auth_expiring are sent.
        remind: repeat an unchanged failure after this long; 0 for never.
        timeout: how long one delivery may take.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: list[NotifyUrl] = Field(default_factory=list)
    events: list[Annotated[str, BeforeValidator(_event)]] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS)
    )
    remind: Annotated[Duration, AfterValidator(at_least(timedelta()))] = timedelta(hours=24)
    timeout: Annotated[Duration, AfterValidator(at_least(timedelta(), strict=True))] = timedelta(
        seconds=10
    )

    def url_values(self) -> list[str]:
        """The URLs themselves (for the sender and the redactor only)."""
        return [url.get_secret_value() for url in self.urls]


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` -> (host, port).

    Raises:
        ValueError: not in that form, or a port outside 0..65535.
    """
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {show(value)}") from None
    host = parts.hostname
    if not host or port is None:
        raise ValueError(f"expected host:port like 127.0.0.1:8888, got {show(value)}")
    return host, port


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(value: Any) -> Any:
    if not isinstance(value, str):
        raise fail(f"expected host:port like 127.0.0.1:8888, got {show(value)}")
    try:
        parse_listen(value.strip())
    except ValueError as exc:
        raise fail(str(exc)) from None
    return value.strip()


def _http_section(value: Any) -> Any:
    # `http: false` turns the server off (None); `http:` or `http: true` keeps the defaults.
    if value is False:
        return None
    if value is None or value is True:
        return {}
    return value


class HttpConfig(BaseModel):
    """The daemon's HTTP server: `/metrics`, `/healthz`, and later the status page.

    Attributes:
        listen: `host:port`; None means the host and port of `spotify.redirect_uri`.
        password_file: required to listen on anything but loopback (the page has actions).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen: Annotated[str, BeforeValidator(_listen)] | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _protected_off_loopback(self) -> HttpConfig:
        if self.listen is not None and self.password_file is None:
            host, _ = parse_listen(self.listen)
            if not is_loopback(host):
                raise fail(
                    f"listen {show(self.listen)} is reachable from other machines: set "
                    "http.password_file too, or listen on 127.0.0.1"
                )
        return self

    def address(self, redirect_uri: str) -> tuple[str, int]:
        """Where to listen: `listen`, else the redirect URI's loopback host and port."""
        if self.listen is not None:
            return parse_listen(self.listen)
        parts = urlsplit(redirect_uri)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme != "http" or not is_loopback(host):
            return "127.0.0.1", DEFAULT_HTTP_PORT
        return host, parts.port or DEFAULT_HTTP_PORT


HttpSection = Annotated[HttpConfig | None, BeforeValidator(_http_section)]
