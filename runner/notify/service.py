"""What the daemon holds: the incident rules, the sender and the pinger, fed from each run.

Everything here reads the run as it was recorded (its `RunRecord`), the one source of truth
that history and metrics read too. Nothing here raises into the daemon: a notification problem
is logged, never a reason for a run or the scheduler to fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from runner.config import Config
from runner.errors import RunnerError
from runner.notify.incidents import Incidents, Message
from runner.notify.ping import Pinger
from runner.notify.sender import Sender
from runner.state import RunRecord, StateStore

log = logging.getLogger("runner.notify")


class NotifyService:
    """Notifications and pings for one daemon.

    Args:
        config: the loaded config (`notify:`, each job's `notify` and `ping`).
        state: the state store (outage memory, history).
        now: the clock.
        scrub: removes secrets from message bodies (the log redactor).
        ping_timeout: seconds per ping.
    """

    def __init__(
        self,
        config: Config,
        state: StateStore,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        scrub: Callable[[str], str] = lambda text: text,
        ping_timeout: float | None = None,
    ) -> None:
        self.state = state
        self._now = now
        self._scrub = scrub
        self._ping_timeout = ping_timeout
        self.sender: Sender | None = None
        self.pinger: Pinger | None = None
        self.config = config
        self.incidents = self._incidents(config)
        self._wire(config)

    def _incidents(self, config: Config) -> Incidents:
        return Incidents(
            self.state,
            events=config.notify.events,
            remind=config.notify.remind,
            tz=config.tzinfo(),
            now=self._now,
            scrub=self._scrub,
            fix=config.auth_command,
        )

    def _wire(self, config: Config) -> None:
        urls = config.notify.url_values()
        timeout = config.notify.timeout.total_seconds()
        if urls and self.sender is None:
            self.sender = Sender(urls, timeout=timeout)
        if any(job.ping is not None for job in config.jobs.values()) and self.pinger is None:
            self.pinger = Pinger(timeout=self._ping_timeout or min(timeout, 10.0))

    def reconfigure(self, config: Config) -> None:
        """Takes a reloaded config; a changed URL list gets a new sender."""
        if config.notify != self.config.notify and self.sender is not None:
            self.sender.close(0.0)
            self.sender = None
        self.config = config
        self.incidents = self._incidents(config)
        self._wire(config)

    def _send(self, messages: list[Message]) -> None:
        for message in messages:
            log.info("notification: %s", message.title)
            if self.sender is not None:
                self.sender.send(message)

    def run_started(self, job: str) -> None:
        """A run of `job` begins: its `/start` ping."""
        cfg = self.config.jobs.get(job)
        if cfg is not None and cfg.ping is not None and self.pinger is not None:
            self.pinger.started(job, cfg.ping.get_secret_value())

    def run_finished(
        self,
        record: RunRecord,
        *,
        final: bool,
        next_run: datetime | None = None,
        log_tail: str = "",
    ) -> None:
        """A run ended as `record`: its ping, and whatever the incident rules call for."""
        try:
            cfg = self.config.jobs.get(record.job)
            if cfg is not None and cfg.ping is not None and self.pinger is not None:
                self.pinger.finished(record, cfg.ping.get_secret_value())
            messages = self.incidents.after_run(
                record,
                final=final,
                notify=cfg.notify if cfg is not None else True,
                next_run=next_run,
                log_tail=log_tail,
            )
            self._send(messages)
        except RunnerError as exc:  # the state database is out of reach: its outage memory
            log.warning("%s: could not work out its notifications: %s", record.job, exc)
        except Exception:  # notifications must never take a run or the daemon down
            log.exception("%s: could not work out its notifications", record.job)

    def authorization_ends(self, account: str, ends_at: float | None) -> None:
        """Checks the 14/3/1-day warnings for an account whose authorization ends at `ends_at`."""
        try:
            when = None if ends_at is None else datetime.fromtimestamp(ends_at, UTC)
            self._send(self.incidents.authorization_ends(account, when))
        except RunnerError as exc:  # the state database is unreachable: the next tick retries
            log.warning("could not check when the authorization of %s ends: %s", account, exc)
        except Exception:
            log.exception("could not check when the authorization of %s ends", account)

    def close(self, timeout: float | None = None) -> None:
        """Gives queued messages and pings, together, up to the delivery timeout to go out."""
        limit = self.config.notify.timeout.total_seconds() if timeout is None else timeout
        deadline = time.monotonic() + limit
        for outbox in (self.sender, self.pinger):
            if outbox is not None:
                outbox.close(max(0.0, deadline - time.monotonic()))
