"""The token store on PostgreSQL: two processes, one single-use rotating refresh token.

The fake Spotify revokes a refresh token the moment it is used (`rotate_revoke`) and hands out
access tokens that live a few seconds. Two processes refreshing on their own must then take
turns under the account's row lock and each use what the other stored: one refresh token spent
twice would be an `invalid_grant`, one access token used past its life a 401.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon_world import spotify_config

from runner.state.tokens import PostgresTokenStore
from runner.testing import FakeSpotify
from runner.tokens import TokenManager

CHILD = Path(__file__).with_name("pg_token_child.py")
LIFETIME = 2.0
SECONDS = 20


def test_a_token_stored_by_one_process_is_what_another_loads(postgres_url: str) -> None:
    with FakeSpotify() as fake:
        grant = fake.grant(scopes=("user-read-private",))
        first = PostgresTokenStore(postgres_url)
        TokenManager(spotify_config(fake, grant), first).refresh(force=True)
        before = first.signature()
        second = PostgresTokenStore(postgres_url)
        loaded = second.load()
        assert loaded is not None
        assert loaded.refresh_token == grant
        assert loaded.access_token is not None
        assert second.signature() == before
        bob = PostgresTokenStore(postgres_url, "bob")
        assert bob.load() is None
        bob.close()
        TokenManager(spotify_config(fake), second).refresh(force=True)
        assert first.signature() != before  # the first one notices the new token
        first.close()
        second.close()


def test_two_processes_share_a_single_use_rotating_token(postgres_url: str) -> None:
    with FakeSpotify(access_token_lifetime=LIFETIME, rotation="rotate_revoke") as fake:
        grant = fake.grant(scopes=("user-read-private",))
        seed = PostgresTokenStore(postgres_url)
        TokenManager(spotify_config(fake, grant), seed)  # adopts the grant into the store
        seed.close()
        args = [
            postgres_url,
            fake.accounts_url,
            fake.api_url,
            fake.CLIENT_ID,
            fake.CLIENT_SECRET,
            str(SECONDS),
        ]
        children = [
            subprocess.Popen(
                [sys.executable, str(CHILD), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = []
        for child in children:
            out, err = child.communicate(timeout=SECONDS + 60)
            assert child.returncode == 0, err
            results.append(json.loads(out))
        token_calls = [r for r in fake.requests if r.path == "/api/token"]
        api_calls = [r for r in fake.requests if r.path.startswith("/v1/")]

    assert [r["failures"] for r in results] == [[], []]
    assert all(r["calls"] > 0 for r in results)
    # Refreshes happened all along (the lifetime is 2 s), each with a token nobody spent yet.
    assert len(token_calls) >= SECONDS / LIFETIME
    assert [r.status for r in token_calls if r.status != 200] == []
    spent = [r.body["refresh_token"] for r in token_calls]
    assert len(spent) == len(set(spent))
    assert [r.status for r in api_calls if r.status != 200] == []
