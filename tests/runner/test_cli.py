"""The CLI as a user meets it: subprocesses, exit codes, one-line errors, no secrets.

Exit codes: 0 ok, 1 a job failed, 2 usage or config error, 3 authorization needed.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
from daemon_world import BROWSER, World, every

from runner.state import RunStatus, open_state
from runner.testing import FakeSpotify

JOBS = {"tick": every(1), "writer": every("1h", job="writer")}


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def located(path: Path) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(str(path))}:\d+:\d+: ")


# -- check --------------------------------------------------------------------------------------


def test_check_accepts_a_good_config(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("check")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{world.config_path}: ok (2 jobs: tick, writer)\n"


def test_check_reports_a_broken_config_with_positions_and_no_traceback(world: World) -> None:
    world.write_config(JOBS)
    text = world.config_path.read_text().replace("every: 1s", "every: soon")
    world.config_path.write_text(text + "bogus_key: 1\n")
    done = world.cli("check")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = error_lines(done.stderr)
    assert len(lines) == 2
    assert all(located(world.config_path).match(line) for line in lines), lines
    assert any("jobs.tick.schedule.every" in line for line in lines)
    assert any("bogus_key" in line for line in lines)
    assert "Traceback" not in done.stderr


def test_check_reports_broken_job_options_and_unknown_jobs(world: World) -> None:
    world.write_config(
        {
            "slow": every(1, job="slow", options={"seconds": "a while", "speed": 2}),
            "ghost": every(1, job="no_such_job"),
        }
    )
    done = world.cli("check")
    assert done.returncode == 2
    lines = error_lines(done.stderr)
    assert all(located(world.config_path).match(line) for line in lines), lines
    assert any("jobs.slow.options.seconds:" in line for line in lines)
    assert any("jobs.slow.options.speed: unknown option" in line for line in lines)
    ghost = next(line for line in lines if "jobs.ghost.job:" in line)
    # The error lists what exists, from every source.
    assert "unknown job 'no_such_job'" in ghost
    assert "hello" in ghost
    assert "counter" in ghost
    assert "Traceback" not in done.stderr


def test_check_online_verifies_the_token(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("check", "--online")
    assert done.returncode == 0, done.stderr
    assert "online: authorized as Alice (alice); every job's scopes granted" in done.stdout
    assert re.search(r"18[12] days until the authorization expires", done.stdout)


def test_check_online_names_missing_scopes_and_exits_3(world: World) -> None:
    world.write_config(JOBS, scopes=("user-library-read",))
    done = world.cli("check", "--online")
    assert done.returncode == 3
    assert error_lines(done.stderr) == [
        "error: the authorization lacks scopes playlist-modify-private: "
        "run 'spotify-runner auth' to grant them"
    ]


def test_check_online_with_a_revoked_token_exits_3(world: World) -> None:
    world.write_config(JOBS)
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    done = world.cli("check", "--online")
    assert done.returncode == 3
    assert "run 'spotify-runner auth'" in done.stderr
    assert "Traceback" not in done.stderr


# -- token --------------------------------------------------------------------------------------


def test_token_prints_a_valid_access_token_and_nothing_else(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("token", record_stdout=False)
    assert done.returncode == 0, done.stderr
    token = done.stdout.removesuffix("\n")
    assert done.stdout == token + "\n"
    issued = world.fake.access_tokens[token]
    assert issued.expires_at > time.time()
    assert issued.user_id == "alice"
    assert token not in done.stderr


def test_token_without_authorization_exits_3(world: World) -> None:
    world.write_config(JOBS, grant=False)
    done = world.cli("token")
    assert done.returncode == 3
    assert done.stdout == ""
    assert error_lines(done.stderr) == [
        "error: no Spotify authorization stored yet: run 'spotify-runner auth'"
    ]


# -- auth ---------------------------------------------------------------------------------------


def test_auth_prints_the_result_summary(world: World) -> None:
    world.write_config(JOBS, grant=False)
    done = world.authorize()
    assert done.returncode == 0, done.stderr
    # The URL to open comes first (for when no browser opens), then the summary.
    assert "/authorize?" in done.stdout
    lines = done.stdout.splitlines()[-3:]
    assert lines[0] == "authorized Alice (alice)"
    assert lines[1] == "scopes: playlist-modify-private"
    assert re.fullmatch(
        r"the authorization expires on \d{4}-\d\d-\d\d: run 'spotify-runner auth' again before "
        r"then",
        lines[2],
    )
    # The stored token works at once.
    assert world.cli("run-job", "tick").returncode == 0


# -- run-job ------------------------------------------------------------------------------------


def test_run_job_ok_exits_0_and_is_recorded_as_manual(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("run-job", "tick")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"tick: ok in \d+\.\ds: count 1\n", done.stdout)
    (run,) = world.runs("tick")
    assert (run.status, run.trigger, run.summary) == (RunStatus.OK, "manual", "count 1")
    assert run.scheduled_at is None  # a manual run neither postpones nor stands in for one
    assert run.ended_at is not None


def test_run_job_failed_exits_1(world: World) -> None:
    world.write_config({"broken": every(1, job="fail")})
    done = world.cli("run-job", "broken")
    assert done.returncode == 1
    assert "broken: failed in" in done.stdout
    assert "job error: RuntimeError: broken is broken on purpose" in done.stdout
    (run,) = world.runs("broken")
    assert (run.status, run.trigger) == (RunStatus.FAILED, "manual")
    assert run.error == "job error: RuntimeError: broken is broken on purpose"


def test_run_job_unknown_name_exits_2_with_one_line(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("run-job", "nope")
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"error: no job named 'nope' in {world.config_path} (configured: tick, writer)"
    ]
    assert world.runs() == []


def test_run_job_with_a_broken_config_exits_2(world: World) -> None:
    world.write_config({"slow": every(1, job="slow", options={"seconds": "x"})})
    done = world.cli("run-job", "slow")
    assert done.returncode == 2
    lines = error_lines(done.stderr)
    assert lines
    assert all(located(world.config_path).match(line) for line in lines), lines
    assert "Traceback" not in done.stderr


def test_run_job_without_authorization_exits_3(world: World) -> None:
    world.write_config(JOBS, grant=False)
    done = world.cli("run-job", "tick")
    assert done.returncode == 3
    assert "run 'spotify-runner auth'" in done.stdout
    assert "Traceback" not in done.stderr
    (run,) = world.runs("tick")
    assert run.status is RunStatus.NEEDS_AUTH
    assert world.fake.count(path="^/v1/") == 0  # failed fast, without a request


def test_run_job_with_a_revoked_token_exits_3(world: World) -> None:
    world.write_config(JOBS)
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    done = world.cli("run-job", "tick")
    assert done.returncode == 3
    assert done.stdout.rstrip().endswith(
        "authorization expired or revoked: run 'spotify-runner auth'"
    )
    assert "Traceback" not in done.stderr


def test_a_dry_run_writes_nothing_and_keeps_no_state(world: World) -> None:
    world.write_config(JOBS)
    done = world.cli("run-job", "writer", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run: would create playlist 'runner test'" in done.stdout
    assert world.fake.writes() == []
    state = open_state(world.state_dir)
    try:
        assert state.load_job_state("writer") == {}
        (run,) = state.runs("writer")
    finally:
        state.close()
    assert (run.dry_run, run.trigger, run.status) == (True, "manual", RunStatus.OK)

    # The same job for real writes and keeps its state.
    assert world.cli("run-job", "writer").returncode == 0
    assert [w.method for w in world.fake.writes()] == ["POST"]
    state = open_state(world.state_dir)
    try:
        assert state.load_job_state("writer") == {"created": 1}
    finally:
        state.close()


def test_a_dry_run_refuses_writes_of_a_job_that_ignores_it(world: World) -> None:
    world.write_config({"careless": every("1h", job="careless")})
    done = world.cli("run-job", "careless", "--dry-run")
    assert done.returncode == 1
    assert done.stdout.rstrip().endswith(": dry run: refused to send POST /v1/me/playlists")
    assert world.fake.writes() == []
    state = open_state(world.state_dir)
    try:
        assert state.load_job_state("careless") == {}
    finally:
        state.close()


# -- jobs ---------------------------------------------------------------------------------------


def test_jobs_without_a_daemon_shows_schedule_next_and_last_run(world: World) -> None:
    world.write_config(JOBS)
    never = json.loads(world.cli("jobs", "--json").stdout)
    assert never["daemon"] == {"running": False, "pid": None}
    assert [j["last_run"] for j in never["jobs"]] == [None, None]

    assert world.cli("run-job", "tick").returncode == 0
    done = world.cli("jobs", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    tick, writer = status["jobs"]
    assert (tick["name"], tick["schedule"], tick["job"]) == ("tick", "every 1s", "counter")
    assert writer["schedule"] == "every 1h"
    assert tick["next_run"] is not None
    assert tick["last_run"]["status"] == "ok"
    assert tick["last_run"]["summary"] == "count 1"
    assert tick["last_run"]["trigger"] == "manual"
    account = status["accounts"][0]
    assert account["authorized"] is True
    assert 181 <= account["days_left"] <= 182

    text = world.cli("jobs")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0] == "daemon: not running"
    assert re.match(r"account: authorized, 18[12] days until the authorization expires", lines[1])
    tick_line = next(line for line in lines if line.startswith("tick "))
    assert "every 1s" in tick_line
    assert "ok " in tick_line
    assert tick_line.endswith(": count 1")
    writer_line = next(line for line in lines if line.startswith("writer "))
    assert writer_line.endswith("never")


def test_jobs_without_authorization_says_so(world: World) -> None:
    world.write_config(JOBS, grant=False)
    done = world.cli("jobs")
    assert done.returncode == 0, done.stderr
    assert "account: not authorized: run 'spotify-runner auth'" in done.stdout


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_secret_in_any_output_at_any_verbosity(tmp_path: Path) -> None:
    """Every command at -vv, in text and JSON; tokens expire and rotate often meanwhile."""
    with FakeSpotify(access_token_lifetime=2.0, rotation="rotate") as fake:
        world = World(fake, tmp_path)
        try:
            world.write_config(
                {"tick": every(1), "writer": every("1h", job="writer"), "bad": every(1, "fail")}
            )
            for fmt in ("text", "json"):
                base = ("-vv", "--log-format", fmt)
                assert world.cli(*base, "check", "--online").returncode == 0
                assert world.cli(*base, "run-job", "tick").returncode == 0
                assert world.cli(*base, "run-job", "writer", "--dry-run").returncode == 0
                assert world.cli(*base, "run-job", "bad").returncode == 1
                assert world.cli(*base, "jobs").returncode == 0
                token = world.cli(*base, "token", record_stdout=False)
                assert token.returncode == 0
                assert world.cli(*base, "auth", env={"BROWSER": BROWSER}).returncode == 0
                daemon = world.daemon(*base)
                daemon.wait_started()
                world.wait_runs(
                    "tick",
                    lambda rs: sum(r.trigger == "schedule" for r in rs) >= 3,
                    timeout=60,
                    what="scheduled runs",
                )
                daemon.send(signal.SIGTERM)
                assert daemon.wait() == 0
            # Something was logged at debug level, by us and by the libraries.
            logs = "\n".join(text for _, text in world.all_output())
            assert "urllib3" in logs
            assert "DEBUG" in logs or '"level": "debug"' in logs
            assert len(fake.grants) > 3  # rotations happened
            json_err = world.daemons[-1].stderr()
            for line in json_err.splitlines():
                json.loads(line)
            world.assert_no_secrets()
        finally:
            world.close()
