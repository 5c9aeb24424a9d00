"""Two daemons alive on one PostgreSQL database share one single-use rotating refresh token.

Issue 16's criterion as written: both daemons of an active/standby pair running for two minutes
while the fake Spotify hands out 5-second access tokens and revokes each refresh token the moment
it is used (`rotate_revoke`). One refresh token spent twice would be an `invalid_grant`; an access
token used past its life would be a request the fake sees with an expired token.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from daemon_world import World, every, free_port

pytestmark = pytest.mark.slow

ACTIVE = "is now the active daemon"
LIFETIME = 5.0
SECONDS = 120.0


def _node_config(world: World, url: str, node: str) -> Path:
    return world.write_node_config(
        node,
        {"tick": every(1, job="hello")},
        scopes=(),
        state={"url": url, "node": node},
        http={"listen": f"127.0.0.1:{free_port()}"},
    )


def test_both_daemons_alive_for_two_minutes_never_spend_a_token_twice(
    world: World, postgres_url: str
) -> None:
    world.fake.access_token_lifetime = LIFETIME
    world.fake.rotation = "rotate_revoke"
    first = world.daemon(config=_node_config(world, postgres_url, "a"))
    first.wait_log(ACTIVE, timeout=60)
    second = world.daemon(config=_node_config(world, postgres_url, "b"))
    second.wait_log("spotify-runner started", timeout=60)
    time.sleep(SECONDS)
    assert first.proc.poll() is None  # both alive all along
    assert second.proc.poll() is None
    for daemon in (first, second):
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0

    log = world.fake.requests
    tokens = [r for r in log if r.path == "/api/token"]
    assert tokens, "nobody refreshed"
    assert all(r.status == 200 for r in tokens), [r.status for r in tokens]  # no invalid_grant
    refreshes = [r for r in tokens if r.method == "POST"]
    assert len(refreshes) >= SECONDS / LIFETIME * 0.8  # the access tokens really were renewed
    api = [r for r in log if r.path.startswith("/v1")]
    assert len(api) >= SECONDS / 2  # the active daemon kept running its 1-second job
    assert all(r.status == 200 for r in api), {r.status for r in api}
    for r in api:  # no request carried a token that had expired when it arrived
        assert r.token is not None
        assert r.at < world.fake.access_tokens[r.token].expires_at
