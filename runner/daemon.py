"""The long-running process: schedules jobs, runs them, survives whatever they and Spotify do.

Signals: SIGTERM/SIGINT stop starting runs and wait for running ones (up to `shutdown_timeout`,
after which those still going are recorded as interrupted), then exit 0; a second one exits at
once. SIGHUP reloads the config; an invalid new config is
reported and the old one keeps running. systemd hears about all of it through sd_notify.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from runner.accounts import token_manager
from runner.config import DEFAULT_ACCOUNT, Config, load_config
from runner.errors import ConfigError, RunnerError, UsageError
from runner.execution import RETRYABLE, Executor, utcnow
from runner.files import describe_os_error
from runner.holds import current_hold
from runner.lazy import load_deferred
from runner.liveness import HEARTBEAT, Liveness
from runner.loader import LoadedJob, load_jobs
from runner.lock import DaemonLock
from runner.logs import RedactingFilter, redact
from runner.metrics import Live, Metrics
from runner.notify.service import NotifyService
from runner.notify.urls import register_url_secrets
from runner.pause import is_paused
from runner.schedule import (
    FAILOVER_GAP,
    MISFIRE_GRACE_TIME,
    Plan,
    failover_gap,
    misfire_grace_time,
    missed_fire_time,
    next_fire_times,
    plan,
    refused_for_authorization,
    retry_delay,
    slot_history,
    slot_of,
)
from runner.sdnotify import Notifier
from runner.state import (
    INTERRUPTED,
    RunRecord,
    RunStatus,
    StateStore,
    open_leadership,
    open_store,
)
from runner.state.contract import LEAD_POLL_SECONDS
from runner.tokens import TokenManager
from runner.web.server import WebServer

if TYPE_CHECKING:
    from runner.reauth import PendingAuthorizations
    from runner.state.leadership import Leadership

log = logging.getLogger("runner.daemon")

# A daemon keeps a token the disk refuses in memory, so its jobs keep running while it
# retries the write; it says so loudly and in its status until the write succeeds.
_SPEND_WHEN_UNWRITABLE = True

RETRY_SUFFIX = "@retry"
CATCH_UP_SUFFIX = "@catch-up"
# The one make-up of a catch_up job's run that a failover interrupted.
MAKE_UP_SUFFIX = "@make-up"
# How far back in a job's history a new active daemon looks for interrupted runs to make up.
MAKE_UP_LOOKBACK = 20
MANUAL_SUFFIX = "@manual"
# The one late run of the fire time a missing authorization cost, once the account is
# authorized again.
AUTHORIZED_SUFFIX = "@authorized"
# What starts the runs of each kind of APScheduler job (by its id's suffix).
_TRIGGERS = (
    (RETRY_SUFFIX, "retry"),
    (CATCH_UP_SUFFIX, "catch_up"),
    (MAKE_UP_SUFFIX, "catch_up"),
    (AUTHORIZED_SUFFIX, "catch_up"),
    (MANUAL_SUFFIX, "manual"),
)
# Not a job: job names cannot start with "@".
HEARTBEAT_ID = "@heartbeat"
# Not a signal: wakes the main loop when an account has just been authorized again.
_WAKE = 0


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
        # Accounts just authorized again, told by their token managers' threads; the main loop
        # makes up what the missing authorization cost.
        self._authorized: queue.SimpleQueue[str] = queue.SimpleQueue()
        # The (job, fire time) make-ups after an authorization that are scheduled or running.
        self._lost_pending: set[tuple[str, datetime]] = set()
        self._old_handlers: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._busy: dict[str, threading.Lock] = {}
        # Jobs with a Run now asked for and not yet ended. APScheduler drops a one-off job from
        # its store before its thread takes the job's busy lock: neither says "requested" then.
        self._manual: set[str] = set()
        # Each scheduled job's trigger without jitter: names the slot a regular run stands for.
        self._exact: dict[str, BaseTrigger] = {}
        self._inflight = 0
        self._inflight_cv = threading.Condition()
        self.abandoned = 0
        self.config: Config
        self.jobs: dict[str, LoadedJob] = {}
        self.state: StateStore
        # With state on PostgreSQL: this daemon's bid for the lead (None: SQLite, always active).
        self.leadership: Leadership | None = None
        self._leading = False  # whether the lead tick last found this daemon active
        self._made_up: set[tuple[str, datetime]] = set()
        # Before this (monotonic), the runs of other daemons are not yet taken as orphaned.
        self._orphans_after = 0.0
        # How many catch-ups or make-ups after a takeover each job has going or waiting.
        self._making_up: dict[str, int] = {}
        # One token manager and one executor per account: a revoked account stops only its
        # own jobs, and one account's refresh never waits on another's.
        self.tokens: dict[str, TokenManager] = {}
        self.executors: dict[str, Executor] = {}
        self.scheduler: BackgroundScheduler
        self.notify: NotifyService
        self.metrics: Metrics
        self.liveness = Liveness()
        self.web: WebServer | None = None
        self.started_at = now()
        self._pending: PendingAuthorizations | None = None

    @property
    def pending(self) -> PendingAuthorizations:
        """Re-authorizations started from the status page, until Spotify sends the browser back.

        Made on first use: what `runner.auth` imports stays off the way to READY.
        """
        with self._inflight_cv:
            if self._pending is None:
                from runner.reauth import PendingAuthorizations

                self._pending = PendingAuthorizations()
            return self._pending

    # -- start-up -----------------------------------------------------------------------------

    def _load(self) -> tuple[Config, dict[str, LoadedJob]]:
        """Loads and checks the config, its jobs and their schedules.

        Raises:
            ConfigError: for any problem, whatever raised it: at start that is exit 2 (which
                systemd's RestartPreventExitStatus=2 does not restart), on SIGHUP the running
                config is kept.
        """
        try:
            config = load_config(self.config_path)
            jobs = load_jobs(config)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError([f"{self.config_path}: cannot be loaded: {_one_line(exc)}"]) from None
        now = self.now()
        for name, job in jobs.items():
            try:
                # Everything the scheduler will compute, computed once now: a value that
                # passed the checks yet breaks the date arithmetic is a config problem.
                exact = plan(job.config.schedule, config.tzinfo(), now=now, last_scheduled=now)
                if exact.exact is not None:
                    next_fire_times(exact.exact, now, 1)
            except Exception as exc:
                where = config.locate("jobs", name, "schedule")
                raise ConfigError(
                    [f"{where}: jobs.{name}.schedule: cannot be scheduled: {_one_line(exc)}"]
                ) from None
        if self.redactor is not None:
            for secret in config.secrets():
                self.redactor.add(secret)
            register_url_secrets(self.redactor, config)
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
        self.state = open_store(self.config)
        self.leadership = open_leadership(self.config)
        if self.leadership is None:
            interrupted = self.state.mark_interrupted(self.now())
            if interrupted:
                log.warning("%d run(s) were interrupted by the last stop", interrupted)
        hold = current_hold(self.state, self.now())
        if hold is not None:
            until = hold.until.astimezone(self.config.tzinfo())
            log.warning(
                "Spotify rate-limited this app before the restart (%s): every job waits until %s",
                hold.reason,
                f"{until:%Y-%m-%d %H:%M:%S %Z}",
            )
        live = Live(
            next_runs=self._next_runs,
            authorization_ends=lambda: {
                name: tokens.status().expires_at for name, tokens in self.tokens.items()
            },
            rate_limited_until=self._held_until,
        )
        self.metrics = Metrics(live, api_url=self.config.spotify.api_url)
        self.metrics.seed(self.state)
        try:
            self._start_web()
        except BaseException:
            self.state.close()
            raise
        self.tokens = {
            name: self._token_manager(self.config, name) for name in self.config.accounts
        }
        for tokens in self.tokens.values():
            self._announce_auth(tokens)
            tokens.start()
        self._make_executors()
        self.notify = NotifyService(self.config, self.state, now=self.now, scrub=self._scrub)
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
        # Through the jobs' own pool: a scheduler that stops ticking stops the heartbeat.
        self.scheduler.add_job(
            self.liveness.beat,
            "interval",
            seconds=HEARTBEAT,
            id=HEARTBEAT_ID,
            misfire_grace_time=None,
        )
        if self.leadership is None:
            for job in self.jobs.values():
                self._schedule(job, catch_up=True)
            self._make_up_lost_offline()
        self._install_signals()
        self.scheduler.start()
        if self.leadership is not None:
            self._lead_tick()
        log.info(
            "spotify-runner started: %d job(s), state in %s",
            len(self.jobs),
            self.config.state_dir,
        )
        self.notifier.ready(self._status_text())
        load_deferred()  # what `run` deferred to keep the way to READY=1 short
        if self.web is not None:
            self.web.serve()
        try:
            return self._main_loop()
        finally:
            self._restore_signals()
            for tokens in self.tokens.values():
                tokens.stop()
                self._last_token_save(tokens)
            # Bounded by the delivery timeout: a hanging receiver never holds up a stop.
            self.notify.close()
            if self.web is not None:
                self.web.stop()
            if self.leadership is not None:
                self.leadership.close()
            if not self.abandoned:
                # Runs still going after shutdown_timeout would meet a closed database; the
                # `run` command exits at once instead (os._exit), which releases it.
                self.state.close()

    def _last_token_save(self, tokens: TokenManager) -> None:
        """At the stop: a refresh token only memory holds is written now, kept, or said lost."""
        problem = tokens.save_before_exit()
        if problem is None:
            return
        rotation = tokens.unsaved_rotation()
        kept = None
        if rotation is not None:
            token, replaces = rotation
            kept = self.state.keep_token(tokens.account, token.to_json(), replaces)
        if kept is not None:
            log.error(
                "%s; kept in %s with this stop: the next start stores it, unless the account "
                "was authorized again meanwhile",
                problem,
                kept,
            )
            return
        log.error(
            "%s; it is lost with this stop: once the store can be written, run '%s' if the "
            "account's next run reports that it needs authorization",
            problem,
            self.config.auth_command(tokens.account),
        )

    def _token_manager(self, config: Config, account: str) -> TokenManager:
        # Its token-endpoint answers are counted (spotify_runner_token_refreshes_total).
        return token_manager(
            config,
            account,
            spend_when_unwritable=_SPEND_WHEN_UNWRITABLE,
            session_factory=self.metrics.token_sessions(account),
            on_authorized=self._on_authorized,
        )

    def _on_authorized(self, account: str) -> None:
        """From a token manager (any thread, maybe holding its lock): only hands it on."""
        self._authorized.put(account)
        self._signals.put(_WAKE)

    def _make_executors(self) -> None:
        # A `run-job` refused because this daemon runs the job names it by `holder`.
        holder = f"the daemon (PID {os.getpid()})"
        self.executors = {
            name: Executor(
                self.config,
                tokens,
                self.state,
                now=self.now,
                holder=holder,
                redactor=self.redactor,
                on_request=self.metrics.request,
            )
            for name, tokens in self.tokens.items()
        }

    def _start_web(self) -> None:
        """Binds `http.listen` before anything is scheduled: a port in use is exit 2."""
        http = self.config.http
        if http is None:
            return
        host, port = http.address(self.config.spotify.redirect_uri)
        registry = self.metrics.registry

        def make_app() -> Any:
            from runner.web.app import Health, Services, create_app

            def health() -> Health:
                node = self.node_status()
                return Health(
                    self.liveness.alive(),
                    {**node, **self.liveness.detail()},
                    standby=node["role"] == "standby",
                )

            from runner.web.pages import add_pages, daemon_services

            app = create_app(Services(registry=registry, health=health))
            assert self.web is not None
            hosts = [self.web.address, *http.hosts]
            add_pages(app, daemon_services(self, hosts, password=password))
            return app

        password = None
        if http.password_file is not None:
            try:
                password = http.password_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(
                    [f"http.password_file {http.password_file}: cannot be read: {exc.strerror}"]
                ) from None
            if password is None:
                raise ConfigError([f"http.password_file {http.password_file} is empty"])
        self.web = WebServer(make_app, host, port)
        self.web.start()

    def _held_until(self) -> datetime | None:
        hold = current_hold(self.state, self.now())
        return hold.until if hold is not None else None

    def _next_runs(self) -> dict[str, datetime | None]:
        return {name: self._next_run(name) for name in self.jobs}

    def _scrub(self, text: str) -> str:
        return self.redactor.scrub(text) if self.redactor is not None else redact(text)

    def _announce_auth(self, tokens: TokenManager) -> None:
        status = tokens.status()
        if status.needs_auth:
            reason = status.reason or "not authorized"
            suffix = ": run 'spotify-runner auth'"
            log.error(
                "account %s: %s: run '%s'; its jobs will wait for it",
                tokens.account,
                reason.removesuffix(suffix),
                tokens.auth_command,
            )

    # -- scheduling ---------------------------------------------------------------------------

    def _schedule(
        self, job: LoadedJob, *, catch_up: bool, gap_since: datetime | None = None
    ) -> None:
        """Schedules the job's runs, and its catch-up when one is due.

        `gap_since`: this daemon takes over from another (a failover) that led until about then;
        the fire times in between each run once now, late, instead of one coalesced catch-up.
        """
        if self.leadership is not None and not self.leadership.leading:
            return  # a standby schedules nothing; it schedules everything when it takes over
        if not job.config.enabled:
            log.info("%s: disabled in the config", job.name)
            return
        tz = self.config.tzinfo()
        now = self.now()
        last, caught_up_at = slot_history(self.state, job.name, job.config.account)
        decided = plan(
            job.config.schedule,
            tz,
            now=now,
            last_scheduled=last,
            caught_up_at=caught_up_at,
            catch_up=catch_up and job.config.catch_up and gap_since is None,
        )
        if gap_since is not None:
            self._fill_gap(job, gap_since, last, caught_up_at)
        self._set_trigger(job, decided)
        if decided.catch_up is not None:
            log.info("%s: missed its run at %s; catching up once now", job.name, decided.catch_up)
            self.scheduler.add_job(
                self._fire,
                DateTrigger(now, timezone=tz),
                args=[job.name],
                kwargs={"trigger": "catch_up", "scheduled_at": decided.catch_up},
                id=job.name + CATCH_UP_SUFFIX,
                replace_existing=True,
            )

    def _set_trigger(self, job: LoadedJob, decided: Plan) -> None:
        """Schedules the job's regular runs as `decided` says (replacing what was scheduled)."""
        if decided.trigger is None or decided.exact is None:
            # A one-off that already ran (or whose time is past) is not run again by a restart;
            # the catch-up still runs a missed one once.
            self._exact.pop(job.name, None)
            if self.scheduler.get_job(job.name) is not None:
                self.scheduler.remove_job(job.name)
            return
        self._exact[job.name] = decided.exact
        self.scheduler.add_job(
            self._fire,
            decided.trigger,
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
            # catch_up jobs: no limit, so a run due while the machine slept happens once on
            # wake-up (coalesced); others: APScheduler's 1 s default would drop runs that
            # merely waited for a worker.
            misfire_grace_time=misfire_grace_time(job.config.catch_up),
            # Active/standby: a fire time that waits its turn behind a catch-up or make-up
            # (see _fire_checked) must not make APScheduler drop the next one.
            max_instances=1 if self.leadership is None else 2,
        )

    def _fill_gap(
        self,
        job: LoadedJob,
        since: datetime,
        last: datetime | None,
        caught_up_at: datetime | None,
    ) -> None:
        """After a failover: each fire time of its gap runs once now, in order, each claimed.

        Older missed fire times (the job's last recorded run is from before the gap) are a
        restart's business: a `catch_up` job makes the latest of them up once, first.
        """
        tz = self.config.tzinfo()
        now = self.now()
        schedule = job.config.schedule
        gap = failover_gap(
            schedule, tz, last_scheduled=last, caught_up_at=caught_up_at, since=since, now=now
        )
        slots = list(gap)
        if job.config.catch_up:
            older = missed_fire_time(
                schedule,
                tz,
                last_scheduled=last,
                now=gap[0] if gap else now,
                caught_up_at=caught_up_at,
            )
            if older is not None:
                log.info("%s: missed its run at %s; catching up once now", job.name, older)
                slots.insert(0, older)
        if gap:
            shown = ", ".join(f"{slot.astimezone(tz):%H:%M:%S}" for slot in gap)
            log.info(
                "%s: %d fire time(s) fell while no daemon was active (%s): running each once now",
                job.name,
                len(gap),
                shown,
            )
        if slots:
            self.scheduler.add_job(
                self._fire_in_turn,
                DateTrigger(now, timezone=tz),
                args=[job.name, slots],
                id=job.name + CATCH_UP_SUFFIX,
                replace_existing=True,
            )

    def _fire_in_turn(self, name: str, slots: list[datetime]) -> None:
        """Late runs of several fire times, oldest first; the fire times after wait their turn."""
        with self._inflight_cv:
            self._making_up[name] = self._making_up.get(name, 0) + 1
        try:
            for slot in slots:
                if self._stopping.is_set():
                    return
                self._fire(name, trigger="catch_up", scheduled_at=slot)
        finally:
            with self._inflight_cv:
                self._making_up[name] -= 1

    # -- after a re-authorization ---------------------------------------------------------------

    def _catch_up_authorized(self) -> None:
        """Makes up, once each, the fire times that accounts just authorized again lost.

        In the main loop: a token manager only says which account (from its own thread); the
        history is read, and the make-ups scheduled, here.
        """
        accounts: set[str] = set()
        while True:
            try:
                accounts.add(self._authorized.get_nowait())
            except queue.Empty:
                break
        for account in sorted(accounts):
            try:
                self._schedule_lost(account)
            except RunnerError as exc:
                log.error(
                    "account %s: cannot look for the runs its authorization cost: %s", account, exc
                )
            except Exception:  # the main loop must outlive it
                log.exception(
                    "account %s: looking for the runs its authorization cost failed", account
                )

    def _schedule_lost(self, account: str, *, authorized_after: float | None = None) -> None:
        """Schedules, for now, the make-up of each of the account's jobs' lost fire time.

        `authorized_after`: at start (or on taking the lead), only the fire times whose refusal
        came before this authorization was given (Unix time): the user re-authorized while no
        daemon ran. A refusal after it means the stored authorization is the one that failed.
        """
        if self._stopping.is_set() or account not in self.tokens:
            return
        if self.leadership is not None and not self.leadership.leading:
            return  # the active daemon makes them up; a standby schedules nothing
        if authorized_after is None:
            log.info("account %s is authorized again", account)
        for job in self.jobs.values():
            if job.config.account != account:
                continue
            refused = self._lost_run(job)
            if refused is None or refused.scheduled_at is None:
                continue
            assert refused.ended_at is not None  # a refused run has ended
            if authorized_after is not None and refused.ended_at.timestamp() >= authorized_after:
                continue  # refused after it: the stored authorization is the one that failed
            slot = refused.scheduled_at
            with self._inflight_cv:
                if (job.name, slot) in self._lost_pending:
                    continue  # authorized twice in a row: its make-up is on its way already
                self._lost_pending.add((job.name, slot))
            try:
                self._make_up_lost(job, slot)
            except BaseException:
                with self._inflight_cv:
                    self._lost_pending.discard((job.name, slot))
                raise

    def _make_up_lost_offline(self) -> None:
        """At start, or on taking the lead: fire times lost to an authorization given meanwhile.

        An account re-authorized while no daemon ran (`auth` with the service stopped) has no
        moment for `on_authorized` to report: the make-ups are decided from the history here.
        """
        for account, tokens in self.tokens.items():
            try:
                # Not `needs_auth`: a refused token is not known refused until it is next used.
                authorized_at = tokens.status().authorized_at
                if authorized_at is None:
                    continue  # nothing stored: `on_authorized` reports the `auth` to come
                self._schedule_lost(account, authorized_after=authorized_at)
            except RunnerError as exc:
                log.error(
                    "account %s: cannot look for the runs its authorization cost: %s", account, exc
                )

    def _make_up_lost(self, job: LoadedJob, slot: datetime) -> None:
        now = self.now()
        tz = self.config.tzinfo()
        if job.config.schedule.every is not None:
            # What a restart would schedule after this run: the grid goes on one interval after
            # it (never two runs in a row), as after any catch-up.
            decided = plan(job.config.schedule, tz, now=now, last_scheduled=slot, caught_up_at=now)
            self._set_trigger(job, decided)
        self.scheduler.add_job(
            self._fire_lost,
            DateTrigger(now, timezone=tz),
            args=[job.name, slot],
            id=f"{job.name}{AUTHORIZED_SUFFIX}{slot.isoformat()}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _lost_run(self, job: LoadedJob) -> RunRecord | None:
        """The refused run of the fire time a missing authorization cost, if it is to run now."""
        if not job.config.enabled or is_paused(self.state, job.name, job.config.account):
            return None
        return refused_for_authorization(
            self.state,
            job.name,
            job.config.account,
            exact=self._exact.get(job.name),
            now=self.now(),
        )

    def _fire_lost(self, name: str, slot: datetime) -> None:
        """The make-up of `slot`, decided again as it starts: a regular run may have come since."""
        try:
            job = self.jobs.get(name)
            if job is None:
                return  # removed by a reload meanwhile
            refused = self._lost_run(job)
            if refused is None or refused.scheduled_at != slot:
                return
            log.info(
                "%s: its run for %s waited for the authorization of account %s; running it now",
                name,
                slot,
                job.config.account,
            )
            # A pair's regular run claimed this fire time already: the make-up claims it anew,
            # once, so that two daemons never both make it up.
            self._fire(
                name, trigger="catch_up", scheduled_at=slot, make_up=self.leadership is not None
            )
        except RunnerError as exc:
            log.error("%s: %s", name, exc)
        except Exception:
            log.exception("%s: the run machinery failed", name)
        finally:
            with self._inflight_cv:
                self._lost_pending.discard((name, slot))

    # -- leadership (state on PostgreSQL) ------------------------------------------------------

    def node_status(self) -> dict[str, Any]:
        """This node, its role, and which node is active since when (`/healthz`, status page).

        The active node is what `jobs` shows (`runner.status.active_daemon`); with SQLite there
        is no pair, so this daemon is the active one, since it started.
        """
        from runner.status import active_daemon

        node = self.config.state.node
        if self.leadership is None:
            since = self.started_at.astimezone(self.config.tzinfo())
            active: dict[str, Any] | None = {
                "node": node,
                "since": since.isoformat(timespec="seconds"),
            }
            return {"node": node, "role": "active", "active": active}
        role = "active" if self.leadership.leading else "standby"
        try:
            active = active_daemon(self.config)
        except RunnerError as exc:
            return {"node": node, "role": role, "active": None, "state_error": str(exc)}
        return {"node": node, "role": role, "active": active}

    def _lead_tick(self) -> None:
        """Takes the lead when free, notices losing it, and makes up interrupted runs."""
        leadership = self.leadership
        assert leadership is not None
        # Runs still going, or ended while the database was out of reach, are this daemon's
        # again (and recorded) as soon as it answers. Out of reach: the leadership check says so.
        with contextlib.suppress(RunnerError):
            self.state.flush()
        # As the last tick left it: a run's `confirm` may have found the lead lost meanwhile.
        was_leading = self._leading
        try:
            leading = leadership.try_lead()
        except Exception as exc:  # never takes the daemon down; the next tick tries again
            log.error("leadership check failed: %s", _one_line(exc))
            leading = False
        if leading and not was_leading:
            log.info(
                "node %s is now the active daemon (state in %s)",
                self.config.state.node,
                leadership.where,
            )
            self._took_lead_after_outage(leadership)
            gap_since = self._failover_since(leadership.other_led_at)
            for job in self.jobs.values():
                self._schedule(job, catch_up=True, gap_since=gap_since)
            self._make_up_lost_offline()
        elif was_leading and not leading:
            log.warning("node %s stands by: another daemon may take over", self.config.state.node)
            self.scheduler.remove_all_jobs()
            with self._inflight_cv:
                self._lost_pending.clear()  # removed with the jobs, never to run here
        self._leading = leading
        if leading and leadership.lost_at is None:
            self._make_up_interrupted()
        self.notifier.status(self._status_text())

    def _make_up_interrupted(self) -> None:
        """Ends the runs a dead daemon left going; a catch_up job's interrupted run runs again.

        Checked on every tick while active, not only on taking over: the dead daemon's session
        (which owns its runs) may end a moment after its lead did. The make-up claims its fire
        time when it starts, so of all the daemons that ever see the interrupted run, one (the
        first to get to it) makes it up.
        """
        if time.monotonic() < self._orphans_after:
            return  # see _took_lead_after_outage
        try:
            self._mark_interrupted()
            for job in self.jobs.values():
                if job.config.enabled and job.config.catch_up:
                    self._make_up(job)
        except RunnerError as exc:
            log.error("cannot check for interrupted runs: %s", exc)

    def _took_lead_after_outage(self, leadership: Leadership) -> None:
        """On taking the lead: what the old active daemon left is history first.

        Its runs cut short and the fire times it claimed but never started are recorded at once
        (so the schedule continues after them), unless this daemon could not reach the
        database itself a moment ago: then the old active daemon may be alive and coming back
        from the same outage, its runs still going or ended meanwhile. It gets two polls to
        reconnect (re-taking its runs' owner lock and writing what it kept) before its runs
        count as orphaned.
        """
        unreachable_at = leadership.unreachable_at
        if unreachable_at is not None and time.monotonic() - unreachable_at < 5 * LEAD_POLL_SECONDS:
            self._orphans_after = time.monotonic() + 2 * LEAD_POLL_SECONDS
            return
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        marked = self.state.mark_interrupted(self.now())
        if marked:
            log.warning("%d run(s) of a daemon that stopped were interrupted", marked)

    def _failover_since(self, other_led_at: datetime | None) -> datetime | None:
        """Where a failover's gap starts, when this takeover is one; None: a (cold) start.

        A takeover within a minute or two of seeing another daemon lead is a failover; a
        daemon that has seen nobody lead (the first to start, or after the database was out
        of reach for long) schedules as a restart does: one coalesced catch-up.
        """
        if other_led_at is None or self.now() - other_led_at > 4 * FAILOVER_GAP:
            return None
        return other_led_at - FAILOVER_GAP

    def _make_up(self, job: LoadedJob) -> None:
        for run in self.state.runs(job.name, limit=MAKE_UP_LOOKBACK, account=job.config.account):
            slot = run.scheduled_at
            if (
                run.error != INTERRUPTED
                or slot is None
                or run.trigger not in ("schedule", "catch_up")
                or (job.name, slot) in self._made_up
            ):
                continue
            self._made_up.add((job.name, slot))
            log.info("%s: its run for %s was interrupted; making it up once", job.name, slot)
            self.scheduler.add_job(
                self._fire,
                DateTrigger(self.now(), timezone=self.config.tzinfo()),
                args=[job.name],
                kwargs={"trigger": "catch_up", "scheduled_at": slot, "make_up": True},
                id=f"{job.name}{MAKE_UP_SUFFIX}{slot.isoformat()}",
            )

    def _claimed(
        self, job: LoadedJob, scheduled: datetime | None, trigger: str, attempt: int, make_up: bool
    ) -> bool:
        """With a shared database: whether this run may start (its fire time claimed for it)."""
        if self.leadership is None:
            return True
        if not self.leadership.leading:
            log.info("%s: not run, this daemon stands by", job.name)
            return False
        if not self.leadership.confirm():
            # Its session broke (a network cut?) and the lock is not won back: another daemon
            # may lead by now (the main loop's next tick stands by then).
            log.warning(
                "%s: not run: the state database does not confirm this daemon's lead (its "
                "session there broke)",
                job.name,
            )
            return False
        if trigger not in ("schedule", "catch_up") or attempt != 1 or scheduled is None:
            # Retries and manual runs belong to a fire time already claimed (or to none).
            return True
        try:
            claimed = self.state.claim(
                job.name,
                scheduled,
                account=job.config.account,
                node=self.config.state.node,
                make_up=make_up,
            )
        except RunnerError as exc:
            log.warning(
                "%s: not run for %s: its fire time cannot be claimed in the state database (%s)",
                job.name,
                scheduled,
                _one_line(exc),
            )
            return False
        if claimed:
            return True
        log.info(
            "%s: its run for %s was claimed already (another daemon ran it)", job.name, scheduled
        )
        return False

    def _fire(
        self,
        name: str,
        *,
        trigger: str = "schedule",
        attempt: int = 1,
        scheduled_at: datetime | None = None,
        make_up: bool = False,
    ) -> None:
        """One scheduled (or retried, or caught-up) run; never raises into APScheduler.

        The bookkeeping before the run itself (the pause, the hold, recording a skip) reads and
        writes the state store too, so it is contained here like the run: one line for expected
        trouble, and an unexpected error is logged with the job's name instead of escaping into
        APScheduler's own traceback.
        """
        try:
            self._fire_checked(
                name, trigger=trigger, attempt=attempt, scheduled_at=scheduled_at, make_up=make_up
            )
        except RunnerError as exc:
            # The state database refused (disk full...), a job's state is corrupt: one line.
            log.error("%s: %s", name, exc)
        except OSError as exc:
            # The state directory refused (its run lock, say): e.g. another user took it over.
            where = f" {exc.filename}" if exc.filename else ""
            log.error("%s: not run: cannot use%s: %s", name, where, describe_os_error(exc))
        except Exception:
            log.exception("%s: the run machinery failed", name)
        finally:
            if trigger == "manual":
                # After the run's end is recorded: the page, asking first, then sees it there.
                self._manual.discard(name)

    def _fire_checked(
        self,
        name: str,
        *,
        trigger: str,
        attempt: int,
        scheduled_at: datetime | None,
        make_up: bool = False,
    ) -> None:
        job = self.jobs.get(name)
        if job is None or self._stopping.is_set():
            return
        if trigger != "manual" and is_paused(self.state, name, job.config.account):
            # Not recorded as skipped: a job paused for a week on `every: 1m` would fill its
            # history with nothing. `jobs` and the status page say it is paused.
            log.info("%s: paused, not running its %s run", name, trigger.replace("_", "-"))
            return
        hold = current_hold(self.state, self.now())
        if hold is not None:
            # Spotify's rate limit is per app: a run now would only meet another 429 and
            # prolong it. The rate-limited job's own retry is scheduled for when it ends.
            until = hold.until.astimezone(self.config.tzinfo())
            reason = (
                f"Spotify rate-limited this app until {until:%Y-%m-%d %H:%M:%S %Z} ({hold.reason})"
            )
            self._skipped(job, scheduled_at or self._slot_for(name, trigger), reason, trigger)
            return
        busy = self._busy.setdefault(name, threading.Lock())
        catching_up = trigger == "catch_up" and self.leadership is not None
        if catching_up:
            with self._inflight_cv:
                self._making_up[name] = self._making_up.get(name, 0) + 1
        try:
            if catching_up or (trigger == "schedule" and self._making_up.get(name)):
                # After a takeover, catch-ups and make-ups stand for fire times the failover
                # cost: they and the fire times after them take turns instead of skipping.
                acquired = busy.acquire(timeout=job.config.timeout.total_seconds())
            else:
                acquired = busy.acquire(blocking=False)
            self._run_acquired(job, busy, acquired, trigger, attempt, scheduled_at, make_up)
        finally:
            if catching_up:
                with self._inflight_cv:
                    self._making_up[name] -= 1

    def _run_acquired(
        self,
        job: LoadedJob,
        busy: threading.Lock,
        acquired: bool,
        trigger: str,
        attempt: int,
        scheduled_at: datetime | None,
        make_up: bool,
    ) -> None:
        name = job.name
        if not acquired:
            self._skipped(
                job,
                scheduled_at or self._slot_for(name, trigger),
                "the previous run is still going",
                trigger,
            )
            return
        with self._inflight_cv:
            self._inflight += 1
        try:
            # A retry keeps the scheduled time of the run it repeats; a regular run stands for
            # its slot on the schedule (not its actual, possibly late or jittered, start). Inside
            # the `try`: should it fail, the job's busy lock is still released.
            scheduled = scheduled_at or self._slot_for(name, trigger)
            if not self._claimed(job, scheduled, trigger, attempt, make_up):
                return
            self.notify.run_started(name)
            outcome = self.executors[job.config.account].run(
                job, scheduled_at=scheduled, attempt=attempt, trigger=trigger
            )
            if outcome.status is RunStatus.SKIPPED:
                log.warning("%s: skipped, %s", name, outcome.summary)
            retry = outcome.status in RETRYABLE and attempt <= job.config.retries
            if retry:
                self._schedule_retry(job, attempt, outcome.retry_after, scheduled)
            if outcome.record is not None:
                self._finished(outcome.record, final=not retry, log_tail=outcome.log_tail)
        finally:
            # What went wrong is `_fire`'s to report (one line for expected trouble: the state
            # database refused, a job's state is corrupt, the state directory refused).
            busy.release()
            with self._inflight_cv:
                self._inflight -= 1
                self._inflight_cv.notify_all()
            self.notifier.status(self._status_text())

    def _skipped(
        self,
        job: LoadedJob,
        scheduled_at: datetime | None,
        reason: str,
        trigger: str = "schedule",
    ) -> RunRecord:
        """Records a run that did not happen, with the reason, and tells whoever watches runs."""
        record = self.state.record_skipped(
            job.name,
            scheduled_at=scheduled_at,
            at=self.now(),
            reason=reason,
            account=job.config.account,
            trigger=trigger,
        )
        log.warning("%s: skipped, %s", job.name, reason)
        self._finished(record, final=True)
        return record

    def _finished(self, record: RunRecord, *, final: bool, log_tail: str = "") -> None:
        """Every recorded run ends here: metrics, notifications and pings read its record."""
        self.metrics.run_finished(record)
        self.notify.run_finished(
            record, final=final, next_run=self._next_run(record.job), log_tail=log_tail
        )

    def _next_run(self, name: str) -> datetime | None:
        times = [
            job.next_run_time
            for job in self.scheduler.get_jobs()
            if job.next_run_time is not None and str(job.id).split("@", 1)[0] == name
        ]
        return min(times) if times else None

    def run_requested(self, name: str) -> bool:
        """True while `name` runs, or a manual run of it was asked for and has not started yet.

        The status page refreshes itself on this: right after **Run now** the run is only
        scheduled, not yet recorded as running.
        """
        busy = self._busy.get(name)
        return name in self._manual or (busy is not None and busy.locked())

    def run_now(self, name: str) -> None:
        """Starts a manual run of `name` at once (recorded with trigger `manual`).

        A paused job runs too: a manual run is a person's explicit request.

        Raises:
            UsageError: no such job, the daemon is stopping, or the job is running right now.
        """
        job = self.jobs.get(name)
        if job is None:
            known = ", ".join(self.jobs) or "none"
            raise UsageError(f"no job named '{name}' (configured: {known})")
        if self._stopping.is_set():
            raise UsageError(f"{name}: not started, the daemon is stopping")
        if self.run_requested(name):
            raise UsageError(f"{name} is running right now; try again when this run has ended")
        self._manual.add(name)
        try:
            self.scheduler.add_job(
                self._fire,
                DateTrigger(self.now(), timezone=self.config.tzinfo()),
                args=[name],
                kwargs={"trigger": "manual"},
                id=name + MANUAL_SUFFIX,
                replace_existing=True,
                misfire_grace_time=None,
            )
        except BaseException:
            self._manual.discard(name)
            raise
        log.info("%s: manual run requested", name)

    def _slot_for(self, name: str, trigger: str) -> datetime | None:
        # A manual run stands for no slot: it neither postpones the schedule nor makes up for
        # a missed run (as with `run-job`).
        return None if trigger == "manual" else self._slot(name)

    def _slot(self, name: str) -> datetime:
        exact = self._exact.get(name)
        now = self.now()
        return slot_of(exact, now) if exact is not None else now

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
        if name not in self.jobs:
            return  # the heartbeat: a missed beat is what liveness measures, not a run
        kind = str(event.job_id)[len(name) :]
        trigger = next((t for suffix, t in _TRIGGERS if kind.startswith(suffix)), "schedule")
        times = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
        reason = (
            "the previous run is still going"
            if event.code == EVENT_JOB_MAX_INSTANCES
            else "missed: the daemon was too late to start it"
        )
        # APScheduler's run time includes jitter; the record names the slot on the schedule.
        exact = self._exact.get(name)
        slot = slot_of(exact, times[-1]) if exact is not None else times[-1]
        try:
            self._skipped(self.jobs[name], slot, reason, trigger)
        except RunnerError as exc:
            log.error("%s: %s", name, exc)
        except Exception:
            # An APScheduler listener must not raise either: its errors end in the scheduler.
            log.exception("%s: recording the skipped run failed", name)

    def _status_text(self) -> str:
        """systemd's STATUS= line: what needs the user first, then the next run."""
        if self.leadership is not None and not self.leadership.leading:
            return f"node {self.config.state.node} standing by (another daemon is active)"
        upcoming = [
            (job.next_run_time, job.id)
            for job in self.scheduler.get_jobs()
            if job.next_run_time is not None and job.id != HEARTBEAT_ID
        ]
        prefix = self._attention()
        if not upcoming:
            # What needs attention is said even with nothing scheduled (all jobs paused, say).
            return f"{prefix}no runs scheduled"
        when, name = min(upcoming)
        local = when.astimezone(self.config.tzinfo())
        return f"{prefix}next run: {name} at {local:%Y-%m-%d %H:%M:%S %Z}"

    def _attention(self) -> str:
        """The status line's warnings (authorization, unsaved tokens, database, rate limit)."""
        waiting = [name for name, tokens in self.tokens.items() if tokens.needs_auth]
        prefix = ""
        if waiting == [DEFAULT_ACCOUNT]:
            prefix = "needs authorization; "
        elif waiting:
            prefix = f"account {', '.join(waiting)} needs authorization; "
        for account, tokens in self.tokens.items():
            unsaved = tokens.status().unsaved
            if unsaved is not None:
                whose = "" if account == DEFAULT_ACCOUNT else f" of account {account}"
                prefix += (
                    f"NEEDS ATTENTION: the new Spotify token{whose} is not saved ({unsaved}); "
                )
        try:
            hold = current_hold(self.state, self.now())
        except RunnerError:  # the state database is unreachable: the leadership line says so
            prefix += "state database unreachable; "
            hold = None
        if hold is not None:
            until = hold.until.astimezone(self.config.tzinfo())
            prefix += f"rate-limited until {until:%H:%M:%S} ({hold.reason}); "
        return prefix

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

    def _check_authorizations(self) -> None:
        """The 14/3/1-day warnings before each account's authorization ends."""
        for name, tokens in self.tokens.items():
            try:
                ends = tokens.status().expires_at
            except RunnerError as exc:  # the token store's database is unreachable: next tick
                log.debug("%s: cannot check the authorization: %s", name, exc)
                continue
            self.notify.authorization_ends(name, ends)

    def _main_loop(self) -> int:
        self._check_authorizations()
        interval = self.notifier.watchdog_interval()
        tick = min(interval, 30.0) if interval else 30.0
        if self.leadership is not None:
            tick = min(tick, LEAD_POLL_SECONDS)
        while True:
            try:
                signum = self._signals.get(timeout=tick)
            except queue.Empty:
                signum = None
            if interval and self.liveness.alive():
                # The signal /healthz reports: a stalled scheduler lets systemd restart us.
                self.notifier.watchdog()
            self._check_authorizations()
            if self.leadership is not None and signum is None:
                self._lead_tick()
            self._catch_up_authorized()
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
            # The job threads cannot be stopped from outside; waiting for them would outlast
            # systemd's TimeoutStopSec. Record them as interrupted now and leave: `abandoned`
            # tells the caller to exit without joining them (and keeps the store open for them).
            self.abandoned = self.state.mark_interrupted(self.now(), own=True) or 1
            log.warning(
                "stopped after shutdown_timeout (%gs) with %d run(s) still going: "
                "recorded as interrupted",
                limit,
                self.abandoned,
            )
            return 0
        log.info("stopped")
        return 0

    def _replace_token_managers(self, config: Config) -> None:
        """New managers for the accounts whose settings changed; the others keep theirs."""
        same_app = config.spotify == self.config.spotify
        for name, tokens in list(self.tokens.items()):
            if not same_app or self.config.accounts.get(name) != config.accounts.get(name):
                tokens.stop()
                del self.tokens[name]
        for name in config.accounts:
            if name not in self.tokens:
                tokens = self._token_manager(config, name)
                self._announce_auth(tokens)
                tokens.start()
                self.tokens[name] = tokens

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
        except Exception as exc:  # a reload never takes the daemon down
            log.error("reload failed, keeping the running config: %s", _one_line(exc))
            self.notifier.ready(self._status_text())
            return False
        if config.state_dir != self.config.state_dir:
            log.error("reload: state_dir cannot change while running; restart to move it")
            self.notifier.ready(self._status_text())
            return False
        if config.http != self.config.http:
            log.warning("reload: http changes take effect at the next restart")
        old = self.jobs
        self._replace_token_managers(config)
        self.config = config
        self._make_executors()
        self.notify.reconfigure(config)
        self.jobs = jobs
        gone = set(old) - set(jobs)
        self._manual -= gone
        for scheduled in self.scheduler.get_jobs():
            # Its regular runs, and any retry, catch-up, make-up or manual run still to come.
            if str(scheduled.id).split("@", 1)[0] in gone:
                scheduled.remove()
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
