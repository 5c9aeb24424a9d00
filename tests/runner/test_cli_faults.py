"""The CLI in a hostile world: full and read-only disks, corrupt and locked files, bad arguments.

Every expected error is one line with the right exit code (2 state or config, 3 authorization),
never a traceback, and no token is lost on the way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from daemon_world import World, child_env, every
from faults import read_only, small_disk

from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.tokens import TokenStore

JOBS = {"tick": every(1)}


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    """Single-use refresh tokens: spending one that is then lost means re-authorizing."""
    with FakeSpotify(rotation="rotate_revoke") as started:
        yield started


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def one_error(done: object, code: int) -> str:
    """The single stderr line of a command that failed with `code`."""
    assert done.returncode == code, (done.returncode, done.stderr)  # type: ignore[attr-defined]
    stderr = done.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    (line,) = lines(stderr)
    return str(line)


def expire_access_token(state_dir: Path) -> str:
    """Makes the stored access token stale; returns the stored refresh token."""
    store = TokenStore(state_dir)
    token = store.load()
    assert token is not None
    store.save(replace(token, expires_at=1.0))
    return token.refresh_token


def alive(fake: FakeSpotify, refresh_token: str) -> bool:
    with fake.lock:
        grant = fake.grants.get(refresh_token)
        return grant is not None and not grant.revoked


# -- 1: a refresh token is never spent where it cannot be kept ------------------------------------


def test_token_on_a_full_disk_exits_3_in_one_line_and_spends_nothing(world: World) -> None:
    with small_disk(world.state_dir) as disk:
        world.write_config(JOBS)
        assert world.cli("token", record_stdout=False).returncode == 0
        refresh_token = expire_access_token(world.state_dir)
        disk.fill()
        done = world.cli("token")
        line = one_error(done, 3)
        assert done.stdout == ""
        assert "the disk is full" in line
        assert "token.json" in line
        assert alive(world.fake, refresh_token)
        disk.free()
        again = world.cli("token", record_stdout=False)
        assert again.returncode == 0, again.stderr
        with world.fake.lock:
            assert again.stdout.strip() in world.fake.access_tokens


def test_token_on_a_read_only_state_dir_exits_3_in_one_line(world: World) -> None:
    world.write_config(JOBS)
    assert world.cli("token", record_stdout=False).returncode == 0
    refresh_token = expire_access_token(world.state_dir)
    with read_only(world.state_dir):
        line = one_error(world.cli("token"), 3)
        assert "read-only" in line
    assert alive(world.fake, refresh_token)


def test_auth_into_a_directory_named_token_json_keeps_the_code_unspent(world: World) -> None:
    world.write_config(JOBS, grant=False)
    in_the_way = TokenStore(world.state_dir).path
    in_the_way.mkdir(parents=True)
    line = one_error(world.authorize(), 3)
    assert "it is a directory" in line
    assert str(in_the_way) in line
    with world.fake.lock:
        assert not world.fake.grants  # no code was exchanged, so nothing could be lost
    in_the_way.rmdir()
    assert world.authorize().returncode == 0
    assert world.cli("token", record_stdout=False).returncode == 0


# -- 9: expected errors are one line with the right exit code -------------------------------------


def record_a_run(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("run-job", "tick")
    assert done.returncode == 0, done.stderr


def test_jobs_reads_a_read_only_state_dir(world: World) -> None:
    record_a_run(world)
    with read_only(world.state_dir):
        done = world.cli("jobs")
        assert done.returncode == 0, done.stderr
        assert "ok " in done.stdout  # the last run, read from the database
        history = world.cli("history")
        assert history.returncode == 0, history.stderr
    assert not list(world.state_dir.glob("*.recreate"))


def test_jobs_before_any_run_creates_nothing(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("jobs")
    assert done.returncode == 0, done.stderr
    assert "never" in done.stdout
    assert not (world.state_dir / "state.sqlite3").exists()


def test_a_corrupt_page_found_after_open_exits_2_in_one_line(world: World) -> None:
    record_a_run(world)
    db_path = world.state_dir / "state.sqlite3"
    db = sqlite3.connect(db_path, isolation_level=None)
    db.executemany(
        "INSERT INTO runs (account, job, started_at, status, trigger) VALUES (?, ?, ?, ?, ?)",
        [("default", "tick", "2026-01-01T00:00:00", "ok", "manual")] * 2000,
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    # Page 1 (the schema) stays intact, so opening works; the pages of the runs are garbage.
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[page:] = b"\xa5" * (len(data) - page)
    db_path.write_bytes(bytes(data))
    line = one_error(world.cli("jobs"), 2)
    assert str(db_path) in line
    assert "is corrupt" in line
    line = one_error(world.cli("run-job", "tick"), 2)
    assert "is corrupt" in line


@pytest.mark.slow
def test_a_database_locked_by_another_process_exits_2_in_one_line(world: World) -> None:
    record_a_run(world)
    db_path = world.state_dir / "state.sqlite3"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        line = one_error(world.cli("run-job", "tick"), 2)
        assert "locked" in line
        assert "10s" in line
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_invalid_json_in_a_jobs_state_exits_2_and_the_run_is_recorded(world: World) -> None:
    record_a_run(world)
    db = sqlite3.connect(world.state_dir / "state.sqlite3", isolation_level=None)
    db.execute("UPDATE job_state SET state = '{\"count\": ' WHERE job = 'tick'")
    db.close()
    line = one_error(world.cli("run-job", "tick"), 2)
    assert "saved state of job 'tick'" in line
    assert "not valid JSON" in line
    last = world.runs("tick")[-1]
    assert last.status is RunStatus.FAILED  # recorded, not left "running"
    assert last.error is not None
    assert "not valid JSON" in last.error


@pytest.mark.parametrize("port", ["99999", "-1", "0"])
def test_auth_with_a_port_out_of_range_exits_2_in_one_line(world: World, port: str) -> None:
    world.write_config(JOBS, grant=False)
    line = one_error(world.cli("auth", "--port", port), 2)
    assert "--port" in line
    assert "1<=x<=65535" in line


# `jobs` writes through the CLI's own output; `--help` and `--version` are click's own writes.
@pytest.mark.parametrize("args", [["jobs"], ["--help"], ["--version"], ["auth", "--help"]])
def test_output_into_a_full_disk_exits_2_in_one_line(world: World, args: list[str]) -> None:
    world.write_config(JOBS)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "runner", "-c", str(world.config_path), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            check=False,
        )
    line = one_error(done, 2)
    assert line == "error: cannot write the output: the disk is full: free some space"


def test_a_yaml_alias_bomb_is_refused_quickly(world: World) -> None:
    world.write_config(JOBS)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    text = world.config_path.read_text() + "\n".join(bomb) + "\n"
    world.config_path.write_text(text)
    started = time.monotonic()
    line = one_error(world.cli("check"), 2)
    assert time.monotonic() - started < 30  # a billion values were not built
    assert line.startswith(f"{world.config_path}:")
    assert "aliases" in line


def test_an_unreadable_credentials_directory_exits_2_in_one_line(
    world: World, tmp_path: Path
) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv, to drop the capability that lets root read all")
    world.write_config(JOBS)
    # The secret is to come from the credentials folder, as under systemd's LoadCredential=.
    text = world.config_path.read_text()
    world.config_path.write_text(re.sub(r"\n\s*client_secret: .*", "", text))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "spotify_client_secret").write_text("secret\n")
    credentials.chmod(0)
    done = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            sys.executable,
            "-m",
            "runner",
            "-c",
            str(world.config_path),
            "check",
        ],
        capture_output=True,
        text=True,
        env=child_env({"CREDENTIALS_DIRECTORY": str(credentials)}),
        check=False,
    )
    credentials.chmod(0o700)
    line = one_error(done, 2)
    assert "$CREDENTIALS_DIRECTORY" in line
    assert "permission denied" in line


# -- 12: clear words ------------------------------------------------------------------------------


def test_a_full_disk_under_the_state_database_says_the_disk_is_full(world: World) -> None:
    with small_disk(world.state_dir, size="600k") as disk:
        world.write_config(JOBS)
        assert world.cli("token", record_stdout=False).returncode == 0
        disk.fill()
        done = world.cli("run-job", "tick")
        line = one_error(done, 2)
        assert "the disk is full" in line
        assert "I/O" not in line


def test_a_corrupt_token_file_is_called_corrupt_and_the_hint_is_given_once(world: World) -> None:
    world.write_config(JOBS, grant=False)
    store = TokenStore(world.state_dir)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    done = world.cli("run-job", "tick")
    assert done.returncode == 3
    assert "is corrupt" in done.stdout
    assert "unreadable" not in done.stdout
    assert done.stdout.count("spotify-runner auth") == 1, done.stdout
    line = one_error(world.cli("token"), 3)
    assert line.count("spotify-runner auth") == 1


# -- 13, 14 ---------------------------------------------------------------------------------------


def test_a_missing_jobs_dir_is_reported_once_at_its_own_line(world: World, tmp_path: Path) -> None:
    world.write_config({"a": every(1), "b": every(2, job="writer")}, jobs_dir=str(tmp_path / "no"))
    line = one_error(world.cli("check"), 2)
    assert re.match(rf"{re.escape(str(world.config_path))}:\d+:\d+: jobs_dir: ", line)
    assert "does not exist" in line
    assert "unknown job" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["run-job", "tick", "-v"],
        ["run-job", "tick", "--log-format", "json"],
        ["run-job", "-v", "--log-format=json", "tick"],
    ],
)
def test_global_options_after_the_command_are_accepted(world: World, args: list[str]) -> None:
    world.write_config(JOBS)
    done = world.cli(*args)
    assert done.returncode == 0, done.stderr
    if "-v" in args:
        assert "DEBUG" in done.stderr or '"level": "debug"' in done.stderr
    if any("json" in a for a in args):
        first = next(line for line in done.stderr.splitlines() if line.strip())
        assert json.loads(first)["level"]


def test_every_folder_a_run_creates_is_0700(world: World, tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "state"
    world.write_config(JOBS, state_dir=str(state_dir))
    done = world.cli("run-job", "tick")
    assert done.returncode == 0, done.stderr
    folders = [tmp_path / "new", *(p for p in (tmp_path / "new").rglob("*") if p.is_dir())]
    assert len(folders) >= 4  # new, state, accounts/default, locks/default at least
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
