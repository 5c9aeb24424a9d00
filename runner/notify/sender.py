"""Sending messages through apprise, to every configured URL, without blocking anyone.

Each URL is its own delivery: a dead Telegram bot does not hold back the ntfy message, and
`notify --test` can say which URL failed. URLs are named by position and scheme only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.notify.incidents import Message
from runner.notify.outbox import Delivery, Outbox
from runner.notify.urls import describe, instantiate

log = logging.getLogger("runner.notify")

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """One notification URL and how it is named (`notify.urls[0] (ntfys)`)."""

    url: str
    name: str

    def __repr__(self) -> str:
        return f"Target({self.name})"


def targets(urls: Sequence[str]) -> list[Target]:
    """The configured URLs, named by their place in the config."""
    return [Target(url, describe(f"notify.urls[{i}]", url)) for i, url in enumerate(urls)]


def deliver(target: Target, message: Message, timeout: float) -> bool:
    """Sends one message to one URL through apprise; True when it was delivered."""
    plugin: Any = instantiate(target.url, timeout)
    if plugin is None:
        return False
    return bool(plugin.notify(body=message.body, title=message.title))


class Sender:
    """Queues messages for every URL; one background thread delivers them.

    Args:
        urls: the apprise URLs.
        timeout: seconds each delivery may take (apprise's connect and read timeouts).
        attempts: tries per URL and message.
        backoff: seconds before the second try.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.targets = targets(urls)
        self.timeout = timeout
        self._outbox: Outbox[tuple[Target, Message]] = Outbox(
            "notify-sender", self._deliver, attempts=attempts, backoff=backoff, logger=log
        )

    def _deliver(self, delivery: Delivery[tuple[Target, Message]]) -> bool:
        target, message = delivery.item
        ok = deliver(target, message, self.timeout)
        if ok:
            log.info("notified %s: %s", target.name, message.title)
        return ok

    def send(self, message: Message) -> None:
        """Queues `message` for every URL; returns at once."""
        for target in self.targets:
            self._outbox.put(Delivery((target, message), target.name))

    def flush(self, timeout: float) -> bool:
        """Waits for what is queued; False when `timeout` passed first."""
        return self._outbox.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Gives queued messages until `timeout` (the delivery timeout) to go out, then stops."""
        return self._outbox.close(self.timeout if timeout is None else timeout)

    def stopped(self, timeout: float) -> bool:
        """Waits for the sender thread to end after `close()`."""
        return self._outbox.stopped(timeout)


def send_test(urls: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> list[tuple[str, bool]]:
    """`notify --test`: one test message to each URL, now; (redacted name, delivered) each."""
    message = Message(
        "test",
        "spotify-runner: test notification",
        "If you can read this, spotify-runner's failure notifications reach you here.",
        "default",
    )
    results = []
    for target in targets(urls):
        try:
            ok = deliver(target, message, timeout)
        except Exception:  # a broken receiver is a failed delivery, not a crash
            ok = False
        results.append((target.name, ok))
    return results
