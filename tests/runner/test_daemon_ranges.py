"""Finding 7: absurd values never take the daemon down; an invalid config at start exits 2.

The daemon runs as a real process (`spotify-runner run`) against the embedded fake Spotify.
"""

from __future__ import annotations

import signal

import pytest
from daemon_world import World, every

from runner.daemon import Daemon
from runner.errors import ConfigError
from runner.state import RunStatus


def ok_runs(world: World, job: str) -> int:
    return sum(r.status is RunStatus.OK for r in world.runs(job))


@pytest.mark.slow
def test_sighup_with_absurd_values_keeps_the_running_config(world: World) -> None:
    world.write_config({"tick": every(1)})
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: len(rs) >= 1, what="a first run")
    for count, absurd in enumerate(
        (
            {"tick": every(1, timeout="99999999999d")},  # was OverflowError: the daemon died
            {"tick": every("3000000d")},  # passed `check`, then `run` raised ValueError
            {"tick": {"job": "counter", "schedule": {"every": "1s", "jitter": "5s"}}},
        ),
        start=1,
    ):
        world.write_config(absurd)
        daemon.send(signal.SIGHUP)
        log = daemon.wait_log("reload failed, keeping the running config", count=count)
    assert "too long (at most 3650d)" in log
    assert "must be shorter than every" in log
    before = ok_runs(world, "tick")
    world.wait_runs("tick", lambda rs: ok_runs(world, "tick") >= before + 2, what="more runs")
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.stderr()
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (every("3000000d"), "jobs.tick.schedule.every: bad duration '3000000d': too long"),
        (every(1, timeout="99999999999d"), "jobs.tick.timeout: bad duration"),
    ],
)
def test_an_absurd_value_at_start_exits_2_with_one_line(
    world: World, job: dict[str, object], expected: str
) -> None:
    world.write_config({"tick": job})
    result = world.cli("run", timeout=30)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_any_exception_while_loading_is_a_config_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever a job module or the scheduler's arithmetic raises, start-up reports a config
    # problem (exit 2), never an unexpected exit 1 that systemd would restart forever.
    world.write_config({"tick": every(1)})

    def broken(*args: object, **kwargs: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr("runner.daemon.plan", broken)
    with pytest.raises(ConfigError) as info:
        Daemon(str(world.config_path)).serve()
    (line,) = info.value.problems
    assert "jobs.tick.schedule: cannot be scheduled: OverflowError: date value out of range" in line
    assert line.startswith(str(world.config_path))
    monkeypatch.undo()

    monkeypatch.setattr("runner.daemon.load_jobs", lambda config: 1 / 0)
    with pytest.raises(ConfigError, match="cannot be loaded: ZeroDivisionError"):
        Daemon(str(world.config_path)).serve()


def test_check_refuses_a_one_off_in_the_past_but_the_daemon_still_starts(world: World) -> None:
    world.write_config({"once": {"job": "counter", "schedule": {"at": "2026-01-01T08:00:00"}}})
    result = world.cli("check")
    assert result.returncode == 2
    assert "jobs.once.schedule.at: 2026-01-01 08:00 is in the past" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # A one-off that already ran must not stop the daemon from (re)starting.
    daemon = world.daemon()
    daemon.wait_started()
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_auth_port_out_of_range_is_a_usage_error(world: World) -> None:
    world.write_config({"tick": every("1h")})
    result = world.cli("auth", "--no-browser", "--port", "70000")
    assert result.returncode == 2
    assert "70000 is not in the range 1<=x<=65535" in result.stderr
