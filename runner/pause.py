"""Paused jobs: kept in the state store, so a pause outlives restarts and reloads.

A paused job keeps its schedule (and `jobs` still shows its next run), but the daemon does not
start its scheduled, retried or caught-up runs until it is resumed. A manual run (`run-job`,
**Run now**) is a person's explicit request and still runs. The daemon reads the pause when a
run comes due, so `spotify-runner pause JOB` beside a running daemon takes effect at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.state import StateStore

_PREFIX = "paused:"


def _key(job: str, account: str) -> str:
    return f"{_PREFIX}{account}:{job}"


def paused_since(state: StateStore, job: str, account: str) -> datetime | None:
    """When `job` (of `account`) was paused, or None when it is not paused."""
    found = state.recall(_key(job, account))
    if not found:
        return None
    try:
        return datetime.fromisoformat(str(found["since"]))
    except (KeyError, ValueError):
        # Paused, by a record we cannot read: still paused (a resume clears it).
        return datetime.fromtimestamp(0, UTC)


def is_paused(state: StateStore, job: str, account: str) -> bool:
    """True when `job` (of `account`) is paused."""
    return paused_since(state, job, account) is not None


def pause(state: StateStore, job: str, account: str, *, now: datetime | None = None) -> bool:
    """Pauses `job`; returns False when it already was (the first pause's time is kept)."""
    if is_paused(state, job, account):
        return False
    since = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    value: dict[str, Any] = {"since": since}
    state.remember(_key(job, account), value)
    return True


def resume(state: StateStore, job: str, account: str) -> bool:
    """Resumes `job`; returns False when it was not paused."""
    if not is_paused(state, job, account):
        return False
    state.remember(_key(job, account), None)
    return True
