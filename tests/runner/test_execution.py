"""One run of one job: classification of how it ended, timeouts, state, and the history."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import spotipy
from daemon_world import JOBS_DIR

from runner.errors import (
    EXIT_AUTH,
    EXIT_JOB_FAILED,
    EXIT_OK,
    AuthorizationNeeded,
    DryRunWrite,
    MissingScopes,
    RateLimited,
    RunnerError,
    RunTimedOut,
    TransientError,
)
from runner.execution import RETRYABLE, classify, exit_code_for, run_once
from runner.loader import load_jobs
from runner.state import RunStatus, open_state
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


@pytest.mark.parametrize(
    ("exc", "status", "message", "retry_after"),
    [
        (
            AuthorizationNeeded(),
            RunStatus.NEEDS_AUTH,
            "authorization expired or revoked: run 'spotify-runner auth'",
            None,
        ),
        (
            MissingScopes({"user-top-read"}),
            RunStatus.NEEDS_AUTH,
            "the authorization lacks scopes user-top-read: run 'spotify-runner auth' to grant them",
            None,
        ),
        (RateLimited(120.0), RunStatus.RATE_LIMITED, "rate-limited by Spotify for 2m", 120.0),
        (RunTimedOut("late"), RunStatus.TIMED_OUT, "late", None),
        (TransientError("net down"), RunStatus.TRANSIENT, "net down", None),
        (DryRunWrite("refused POST /x"), RunStatus.FAILED, "dry run: refused POST /x", None),
        (RunnerError("plain"), RunStatus.FAILED, "plain", None),
        (
            requests.ConnectionError("http://secret@host"),
            RunStatus.TRANSIENT,
            "network error: ConnectionError",
            None,
        ),
        (ValueError("bad value"), RunStatus.FAILED, "job error: ValueError: bad value", None),
    ],
)
def test_classify_maps_errors_to_statuses(
    exc: BaseException, status: RunStatus, message: str, retry_after: float | None
) -> None:
    assert classify(exc) == (status, message, retry_after)


def test_classify_spotify_errors_by_http_status() -> None:
    server = spotipy.SpotifyException(503, -1, "https://api/v1/me:\n oops")
    missing = spotipy.SpotifyException(404, -1, "https://api/v1/playlists/x:\n Not found")
    assert classify(server)[0] is RunStatus.TRANSIENT
    status, message, _ = classify(missing)
    assert status is RunStatus.FAILED
    assert message.startswith("not found: /v1/playlists/x")


def test_only_transient_and_rate_limited_runs_are_retried() -> None:
    assert frozenset({RunStatus.TRANSIENT, RunStatus.RATE_LIMITED}) == RETRYABLE


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (RunStatus.OK, EXIT_OK),
        (RunStatus.SKIPPED, EXIT_OK),
        (RunStatus.NEEDS_AUTH, EXIT_AUTH),
        (RunStatus.FAILED, EXIT_JOB_FAILED),
        (RunStatus.TRANSIENT, EXIT_JOB_FAILED),
        (RunStatus.RATE_LIMITED, EXIT_JOB_FAILED),
        (RunStatus.TIMED_OUT, EXIT_JOB_FAILED),
    ],
)
def test_exit_codes(status: RunStatus, code: int) -> None:
    assert exit_code_for(status) == code


@pytest.fixture
def harness(fake: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    with JobHarness(fake, tmp_path, jobs_dir=JOBS_DIR) as h:
        yield h


def history(harness: JobHarness, job: str = "job") -> list[tuple[RunStatus, str | None]]:
    state = open_state(harness.state_dir)
    try:
        return [(r.status, r.trigger) for r in reversed(state.runs(job))]
    finally:
        state.close()


def test_an_ok_run_saves_state_and_is_recorded(harness: JobHarness) -> None:
    first = harness.run("counter")
    second = harness.run("counter")
    assert (first.status, first.summary, first.error) == (RunStatus.OK, "count 1", None)
    assert second.summary == "count 2"
    assert harness.state() == {"count": 2}
    assert second.line().startswith("job: ok in ")
    assert second.line().endswith("s: count 2")
    assert history(harness) == [(RunStatus.OK, "manual"), (RunStatus.OK, "manual")]


def test_a_failed_run_keeps_the_previous_state_and_logs_the_traceback(
    harness: JobHarness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.run("counter")
    with caplog.at_level(logging.ERROR):
        outcome = harness.run("fail")
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "job error: RuntimeError: job is broken on purpose"
    assert harness.state() == {"count": 1}
    job_records = [r for r in caplog.records if r.name == "job.job"]
    assert job_records
    assert job_records[0].exc_info is not None  # a job's bug gets its traceback logged
    assert outcome.line() == f"job: failed in {outcome.seconds:.1f}s: {outcome.error}"


def test_state_json_cannot_hold_fails_the_run_and_is_not_saved(harness: JobHarness) -> None:
    outcome = harness.run("unjsonable")
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("ctx.state is not JSON-serialisable")
    assert harness.state() == {}


def test_a_checkpoint_keeps_the_state_of_a_run_that_then_fails(harness: JobHarness) -> None:
    assert harness.run("checkpointer", {"fail": True}).status is RunStatus.FAILED
    assert harness.state() == {"step": 1}
    assert harness.run("checkpointer", {"fail": True}, dry_run=True).status is RunStatus.FAILED
    assert harness.state() == {"step": 1}  # a dry run saves nothing, not even a checkpoint
    assert harness.run("checkpointer").summary == "step 2"


def test_a_checkpoint_after_the_time_limit_saves_nothing(harness: JobHarness) -> None:
    # The timed-out run's thread goes on; what it saves late must not overwrite later runs.
    outcome = harness.run("checkpointer", {"wait": 1.5}, timeout=timedelta(seconds=1))
    assert outcome.status is RunStatus.TIMED_OUT
    give_up = time.monotonic() + 60
    while any(t.name == "job-job" for t in threading.enumerate()):
        assert time.monotonic() < give_up, "the timed-out job's thread never ended"
        time.sleep(0.05)
    assert harness.state() == {}


def test_a_run_over_its_timeout_is_timed_out(harness: JobHarness) -> None:
    outcome = harness.run("slow", {"seconds": 1.5}, timeout=timedelta(seconds=1))
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error == "timed out after 1s"
    assert harness.state() == {}


def test_missing_scopes_fail_fast_without_a_request(fake: FakeSpotify, tmp_path: Path) -> None:
    with JobHarness(fake, tmp_path, scopes=("user-library-read",), jobs_dir=JOBS_DIR) as h:
        assert h.run("counter").status is RunStatus.OK  # learns the granted scopes
        fake.clear_requests()
        outcome = h.run("writer")
    assert outcome.status is RunStatus.NEEDS_AUTH
    assert outcome.error == (
        "the authorization lacks scopes playlist-modify-private: run 'spotify-runner auth' to "
        "grant them"
    )
    assert fake.requests == []


def test_a_dry_run_refuses_writes_and_saves_no_state(
    harness: JobHarness, fake: FakeSpotify
) -> None:
    careless = harness.run("careless", dry_run=True)
    assert careless.status is RunStatus.FAILED
    assert careless.error == "dry run: refused to send POST /v1/me/playlists"
    careful = harness.run("writer", dry_run=True)
    assert (careful.status, careful.summary) == (
        RunStatus.OK,
        "dry run: would create playlist 'runner test'",
    )
    assert fake.writes() == []
    assert harness.state() == {}


def test_run_once_records_a_manual_run(harness: JobHarness) -> None:
    config = harness.config("counter", {}, name="solo")
    job = load_jobs(config)["solo"]
    outcome = run_once(config, job, harness.tokens)
    assert outcome.status is RunStatus.OK
    assert outcome.run_id is not None
    assert history(harness, "solo") == [(RunStatus.OK, "manual")]
