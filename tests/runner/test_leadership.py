"""Leadership on a real PostgreSQL: what a daemon whose session broke may still do.

The server ends a session it finds gone (a network cut: TCP keepalives), and with it the lock
that was the lead; `pg_terminate_backend` does the same here, on purpose, from outside.
"""

from __future__ import annotations

import psycopg
from daemon_world import wait_for

from runner.state.leadership import Leadership


def _end_session(url: str, leadership: Leadership) -> None:
    """What the server does to a vanished daemon's session: ends it, releasing its lock.

    `pg_terminate_backend` only signals the backend; its locks go when it has exited.
    """
    assert leadership._db is not None
    pid = leadership._db.info.backend_pid
    with psycopg.connect(url, autocommit=True) as db:
        assert db.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        wait_for(
            lambda: db.execute("SELECT 1 FROM pg_locks WHERE pid = %s", (pid,)).fetchone() is None,
            10,
            "the ended session's locks to be released",
        )


def test_a_daemon_whose_session_ended_cannot_confirm_a_lead_another_has_taken(
    postgres_url: str,
) -> None:
    """Coming back from a cut, before its next check, the old active daemon may not run."""
    old = Leadership(postgres_url, "a", grace=60)
    new = Leadership(postgres_url, "b", grace=60)
    try:
        assert old.try_lead()
        assert old.confirm()
        assert not new.try_lead()
        assert not new.confirm()
        _end_session(postgres_url, old)
        assert new.try_lead()  # the standby takes over as soon as the lock is free
        # The old one has not checked since: it still thinks it leads, but may not run.
        assert old.leading
        assert not old.confirm()
        assert not old.leading  # found another leading: it stands by at once
        assert new.confirm()
    finally:
        old.close()
        new.close()


def test_a_session_that_broke_is_won_back_when_nobody_took_the_lead(postgres_url: str) -> None:
    """A blip with no standby taking over: the next run confirms by winning the lock back."""
    only = Leadership(postgres_url, "a", grace=60)
    other = Leadership(postgres_url, "b", grace=60)
    try:
        assert only.try_lead()
        _end_session(postgres_url, only)
        assert only.confirm()
        assert only.leading
        assert only.lost_at is None
        assert not other.try_lead()  # the lock is held again
    finally:
        only.close()
        other.close()
