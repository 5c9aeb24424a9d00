"""`StateStore` in one SQLite file: the default backend, needing nothing installed.

Datetimes are stored as fixed-width ISO-8601 UTC text, so they sort as text and stay readable in
`sqlite3`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.files import describe_os_error, private_dir
from runner.lock import pid_alive
from runner.state.contract import (
    INTERRUPTED,
    RUN_COLUMNS,
    RunRecord,
    RunStatus,
    StateError,
    aware,
    clip_text,
    record_from_row,
)
from runner.state.sql import SqlStore

STATE_FILE = "state.sqlite3"
# How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT = 10.0
SCHEMA_VERSION = 4

log = logging.getLogger("runner.state")


_SCHEMA = """
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account      TEXT    NOT NULL,
    job          TEXT    NOT NULL,
    scheduled_at TEXT,
    started_at   TEXT    NOT NULL,
    ended_at     TEXT,
    status       TEXT    NOT NULL,
    summary      TEXT,
    error        TEXT,
    attempt      INTEGER NOT NULL DEFAULT 1,
    dry_run      INTEGER NOT NULL DEFAULT 0,
    trigger      TEXT    NOT NULL,
    owner        TEXT
);
CREATE INDEX runs_by_job ON runs (account, job, id);
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
CREATE TABLE job_state (
    account    TEXT NOT NULL,
    job        TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account, job)
);
"""

# Version 2: each run keeps its own log lines; the daemon's outage memory (which incidents were
# notified) survives restarts.
_SCHEMA_2 = """
ALTER TABLE runs ADD COLUMN log TEXT;
CREATE TABLE memory (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# Version 3: claims. A run claims its (job, scheduled time) before it starts; the unique key makes
# a second claim of one fire time fail, even from a second daemon during a failover.
_SCHEMA_3 = """
CREATE TABLE claims (
    account      TEXT NOT NULL,
    job          TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    kind         TEXT NOT NULL,
    node         TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    PRIMARY KEY (account, job, scheduled_at, kind)
);
"""

# Version 4: a claim knows its claimant (the run owner) and, once started, its run. A claim whose
# claimant died before recording any run is found by `mark_interrupted` (see `SqlStore`).
_SCHEMA_4 = """
ALTER TABLE claims ADD COLUMN owner TEXT;
ALTER TABLE claims ADD COLUMN run_id INTEGER;
CREATE INDEX claims_pending ON claims (owner) WHERE run_id IS NULL
"""


class SqliteStateStore(SqlStore):
    """`StateStore` in one SQLite file, in WAL mode.

    One connection serialised by a lock serves all of the daemon's threads; WAL lets another
    process (the `jobs` command) read while the daemon writes, and `busy_timeout` makes a second
    writer (`run-job` next to a running daemon) wait instead of failing. The file is created 0600:
    job state may hold things the user considers private. History is bounded: after each insert
    only the newest `keep_runs` runs of that job and account are kept.

    Args:
        path: the database file; its directory must exist.
        keep_runs: how many runs to keep per job and account.

    Raises:
        StateError: the file was written by a newer version, or is not a database.
    """

    def __init__(self, path: Path, *, keep_runs: int = 1000, readonly: bool = False) -> None:
        if keep_runs < 1:
            raise ValueError("keep_runs must be at least 1")
        self.path = Path(path)
        self.where = str(self.path)
        self.fix_tool = "sqlite3"
        self.keep_runs = keep_runs
        self.readonly = readonly
        # Re-entrant: noticing a replaced file reconnects (and migrates) under the same lock.
        self._lock = threading.RLock()
        self._owner = _process_identity()
        self._identity: tuple[int, int] | None = None
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        """Opens the file (creating it unless read-only) and brings its schema up to date."""
        try:
            if self.readonly:
                db = self._connect_readonly()
            else:
                _create_private(self.path)
                # isolation_level=None: we issue BEGIN ourselves, so a transaction is exactly
                # what the code shows and never left open between calls.
                db = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
                )
        except OSError as exc:
            raise StateError(
                f"cannot open the state database {self.path}: {describe_os_error(exc)}"
            ) from None
        except sqlite3.Error as exc:
            raise self._explain(exc) from None
        try:
            self._setup(db)
        except sqlite3.Error as exc:
            db.close()
            raise self._explain(exc) from None
        except BaseException:
            db.close()
            raise
        self._identity = _identity(self.path)
        return db

    def _connect_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            # Nothing recorded yet: an empty store in memory, so readers show "never".
            return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        # A WAL database opened read-only needs its -shm file writable; in a read-only
        # folder nobody can be writing, so `immutable` is both safe and the only way in.
        mode = "ro" if os.access(self.path.parent, os.W_OK) else "ro&immutable=1"
        uri = f"{self.path.resolve().as_uri()}?mode={mode}"
        return sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )

    def _explain(self, exc: sqlite3.Error, doing: str = "use") -> StateError:
        """A StateError that says what is wrong with the file and what to do, in one line."""
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        text = str(exc)
        where = f"the state database {self.path}"
        io_error = name.startswith("SQLITE_IOERR") or "disk I/O error" in text
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            problem = "the disk is full: free some space"
        elif io_error and _disk_full(self.path):
            # SQLite reports some writes on a full disk as a plain I/O error.
            problem = "the disk is full: free some space"
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            problem = (
                f"another process has kept it locked for more than {BUSY_TIMEOUT:g}s: "
                "stop whatever holds it (a stuck sqlite3 shell?) and try again"
            )
        elif name.startswith("SQLITE_READONLY") or "readonly" in text:
            problem = f"is read-only: make {self.path.parent} writable"
        elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
            problem = (
                "is corrupt: move it away to start a new one (its history and job state stay "
                "in the moved file), or restore a backup"
            )
        elif name.startswith("SQLITE_CANTOPEN"):
            problem = f"cannot be opened: check that {self.path.parent} exists and is writable"
        elif io_error:
            problem = "a disk I/O error: check the disk"
        else:
            problem = text
        return StateError(f"cannot {doing} {where}: {problem}")

    # -- set-up -----------------------------------------------------------------------------

    def _setup(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if self.readonly:
            self.schema_version = self._schema_version(db)
            if self.schema_version == 0:
                self._migrate(db)  # only ever an empty store in memory
            return
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"{self.path}: cannot switch to WAL mode (got {mode})")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can lose
        # the last transactions, which for run history is an acceptable trade for fewer fsyncs.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        # Checked before taking the write lock, so a reader (`jobs`) opening the store while
        # the daemon is mid-write does not queue behind it for an up-to-date schema.
        if self._schema_version(db) == SCHEMA_VERSION:
            return
        self._migrate(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        with self._transaction(db) as cur:
            version = self._schema_version(cur)
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cur.execute(statement)
            if version < 2:
                for statement in _SCHEMA_2.split(";"):
                    if statement.strip():
                        cur.execute(statement)
            if version < 3:
                for statement in _SCHEMA_3.split(";"):
                    if statement.strip():
                        cur.execute(statement)
            if version < 4:
                for statement in _SCHEMA_4.split(";"):
                    if statement.strip():
                        cur.execute(statement)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            # Future migrations go here: `if version < 5: ...`, each in this transaction.

    def _schema_version(self, db: sqlite3.Connection | sqlite3.Cursor) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path} was written by a newer spotify-runner (schema {version}, this "
                f"version knows {SCHEMA_VERSION}): upgrade spotify-runner"
            )
        return version

    @contextmanager
    def _transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Cursor]:
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout rather
        # than one failing with "database is locked" when it upgrades a read lock.
        with self._lock, self._translated("write to"):
            if db is None:
                self._check_identity()
                db = self._db
            cur = db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                with suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._translated("read"):
            self._check_identity()
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """SQLite's errors as one-line `StateError`s (exit 2) that say what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.ProgrammingError):
                raise  # our bug (a closed store), not the file's
            raise self._explain(exc, doing) from None

    def _time(self, value: Any) -> datetime | None:
        return _parse(value)

    def _stamp(self, value: datetime) -> Any:
        return _ts(value)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._transaction() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def _execute(self, cur: Any, sql: str, params: tuple[Any, ...]) -> Any:
        return cur.execute(sql, params)

    def _insert(self, cur: Any, sql: str, params: tuple[Any, ...]) -> int:
        run_id = cur.execute(sql, params).lastrowid
        assert run_id is not None
        return int(run_id)

    # -- the file's identity ----------------------------------------------------------------

    def _check_identity(self) -> None:
        """Notices the file deleted or replaced while open, and recreates it (caller locks).

        A deleted file stays readable through the open connection until it is closed, so its
        content is copied into a new file at the same path: nothing recorded so far is lost.
        """
        if self.readonly or self._identity is None:
            return
        now = _identity(self.path)
        if now == self._identity:
            return
        old = self._db
        # Everything in the write-ahead log goes into the old file first, and the log is
        # emptied: a -wal left at the path would otherwise be read as the new file's.
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.recreate")
        if now is None:
            # A deleted file stays readable through the open connection: copy it whole.
            _create_private(tmp)
            copy = sqlite3.connect(tmp, isolation_level=None)
            try:
                old.backup(copy)
                # In WAL mode before it is in place: switching later takes an exclusive lock
                # that any reader opening it meanwhile (`jobs`) would contend for.
                copy.execute("PRAGMA journal_mode = WAL")
            finally:
                copy.close()
        old.close()
        for suffix in ("-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        if now is None:
            os.replace(tmp, self.path)
        self._db = self._connect()
        # Said once it is done, so whoever reads the log next finds the file in place.
        if now is None:
            log.error(
                "the state database %s was deleted while in use: recreated it with "
                "everything recorded so far",
                self.path,
            )
        else:
            log.error(
                "the state database %s was replaced by another file while in use: using the "
                "new file from now on",
                self.path,
            )

    # -- runs -------------------------------------------------------------------------------

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
        with self._transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = ?, ended_at = ?, summary = ?, error = ? WHERE id = ?",
                (
                    RunStatus(status).value,
                    _ts(ended_at),
                    clip_text(summary),
                    clip_text(error),
                    run_id,
                ),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no run with id {run_id}")
            row = cur.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row)

    def mark_interrupted(self, now: datetime, *, own: bool = False) -> int:
        """Ends as FAILED the runs left RUNNING by a process that no longer exists.

        Runs owned by a live process (a `run-job` next to the daemon, or this process itself)
        are left alone, so calling this at daemon start never rewrites a run still going.
        With `own`, this process's runs are ended too: a daemon stopping without them.
        Returns how many runs were marked.
        """
        ended = _ts(now)
        with self._transaction() as cur:
            rows = cur.execute("SELECT id, owner FROM runs WHERE status = 'running'").fetchall()

            def alive(owner: str | None) -> bool:
                return not (own and owner == self._owner) and _owner_alive(owner, self._owner)

            stale = [run_id for run_id, owner in rows if not alive(owner)]
            cur.executemany(
                "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                [(RunStatus.FAILED.value, ended, INTERRUPTED, run_id) for run_id in stale],
            )
            never_started = self._end_dead_claims(cur, ended, alive)
        return len(stale) + never_started

    def flush(self) -> None:
        """Nothing to do: a file does not go out of reach, and nothing is kept back."""

    def keep_token(self, account: str, token: Mapping[str, Any], replaces: str) -> str | None:
        """Cannot: the token files are refused by the same disk (see `StateStore`)."""
        del account, token, replaces
        return None

    def close(self) -> None:
        """Closes the connection; further calls raise sqlite3.ProgrammingError."""
        with self._lock:
            self._db.close()


def open_state(state_dir: Path, *, readonly: bool = False) -> SqliteStateStore:
    """Opens (creating when needed) the store in `state_dir`, creating the directory 0700.

    Args:
        state_dir: the folder of `state.sqlite3`.
        readonly: for readers (`jobs`, `history`): creates nothing, writes nothing, and works
            on a read-only file system; without a file yet it is an empty store.

    Raises:
        StateError: the folder cannot be made, or the file cannot be used (one line, exit 2).
    """
    state_dir = Path(state_dir)
    if readonly:
        store = SqliteStateStore(state_dir / STATE_FILE, readonly=True)
        if store.schema_version < SCHEMA_VERSION and os.access(state_dir, os.W_OK):
            # Written by an older version: upgrade it once (a writer's job), then read.
            store.close()
            SqliteStateStore(state_dir / STATE_FILE).close()
            store = SqliteStateStore(state_dir / STATE_FILE, readonly=True)
        return store
    try:
        private_dir(state_dir)
    except OSError as exc:
        raise StateError(
            f"cannot create the state folder {state_dir}: {describe_os_error(exc)}"
        ) from None
    return SqliteStateStore(state_dir / STATE_FILE)


# -- helpers --------------------------------------------------------------------------------


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _disk_full(path: Path) -> bool:
    """True when the file system holding `path` has no block left for us."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail == 0


def _create_private(path: Path) -> None:
    # Create the file ourselves so it is 0600 from its first moment; SQLite gives its -wal and
    # -shm files the database file's permissions.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _ts(value: datetime) -> str:
    return aware(value).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _record(row: tuple[Any, ...]) -> RunRecord:
    return record_from_row(row, _parse)


def _process_identity(pid: int | None = None) -> str:
    """`pid:start-time` of a process: unlike a bare PID, it is not reused by a later process."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid) or ''}"


def _start_time(pid: int) -> str | None:
    # Field 22 of /proc/PID/stat, in clock ticks since boot; the command name (field 2) may
    # contain spaces and parentheses, so split after its closing parenthesis.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _owner_alive(owner: str | None, me: str) -> bool:
    if not owner:
        return False
    if owner == me:
        return True
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        # Our PID but another start time: a previous process that had our PID (containers
        # start the daemon as PID 1 every time).
        return False
    if started:
        now_started = _start_time(pid)
        if now_started is not None or os.path.isdir("/proc/self"):
            return now_started == started
    return pid_alive(pid)
