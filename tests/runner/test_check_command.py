"""`spotify-runner check` on broken configs: exit 2, one located line each, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main

GOOD = """\
spotify:
  client_id: ${SPOTIFY_CLIENT_ID}
  client_secret: s3cr3t-value-777
  redirect_uri: http://127.0.0.1:8888/callback
state_dir: ./state
timezone: UTC
jobs:
  hi:
    job: hello
    schedule: {every: 15m}
    retries: 3
    options: {greeting: Hey}
"""

# name -> (text edit, expected line after "config.yaml:")
BROKEN = {
    "yaml-syntax": (
        ("schedule: {every: 15m}", "schedule: {every: 15m"),
        "11:12: YAML syntax error",
    ),
    "unknown-key": (("retries: 3", "retires: 3"), "11:5: jobs.hi.retires: unknown key"),
    "duplicate-key": (("    retries: 3\n", "    retries: 3\n    retries: 4\n"), "12:5: jobs.hi"),
    "bad-cron": (
        ("{every: 15m}", '{cron: "* * * *"}'),
        "10:22: jobs.hi.schedule.cron: wrong number",
    ),
    "bad-duration": (
        ("{every: 15m}", "{every: 15x}"),
        "10:23: jobs.hi.schedule.every: bad duration",
    ),
    "unset-env": (
        ("UTC", "UTC"),
        "2:14: spotify.client_id: environment variable SPOTIFY_CLIENT_ID",
    ),
    "missing-client-id": (("  client_id: ${SPOTIFY_CLIENT_ID}\n", ""), "1:1: spotify"),
    "localhost": (
        ("127.0.0.1:8888", "localhost:8888"),
        "4:17: spotify.redirect_uri: Spotify rejects",
    ),
    "wrong-type-int": (
        ("retries: 3", "retries: three"),
        "11:14: jobs.hi.retries: expected an integer",
    ),
    "wrong-type-map": (("schedule: {every: 15m}", "schedule: 15m"), "10:15: jobs.hi.schedule:"),
    "bad-timezone": (
        ("timezone: UTC", "timezone: Mars/Olympus"),
        "6:11: timezone: unknown time zone",
    ),
    "unknown-job": (("job: hello", "job: helo"), "9:10: jobs.hi.job: unknown job 'helo'"),
    "bad-option": (
        ("{greeting: Hey}", "{greting: Hey}"),
        "12:15: jobs.hi.options.greting: unknown",
    ),
}


@pytest.fixture
def run_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> object:
    def run(text: str, env: bool = True) -> tuple[int, str, str]:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        if env:
            monkeypatch.setenv("SPOTIFY_CLIENT_ID", "abc")
        else:
            monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as done:
            main(["-c", "config.yaml", "check"])
        out = capsys.readouterr()
        return int(done.value.code or 0), out.out, out.err

    return run


def test_good_config_passes(run_check: object) -> None:
    code, out, err = run_check(GOOD)  # type: ignore[operator]
    assert code == 0, err
    assert out.strip() == "config.yaml: ok (1 job: hi)"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_config_exits_2_with_a_located_line(run_check: object, name: str) -> None:
    (old, new), expected = BROKEN[name]
    assert old in GOOD
    code, out, err = run_check(GOOD.replace(old, new, 1), env=name != "unset-env")  # type: ignore[operator]
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("config.yaml:" + expected), lines[0]
    assert "s3cr3t-value-777" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--config", "elsewhere/config.yaml"],  # as the systemd units write it
        ["-c", "elsewhere/config.yaml", "check"],
        ["-c", "wrong.yaml", "check", "-c", "elsewhere/config.yaml"],  # the later one wins
    ],
)
def test_config_option_before_or_after_the_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.yaml").write_text(GOOD)
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "abc")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == "elsewhere/config.yaml: ok (1 job: hi)"
