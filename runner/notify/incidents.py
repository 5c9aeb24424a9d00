"""Which runs reach a person: one message per outage, one when it ends.

The rules (Healthchecks' incident model):
- **failed**: a run that ends failed, timed out, or still transient *after its last retry*. The
  first such run of an outage notifies; later ones stay quiet until the job recovers, the
  one-line error changes (compared after replacing ids and numbers, so "track 4uLU6hMC..." and a
  count do not make every run a new incident), or `remind` has passed since the last message.
- **recovered**: the first ok run after a notified failure, exactly once.
- **needs_auth**: once per account per outage, however many jobs and runs meet it.
- **auth_expiring**: 14, 3 and 1 days before the account's authorization ends, each once.

What was notified lives in the state store (`recall`/`remember`), so a restart in the middle of an
outage neither repeats the failure message nor loses the recovery message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from runner.state import RunRecord, RunStatus

EVENTS = ("failed", "recovered", "needs_auth", "auth_expiring")
EXPIRY_WARNINGS = (14, 3, 1)  # days before the authorization ends
# Statuses that are failures of the job itself (authorization is the account's outage).
FAILURES = frozenset(
    {RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.TRANSIENT, RunStatus.RATE_LIMITED}
)
_NOT_COUNTED = frozenset({RunStatus.OK, RunStatus.SKIPPED, RunStatus.RUNNING})

_SPOTIFY_ID = re.compile(r"\b[0-9A-Za-z]{22}\b")
_HEX = re.compile(r"\b[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def incident_signature(error: str | None) -> str:
    """The error with ids and numbers replaced: equal signatures are the same incident."""
    text = error or ""
    text = _SPOTIFY_ID.sub("<id>", text)
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("<n>", text).strip()


def auth_command(account: str) -> str:
    """The exact command that re-authorizes `account`."""
    return (
        "spotify-runner auth"
        if account == "default"
        else f"spotify-runner auth --account {account}"
    )


@dataclass(frozen=True)
class Message:
    """One notification.

    Attributes:
        event: failed, recovered, needs_auth, auth_expiring or test.
        title: one line.
        body: the details; never a secret.
        account: the account it is about.
        job: the job it is about, if any.
    """

    event: str
    title: str
    body: str
    account: str
    job: str | None = None


class Memory(Protocol):
    """The part of the state store the rules use."""

    def recall(self, key: str) -> dict[str, Any] | None:
        """What was remembered under `key`."""
        ...

    def remember(self, key: str, value: dict[str, Any] | None) -> None:
        """Remembers (None: forgets) `value` under `key`."""
        ...

    def runs(
        self, job: str | None = None, *, limit: int = 50, account: str = "default"
    ) -> list[RunRecord]:
        """The job's runs, newest first."""
        ...


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class Incidents:
    """Turns recorded runs and authorization ends into the messages the rules call for.

    Args:
        memory: the state store.
        events: which events are sent (all four by default).
        remind: repeat an unchanged failure after this long; zero for never.
        tz: the time zone times are shown in.
        now: the clock.
        scrub: removes secrets from a message body (the log redactor).
        fix: the command that re-authorizes an account (the config's `auth_command`).
    """

    def __init__(
        self,
        memory: Memory,
        *,
        events: Iterable[str] = EVENTS,
        remind: timedelta = timedelta(hours=24),
        tz: ZoneInfo | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        scrub: Callable[[str], str] = lambda text: text,
        fix: Callable[[str], str] = auth_command,
    ) -> None:
        self.memory = memory
        self.fix = fix
        self.events = frozenset(events)
        self.remind = remind
        self.tz = tz or ZoneInfo("UTC")
        self.now = now
        self.scrub = scrub
        # Runs end on several threads at once: each decision reads and writes the memory as one
        # step, so two jobs meeting the same outage cannot both be "the first".
        self._lock = threading.Lock()

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return "none scheduled"
        return f"{value.astimezone(self.tz):%Y-%m-%d %H:%M %Z}"

    def _message(self, event: str, title: str, body: str, account: str, job: str | None) -> Message:
        return Message(event, self.scrub(title), self.scrub(body), account, job)

    def after_run(
        self,
        record: RunRecord,
        *,
        final: bool,
        notify: bool = True,
        next_run: datetime | None = None,
        log_tail: str = "",
    ) -> list[Message]:
        """The messages one finished run calls for (usually none).

        Args:
            record: the run as recorded.
            final: no retry of it will follow.
            notify: the job's `notify` setting.
            next_run: the job's next scheduled run, for the message.
            log_tail: the run's last log lines, for the message.
        """
        if not notify or record.ended_at is None:
            return []
        with self._lock:
            return self._decide(record, final, next_run, log_tail)

    def _decide(
        self, record: RunRecord, final: bool, next_run: datetime | None, log_tail: str
    ) -> list[Message]:
        if record.status is RunStatus.OK:
            return self._recovered(record)
        if record.status is RunStatus.NEEDS_AUTH:
            return self._needs_auth(record)
        if record.status in FAILURES and final:
            return self._failed(record, next_run, log_tail)
        return []

    def _failed(self, record: RunRecord, next_run: datetime | None, log_tail: str) -> list[Message]:
        key = f"notify:failed:{record.account}:{record.job}"
        signature = incident_signature(record.error)
        now = self.now()
        known = self.memory.recall(key)
        reason = None
        if known is None:
            reason = "failed"
        elif known.get("signature") != signature:
            reason = "failed with a new error"
        elif self.remind > timedelta(0):
            last = datetime.fromisoformat(str(known.get("notified_at")))
            if now - last >= self.remind:
                reason = "is still failing"
        if reason is None:
            return []
        since = known.get("since") if known else None
        self.memory.remember(
            key,
            {
                "signature": signature,
                "since": since or _ts(record.started_at),
                "notified_at": _ts(now),
                "notified": "failed" in self.events,
            },
        )
        if "failed" not in self.events:
            return []
        failures = self._failures_so_far(record)
        error = record.error or record.status.value
        body = [
            f"{record.job} (account {record.account}) {reason}: {error}",
            f"Runs failed so far: {failures}. Next run: {self._when(next_run)}.",
        ]
        if log_tail:
            body += ["", "Last log lines:", log_tail]
        title = f"spotify-runner: {record.job} {reason}"
        return [self._message("failed", title, "\n".join(body), record.account, record.job)]

    def _failures_so_far(self, record: RunRecord) -> int:
        count = 0
        for run in self.memory.runs(record.job, limit=1000, account=record.account):
            if run.status is RunStatus.OK:
                break
            if run.status not in _NOT_COUNTED:
                count += 1
        return count

    def _recovered(self, record: RunRecord) -> list[Message]:
        messages: list[Message] = []
        auth_key = f"notify:needs_auth:{record.account}"
        if self.memory.recall(auth_key) is not None:
            self.memory.remember(auth_key, None)
        key = f"notify:failed:{record.account}:{record.job}"
        known = self.memory.recall(key)
        if known is None:
            return messages
        self.memory.remember(key, None)
        if known.get("notified") and "recovered" in self.events:
            detail = f": {record.summary}" if record.summary else ""
            body = f"{record.job} (account {record.account}) is ok again{detail}"
            title = f"spotify-runner: {record.job} recovered"
            messages.append(self._message("recovered", title, body, record.account, record.job))
        return messages

    def _needs_auth(self, record: RunRecord) -> list[Message]:
        key = f"notify:needs_auth:{record.account}"
        if self.memory.recall(key) is not None:
            return []
        self.memory.remember(key, {"since": _ts(record.started_at), "job": record.job})
        if "needs_auth" not in self.events:
            return []
        fix = self.fix(record.account)
        body = (
            f"Spotify authorization of account {record.account} is needed: "
            f"{record.error or 'authorization needed'}\n"
            f"Its jobs wait until you run: {fix}"
        )
        title = f"spotify-runner: account {record.account} needs authorization"
        return [self._message("needs_auth", title, body, record.account, None)]

    def authorization_ends(self, account: str, ends_at: datetime | None) -> list[Message]:
        """The warning due now, if any, for an authorization that ends at `ends_at`.

        Each of 14, 3 and 1 days before is sent once per authorization (a new `auth` starts
        over); a daemon started 2 days before the end sends the 3-day warning only.
        """
        if ends_at is None:
            return []
        with self._lock:
            return self._expiry(account, ends_at)

    def _expiry(self, account: str, ends_at: datetime) -> list[Message]:
        key = f"notify:auth_expiring:{account}"
        known = self.memory.recall(key) or {}
        if known.get("ends_at") != _ts(ends_at):
            known = {"ends_at": _ts(ends_at), "sent": []}
        left = ends_at - self.now()
        due = [d for d in EXPIRY_WARNINGS if left <= timedelta(days=d) and d not in known["sent"]]
        if not due:
            return []
        # All thresholds passed count as sent; the message speaks of the nearest.
        self.memory.remember(key, {**known, "sent": sorted({*known["sent"], *due})})
        if "auth_expiring" not in self.events or left <= timedelta(0):
            return []
        days = max(1, round(left / timedelta(days=1)))
        body = (
            f"The Spotify authorization of account {account} ends in {days} day"
            f"{'s' if days != 1 else ''} ({ends_at.astimezone(self.tz):%Y-%m-%d}). "
            f"Renew it with: {self.fix(account)}"
        )
        title = f"spotify-runner: account {account} authorization ends in {days}d"
        return [self._message("auth_expiring", title, body, account, None)]
