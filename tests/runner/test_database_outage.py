"""The state database becomes unreachable under an active daemon: a real network cut.

The daemon reaches the real PostgreSQL through a TCP relay in the test; cutting the relay drops
every connection and refuses new ones, as a dead link does. The active daemon keeps its schedule
for `state.grace` with one loud line, runs nothing it cannot claim, steps down when the grace
runs out, and takes the lead again once the database is back.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from daemon_world import DaemonProcess, World, every, free_port, spotify_config, wait_for

from runner.config import load_config
from runner.errors import ConfigError
from runner.state import INTERRUPTED, SPOOL_FILE, RunRecord, RunStatus, StateError
from runner.state.postgres import PostgresStateStore
from runner.state.tokens import PostgresTokenStore
from runner.testing import FakeSpotify, Fault
from runner.tokens import TokenManager

ACTIVE = "is now the active daemon"
LOST = "lost the connection to the state database"


class Relay:
    """127.0.0.1:port -> the PostgreSQL server, until `cut()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def relay(postgres_url: str) -> Iterator[Relay]:
    parts = urlsplit(postgres_url)
    assert parts.hostname is not None
    found = Relay((parts.hostname, parts.port or 5432))
    found.open()
    yield found
    found.cut()


def _runs(url: str, job: str = "tick") -> list[RunRecord]:
    store = PostgresStateStore(url, readonly=True)
    try:
        return store.runs(job, limit=1000)
    finally:
        store.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def _active_with_a_run_going(
    world: World, postgres_url: str, relay: Relay, **job: Any
) -> tuple[DaemonProcess, RunRecord]:
    """An active daemon reaching the database through the relay, and a 3-s run it has going.

    Going means in the job's sleep, past its first Spotify call: the run has read its job state
    by then. (A cut between its start and that read fails the run, which needs its state:
    once in CI, when the cut came as soon as the run's row was there.)
    """
    world.write_config(
        {"slow": every(5, job="slow", options={"seconds": 3}, **job)},
        state={"url": _through(postgres_url, relay.port), "node": "a", "grace": "30s"},
    )
    daemon = world.daemon()
    daemon.wait_log(ACTIVE, timeout=30)
    going = wait_for(
        lambda: [r for r in _runs(postgres_url, "slow") if r.ended_at is None],
        timeout=30,
        what="a run going",
    )[0]
    since = going.started_at.timestamp()
    wait_for(
        lambda: [
            r for r in world.fake.requests if r.path.rstrip("/") == "/v1/me" and r.at >= since
        ],
        timeout=30,
        what="the run's first Spotify call",
    )
    return daemon, going


def _recorded_end(postgres_url: str, run_id: int) -> RunRecord:
    return wait_for(
        lambda: [r for r in _runs(postgres_url, "slow") if r.id == run_id and r.ended_at],
        timeout=30,
        what="the run's end recorded",
    )[0]


def test_an_unreachable_database_keeps_the_schedule_for_the_grace_then_steps_down(
    world: World, postgres_url: str, relay: Relay
) -> None:
    url = _through(postgres_url, relay.port)
    world.write_config({"tick": every(1)}, state={"url": url, "node": "a", "grace": "6s"})
    daemon = world.daemon()
    daemon.wait_log(ACTIVE, timeout=30)
    wait_for(lambda: _runs(postgres_url), timeout=30, what="a run before the cut")

    relay.cut()
    cut_at = datetime.now(UTC)
    log = daemon.wait_log(LOST, timeout=30)
    # Runs due during the outage cannot claim their fire time: each is one line, none runs.
    log = daemon.wait_log("is still unreachable after", timeout=40)
    # Each run due meanwhile is one line naming the database, and none ran (checked below).
    assert "tick: cannot connect to the state database" in log
    assert log.count(LOST) == 1  # one loud line, not one per tick
    lost = next(line for line in log.splitlines() if LOST in line)
    assert "keeps its schedule for up to 6s (state.grace)" in lost
    assert "fix: make the database reachable again" in lost
    assert "Traceback" not in log

    relay.open()
    daemon.wait_log(ACTIVE, timeout=40, count=2)  # it bids again and wins once it is back
    back_at = datetime.now(UTC)
    # Nothing ran in the outage; the schedule goes on once it leads again.
    assert not [r for r in _runs(postgres_url) if cut_at < r.started_at < back_at]
    wait_for(
        lambda: [r for r in _runs(postgres_url) if r.started_at > back_at],
        timeout=30,
        what="a run after the database came back",
    )


def test_grace_is_range_checked(world: World) -> None:
    path = world.write_config({"tick": every(1)}, state={"grace": "11m"})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "state.grace" in str(raised.value)
    path = world.write_config({"tick": every(1)}, state={"grace": "-1s"})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "state.grace" in str(raised.value)


def test_a_run_that_ends_while_the_database_is_unreachable_is_recorded_once_it_is_back(
    world: World, postgres_url: str, relay: Relay
) -> None:
    daemon, going = _active_with_a_run_going(world, postgres_url, relay)
    relay.cut()  # the run goes on; its end cannot be written now
    log = daemon.wait_log("slow: ok", timeout=15)
    assert "Traceback" not in log
    kept = next(line for line in log.splitlines() if f"run {going.id} " in line)
    assert "cannot be reached" in kept, kept
    assert "recorded when it is back" in kept, kept
    time.sleep(1)
    relay.open()
    # Recorded as it ended, once the database answers again: not left "running", not interrupted.
    ended = _recorded_end(postgres_url, going.id)
    assert ended.status.value == "ok", ended
    assert ended.error is None
    assert ended.summary == "slept 3s as alice"
    assert ended.ended_at is not None
    assert ended.ended_at < datetime.now(UTC)
    store = PostgresStateStore(postgres_url, readonly=True)
    try:
        assert "slept 3s as alice" in (store.run_log(going.id) or "")
    finally:
        store.close()
    assert "Traceback" not in daemon.stderr()


def test_a_daemon_stopped_before_the_database_is_back_records_the_run_at_its_next_start(
    world: World, postgres_url: str, relay: Relay
) -> None:
    """Not left "running" for the next start to take as interrupted, and so made up (twice)."""
    daemon, going = _active_with_a_run_going(world, postgres_url, relay, catch_up=True)
    relay.cut()
    daemon.wait_log("slow: ok", timeout=15)
    daemon.send(signal.SIGTERM)  # stopped (a reboot, say) before the database is back
    assert daemon.wait() == 0
    stop = daemon.stderr()
    assert f"the end of run(s) {going.id}, the state of job(s)" in stop
    assert SPOOL_FILE in stop

    relay.open()
    again = world.daemon()
    again.wait_log(ACTIVE, timeout=30)
    ended = _recorded_end(postgres_url, going.id)
    assert (ended.status, ended.error, ended.summary) == (RunStatus.OK, None, "slept 3s as alice")
    time.sleep(3)  # a make-up, were there one, would start now
    same_slot = [r for r in _runs(postgres_url, "slow") if r.scheduled_at == going.scheduled_at]
    assert [r.id for r in same_slot] == [going.id], "the fire time ran twice"
    assert not (world.state_dir / SPOOL_FILE).exists()
    assert "Traceback" not in daemon.stderr() + again.stderr()


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_read_right_after_the_database_came_back_is_answered(
    postgres_url: str, relay: Relay
) -> None:
    """The connection the outage broke fails its first use, even with the server back: a read
    is tried again on a new one (a run's end-of-run read once failed the run so, in CI)."""
    store = PostgresStateStore(_through(postgres_url, relay.port))
    try:
        run_id = store.start_run("slow", scheduled_at=T0, started_at=T0)
        relay.cut()
        relay.open()
        found = store.get_run(run_id)
        assert found is not None
        assert found.status is RunStatus.RUNNING
    finally:
        store.close()


@pytest.mark.parametrize("orphaned", [False, True], ids=["alone", "marked-by-another"])
def test_the_store_keeps_what_it_cannot_write_and_writes_it_once_the_database_is_back(
    postgres_url: str, relay: Relay, orphaned: bool
) -> None:
    mine = PostgresStateStore(_through(postgres_url, relay.port))
    other = PostgresStateStore(postgres_url)  # the other daemon of the pair, still connected
    try:
        run_id = mine.start_run("slow", scheduled_at=T0, started_at=T0)
        mine.save_job_state("slow", {"seen": 1})
        relay.cut()
        record = mine.finish_run(
            run_id, RunStatus.OK, ended_at=T0 + timedelta(seconds=3), summary="done"
        )
        assert (record.id, record.status, record.summary) == (run_id, RunStatus.OK, "done")
        assert record.ended_at == T0 + timedelta(seconds=3)
        mine.save_run_log(run_id, "INFO job.slow: done\n")
        mine.save_job_state("slow", {"seen": 2})
        assert mine.load_job_state("slow") == {"seen": 2}  # what it kept, not what is stored
        assert other.load_job_state("slow") == {"seen": 1}
        if orphaned:
            # Our session is gone with the cut: the other daemon finds the run orphaned.
            wait_for(lambda: other.mark_interrupted(T0 + timedelta(seconds=5)), timeout=20,
                     what="the other daemon marking the run interrupted")  # fmt: skip
        relay.open()
        if orphaned:
            assert mine.last_run("slow") is not None  # any use writes what was kept, first
        else:
            mine.flush()  # what the daemon calls on every tick
        found = other.get_run(run_id)
        assert found is not None
        if orphaned:
            assert (found.status, found.error) == (RunStatus.FAILED, INTERRUPTED)
            assert found.summary == "ended ok on this node while the database was out"
        else:
            assert (found.status, found.summary, found.error) == (RunStatus.OK, "done", None)
            assert found.ended_at == T0 + timedelta(seconds=3)
        assert other.run_log(run_id) == "INFO job.slow: done\n"
        assert other.load_job_state("slow") == {"seen": 2}
        assert other.mark_interrupted(T0 + timedelta(minutes=1)) == 0
    finally:
        mine.close()
        other.close()


def test_after_an_outage_of_both_the_old_active_daemon_s_run_is_not_taken_for_orphaned(
    world: World, postgres_url: str, relay: Relay
) -> None:
    # Each daemon reaches the database through its own relay. Both lose it; the standby's comes
    # back first and it takes the lead; the old active daemon's comes back a moment later, its
    # long run still going. That run is not interrupted (it is not orphaned: its daemon lives),
    # so it is neither recorded as interrupted nor made up: it ends, once, as it really did.
    parts = urlsplit(postgres_url)
    other = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    other.open()
    try:
        paths = [
            world.write_node_config(
                node,
                {"slow": every(30, job="slow", catch_up=True, options={"seconds": 12})},
                state={"url": _through(postgres_url, via.port), "node": node, "grace": "0s"},
                http=False,
            )
            for node, via in (("a", relay), ("b", other))
        ]
        old = world.daemon(config=paths[0])
        old.wait_log(ACTIVE, timeout=30)
        new = world.daemon(config=paths[1])
        new.wait_log("spotify-runner started", timeout=30)
        going = wait_for(
            lambda: [r for r in _runs(postgres_url, "slow") if r.ended_at is None],
            timeout=40,
            what="the old active daemon's run going",
        )[0]
        relay.cut()
        other.cut()
        old.wait_log("stands by", timeout=20)  # grace 0s: it steps down at once
        time.sleep(2)
        other.open()
        new.wait_log(ACTIVE, timeout=20)
        time.sleep(0.5)
        relay.open()  # the old active daemon is back within its next poll
        ended = wait_for(
            lambda: [r for r in _runs(postgres_url, "slow") if r.id == going.id and r.ended_at],
            timeout=30,
            what="the long run's end",
        )[0]
        assert (ended.status.value, ended.error) == ("ok", None), ended
        time.sleep(5)  # a make-up, were there one, would have started by now
        assert not [r for r in _runs(postgres_url, "slow") if r.trigger == "catch_up"]
        assert "Traceback" not in old.stderr() + new.stderr()
    finally:
        other.cut()


def test_a_stop_before_the_database_is_back_keeps_what_it_could_not_write_for_the_next_start(
    postgres_url: str, relay: Relay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The run's end, its log and the job states go to a 0600 file in state_dir, then home."""
    spool = tmp_path / "state" / SPOOL_FILE
    mine = PostgresStateStore(_through(postgres_url, relay.port), spool=spool)
    other = PostgresStateStore(postgres_url)  # the other daemon of the pair
    again = None
    try:
        run_id = mine.start_run("slow", scheduled_at=T0, started_at=T0)
        mine.save_job_state("slow", {"seen": 1})
        relay.cut()
        mine.finish_run(run_id, RunStatus.OK, ended_at=T0 + timedelta(seconds=3), summary="done")
        mine.save_run_log(run_id, "INFO job.slow: done\n")
        mine.save_job_state("slow", {"seen": 2})
        mine.save_job_state("fast", {"seen": 7})
        other.save_job_state("fast", {"seen": 8})  # the other daemon ran it since: newer
        with caplog.at_level("ERROR", logger="runner.state"):
            mine.close()  # the daemon stops, the database still out of reach
        (line,) = [r.getMessage() for r in caplog.records if "at the stop" in r.getMessage()]
        assert f"the end of run(s) {run_id}, the state of job(s) fast, slow: kept in" in line
        assert str(spool) in line
        assert spool.stat().st_mode & 0o777 == 0o600
        assert other.get_run(run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]

        relay.open()
        again = PostgresStateStore(_through(postgres_url, relay.port), spool=spool)  # restart
        found = other.get_run(run_id)
        assert found is not None
        assert (found.status, found.summary, found.error) == (RunStatus.OK, "done", None)
        assert found.ended_at == T0 + timedelta(seconds=3)
        assert other.run_log(run_id) == "INFO job.slow: done\n"
        assert other.load_job_state("slow") == {"seen": 2}
        assert other.load_job_state("fast") == {"seen": 8}  # not replaced by the older one
        assert not spool.exists()
        assert other.mark_interrupted(T0 + timedelta(minutes=1)) == 0  # nothing left running
    finally:
        for store in (mine, other, again):
            if store is not None:
                store.close()


def test_a_damaged_spool_is_one_line_that_names_it_and_is_left_in_place(
    postgres_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / SPOOL_FILE
    spool.write_text('{"version": 1, "runs": ')
    with pytest.raises(StateError) as raised:
        PostgresStateStore(postgres_url, spool=spool)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{spool} is damaged" in message
    assert "move it away to start" in message
    assert spool.read_text() == '{"version": 1, "runs": '


def test_a_rotated_token_the_database_refused_is_kept_by_the_stop_and_stored_at_the_next_start(
    postgres_url: str, relay: Relay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database drops while Spotify answers a refresh: the new token exists only in memory.

    The daemon's stop hands it to the state store (`keep_token`), which keeps it in the spool
    file; the next start stores it, since the row still holds the refresh token it replaced.
    """
    spool = tmp_path / "state" / SPOOL_FILE
    url = _through(postgres_url, relay.port)
    with FakeSpotify(rotation="rotate_revoke") as fake:
        grant = fake.grant(scopes=("user-read-private",))
        seed = PostgresTokenStore(postgres_url)
        TokenManager(spotify_config(fake, grant), seed).refresh(force=True)
        stored = seed.load()
        assert stored is not None
        through = PostgresTokenStore(url)
        tokens = TokenManager(spotify_config(fake), through)
        state = PostgresStateStore(url, spool=spool)
        # Spotify takes 2 s to answer; meanwhile the database goes out of reach.
        fake.inject(Fault(method="POST", path="/api/token$", status=None, latency=2.0))
        threading.Timer(1.0, relay.cut).start()
        with caplog.at_level("INFO"):
            tokens.refresh(force=True)
        rotation = tokens.unsaved_rotation()
        assert rotation is not None
        assert "the state database" in caplog.text
        assert "check the disk" not in caplog.text
        token, replaces = rotation
        assert replaces == stored.refresh_token
        assert token.refresh_token != replaces
        assert seed.load() == stored  # the row still holds the spent one
        assert state.keep_token("default", token.to_json(), replaces) == str(spool)
        state.close()  # the stop
        assert spool.stat().st_mode & 0o777 == 0o600

        relay.open()
        PostgresStateStore(url, spool=spool).close()  # the next start
        assert not spool.exists()
        again = seed.load()
        assert again is not None
        assert again.refresh_token == token.refresh_token
        fresh_store = PostgresTokenStore(postgres_url)
        assert TokenManager(spotify_config(fake), fresh_store).refresh(
            force=True
        )  # no re-authorization
        for store in (seed, through, fresh_store):
            store.close()
        for secret in (grant, token.refresh_token, token.access_token or "-"):
            assert secret not in caplog.text


def test_a_kept_token_does_not_replace_an_authorization_given_since(
    postgres_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / SPOOL_FILE
    with FakeSpotify() as fake:
        tokens = PostgresTokenStore(postgres_url)
        TokenManager(
            spotify_config(fake, fake.grant(scopes=("user-read-private",))), tokens
        ).refresh(force=True)
        stored = tokens.load()
        assert stored is not None
        state = PostgresStateStore(postgres_url, spool=spool)
        kept = replace(stored, refresh_token="kept-by-the-stop")
        state.keep_token("default", kept.to_json(), stored.refresh_token)
        state.close()
        newer = replace(stored, refresh_token="from-auth-meanwhile")
        tokens.save(newer)  # `auth` while the daemon was stopped
        PostgresStateStore(postgres_url, spool=spool).close()
        assert tokens.load() == newer
        assert not spool.exists()
        tokens.close()


def test_a_daemon_stopped_with_a_rotated_token_the_database_refused_keeps_it_for_its_next_start(
    postgres_url: str, relay: Relay, tmp_path: Path
) -> None:
    """The database drops while Spotify answers a refresh; the daemon is stopped before it is
    back. The next start stores the token the stop kept: the account goes on, no `auth`."""
    with FakeSpotify(rotation="rotate_revoke", access_token_lifetime=4) as fake:
        world = World(fake, tmp_path)
        try:
            world.write_config(
                {"tick": every(1)},
                state={"url": _through(postgres_url, relay.port), "node": "a", "grace": "30s"},
            )
            daemon = world.daemon()
            daemon.wait_log(ACTIVE, timeout=30)
            wait_for(lambda: [r for r in _runs(postgres_url) if r.status is RunStatus.OK], 30,
                     "an ok run")  # fmt: skip
            fake.inject(Fault(method="POST", path="/api/token$", status=None, latency=3.0))
            wait_for(lambda: fake.faults[0][1] == 0, 30, "a refresh reaching Spotify")
            relay.cut()  # Spotify answers, rotating the token; the database is gone meanwhile
            daemon.wait_log("could not be saved", timeout=20)
            daemon.send(signal.SIGTERM)
            assert daemon.wait() == 0
            (line,) = [ln for ln in daemon.stderr().splitlines() if "with this stop" in ln]
            assert f"kept in {world.state_dir / SPOOL_FILE} with this stop" in line

            relay.open()
            restarted_at = datetime.now(UTC)
            again = world.daemon()
            again.wait_log(ACTIVE, timeout=30)
            wait_for(
                lambda: [r for r in _runs(postgres_url) if r.started_at > restarted_at
                         and r.status is RunStatus.OK],
                30,
                "an ok run after the restart",
            )  # fmt: skip
            after = [r for r in _runs(postgres_url) if r.started_at > restarted_at]
            assert all(r.status is not RunStatus.NEEDS_AUTH for r in after), after
            assert "stored the refresh token the last stop could not save" in again.stderr()
            assert "Traceback" not in daemon.stderr() + again.stderr()
        finally:
            world.close()
        world.assert_no_secrets()
