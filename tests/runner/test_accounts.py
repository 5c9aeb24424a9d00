"""Several Spotify accounts in one daemon, against the embedded fake (issue 11).

Real processes (`spotify-runner auth`, `run`, `jobs`, `check`) over real HTTP; the fake holds one
app and several users, each with their own library and playlists.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from daemon_world import World, every

from runner.config import load_config
from runner.state import RunRecord, RunStatus, open_state
from runner.testing.fake import Fault
from runner.tokens import StoredToken, TokenManager, TokenStore

REVOKED_BOB = "authorization expired or revoked: run 'spotify-runner auth --account bob'"
TWO = {"alice": {}, "bob": {}}


def ok(runs: list[RunRecord]) -> int:
    return sum(r.status is RunStatus.OK for r in runs)


def needs_auth(runs: list[RunRecord]) -> list[RunRecord]:
    return [r for r in runs if r.status is RunStatus.NEEDS_AUTH]


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def summary(done: Any) -> str:
    """The first line `auth` prints after success."""
    return next(line for line in done.stdout.splitlines() if line.startswith("authorized "))


def two_accounts(world: World, jobs: dict[str, Any], **accounts: Any) -> None:
    """Bob joins the fake; the config lists alice and bob (and their jobs)."""
    if "bob" not in world.fake.users:
        world.fake.add_user("bob", "Bob")
    world.write_config(jobs, grant=False, accounts=accounts or TWO)


def authorize_both(world: World) -> None:
    for user in ("alice", "bob"):
        done = world.authorize("--account", user, user=user)
        assert done.returncode == 0, done.stderr
        name = user.capitalize()
        assert summary(done) == f"authorized {name} ({user}) as account {user}"


# -- the daemon ----------------------------------------------------------------------------------


def test_a_revoked_account_stops_only_its_jobs_and_auth_brings_them_back(world: World) -> None:
    two_accounts(
        world,
        {
            "alice-writer": every(1, job="writer", account="alice"),
            "bob-writer": every(1, job="writer", account="bob"),
        },
    )
    authorize_both(world)
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("alice-writer", lambda rs: ok(rs) >= 2, account="alice", what="alice's runs")
    world.wait_runs("bob-writer", lambda rs: ok(rs) >= 2, account="bob", what="bob's runs")

    # Bob removes the app's access in his Spotify settings.
    revoked_at = datetime.now(UTC)
    assert world.fake.revoke_user("bob") == 1
    refused = world.wait_runs(
        "bob-writer",
        lambda rs: len(needs_auth(rs)) >= 3,
        account="bob",
        timeout=60,
        what="bob's runs refused",
    )
    assert needs_auth(refused)[-1].error == REVOKED_BOB
    # Alice's runs went on, every one of them ok, before and after.
    alice = world.wait_runs(
        "alice-writer",
        lambda rs: sum(r.started_at > revoked_at for r in rs) >= 3,
        account="alice",
        what="alice's runs after bob's revocation",
    )
    assert {r.status for r in alice} == {RunStatus.OK}

    status = json.loads(world.cli("jobs", "--json").stdout)
    by_name = {a["name"]: a for a in status["accounts"]}
    assert by_name["alice"]["authorized"] is True
    assert by_name["alice"]["user"] == {"id": "alice", "display_name": "Alice"}
    assert (by_name["bob"]["authorized"], by_name["bob"]["problem"]) == (False, REVOKED_BOB)
    assert by_name["bob"]["user"] == {"id": "bob", "display_name": "Bob"}
    assert {j["name"]: j["account"] for j in status["jobs"]} == {
        "alice-writer": "alice",
        "bob-writer": "bob",
    }
    text = world.cli("jobs").stdout.splitlines()
    assert text[1].startswith("account alice: Alice (alice), authorized, 18")
    assert text[2] == f"account bob: Bob (bob), {REVOKED_BOB}"
    assert text[4].split()[:2] == ["JOB", "ACCOUNT"]

    # Bob authorizes again: his jobs come back, with no restart.
    again = world.authorize("--account", "bob", user="bob")
    assert again.returncode == 0, again.stderr
    last_refusal = max(r.id for r in needs_auth(world.runs("bob-writer", "bob")))
    world.wait_runs(
        "bob-writer",
        lambda rs: sum(r.status is RunStatus.OK and r.id > last_refusal for r in rs) >= 2,
        account="bob",
        timeout=60,
        what="bob's runs after auth",
    )
    assert daemon.proc.poll() is None
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "Traceback" not in daemon.stderr()

    # Every ok run wrote one playlist, into its own user's library; history names the account.
    for user in ("alice", "bob"):
        runs = world.runs(f"{user}-writer", user)
        assert {r.account for r in runs} == {user}
        playlists = world.fake.user_playlist_ids(user)
        assert len(playlists) == ok(runs)
        owners = {world.fake.playlist_details(p)["owner"] for p in playlists}
        assert owners == {user}


def test_a_long_retry_after_on_one_account_holds_every_account(world: World) -> None:
    """Spotify's rate limit is per app: alice's 429 holds bob's jobs too."""
    world.fake.inject(
        Fault(method="GET", path="/me/playlists$", status=429, retry_after=3600, times=None)
    )
    two_accounts(
        world,
        {
            "alice-limited": every(1, job="limited", account="alice", retries=0),
            "bob-tick": every(1, job="counter", account="bob"),
        },
    )
    authorize_both(world)
    daemon = world.daemon()
    held = world.wait_runs(
        "bob-tick",
        lambda rs: any(r.status is RunStatus.SKIPPED for r in rs),
        account="bob",
        timeout=60,
        what="bob's run held",
    )
    limited = [r for r in world.runs("alice-limited", "alice") if r.ended_at]
    assert limited[0].status is RunStatus.RATE_LIMITED
    assert {r.status for r in limited[1:]} <= {RunStatus.SKIPPED}
    first_skip = next(r for r in held if r.status is RunStatus.SKIPPED)
    assert (first_skip.summary or "").startswith("Spotify rate-limited this app until")
    # Once held, bob's job sends nothing: every later run of it is skipped.
    later = world.wait_runs(
        "bob-tick",
        lambda rs: sum(r.id > first_skip.id for r in rs) >= 2,
        account="bob",
        timeout=60,
        what="bob's later runs",
    )
    after = [r for r in later if r.id > first_skip.id]
    assert {r.status for r in after} == {RunStatus.SKIPPED}
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_sighup_adds_an_account_and_its_job_without_disturbing_the_first(world: World) -> None:
    two_accounts(world, {"alice-tick": every(1, job="counter", account="alice")}, alice={})
    assert world.authorize("--account", "alice", user="alice").returncode == 0
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("alice-tick", lambda rs: ok(rs) >= 1, account="alice", what="alice's runs")

    two_accounts(
        world,
        {
            "alice-tick": every(1, job="counter", account="alice"),
            "bob-tick": every(1, job="counter", account="bob"),
        },
    )
    assert world.authorize("--account", "bob", user="bob").returncode == 0
    daemon.send(signal.SIGHUP)
    daemon.wait_log("reloaded: 2 job(s), added bob-tick", timeout=60)
    world.wait_runs("bob-tick", lambda rs: ok(rs) >= 2, account="bob", what="bob's runs")
    done = [r for r in world.runs("alice-tick", "alice") if r.ended_at]  # one may be going
    assert {r.status for r in done} == {RunStatus.OK}
    # alice's job kept its state across the reload: her manager and history were kept.
    assert done[-1].summary == f"count {len(done)}"
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_an_account_past_its_six_months_needs_auth_and_the_other_runs(world: World) -> None:
    world.fake.add_user("bob", "Bob")
    seven_months_ago = time.time() - 213 * 86400
    alice = world.fake.grant("alice", scopes=("playlist-modify-private",))
    bob = world.fake.grant(
        "bob", scopes=("playlist-modify-private",), authorized_at=seven_months_ago
    )
    world.write_config(
        {
            "alice-tick": every("1h", job="counter", account="alice"),
            "bob-tick": every("1h", job="counter", account="bob"),
        },
        grant=False,
        accounts={"alice": {"refresh_token": alice}, "bob": {"refresh_token": bob}},
    )
    bob_run = world.cli("run-job", "bob-tick")
    assert bob_run.returncode == 3
    assert bob_run.stdout.strip().endswith(
        "authorization expired or revoked: run 'spotify-runner auth --account bob'"
    )
    alice_run = world.cli("run-job", "alice-tick")
    assert alice_run.returncode == 0, alice_run.stderr
    assert alice_run.stdout.strip().endswith(": count 1")


def test_an_unreadable_token_store_names_the_accounts_auth_command(world: World) -> None:
    world.fake.add_user("bob", "Bob")
    world.write_config(
        {"bob-tick": every("1h", job="counter", account="bob")}, grant=False, accounts=TWO
    )
    store = TokenStore(world.state_dir, "bob")
    store.path.parent.mkdir(parents=True, mode=0o700)
    store.path.write_text("{not json")
    done = world.cli("run-job", "bob-tick")
    assert done.returncode == 3
    assert done.stdout.strip().endswith(
        f"token store {store.path} is corrupt (not JSON): run 'spotify-runner auth --account bob'"
    ), done.stdout
    token = world.cli("token", "--account", "bob")
    assert token.returncode == 3
    assert lines(token.stderr) == [
        f"error: token store {store.path} is corrupt (not JSON): run "
        "'spotify-runner auth --account bob'"
    ]


# -- auth ------------------------------------------------------------------------------------------


def test_auth_for_bob_answered_by_alice_is_refused_and_accepted_with_replace(
    world: World,
) -> None:
    two_accounts(world, {"tick": every("1h", job="counter", account="bob")})
    authorize_both(world)
    bob_store = TokenStore(world.state_dir, "bob")
    before = bob_store.load()
    assert before is not None
    assert (before.user_id, before.user_name) == ("bob", "Bob")

    # Alice is still logged in to Spotify in the browser: her consent comes back for bob.
    refused = world.authorize("--account", "bob", user="alice")
    assert refused.returncode == 3
    assert lines(refused.stderr) == [
        "error: account bob is Bob (bob), but Alice (alice) gave this consent: nothing was "
        "stored; log in to Spotify as Bob and run 'spotify-runner auth --account bob' again, "
        "or add --replace to make account bob Alice (alice)"
    ]
    assert bob_store.load() == before

    replaced = world.authorize("--account", "bob", "--replace", user="alice")
    assert replaced.returncode == 0, replaced.stderr
    assert summary(replaced) == ("authorized Alice (alice) as account bob (replacing Bob (bob))")
    after = bob_store.load()
    assert after is not None
    assert after.user_id == "alice"
    assert after.refresh_token != before.refresh_token


def test_a_new_account_answered_by_a_user_another_account_is_refused(world: World) -> None:
    two_accounts(world, {"tick": every("1h", job="counter", account="alice")})
    assert world.authorize("--account", "alice", user="alice").returncode == 0
    refused = world.authorize("--account", "bob", user="alice")
    assert refused.returncode == 3
    (line,) = lines(refused.stderr)
    assert line.startswith(
        "error: Alice (alice) is already account alice, so this consent cannot be account bob "
        "too: nothing was stored;"
    )
    assert not TokenStore(world.state_dir, "bob").path.exists()
    assert world.authorize("--account", "bob", "--replace", user="alice").returncode == 0


def test_auth_records_the_user_and_token_prints_each_accounts_token(world: World) -> None:
    two_accounts(world, {"tick": every("1h", job="counter", account="alice")})
    authorize_both(world)
    for user in ("alice", "bob"):
        done = world.cli("token", "--account", user, record_stdout=False)
        assert done.returncode == 0, done.stderr
        me = requests.get(
            world.fake.api_url + "/me",
            headers={"Authorization": f"Bearer {done.stdout.strip()}"},
            timeout=10,
        )
        assert me.json()["id"] == user


def test_check_online_checks_every_account_and_names_the_one_missing_scopes(
    world: World,
) -> None:
    world.fake.add_user("bob", "Bob")
    alice = world.fake.grant("alice", scopes=("playlist-modify-private",))
    bob = world.fake.grant("bob", scopes=("user-library-read",))
    world.write_config(
        {
            "alice-writer": every("1h", job="writer", account="alice"),
            "bob-writer": every("1h", job="writer", account="bob"),
        },
        grant=False,
        accounts={"alice": {"refresh_token": alice}, "bob": {"refresh_token": bob}},
    )
    done = world.cli("check", "--online")
    assert done.returncode == 3
    out = lines(done.stdout)
    assert out[1].startswith("account alice: online: authorized as Alice (alice); every job's")
    assert lines(done.stderr) == [
        "error: account bob: the authorization lacks scopes playlist-modify-private: run "
        "'spotify-runner auth --account bob' to grant them"
    ]


def test_check_online_refuses_a_token_of_another_user_than_auth_recorded(world: World) -> None:
    two_accounts(world, {"tick": every("1h", job="counter", account="bob")})
    authorize_both(world)
    # bob's store now holds alice's token (a file copied by hand, say).
    alice_token = TokenStore(world.state_dir, "alice").load()
    bob_store = TokenStore(world.state_dir, "bob")
    bob_token = bob_store.load()
    assert alice_token is not None
    assert bob_token is not None
    bob_store.save(replace(alice_token, user_id="bob", user_name="Bob"))
    done = world.cli("check", "--online")
    assert done.returncode == 3
    assert lines(done.stderr) == [
        "error: account bob: the token answers as Alice (alice), but the account was authorized "
        "as Bob (bob): run 'spotify-runner auth --account bob'"
    ]


# -- errors: one line, exit 2 (config, usage) or 3 (authorization), never a traceback ------------


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (
            ("auth", "--no-browser"),
            2,
            "error: {config} has several accounts (alice, bob): say which with --account NAME",
        ),
        (
            ("token", "--account", "carol"),
            2,
            "error: no account named 'carol' in {config} (configured: alice, bob)",
        ),
        (
            ("token", "--account", "bob"),
            3,
            "error: no Spotify authorization stored yet: run 'spotify-runner auth --account bob'",
        ),
    ],
    ids=["auth-which-account", "unknown-account", "token-not-authorized"],
)
def test_account_errors_are_one_line(
    world: World, args: tuple[str, ...], code: int, expected: str
) -> None:
    two_accounts(world, {"tick": every("1h", job="counter", account="bob")})
    done = world.cli(*args, input="")
    assert done.returncode == code, done.stderr
    text = lines(done.stderr)
    assert len(text) == 1, text
    assert text[0].startswith(expected.format(config=world.config_path))
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("accounts", "job", "spotify_token", "expected"),
    [
        (
            TWO,
            {},
            False,
            "jobs.tick.account: required key missing: several accounts are "
            "configured, so name the one this job runs as (alice, bob)",
        ),
        (
            TWO,
            {"account": "carl"},
            False,
            "jobs.tick.account: unknown account 'carl'; configured: alice, bob",
        ),
        (
            TWO,
            {"account": "bob"},
            True,
            "spotify.refresh_token: a refresh token here is for a "
            "single account; with accounts: give it as accounts.NAME.refresh_token",
        ),
    ],
    ids=["no-account", "unknown-account", "both-token-places"],
)
def test_account_config_errors_are_located_and_exit_2(
    world: World,
    accounts: dict[str, Any],
    job: dict[str, Any],
    spotify_token: bool,
    expected: str,
) -> None:
    world.fake.add_user("bob", "Bob")
    world.write_config(
        {"tick": every("1h", job="counter", **job)},
        refresh_token=world.fake.grant() if spotify_token else None,
        grant=spotify_token,
        accounts=accounts,
    )
    for command in (("check",), ("run",), ("jobs",), ("auth", "--account", "bob")):
        done = world.cli(*command)
        assert done.returncode == 2, (command, done.stderr)
        (line,) = lines(done.stderr)
        where, _, message = line.partition(": ")
        assert where.startswith(f"{world.config_path}:")
        assert where.rsplit(":", 2)[-1].isdigit()
        assert message.startswith(expected), line


# -- the previous layout ----------------------------------------------------------------------


def test_a_state_dir_of_the_single_account_version_works_unchanged(world: World) -> None:
    """Built the old way: the token file as version 1 wrote it, history under 'default'."""
    refresh = world.fake.grant(scopes=("playlist-modify-private",))
    folder = world.state_dir / "accounts" / "default"
    folder.mkdir(parents=True, mode=0o700)
    old_token = {
        "version": 1,
        "refresh_token": refresh,
        "access_token": None,
        "expires_at": None,
        "access_lifetime": None,
        "scopes": ["playlist-modify-private"],
        "authorized_at": time.time() - 86400,
        "client_id": world.fake.CLIENT_ID,
        "config_token_fingerprint": None,
        "pkce": False,
    }
    (folder / "token.json").write_text(json.dumps(old_token, indent=2) + "\n")
    (folder / "token.json").chmod(0o600)
    state = open_state(world.state_dir)
    try:
        earlier = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
        run = state.start_run("tick", scheduled_at=earlier, started_at=earlier)
        state.finish_run(run, RunStatus.OK, ended_at=earlier, summary="count 1")
        state.save_job_state("tick", {"count": 1})
    finally:
        state.close()
    # The config of that version: no accounts:, no token in it (it came from `auth`).
    world.write_config({"tick": every("1h", job="counter")}, grant=False)

    status = json.loads(world.cli("jobs", "--json").stdout)
    (account,) = status["accounts"]
    assert (account["name"], account["authorized"], account["user"]) == ("default", True, None)
    assert status["jobs"][0]["last_run"]["summary"] == "count 1"
    done = world.cli("run-job", "tick")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": count 2")  # the job state carried over
    stored = TokenStore(world.state_dir).load()
    assert stored is not None
    assert stored.refresh_token == refresh

    # Adding a second account keeps the first one's authorization when it keeps its name.
    world.fake.add_user("bob", "Bob")
    world.write_config(
        {"tick": every("1h", job="counter", account="default")},
        grant=False,
        accounts={"default": {}, "bob": {}},
    )
    again = world.cli("run-job", "tick")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(": count 3")


# -- token managers ------------------------------------------------------------------------------


def test_one_accounts_refresh_never_waits_on_anothers(world: World) -> None:
    """Alice's token endpoint hangs; bob refreshes meanwhile (each has its own lock and file)."""
    world.fake.add_user("bob", "Bob")
    tokens = {u: world.fake.grant(u, scopes=("playlist-modify-private",)) for u in ("alice", "bob")}
    world.write_config(
        {"tick": every("1h", job="counter", account="alice")},
        grant=False,
        accounts={u: {"refresh_token": t} for u, t in tokens.items()},
    )
    config = load_config(world.config_path, env={})
    entered, release = threading.Event(), threading.Event()

    class Hanging(requests.Session):
        def post(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            entered.set()
            release.wait(30)
            return super().post(*args, **kwargs)

    alice = TokenManager(
        config.spotify,
        TokenStore(config.state_dir, "alice"),
        refresh_token=config.accounts["alice"].refresh_token,
        session_factory=Hanging,
    )
    bob = TokenManager(
        config.spotify,
        TokenStore(config.state_dir, "bob"),
        refresh_token=config.accounts["bob"].refresh_token,
    )
    results: dict[str, str] = {}
    waiting = threading.Thread(target=lambda: results.update(alice=alice.get_access_token()))
    waiting.start()
    try:
        assert entered.wait(10)
        results["bob"] = bob.get_access_token()  # while alice's refresh holds her lock
        assert waiting.is_alive()
    finally:
        release.set()
        waiting.join(30)
    with world.fake.lock:
        owners = {name: world.fake.access_tokens[t].user_id for name, t in results.items()}
    assert owners == {"alice": "alice", "bob": "bob"}
    saved = TokenStore(config.state_dir, "bob").load()
    assert isinstance(saved, StoredToken)
    assert saved.access_token == results["bob"]
