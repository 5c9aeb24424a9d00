"""A real PostgreSQL for tests and `make demo-ha`: a scratch database, dropped afterwards.

The server is the machine's own (`$SPOTIFY_RUNNER_TEST_POSTGRES`, by default
`postgresql://postgres@127.0.0.1:5432/test`, trust auth). Nothing here stands in for it: when it
cannot be reached, `unreachable_reason` says exactly why, and the tests that need it skip with
that reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL_VARIABLE = "SPOTIFY_RUNNER_TEST_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    """The URL of a database on the server that may create and drop databases."""
    return os.environ.get(ADMIN_URL_VARIABLE) or DEFAULT_ADMIN_URL


def unreachable_reason() -> str | None:
    """None when the server answers; else why not, in one line."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    url = admin_url()
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as db:
            db.execute("SELECT 1")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (
            f"PostgreSQL is not reachable at {url} ({first}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, "
            f"or set {ADMIN_URL_VARIABLE}"
        )
    return None


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def scratch_database(prefix: str = "spotify_runner_test") -> Iterator[str]:
    """A new, empty database on the server, dropped (with any sessions left) afterwards.

    Yields:
        its URL.
    """
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = admin_url()
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def reset(url: str) -> None:
    """Empties a scratch database: everything in its `public` schema goes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        # Sessions of stores a test left open would block the drop (and hold owner locks).
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
