"""One run of one job: build its context, enforce its timeout, classify how it ended, record it.

The daemon and `spotify-runner run-job` both go through `Executor.run`, so a manual run is recorded
and classified exactly like a scheduled one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import spotipy

from runner.config import Config
from runner.context import JobContext
from runner.deadline import Deadline
from runner.durations import format_duration
from runner.errors import (
    EXIT_AUTH,
    EXIT_JOB_FAILED,
    EXIT_OK,
    AuthError,
    DryRunWrite,
    MissingScopes,
    RateLimited,
    RunnerError,
    RunTimedOut,
    TransientError,
    UsageError,
    with_auth_hint,
)
from runner.holds import clear_after_success, record_hold
from runner.loader import LoadedJob
from runner.lock import JobLock
from runner.logs import RedactingFilter
from runner.runlog import RunLog, RunLogCapture
from runner.spotify import RequestObserver, make_client, spotify_error_message
from runner.state import RunRecord, RunStatus, StateError, StateStore, open_store
from runner.state.contract import StateUnreachable
from runner.tokens import TokenManager

log = logging.getLogger("runner.execution")

# Statuses worth another attempt: the job did nothing wrong, the world did.
# A timed-out run is not retried: its thread may still be finishing its last request.
RETRYABLE = frozenset({RunStatus.TRANSIENT, RunStatus.RATE_LIMITED})


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended."""

    job: str
    status: RunStatus
    summary: str | None
    error: str | None
    attempt: int
    started_at: datetime
    ended_at: datetime
    run_id: int | None = None
    retry_after: float | None = None
    record: RunRecord | None = None
    log_tail: str = ""

    @property
    def seconds(self) -> float:
        """How long the run took."""
        return (self.ended_at - self.started_at).total_seconds()

    def line(self) -> str:
        """One line for a terminal or a log: `radio: ok in 1.2s: +3 -1, 100 tracks`."""
        detail = self.error if self.error else self.summary
        text = f"{self.job}: {self.status.value.replace('_', ' ')} in {self.seconds:.1f}s"
        return f"{text}: {detail}" if detail else text


def classify(exc: BaseException) -> tuple[RunStatus, str, float | None]:
    """Maps what a job raised to a status, a one-line message, and a Retry-After if any."""
    if isinstance(exc, AuthError):
        return RunStatus.NEEDS_AUTH, str(exc), None
    if isinstance(exc, RateLimited):
        return RunStatus.RATE_LIMITED, str(exc), exc.retry_after
    if isinstance(exc, RunTimedOut):
        return RunStatus.TIMED_OUT, str(exc), None
    if isinstance(exc, TransientError):
        return RunStatus.TRANSIENT, str(exc), exc.retry_after
    if isinstance(exc, DryRunWrite):
        text = str(exc)
        # The transport's message already says so; do not say it twice.
        return RunStatus.FAILED, text if text.startswith("dry run") else f"dry run: {text}", None
    if isinstance(exc, RunnerError):
        return RunStatus.FAILED, str(exc), None
    if isinstance(exc, spotipy.SpotifyException):
        status = RunStatus.TRANSIENT if exc.http_status >= 500 else RunStatus.FAILED
        return status, spotify_error_message(exc), None
    if isinstance(exc, requests.RequestException):
        return RunStatus.TRANSIENT, f"network error: {type(exc).__name__}", None
    return RunStatus.FAILED, f"job error: {type(exc).__name__}: {exc}", None


def exit_code_for(status: RunStatus) -> int:
    """The CLI exit code for a run that ended with `status`."""
    if status in (RunStatus.OK, RunStatus.SKIPPED):
        return EXIT_OK
    if status is RunStatus.NEEDS_AUTH:
        return EXIT_AUTH
    return EXIT_JOB_FAILED


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the default clock for recorded times."""
    return datetime.now(UTC)


class Executor:
    """Runs jobs once each, recording every run in the state store.

    Args:
        config: the loaded config (API URL, timezone).
        tokens: the token manager of the account the jobs run as.
        state: run history and job state.
        now: the clock for recorded times.
        account: which account's history and state to use; the token manager's by default.
        redactor: the process's redaction filter, for the run's own captured log lines.
        on_request: told about every request the run's clients send (for metrics).
        holder: who runs the jobs, as a refused run elsewhere names it ("the daemon (PID 12)").
    """

    def __init__(
        self,
        config: Config,
        tokens: TokenManager,
        state: StateStore,
        *,
        now: Callable[[], datetime] = utcnow,
        account: str | None = None,
        redactor: RedactingFilter | None = None,
        on_request: RequestObserver | None = None,
        holder: str | None = None,
    ) -> None:
        self.holder = holder or f"PID {os.getpid()}"
        self.config = config
        self.tokens = tokens
        self.state = state
        self.now = now
        self.account = tokens.account if account is None else account
        self.capture = RunLogCapture(redactor)
        self.on_request = on_request

    def _account_hint(self, message: str) -> str:
        """The fix names this run's account: `auth --account bob` when there are several."""
        return message.replace("run 'spotify-runner auth'", f"run '{self.tokens.auth_command}'")

    def _preflight(self, job: LoadedJob) -> AuthError | None:
        """Fails fast, without a request, when the account cannot run this job."""
        if self.tokens.needs_auth and not self.tokens.reload_from_store():
            status = self.tokens.status()
            reason = with_auth_hint(status.reason or "authorization needed")
            return AuthError(self._account_hint(reason))
        granted = self.tokens.status().scopes
        missing = set(job.module.scopes) - set(granted)
        # An adopted hand-made token reports its scopes only after the first refresh.
        if granted and missing:
            return MissingScopes(missing, self.tokens.auth_command)
        return None

    def _record_start(
        self,
        job: LoadedJob,
        scheduled_at: datetime | None,
        started: datetime,
        attempt: int,
        trigger: str,
        dry_run: bool,
    ) -> int:
        """The run's history row, as running; returns its id."""
        return self.state.start_run(
            job.name,
            scheduled_at=scheduled_at,
            started_at=started,
            attempt=attempt,
            trigger=trigger,
            dry_run=dry_run,
            account=self.account,
        )

    def run(
        self,
        job: LoadedJob,
        *,
        scheduled_at: datetime | None = None,
        attempt: int = 1,
        trigger: str = "schedule",
        dry_run: bool = False,
    ) -> RunOutcome:
        """Runs `job` once, in a worker thread bounded by its timeout, and records the outcome.

        What the job and the runner log for the run is kept with its history row. Only one run
        of a job goes at a time, across processes: when another holds the job's lock the run is
        not made, and is recorded as skipped with the holder's name.
        """
        started = self.now()
        lock = JobLock(self.config.state_dir, job.name, self.account)
        try:
            holder = lock.acquire(self.holder)
        except UsageError as exc:
            # Running without the lock could run the job twice at once: fail this run, plainly;
            # the next one tries again (the state_dir may be given back meanwhile).
            error = str(exc)
            run_id = self._record_start(job, scheduled_at, started, attempt, trigger, dry_run)
            record = self.state.finish_run(run_id, RunStatus.FAILED, ended_at=started, error=error)
            log.error("%s: %s", job.name, error, extra={"job": job.name, "status": "failed"})
            return RunOutcome(
                job.name, RunStatus.FAILED, None, error, attempt, started, started, run_id,
                None, record,
            )  # fmt: skip
        if holder is not None:
            reason = f"not run: it is already running in {holder}"
            skipped = self.state.record_skipped(
                job.name,
                scheduled_at=scheduled_at,
                at=started,
                reason=reason,
                account=self.account,
                trigger=trigger,
            )
            # Not logged here: `run-job` prints its own one-line refusal, the daemon logs it.
            return RunOutcome(
                job.name, RunStatus.SKIPPED, reason, None, attempt, started, started,
                skipped.id, None, skipped,
            )  # fmt: skip
        handed = [False]  # set once the job's thread owns the lock: it releases it when it ends
        try:
            return self._run_locked(job, scheduled_at, attempt, trigger, dry_run, lock, handed)
        finally:
            if not handed[0]:
                lock.release()

    def _run_locked(
        self,
        job: LoadedJob,
        scheduled_at: datetime | None,
        attempt: int,
        trigger: str,
        dry_run: bool,
        lock: JobLock,
        handed: list[bool],
    ) -> RunOutcome:
        started = self.now()
        run_id = self._record_start(job, scheduled_at, started, attempt, trigger, dry_run)
        jlog = logging.getLogger(f"job.{job.name}")
        broken: StateError | None = None
        with self.capture.recording() as runlog:
            try:
                status, summary, error, retry_after = self._execute(
                    job, dry_run, jlog, runlog, lock, handed
                )
            except StateError as exc:
                # The job's stored state cannot be used: the run is recorded as failed, and
                # the caller hears of it (exit 2 for `run-job`), rather than left "running".
                broken = exc
                status, summary, error, retry_after = RunStatus.FAILED, None, str(exc), None
            try:
                retry_after, error = self._hold_after(status, retry_after, error)
            except StateUnreachable as exc:
                # The run's own end is what matters now: the store keeps it until it is back.
                # (After a success the hold would only have been cleared early: no loss.)
                if status is RunStatus.RATE_LIMITED:
                    log.warning("%s: the rate-limit hold is not recorded: %s", job.name, exc)
            record = self.state.finish_run(
                run_id, status, ended_at=self.now(), summary=summary, error=error
            )
            outcome = RunOutcome(
                job.name,
                status,
                summary,
                error,
                attempt,
                started,
                record.ended_at or self.now(),
                run_id,
                retry_after,
                record,
            )
            level = logging.INFO if status is RunStatus.OK else logging.ERROR
            if broken is None:  # else the caller reports it, once
                log.log(
                    level,
                    "%s",
                    outcome.line(),
                    extra={"job": job.name, "status": status.value, "account": self.account},
                )
        self.state.save_run_log(run_id, runlog.text())
        if broken is not None:
            raise broken
        return replace(outcome, log_tail=runlog.tail())

    def _hold_after(
        self, status: RunStatus, retry_after: float | None, error: str | None
    ) -> tuple[float | None, str | None]:
        """The app-wide rate-limit hold after a run: set by a 429, cleared by a success."""
        if status is RunStatus.RATE_LIMITED:
            # Every job waits (this process's and the daemon's, across restarts).
            now = self.now()
            untimed = retry_after is None  # Spotify said not for how long
            hold = record_hold(self.state, now, retry_after)
            retry_after = max(0.0, (hold.until - now).total_seconds())
            if untimed:
                waits = format_duration(timedelta(seconds=round(retry_after)))
                error = f"{error}; every job waits {waits}"
        elif status is RunStatus.OK:
            clear_after_success(self.state, self.now())
        return retry_after, error

    def _execute(
        self,
        job: LoadedJob,
        dry_run: bool,
        jlog: logging.Logger,
        runlog: RunLog,
        lock: JobLock,
        handed: list[bool],
    ) -> tuple[RunStatus, str | None, str | None, float | None]:
        refusal = self._preflight(job)
        if refusal is not None:
            return RunStatus.NEEDS_AUTH, None, str(refusal), None

        timeout = job.config.timeout.total_seconds()
        deadline = Deadline(timeout)
        api_url = self.config.spotify.api_url

        def new_client() -> spotipy.Spotify:
            return make_client(
                self.tokens,
                api_url,
                deadline=deadline.at,
                guard=deadline,
                dry_run=dry_run,
                on_response=self.on_request,
            )

        state = self.state.load_job_state(job.name, account=self.account)

        def save_state(now: Mapping[str, Any]) -> None:
            if deadline.expired:
                # The run is recorded as timed out; a late checkpoint must not overwrite what a
                # later run saved.
                raise RunTimedOut("the run's time limit has passed; its state was not saved")
            self.state.save_job_state(job.name, dict(now), account=self.account)

        ctx = JobContext(
            job_name=job.name,
            spotify=new_client(),
            options=job.options,
            log=jlog,
            state=state,
            dry_run=dry_run,
            new_client=new_client,
            base_dir=Path(self.config.source).resolve().parent,
            save_state=save_state,
            deadline=deadline,
        )
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                with self.capture.joined(runlog):
                    try:
                        result["value"] = job.module.run(ctx)
                    except BaseException as exc:
                        result["error"] = exc
            finally:
                lock.release()  # the job's slot is free only once its thread has ended

        worker = threading.Thread(target=target, name=f"job-{job.name}", daemon=True)
        handed[0] = True
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            # A thread cannot be killed: cut its sockets, so a read in progress (a feed that
            # drips a byte at a time) ends now and every later request is refused.
            deadline.cut()
            # Recorded now, at the deadline. The thread keeps the job's lock until it ends, so
            # the job's next run is skipped if it comes before that.
            return RunStatus.TIMED_OUT, None, f"timed out after {timeout:g}s", None
        if "error" in result:
            exc = result["error"]
            status, message, retry_after = classify(exc)
            if status is RunStatus.NEEDS_AUTH:
                message = self._account_hint(message)
            if status is RunStatus.FAILED and message.startswith("job error:"):
                jlog.error("job raised an unexpected error", exc_info=exc)
            return status, None, message, retry_after
        value = result.get("value")
        summary = None if value is None else str(value)
        if dry_run:
            return RunStatus.OK, f"dry run: {summary}" if summary else "dry run", None, None
        try:
            json.dumps(dict(ctx.state))
        except (TypeError, ValueError) as exc:
            return RunStatus.FAILED, summary, f"ctx.state is not JSON-serialisable: {exc}", None
        self.state.save_job_state(job.name, dict(ctx.state), account=self.account)
        return RunStatus.OK, summary, None, None


def run_once(
    config: Config,
    job: LoadedJob,
    tokens: TokenManager,
    *,
    dry_run: bool = False,
    redactor: RedactingFilter | None = None,
) -> RunOutcome:
    """One manual run (`spotify-runner run-job`), recorded in the history."""
    state = open_store(config)
    try:
        executor = Executor(
            config, tokens, state, redactor=redactor, holder=f"run-job (PID {os.getpid()})"
        )
        return executor.run(job, trigger="manual", dry_run=dry_run)
    finally:
        state.close()
