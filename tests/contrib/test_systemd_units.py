"""The shipped systemd units: `systemd-analyze verify` is clean and the exposure is 2.0 or lower.

`verify` insists that ExecStart's program exists, so each unit is checked as a temporary copy
whose ExecStart points at this environment's `spotify-runner` (or /bin/true); everything else is
checked exactly as shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from runner.config import Config
from runner.config.environment import _default_state_dir
from runner.durations import parse_duration

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "contrib" / "systemd"
SYSTEM_UNIT = UNITS / "spotify-runner.service"
USER_UNIT = UNITS / "spotify-runner-user.service"
DAEMON = ROOT / "runner" / "daemon.py"
README = ROOT / "README.md"
MAX_EXPOSURE = 2.0
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if Path("/usr/bin/systemd-analyze").exists() else None
)

needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (no systemd on this host)"
)

# (unit, --user?) pairs, named for readable test ids.
CASES = [
    pytest.param(SYSTEM_UNIT, False, id="system"),
    pytest.param(USER_UNIT, True, id="user"),
]


def directives(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, values in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def program() -> str:
    """An existing program to stand in for ExecStart's."""
    beside = Path(sys.executable).parent / "spotify-runner"
    if beside.exists():
        return str(beside)
    return shutil.which("spotify-runner") or "/bin/true"


def checkable_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart's program replaced by one that exists here."""
    text, count = re.subn(
        r"^(ExecStart=)\S+", lambda m: m.group(1) + program(), unit.read_text(), flags=re.M
    )
    assert count == 1, f"{unit.name} should have exactly one ExecStart="
    copy = tmp_path / unit.name
    copy.write_text(text)
    return copy


def analyze_env(tmp_path: Path) -> Mapping[str, str]:
    # `--user` needs a runtime directory even offline; give it a private one.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path), "LANG": "C"}


def analyze(args: list[str], user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    command = [SYSTEMD_ANALYZE, *(["--user"] if user else []), *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(analyze_env(tmp_path)),
        cwd=tmp_path,
        check=False,
    )


@needs_analyze
@pytest.mark.parametrize(("unit", "user"), CASES)
def test_verify_is_clean(unit: Path, user: bool, tmp_path: Path) -> None:
    copy = checkable_copy(unit, tmp_path)
    result = analyze(["verify", str(copy)], user, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    about_us = [line for line in output.splitlines() if unit.name in line or str(copy) in line]
    assert about_us == []


@needs_analyze
@pytest.mark.parametrize(("unit", "user"), CASES)
def test_security_exposure_is_low(unit: Path, user: bool, tmp_path: Path) -> None:
    copy = checkable_copy(unit, tmp_path)
    threshold = int(MAX_EXPOSURE * 10)  # --threshold is on a 0-100 scale
    result = analyze(
        ["security", "--offline=yes", f"--threshold={threshold}", "--no-pager", str(copy)],
        user,
        tmp_path,
    )
    output = result.stdout + result.stderr
    level = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert level, output
    assert float(level.group(1)) <= MAX_EXPOSURE, output
    assert result.returncode == 0, output


@pytest.mark.parametrize(("unit", "user"), CASES)
def test_the_unit_is_a_good_systemd_citizen(unit: Path, user: bool) -> None:
    d = directives(unit)
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    # Exit 2 is a config error: restarting cannot fix it.
    assert "2" in d["RestartPreventExitStatus"][0].split()
    assert d["RestartSec"]
    assert d["WatchdogSec"]
    assert any(v.startswith("spotify_client_secret:") for v in d["LoadCredential"])
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["MemoryDenyWriteExecute"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert " run " in d["ExecStart"][0] + " "
    if user:
        assert "DynamicUser" not in d
        assert d["WantedBy"] == ["default.target"]
    else:
        assert d["StateDirectory"] == ["spotify-runner"]
        assert d["DynamicUser"] == ["yes"]
        assert d["ProtectSystem"] == ["strict"]
        assert d["CapabilityBoundingSet"] == [""]
        assert d["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize(("unit", "user"), CASES)
def test_exec_reload_only_because_sighup_really_reloads(unit: Path, user: bool) -> None:
    if not DAEMON.exists():
        pytest.skip("runner/daemon.py does not exist yet")
    handles_sighup = re.search(r"\bsignal\.SIGHUP\b", DAEMON.read_text()) is not None
    reload = directives(unit).get("ExecReload", [])
    assert bool(reload) == handles_sighup
    if reload:
        assert "-HUP $MAINPID" in reload[0]


def test_the_user_unit_writes_where_auth_stores_the_token() -> None:
    """systemd < 254 puts a user unit's StateDirectory= in ~/.config: the daemon must not use it.

    Without $STATE_DIRECTORY the daemon takes the same default state_dir as an interactive
    `spotify-runner auth`; the unit makes exactly that folder writable, and creates it.
    """
    d = directives(USER_UNIT)
    assert "StateDirectory" not in d
    default = _default_state_dir({"HOME": "%h"})
    assert d["ReadWritePaths"] == [str(default)]
    assert d["ExecStartPre"] == [f"+/bin/mkdir -p -m 0700 {default}"]


def test_the_user_unit_can_reload_in_a_user_manager() -> None:
    # PrivateIPC=yes fails under a user manager on reload (226/NAMESPACE with systemd 252).
    assert directives(USER_UNIT)["PrivateIPC"] == ["no"]


@pytest.mark.parametrize(("unit", "user"), CASES)
def test_systemd_waits_longer_than_shutdown_timeout(unit: Path, user: bool) -> None:
    """The daemon exits once shutdown_timeout has passed; systemd must not SIGKILL it first."""
    stop = parse_duration(directives(unit)["TimeoutStopSec"][0])
    default = Config.model_fields["shutdown_timeout"].default
    assert stop >= default + timedelta(seconds=30)


def test_the_readme_reauthorizes_as_the_services_own_user() -> None:
    """A re-authorization as another dynamic user re-owns the state directory away from us."""
    for text in (README.read_text(), SYSTEM_UNIT.read_text()):
        recipes = [line for line in text.splitlines() if "systemd-run" in line and "-p " in line]
        assert recipes
        for line in recipes:
            assert "-p DynamicUser=yes" in line
            assert "-p User=spotify-runner" in line
