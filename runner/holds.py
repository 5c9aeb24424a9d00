"""The app-wide hold after Spotify says 429: how long it lasts, kept in the state store.

Spotify's rate limit is per app, and since 2026-07-23 every development-mode app of one developer
shares one quota; a run during a hold would only meet another 429 and prolong it. So a 429 that
ends a run holds every job: for its `Retry-After` when it has one, and for a long, doubling
back-off when it has none (`QUOTA_EXCEEDED`: 5 minutes, then 10, 20... up to 6 hours, until a run
succeeds again). The hold is kept in the state store, so a restart (or a `run-job`) respects it
instead of hammering a spent quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runner.durations import format_duration
from runner.state import StateStore

HOLD_KEY = "spotify_rate_limit_hold"
QUOTA_FIRST_HOLD = 300.0
QUOTA_MAX_HOLD = 6 * 3600.0


@dataclass(frozen=True)
class Hold:
    """Every job waits until `until`.

    Attributes:
        until: when runs may start again (timezone-aware).
        reason: why, in a few words (`Retry-After 3600s`, `quota spent (QUOTA_EXCEEDED)`).
        quota_step: seconds of the last back-off without a `Retry-After`; the next one doubles
            it. None for a hold that Spotify timed itself.
    """

    until: datetime
    reason: str
    quota_step: float | None = None

    def active(self, now: datetime) -> bool:
        """True while runs must wait."""
        return now < self.until

    def to_json(self) -> dict[str, Any]:
        """The state store's form."""
        return {
            "until": self.until.isoformat(),
            "reason": self.reason,
            "quota_step": self.quota_step,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold | None:
        """Parses the stored form; None for anything malformed (a hold is advice, not data)."""
        try:
            until = datetime.fromisoformat(str(data["until"]))
            step = data.get("quota_step")
            if until.tzinfo is None or not (step is None or isinstance(step, int | float)):
                return None
            return cls(until, str(data.get("reason") or "rate-limited"), step)
        except (KeyError, ValueError):
            return None


def current_hold(state: StateStore, now: datetime) -> Hold | None:
    """The hold in force at `now`, or None."""
    data = state.recall(HOLD_KEY)
    hold = Hold.from_json(data) if data is not None else None
    return hold if hold is not None and hold.active(now) else None


def record_hold(state: StateStore, now: datetime, retry_after: float | None) -> Hold:
    """Holds every job after a 429 and returns the hold now in force.

    Args:
        state: where the hold is kept.
        now: the time of the 429.
        retry_after: Spotify's `Retry-After` in seconds; None when it sent none (its shared
            quota is spent): then the last such back-off is doubled, from 5 minutes to 6 hours.
    """
    data = state.recall(HOLD_KEY)
    previous = Hold.from_json(data) if data is not None else None
    if retry_after is None:
        last = previous.quota_step if previous is not None else None
        step = QUOTA_FIRST_HOLD if last is None else min(last * 2, QUOTA_MAX_HOLD)
        hold = Hold(now + timedelta(seconds=step), "quota spent (QUOTA_EXCEEDED)", step)
    else:
        shown = format_duration(timedelta(seconds=round(retry_after)))
        step_kept = previous.quota_step if previous is not None else None
        hold = Hold(now + timedelta(seconds=retry_after), f"Retry-After {shown}", step_kept)
    if previous is not None and previous.active(now) and previous.until > hold.until:
        hold = Hold(previous.until, previous.reason, hold.quota_step)  # never shortened
    state.remember(HOLD_KEY, hold.to_json())
    return hold


def clear_after_success(state: StateStore, now: datetime) -> None:
    """A run went through: the quota is back, so the next back-off starts short again."""
    data = state.recall(HOLD_KEY)
    if data is None:
        return
    hold = Hold.from_json(data)
    if hold is None or not hold.active(now):
        state.remember(HOLD_KEY, None)
