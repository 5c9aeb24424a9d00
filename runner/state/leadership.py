"""Which daemon is active: a session advisory lock on a dedicated PostgreSQL connection.

The lead is the lock itself, held by PostgreSQL for as long as the active daemon's session
lives: no clocks, no home-made consensus. A daemon killed (SIGKILL, power cut) loses its session,
and with it the lock, as soon as the server notices the connection gone; TCP keepalives and a
user timeout bound that to seconds for a network cut too. A standby polls with
`pg_try_advisory_lock` and so takes over within one poll of that. An active daemon whose own
connection broke has lost the lead by definition (the server dropped its lock) and must stop
starting runs; it can take the lead again only by winning the lock like anyone else.

The `leadership` row records who leads (node name, process) and since when, with an epoch that
counts hand-overs; it is for display (`jobs`, `/healthz`), never for deciding.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from runner.state.contract import StateError
from runner.state.postgres import PostgresStateStore, connect, first_line, safe_url

LEADER_LOCK = 0x5352_0003

log = logging.getLogger("runner.leadership")


@dataclass(frozen=True)
class Leader:
    """Who leads, as the leadership row records it.

    Attributes:
        node: the active daemon's node name (`state.node`).
        owner: host, PID and a random tag: tells two daemons with one node name apart.
        since: when it took the lead.
        epoch: how many times the lead was taken, this one included.
    """

    node: str
    owner: str
    since: datetime
    epoch: int


class Leadership:
    """This daemon's bid for the lead in the state database.

    Args:
        url: the state database.
        node: this daemon's name (need not be unique).
        password: when not in the URL.
    """

    def __init__(
        self,
        url: str,
        node: str,
        *,
        password: str | None = None,
        grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.where = safe_url(url)
        self.node = node
        self.grace = grace
        self._clock = clock
        # While the database is unreachable: when (monotonic) this active daemon lost it.
        self.lost_at: float | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._password = password
        self._db: psycopg.Connection | None = None
        # The main loop bids and checks; job threads confirm the lead before a run starts.
        self._mutex = threading.RLock()
        self.leading_since: datetime | None = None
        # When this daemon last found the lead taken by another: a takeover soon after it is a
        # failover, whose gap the new active daemon makes good (`runner.schedule.failover_gap`).
        self.other_led_at: datetime | None = None
        # When (monotonic) this daemon last could not reach the database to bid: a takeover
        # soon after it follows an outage that the old active daemon may be coming back from.
        self.unreachable_at: float | None = None
        # The schema (the leadership table) is the state store's to create.
        PostgresStateStore(url, password=password, readonly=True).close()

    def __repr__(self) -> str:
        return f"Leadership({self.where!r}, node={self.node!r}, leading={self.leading})"

    @property
    def leading(self) -> bool:
        """True while this daemon holds the lead (as of the last `try_lead`/`check`)."""
        return self.leading_since is not None

    def try_lead(self) -> bool:
        """Takes the lead if nobody holds it; True when this daemon leads now."""
        with self._mutex:
            if self.leading:
                return self.check()
            return self._bid() is True

    def confirm(self) -> bool:
        """Whether the lead is ours right now, asked of the database: before any run starts.

        True only while the session that holds the lock answers. One that broke is `check`'s:
        in its grace the lock may be won back (True), or another daemon holds it now (False,
        and this daemon no longer leads). A daemon coming back from a network cut that ended
        its session would otherwise start a run in the moment before its next check, beside
        the daemon that took over.
        """
        with self._mutex:
            if self.leading_since is None:
                return False
            if self.lost_at is None and self._db is not None:
                try:
                    self._db.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    pass  # `_check` finds it broken too, and says so
            return self._check() and self.lost_at is None

    def _bid(self, *, quiet: bool = False) -> bool | None:
        """One `pg_try_advisory_lock`: True won, False someone else leads, None unreachable."""
        try:
            if self._db is None or self._db.closed or self._db.broken:
                self._close_db()
                # With `connect`'s TCP settings on both ends, the server drops a vanished
                # daemon's session, and so its lock, within seconds: the standby takes over.
                self._db = connect(self.url, self._password, purpose="leadership", timeout=5)
            row = self._db.execute("SELECT pg_try_advisory_lock(%s, 0)", (LEADER_LOCK,)).fetchone()
            if not (row and row[0]):
                self.other_led_at = datetime.now(UTC)
                return False
            since = datetime.now(UTC)
            self._db.execute(
                "INSERT INTO leadership (id, node, owner, since, epoch) VALUES (1, %s, %s, %s, 1)"
                " ON CONFLICT (id) DO UPDATE SET node = excluded.node, owner = excluded.owner,"
                " since = excluded.since, epoch = leadership.epoch + 1",
                (self.node, self.owner, since),
            )
        except (psycopg.Error, StateError) as exc:  # StateError: `connect` could not
            self.unreachable_at = self._clock()
            if not quiet:
                log.warning(
                    "cannot reach the state database %s to bid for the lead: %s",
                    self.where,
                    first_line(exc),
                )
            self._close_db()
            return None
        self.leading_since = since
        return True

    def check(self) -> bool:
        """Whether the lead is still ours: our session (and so its lock) is alive.

        A broken session has lost the lock. For `grace` seconds the daemon still counts as
        active (its schedule stays, but no run starts until the lock is won back: `confirm`)
        and bids to win the lock back; it stands by at once when another daemon won it, or
        when the grace runs out.
        """
        with self._mutex:
            return self._check()

    def _check(self) -> bool:
        if not self.leading:
            return False
        if self.lost_at is None:
            try:
                assert self._db is not None
                self._db.execute("SELECT 1")
                return True
            except (psycopg.Error, AssertionError) as exc:
                self._close_db()
                self.lost_at = self._clock()
                log.error(
                    "lost the connection to the state database %s (%s): node %s keeps its "
                    "schedule for up to %.0fs (state.grace) but starts no run it cannot claim "
                    "there, then stands by; fix: make the database reachable again (is "
                    "PostgreSQL running? the network to it?)",
                    self.where,
                    first_line(exc),
                    self.node,
                    self.grace,
                )
        outcome = self._bid(quiet=True)
        lost_for = self._clock() - self.lost_at
        if outcome is True:
            log.warning(
                "reached the state database %s again after %.0fs: node %s is still active",
                self.where,
                lost_for,
                self.node,
            )
            self.lost_at = None
            return True
        if outcome is False:
            log.error(
                "the state database %s is back, but another daemon leads now: node %s stands by",
                self.where,
                self.node,
            )
        elif lost_for >= self.grace:
            log.error(
                "the state database %s is still unreachable after %.0fs (state.grace): node %s "
                "stands by and starts no runs until it wins the lead again",
                self.where,
                lost_for,
                self.node,
            )
        else:
            return True
        self._drop()
        return False

    def current(self) -> Leader | None:
        """Who leads, from the leadership row (None before anyone has led)."""
        return read_leader(self.url, self._password)

    def _drop(self) -> None:
        self.leading_since = None
        self.lost_at = None
        self._close_db()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def close(self) -> None:
        """Gives the lead up (closing the session releases the lock)."""
        with self._mutex:
            self._drop()


def read_leader(url: str, password: str | None = None) -> Leader | None:
    """The leadership row of the database at `url`, if the lock's holder is alive.

    Raises:
        StateError: the database cannot be reached.
    """
    try:
        with psycopg.connect(url, password=password, autocommit=True, connect_timeout=5) as db:
            held = db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid::bigint = %s AND objsubid = 2 AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (LEADER_LOCK,),
            ).fetchone()
            row = db.execute("SELECT node, owner, since, epoch FROM leadership").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.Error as exc:
        raise StateError(
            f"cannot read the leadership of {safe_url(url)}: {first_line(exc)}"
        ) from None
    if row is None or not held or not held[0]:
        return None
    node, owner, since, epoch = row
    return Leader(node=node, owner=owner, since=since.astimezone(UTC), epoch=int(epoch))
