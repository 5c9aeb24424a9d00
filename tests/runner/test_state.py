"""The run history and job state store, against real SQLite files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.state import (
    SCHEMA_VERSION,
    RunStatus,
    SqliteStateStore,
    StateError,
    open_state,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
