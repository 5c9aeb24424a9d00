"""The token store on PostgreSQL: one row per account, refreshed under that row's lock.

Spotify's refresh tokens may be single-use: whoever refreshes first gets a new one and the old
one is dead. Two daemons (or a daemon and `spotify-runner token`) sharing a database must then
never both spend one. `PostgresTokenStore.lock()` is a transaction holding the account's row
`FOR UPDATE`; `TokenManager.refresh` holds it while it reads the stored token, refreshes and
saves the result, so the second machine waits, then reads (and uses) what the first one wrote.

It is a `TokenStore` to the token manager: the same load/signature/lock/reserve/save, with the
row's version number as the signature that tells a manager someone else stored a new token.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg

from runner.state.contract import StateError
from runner.state.postgres import (
    STORE_TOKEN,
    PostgresStateStore,
    connect,
    first_line,
    safe_url,
)
from runner.tokens import (
    StoredToken,
    TokenReservation,
    TokenStore,
    TokenStoreUnreadable,
    parse_stored_token,
)

log = logging.getLogger("runner.tokens")


class DatabaseUnavailable(OSError):
    """The state database did not answer; to the token manager, a store it cannot use now."""

    def __init__(self, where: str, exc: BaseException) -> None:
        # Not EIO: that would read "an I/O error: check the disk" (`describe_os_error`).
        super().__init__(errno.ENOTCONN, f"the state database {where} failed: {first_line(exc)}")


class _NothingReserved(TokenReservation):
    """A database write needs no disk space claimed in advance: nothing to take or release."""

    def __init__(self, store: TokenStore) -> None:
        super().__init__(store, store.path, -1)
        self.fd = None


class PostgresTokenStore(TokenStore):
    """One account's token in the `tokens` table of the state database.

    Args:
        url: the state database (`state.url`).
        account: the account name.
        password: the database password when not in the URL.
    """

    def __init__(self, url: str, account: str = "default", *, password: str | None = None) -> None:
        self.account = account
        self.url = url
        self.where = safe_url(url)
        # For messages only ("token store ..."): where the token is, never a file.
        self.path = Path(f"{self.where.split('://', 1)[-1]}") / "tokens" / account
        self._password = password
        self._mutex = threading.RLock()
        self._depth = 0
        self._db: psycopg.Connection | None = None
        self._schema_ready = False
        self._last_signature: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"PostgresTokenStore({self.where!r}, {self.account!r})"

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        """The store's own connection (caller holds the mutex), made or remade when needed."""
        if self._db is None or self._db.closed or self._db.broken:
            if self._db is not None:
                self._db.close()
            if not self._schema_ready:
                # The state store's set-up creates (or upgrades) the tokens table too.
                PostgresStateStore(self.url, password=self._password, readonly=True).close()
                self._schema_ready = True
            self._db = connect(self.url, self._password, purpose="tokens")
        return self._db

    @contextlib.contextmanager
    def _database(self) -> Iterator[psycopg.Connection]:
        """The connection, with the server's failures as `DatabaseUnavailable` (an OSError)."""
        with self._mutex:
            try:
                yield self._connection()
            except (psycopg.Error, StateError) as exc:
                raise DatabaseUnavailable(self.where, exc) from None

    def close(self) -> None:
        """Closes the store's connection (a later call opens a new one)."""
        with self._mutex:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- TokenStore -------------------------------------------------------------------------

    def load(self) -> StoredToken | None:
        """The stored token, or None when there is none yet.

        Raises:
            AuthorizationNeeded: the stored value is damaged, or the database is unreachable
                (`TokenStoreUnreadable`, which the manager recovers from when it answers).
        """
        try:
            with self._database() as db:
                row = db.execute(
                    "SELECT token FROM tokens WHERE account = %s", (self.account,)
                ).fetchone()
        except DatabaseUnavailable as exc:
            raise TokenStoreUnreadable(self.path, exc) from None
        if row is None or row[0] is None:
            return None
        return parse_stored_token(row[0], self.path)

    def signature(self) -> tuple[int, int, int] | None:
        """The row's version: it changes whenever anyone stores a token for this account.

        While the database does not answer, the last version seen: a blip is not a new token.
        """
        try:
            with self._database() as db:
                row = db.execute(
                    "SELECT version FROM tokens WHERE account = %s AND token IS NOT NULL",
                    (self.account,),
                ).fetchone()
        except DatabaseUnavailable as exc:
            log.warning("cannot check the token store %s: %s", self.path, exc.strerror)
            return self._last_signature
        self._last_signature = None if row is None else (int(row[0]), 0, 0)
        return self._last_signature

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The account's row locked `FOR UPDATE` for the block, across processes and machines.

        Re-entrant in one thread; other threads of this process wait on the store's mutex.

        Raises:
            DatabaseUnavailable: the lock could not be had (an OSError, as a file lock's would).
        """
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._database() as db, db.transaction():
                # The row must exist to be locked; a concurrent first insert waits on the key.
                db.execute(
                    "INSERT INTO tokens (account, version) VALUES (%s, 0)"
                    " ON CONFLICT (account) DO NOTHING",
                    (self.account,),
                )
                db.execute("SELECT 1 FROM tokens WHERE account = %s FOR UPDATE", (self.account,))
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0

    def reserve(self) -> TokenReservation:
        """Nothing to claim: a row update needs no disk space set aside by us."""
        return _NothingReserved(self)

    def save(self, token: StoredToken, reservation: TokenReservation | None = None) -> None:
        """Stores `token`, bumping the row's version, in the lock's transaction if held.

        Raises:
            OSError: the database refused or did not answer (the old token is still in place).
        """
        del reservation
        text = json.dumps(token.to_json())
        with self.lock(), self._database() as db:
            db.execute(STORE_TOKEN, (text, self.account))

    def stored_accounts(self) -> list[str]:
        """The accounts with a token in this database (for `state migrate` and checks)."""
        with self._database() as db:
            rows = db.execute(
                "SELECT account FROM tokens WHERE token IS NOT NULL ORDER BY account"
            ).fetchall()
        return [str(account) for (account,) in rows]
