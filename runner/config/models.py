"""The typed models a config file becomes: frozen pydantic models, one per section."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from runner.config.fields import (
    Duration,
    Flag,
    Secret,
    Text,
    at_least,
    at_most,
    between,
    check_at,
    check_base_url,
    check_cron,
    check_name,
    check_redirect_uri,
    check_state_url,
    check_timezone,
    empty_mapping,
    fail,
    non_empty,
    to_datetime,
    to_int,
)
from runner.config.located import KeyPath, Position, dotted, nearest
from runner.config.monitoring import HttpConfig, HttpSection, NotifyConfig, PingUrl
from runner.durations import format_duration

# The ranges of the values that parse but would make no sense (or overflow the scheduler).
MAX_EVERY = timedelta(days=366)
MAX_JITTER = timedelta(days=1)
MAX_TIMEOUT = timedelta(days=1)

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
DEFAULT_ACCOUNTS_URL = "https://accounts.spotify.com"
DEFAULT_API_URL = "https://api.spotify.com/v1"
APP_NAME = "spotify-runner"
DEFAULT_ACCOUNT = "default"


class SpotifyConfig(BaseModel):
    """The Spotify app and how to reach Spotify.

    Secrets may be given inline (usually as `${ENV_VAR}`), through a file
    (`client_secret_file`, `refresh_token_file`: the file's content, stripped; a relative
    name is looked up in `$CREDENTIALS_DIRECTORY` first, then next to the config file), or
    not at all: then `$CREDENTIALS_DIRECTORY/spotify_client_secret` and
    `$CREDENTIALS_DIRECTORY/spotify_refresh_token` are used when they exist, which is what
    systemd's `LoadCredential=spotify_client_secret:/path` provides.

    Attributes:
        client_id: the app's Client ID from the Spotify developer dashboard.
        client_secret: the app's secret; None for the PKCE flow.
        redirect_uri: registered in the dashboard; https, or http on 127.0.0.1 / [::1].
        refresh_token: a token made elsewhere, to skip `spotify-runner auth`; None if unset.
        accounts_url: the accounts service (token endpoint); no trailing slash.
        api_url: the Web API base; no trailing slash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: Annotated[Text, AfterValidator(non_empty)]
    client_secret: Secret = None
    redirect_uri: Annotated[Text, AfterValidator(check_redirect_uri)] = DEFAULT_REDIRECT_URI
    refresh_token: Secret = None
    accounts_url: Annotated[Text, AfterValidator(check_base_url)] = DEFAULT_ACCOUNTS_URL
    api_url: Annotated[Text, AfterValidator(check_base_url)] = DEFAULT_API_URL


class AccountConfig(BaseModel):
    """One Spotify user the jobs run as (`accounts.NAME`).

    The refresh token follows the same rules as `spotify.refresh_token`: inline (usually
    `${ENV_VAR}`), `refresh_token_file`, or `$CREDENTIALS_DIRECTORY/spotify_refresh_token_NAME`;
    most accounts leave it out and are authorized with `spotify-runner auth --account NAME`.

    Attributes:
        refresh_token: a token made elsewhere, to skip `auth`; None if unset.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    refresh_token: Secret = None


MAX_GRACE = timedelta(minutes=10)


class StateConfig(BaseModel):
    """Where the state lives (`state:`): SQLite in `state_dir` by default, or PostgreSQL.

    Two daemons with the same config and the same `url` form an active/standby pair.

    Attributes:
        url: `postgresql://user@host/database` (sslmode and the like as URL parameters); None
            for SQLite in `state_dir`.
        password: the database password when not in the URL: usually `${VAR}`, or
            `password_file` (read like the Spotify secrets).
        node: this daemon's name in `jobs` and `/healthz`; the host name by default. Names
            need not be unique: leadership never depends on them.
        grace: how long an active daemon that lost the database keeps its schedule (runs
            due meanwhile cannot claim their fire time and are skipped) before it steps down.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[Text | None, AfterValidator(check_state_url)] = None
    password: Secret = None
    node: Annotated[Text, AfterValidator(non_empty)] = Field(default_factory=socket.gethostname)
    grace: Annotated[
        Duration, AfterValidator(at_least(timedelta())), AfterValidator(at_most(MAX_GRACE))
    ] = timedelta(seconds=60)


class ScheduleConfig(BaseModel):
    """When a job runs: exactly one of `cron`, `every` and `at`, plus optional `jitter`.

    Attributes:
        cron: a 5-field crontab expression (minute hour day-of-month month day-of-week).
        every: a fixed interval, at least 1s.
        at: one moment; a naive value is in the config's time zone (applied by the scheduler).
        jitter: a random delay of up to this much added to each run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: Annotated[Text, AfterValidator(check_cron)] | None = None
    every: (
        Annotated[
            Duration,
            AfterValidator(at_least(timedelta(seconds=1))),
            AfterValidator(at_most(MAX_EVERY)),
        ]
        | None
    ) = None
    at: Annotated[datetime, BeforeValidator(to_datetime), AfterValidator(check_at)] | None = None
    jitter: Annotated[Duration, AfterValidator(at_most(MAX_JITTER))] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleConfig:
        given = [name for name in ("cron", "every", "at") if getattr(self, name) is not None]
        if not given:
            raise fail("give one of cron, every or at, like {every: 15m}")
        if len(given) > 1:
            raise fail(f"give only one of cron, every or at (got {' and '.join(given)})")
        if self.jitter and self.every is not None and self.jitter >= self.every:
            # A run delayed past the next grid point would collide with that point's run.
            raise fail(
                f"jitter ({format_duration(self.jitter)}) must be shorter than every "
                f"({format_duration(self.every)})"
            )
        return self

    def describe(self) -> str:
        """A short human description: `cron */15 * * * *`, `every 15m`, `at 2026-12-24 18:00`."""
        if self.cron is not None:
            text = f"cron {self.cron}"
        elif self.every is not None:
            text = f"every {format_duration(self.every)}"
        else:
            assert self.at is not None  # guaranteed by _exactly_one
            text = "at " + self.at.strftime(
                "%Y-%m-%d %H:%M:%S" if self.at.second else "%Y-%m-%d %H:%M"
            )
            offset = self.at.utcoffset()
            if offset is not None:
                text += self.at.strftime("%z")
        if self.jitter:
            text += f" (jitter {format_duration(self.jitter)})"
        return text


class JobConfig(BaseModel):
    """One scheduled job.

    Attributes:
        job: the job module's name, resolved later by `runner.loader`.
        account: the account it runs as; the loader fills in the only account when the config
            has one and the job names none.
        schedule: when it runs.
        catch_up: run once at start when a run was missed while the daemon was down.
        retries: how many times a transient failure is retried (0..20).
        timeout: how long one run may take.
        enabled: false keeps the job configured but never scheduled.
        options: free-form here; validated later by the job module's `Options`.
        notify: false keeps this job's failures and recoveries out of the notifications.
        ping: a healthchecks-style URL pinged at each run's start and end.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: Annotated[Text, AfterValidator(non_empty)]
    account: Annotated[Text, AfterValidator(check_name("account"))] = DEFAULT_ACCOUNT
    schedule: ScheduleConfig
    catch_up: Flag = False
    retries: Annotated[int, BeforeValidator(to_int), AfterValidator(between(0, 20))] = 3
    timeout: Annotated[
        Duration,
        AfterValidator(at_least(timedelta(), strict=True)),
        AfterValidator(at_most(MAX_TIMEOUT)),
    ] = timedelta(minutes=10)
    enabled: Flag = True
    options: Annotated[dict[str, Any], BeforeValidator(empty_mapping)] = Field(default_factory=dict)
    notify: Flag = True
    ping: PingUrl | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The options are raw until the job's `Options` validates them (and masks its secrets
        # as `SecretStr`): a key written inline (`api_key: abc123`) is still plain text here, so
        # the repr names the options and never shows their values.
        for name, value in super().__repr_args__():
            yield (name, _OptionNames(self.options)) if name == "options" else (name, value)


class _OptionNames:
    """Stands for a job's raw options in a repr: their names, none of their values."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.names = sorted(options)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: ..." for name in self.names) + "}"


class Config(BaseModel):
    """The whole configuration. Build it with `load_config` or `load_config_text`.

    Attributes:
        spotify: the Spotify app.
        accounts: the Spotify users, by name; without `accounts:` in the file, one account
            named "default" holding `spotify.refresh_token`.
        state_dir: token store and run history; absolute.
        state: where the state lives (SQLite in `state_dir`, or PostgreSQL).
        timezone: IANA name the schedules are read in.
        jobs_dir: an optional folder of drop-in job modules; absolute.
        shutdown_timeout: how long a stop waits for running jobs.
        jobs: by name.
        notify: where failures and recoveries are sent.
        http: the daemon's HTTP server (`/metrics`, `/healthz`); None when `http: false`.
        source: the config path as the user gave it, for messages.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spotify: SpotifyConfig
    accounts: dict[Annotated[str, AfterValidator(check_name("account"))], AccountConfig] = Field(
        default_factory=lambda: {DEFAULT_ACCOUNT: AccountConfig()}
    )
    state_dir: Path
    state: StateConfig = Field(default_factory=StateConfig)
    timezone: Annotated[str, BeforeValidator(check_timezone)]
    jobs_dir: Path | None = None
    shutdown_timeout: Annotated[
        Duration, AfterValidator(at_least(timedelta())), AfterValidator(at_most(MAX_TIMEOUT))
    ] = timedelta(seconds=30)
    jobs: Annotated[
        dict[Annotated[str, AfterValidator(check_name("job"))], JobConfig],
        BeforeValidator(empty_mapping),
    ] = Field(default_factory=dict)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    http: HttpSection = Field(default_factory=HttpConfig)
    source: str = "config.yaml"

    _positions: dict[KeyPath, Position] = PrivateAttr(default_factory=dict)
    _key_positions: dict[KeyPath, Position] = PrivateAttr(default_factory=dict)

    def tzinfo(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def secrets(self) -> list[str]:
        """Every secret in the config, in clear: for the log redaction filter only."""
        values = [self.spotify.client_secret, self.spotify.refresh_token]
        values += [account.refresh_token for account in self.accounts.values()]
        values.append(self.state.password)
        found = [value.get_secret_value() for value in values if value is not None]
        if self.state.url:
            found.append(urlsplit(self.state.url).password or "")
        return sorted({value for value in found if value})

    def account_of(self, job: str) -> str:
        """The account a configured job runs as."""
        return self.jobs[job].account

    def jobs_of(self, account: str) -> list[str]:
        """The names of the jobs that run as `account`, in config order."""
        return [name for name, job in self.jobs.items() if job.account == account]

    def auth_command(self, account: str) -> str:
        """The command that (re-)authorizes `account`, as messages quote it."""
        if list(self.accounts) == [DEFAULT_ACCOUNT]:
            return "spotify-runner auth"
        return f"spotify-runner auth --account {account}"

    def locate(self, *key_path: str | int) -> str:
        """Where a value sits in the file, as `FILE:LINE:COL`.

        For a key that is not in the file (a default, or a typo in the caller), the position of
        its nearest ancestor that is.

        Example:
            `config.locate("jobs", "radio", "options", "playlist")` -> `"config.yaml:14:7"`.
        """
        line, col = nearest(self._positions, tuple(key_path))
        return f"{self.source}:{line}:{col}"

    def locate_key(self, *key_path: str | int) -> str:
        """Where a key itself sits, as `FILE:LINE:COL`: for errors about the key (unknown option).

        Falls back to `locate()` for paths whose key is not in the file.
        """
        pos = self._key_positions.get(tuple(key_path))
        if pos is None:
            return self.locate(*key_path)
        return f"{self.source}:{pos[0]}:{pos[1]}"

    def problem(self, key_path: Sequence[str | int], message: str) -> str:
        """One error line about a value, in the same form as the loader's own errors.

        For code that validates parts of the config later (job `Options`), so its errors look
        like all others: `config.yaml:14:7: jobs.radio.options.playlist: <message>`.
        """
        return f"{self.locate(*key_path)}: {dotted(tuple(key_path))}: {message}"


# Keys accepted besides the model's fields, and keys the user may not write.
EXTRA_KEYS: dict[type[BaseModel], tuple[str, ...]] = {
    SpotifyConfig: ("client_secret_file", "refresh_token_file"),
    AccountConfig: ("refresh_token_file",),
    StateConfig: ("password_file",),
}
HIDDEN_KEYS: dict[type[BaseModel], tuple[str, ...]] = {Config: ("source",)}

MISSING_HINTS: dict[KeyPath, str] = {
    ("spotify",): "required section missing (client_id, and client_secret unless you use PKCE)",
    ("spotify", "client_id"): "required key missing: your app's Client ID from the "
    "Spotify developer dashboard",
    ("jobs", "*", "job"): "required key missing: the job module to run, like hello",
    ("jobs", "*", "schedule"): 'required key missing: like {every: 15m} or {cron: "*/15 * * * *"}',
}
