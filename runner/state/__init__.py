"""Run history and per-job state, behind one small interface.

Everything the daemon remembers between runs goes through `StateStore` (`contract`): SQLite in
`state_dir` by default (`sqlite`), or PostgreSQL when `state.url` names one (`postgres`), for
an active/standby pair of daemons sharing one database. `open_store` picks the backend from
the config; psycopg is imported only when a PostgreSQL URL is configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from runner.state.contract import (
    INTERRUPTED,
    MAX_RUN_LOG,
    MAX_TEXT,
    RunRecord,
    RunStatus,
    StateError,
    StateStore,
    clip_log,
)
from runner.state.sqlite import (
    BUSY_TIMEOUT,
    SCHEMA_VERSION,
    STATE_FILE,
    SqliteStateStore,
    open_state,
)

# In `state_dir`, with state on PostgreSQL: what a stop during an outage could not write.
SPOOL_FILE = "unwritten-state.json"

if TYPE_CHECKING:
    from runner.config import Config
    from runner.state.leadership import Leadership
    from runner.tokens import TokenStore

__all__ = [
    "BUSY_TIMEOUT",
    "INTERRUPTED",
    "MAX_RUN_LOG",
    "MAX_TEXT",
    "SCHEMA_VERSION",
    "SPOOL_FILE",
    "STATE_FILE",
    "RunRecord",
    "RunStatus",
    "SqliteStateStore",
    "StateError",
    "StateStore",
    "clip_log",
    "open_leadership",
    "open_postgres",
    "postgres_token_store",
    "open_state",
    "open_store",
]


def open_store(config: Config, *, readonly: bool = False) -> StateStore:
    """The store the config names: PostgreSQL at `state.url`, else SQLite in `state_dir`.

    Args:
        config: the loaded configuration.
        readonly: for readers (`jobs`, `history`); see `open_state`.

    Raises:
        StateError: the store cannot be opened (one line, exit 2).
    """
    if config.state.url is None:
        return open_state(Path(config.state_dir), readonly=readonly)
    password = config.state.password
    return open_postgres(
        config.state.url,
        password=None if password is None else password.get_secret_value(),
        readonly=readonly,
        spool=Path(config.state_dir) / SPOOL_FILE,  # a reader neither writes nor replays it
    )


def open_leadership(config: Config) -> Leadership | None:
    """This daemon's bid for the lead when the state is on PostgreSQL; None for SQLite.

    Raises:
        StateError: psycopg is not installed, or the database cannot be used.
    """
    if config.state.url is None:
        return None
    with _psycopg_needed():
        from runner.state.leadership import Leadership
    password = config.state.password
    return Leadership(
        config.state.url,
        config.state.node,
        password=None if password is None else password.get_secret_value(),
        grace=config.state.grace.total_seconds(),
    )


def open_postgres(
    url: str, *, password: str | None = None, readonly: bool = False, spool: Path | None = None
) -> StateStore:
    """A `PostgresStateStore` at `url`, importing psycopg only now.

    Raises:
        StateError: psycopg is not installed, or the database cannot be used.
    """
    with _psycopg_needed():
        from runner.state.postgres import PostgresStateStore
    return PostgresStateStore(url, password=password, readonly=readonly, spool=spool)


def postgres_token_store(url: str, account: str, *, password: str | None = None) -> TokenStore:
    """The account's token store in the state database at `url`, importing psycopg only now.

    Raises:
        StateError: psycopg is not installed.
    """
    with _psycopg_needed():
        from runner.state.tokens import PostgresTokenStore
    return PostgresTokenStore(url, account, password=password)


@contextmanager
def _psycopg_needed() -> Iterator[None]:
    try:
        yield
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("psycopg"):
            raise
        raise StateError(
            "state.url names a PostgreSQL database but psycopg is not installed: "
            "pip install 'spotify-runner[postgresql]'"
        ) from None
