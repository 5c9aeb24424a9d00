"""The `StateStore` contract: one suite, run against SQLite and a real PostgreSQL.

Every backend must pass every test here unchanged (procrastinate's "a backend contract is a test
suite"). The PostgreSQL runs use a scratch database on the machine's server, created for the
test run and dropped after it; they are skipped, with the exact reason, only when the server
cannot be reached. Backend-specific behaviour (files, permissions, WAL, connections) is tested
in `test_state.py` and `test_state_postgres.py`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from runner.state import (
    INTERRUPTED,
    MAX_RUN_LOG,
    RunStatus,
    StateStore,
    open_state,
)
from runner.state.sqlite import SqliteStateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Opener:
    """Opens (again and again) the one store of a test, on the backend under test."""

    def __init__(self, backend: str, where: str) -> None:
        self.backend = backend
        self.where = where
        self.opened: list[StateStore] = []
        self.closed_error: type[Exception] | tuple[type[Exception], ...]
        if backend == "sqlite":
            self.closed_error = sqlite3.ProgrammingError
        else:
            import psycopg

            self.closed_error = psycopg.InterfaceError

    def __call__(self, *, keep_runs: int = 1000) -> StateStore:
        store: StateStore
        if self.backend == "sqlite":
            store = SqliteStateStore(Path(self.where) / "state.sqlite3", keep_runs=keep_runs)
        else:
            from runner.state.postgres import PostgresStateStore

            store = PostgresStateStore(self.where, keep_runs=keep_runs)
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        open_state(tmp_path).close()  # the folder as the daemon makes it
        found = Opener("sqlite", str(tmp_path))
    else:
        found = Opener("postgresql", request.getfixturevalue("postgres_url"))
    yield found
    for store in found.opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> StateStore:
    return opener()


def test_a_run_is_recorded_from_start_to_finish(store: StateStore) -> None:
    run_id = store.start_run(
        "radio", scheduled_at=T0, started_at=T0 + timedelta(seconds=2), attempt=2, trigger="retry"
    )
    running = store.last_run("radio")
    assert running is not None
    assert running.status is RunStatus.RUNNING
    assert running.ended_at is None

    record = store.finish_run(
        run_id, RunStatus.OK, ended_at=T0 + timedelta(seconds=9), summary="added 30 tracks"
    )

    assert record.id == run_id
    assert record.job == "radio"
    assert record.account == "default"
    assert record.scheduled_at == T0
    assert record.started_at == T0 + timedelta(seconds=2)
    assert record.ended_at == T0 + timedelta(seconds=9)
    assert record.status is RunStatus.OK
    assert record.summary == "added 30 tracks"
    assert record.error is None
    assert record.attempt == 2
    assert record.trigger == "retry"
    assert record.dry_run is False
    assert store.last_run("radio") == record


def test_datetimes_come_back_in_utc_whatever_zone_went_in(store: StateStore) -> None:
    berlin = timezone(timedelta(hours=1))
    run_id = store.start_run("radio", scheduled_at=None, started_at=T0.astimezone(berlin))
    record = store.finish_run(run_id, RunStatus.FAILED, ended_at=T0, error="boom")
    assert record.started_at == T0
    assert record.started_at.tzinfo is UTC
    assert record.scheduled_at is None


def test_naive_datetimes_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run("radio", scheduled_at=None, started_at=datetime(2026, 1, 1))


def test_finishing_an_unknown_run_is_an_error(store: StateStore) -> None:
    with pytest.raises(KeyError):
        store.finish_run(12345, RunStatus.OK, ended_at=T0)


def test_runs_are_listed_newest_first_per_job_and_account(store: StateStore) -> None:
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        rid = store.start_run("radio", scheduled_at=at, started_at=at)
        store.finish_run(rid, RunStatus.OK, ended_at=at, summary=f"run {minute}")
    other = store.start_run("hello", scheduled_at=None, started_at=T0, trigger="manual")
    store.start_run("radio", scheduled_at=T0, started_at=T0, account="work")

    assert [r.summary for r in store.runs("radio")] == ["run 2", "run 1", "run 0"]
    assert [r.summary for r in store.runs("radio", limit=2)] == ["run 2", "run 1"]
    assert [r.id for r in store.runs()][0] == other
    assert {r.job for r in store.runs()} == {"radio", "hello"}
    assert [r.account for r in store.runs("radio", account="work")] == ["work"]
    assert store.last_run("nothing") is None


def test_a_skipped_run_is_recorded_with_its_reason(store: StateStore) -> None:
    record = store.record_skipped(
        "radio", scheduled_at=T0, at=T0 + timedelta(seconds=1), reason="previous run still going"
    )
    assert record.status is RunStatus.SKIPPED
    assert record.summary == "previous run still going"
    assert record.started_at == record.ended_at == T0 + timedelta(seconds=1)
    assert store.last_run("radio") == record
    assert record.trigger == "schedule"
    retry = store.record_skipped(
        "radio", scheduled_at=T0, at=T0 + timedelta(seconds=2), reason="held", trigger="retry"
    )
    assert store.last_run("radio") == retry
    assert retry.trigger == "retry"


def test_last_scheduled_at_counts_every_status_but_not_manual_runs(
    store: StateStore,
) -> None:
    assert store.last_scheduled_at("radio") is None
    rid = store.start_run("radio", scheduled_at=T0, started_at=T0)
    store.finish_run(rid, RunStatus.FAILED, ended_at=T0, error="boom")
    store.record_skipped("radio", scheduled_at=T0 + timedelta(hours=1), at=T0, reason="overlap")
    store.start_run("radio", scheduled_at=None, started_at=T0 + timedelta(hours=5))
    store.start_run("radio", scheduled_at=T0 + timedelta(hours=9), started_at=T0, account="work")

    assert store.last_scheduled_at("radio") == T0 + timedelta(hours=1)
    assert store.last_scheduled_at("radio", account="work") == T0 + timedelta(hours=9)


def test_history_is_bounded_per_job(opener: Opener) -> None:
    store = opener(keep_runs=3)
    try:
        for i in range(6):
            at = T0 + timedelta(minutes=i)
            store.record_skipped("radio", scheduled_at=at, at=at, reason=f"r{i}")
        store.record_skipped("hello", scheduled_at=T0, at=T0, reason="kept")

        assert [r.summary for r in store.runs("radio", limit=100)] == ["r5", "r4", "r3"]
        assert [r.summary for r in store.runs("hello")] == ["kept"]
    finally:
        store.close()


def test_pruning_never_removes_a_run_still_going(opener: Opener) -> None:
    store = opener(keep_runs=1)
    try:
        long_one = store.start_run("radio", scheduled_at=T0, started_at=T0)
        for i in range(3):
            store.record_skipped("radio", scheduled_at=T0, at=T0, reason=f"overlap {i}")
        record = store.finish_run(long_one, RunStatus.OK, ended_at=T0)
        assert record.status is RunStatus.OK
    finally:
        store.close()


def test_job_state_round_trips_per_job_and_account(store: StateStore) -> None:
    assert store.load_job_state("radio") == {}
    store.save_job_state("radio", {"seen": ["a", "b"], "count": 2, "nested": {"x": None}})
    store.save_job_state("radio", {"other": True}, account="work")

    assert store.load_job_state("radio") == {"seen": ["a", "b"], "count": 2, "nested": {"x": None}}
    assert store.load_job_state("radio", account="work") == {"other": True}
    assert store.load_job_state("hello") == {}

    store.save_job_state("radio", {"count": 3})
    assert store.load_job_state("radio") == {"count": 3}


def test_a_value_json_cannot_hold_is_refused_with_where_it_is(store: StateStore) -> None:
    store.save_job_state("radio", {"kept": 1})
    with pytest.raises(TypeError, match=r"'radio'.*state\['seen'\]\[1\] \(set\)"):
        store.save_job_state("radio", {"seen": [1, {2, 3}]})
    assert store.load_job_state("radio") == {"kept": 1}


def test_reopening_keeps_the_data(opener: Opener) -> None:
    first = opener()
    rid = first.start_run("radio", scheduled_at=T0, started_at=T0)
    first.finish_run(rid, RunStatus.OK, ended_at=T0, summary="done")
    first.save_job_state("radio", {"n": 1})
    first.close()

    second = opener()
    try:
        last = second.last_run("radio")
        assert last is not None
        assert last.summary == "done"
        assert second.load_job_state("radio") == {"n": 1}
    finally:
        second.close()


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(opener: Opener) -> None:
    # A real other process starts a run and dies without finishing it (a crash).
    code = (
        "import os, sys; from datetime import datetime, UTC; from pathlib import Path;"
        "from runner.state import open_postgres, open_state;"
        "a = sys.argv[1];"
        "s = open_postgres(a) if a.startswith('postgresql') else open_state(Path(a));"
        "s.start_run('radio', scheduled_at=None, started_at=datetime(2026, 3, 1, tzinfo=UTC));"
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, opener.where], check=True, timeout=60)
    store = opener()
    try:
        mine = store.start_run("hello", scheduled_at=None, started_at=T0)

        # PostgreSQL ends the dead process's session (and its owner lock) once it notices the
        # closed socket: a moment, so look again for a while; never more than the one run.
        deadline = time.monotonic() + 20
        marked = store.mark_interrupted(T0 + timedelta(minutes=1))
        while marked == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            marked = store.mark_interrupted(T0 + timedelta(minutes=1))
        assert marked == 1

        crashed = store.last_run("radio")
        assert crashed is not None
        assert crashed.status is RunStatus.FAILED
        assert crashed.error == INTERRUPTED
        assert crashed.ended_at == T0 + timedelta(minutes=1)
        # The run this live process is making is not touched.
        still = store.last_run("hello")
        assert still is not None
        assert still.id == mine
        assert still.status is RunStatus.RUNNING
        assert store.mark_interrupted(T0) == 0
        # Unless the process abandons its own runs (a daemon stopping without them).
        assert store.mark_interrupted(T0, own=True) == 1
        assert store.get_run(mine).status is RunStatus.FAILED  # type: ignore[union-attr]
    finally:
        store.close()


def test_many_threads_record_runs_at_once(store: StateStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                at = T0 + timedelta(seconds=i)
                rid = store.start_run(f"job{n}", scheduled_at=at, started_at=at)
                store.finish_run(rid, RunStatus.OK, ended_at=at, summary=str(i))
                store.save_job_state(f"job{n}", {"i": i})
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for n in range(6):
        assert len(store.runs(f"job{n}", limit=100)) == 20
        assert store.load_job_state(f"job{n}") == {"i": 19}


def test_a_closed_store_refuses_work(opener: Opener) -> None:
    store = opener()
    store.close()
    with pytest.raises(opener.closed_error):
        store.runs()


def test_the_store_satisfies_the_protocol(store: StateStore) -> None:
    as_protocol: StateStore = store
    assert as_protocol.runs() == []


def test_run_logs_are_kept_with_their_run_and_clipped(store: StateStore) -> None:
    rid = store.start_run("radio", scheduled_at=T0, started_at=T0)
    assert store.run_log(rid) is None
    store.save_run_log(rid, "INFO started\nINFO done\n")
    assert store.run_log(rid) == "INFO started\nINFO done\n"

    store.save_run_log(rid, "x" * 100 + "\n" + "é" * MAX_RUN_LOG)
    clipped = store.run_log(rid)
    assert clipped is not None
    assert len(clipped.encode()) <= MAX_RUN_LOG
    assert clipped.endswith("(log cut at 64 KiB)\n")
    assert store.run_log(rid + 1000) is None
    with pytest.raises(KeyError):
        store.save_run_log(rid + 1000, "lost")


def test_runs_of_every_account_by_id_and_name(store: StateStore) -> None:
    alice = store.start_run("radio", scheduled_at=T0, started_at=T0, account="alice")
    bob = store.start_run("radio", scheduled_at=T0, started_at=T0, account="bob")
    other = store.start_run("hello", scheduled_at=None, started_at=T0, account="bob")

    found = store.get_run(alice)
    assert found is not None
    assert (found.account, found.job) == ("alice", "radio")
    assert store.get_run(other + 1000) is None
    assert [r.id for r in store.all_runs()] == [other, bob, alice]
    assert [r.id for r in store.all_runs("radio")] == [bob, alice]
    assert [r.id for r in store.all_runs(limit=1)] == [other]


def test_counts_and_last_success_come_from_finished_runs(store: StateStore) -> None:
    for minute, status in enumerate([RunStatus.OK, RunStatus.FAILED, RunStatus.OK]):
        at = T0 + timedelta(minutes=minute)
        rid = store.start_run("radio", scheduled_at=at, started_at=at)
        store.finish_run(rid, status, ended_at=at + timedelta(seconds=5))
    store.start_run("radio", scheduled_at=T0, started_at=T0)  # still running: not counted
    rid = store.start_run("hello", scheduled_at=T0, started_at=T0, account="work")
    store.finish_run(rid, RunStatus.FAILED, ended_at=T0)

    assert store.run_counts() == [
        ("default", "radio", RunStatus.FAILED, 1),
        ("default", "radio", RunStatus.OK, 2),
        ("work", "hello", RunStatus.FAILED, 1),
    ]
    assert store.last_success() == {
        ("default", "radio"): T0 + timedelta(minutes=2, seconds=5),
    }


def test_remembered_values_are_recalled_replaced_and_forgotten(store: StateStore) -> None:
    assert store.recall("hold") is None
    store.remember("hold", {"until": "2026-03-01T12:00:00+00:00", "reason": "429"})
    store.remember("outage:radio", {"since": 3})
    assert store.recall("hold") == {"until": "2026-03-01T12:00:00+00:00", "reason": "429"}

    store.remember("hold", {"until": None})
    assert store.recall("hold") == {"until": None}
    store.remember("hold", None)
    assert store.recall("hold") is None
    assert store.recall("outage:radio") == {"since": 3}
    store.remember("never-there", None)  # forgetting nothing is fine


def test_a_fire_time_is_claimed_once_per_job_and_account(opener: Opener) -> None:
    store, other = opener(), opener()  # two daemons on one database
    assert store.claim("radio", T0, node="a") is True
    assert other.claim("radio", T0, node="b") is False
    assert store.claim("radio", T0) is False
    assert other.claim("radio", T0 + timedelta(minutes=1)) is True
    assert other.claim("radio", T0, account="work") is True
    assert other.claim("hello", T0) is True
    # An interrupted run's one make-up is a claim of its own, also only once.
    assert other.claim("radio", T0, make_up=True) is True
    assert store.claim("radio", T0, make_up=True) is False
    # The same instant in another zone is the same fire time.
    berlin = timezone(timedelta(hours=1))
    assert store.claim("radio", T0.astimezone(berlin)) is False


def test_a_fire_time_claimed_by_a_process_that_died_before_its_run_is_not_lost(
    opener: Opener,
) -> None:
    # A real other process claims fire times and dies (SIGKILL-like) at each step between.
    code = (
        "import os, sys; from datetime import datetime, timedelta, UTC; from pathlib import Path;"
        "from runner.state import open_postgres, open_state;"
        "a = sys.argv[1];"
        "s = open_postgres(a) if a.startswith('postgresql') else open_state(Path(a));"
        "t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC); m = timedelta(minutes=1);"
        "s.claim('radio', t, node='a');"  # claimed, then the process died before start_run
        "s.claim('radio', t + m, node='a');"
        "s.start_run('radio', scheduled_at=t + m, started_at=t + m);"  # died mid-run
        "s.claim('radio', t + 2 * m, node='a');"
        "s.record_skipped('radio', scheduled_at=t + 2 * m, at=t + 2 * m, reason='busy');"
        "s.claim('radio', t - m, node='a', make_up=True);"  # a make-up that never started
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, opener.where], check=True, timeout=60)
    store = opener()
    ended = T0 + timedelta(minutes=5)
    marked = store.mark_interrupted(ended)
    deadline = time.monotonic() + 20
    while marked < 2 and time.monotonic() < deadline:  # PostgreSQL: until it drops the session
        time.sleep(0.1)
        marked += store.mark_interrupted(ended)
    assert marked == 2
    assert store.mark_interrupted(ended) == 0  # each is recorded once

    by_slot = {run.scheduled_at: run for run in store.runs("radio")}
    assert len(by_slot) == 3, by_slot
    never_started = by_slot[T0]
    assert never_started.status is RunStatus.FAILED
    assert never_started.error == INTERRUPTED
    assert never_started.trigger == "schedule"
    assert never_started.ended_at == ended
    assert "node a stopped after claiming" in (never_started.summary or "")
    cut_short = by_slot[T0 + timedelta(minutes=1)]
    assert (cut_short.status, cut_short.error) == (RunStatus.FAILED, INTERRUPTED)
    assert by_slot[T0 + timedelta(minutes=2)].status is RunStatus.SKIPPED
    # The fire time stays claimed (nobody runs it as a regular run again)...
    assert store.claim("radio", T0) is False
    # ... and the make-up that never started is void: the one make-up can still be claimed.
    assert store.claim("radio", T0 - timedelta(minutes=1), make_up=True) is True
    assert store.claim("radio", T0 - timedelta(minutes=1), make_up=True) is False


def test_a_live_process_s_pending_claim_is_left_alone(store: StateStore) -> None:
    assert store.claim("radio", T0, node="a") is True
    assert store.mark_interrupted(T0) == 0  # claimed a moment ago by this live process
    assert store.runs("radio") == []
    # Stopping without its runs (a daemon's cold stop): the pending claim is recorded too.
    assert store.mark_interrupted(T0, own=True) == 1
    [run] = store.runs("radio")
    assert (run.scheduled_at, run.error) == (T0, INTERRUPTED)
