"""Dead man's switch pings, in the healthchecks.io protocol.

`URL/start` when a run starts, `URL` when it ends ok, `URL/fail` when it fails, with the run's
one-line summary or error as the POST body. Also served by self-hosted Healthchecks, Uptime Kuma
push monitors and Cronitor-compatible servers. It catches what no notification can: a daemon
that is not running at all. Pings are best-effort: queued, sent with a short timeout, never
failing a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests

from runner.notify.outbox import Delivery, Outbox
from runner.state import RunRecord, RunStatus

log = logging.getLogger("runner.notify")

PING_TIMEOUT = 10.0
MAX_BODY = 10_000  # healthchecks keeps the first 10 KB of a ping's body


@dataclass(frozen=True)
class Ping:
    """One ping: where (the URL with its suffix) and what to say."""

    url: str
    body: str

    def __repr__(self) -> str:
        return "Ping(...)"


class Pinger:
    """Sends each job's pings in order, in a background thread.

    Args:
        timeout: seconds per ping.
        attempts: tries per ping.
        backoff: seconds before the second try.
    """

    def __init__(
        self, *, timeout: float = PING_TIMEOUT, attempts: int = 3, backoff: float = 1.0
    ) -> None:
        self.timeout = timeout
        self._outbox: Outbox[Ping] = Outbox(
            "ping-sender", self._deliver, attempts=attempts, backoff=backoff, logger=log
        )

    def _deliver(self, delivery: Delivery[Ping]) -> bool:
        ping = delivery.item
        try:
            response = requests.post(
                ping.url, data=ping.body.encode("utf-8")[:MAX_BODY], timeout=self.timeout
            )
        except requests.RequestException:
            return False
        with response:
            return response.status_code < 400

    def started(self, job: str, url: str) -> None:
        """`URL/start`: the run began (healthchecks measures the run's duration from here)."""
        self._outbox.put(Delivery(Ping(_join(url, "start"), ""), f"jobs.{job}.ping"))

    def finished(self, record: RunRecord, url: str) -> None:
        """`URL` for an ok run, `URL/fail` for any other, with the summary or error as body."""
        if record.status is RunStatus.OK:
            target, body = url, record.summary or "ok"
        else:
            target, body = _join(url, "fail"), record.error or record.status.value
        self._outbox.put(Delivery(Ping(target, body), f"jobs.{record.job}.ping"))

    def flush(self, timeout: float) -> bool:
        """Waits for what is queued; False when `timeout` passed first."""
        return self._outbox.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Gives queued pings until `timeout` to go out, then stops."""
        return self._outbox.close(self.timeout if timeout is None else timeout)


def _join(url: str, suffix: str) -> str:
    base, sep, query = url.partition("?")
    return f"{base.rstrip('/')}/{suffix}" + (f"?{query}" if sep else "")
