"""The run a missing authorization cost runs as soon as the account is authorized again.

Real daemons against the embedded fake Spotify: a daily job's fire time ends `needs_auth` (the
account's access was removed), the user re-authorizes (`spotify-runner auth`, or the status
page's Re-authorize and its `/callback`), and that one fire time runs now, once, as `catch_up`:
not at the next fire time a day later, and never twice. The fire time that fails is the daemon's
own catch-up at start (the seeded history's last run was a day and an hour ago), so the job's
next regular run is a day away and cannot come during the test.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from daemon_world import World, every, free_port, wait_for

from runner.state import RunRecord, RunStatus, StateStore, open_state
from runner.state.postgres import PostgresStateStore

DAILY = every("1d", job="writer", catch_up=True)
REVOKED_BOB = "authorization expired or revoked: run 'spotify-runner auth --account bob'"


def seed(
    world: World, job: str, account: str = "default", state: StateStore | None = None
) -> datetime:
    """A run of `job` that ran fine 25 hours ago; returns the fire time a day after it."""
    ran = (datetime.now(UTC) - timedelta(hours=25)).replace(microsecond=0)
    state = state or open_state(world.state_dir)
    try:
        run = state.start_run(job, scheduled_at=ran, started_at=ran, account=account)
        state.finish_run(run, RunStatus.OK, ended_at=ran + timedelta(seconds=1))
    finally:
        state.close()
    return ran + timedelta(days=1)


def shown(runs: list[RunRecord]) -> list[tuple[str, RunStatus, datetime | None]]:
    return [(r.trigger, r.status, r.scheduled_at) for r in runs]


def press(base: str, path: str) -> requests.Response:
    """A button of the status page: its form, with the page's CSRF token."""
    page = requests.get(base + "/", timeout=10)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return requests.post(
        base + path,
        data={"csrf_token": found.group(1)},
        headers={"Origin": base},
        allow_redirects=False,
        timeout=10,
    )


def reauthorize_on_the_page(base: str, account: str = "default") -> str:
    """Re-authorize, the consent at the fake Spotify, and back to the daemon's /callback."""
    start = press(base, f"/accounts/{account}/authorize")
    assert start.status_code == 303, start.text
    consent = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert consent.status_code in (302, 303), consent.text
    back = consent.headers["Location"]
    assert back.startswith(base + "/callback?")
    done = requests.get(back, timeout=10)
    assert done.status_code == 200, done.text
    return done.text


def waited(job: str, slot: datetime, account: str) -> str:
    return f"{job}: its run for {slot} waited for the authorization of account {account}"


def stop(daemon: Any) -> str:
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    log: str = daemon.stderr()
    assert "Traceback" not in log
    return log


def test_auth_runs_the_fire_time_the_authorization_cost_once_and_at_once(world: World) -> None:
    world.fake.add_user("bob", "Bob")
    world.write_config(
        {"alice-daily": {**DAILY, "account": "alice"}, "bob-daily": {**DAILY, "account": "bob"}},
        grant=False,
        accounts={"alice": {}, "bob": {}},
    )
    for user in ("alice", "bob"):
        done = world.authorize("--account", user, user=user)
        assert done.returncode == 0, done.stderr
    lost = seed(world, "bob-daily", "bob")
    assert seed(world, "alice-daily", "alice") == lost
    # Bob removes the app's access: the daemon's catch-up of bob's fire time is refused.
    assert world.fake.revoke_user("bob") == 1
    daemon = world.daemon()
    daemon.wait_started()
    refused = world.wait_runs("bob-daily", lambda rs: len(rs) == 2, account="bob")
    assert shown(refused[1:]) == [("catch_up", RunStatus.NEEDS_AUTH, lost)]
    assert refused[1].error == REVOKED_BOB
    alice = world.wait_runs("alice-daily", lambda rs: len(rs) == 2, account="alice")
    assert shown(alice[1:]) == [("catch_up", RunStatus.OK, lost)]

    # Bob authorizes again: that fire time runs now, not in a day.
    again = world.authorize("--account", "bob", user="bob")
    assert again.returncode == 0, again.stderr
    stored = time.monotonic()
    made_up = world.wait_runs(
        "bob-daily", lambda rs: len(rs) >= 3, account="bob", timeout=20, what="the lost run"
    )
    # The daemon looks at a store that needs authorization every 5 seconds.
    assert time.monotonic() - stored < 10
    assert shown(made_up[2:]) == [("catch_up", RunStatus.OK, lost)]
    daemon.wait_log(waited("bob-daily", lost, "bob") + "; running it now")

    # Bob's access goes once more, a manual run finds out, and bob authorizes again: the fire
    # time ran already, so nothing runs for it again.
    assert world.fake.revoke_user("bob") == 1
    base = f"http://127.0.0.1:{world.http_port}"
    assert press(base, "/jobs/bob-daily/run").status_code == 303
    refused = world.wait_runs("bob-daily", lambda rs: len(rs) == 4, account="bob")
    assert shown(refused[3:]) == [("manual", RunStatus.NEEDS_AUTH, None)]
    third = world.authorize("--account", "bob", user="bob")
    assert third.returncode == 0, third.stderr
    daemon.wait_log("account bob is authorized again", timeout=20, count=2)
    time.sleep(2)  # what it would have started starts at once; give it time to be recorded
    log = stop(daemon)

    bob = world.runs("bob-daily", "bob")
    assert shown(bob[1:]) == [
        ("catch_up", RunStatus.NEEDS_AUTH, lost),
        ("catch_up", RunStatus.OK, lost),
        ("manual", RunStatus.NEEDS_AUTH, None),
    ]
    assert log.count("waited for the authorization") == 1
    # The one ok run wrote the one playlist, into bob's library; alice's job ran no extra run.
    assert len(world.fake.user_playlist_ids("bob")) == 1
    assert shown(world.runs("alice-daily", "alice")[1:]) == [("catch_up", RunStatus.OK, lost)]


def test_reauthorize_on_the_status_page_runs_the_lost_fire_time_now(world: World) -> None:
    # The daemon listens where Spotify sends the browser back, so it serves /callback itself.
    world.write_config({"daily": DAILY}, http={"listen": f"127.0.0.1:{world.redirect_port}"})
    lost = seed(world, "daily")
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    daemon = world.daemon()
    daemon.wait_started()
    refused = world.wait_runs("daily", lambda rs: len(rs) == 2)
    assert shown(refused[1:]) == [("catch_up", RunStatus.NEEDS_AUTH, lost)]

    base = f"http://127.0.0.1:{world.redirect_port}"
    page = reauthorize_on_the_page(base)
    stored = time.monotonic()
    made_up = world.wait_runs("daily", lambda rs: len(rs) >= 3, timeout=20, what="the lost run")
    assert time.monotonic() - stored < 10
    assert "a scheduled run that waited for the authorization runs now" in page
    assert shown(made_up[2:]) == [("catch_up", RunStatus.OK, lost)]
    daemon.wait_log(waited("daily", lost, "default") + "; running it now")
    time.sleep(2)
    log = stop(daemon)
    assert shown(world.runs("daily")[1:]) == [
        ("catch_up", RunStatus.NEEDS_AUTH, lost),
        ("catch_up", RunStatus.OK, lost),
    ]
    assert log.count("waited for the authorization") == 1


def test_on_a_pair_the_active_daemon_alone_makes_the_lost_fire_time_up(
    world: World, postgres_url: str
) -> None:
    paths = [
        world.write_node_config(
            node,
            {"daily": DAILY},
            state={"url": postgres_url, "node": node},
            http={"listen": f"127.0.0.1:{free_port()}"},
        )
        for node in ("a", "b")
    ]
    lost = seed(world, "daily", state=PostgresStateStore(postgres_url))
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    active = world.daemon(config=paths[0])
    active.wait_log("is now the active daemon", timeout=60)

    def history() -> list[RunRecord]:
        store = PostgresStateStore(postgres_url, readonly=True)
        try:
            return list(reversed(store.runs("daily", limit=100)))
        finally:
            store.close()

    wait_for(lambda: [r for r in history() if r.ended_at is not None][1:], 30, "the refusal")
    assert shown(history()[1:]) == [("catch_up", RunStatus.NEEDS_AUTH, lost)]
    standby = world.daemon(config=paths[1])
    standby.wait_started()

    # `auth` stores the token in the database: both daemons see it; the active one runs the
    # fire time again, claiming its make-up (its first run's claim is taken), once.
    done = world.authorize()
    assert done.returncode == 0, done.stderr
    wait_for(lambda: len([r for r in history() if r.ended_at is not None]) >= 3, 20, "the make-up")
    standby.wait_log("found a new Spotify authorization", timeout=20)
    time.sleep(2)
    logs = [stop(active), stop(standby)]
    assert shown(history()[1:]) == [
        ("catch_up", RunStatus.NEEDS_AUTH, lost),
        ("catch_up", RunStatus.OK, lost),
    ]
    assert logs[0].count(waited("daily", lost, "default")) == 1
    assert "waited for the authorization" not in logs[1]


def test_an_authorization_given_while_no_daemon_ran_makes_the_lost_fire_time_up_at_start(
    world: World,
) -> None:
    world.write_config({"daily": DAILY}, grant=False)
    assert world.authorize().returncode == 0
    lost = seed(world, "daily")
    assert world.fake.revoke_user("alice") == 1
    daemon = world.daemon()
    daemon.wait_started()
    refused = world.wait_runs("daily", lambda rs: len(rs) == 2)
    assert shown(refused[1:]) == [("catch_up", RunStatus.NEEDS_AUTH, lost)]
    stop(daemon)

    # A restart with the same (refused) authorization makes nothing up: it would only fail again.
    daemon = world.daemon()
    daemon.wait_started()
    time.sleep(3)
    assert len(world.runs("daily")) == 2
    stop(daemon)

    # The user authorizes with the service stopped; the daemon makes that fire time up at start.
    assert world.authorize().returncode == 0
    daemon = world.daemon()
    daemon.wait_started()
    made_up = world.wait_runs("daily", lambda rs: len(rs) == 3, timeout=20, what="the make-up")
    assert shown(made_up[2:]) == [("catch_up", RunStatus.OK, lost)]
    log = stop(daemon)
    assert waited("daily", lost, "default") + "; running it now" in log
    assert "is authorized again" not in log  # nothing was re-authorized while it ran

    # Once made up, later starts leave it be.
    daemon = world.daemon()
    daemon.wait_started()
    time.sleep(3)
    stop(daemon)
    assert len(world.runs("daily")) == 3
