"""The run history and job state store, against real SQLite files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from runner.state import (
    INTERRUPTED,
    SCHEMA_VERSION,
    RunStatus,
    SqliteStateStore,
    StateError,
    StateStore,
    open_state,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    s = open_state(tmp_path / "state")
    yield s
    s.close()


def test_a_run_is_recorded_from_start_to_finish(store: SqliteStateStore) -> None:
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


def test_datetimes_come_back_in_utc_whatever_zone_went_in(store: SqliteStateStore) -> None:
    berlin = timezone(timedelta(hours=1))
    run_id = store.start_run("radio", scheduled_at=None, started_at=T0.astimezone(berlin))
    record = store.finish_run(run_id, RunStatus.FAILED, ended_at=T0, error="boom")
    assert record.started_at == T0
    assert record.started_at.tzinfo is UTC
    assert record.scheduled_at is None


def test_naive_datetimes_are_refused(store: SqliteStateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run("radio", scheduled_at=None, started_at=datetime(2026, 1, 1))


def test_finishing_an_unknown_run_is_an_error(store: SqliteStateStore) -> None:
    with pytest.raises(KeyError):
        store.finish_run(12345, RunStatus.OK, ended_at=T0)


def test_runs_are_listed_newest_first_per_job_and_account(store: SqliteStateStore) -> None:
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


def test_a_skipped_run_is_recorded_with_its_reason(store: SqliteStateStore) -> None:
    record = store.record_skipped(
        "radio", scheduled_at=T0, at=T0 + timedelta(seconds=1), reason="previous run still going"
    )
    assert record.status is RunStatus.SKIPPED
    assert record.summary == "previous run still going"
    assert record.started_at == record.ended_at == T0 + timedelta(seconds=1)
    assert store.last_run("radio") == record


def test_last_scheduled_at_counts_every_status_but_not_manual_runs(
    store: SqliteStateStore,
) -> None:
    assert store.last_scheduled_at("radio") is None
    rid = store.start_run("radio", scheduled_at=T0, started_at=T0)
    store.finish_run(rid, RunStatus.FAILED, ended_at=T0, error="boom")
    store.record_skipped("radio", scheduled_at=T0 + timedelta(hours=1), at=T0, reason="overlap")
    store.start_run("radio", scheduled_at=None, started_at=T0 + timedelta(hours=5))
    store.start_run("radio", scheduled_at=T0 + timedelta(hours=9), started_at=T0, account="work")

    assert store.last_scheduled_at("radio") == T0 + timedelta(hours=1)
    assert store.last_scheduled_at("radio", account="work") == T0 + timedelta(hours=9)


def test_history_is_bounded_per_job(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "s.sqlite3", keep_runs=3)
    try:
        for i in range(6):
            at = T0 + timedelta(minutes=i)
            store.record_skipped("radio", scheduled_at=at, at=at, reason=f"r{i}")
        store.record_skipped("hello", scheduled_at=T0, at=T0, reason="kept")

        assert [r.summary for r in store.runs("radio", limit=100)] == ["r5", "r4", "r3"]
        assert [r.summary for r in store.runs("hello")] == ["kept"]
    finally:
        store.close()


def test_pruning_never_removes_a_run_still_going(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "s.sqlite3", keep_runs=1)
    try:
        long_one = store.start_run("radio", scheduled_at=T0, started_at=T0)
        for i in range(3):
            store.record_skipped("radio", scheduled_at=T0, at=T0, reason=f"overlap {i}")
        record = store.finish_run(long_one, RunStatus.OK, ended_at=T0)
        assert record.status is RunStatus.OK
    finally:
        store.close()


def test_job_state_round_trips_per_job_and_account(store: SqliteStateStore) -> None:
    assert store.load_job_state("radio") == {}
    store.save_job_state("radio", {"seen": ["a", "b"], "count": 2, "nested": {"x": None}})
    store.save_job_state("radio", {"other": True}, account="work")

    assert store.load_job_state("radio") == {"seen": ["a", "b"], "count": 2, "nested": {"x": None}}
    assert store.load_job_state("radio", account="work") == {"other": True}
    assert store.load_job_state("hello") == {}

    store.save_job_state("radio", {"count": 3})
    assert store.load_job_state("radio") == {"count": 3}


def test_a_value_json_cannot_hold_is_refused_with_where_it_is(store: SqliteStateStore) -> None:
    store.save_job_state("radio", {"kept": 1})
    with pytest.raises(TypeError, match=r"'radio'.*state\['seen'\]\[1\] \(set\)"):
        store.save_job_state("radio", {"seen": [1, {2, 3}]})
    assert store.load_job_state("radio") == {"kept": 1}


def test_the_file_and_directory_are_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "deep" / "state"
    store = open_state(state_dir)
    try:
        store.save_job_state("radio", {"secret-ish": "value"})
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        for path in state_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        store.close()


def test_an_existing_world_readable_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SqliteStateStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_database_is_in_wal_mode_and_versioned(tmp_path: Path) -> None:
    open_state(tmp_path).close()
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    first = open_state(tmp_path)
    rid = first.start_run("radio", scheduled_at=T0, started_at=T0)
    first.finish_run(rid, RunStatus.OK, ended_at=T0, summary="done")
    first.save_job_state("radio", {"n": 1})
    first.close()

    second = open_state(tmp_path)
    try:
        last = second.last_run("radio")
        assert last is not None
        assert last.summary == "done"
        assert second.load_job_state("radio") == {"n": 1}
    finally:
        second.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    open_state(tmp_path).close()
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match="newer spotify-runner"):
        open_state(tmp_path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="state database"):
        open_state(tmp_path)


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    # A real other process starts a run and dies without finishing it (a crash).
    code = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path;"
        "from runner.state import open_state;"
        "s = open_state(Path(sys.argv[1]));"
        "s.start_run('radio', scheduled_at=None, started_at=datetime(2026, 3, 1, tzinfo=UTC));"
        "s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=30)
    store = open_state(tmp_path)
    try:
        mine = store.start_run("hello", scheduled_at=None, started_at=T0)

        assert store.mark_interrupted(T0 + timedelta(minutes=1)) == 1

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
    finally:
        store.close()


def test_a_run_owned_by_a_previous_process_with_our_pid_is_interrupted(tmp_path: Path) -> None:
    # Containers start the daemon as PID 1 every time: same PID, another process.
    store = open_state(tmp_path)
    try:
        rid = store.start_run("radio", scheduled_at=None, started_at=T0)
        with sqlite3.connect(tmp_path / "state.sqlite3") as db:
            db.execute("UPDATE runs SET owner = ? WHERE id = ?", (f"{os.getpid()}:1", rid))
        db.close()
        assert store.mark_interrupted(T0) == 1
    finally:
        store.close()


def test_a_second_process_reads_while_this_one_writes(tmp_path: Path) -> None:
    store = open_state(tmp_path)
    try:
        rid = store.start_run("radio", scheduled_at=T0, started_at=T0)
        store.finish_run(rid, RunStatus.OK, ended_at=T0, summary="first")
        # Hold a write transaction open, as the daemon does mid-insert.
        writer = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE job_state SET state = state")
        code = (
            "import sys; from pathlib import Path; from runner.state import open_state;"
            "s = open_state(Path(sys.argv[1])); print(s.last_run('radio').summary); s.close()"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        writer.execute("ROLLBACK")
        writer.close()
        assert out.stdout.strip() == "first"
    finally:
        store.close()


def test_many_threads_record_runs_at_once(store: SqliteStateStore) -> None:
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


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = open_state(tmp_path)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.runs()


def test_sqlite_store_satisfies_the_protocol(store: SqliteStateStore) -> None:
    as_protocol: StateStore = store
    assert as_protocol.runs() == []


def test_a_file_deleted_while_open_is_recreated_with_everything_in_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_state(tmp_path)
    try:
        first = store.start_run("a", scheduled_at=None, started_at=T0)
        store.save_job_state("a", {"n": 1})
        (tmp_path / "state.sqlite3").unlink()
        second = store.start_run("a", scheduled_at=None, started_at=T0)
        assert "was deleted while in use" in caplog.text
        assert (tmp_path / "state.sqlite3").exists()
    finally:
        store.close()
    reopened = open_state(tmp_path)
    try:
        assert [r.id for r in reopened.runs("a")] == [second, first]
        assert reopened.load_job_state("a") == {"n": 1}
    finally:
        reopened.close()
    assert stat.S_IMODE((tmp_path / "state.sqlite3").stat().st_mode) == 0o600


def test_a_file_replaced_while_open_is_used_from_then_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_state(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    restored = open_state(other)
    restored.start_run("restored", scheduled_at=None, started_at=T0)
    restored.close()
    try:
        store.start_run("a", scheduled_at=None, started_at=T0)
        os.replace(other / "state.sqlite3", tmp_path / "state.sqlite3")
        # The restored file is what is read (and written) from now on.
        assert [r.job for r in store.runs(None)] == ["restored"]
        assert "replaced by another file" in caplog.text
    finally:
        store.close()
