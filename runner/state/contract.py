"""The `StateStore` contract: what every state backend records, and how.

Everything the daemon remembers between runs goes through `StateStore`: SQLite by default
(`runner.state.sqlite`), PostgreSQL for an active/standby pair (`runner.state.postgres`). All
datetimes are timezone-aware UTC going in and coming out. The same test suite
(`tests/runner/test_state_contract.py`) runs against every backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from runner.errors import EXIT_USAGE, RunnerError

# Bounds what one misbehaving job can put in the history; a summary is meant to be one line.
MAX_TEXT = 4000
# A run's own log lines, kept with its row: enough for "what did the 3 a.m. run do?".
MAX_RUN_LOG = 64 * 1024
INTERRUPTED = "interrupted (daemon stopped)"
# With state on PostgreSQL: how often a standby bids for the lead and the active daemon checks
# it still holds it (a takeover comes within about this long of the active daemon's end).
LEAD_POLL_SECONDS = 2.0
# The columns a `RunRecord` is read from, in `record_from_row`'s order, in every backend.
RUN_COLUMNS = (
    "id, account, job, scheduled_at, started_at, ended_at, status, summary, error, "
    "attempt, dry_run, trigger"
)


class RunStatus(StrEnum):
    """How a run ended (or that it has not ended yet)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    NEEDS_AUTH = "needs_auth"


@dataclass(frozen=True)
class RunRecord:
    """One run of one job, as recorded.

    Attributes:
        id: increases with every run recorded in this store.
        account: the Spotify account the run used.
        job: the job's name in the config.
        scheduled_at: when the schedule wanted it; None for a manual run.
        started_at: when it actually started (for a skipped run: when it was skipped).
        ended_at: None while running.
        status: how it ended.
        summary: what the job returned, or why it was skipped.
        error: one-line error for a run that did not succeed.
        attempt: 1 for the first try, 2 for the first retry...
        dry_run: the run changed nothing.
        trigger: "schedule", "catch_up", "retry" or "manual".
    """

    id: int
    account: str
    job: str
    scheduled_at: datetime | None
    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    summary: str | None
    error: str | None
    attempt: int
    dry_run: bool
    trigger: str


class StateStore(Protocol):
    """All persistent run data: history and per-job state. Thread-safe."""

    def start_run(
        self,
        job: str,
        *,
        scheduled_at: datetime | None,
        started_at: datetime,
        attempt: int = 1,
        trigger: str = "schedule",
        dry_run: bool = False,
        account: str = "default",
    ) -> int:
        """Records a run as RUNNING and returns its id."""
        ...

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        ended_at: datetime,
        summary: str | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Records how a run ended and returns the full record."""
        ...

    def record_skipped(
        self,
        job: str,
        *,
        scheduled_at: datetime | None,
        at: datetime,
        reason: str,
        account: str = "default",
        trigger: str = "schedule",
    ) -> RunRecord:
        """Records a run that did not happen (overlap, missed) with the reason as its summary.

        `trigger` is what would have started it (`schedule`, `retry`, `catch_up`, `manual`).
        """
        ...

    def last_run(self, job: str, account: str = "default") -> RunRecord | None:
        """The job's most recently recorded run of any status, or None."""
        ...

    def runs(
        self, job: str | None = None, *, limit: int = 50, account: str = "default"
    ) -> list[RunRecord]:
        """Recorded runs of one job (or all jobs), newest first."""
        ...

    def last_scheduled_at(self, job: str, account: str = "default") -> datetime | None:
        """The latest scheduled time of any recorded run, skipped ones included."""
        ...

    def load_job_state(self, job: str, account: str = "default") -> dict[str, Any]:
        """The job's saved state, or an empty dict."""
        ...

    def save_job_state(self, job: str, state: Mapping[str, Any], account: str = "default") -> None:
        """Replaces the job's saved state. Raises TypeError for a value JSON cannot hold."""
        ...

    def mark_interrupted(self, now: datetime, *, own: bool = False) -> int:
        """Ends runs a crashed process left RUNNING as FAILED; returns how many.

        With `own`, this process's own running runs too (a daemon abandoning them at stop).
        """
        ...

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run by id, of any job and account, or None."""
        ...

    def all_runs(self, job: str | None = None, *, limit: int = 50) -> list[RunRecord]:
        """Recorded runs of every account (of one job name, or all), newest first."""
        ...

    def save_run_log(self, run_id: int, text: str) -> None:
        """Keeps a run's captured log lines with its row (clipped to `MAX_RUN_LOG` bytes)."""
        ...

    def run_log(self, run_id: int) -> str | None:
        """A run's captured log lines, or None when the run is unknown or kept none."""
        ...

    def run_counts(self) -> list[tuple[str, str, RunStatus, int]]:
        """How many finished runs each (account, job, status) has in the history."""
        ...

    def last_success(self) -> dict[tuple[str, str], datetime]:
        """When each (account, job) last ended ok."""
        ...

    def claim(
        self,
        job: str,
        scheduled_at: datetime,
        *,
        account: str = "default",
        node: str = "",
        make_up: bool = False,
    ) -> bool:
        """Claims a fire time before its run starts: True once per (account, job, time).

        `make_up` claims the one make-up run of a fire time whose run was interrupted. The
        claim is a unique key in the database, so two daemons can never both run one fire time.
        """
        ...

    def recall(self, key: str) -> dict[str, Any] | None:
        """What the daemon remembered under `key` (outage memory), or None."""
        ...

    def remember(self, key: str, value: Mapping[str, Any] | None) -> None:
        """Remembers `value` under `key`; None forgets it."""
        ...

    def flush(self) -> None:
        """Reconnects when the database went out of reach, and writes what was kept meanwhile.

        A backend that can lose its server (PostgreSQL) keeps a run's end, log and job state
        that could not be written, answering for them as if written, and writes them once the
        database answers again (any call does; the daemon calls this on every tick). SQLite
        has nothing to do.

        Raises:
            StateError: the database still cannot be reached.
        """
        ...

    def keep_token(self, account: str, token: Mapping[str, Any], replaces: str) -> str | None:
        """At a stop: keeps a rotated token its token store refused, for the next start.

        `replaces` is the spent refresh token the token store still holds: the next start
        stores `token` (its JSON form) only if it still does, so a newer authorization wins.
        Returns where it is kept, or None when this backend cannot keep it (SQLite: its tokens
        are files, refused by the same disk).
        """
        ...

    def close(self) -> None:
        """Releases the store; further calls fail."""
        ...


class StateError(RunnerError):
    """The state database cannot be used (newer version, corrupt, locked, disk full, read-only)."""

    exit_code = EXIT_USAGE


class StateUnreachable(StateError):
    """The state database cannot be reached just now (a server down, a network cut)."""


def aware(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (the store takes timezone-aware times)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the state store takes timezone-aware times")
    return value.astimezone(UTC)


def clip_log(text: str) -> str:
    """`text` cut at a line end so that it fits in `MAX_RUN_LOG` bytes of UTF-8, marked if cut."""
    data = text.encode("utf-8")
    if len(data) <= MAX_RUN_LOG:
        return text
    marker = "... (log cut at 64 KiB)\n"
    head = data[: MAX_RUN_LOG - len(marker)].decode("utf-8", errors="ignore")
    cut = head.rfind("\n")
    return (head[: cut + 1] if cut >= 0 else head) + marker


def clip_text(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"


def record_from_row(row: tuple[Any, ...], parse: Callable[[Any], datetime | None]) -> RunRecord:
    """A `RunRecord` from a row in the `RUN_COLUMNS` order, its times read by `parse`."""
    (run_id, account, job, scheduled, started, ended, status, summary, error) = row[:9]
    attempt, dry_run, trigger = row[9:]
    started_at = parse(started)
    assert started_at is not None
    return RunRecord(
        id=run_id,
        account=account,
        job=job,
        scheduled_at=parse(scheduled),
        started_at=started_at,
        ended_at=parse(ended),
        status=RunStatus(status),
        summary=summary,
        error=error,
        attempt=attempt,
        dry_run=bool(dry_run),
        trigger=trigger,
    )


def find_unjsonable(value: Any, path: str) -> str | None:
    """The path of the first value `json.dumps` rejects, for an error message that helps."""
    if isinstance(value, str | int | float | bool) or value is None:
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{path} (key {key!r} of type {type(key).__name__})"
            found = find_unjsonable(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unjsonable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    return f"{path} ({type(value).__name__})"


def job_state_json(job: str, state: Mapping[str, Any]) -> str:
    """`state` as compact JSON text.

    Raises:
        TypeError: a value JSON cannot hold; the message names where it is.
    """
    try:
        return json.dumps(dict(state), separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        where = find_unjsonable(dict(state), "state") or "state"
        raise TypeError(f"job state of {job!r} is not JSON-able at {where}: {exc}") from exc


def parse_job_state(text: str, job: str, where: str, tool: str, delete: str) -> dict[str, Any]:
    """Saved job state read back; damaged state is a `StateError` naming the fix.

    Args:
        text: the stored JSON.
        job: whose it is.
        where: the database, as messages name it.
        tool: what the user would fix it with (`sqlite3`, `psql`).
        delete: the statement that deletes it.
    """
    try:
        loaded = json.loads(text)
    except ValueError:
        raise StateError(
            f"the saved state of job {job!r} in {where} is not valid JSON: fix it with "
            f"{tool}, or delete it to start the job afresh: {delete}"
        ) from None
    if not isinstance(loaded, dict):
        raise StateError(
            f"the saved state of job {job!r} in {where} is not a JSON object: delete "
            f"it to start the job afresh: {delete}"
        )
    return loaded
