"""The status page: the overview, one page per job, their buttons, and the OAuth callback.

Thin views: what a page shows is what `spotify-runner jobs --json` (`runner.status`) and
`history --json` (`runner.history`) compute; what a button does goes through `PageServices`,
which the daemon fills with its own methods (a manual run, its pending re-authorizations).
Every state change is a POST checked by `runner.web.guard`; every page is usable without
JavaScript (there is none) and refreshes itself while a run is in progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request

from runner import __version__
from runner.accounts import token_stores
from runner.config import Config
from runner.errors import RunnerError
from runner.history import history_rows
from runner.holds import current_hold
from runner.pause import pause, resume
from runner.reauth import PendingAuthorizations
from runner.state import open_store
from runner.status import WARN_DAYS, collect_status
from runner.web.guard import CSRF_FIELD, Guard

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runner.daemon import Daemon

EXTENSION = "spotify_runner.pages"
REFRESH_SECONDS = 3


@dataclass
class PageServices:
    """What the pages may use.

    Attributes:
        config: the daemon's current config (a reload changes it).
        run_now: starts a manual run; raises `UsageError` while the job runs.
        scopes: the scopes an account's jobs need (what Re-authorize asks for).
        daemon: the daemon's own state: `running_since`, `rate_limit` (or None).
        guard: Host, password, Origin and CSRF checks.
        pending: the re-authorizations started from the page.
        requested: True while a job runs or its requested manual run has not started yet
            (a job's page refreshes itself meanwhile).
    """

    config: Callable[[], Config]
    run_now: Callable[[str], None]
    scopes: Callable[[str], frozenset[str]]
    daemon: Callable[[], Mapping[str, Any]]
    guard: Guard
    pending: PendingAuthorizations
    requested: Callable[[str], bool] = lambda name: False


def _services() -> PageServices:
    found: PageServices = current_app.extensions[EXTENSION]
    return found


def _check() -> None:
    _services().guard.check(request)


def _headers(response: Response) -> Response:
    return _services().guard.headers(response)


def _render(template: str, code: int = 200, **values: Any) -> tuple[str, int]:
    services = _services()
    return (
        render_template(
            template,
            csrf_field=CSRF_FIELD,
            csrf_token=services.guard.csrf_token(),
            version=__version__,
            warn_days=WARN_DAYS,
            **values,
        ),
        code,
    )


def _overview_data() -> dict[str, Any]:
    services = _services()
    config = services.config()
    status = collect_status(config)
    running = any(
        job["last_run"] is not None and job["last_run"]["status"] == "running"
        for job in status["jobs"]
    )
    daemon = dict(services.daemon())
    state = open_store(config, readonly=True)
    try:
        hold = current_hold(state, datetime.now(UTC))
    finally:
        state.close()
    if hold is not None:
        until = hold.until.astimezone(config.tzinfo())
        daemon["rate_limit"] = (
            f"Spotify rate-limited this app until {until:%Y-%m-%d %H:%M:%S} ({hold.reason})"
        )
    return {"status": status, "daemon": daemon, "refresh": REFRESH_SECONDS if running else None}


def overview() -> tuple[str, int]:
    """Every account and every job at a glance, with their buttons."""
    return _render("overview.html", **_overview_data())


def job_page(name: str) -> tuple[str, int]:
    """One job: its row of the overview, its history and each run's own log lines."""
    return _job_page(name)


def _job_page(name: str, *, message: str | None = None, code: int = 200) -> tuple[str, int]:
    config = _services().config()
    if name not in config.jobs:
        return _render("message.html", 404, title="No such job", message=f"no job named {name}")
    # Asked before the history is read: a Run now that ends in between is then in the history.
    requested = _services().requested(name)
    data = _overview_data()
    job = next(j for j in data["status"]["jobs"] if j["name"] == name)
    runs = history_rows(config, name, limit=50)
    state = open_store(config, readonly=True)
    try:
        logs = {row["id"]: state.run_log(row["id"]) for row in runs[:10]}
    finally:
        state.close()
    # Right after Run now the run may only be scheduled: refresh until it shows up and ends.
    running = requested or any(row["status"] == "running" for row in runs)
    data["refresh"] = REFRESH_SECONDS if running else None
    return _render("job.html", code, job=job, runs=runs, logs=logs, message=message, **data)


def run_now(name: str) -> Any:
    """Run now: a manual run, refused while the job is running."""
    if name not in _services().config().jobs:
        return _render("message.html", 404, title="No such job", message=f"no job named {name}")
    try:
        _services().run_now(name)
    except RunnerError as exc:
        return _job_page(name, message=str(exc), code=409)
    return redirect(f"/jobs/{name}", code=303)


def _set_paused(name: str, paused: bool) -> Any:
    config = _services().config()
    if name not in config.jobs:
        return _render("message.html", 404, title="No such job", message=f"no job named {name}")
    state = open_store(config)
    try:
        (pause if paused else resume)(state, name, config.account_of(name))
    finally:
        state.close()
    back = request.form.get("back")
    return redirect(f"/jobs/{name}" if back == "job" else "/", code=303)


def pause_job(name: str) -> Any:
    """Pause: the job keeps its schedule but does not run."""
    return _set_paused(name, True)


def resume_job(name: str) -> Any:
    """Resume a paused job."""
    return _set_paused(name, False)


def reauthorize(name: str) -> Any:
    """Re-authorize: off to Spotify's consent page with a fresh single-use state."""
    services = _services()
    config = services.config()
    if name not in config.accounts:
        return _render(
            "message.html", 404, title="No such account", message=f"no account named {name}"
        )
    _state, url = services.pending.start(config.spotify, name, services.scopes(name))
    return redirect(url, code=303)


def callback() -> tuple[str, int]:
    """Where Spotify sends the browser back: completes the flow the state names."""
    services = _services()
    config = services.config()
    params = {key: request.args[key] for key in ("state", "code", "error") if key in request.args}
    try:
        result = services.pending.finish(
            config.spotify,
            params,
            token_stores(config),
            command=config.auth_command,
            refresh_token=lambda account: config.accounts[account].refresh_token,
        )
    except RunnerError as exc:
        return _render("message.html", 400, title="Not authorized", message=str(exc))
    return _render(
        "message.html",
        title="Authorized",
        message=result.summary().splitlines()[0]
        + ": its jobs run again; a scheduled run that waited for the authorization runs now",
    )


def add_pages(app: Flask, services: PageServices) -> None:
    """Adds the status page to `app`, the callback on the redirect URI's own path."""
    app.extensions[EXTENSION] = services
    pages = Blueprint(
        "pages",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    pages.before_request(_check)
    pages.after_request(_headers)
    pages.add_url_rule("/", view_func=overview)
    pages.add_url_rule("/jobs/<name>", view_func=job_page)
    pages.add_url_rule("/jobs/<name>/run", view_func=run_now, methods=["POST"])
    pages.add_url_rule("/jobs/<name>/pause", view_func=pause_job, methods=["POST"])
    pages.add_url_rule("/jobs/<name>/resume", view_func=resume_job, methods=["POST"])
    pages.add_url_rule("/accounts/<name>/authorize", view_func=reauthorize, methods=["POST"])
    path = urlsplit(services.config().spotify.redirect_uri).path or "/callback"
    pages.add_url_rule(path, "callback", callback)
    app.register_blueprint(pages)


def daemon_services(
    daemon: Daemon, hosts: Iterable[str], *, password: str | None = None
) -> PageServices:
    """The pages' services for a running daemon: its config, its manual runs, its jobs' scopes."""
    from runner.loader import required_scopes

    def scopes(account: str) -> frozenset[str]:
        jobs = [job for job in daemon.jobs.values() if job.config.account == account]
        return required_scopes(jobs)

    def info() -> dict[str, Any]:
        since = daemon.started_at.astimezone(daemon.config.tzinfo())
        return {
            "running_since": f"{since:%Y-%m-%d %H:%M:%S %Z}",
            "rate_limit": None,
            **daemon.node_status(),
        }

    return PageServices(
        config=lambda: daemon.config,
        run_now=daemon.run_now,
        scopes=scopes,
        daemon=info,
        guard=Guard(hosts, password=password, accounts_url=daemon.config.spotify.accounts_url),
        pending=daemon.pending,
        requested=daemon.run_requested,
    )
