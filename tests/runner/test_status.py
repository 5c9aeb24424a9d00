"""`spotify-runner jobs` and `check --online`, in-process, from config, history and store."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_world import World, every

from runner.config import Config, load_config
from runner.errors import AuthorizationNeeded, MissingScopes
from runner.state import RunStatus, open_state
from runner.status import collect_status, format_status, verify_online
from runner.tokens import TokenManager, TokenStore

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def load(world: World) -> Config:
    return load_config(world.config_path, env={})


def record(world: World, job: str, status: RunStatus, at: datetime, **fields: str) -> None:
    state = open_state(world.state_dir)
    try:
        run = state.start_run(job, scheduled_at=at, started_at=at)
        state.finish_run(run, status, ended_at=at + timedelta(seconds=1), **fields)
    finally:
        state.close()


def test_status_of_jobs_without_history(world: World) -> None:
    world.write_config(
        {
            "tick": every("15m"),
            "nightly": {"job": "counter", "schedule": {"cron": "0 3 * * *"}},
            "off": every("1h", enabled=False),
        }
    )
    config = load(world)
    status = collect_status(config, now=NOW)
    assert status["daemon"] == {"running": False, "pid": None}
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["nightly"]["next_run"] == "2026-03-02T03:00:00+00:00"
    assert jobs["nightly"]["schedule"] == "cron 0 3 * * *"
    assert jobs["off"]["next_run"] is None
    assert all(j["last_run"] is None for j in jobs.values())
    text = format_status(status)
    assert "account: not authorized: run 'spotify-runner auth'" in text
    off_line = next(line for line in text.splitlines() if line.startswith("off "))
    assert "disabled" in off_line
    assert off_line.endswith("never")


def test_every_continues_the_cadence_of_the_last_scheduled_run(world: World) -> None:
    world.write_config({"tick": every("15m")})
    record(world, "tick", RunStatus.OK, NOW - timedelta(minutes=20), summary="count 7")
    status = collect_status(load(world), now=NOW)
    (tick,) = status["jobs"]
    assert tick["next_run"] == (NOW + timedelta(minutes=10)).isoformat(timespec="seconds")
    assert tick["last_run"]["status"] == "ok"
    assert tick["last_run"]["summary"] == "count 7"


def authorized_store(world: World) -> TokenStore:
    """A store holding the config's token after one refresh (as a daemon leaves it)."""
    config = load(world)
    store = TokenStore(world.state_dir)
    TokenManager(config.spotify, store).get_access_token()
    return store


def test_days_until_the_authorization_expires_are_shown(world: World) -> None:
    world.write_config({"tick": every("1h")})
    authorized_store(world)
    status = collect_status(load(world), now=datetime.now(UTC))
    assert status["accounts"][0]["authorized"] is True
    assert status["accounts"][0]["days_left"] == pytest.approx(182, abs=0.1)
    assert status["accounts"][0]["scopes"] == ["playlist-modify-private"]
    assert "soon" not in format_status(status)
    # Near the end, a nudge.
    late = datetime.now(UTC) + timedelta(days=175)
    text = format_status(collect_status(load(world), now=late))
    assert "account: authorized, 7 days until the authorization expires" in text
    assert "<- run 'spotify-runner auth' soon" in text


def test_a_run_refused_for_authorization_after_the_store_changed_means_unauthorized(
    world: World,
) -> None:
    world.write_config({"tick": every("1h")})
    store = authorized_store(world)
    stored_at = datetime.fromtimestamp(os.stat(store.path).st_mtime, UTC)
    problem = "authorization expired or revoked: run 'spotify-runner auth'"
    # A refusal from before the token was stored is history.
    record(world, "tick", RunStatus.NEEDS_AUTH, stored_at - timedelta(minutes=5), error=problem)
    assert collect_status(load(world))["accounts"][0]["problem"] is None
    record(world, "tick", RunStatus.NEEDS_AUTH, stored_at, error=problem)
    account = collect_status(load(world))["accounts"][0]
    assert (account["authorized"], account["problem"]) == (False, problem)
    assert f"account: {problem}" in format_status(collect_status(load(world)))
    # `auth` stores a new token: the refusal is history again.
    token = store.load()
    assert token is not None
    store.save(token)
    later = (stored_at + timedelta(seconds=5)).timestamp()
    os.utime(store.path, (later, later))
    assert collect_status(load(world))["accounts"][0]["authorized"] is True


def test_verify_online_names_the_account_and_days(world: World) -> None:
    world.write_config({"tick": every("1h")})
    config = load(world)
    manager = TokenManager(config.spotify, TokenStore(world.state_dir))
    text = verify_online(manager, config.spotify, frozenset({"playlist-modify-private"}))
    assert text == (
        "online: authorized as Alice (alice); every job's scopes granted; "
        "182 days until the authorization expires"
    )
    with pytest.raises(MissingScopes) as caught:
        verify_online(manager, config.spotify, frozenset({"user-top-read", "user-library-read"}))
    assert caught.value.missing == {"user-top-read", "user-library-read"}
    assert caught.value.exit_code == 3


def test_verify_online_with_a_revoked_token(world: World) -> None:
    world.write_config({"tick": every("1h")})
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    config = load(world)
    manager = TokenManager(config.spotify, TokenStore(world.state_dir))
    with pytest.raises(AuthorizationNeeded, match="run 'spotify-runner auth'"):
        verify_online(manager, config.spotify, frozenset())


def test_status_reads_a_state_dir_that_does_not_exist_yet(world: World, tmp_path: Path) -> None:
    world.write_config({"tick": every("1h")})
    status = collect_status(load(world), now=NOW)
    assert status["jobs"][0]["last_run"] is None


def test_an_empty_state_dir_beside_the_system_units_prints_the_fix(
    world: World, tmp_path: Path
) -> None:
    """Root's default state_dir is not the system unit's; `jobs` says how to look there."""
    system = tmp_path / "var-lib-spotify-runner"
    world.write_config({"tick": every("15m")})  # state_dir: the world's own, still empty
    config = load(world)
    # What the system daemon left in its own state directory: a token and a run.
    TokenManager(config.spotify, TokenStore(system)).get_access_token()
    state = open_state(system)
    try:
        run = state.start_run("tick", scheduled_at=NOW, started_at=NOW)
        state.finish_run(run, RunStatus.OK, ended_at=NOW + timedelta(seconds=1))
    finally:
        state.close()

    status = collect_status(config, now=NOW, system_state_dir=system)
    assert status["hint"] == (
        f"{world.state_dir} holds no runs and no token, but {system} (the system unit's "
        f"StateDirectory=) does: add 'state_dir: {system}' to {config.source}, "
        f"or run with STATE_DIRECTORY={system}"
    )
    assert format_status(status).splitlines()[0] == f"note: {status['hint']}"

    # Following the advice shows the daemon's real state, and no note.
    world.write_config({"tick": every("15m")}, state_dir=str(system))
    fixed = collect_status(load(world), now=NOW, system_state_dir=system)
    assert "hint" not in fixed
    assert fixed["state_dir"] == str(system)
    assert fixed["accounts"][0]["authorized"] is True
    assert fixed["jobs"][0]["last_run"]["status"] == "ok"
    assert not format_status(fixed).startswith("note:")


def test_no_note_when_this_state_dir_has_its_own_history(world: World, tmp_path: Path) -> None:
    system = tmp_path / "system"
    open_state(system).close()
    world.write_config({"tick": every("15m")})
    record(world, "tick", RunStatus.OK, NOW - timedelta(minutes=1))
    status = collect_status(load(world), now=NOW, system_state_dir=system)
    assert "hint" not in status
