"""What both SQL backends share: one query text, `?` placeholders, for SQLite and PostgreSQL.

A backend supplies `_query` and `_write` (PostgreSQL's turn `?` into `%s`), `_time` and
`_stamp` (how its rows hold a datetime). The writes that need more than one statement
(recording runs, pruning, marking interrupted ones) stay in each backend, where transactions and
locking differ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.state.contract import (
    INTERRUPTED,
    RUN_COLUMNS,
    RunRecord,
    RunStatus,
    StateError,
    clip_log,
    clip_text,
    job_state_json,
    parse_job_state,
    record_from_row,
)

CLAIMS_KEPT = timedelta(days=31)

log = logging.getLogger("runner.state")

SAVE_JOB_STATE = (
    "INSERT INTO job_state (account, job, state, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (account, job) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at"
)

# A run recorded for a fire time settles this process's claim of it (see `_settle_claim`).
_SETTLE = (
    "UPDATE claims SET run_id = ? WHERE account = ? AND job = ? AND scheduled_at = ?"
    " AND owner = ? AND run_id IS NULL"
)


class SqlStore:
    """The `StateStore` methods written in SQL common to SQLite and PostgreSQL.

    Attributes:
        where: the database, as messages name it (never with a password).
        fix_tool: the tool a user repairs it with, for messages (`sqlite3`, `psql`).
    """

    where: str
    fix_tool: str
    keep_runs: int
    # Who owns this store's runs and claims (a process, or a PostgreSQL owner lock).
    _owner: str
    # What locks the pending claims one `mark_interrupted` ends against another doing the same.
    _lock_pending = ""

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _time(self, value: Any) -> datetime | None:
        raise NotImplementedError

    def _stamp(self, value: datetime) -> Any:
        raise NotImplementedError

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        """Runs one statement in its own transaction; returns how many rows it changed."""
        raise NotImplementedError

    def _execute(self, cur: Any, sql: str, params: tuple[Any, ...]) -> Any:
        """One statement written with `?` on the backend's cursor inside its transaction."""
        raise NotImplementedError

    def _insert(self, cur: Any, sql: str, params: tuple[Any, ...]) -> int:
        """One INSERT of a row into `runs`, written with `?`; returns the new row's id."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        """A write transaction (under the store's lock); yields its cursor."""
        raise NotImplementedError

    def _opt_stamp(self, value: datetime | None) -> Any:
        return None if value is None else self._stamp(value)

    # -- runs -------------------------------------------------------------------------------

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
        row = (
            account,
            job,
            self._opt_stamp(scheduled_at),
            self._stamp(started_at),
            RunStatus.RUNNING.value,
            attempt,
            dry_run,
            trigger,
            self._owner,
        )
        with self._transaction() as cur:
            run_id = self._insert(
                cur,
                "INSERT INTO runs (account, job, scheduled_at, started_at, status, attempt,"
                " dry_run, trigger, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            self._settle_claim(cur, run_id, account, job, scheduled_at)
            self._prune(cur, account, job)
        return run_id

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
        when = self._stamp(at)
        row = (
            account,
            job,
            self._opt_stamp(scheduled_at),
            when,
            when,
            RunStatus.SKIPPED.value,
            clip_text(reason),
            False,
            trigger,
        )
        with self._transaction() as cur:
            run_id = self._insert(
                cur,
                "INSERT INTO runs (account, job, scheduled_at, started_at, ended_at, status,"
                " summary, attempt, dry_run, trigger) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                row,
            )
            found = self._execute(
                cur, f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            self._settle_claim(cur, run_id, account, job, scheduled_at)
            self._prune(cur, account, job)
        return self._record(found)

    def _prune(self, cur: Any, account: str, job: str) -> None:
        """Keeps the newest `keep_runs` runs of the job and account.

        Runs still going are never pruned: their finish_run must find them.
        """
        self._execute(
            cur,
            "DELETE FROM runs WHERE account = ? AND job = ? AND status != 'running' AND id <= ("
            " SELECT id FROM runs WHERE account = ? AND job = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (account, job, account, job, self.keep_runs),
        )

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        return record_from_row(row, self._time)

    def last_run(self, job: str, account: str = "default") -> RunRecord | None:
        """The job's most recently recorded run of any status (running included), or None."""
        found = self.runs(job, limit=1, account=account)
        return found[0] if found else None

    def runs(
        self, job: str | None = None, *, limit: int = 50, account: str = "default"
    ) -> list[RunRecord]:
        """Recorded runs of one job (or of all jobs when `job` is None), newest first."""
        if job is None:
            rows = self._query(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE account = ? ORDER BY id DESC LIMIT ?",
                (account, limit),
            )
        else:
            rows = self._query(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE account = ? AND job = ?"
                " ORDER BY id DESC LIMIT ?",
                (account, job, limit),
            )
        return [self._record(row) for row in rows]

    def last_scheduled_at(self, job: str, account: str = "default") -> datetime | None:
        """The latest scheduled time of any recorded run (skipped ones included), or None.

        Manual runs have no scheduled time and so do not count: `run-job` does not postpone
        the schedule or stand in for a missed run.
        """
        rows = self._query(
            "SELECT MAX(scheduled_at) FROM runs WHERE account = ? AND job = ?", (account, job)
        )
        return self._time(rows[0][0])

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run by id, of any job and account, or None."""
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return self._record(rows[0]) if rows else None

    def all_runs(self, job: str | None = None, *, limit: int = 50) -> list[RunRecord]:
        """Recorded runs of every account (of one job name, or all jobs), newest first."""
        if job is None:
            rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?",
                (job, limit),
            )
        return [self._record(row) for row in rows]

    def run_log(self, run_id: int) -> str | None:
        """A run's captured log lines, or None when the run is unknown or kept none."""
        rows = self._query("SELECT log FROM runs WHERE id = ?", (run_id,))
        return rows[0][0] if rows else None

    def run_counts(self) -> list[tuple[str, str, RunStatus, int]]:
        """How many finished runs each (account, job, status) has in the history."""
        rows = self._query(
            "SELECT account, job, status, COUNT(*) FROM runs WHERE status != 'running'"
            " GROUP BY account, job, status ORDER BY account, job, status"
        )
        return [(account, job, RunStatus(status), int(n)) for account, job, status, n in rows]

    def last_success(self) -> dict[tuple[str, str], datetime]:
        """When each (account, job) last ended ok."""
        rows = self._query(
            "SELECT account, job, MAX(ended_at) FROM runs WHERE status = 'ok' GROUP BY account, job"
        )
        found = {(account, job): self._time(ended) for account, job, ended in rows}
        return {key: when for key, when in found.items() if when is not None}

    def recall(self, key: str) -> dict[str, Any] | None:
        """What was remembered under `key`, or None."""
        rows = self._query("SELECT value FROM memory WHERE key = ?", (key,))
        if not rows:
            return None
        try:
            loaded = json.loads(rows[0][0])
        except ValueError:
            # A damaged row: one line that names the fix, not a JSONDecodeError traceback
            # (the daemon reads pauses and holds before every run).
            raise StateError(
                f"the record {key!r} in {self.where} is not valid JSON: delete it with "
                f"{self.fix_tool}: DELETE FROM memory WHERE key = '{key}'"
            ) from None
        return loaded if isinstance(loaded, dict) else None

    def load_job_state(self, job: str, account: str = "default") -> dict[str, Any]:
        """The job's saved state, or an empty dict when it has none."""
        rows = self._query(
            "SELECT state FROM job_state WHERE account = ? AND job = ?", (account, job)
        )
        if not rows:
            return {}
        delete = f"DELETE FROM job_state WHERE job = '{job}'"
        return parse_job_state(rows[0][0], job, self.where, self.fix_tool, delete)

    def save_run_log(self, run_id: int, text: str) -> None:
        """Keeps a run's captured log lines with its row, clipped to `MAX_RUN_LOG` bytes.

        Raises:
            KeyError: no run has this id.
        """
        if self._write("UPDATE runs SET log = ? WHERE id = ?", (clip_log(text), run_id)) == 0:
            raise KeyError(f"no run with id {run_id}")

    def remember(self, key: str, value: Mapping[str, Any] | None) -> None:
        """Remembers `value` (JSON) under `key`, replacing what was there; None forgets."""
        if value is None:
            self._write("DELETE FROM memory WHERE key = ?", (key,))
            return
        self._write(
            "INSERT INTO memory (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (key, json.dumps(dict(value)), self._stamp(datetime.now(UTC))),
        )

    def save_job_state(self, job: str, state: Mapping[str, Any], account: str = "default") -> None:
        """Replaces the job's saved state with `state`, as JSON.

        JSON's own rules apply: tuples come back as lists and non-string keys as strings.

        Raises:
            TypeError: a value JSON cannot hold; the message names where it is.
        """
        text = job_state_json(job, state)
        self._write(SAVE_JOB_STATE, (account, job, text, self._stamp(datetime.now(UTC))))

    def claim(
        self,
        job: str,
        scheduled_at: datetime,
        *,
        account: str = "default",
        node: str = "",
        make_up: bool = False,
    ) -> bool:
        """Claims a fire time for one run; False when it was claimed before (by anyone)."""
        now = datetime.now(UTC)
        kind = "make_up" if make_up else "run"
        claimed = self._write(
            "INSERT INTO claims (account, job, scheduled_at, kind, node, claimed_at, owner)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (account, job, self._stamp(scheduled_at), kind, node, self._stamp(now), self._owner),
        )
        if claimed:
            # Claims only need to outlive any overlap of two daemons; a month is plenty.
            self._write(
                "DELETE FROM claims WHERE account = ? AND job = ? AND claimed_at < ?",
                (account, job, self._stamp(now - CLAIMS_KEPT)),
            )
        return claimed == 1

    def _settle_claim(
        self, cur: Any, run_id: int, account: str, job: str, scheduled_at: datetime | None
    ) -> None:
        """Ties this process's claim of the fire time to the run just recorded for it.

        In the transaction that records the run (started or skipped): from then on the run's own
        row tells what became of the fire time. A claim left unsettled means its claimant
        stopped between claiming and recording, which `_end_dead_claims` then records.
        """
        if scheduled_at is not None:
            stamp = self._stamp(scheduled_at)
            self._execute(cur, _SETTLE, (run_id, account, job, stamp, self._owner))

    def _end_dead_claims(self, cur: Any, ended: Any, alive: Callable[[str], bool]) -> int:
        """Records what a claimant that died before recording its run left behind.

        A fire time claimed for its run becomes an interrupted run (so a `catch_up` job makes it
        up once, like any run a failover cut short); a claimed make-up that never started is
        void, and the make-up may be claimed again. Returns how many runs were recorded.
        """
        pending = self._execute(
            cur,
            "SELECT account, job, scheduled_at, kind, node, claimed_at, owner FROM claims"
            " WHERE run_id IS NULL AND owner IS NOT NULL" + self._lock_pending,
            (),
        ).fetchall()
        recorded = 0
        for account, job, scheduled_at, kind, node, claimed_at, owner in pending:
            if alive(owner):
                continue
            key = (account, job, scheduled_at, kind)
            if kind == "make_up":
                self._execute(
                    cur,
                    "DELETE FROM claims WHERE account = ? AND job = ? AND scheduled_at = ?"
                    " AND kind = ?",
                    key,
                )
                log.warning(
                    "%s: the make-up of its run for %s claimed by node %s never started (that "
                    "daemon stopped): it may be made up again",
                    job,
                    self._time(scheduled_at),
                    node or "?",
                )
                continue
            summary = f"node {node or '?'} stopped after claiming this fire time, before the run"
            run_id = self._insert(
                cur,
                "INSERT INTO runs (account, job, scheduled_at, started_at, ended_at, status,"
                " summary, error, attempt, dry_run, trigger, owner)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 'schedule', ?)",
                (
                    account,
                    job,
                    scheduled_at,
                    claimed_at,
                    ended,
                    RunStatus.FAILED.value,
                    summary,
                    INTERRUPTED,
                    False,
                    owner,
                ),
            )
            self._execute(
                cur,
                "UPDATE claims SET run_id = ? WHERE account = ? AND job = ? AND scheduled_at = ?"
                " AND kind = ?",
                (run_id, *key),
            )
            recorded += 1
        return recorded
