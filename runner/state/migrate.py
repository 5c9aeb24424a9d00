"""`spotify-runner state migrate --to postgresql://...`: SQLite state into an empty database, once.

Everything is copied as it is, in one transaction: the run history with its ids (so run links
and the ids in logs stay right), job state, the daemon's memory (holds, outages, pauses), the
claims, and each configured account's token. A daemon pointed at the database then continues
where the SQLite one stopped: the catch-up anchors are the copied runs' scheduled times, and no
account needs authorizing again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from runner.config import Config
from runner.state.contract import StateError
from runner.state.postgres import PostgresStateStore, connect
from runner.state.sqlite import STATE_FILE, SqliteStateStore
from runner.tokens import TokenStore

# Table: columns copied, and which of them hold times (ISO text in SQLite).
_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "runs": (
        (
            "id",
            "account",
            "job",
            "scheduled_at",
            "started_at",
            "ended_at",
            "status",
            "summary",
            "error",
            "attempt",
            "dry_run",
            "trigger",
            "owner",
            "log",
        ),
        ("scheduled_at", "started_at", "ended_at"),
    ),
    "job_state": (("account", "job", "state", "updated_at"), ("updated_at",)),
    "memory": (("key", "value", "updated_at"), ("updated_at",)),
    "claims": (
        ("account", "job", "scheduled_at", "kind", "node", "claimed_at", "owner", "run_id"),
        ("scheduled_at", "claimed_at"),
    ),
}


@dataclass(frozen=True)
class Migrated:
    """What was copied: rows per table, and the accounts whose token came along."""

    rows: dict[str, int]
    tokens: list[str]

    def describe(self) -> str:
        """One line for the user."""
        accounts = ", ".join(self.tokens) if self.tokens else "none"
        return (
            f"{self.rows['runs']} run(s), {self.rows['job_state']} job state(s), "
            f"{self.rows['memory']} remembered value(s), {self.rows['claims']} claim(s), "
            f"tokens of {len(self.tokens)} account(s) ({accounts})"
        )


def migrate(config: Config, url: str, password: str | None = None) -> Migrated:
    """Copies the SQLite state of `config.state_dir` (and its token files) into `url`.

    Raises:
        StateError: nothing to copy, the database is not empty, or either side failed; nothing
            is written then.
    """
    source = Path(config.state_dir) / STATE_FILE
    if not source.exists():
        raise StateError(f"no SQLite state to copy: {source} does not exist")
    SqliteStateStore(source).close()  # brings an older file's schema up to date first
    PostgresStateStore(url, password=password).close()  # creates the schema
    tokens = {
        name: token
        for name in config.accounts
        if (token := TokenStore(config.state_dir, name).load()) is not None
    }
    db = connect(url, password, purpose="migrate")
    try:
        with sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True) as lite:
            rows = _copy(lite, db, tokens)
        lite.close()
    except psycopg.Error as exc:
        lines = str(exc).strip().splitlines()
        raise StateError(
            f"copying into the state database failed ({lines[0] if lines else exc}): nothing "
            "was copied"
        ) from None
    finally:
        db.close()
    return Migrated(rows=rows, tokens=sorted(tokens))


def _copy(
    lite: sqlite3.Connection, db: psycopg.Connection, tokens: dict[str, Any]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with db.transaction():
        for table in (*_TABLES, "tokens"):
            found = db.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
            if found and found[0]:
                raise StateError(
                    f"the state database is not empty ({table} has {found[0]} row(s)): "
                    "state migrate copies into an empty database, once"
                )
        for table, (columns, times) in _TABLES.items():
            data = lite.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            converted = [_convert(row, columns, times) for row in data]
            override = " OVERRIDING SYSTEM VALUE" if table == "runs" else ""
            marks = ", ".join(["%s"] * len(columns))
            statement = f"INSERT INTO {table} ({', '.join(columns)}){override} VALUES ({marks})"
            with db.cursor() as cur:
                cur.executemany(statement.encode(), converted)
            counts[table] = len(converted)
        # New runs continue after the copied ids.
        db.execute(
            "SELECT setval(pg_get_serial_sequence('runs', 'id'),"
            " GREATEST((SELECT max(id) FROM runs), 1), (SELECT count(*) > 0 FROM runs))"
        )
        for account, token in tokens.items():
            db.execute(
                "INSERT INTO tokens (account, token, version) VALUES (%s, %s, 1)",
                (account, json.dumps(token.to_json())),
            )
    return counts


def _convert(
    row: tuple[Any, ...], columns: tuple[str, ...], times: tuple[str, ...]
) -> tuple[Any, ...]:
    out = []
    for name, value in zip(columns, row, strict=True):
        if name in times and value is not None:
            value = datetime.fromisoformat(value).astimezone(UTC)
        elif name == "dry_run":
            value = bool(value)
        out.append(value)
    return tuple(out)
