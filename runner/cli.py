"""The command line, and the one error boundary: expected errors become one line and an exit code.

Exit codes: 0 ok, 1 a job failed, 2 usage or config error, 3 authorization needed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner import __version__
from runner.errors import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AuthError,
    ConfigError,
    RunnerError,
    UsageError,
)
from runner.files import describe_os_error
from runner.logs import RedactingFilter, setup_logging

if TYPE_CHECKING:
    from runner.config import Config
    from runner.loader import LoadedJob
    from runner.tokens import TokenManager

log = logging.getLogger("runner")


@dataclass
class Session:
    """What every command shares: where the config is, and how to log."""

    config_path: str
    verbosity: int
    log_format: str
    redactor: RedactingFilter
    _config: Config | None = field(default=None, repr=False)
    _managers: list[TokenManager] = field(default_factory=list, repr=False)

    def config(self) -> Config:
        """Loads the config once; its secrets are registered for redaction at once."""
        if self._config is None:
            from runner.config import load_config

            self._config = load_config(self.config_path)
            for secret in self._config.secrets():
                self.redactor.add(secret)
            from runner.notify.urls import register_url_secrets

            register_url_secrets(self.redactor, self._config)
        return self._config

    def jobs(self, only: list[str] | None = None) -> dict[str, LoadedJob]:
        """Loads and checks the configured jobs."""
        from runner.loader import load_jobs

        return load_jobs(self.config(), only=only)

    def account(self, given: str | None) -> str:
        """The account a command means: `--account NAME`, else the only one."""
        from runner.accounts import pick_account

        return pick_account(self.config(), given)

    def token_manager(self, account: str) -> TokenManager:
        """A token manager over the account's store, seeded from its config token if needed."""
        from runner.accounts import token_manager

        manager = token_manager(self.config(), account)
        self._managers.append(manager)
        return manager

    def close(self) -> None:
        """At the end of a command: a refreshed token the store refused is written or reported.

        Raises:
            TokenNotSaved: the write kept failing (exit 3; the message says where and why).
        """
        for manager in self._managers:
            problem = manager.save_before_exit()
            if problem is not None:
                raise problem


class OutputError(UsageError):
    """Standard output cannot be written (`> /dev/full`, a closed pipe)."""


def _echo(message: str, nl: bool = True) -> None:
    """`click.echo` to stdout; a refused write is one line on stderr, not a traceback."""
    try:
        click.echo(message, nl=nl)
    except OSError as exc:
        raise OutputError(f"cannot write the output: {describe_os_error(exc)}") from None


def _default_config_path() -> str:
    return os.environ.get("SPOTIFY_RUNNER_CONFIG") or "config.yaml"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spotify-runner")
@click.option(
    "-c",
    "--config",
    "config_path",
    default=_default_config_path,
    show_default="$SPOTIFY_RUNNER_CONFIG, else ./config.yaml",
    help="The YAML config file.",
)
@click.option("-v", "--verbose", count=True, help="-v debug, -vv debug for libraries too.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json for log collectors; text for journald and terminals.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str, verbose: int, log_format: str) -> None:
    """Runs Spotify automation jobs on a schedule, authorized once."""
    redactor = setup_logging(verbosity=verbose, fmt=log_format)
    ctx.obj = Session(config_path, verbose, log_format, redactor)
    ctx.call_on_close(ctx.obj.close)


_pass_session = click.make_pass_decorator(Session)


def _config_here(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    session = ctx.find_object(Session)
    if value is not None and session is not None:
        session.config_path = value


def _verbose_here(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    session = ctx.find_object(Session)
    if value and session is not None:
        session.verbosity += value
        session.redactor = setup_logging(verbosity=session.verbosity, fmt=session.log_format)


def _log_format_here(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    session = ctx.find_object(Session)
    if value is not None and session is not None:
        session.log_format = value
        session.redactor = setup_logging(verbosity=session.verbosity, fmt=session.log_format)


def pass_session(command: Callable[..., Any]) -> Callable[..., Any]:
    """Passes the Session, and accepts the global options after the command name too.

    `spotify-runner run --config X -v` (as systemd units write it) and
    `spotify-runner -c X -v run` mean the same. Logging is set up again when they come after
    the command; the config (and so its secrets) is only loaded later, by the command itself.
    """
    options = [
        click.option(
            "-c",
            "--config",
            "config_here",
            default=None,
            expose_value=False,
            callback=_config_here,
            help="The YAML config file (may also come before the command).",
        ),
        click.option(
            "-v",
            "--verbose",
            "verbose_here",
            count=True,
            expose_value=False,
            callback=_verbose_here,
            help="-v debug, -vv debug for libraries too (may also come before the command).",
        ),
        click.option(
            "--log-format",
            "log_format_here",
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_log_format_here,
            help="text or json (may also come before the command).",
        ),
    ]
    decorated = _pass_session(command)
    for option in options:
        decorated = option(decorated)
    return decorated


_account_option = click.option(
    "--account",
    "account_name",
    metavar="NAME",
    help="The account (from accounts: in the config); needed when there are several.",
)


@cli.command()
@click.option(
    "--online", is_flag=True, help="Also check every account's token works and covers its jobs."
)
@pass_session
def check(session: Session, online: bool) -> None:
    """Validates the config, every job module and its options."""
    config = session.config()
    jobs = session.jobs()
    from runner.schedule import past_one_offs

    past = past_one_offs(config, datetime.now(UTC))
    if past:
        raise ConfigError(past)
    names = ", ".join(jobs) or "no jobs"
    _echo(f"{config.source}: ok ({len(jobs)} job{'s' if len(jobs) != 1 else ''}: {names})")
    if online:
        from runner.config import DEFAULT_ACCOUNT
        from runner.loader import required_scopes
        from runner.status import verify_online

        problems: list[str] = []
        for account in config.accounts:
            used = [job for name, job in jobs.items() if config.account_of(name) == account]
            try:
                report = verify_online(
                    session.token_manager(account), config.spotify, required_scopes(used)
                )
            except AuthError as exc:
                report = str(exc)
                problems.append(
                    report if account == DEFAULT_ACCOUNT else f"account {account}: {exc}"
                )
                continue
            _echo(report if account == DEFAULT_ACCOUNT else f"account {account}: {report}")
        if problems:
            raise AuthError("\n".join(problems))


@cli.command()
@click.option("--no-browser", is_flag=True, help="Print the URL and read the redirect from stdin.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Catch the redirect on this port (must be registered).",
)
@click.option("--pkce", is_flag=True, help="Use PKCE: no client secret needed.")
@click.option("--scope", "extra_scopes", multiple=True, help="Extra scope to request (repeat).")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait.")
@_account_option
@click.option(
    "--replace",
    is_flag=True,
    help="Accept a Spotify user other than the one the account was authorized as.",
)
@pass_session
def auth(
    session: Session,
    no_browser: bool,
    port: int | None,
    pkce: bool,
    extra_scopes: tuple[str, ...],
    timeout: float,
    account_name: str | None,
    replace: bool,
) -> None:
    """Authorizes spotify-runner with a Spotify account and stores the token."""
    from runner.accounts import token_stores
    from runner.auth import authorize
    from runner.loader import required_scopes

    config = session.config()
    account = session.account(account_name)
    used = [job for name, job in session.jobs().items() if config.account_of(name) == account]
    scopes = set(required_scopes(used)) | set(extra_scopes)
    stores = token_stores(config)
    result = authorize(
        config.spotify,
        stores.pop(account),
        scopes=sorted(scopes),
        open_browser=not no_browser,
        port=port,
        pkce=pkce,
        timeout=timeout,
        refresh_token=config.accounts[account].refresh_token,
        others=stores,
        replace=replace,
        command=config.auth_command(account),
    )
    _echo(result.summary())


@cli.command()
@_account_option
@pass_session
def token(session: Session, account_name: str | None) -> None:
    """Prints a valid access token (for curl) and nothing else."""
    _echo(session.token_manager(session.account(account_name)).get_access_token())


@cli.command("run")
@pass_session
def run_daemon(session: Session) -> None:
    """Runs the daemon in the foreground (what systemd starts)."""
    from runner.lazy import defer

    # Nothing before READY=1 needs spotipy (and the redis it imports): the daemon loads it
    # right after READY=1 (runner.lazy).
    defer("spotipy")
    from runner.daemon import Daemon

    daemon = Daemon(session.config_path, redactor=session.redactor)
    code = daemon.serve()
    if daemon.abandoned:
        # Runs outlived shutdown_timeout (already recorded as interrupted). A normal exit would
        # join their threads, for as long as they take: leave now, as systemd expects.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


@cli.command("run-job")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@pass_session
def run_job(session: Session, name: str, dry_run: bool) -> None:
    """Runs one job now, in the foreground, and records it in the history."""
    from runner.execution import exit_code_for, run_once
    from runner.state import RunStatus

    config = session.config()
    if name not in config.jobs:
        known = ", ".join(config.jobs) or "none"
        # Our UsageError, not click's: one line, without click's usage banner.
        raise UsageError(f"no job named '{name}' in {config.source} (configured: {known})")
    job = session.jobs(only=[name])[name]
    tokens = session.token_manager(config.account_of(name))
    outcome = run_once(config, job, tokens, dry_run=dry_run, redactor=session.redactor)
    if outcome.status is RunStatus.SKIPPED:
        # Another process (the daemon, or another run-job) is running this job right now.
        click.echo(f"error: {name}: {outcome.summary}; recorded as skipped", err=True)
        sys.exit(EXIT_JOB_FAILED)
    _echo(outcome.line())
    sys.exit(exit_code_for(outcome.status))


def _set_paused(session: Session, name: str, *, paused: bool) -> None:
    from runner.pause import pause, resume
    from runner.state import open_store

    config = session.config()
    if name not in config.jobs:
        known = ", ".join(config.jobs) or "none"
        raise UsageError(f"no job named '{name}' in {config.source} (configured: {known})")
    state = open_store(config)
    try:
        changed = (pause if paused else resume)(state, name, config.account_of(name))
    finally:
        state.close()
    if paused:
        _echo(f"{name}: paused" if changed else f"{name}: already paused")
    else:
        _echo(f"{name}: resumed" if changed else f"{name}: was not paused")


@cli.command("pause")
@click.argument("name")
@pass_session
def pause_job(session: Session, name: str) -> None:
    """Stops a job's scheduled runs until `resume` (kept across restarts and reloads)."""
    _set_paused(session, name, paused=True)


@cli.command("resume")
@click.argument("name")
@pass_session
def resume_job(session: Session, name: str) -> None:
    """Lets a paused job run on its schedule again."""
    _set_paused(session, name, paused=False)


@cli.group("state")
def state_group() -> None:
    """The state store: history, job state, tokens."""


@state_group.command("migrate")
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="postgresql://USER@HOST/DATABASE: an empty database (password: in the URL, "
    "$PGPASSWORD, or state.password when it is the configured state.url).",
)
@pass_session
def state_migrate(session: Session, url: str) -> None:
    """Copies the SQLite state (history, job state, tokens) into an empty PostgreSQL, once."""
    from runner.state import StateError
    from runner.state.postgres import safe_url

    config = session.config()
    if not url.startswith(("postgresql://", "postgres://")):
        raise StateError(f"--to: expected postgresql://USER@HOST/DATABASE, got {safe_url(url)}")
    password = config.state.password if url == config.state.url else None
    try:
        from runner.state.migrate import migrate
    except ImportError:
        raise StateError(
            "state migrate needs psycopg: pip install 'spotify-runner[postgresql]'"
        ) from None
    done = migrate(config, url, None if password is None else password.get_secret_value())
    _echo(f"copied {done.describe()} from {config.state_dir} into {safe_url(url)}")
    if url != config.state.url:
        _echo(f"now set state.url to this database in {config.source} and restart the daemon")


@cli.command("jobs")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def list_jobs(session: Session, as_json: bool) -> None:
    """Lists the jobs: account, schedule, next and last run, and each account's authorization."""
    from runner.status import collect_status, format_status

    status = collect_status(session.config())
    if as_json:
        _echo(json.dumps(status, indent=2, default=str))
    else:
        _echo(format_status(status))


@cli.command()
@click.option("--test", "send_test", is_flag=True, help="Send one test message to every URL.")
@pass_session
def notify(session: Session, send_test: bool) -> None:
    """Checks the notification URLs: --test sends one message to each and shows the result."""
    if not send_test:
        raise UsageError("nothing to do: use 'spotify-runner notify --test'")
    config = session.config()
    urls = config.notify.url_values()
    if not urls:
        raise UsageError(f"{config.source}: notify.urls is empty: add an apprise URL first")
    from runner.notify.sender import send_test as deliver_test

    results = deliver_test(urls, timeout=config.notify.timeout.total_seconds())
    for name, ok in results:
        _echo(f"{name}: {'delivered' if ok else 'NOT delivered'}")
    sys.exit(EXIT_OK if all(ok for _, ok in results) else EXIT_JOB_FAILED)


@cli.command()
@click.argument("job", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--run", "run_id", type=int, help="Print this run's own log lines.")
@pass_session
def history(
    session: Session, job: str | None, limit: int, as_json: bool, run_id: int | None
) -> None:
    """Recent runs, newest first; with --run ID, what that run logged."""
    from runner.history import format_history, history_rows, run_log_text

    config = session.config()
    if run_id is not None:
        _echo(run_log_text(config, run_id, as_json=as_json), nl=False)
        return
    rows = history_rows(config, job, limit=limit)
    if as_json:
        _echo(json.dumps(rows, indent=2))
    else:
        _echo(format_history(rows))


@cli.command()
@click.option("--seconds", type=float, default=20.0, show_default=True, help="How long to run.")
@click.option("--keep", type=click.Path(path_type=Path), help="Keep the demo's files here.")
def demo(seconds: float, keep: Path | None) -> None:
    """Runs the daemon against the embedded fake Spotify and shows what each run did."""
    from runner.demo import run_demo

    sys.exit(run_demo(seconds=seconds, keep=keep))


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI inside the error boundary."""
    try:
        code = cli.main(args=argv, prog_name="spotify-runner", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        # One line, like every other error; `--help` has the usage.
        where = exc.ctx.command_path if exc.ctx is not None else "spotify-runner"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = EXIT_JOB_FAILED
    except RunnerError as exc:
        if isinstance(exc, OutputError):
            _silence_stdout()
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"error: {line}" if not _located(line) else line, err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:
        if not _in_output(exc):
            raise  # not the output: a bug, where a traceback is what helps
        # The output itself was refused (a full disk, a closed pipe) in a write not made
        # through `_echo`: click's own `--help`, say. One line, as `_echo` would.
        _silence_stdout()
        click.echo(f"error: cannot write the output: {describe_os_error(exc)}", err=True)
        code = OutputError.exit_code
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _in_output(exc: BaseException) -> bool:
    """True when `exc` came from writing the command's output (click's `echo`)."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "echo" and tb.tb_frame.f_globals.get("__name__") == "click.utils":
            return True
        tb = tb.tb_next
    return False


def _silence_stdout() -> None:
    """Points fd 1 at /dev/null, so the interpreter's last flush does not fail a second time."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _located(line: str) -> bool:
    """True for `file:line:col: ...` lines, which read best without a prefix."""
    head = line.split(": ", 1)[0]
    return head.count(":") >= 2 and head.rsplit(":", 2)[-1].isdigit()
