"""`StateStore` on PostgreSQL (psycopg 3): one database shared by an active/standby pair.

PostgreSQL is the engine here, not a file format: transactions serialise writers across machines,
and a run's owner is a session advisory lock its process holds on the store's connection, so
"is the process that started this run still alive?" is answered by the server for a process on
any machine (a killed process's session, and its lock, end with its connection).

psycopg is imported by `runner.state.open_state` only when a `postgresql://` URL is configured:
the default SQLite set-up neither needs it installed nor pays for importing it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from runner.files import describe_os_error, private_dir, write_private
from runner.state.contract import (
    INTERRUPTED,
    RUN_COLUMNS,
    RunRecord,
    RunStatus,
    StateError,
    StateUnreachable,
    aware,
    clip_log,
    clip_text,
    job_state_json,
    record_from_row,
)
from runner.state.sql import SAVE_JOB_STATE, SqlStore

SCHEMA_VERSION = 4
# How long connecting may take before the store reports the server unreachable.
CONNECT_TIMEOUT = 10
# Advisory lock keys (the two-int form): one namespace for run owners, one for migrations.
OWNER_LOCKS = 0x5352_0001
MIGRATION_LOCK = 0x5352_0002

log = logging.getLogger("runner.state")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spotify_runner_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account      TEXT        NOT NULL,
    job          TEXT        NOT NULL,
    scheduled_at TIMESTAMPTZ,
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    status       TEXT        NOT NULL,
    summary      TEXT,
    error        TEXT,
    attempt      INTEGER     NOT NULL DEFAULT 1,
    dry_run      BOOLEAN     NOT NULL DEFAULT FALSE,
    trigger      TEXT        NOT NULL,
    owner        TEXT,
    log          TEXT
);
CREATE INDEX runs_by_job ON runs (account, job, id);
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
CREATE TABLE job_state (
    account    TEXT        NOT NULL,
    job        TEXT        NOT NULL,
    state      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, job)
);
CREATE TABLE memory (
    key        TEXT PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
)
"""

# Version 2: the token store. One row per account, locked FOR UPDATE while refreshing; the
# version changes with every save, so other processes notice a new token with one query.
_SCHEMA_2 = """
CREATE TABLE tokens (
    account    TEXT PRIMARY KEY,
    token      TEXT,
    version    BIGINT      NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# Version 3: claims. A run claims its (job, scheduled time) before it starts; the unique key makes
# a second claim of one fire time fail, even from a second daemon during a failover.
# The leadership row says who leads and since when, for `jobs` and /healthz; the lead itself is
# the session advisory lock (`runner.state.leadership`).
_SCHEMA_3 = """
CREATE TABLE claims (
    account      TEXT        NOT NULL,
    job          TEXT        NOT NULL,
    scheduled_at TIMESTAMPTZ NOT NULL,
    kind         TEXT        NOT NULL,
    node         TEXT        NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, job, scheduled_at, kind)
);
CREATE TABLE leadership (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    node   TEXT        NOT NULL,
    owner  TEXT        NOT NULL,
    since  TIMESTAMPTZ NOT NULL,
    epoch  BIGINT      NOT NULL
)
"""

# Version 4: a claim knows its claimant (the run owner) and, once started, its run. A claim whose
# claimant died before recording any run is found by `mark_interrupted` (see `SqlStore`).
_SCHEMA_4 = """
ALTER TABLE claims ADD COLUMN owner TEXT;
ALTER TABLE claims ADD COLUMN run_id BIGINT;
CREATE INDEX claims_pending ON claims (owner) WHERE run_id IS NULL
"""


def safe_url(url: str) -> str:
    """`url` without its password, for messages: `postgresql://app:***@db/x`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# A peer that vanishes without a word (power cut, network cut) must show within seconds, on both
# ends: the client's TCP settings make this process notice, and the session's own settings make
# the server end the session, and with it the advisory locks it holds (the lead, the runs' owner,
# a token row's lock), instead of keeping them for TCP's default two hours.
KEEPALIVE_IDLE = 3
KEEPALIVE_INTERVAL = 1
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 5000
_CLIENT_TCP = {
    "keepalives": 1,
    "keepalives_idle": KEEPALIVE_IDLE,
    "keepalives_interval": KEEPALIVE_INTERVAL,
    "keepalives_count": KEEPALIVE_COUNT,
    "tcp_user_timeout": USER_TIMEOUT_MS,
}
_SERVER_TCP = (
    f"-c tcp_keepalives_idle={KEEPALIVE_IDLE} -c tcp_keepalives_interval={KEEPALIVE_INTERVAL}"
    f" -c tcp_keepalives_count={KEEPALIVE_COUNT} -c tcp_user_timeout={USER_TIMEOUT_MS}"
)


def session_settings(url: str) -> dict[str, Any]:
    """The connection parameters every session to the state database gets (see above).

    The URL's own `options` (a search_path, say) are kept, before ours; settings the URL gives
    for the client's TCP win over ours.
    """
    given = conninfo_to_dict(url)
    own = given.get("options")
    options = f"{own} {_SERVER_TCP}" if own else _SERVER_TCP
    client = {key: value for key, value in _CLIENT_TCP.items() if key not in given}
    return {**client, "options": options}


def connect(
    url: str,
    password: str | None = None,
    *,
    purpose: str = "",
    timeout: int = CONNECT_TIMEOUT,
) -> psycopg.Connection:
    """An autocommit connection to `url`, or a one-line `StateError` that says what to do."""
    try:
        return psycopg.connect(
            url,
            password=password,
            autocommit=True,
            connect_timeout=timeout,
            application_name=f"spotify-runner{' ' + purpose if purpose else ''}",
            **session_settings(url),
        )
    except psycopg.Error as exc:
        kind = StateUnreachable if isinstance(exc, psycopg.OperationalError) else StateError
        raise kind(
            f"cannot connect to the state database {safe_url(url)}: {first_line(exc)}: check "
            "that PostgreSQL is running and reachable, and state.url / state.password_file"
        ) from None


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (psycopg's run on with context), or its type."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PostgresStateStore(SqlStore):
    """`StateStore` in a PostgreSQL database.

    One autocommit connection serialised by a lock serves all of the daemon's threads; each
    write is one transaction. A broken connection (server restarted, network cut) is reported
    as a `StateError` and reconnected on the next call. History is bounded like SQLite's: after
    each insert only the newest `keep_runs` runs of that job and account are kept.

    Args:
        url: `postgresql://user@host/db?sslmode=...`; messages show it without its password.
        password: when not in the URL (from `state.password_file`).
        keep_runs: how many runs to keep per job and account.
        readonly: for readers (`jobs`, `history`): owns no runs (takes no owner lock).
        spool: where a stop with the database out of reach keeps what it could not write (run
            ends, logs, job states); the next store opened on it writes them first. None: lost,
            and the stop says so. A `readonly` store neither writes nor replays it.

    Raises:
        StateError: the server cannot be reached, or the schema is from a newer version.
    """

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        keep_runs: int = 1000,
        readonly: bool = False,
        spool: Path | None = None,
    ) -> None:
        if keep_runs < 1:
            raise ValueError("keep_runs must be at least 1")
        self.url = url
        self.where = safe_url(url)
        self.fix_tool = "psql"
        self.keep_runs = keep_runs
        self.readonly = readonly
        self._password = password
        self._lock = threading.RLock()
        self._owner_key = secrets.randbelow(2**31 - 1) + 1
        self._owner = f"pg:{self._owner_key}"
        # Two active daemons for a moment (a failover): each pending claim is ended by one.
        self._lock_pending = " FOR UPDATE SKIP LOCKED"
        self._closed = False
        self._db: psycopg.Connection | None = None
        # Runs going, as started (to answer for one whose end cannot be written), and the ends
        # (and logs) written while the database was out of reach, to write once it is back.
        self._going: dict[int, RunRecord] = {}
        self._kept_runs: dict[int, _Unwritten] = {}
        self._kept_states: dict[tuple[str, str], tuple[str, datetime]] = {}
        # Rotated tokens a stop kept for the next start: account -> (JSON, digest it replaces).
        self._kept_tokens: dict[str, tuple[str, str]] = {}
        self._spool = None if readonly else spool
        with self._lock:
            self._db = self._connect()
            if self._spool is not None:
                try:
                    self._replay_spool(self._spool)
                except BaseException:
                    self._db.close()
                    raise

    def __repr__(self) -> str:
        return f"PostgresStateStore({self.where!r})"

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        db = connect(self.url, self._password, purpose="state")
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATION_LOCK,))
                self._migrate(db)
            if not self.readonly:
                db.execute("SELECT pg_advisory_lock(%s, %s)", (OWNER_LOCKS, self._owner_key))
        except psycopg.Error as exc:
            db.close()
            raise self._explain(exc, "set up") from None
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: psycopg.Connection) -> None:
        db.execute(
            "CREATE TABLE IF NOT EXISTS spotify_runner_meta (key TEXT PRIMARY KEY,"
            " value TEXT NOT NULL)"
        )
        row = db.execute(
            "SELECT value FROM spotify_runner_meta WHERE key = 'schema_version'"
        ).fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.where} was written by a newer spotify-runner (schema {version}, this "
                f"version knows {SCHEMA_VERSION}): upgrade spotify-runner"
            )
        if version == SCHEMA_VERSION:
            return
        if version < 1:
            for statement in _SCHEMA.split(";"):
                if statement.strip() and "spotify_runner_meta" not in statement:
                    db.execute(statement.encode())
        if version < 2:
            db.execute(_SCHEMA_2.encode())
        if version < 3:
            for statement in _SCHEMA_3.split(";"):
                if statement.strip():
                    db.execute(statement.encode())
        if version < 4:
            for statement in _SCHEMA_4.split(";"):
                if statement.strip():
                    db.execute(statement.encode())
        # Future migrations go here: `if version < 5: ...`, in the same transaction.
        db.execute(
            "INSERT INTO spotify_runner_meta (key, value) VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )

    def _explain(self, exc: psycopg.Error, doing: str) -> StateError:
        if isinstance(exc, psycopg.OperationalError):
            fix = "check that PostgreSQL is running and reachable"
        elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
            fix = "grant the configured user the rights on its database"
        elif isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            fix = "state.url points at a read-only server (a replica?): use the primary"
        else:
            fix = "check the database"
        kind = StateUnreachable if isinstance(exc, psycopg.OperationalError) else StateError
        return kind(f"cannot {doing} the state database {self.where}: {first_line(exc)}: {fix}")

    def _connection(self) -> psycopg.Connection:
        """The open connection, reconnecting one the server or network broke (caller locks)."""
        if self._closed or self._db is None:
            raise psycopg.InterfaceError("the state store is closed")
        if self._db.closed or self._db.broken:
            log.warning("the connection to the state database %s broke: reconnecting", self.where)
            self._db.close()
            self._db = self._connect()
        if self._kept_runs or self._kept_states:
            self._write_kept(self._db)
        return self._db

    def _write_kept(self, db: psycopg.Connection) -> None:
        """Writes the run ends kept while the database was out of reach (caller locks)."""
        with db.transaction():
            for run_id, kept in list(self._kept_runs.items()):
                if kept.end is not None:
                    status, ended_at, summary, error = kept.end
                    done = db.execute(
                        "UPDATE runs SET status = %s, ended_at = %s, summary = %s, error = %s"
                        " WHERE id = %s AND status = 'running'",
                        (status, ended_at, summary, error, run_id),
                    ).rowcount
                    if not done:
                        # Another daemon found it orphaned meanwhile (our session was gone) and
                        # recorded it as interrupted, which its make-up went by: that stays.
                        note = clip_text(f"ended {status} on this node while the database was out")
                        db.execute(
                            "UPDATE runs SET summary = %s WHERE id = %s AND summary IS NULL",
                            (note, run_id),
                        )
                        log.warning(
                            "run %d ended %s while the state database %s was out of reach, but "
                            "another daemon had recorded it as interrupted meanwhile: that stays",
                            run_id,
                            status,
                            self.where,
                        )
                if kept.log is not None:
                    db.execute(
                        "UPDATE runs SET log = %s WHERE id = %s", (clip_log(kept.log), run_id)
                    )
            for (account, job), (text, saved_at) in self._kept_states.items():
                # Unless the other daemon saved a newer one meanwhile (it ran the job since).
                db.execute(
                    (SAVE_JOB_STATE.replace("?", "%s") + _UNLESS_NEWER).encode(),
                    (account, job, text, saved_at),
                )
        log.warning(
            "the state database %s is back: recorded what was kept meanwhile (the end of %d "
            "run(s), the state of %d job(s))",
            self.where,
            len(self._kept_runs),
            len(self._kept_states),
        )
        self._kept_runs.clear()
        self._kept_states.clear()

    def _replay_spool(self, path: Path) -> None:
        """Writes what a stop during an outage kept in `path`, then removes it (caller locks).

        Raises:
            StateError: the file cannot be read or is damaged (it is left in place).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(
                f"cannot read {path} (what the last stop could not write to the state database):"
                f" {describe_os_error(exc)}"
            ) from None
        try:
            database, runs, states, tokens = _parse_spool(text)
        except _DAMAGED as exc:
            raise StateError(
                f"{path} is damaged ({exc}): move it away to start (the run ends and job states "
                "in it are then lost)"
            ) from None
        if database != self.where:
            log.warning(
                "%s holds what a stop could not write to %s, not to %s: left in place",
                path,
                database,
                self.where,
            )
            return
        for run_id, kept in runs.items():
            self._kept_runs.setdefault(run_id, kept)
        for key, value in states.items():
            self._kept_states.setdefault(key, value)
        assert self._db is not None
        try:
            self._write_kept(self._db)
            for account, (text, replaces) in tokens.items():
                self._store_kept_token(self._db, account, text, replaces)
        except psycopg.Error as exc:
            raise self._explain(exc, "write to") from None
        log.warning("wrote what the last stop kept in %s to the state database", path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot remove %s (%s): remove it by hand", path, describe_os_error(exc))

    def _store_kept_token(
        self, db: psycopg.Connection, account: str, text: str, replaces: str
    ) -> None:
        """Stores a token a stop kept, if the row still holds the refresh token it replaced."""
        with db.transaction():
            row = db.execute(
                "SELECT token FROM tokens WHERE account = %s FOR UPDATE", (account,)
            ).fetchone()
            current = None
            with contextlib.suppress(*_DAMAGED):
                current = json.loads(row[0])["refresh_token"] if row and row[0] else None
            if current is None or _digest(current) != replaces:
                log.warning(
                    "%s: a newer authorization is stored than the token the last stop kept: "
                    "that one stays",
                    account,
                )
                return
            db.execute(STORE_TOKEN, (text, account))
        log.warning("%s: stored the refresh token the last stop could not save", account)

    def keep_token(self, account: str, token: Mapping[str, Any], replaces: str) -> str | None:
        """Kept with the run ends in the spool file, if there is one (see `StateStore`)."""
        if self._spool is None:
            return None
        with self._lock:
            self._kept_tokens[account] = (json.dumps(dict(token)), _digest(replaces))
        return str(self._spool)

    def _keep_in_spool(self, path: Path) -> None:
        """Adds what is kept in memory to the spool file (caller locks)."""
        runs: dict[int, _Unwritten] = {}
        states: dict[tuple[str, str], tuple[str, datetime]] = {}
        tokens: dict[str, tuple[str, str]] = {}
        with contextlib.suppress(FileNotFoundError, *_DAMAGED):
            database, runs, states, tokens = _parse_spool(path.read_text(encoding="utf-8"))
            if database != self.where:
                raise FileExistsError(
                    errno.EEXIST, f"it holds what could not be written to {database}", str(path)
                )
        runs.update(self._kept_runs)
        states.update(self._kept_states)
        tokens.update(self._kept_tokens)
        private_dir(path.parent)
        write_private(path, _spool_text(self.where, runs, states, tokens))

    @contextmanager
    def _transaction(self, doing: str = "write to") -> Iterator[psycopg.Cursor[Any]]:
        with self._lock, self._translated(doing):
            db = self._connection()
            with db.transaction(), db.cursor() as cur:
                yield cur

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._translated("read"):
            # The shared reads are written with `?`; none has a literal question mark.
            query = sql.replace("?", "%s").encode()
            try:
                return self._connection().execute(query, params).fetchall()
            except psycopg.OperationalError:
                if self._db is None or not self._db.broken:
                    raise
                # A connection the server or the network dropped fails its first use even when
                # the server is back: a read is safe to try once more, on a new connection.
                return self._connection().execute(query, params).fetchall()

    def _time(self, value: Any) -> datetime | None:
        return _utc(value)

    def _stamp(self, value: datetime) -> Any:
        return aware(value)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._transaction() as cur:
            cur.execute(sql.replace("?", "%s").encode(), params)
            return cur.rowcount

    def _execute(self, cur: Any, sql: str, params: tuple[Any, ...]) -> Any:
        return cur.execute(sql.replace("?", "%s").encode(), params)

    def _insert(self, cur: Any, sql: str, params: tuple[Any, ...]) -> int:
        found = self._execute(cur, sql + " RETURNING id", params).fetchone()
        return int(found[0])

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.InterfaceError:
            raise  # our bug (a closed store), not the server's
        except psycopg.Error as exc:
            raise self._explain(exc, doing) from None

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
        """Records a run as RUNNING and returns its id (kept, to answer for its end)."""
        run_id = super().start_run(
            job,
            scheduled_at=scheduled_at,
            started_at=started_at,
            attempt=attempt,
            trigger=trigger,
            dry_run=dry_run,
            account=account,
        )
        self._going[run_id] = RunRecord(
            id=run_id, account=account, job=job, scheduled_at=_utc(scheduled_at),
            started_at=aware(started_at), ended_at=None, status=RunStatus.RUNNING, summary=None,
            error=None, attempt=attempt, dry_run=dry_run, trigger=trigger,
        )  # fmt: skip
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        ended_at: datetime,
        summary: str | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Records how a run ended and returns the full record.

        Raises:
            KeyError: no run has this id (pruned, or never recorded).
        """
        values = (RunStatus(status).value, aware(ended_at), clip_text(summary), clip_text(error))
        try:
            with self._transaction() as cur:
                cur.execute(
                    f"UPDATE runs SET status = %s, ended_at = %s, summary = %s, error = %s"
                    f" WHERE id = %s RETURNING {RUN_COLUMNS}".encode(),
                    (*values, run_id),
                )
                row = cur.fetchone()
        except StateUnreachable as exc:
            going = self._going.pop(run_id, None)
            if going is None:
                raise
            with self._lock:
                self._kept_runs.setdefault(run_id, _Unwritten()).end = values
            log.error(
                "%s: run %d ended (%s) but the state database cannot be reached: its end is kept "
                "here and recorded when it is back (%s)",
                going.job,
                run_id,
                values[0],
                exc,
            )
            return replace(
                going, ended_at=values[1], status=RunStatus(status), summary=values[2],
                error=values[3],
            )  # fmt: skip
        self._going.pop(run_id, None)
        if row is None:
            raise KeyError(f"no run with id {run_id}")
        return _record(row)

    def save_job_state(self, job: str, state: Mapping[str, Any], account: str = "default") -> None:
        """Replaces the job's saved state; kept here while the database is out of reach.

        Raises:
            TypeError: a value JSON cannot hold; the message names where it is.
        """
        try:
            super().save_job_state(job, state, account)
        except StateUnreachable as exc:
            text = job_state_json(job, state)
            with self._lock:
                self._kept_states[(account, job)] = (text, datetime.now(UTC))
            log.error(
                "%s: its state cannot be saved, the state database cannot be reached: it is kept "
                "here and saved when it is back (%s)",
                job,
                exc,
            )

    def load_job_state(self, job: str, account: str = "default") -> dict[str, Any]:
        """The job's saved state (the one kept here, while it waits to be written)."""
        with self._lock:
            kept = self._kept_states.get((account, job))
        if kept is not None:
            found: dict[str, Any] = json.loads(kept[0])
            return found
        return super().load_job_state(job, account)

    def save_run_log(self, run_id: int, text: str) -> None:
        """Keeps a run's log lines with its row; kept here while the database is out of reach.

        Raises:
            KeyError: no run has this id.
        """
        with self._lock:
            kept = self._kept_runs.get(run_id)
            if kept is not None:  # its end waits too: both are written together
                kept.log = text
                return
        try:
            super().save_run_log(run_id, text)
        except StateUnreachable:
            with self._lock:
                self._kept_runs.setdefault(run_id, _Unwritten()).log = text

    def mark_interrupted(self, now: datetime, *, own: bool = False) -> int:
        """Ends as FAILED the runs left RUNNING by a process that no longer holds its session.

        A run's owner is alive while its owner lock is held, by a process on any machine; with
        `own`, this store's own running runs are ended too. Returns how many were marked.
        """
        ended = aware(now)
        with self._transaction() as cur:
            cur.execute(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid::bigint = %s AND objsubid = 2 AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (OWNER_LOCKS,),
            )
            alive = {f"pg:{key}" for (key,) in cur.fetchall()}
            if own:
                alive.discard(self._owner)
            cur.execute(
                "UPDATE runs SET status = %s, ended_at = %s, error = %s"
                " WHERE status = 'running' AND (owner IS NULL OR NOT owner = ANY(%s))",
                (RunStatus.FAILED.value, ended, INTERRUPTED, sorted(alive)),
            )
            return cur.rowcount + self._end_dead_claims(cur, ended, alive.__contains__)

    def flush(self) -> None:
        """Reconnects (re-taking the owner lock) and writes what was kept; see `StateStore`."""
        with self._lock, self._translated("reach"):
            self._connection().execute("SELECT 1")

    def close(self) -> None:
        """Closes the connection (ending this store's owner lock); further calls fail."""
        with self._lock:
            if (self._kept_runs or self._kept_states or self._kept_tokens) and not self._closed:
                self._keep_at_stop()
            self._closed = True
            if self._db is not None:
                self._db.close()

    def _keep_at_stop(self) -> None:
        """The stop with the database still out of reach: kept in the spool, or said lost."""
        runs = ", ".join(map(str, sorted(self._kept_runs)))
        jobs = ", ".join(sorted(job for _, job in self._kept_states))
        accounts = ", ".join(sorted(self._kept_tokens))
        kept = [
            f"the end of run(s) {runs}" if runs else "",
            f"the state of job(s) {jobs}" if jobs else "",
            f"the new refresh token of account(s) {accounts}" if accounts else "",
        ]
        what = ", ".join(part for part in kept if part)
        problem = "no state_dir to keep them in"
        if self._spool is not None:
            try:
                self._keep_in_spool(self._spool)
            except OSError as exc:
                problem = f"cannot keep them in {self._spool}: {describe_os_error(exc)}"
            else:
                log.error(
                    "the state database %s was still out of reach at the stop: %s: kept in %s and "
                    "written at the next start",
                    self.where,
                    what,
                    self._spool,
                )
                return
        log.error(
            "the state database %s was still out of reach at the stop (%s): not recorded: %s "
            "(runs show as interrupted, jobs start from the state saved before, an account whose "
            "token is lost needs 'spotify-runner auth')",
            self.where,
            problem,
            what,
        )


# A token stored for an account (its row exists): the version tells other processes it changed.
STORE_TOKEN = (
    "UPDATE tokens SET token = %s, version = version + 1, updated_at = now() WHERE account = %s"
)

# What reading a spool file that is not one raises.
_DAMAGED = (ValueError, LookupError, TypeError, AttributeError)

# A kept job state is written unless the row is newer (the other daemon ran the job since).
_UNLESS_NEWER = " WHERE job_state.updated_at < excluded.updated_at"


def _digest(refresh_token: str) -> str:
    """What the spool says of a spent refresh token: enough to recognise it, not to use it."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _spool_text(
    database: str,
    runs: Mapping[int, _Unwritten],
    states: Mapping[tuple[str, str], tuple[str, datetime]],
    tokens: Mapping[str, tuple[str, str]],
) -> bytes:
    data = {
        "version": 1,
        "database": database,
        "runs": {
            str(run_id): {
                "end": None
                if kept.end is None
                else [kept.end[0], kept.end[1].isoformat(), kept.end[2], kept.end[3]],
                "log": kept.log,
            }
            for run_id, kept in runs.items()
        },
        "states": [
            [account, job, text, saved_at.isoformat()]
            for (account, job), (text, saved_at) in states.items()
        ],
        "tokens": [[account, text, replaces] for account, (text, replaces) in tokens.items()],
    }
    return json.dumps(data, indent=1).encode()


def _parse_spool(
    text: str,
) -> tuple[
    str,
    dict[int, _Unwritten],
    dict[tuple[str, str], tuple[str, datetime]],
    dict[str, tuple[str, str]],
]:
    """(database, runs, job states, tokens) of a spool file.

    Raises:
        ValueError, LookupError, TypeError, AttributeError: it is not one (`_DAMAGED`).
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("version") != 1:
        raise ValueError(f"unknown version {data.get('version')!r}")
    runs: dict[int, _Unwritten] = {}
    for key, value in data["runs"].items():
        end = value["end"]
        runs[int(key)] = _Unwritten(
            end=None
            if end is None
            else (str(end[0]), datetime.fromisoformat(end[1]), end[2], end[3]),
            log=value["log"],
        )
    states = {
        (str(account), str(job)): (str(state), datetime.fromisoformat(saved_at))
        for account, job, state, saved_at in data["states"]
    }
    tokens = {
        str(account): (str(token), str(replaces))
        for account, token, replaces in data.get("tokens", [])
    }
    return str(data["database"]), runs, states, tokens


@dataclass
class _Unwritten:
    """What could not be written of one run while the database was out of reach."""

    end: tuple[str, datetime, str | None, str | None] | None = None
    log: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _record(row: tuple[Any, ...]) -> RunRecord:
    return record_from_row(row, _utc)
