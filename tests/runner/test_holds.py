"""The app-wide hold after a 429: doubling without Retry-After, kept in the state store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.holds import (
    QUOTA_FIRST_HOLD,
    QUOTA_MAX_HOLD,
    clear_after_success,
    current_hold,
    record_hold,
)
from runner.state import open_state

T0 = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


def test_a_spent_quota_holds_for_minutes_doubling_up_to_the_cap(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    try:
        now = T0
        steps = []
        for _ in range(10):
            hold = record_hold(state, now, None)
            steps.append((hold.until - now).total_seconds())
            now = hold.until  # the retry at the end of the hold meets the spent quota again
        assert steps[:4] == [QUOTA_FIRST_HOLD, 2 * QUOTA_FIRST_HOLD, 4 * QUOTA_FIRST_HOLD, 2400]
        assert QUOTA_FIRST_HOLD >= 60  # minutes, not seconds
        assert max(steps) == steps[-1] == QUOTA_MAX_HOLD
    finally:
        state.close()


def test_the_hold_survives_a_restart_and_a_success_resets_the_back_off(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    record_hold(state, T0, None)
    second = record_hold(state, T0 + timedelta(minutes=5), None)
    state.close()
    reopened = open_state(tmp_path)  # a restarted daemon
    try:
        held = current_hold(reopened, T0 + timedelta(minutes=6))
        assert held is not None
        assert held.until == second.until
        assert "QUOTA_EXCEEDED" in held.reason
        assert current_hold(reopened, second.until) is None  # over when it says
        clear_after_success(reopened, second.until + timedelta(seconds=1))
        again = record_hold(reopened, second.until + timedelta(minutes=1), None)
        assert again.quota_step == QUOTA_FIRST_HOLD
    finally:
        reopened.close()


def test_every_retry_after_hold_is_kept_and_never_shortened(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    try:
        long = record_hold(state, T0, 3600.0)
        assert long.reason == "Retry-After 1h"
        short = record_hold(state, T0 + timedelta(seconds=1), 30.0)
        assert short.until == long.until
        held = current_hold(state, T0 + timedelta(minutes=30))
        assert held is not None
        assert held.until == T0 + timedelta(hours=1)
    finally:
        state.close()
