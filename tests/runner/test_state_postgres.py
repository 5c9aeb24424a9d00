"""State on PostgreSQL as the user meets it: `state:` config, the CLI on a real server, errors.

The `StateStore` behaviour itself is `test_state_contract.py`, run on both backends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemon_world import World, every, postgres_refresh_token

from runner.config import load_config_text
from runner.errors import ConfigError
from runner.state import StateError, open_postgres, open_state
from runner.state.postgres import SCHEMA_VERSION, PostgresStateStore, safe_url

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = """\
spotify:
  client_id: abc123
timezone: UTC
state_dir: /var/lib/sr
"""


def test_state_defaults_to_sqlite_and_the_host_name() -> None:
    config = load_config_text(BASE, env={})
    assert config.state.url is None
    assert config.state.node == socket.gethostname()


def test_state_url_password_file_and_node_are_read(tmp_path: Path) -> None:
    (tmp_path / "db-password").write_text("s3cret-pw\n")
    text = BASE + (
        "state:\n  url: postgresql://runner@db.example/spotify_runner?sslmode=require\n"
        "  password_file: db-password\n  node: pi-kitchen\n"
    )
    config = load_config_text(text, env={}, base_dir=tmp_path)
    assert config.state.url == "postgresql://runner@db.example/spotify_runner?sslmode=require"
    assert config.state.password is not None
    assert config.state.password.get_secret_value() == "s3cret-pw"
    assert config.state.node == "pi-kitchen"
    assert "s3cret-pw" in config.secrets()  # so the log filter redacts it
    assert "s3cret-pw" not in repr(config)


def test_a_password_in_the_url_is_redacted_too() -> None:
    config = load_config_text(BASE + "state:\n  url: postgresql://u:pw-in-url@db/x\n", env={})
    assert "pw-in-url" in config.secrets()
    assert safe_url("postgresql://u:pw-in-url@db:5433/x") == "postgresql://u:***@db:5433/x"


def test_a_url_that_is_not_postgresql_is_one_located_line_without_the_url() -> None:
    text = BASE + "state:\n  url: mysql://u:hidden-pw@db/x\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    (line,) = info.value.problems
    assert line.startswith("config.yaml:6:8: state.url: expected postgresql://")
    assert "hidden-pw" not in line


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StateError) as info:
        open_postgres(f"postgresql://u:hunter2@127.0.0.1:{port}/x")
    message = str(info.value)
    assert message.startswith(
        f"cannot connect to the state database postgresql://u:***@127.0.0.1:{port}/x"
    )
    assert "check that PostgreSQL is running" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_a_schema_from_a_newer_version_is_refused(postgres_url: str) -> None:
    import psycopg

    PostgresStateStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "UPDATE spotify_runner_meta SET value = %s WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    with pytest.raises(StateError, match="newer spotify-runner"):
        PostgresStateStore(postgres_url)


def test_sqlite_never_imports_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys; from runner.config import load_config_text;"
        "from runner.state import open_store;"
        f"c = load_config_text({BASE!r}.replace('/var/lib/sr', sys.argv[1]), env={{}});"
        "open_store(c).close(); print('psycopg' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_run_job_and_history_use_the_configured_database(world: World, postgres_url: str) -> None:
    world.write_config({"tick": every("1h")}, state={"url": postgres_url, "node": "one"})
    done = world.cli("run-job", "tick")
    assert done.returncode == 0, done.stderr

    store = PostgresStateStore(postgres_url, readonly=True)
    try:
        (run,) = store.runs("tick")
    finally:
        store.close()
    assert run.status == "ok"
    assert run.trigger == "manual"
    assert not (world.state_dir / "state.sqlite3").exists()
    # The token too: adopted from the config into the database, no token file anywhere.
    assert postgres_refresh_token(postgres_url) == world.refresh_token
    assert list(world.state_dir.rglob("token.json")) == []
    history = world.cli("history", "tick")
    assert history.returncode == 0, history.stderr
    assert "ok" in history.stdout


def test_jobs_shows_the_active_node_and_since_when(world: World, postgres_url: str) -> None:
    from runner.state.leadership import Leadership

    world.write_config({"tick": every("1h")}, state={"url": postgres_url, "node": "one"})
    done = world.cli("jobs")
    assert done.returncode == 0, done.stderr
    assert "active daemon: none" in done.stdout
    leadership = Leadership(postgres_url, "pi-kitchen")
    try:
        assert leadership.try_lead()
        other = Leadership(postgres_url, "other")
        assert not other.try_lead()  # one lead per database
        other.close()
        done = world.cli("jobs", "--json")
        active = json.loads(done.stdout)["active"]
        assert active["node"] == "pi-kitchen"
        assert leadership.leading_since is not None
        assert (
            active["since"]
            == leadership.leading_since.isoformat(timespec="seconds")[:19] + "+00:00"
        )
    finally:
        leadership.close()
    assert "active daemon: none" in world.cli("jobs").stdout


def test_state_migrate_carries_a_real_sqlite_state_over(world: World, postgres_url: str) -> None:
    # A real SQLite state: a token adopted from the config, runs, a catch-up anchor, job state.
    world.write_config({"tick": every("1h", job="writer")})
    for _ in range(2):
        assert world.cli("run-job", "tick").returncode == 0
    before = world.runs("tick")
    sqlite_store = open_state(world.state_dir)
    try:
        sqlite_store.record_skipped("tick", scheduled_at=T0, at=T0, reason="an anchor")
        anchor = sqlite_store.last_scheduled_at("tick")
        job_state = sqlite_store.load_job_state("tick")
    finally:
        sqlite_store.close()

    done = world.cli("state", "migrate", "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("copied 3 run(s), 1 job state(s), ")
    assert "tokens of 1 account(s) (default)" in done.stdout
    again = world.cli("state", "migrate", "--to", postgres_url)
    assert again.returncode == 2
    assert "not empty" in again.stderr
    assert "Traceback" not in again.stderr

    # The daemon's config on PostgreSQL, without any refresh token: no re-authorization.
    world.write_config(
        {"tick": every("1h", job="writer")}, grant=False, state={"url": postgres_url}
    )
    assert world.cli("run-job", "tick").returncode == 0
    store = PostgresStateStore(postgres_url, readonly=True)
    try:
        after = list(reversed(store.runs("tick")))
        assert [r.id for r in after[: len(before)]] == [r.id for r in before]
        assert after[-1].status == "ok"
        assert after[-1].id > after[-2].id
        assert store.last_scheduled_at("tick") == anchor
        assert job_state == {"created": 2}
        assert store.load_job_state("tick") == {"created": 3}  # the job went on from its state
    finally:
        store.close()
