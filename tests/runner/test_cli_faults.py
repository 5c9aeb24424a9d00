"""The CLI in a hostile world: full and read-only disks, corrupt and locked files, bad arguments.

Every expected error is one line with the right exit code (2 state or config, 3 authorization),
never a traceback, and no token is lost on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from daemon_world import World, every
from faults import read_only, small_disk

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
