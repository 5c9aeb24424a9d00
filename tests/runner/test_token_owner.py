"""A daemon whose token store another user took over says so, and recovers when it is given back.

This is what a re-authorization run under another (dynamic) user does to the system unit: systemd
re-owns the whole state directory to that user. The daemon must name the real problem
("cannot read its own token store: Permission denied"), not "authorization expired or revoked".
As root the child runs as another uid (root reads everything); otherwise the folder is chmod 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.config import SpotifyConfig
from runner.testing import FakeSpotify
from runner.tokens import TokenManager, TokenStore

CHILD = Path(__file__).with_name("token_owner_child.py")
ROOT = Path(__file__).resolve().parents[2]
DAEMON_UID = 65534  # nobody: the service's user
THIEF_UID = 65533  # the user a wrong re-authorization ran as


def chown_tree(top: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(top):
        os.chown(folder, uid, uid)
        for name in dirs + files:
            os.chown(Path(folder) / name, uid, uid, follow_symlinks=False)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not under tmp_path: its 0700 parents would stop the other uid before the store does.
    top = Path(tempfile.mkdtemp(prefix="token-owner-", dir="/tmp"))
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


class Child:
    def __init__(self, args: list[str], user: int | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        uid = [] if user is None else [str(user)]
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args, *uid],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd="/",
        )

    def ask(self, command: str) -> dict[str, object]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.finish()
        answer: dict[str, object] = json.loads(line)
        return answer

    def finish(self) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        err = self.proc.stderr.read()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


def test_a_store_taken_by_another_user_is_named_and_recovered(state_dir: Path) -> None:
    as_root = os.geteuid() == 0
    with FakeSpotify() as fake:
        config = SpotifyConfig(
            client_id=fake.CLIENT_ID,
            client_secret=fake.CLIENT_SECRET,  # type: ignore[arg-type]
            refresh_token=fake.grant(scopes=("playlist-modify-private",)),  # type: ignore[arg-type]
            accounts_url=fake.accounts_url,
            api_url=fake.api_url,
        )
        # The first start adopts the config's token into the store.
        TokenManager(config, TokenStore(state_dir)).refresh(force=True)
        accounts = state_dir / "accounts"
        if as_root:
            chown_tree(state_dir, DAEMON_UID)
        args = [str(state_dir), fake.accounts_url, fake.api_url, fake.CLIENT_ID, fake.CLIENT_SECRET]
        child = Child(args, DAEMON_UID if as_root else None)
        try:
            assert child.ask("refresh") == {"ok": True}
            assert child.ask("status") == {"needs_auth": False, "reason": None}

            if as_root:
                chown_tree(state_dir, THIEF_UID)
            else:
                accounts.chmod(0)
            refused = child.ask("refresh")
            status = child.ask("status")

            if as_root:
                chown_tree(state_dir, DAEMON_UID)
            else:
                accounts.chmod(0o700)
            healed = child.ask("status")
            again = child.ask("refresh")
        finally:
            log = child.finish()

    assert refused["ok"] is False
    error = str(refused["error"])
    assert error.startswith("cannot read its own token store: Permission denied (")
    assert "expired or revoked" not in error
    assert "-p User=spotify-runner" in error
    if as_root:
        assert f"belongs to another user (uid {THIEF_UID}), this process runs as uid " in error
        assert f"uid {DAEMON_UID}): give it back to this user, and authorize as" in error
    assert status["needs_auth"] is True
    assert str(status["reason"]).startswith("cannot read its own token store: Permission denied")
    assert healed == {"needs_auth": False, "reason": None}
    assert again == {"ok": True}
    # Said once at ERROR (not on every check), and the recovery is said too.
    assert log.count("ERROR cannot read its own token store: Permission denied") == 1
    assert "can read the token store" in log
    assert "expired or revoked" not in log
