"""The long-running process: schedules jobs, runs them, survives whatever they and Spotify do.

Signals: SIGTERM/SIGINT stop starting runs and wait for running ones (up to `shutdown_timeout`),
then exit 0; a second one exits at once. SIGHUP reloads the config; an invalid new config is
reported and the old one keeps running. systemd hears about all of it through sd_notify.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from runner.config import Config, load_config
from runner.errors import ConfigError, RunnerError, with_auth_hint
from runner.execution import RETRYABLE, Executor, utcnow
from runner.loader import LoadedJob, load_jobs
from runner.lock import DaemonLock
from runner.logs import RedactingFilter
from runner.schedule import (
    MISFIRE_GRACE_TIME,
    build_trigger,
    misfire_grace_time,
    missed_fire_time,
    next_fire_times,
    retry_delay,
)
from runner.sdnotify import Notifier
from runner.state import RunStatus, StateStore, open_state
from runner.tokens import TokenManager, TokenStore

log = logging.getLogger("runner.daemon")

RETRY_SUFFIX = "@retry"
CATCH_UP_SUFFIX = "@catch-up"


class Daemon:
    """The scheduler process.

    Args:
        config_path: the config file; re-read on SIGHUP.
        redactor: the logging filter, told about the config's secrets.
        notifier: sd_notify; from the environment by default.
        now: the clock for recorded times.
        retry_base: seconds before the first retry of a transient failure (doubling after).
    """

    def __init__(
        self,
        config_path: str,
        *,
        redactor: RedactingFilter | None = None,
        notifier: Notifier | None = None,
        now: Callable[[], datetime] = utcnow,
        retry_base: float = 30.0,
    ) -> None:
        self.config_path = config_path
        self.retry_base = retry_base
        self.redactor = redactor
        self.notifier = notifier or Notifier()
        self.now = now
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._old_handlers: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._busy: dict[str, threading.Lock] = {}
        self._inflight = 0
        self._rate_limited_until: datetime | None = None
        self._inflight_cv = threading.Condition()
        self.config: Config
        self.jobs: dict[str, LoadedJob] = {}
        self.state: StateStore
        self.tokens: TokenManager
        self.executor: Executor
        self.scheduler: BackgroundScheduler

    # -- start-up -----------------------------------------------------------------------------

    def _load(self) -> tuple[Config, dict[str, LoadedJob]]:
        config = load_config(self.config_path)
        jobs = load_jobs(config)
        if self.redactor is not None:
            for secret in (config.spotify.client_secret, config.spotify.refresh_token):
                if secret is not None:
                    self.redactor.add(secret.get_secret_value())
        return config, jobs

    def serve(self) -> int:
        """Runs until SIGTERM/SIGINT. Returns the exit code.

        Raises:
            ConfigError: the config or a job module is invalid (exit 2, before anything runs).
            UsageError: another daemon holds this state_dir.
        """
        self.config, self.jobs = self._load()
        lock = DaemonLock(self.config.state_dir)
        lock.acquire()
        try:
            return self._serve()
        finally:
            lock.release()

    def _serve(self) -> int:
        self.state = open_state(self.config.state_dir)
        interrupted = self.state.mark_interrupted(self.now())
        if interrupted:
            log.warning("%d run(s) were interrupted by the last stop", interrupted)
        self.tokens = self._token_manager(self.config)
        self._announce_auth()
        self.tokens.start()
        self.executor = Executor(self.config, self.tokens, self.state, now=self.now)
        self.scheduler = BackgroundScheduler(
            timezone=self.config.tzinfo(),
            executors={"default": ThreadPoolExecutor(max(4, len(self.jobs) + 2))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_TIME,
            },
        )
        self.scheduler.add_listener(self._on_not_run, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        for job in self.jobs.values():
            self._schedule(job, catch_up=True)
        self._install_signals()
        self.scheduler.start()
        log.info(
            "spotify-runner started: %d job(s), state in %s",
            len(self.jobs),
            self.config.state_dir,
        )
        self.notifier.ready(self._status_text())
        try:
            return self._main_loop()
        finally:
            self._restore_signals()
            self.tokens.stop()
            self.state.close()

    def _token_manager(self, config: Config) -> TokenManager:
        # A daemon keeps a token the disk refuses in memory, so its jobs keep running while it
        # retries the write; it says so loudly and in its status until the write succeeds.
        return TokenManager(
            config.spotify, TokenStore(config.state_dir), spend_when_unwritable=True
        )

    def _announce_auth(self) -> None:
        status = self.tokens.status()
        if status.needs_auth:
            log.error(
                "%s; jobs will wait for it", with_auth_hint(status.reason or "not authorized")
            )

    # -- scheduling ---------------------------------------------------------------------------

    def _schedule(self, job: LoadedJob, *, catch_up: bool) -> None:
        if not job.config.enabled:
            log.info("%s: disabled in the config", job.name)
            return
        tz = self.config.tzinfo()
        now = self.now()
        last = self.state.last_scheduled_at(job.name)
        # Anchor `every` schedules on the last run so restarts keep the cadence; a job that
        # never ran starts now.
        trigger = build_trigger(job.config.schedule, tz, start=last or now)
        schedule = job.config.schedule
        if schedule.at is not None and (
            last is not None or not next_fire_times(trigger, now - timedelta(seconds=1), 1)
        ):
            # A one-off that already ran (or whose time is past) is not run again by a restart;
            # `catch_up` below still runs a missed one once.
            if self.scheduler.get_job(job.name) is not None:
                self.scheduler.remove_job(job.name)
        else:
            self.scheduler.add_job(
                self._fire,
                trigger,
                args=[job.name],
                id=job.name,
                name=job.name,
                replace_existing=True,
                # catch_up jobs: no limit, so a run due while the machine slept happens once on
                # wake-up (coalesced); others: APScheduler's 1 s default would drop runs that
                # merely waited for a worker.
                misfire_grace_time=misfire_grace_time(job.config.catch_up),
            )
        if catch_up and job.config.catch_up:
            missed = missed_fire_time(job.config.schedule, tz, last_scheduled=last, now=now)
            if missed is not None:
                log.info("%s: missed its run at %s; catching up once now", job.name, missed)
                self.scheduler.add_job(
                    self._fire,
                    DateTrigger(now, timezone=tz),
                    args=[job.name],
                    kwargs={"trigger": "catch_up", "scheduled_at": missed},
                    id=job.name + CATCH_UP_SUFFIX,
                    replace_existing=True,
                )

    def _fire(
        self,
        name: str,
        *,
        trigger: str = "schedule",
        attempt: int = 1,
        scheduled_at: datetime | None = None,
    ) -> None:
        """One scheduled (or retried, or caught-up) run; never raises into APScheduler."""
        job = self.jobs.get(name)
        if job is None or self._stopping.is_set():
            return
        held = self._rate_limited_until
        if held is not None and self.now() < held:
            # Spotify's rate limit is per app: a run now would only meet another 429 and
            # prolong it. The rate-limited job's own retry is scheduled for when it ends.
            until = held.astimezone(self.config.tzinfo())
            reason = f"Spotify rate-limited this app until {until:%Y-%m-%d %H:%M:%S %Z}"
            self.state.record_skipped(
                name, scheduled_at=scheduled_at or self.now(), at=self.now(), reason=reason
            )
            log.warning("%s: skipped, %s", name, reason)
            return
        busy = self._busy.setdefault(name, threading.Lock())
        if not busy.acquire(blocking=False):
            self.state.record_skipped(
                name,
                scheduled_at=scheduled_at or self.now(),
                at=self.now(),
                reason="the previous run is still going",
            )
            log.warning("%s: skipped, the previous run is still going", name)
            return
        with self._inflight_cv:
            self._inflight += 1
        # A retry keeps the scheduled time of the run it repeats.
        scheduled = scheduled_at or self.now()
        try:
            outcome = self.executor.run(
                job, scheduled_at=scheduled, attempt=attempt, trigger=trigger
            )
            if outcome.status is RunStatus.RATE_LIMITED and outcome.retry_after:
                self._hold(outcome.retry_after)
            if outcome.status in RETRYABLE and attempt <= job.config.retries:
                self._schedule_retry(job, attempt, outcome.retry_after, scheduled)
        except RunnerError as exc:
            # Expected trouble (the state database refused, a job's state is corrupt): one line.
            log.error("%s: %s", name, exc)
        except Exception:
            log.exception("%s: the run machinery failed", name)
        finally:
            busy.release()
            with self._inflight_cv:
                self._inflight -= 1
                self._inflight_cv.notify_all()
            self.notifier.status(self._status_text())

    def _hold(self, retry_after: float) -> None:
        """Holds every job until Spotify's Retry-After has passed."""
        until = self.now() + timedelta(seconds=retry_after)
        with self._inflight_cv:
            if self._rate_limited_until is None or until > self._rate_limited_until:
                self._rate_limited_until = until

    def _schedule_retry(
        self, job: LoadedJob, attempt: int, retry_after: float | None, scheduled_at: datetime | None
    ) -> None:
        if self._stopping.is_set():
            return
        delay = retry_delay(attempt, retry_after, base=self.retry_base)
        when = self.now() + timedelta(seconds=delay)
        log.info(
            "%s: retrying in %.0fs (attempt %d of %d)",
            job.name,
            delay,
            attempt + 1,
            job.config.retries + 1,
        )
        self.scheduler.add_job(
            self._fire,
            DateTrigger(when),
            args=[job.name],
            kwargs={"trigger": "retry", "attempt": attempt + 1, "scheduled_at": scheduled_at},
            id=job.name + RETRY_SUFFIX,
            replace_existing=True,
        )

    def _on_not_run(self, event: Any) -> None:
        """Records runs APScheduler did not start: overlap, or missed beyond the grace time."""
        if not isinstance(event, JobSubmissionEvent) and not hasattr(event, "scheduled_run_time"):
            return
        name = str(event.job_id).split("@", 1)[0]
        times = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
        reason = (
            "the previous run is still going"
            if event.code == EVENT_JOB_MAX_INSTANCES
            else "missed: the daemon was too late to start it"
        )
        log.warning("%s: skipped, %s", name, reason)
        self.state.record_skipped(name, scheduled_at=times[-1], at=self.now(), reason=reason)

    def _status_text(self) -> str:
        upcoming = [
            (job.next_run_time, job.id)
            for job in self.scheduler.get_jobs()
            if job.next_run_time is not None
        ]
        if not upcoming:
            return "no runs scheduled"
        when, name = min(upcoming)
        prefix = "needs authorization; " if self.tokens.needs_auth else ""
        unsaved = self.tokens.status().unsaved
        if unsaved is not None:
            prefix += f"NEEDS ATTENTION: the new Spotify token is not saved ({unsaved}); "
        held = self._rate_limited_until
        if held is not None and self.now() < held:
            prefix += f"rate-limited until {held.astimezone(self.config.tzinfo()):%H:%M:%S}; "
        return f"{prefix}next run: {name} at {when:%Y-%m-%d %H:%M:%S %Z}"

    # -- signals and the main loop --------------------------------------------------------------

    def _install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if signum in (signal.SIGTERM, signal.SIGINT) and self._stopping.is_set():
                # Second signal: cold shutdown. Running runs are marked interrupted on next start.
                os.write(2, b"second signal: exiting at once\n")
                os._exit(1)
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._stopping.set()
            self._signals.put(signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        # Leaves the process as it found it, for callers that embed the daemon (tests, demo).
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    def _main_loop(self) -> int:
        interval = self.notifier.watchdog_interval()
        tick = min(interval, 30.0) if interval else 30.0
        while True:
            try:
                signum = self._signals.get(timeout=tick)
            except queue.Empty:
                signum = None
            if interval:
                self.notifier.watchdog()
            # The scheduler sleeps on the monotonic clock, which stops during suspend: a nudge
            # each tick makes it notice runs that came due while the machine slept.
            self.scheduler.wakeup()
            if signum in (signal.SIGTERM, signal.SIGINT):
                return self._shutdown()
            if signum == signal.SIGHUP:
                self.reload()

    def _shutdown(self) -> int:
        self.notifier.stopping()
        log.info("stopping: no new runs; waiting for running ones")
        self.scheduler.pause()
        limit = self.config.shutdown_timeout.total_seconds()
        with self._inflight_cv:
            finished = self._inflight_cv.wait_for(lambda: self._inflight == 0, timeout=limit)
        self.scheduler.shutdown(wait=False)
        if not finished:
            log.error("stopped with runs still going after %gs", limit)
            return 1
        log.info("stopped")
        return 0

    def reload(self) -> bool:
        """Re-reads the config; keeps the old one running when the new one is invalid."""
        self.notifier.reloading()
        try:
            config, jobs = self._load()
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload failed, keeping the running config: %s", line)
            self.notifier.ready(self._status_text())
            return False
        if config.state_dir != self.config.state_dir:
            log.error("reload: state_dir cannot change while running; restart to move it")
            self.notifier.ready(self._status_text())
            return False
        old = self.jobs
        if config.spotify != self.config.spotify:
            self.tokens.stop()
            self.tokens = self._token_manager(config)
            self.tokens.start()
        self.config = config
        self.executor = Executor(config, self.tokens, self.state, now=self.now)
        self.jobs = jobs
        for name in set(old) - set(jobs):
            for suffix in ("", RETRY_SUFFIX, CATCH_UP_SUFFIX):
                if self.scheduler.get_job(name + suffix) is not None:
                    self.scheduler.remove_job(name + suffix)
        for name, job in jobs.items():
            if name not in old or old[name].config != job.config:
                if not job.config.enabled and self.scheduler.get_job(name) is not None:
                    self.scheduler.remove_job(name)
                self._schedule(job, catch_up=name not in old)
        added = sorted(set(jobs) - set(old))
        removed = sorted(set(old) - set(jobs))
        log.info(
            "reloaded: %d job(s)%s%s",
            len(jobs),
            f", added {', '.join(added)}" if added else "",
            f", removed {', '.join(removed)}" if removed else "",
        )
        self.notifier.ready(self._status_text())
        return True
