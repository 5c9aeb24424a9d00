"""The incident rules: one message per outage, one per recovery, remembered across restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner.notify.incidents import Incidents, Message, incident_signature
from runner.state import RunRecord, RunStatus, SqliteStateStore, open_state

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    state = open_state(tmp_path)
    try:
        yield state
    finally:
        state.close()


def run(
    rules: Incidents,
    store: SqliteStateStore,
    status: RunStatus,
    *,
    job: str = "radio",
    account: str = "default",
    error: str | None = None,
    final: bool = True,
    notify: bool = True,
) -> list[Message]:
    """Records one run the way the executor does and asks the rules about it."""
    now = rules.now()
    run_id = store.start_run(job, scheduled_at=now, started_at=now, account=account)
    if error is None and status is not RunStatus.OK:
        error = "Spotify refused /v1/playlists/37i9dQZF1DXcBWIGoYBM5M (not your playlist?)"
    record = store.finish_run(
        run_id,
        status,
        ended_at=now,
        summary="+3 -1" if status is RunStatus.OK else None,
        error=error,
    )
    return rules.after_run(record, final=final, notify=notify, next_run=now + timedelta(hours=1))


def events(messages: list[Message]) -> list[str]:
    return [m.event for m in messages]


def test_an_outage_notifies_once_and_its_end_once(store: SqliteStateStore) -> None:
    clock = Clock()
    rules = Incidents(store, now=clock)
    first = run(rules, store, RunStatus.FAILED)
    assert events(first) == ["failed"]
    (message,) = first
    assert message.job == "radio"
    assert "radio (account default) failed: Spotify refused" in message.body
    assert "Runs failed so far: 1." in message.body
    assert "Next run: 2026-12-01 04:00 UTC." in message.body
    for _ in range(3):
        clock.now += timedelta(minutes=15)
        assert run(rules, store, RunStatus.FAILED) == []
    clock.now += timedelta(minutes=15)
    recovered = run(rules, store, RunStatus.OK)
    assert events(recovered) == ["recovered"]
    assert recovered[0].body == "radio (account default) is ok again: +3 -1"
    assert run(rules, store, RunStatus.OK) == []


def test_a_failure_a_retry_will_repeat_notifies_nothing(store: SqliteStateStore) -> None:
    rules = Incidents(store, now=Clock())
    assert run(rules, store, RunStatus.TRANSIENT, error="HTTP 503", final=False) == []
    assert run(rules, store, RunStatus.OK) == []  # the retry fixed it: no outage, no recovery
    assert run(rules, store, RunStatus.TRANSIENT, error="HTTP 503", final=False) == []
    (message,) = run(rules, store, RunStatus.TRANSIENT, error="HTTP 503", final=True)
    assert "Runs failed so far: 2." in message.body  # the retried run counts too


def test_a_changed_error_is_a_new_incident_but_ids_and_numbers_are_not(
    store: SqliteStateStore,
) -> None:
    rules = Incidents(store, now=Clock())
    assert events(
        run(rules, store, RunStatus.FAILED, error="not found: track 4uLU6hMCjMI75M1A2tKUQC")
    ) == ["failed"]
    assert (
        run(rules, store, RunStatus.FAILED, error="not found: track 7ouMYWpwJ422jRcDASZB7P") == []
    )
    assert run(rules, store, RunStatus.TIMED_OUT, error="timed out after 600s") != []
    assert run(rules, store, RunStatus.TIMED_OUT, error="timed out after 601s") == []
    assert incident_signature("HTTP 503 after 3 attempts") == "HTTP <n> after <n> attempts"


def test_a_long_outage_is_reminded_after_remind_and_never_with_zero(
    store: SqliteStateStore,
) -> None:
    clock = Clock()
    rules = Incidents(store, now=clock, remind=timedelta(hours=24))
    assert events(run(rules, store, RunStatus.FAILED)) == ["failed"]
    clock.now += timedelta(hours=23)
    assert run(rules, store, RunStatus.FAILED) == []
    clock.now += timedelta(hours=1)
    (reminder,) = run(rules, store, RunStatus.FAILED)
    assert reminder.title == "spotify-runner: radio is still failing"
    assert "Runs failed so far: 3." in reminder.body
    never = Incidents(store, now=clock, remind=timedelta(0))
    clock.now += timedelta(days=30)
    assert run(never, store, RunStatus.FAILED) == []


def test_a_restart_mid_outage_neither_repeats_nor_loses_a_message(
    tmp_path: Path,
) -> None:
    clock = Clock()
    before = open_state(tmp_path)
    assert events(run(Incidents(before, now=clock), before, RunStatus.FAILED)) == ["failed"]
    before.close()
    after = open_state(tmp_path)  # a new process: nothing but the store carries over
    try:
        rules = Incidents(after, now=clock)
        assert run(rules, after, RunStatus.FAILED) == []
        assert events(run(rules, after, RunStatus.OK)) == ["recovered"]
    finally:
        after.close()


def test_needs_auth_once_per_account_however_many_jobs(store: SqliteStateStore) -> None:
    rules = Incidents(store, now=Clock())
    error = "authorization expired or revoked: run 'spotify-runner auth'"
    sent = []
    for job in ("radio", "mixtape", "radio", "mixtape"):
        sent += run(rules, store, RunStatus.NEEDS_AUTH, job=job, error=error)
    sent += run(rules, store, RunStatus.NEEDS_AUTH, job="radio", account="bob", error=error)
    assert [(m.event, m.account) for m in sent] == [
        ("needs_auth", "default"),
        ("needs_auth", "bob"),
    ]
    assert "Its jobs wait until you run: spotify-runner auth\n" not in sent[0].body
    assert sent[0].body.endswith("Its jobs wait until you run: spotify-runner auth")
    assert sent[1].body.endswith("spotify-runner auth --account bob")
    # An ok run shows the authorization works again; the next outage notifies again.
    assert run(rules, store, RunStatus.OK, job="radio") == []
    assert events(run(rules, store, RunStatus.NEEDS_AUTH, job="mixtape", error=error)) == [
        "needs_auth"
    ]


def test_a_job_with_notify_false_and_disabled_events_send_nothing(
    store: SqliteStateStore,
) -> None:
    quiet = Incidents(store, now=Clock())
    assert run(quiet, store, RunStatus.FAILED, notify=False) == []
    only_auth = Incidents(store, now=Clock(), events=["needs_auth"])
    assert run(only_auth, store, RunStatus.FAILED, job="mixtape") == []
    assert run(only_auth, store, RunStatus.OK, job="mixtape") == []  # no failure was notified


def test_authorization_end_warns_at_14_3_and_1_days_each_once(tmp_path: Path) -> None:
    clock = Clock()
    ends = T0 + timedelta(days=20)
    store = open_state(tmp_path)
    rules = Incidents(store, now=clock)
    sent: list[Message] = []
    for day in range(25):
        clock.now = T0 + timedelta(days=day, hours=1)
        sent += rules.authorization_ends("default", ends)
        if day == 10:  # a restart in between forgets nothing
            store.close()
            store = open_state(tmp_path)
            rules = Incidents(store, now=clock)
    store.close()
    assert [m.title for m in sent] == [
        "spotify-runner: account default authorization ends in 14d",
        "spotify-runner: account default authorization ends in 3d",
        "spotify-runner: account default authorization ends in 1d",
    ]
    assert "Renew it with: spotify-runner auth" in sent[0].body


def test_a_new_authorization_starts_the_warnings_over(store: SqliteStateStore) -> None:
    clock = Clock()
    rules = Incidents(store, now=clock)
    # Started two days before the end: the 3-day warning only, not the 14-day one as well.
    (late,) = rules.authorization_ends("default", T0 + timedelta(days=2))
    assert late.title.endswith("ends in 2d")
    assert rules.authorization_ends("default", T0 + timedelta(days=2)) == []
    # `auth` was run: the new end is 13.5 days away, and its 14-day warning is due.
    (renewed,) = rules.authorization_ends("default", T0 + timedelta(days=13, hours=12))
    assert renewed.title.endswith("ends in 14d")


def test_two_jobs_meeting_needs_auth_at_once_send_one_message(store: SqliteStateStore) -> None:
    rules = Incidents(store, now=Clock())
    error = "authorization expired or revoked: run 'spotify-runner auth'"
    records = []
    for job in ("radio", "mixtape") * 4:
        run_id = store.start_run(job, scheduled_at=T0, started_at=T0)
        records.append(store.finish_run(run_id, RunStatus.NEEDS_AUTH, ended_at=T0, error=error))
    sent: list[Message] = []
    barrier = threading.Barrier(len(records))

    def finish(record: RunRecord) -> None:
        barrier.wait()
        sent.extend(rules.after_run(record, final=True))

    threads = [threading.Thread(target=finish, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events(sent) == ["needs_auth"]
