"""The configuration: YAML in, typed `Config` out, in one pass.

Every problem is reported at once, one line each, as `FILE:LINE:COL: key.path: message`, so a
user fixes a broken config in one round instead of one error per restart.

How a file becomes a `Config`:

1. PyYAML composes the document into nodes; `_Tree` walks them itself (instead of letting
   PyYAML construct the objects) so it can record where every key and value sits, and report
   duplicate keys, which PyYAML would silently let the last one win.
2. Strings get `${VAR}` / `${VAR:-default}` interpolation from the environment (`$$` is a
   literal dollar).
3. `*_file` secrets are read, defaults that depend on the environment are filled in
   (`state_dir`, `timezone`), and relative paths are resolved against the config's folder.
4. pydantic validates the result into the frozen models below; its errors are mapped back to
   key paths, positions and plain-language messages.

The YAML dialect is YAML 1.1 as PyYAML reads it, except that only `true`/`false` are booleans
and only plain decimal numbers are integers: `market: NO` stays the string "NO" (Norway is a
Spotify market) and `id: 0123` keeps its leading zero. Boolean settings still accept
yes/no/on/off. Merge keys (`<<: *anchor`) work, and top-level keys starting with `x-` are
ignored so that they can hold anchors.

Secrets (`client_secret`, `refresh_token`) are `SecretStr` and never quoted in error messages.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runner.durations import format_duration, parse_duration
from runner.errors import ConfigError

__all__ = [
    "Config",
    "JobConfig",
    "ScheduleConfig",
    "SpotifyConfig",
    "load_config",
    "load_config_text",
]

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
DEFAULT_ACCOUNTS_URL = "https://accounts.spotify.com"
DEFAULT_API_URL = "https://api.spotify.com/v1"
APP_NAME = "spotify-runner"

# Values never quoted in a message, wherever they come from.
_SECRET_KEYS = frozenset({"client_secret", "refresh_token"})
# systemd LoadCredential= names looked up when the config names neither the value nor a file.
_CREDENTIAL_NAMES = {
    "client_secret": "spotify_client_secret",
    "refresh_token": "spotify_refresh_token",
}


# --------------------------------------------------------------------------------------------
# Validation helpers shared by the models
# --------------------------------------------------------------------------------------------


def _fail(message: str) -> PydanticCustomError:
    # The message goes through a context value so that braces in it ("{every: 15m}") are
    # never taken for template fields.
    return PydanticCustomError("config", "{detail}", {"detail": message})


def _show(value: Any) -> str:
    """How a (non-secret) value is quoted in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"'{shown}'"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _text(value: Any) -> Any:
    # Integers are taken as their text: our YAML reads only canonical decimals as ints, so
    # str() gives back exactly what was written (a numeric client id stays intact).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise _fail(f"expected a string, got {_show(value)}")


def _non_empty(value: str) -> str:
    if not value:
        raise _fail("must not be empty")
    return value


def _secret_text(value: Any) -> Any:
    """Secrets: empty means absent; the value itself never appears in a message."""
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise _fail("invalid value (not shown): expected a string")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _fail(f"expected an integer, got {_show(value)}")


def _between(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise _fail(f"must be between {low} and {high}, got {value}")
        return value

    return check


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _fail(f"expected true or false, got {_show(value)}")


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"expected a duration like 15m, got {_show(value)}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _at_least(minimum: timedelta, *, strict: bool = False) -> Callable[[timedelta], timedelta]:
    def check(value: timedelta) -> timedelta:
        if value < minimum or (strict and value == minimum):
            word = "more than" if strict else "at least"
            raise _fail(f"must be {word} {format_duration(minimum)}, got {format_duration(value)}")
        return value

    return check


def _to_datetime(value: Any) -> Any:
    # A bare YAML date (`at: 2026-12-24`) means midnight; pydantic would refuse a date object.
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


def _empty_mapping(value: Any) -> Any:
    # `options:` with every line commented out reads as null; that means "no options".
    return {} if value is None else value


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
Text = Annotated[str, BeforeValidator(_text)]
Secret = Annotated[SecretStr | None, BeforeValidator(_secret_text)]
Flag = Annotated[bool, BeforeValidator(_to_bool)]


def _redirect_uri(value: str) -> str:
    hint = "use http://127.0.0.1:PORT/callback or an https URL"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _fail(f"not a valid URL: {_show(value)}; {hint}") from None
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return value
    if parts.scheme == "http":
        if host == "localhost":
            raise _fail(
                "Spotify rejects 'localhost' in redirect URIs: "
                "use http://127.0.0.1:PORT/callback (or http://[::1]:PORT/callback)"
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and str(address) in ("127.0.0.1", "::1"):
            return value
    raise _fail(
        f"must be https, or http on a loopback IP literal "
        f"(http://127.0.0.1:PORT/... or http://[::1]:PORT/...), got {_show(value)}"
    )


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"expected an http(s) URL, got {_show(value)}")
    return value.rstrip("/")


_CRON_FIELDS = (
    ("minute", "minute"),
    ("hour", "hour"),
    ("day", "day-of-month"),
    ("month", "month"),
    ("day_of_week", "day-of-week"),
)


def _cron(value: str) -> str:
    # Imported here: APScheduler's import cost is paid only by configs that use cron.
    from apscheduler.triggers.cron import CronTrigger

    from runner.schedule import cron_trigger, cron_weekdays

    fields = value.split()
    if len(fields) != len(_CRON_FIELDS):
        raise _fail(f"wrong number of fields (got {len(fields)}, expected 5)")
    utc = ZoneInfo("UTC")  # any zone: only the syntax is checked here
    try:
        # The scheduler's own builder: crontab weekday numbers (0 and 7 are Sunday).
        cron_trigger(value, utc)
    except ValueError as whole:
        # The trigger does not say which field is wrong; try them one at a time.
        for (name, label), text in zip(_CRON_FIELDS, fields, strict=True):
            try:
                translated = cron_weekdays(text) if name == "day_of_week" else text
                CronTrigger(timezone=utc, **{name: translated})
            except ValueError as exc:
                reason = re.sub(
                    r"^(Error validating expression|bad day-of-week) '[^']*': ", "", str(exc)
                )
                raise _fail(f"bad {label} field '{text}': {reason}") from None
        raise _fail(f"bad cron expression: {whole}") from None
    return " ".join(fields)


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(f"expected a time zone name like Europe/Berlin, got {_show(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        if close:
            raise _fail(f"unknown time zone '{name}' (did you mean '{close[0]}'?)") from None
        raise _fail(
            f"unknown time zone '{name}': use an IANA name like Europe/Berlin or UTC"
        ) from None
    return name


_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _job_name(value: str) -> str:
    if not _JOB_NAME.fullmatch(value):
        raise _fail(
            f"bad job name '{value}': use letters, digits, '_' and '-', "
            "starting with a letter or digit"
        )
    return value


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


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

    client_id: Annotated[Text, AfterValidator(_non_empty)]
    client_secret: Secret = None
    redirect_uri: Annotated[Text, AfterValidator(_redirect_uri)] = DEFAULT_REDIRECT_URI
    refresh_token: Secret = None
    accounts_url: Annotated[Text, AfterValidator(_base_url)] = DEFAULT_ACCOUNTS_URL
    api_url: Annotated[Text, AfterValidator(_base_url)] = DEFAULT_API_URL


class ScheduleConfig(BaseModel):
    """When a job runs: exactly one of `cron`, `every` and `at`, plus optional `jitter`.

    Attributes:
        cron: a 5-field crontab expression (minute hour day-of-month month day-of-week).
        every: a fixed interval, at least 1s.
        at: one moment; a naive value is in the config's time zone (applied by the scheduler).
        jitter: a random delay of up to this much added to each run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: Annotated[Text, AfterValidator(_cron)] | None = None
    every: Annotated[Duration, AfterValidator(_at_least(timedelta(seconds=1)))] | None = None
    at: Annotated[datetime, BeforeValidator(_to_datetime)] | None = None
    jitter: Duration | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleConfig:
        given = [name for name in ("cron", "every", "at") if getattr(self, name) is not None]
        if not given:
            raise _fail("give one of cron, every or at, like {every: 15m}")
        if len(given) > 1:
            raise _fail(f"give only one of cron, every or at (got {' and '.join(given)})")
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
        schedule: when it runs.
        catch_up: run once at start when a run was missed while the daemon was down.
        retries: how many times a transient failure is retried (0..20).
        timeout: how long one run may take.
        enabled: false keeps the job configured but never scheduled.
        options: free-form here; validated later by the job module's `Options`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: Annotated[Text, AfterValidator(_non_empty)]
    schedule: ScheduleConfig
    catch_up: Flag = False
    retries: Annotated[int, BeforeValidator(_to_int), AfterValidator(_between(0, 20))] = 3
    timeout: Annotated[Duration, AfterValidator(_at_least(timedelta(), strict=True))] = timedelta(
        minutes=10
    )
    enabled: Flag = True
    options: Annotated[dict[str, Any], BeforeValidator(_empty_mapping)] = Field(
        default_factory=dict
    )


class Config(BaseModel):
    """The whole configuration. Build it with `load_config` or `load_config_text`.

    Attributes:
        spotify: the Spotify app.
        state_dir: token store and run history; absolute.
        timezone: IANA name the schedules are read in.
        jobs_dir: an optional folder of drop-in job modules; absolute.
        shutdown_timeout: how long a stop waits for running jobs.
        jobs: by name.
        source: the config path as the user gave it, for messages.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spotify: SpotifyConfig
    state_dir: Path
    timezone: Annotated[str, BeforeValidator(_timezone)]
    jobs_dir: Path | None = None
    shutdown_timeout: Annotated[Duration, AfterValidator(_at_least(timedelta()))] = timedelta(
        seconds=30
    )
    jobs: Annotated[
        dict[Annotated[str, AfterValidator(_job_name)], JobConfig],
        BeforeValidator(_empty_mapping),
    ] = Field(default_factory=dict)
    source: str = "config.yaml"

    _positions: dict[KeyPath, Position] = PrivateAttr(default_factory=dict)
    _key_positions: dict[KeyPath, Position] = PrivateAttr(default_factory=dict)

    def tzinfo(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def locate(self, *key_path: str | int) -> str:
        """Where a value sits in the file, as `FILE:LINE:COL`.

        For a key that is not in the file (a default, or a typo in the caller), the position of
        its nearest ancestor that is.

        Example:
            `config.locate("jobs", "radio", "options", "playlist")` -> `"config.yaml:14:7"`.
        """
        line, col = _nearest(self._positions, tuple(key_path))
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
        return f"{self.locate(*key_path)}: {_dotted(tuple(key_path))}: {message}"


# Keys accepted besides the model's fields, and keys the user may not write.
_EXTRA_KEYS: dict[type[BaseModel], tuple[str, ...]] = {
    SpotifyConfig: ("client_secret_file", "refresh_token_file"),
}
_HIDDEN_KEYS: dict[type[BaseModel], tuple[str, ...]] = {Config: ("source",)}

_MISSING_HINTS: dict[KeyPath, str] = {
    ("spotify",): "required section missing (client_id, and client_secret unless you use PKCE)",
    ("spotify", "client_id"): "required key missing: your app's Client ID from the "
    "Spotify developer dashboard",
    ("jobs", "*", "job"): "required key missing: the job module to run, like hello",
    ("jobs", "*", "schedule"): 'required key missing: like {every: 15m} or {cron: "*/15 * * * *"}',
}


# --------------------------------------------------------------------------------------------
# YAML with positions
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans and integers (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _mark(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


@dataclass
class _Problems:
    """Problems collected across all stages, formatted and sorted at the end."""

    source: str
    items: list[tuple[Position, int, str]] = field(default_factory=list)

    def add(self, position: Position, path: KeyPath, message: str) -> None:
        where = f"{self.source}:{position[0]}:{position[1]}"
        line = f"{where}: {_dotted(path)}: {message}" if path else f"{where}: {message}"
        if all(line != existing for _, _, existing in self.items):
            self.items.append((position, len(self.items), line))

    def lines(self) -> list[str]:
        return [line for _, _, line in sorted(self.items)]


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _nearest(positions: Mapping[KeyPath, Position], path: KeyPath) -> Position:
    for end in range(len(path), -1, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return (1, 1)


class _Tree:
    """Builds plain Python data from composed YAML nodes, remembering positions.

    Attributes:
        values: key path -> position of the value (of the key, when the value is left empty).
        keys: key path -> position of the key itself.
        broken: paths whose value already has a problem; later stages stay quiet about them.
    """

    def __init__(self, loader: _Loader, env: Mapping[str, str], problems: _Problems) -> None:
        self.loader = loader
        self.env = env
        self.problems = problems
        self.values: dict[KeyPath, Position] = {}
        self.keys: dict[KeyPath, Position] = {}
        self.broken: set[KeyPath] = set()

    def build(self, node: yaml.Node, path: KeyPath, stack: frozenset[int] = frozenset()) -> Any:
        if id(node) in stack:
            self._error(node, path, "an alias refers to itself")
            return None
        stack = stack | {id(node)}
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL_TAG and node.value == "" and path in self.keys:
                self.values[path] = self.keys[path]  # `key:` with nothing after it
            else:
                self.values[path] = _mark(node.start_mark)
            return self._scalar(node, path)
        self.values[path] = _mark(node.start_mark)
        if node.tag not in (_SEQ_TAG, _MAP_TAG):
            # A safe loader would refuse these anyway; say so rather than ignore the tag.
            self._error(node, path, f"unsupported YAML tag '{node.tag}'")
            return None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), stack) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, stack, skip=frozenset())
        self._error(node, path, "unsupported YAML node")
        return None

    def _error(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        self.problems.add(_mark(node.start_mark), path, message)
        self.broken.add(path)

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._error(node, path, f"cannot read value: {exc.problem}")
            return None
        if isinstance(value, str):
            return self._interpolate(value, node, path)
        return value

    def _interpolate(self, text: str, node: yaml.Node, path: KeyPath) -> str:
        """Expand `${VAR}`, `${VAR:-default}` and `$$`; a lone `$` stays as it is."""
        if "$" not in text:
            return text
        out: list[str] = []
        pos = 0
        while (start := text.find("$", pos)) >= 0:
            out.append(text[pos:start])
            following = text[start + 1 : start + 2]
            if following == "$":
                out.append("$")
                pos = start + 2
                continue
            if following != "{":
                out.append("$")
                pos = start + 1
                continue
            end = text.find("}", start + 2)
            # The text itself is never quoted: it may be a secret that merely contains "${".
            if end < 0:
                self._error(node, path, "unclosed '${' (write '$$' for a literal '$')")
                return ""
            name, sep, default = text[start + 2 : end].partition(":-")
            if not _VAR_NAME.fullmatch(name):
                self._error(
                    node,
                    path,
                    "bad variable reference: use ${NAME} or ${NAME:-default} "
                    "(write '$$' for a literal '$')",
                )
                return ""
            value = self.env.get(name)
            if sep and not value:
                value = default
            if value is None:
                self._error(
                    node,
                    path,
                    f"environment variable {name} is not set "
                    f"(export it, or use ${{{name}:-default}})",
                )
                return ""
            out.append(value)
            pos = end + 1
        out.append(text[pos:])
        return "".join(out)

    def _mapping(
        self, node: yaml.MappingNode, path: KeyPath, stack: frozenset[int], skip: frozenset[str]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.add(_mark(key_node.start_mark), path, "keys must be plain names")
                continue
            key = str(key_node.value)
            if key in first_line:
                self.problems.add(
                    _mark(key_node.start_mark),
                    (*path, key),
                    f"duplicate key '{key}' (first at line {first_line[key]})",
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            if key in skip:  # overridden by the mapping that merges this one
                continue
            self.keys[(*path, key)] = _mark(key_node.start_mark)
            result[key] = self.build(value_node, (*path, key), stack)
        # `<<: *defaults` fills in what the mapping does not say itself; earlier merges win.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.problems.add(_mark(source.start_mark), path, "'<<' merges only mappings")
                    continue
                taken = skip | set(result)
                result.update(self._mapping(source, path, stack | {id(source)}, taken))
        return result


def _parse(text: str, env: Mapping[str, str], problems: _Problems) -> tuple[Any, _Tree]:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # raised at once for a control character
        before = text[: exc.position]
        position = (before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        problems.add(
            position, (), f"YAML syntax error: unacceptable character #x{exc.character:04x}"
        )
        return None, _Tree(_Loader(""), env, problems)
    tree = _Tree(loader, env, problems)
    tree.values[()] = (1, 1)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}, tree
        return tree.build(root, ()), tree
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = _mark(mark) if mark is not None else (1, 1)
        message = exc.problem or "invalid YAML"
        if exc.context:
            message += f" ({exc.context})"
        if exc.context == "while scanning an alias" and exc.context_mark is not None:
            # Nearly always an unquoted cron expression: point at its start, not at the '/'.
            position = _mark(exc.context_mark)
            message += "; quote values that start with '*', like cron: \"*/15 * * * *\""
        problems.add(position, (), f"YAML syntax error: {message}")
        return None, tree
    finally:
        loader.dispose()


# --------------------------------------------------------------------------------------------
# Environment-dependent preparation: secret files, defaults, paths
# --------------------------------------------------------------------------------------------


def _expand(raw: str, base_dir: Path, env: Mapping[str, str]) -> Path:
    """`~` from the given environment's HOME; relative paths against the config's folder."""
    if raw == "~" or raw.startswith("~/"):
        home = env.get("HOME") or str(Path.home())
        raw = home + raw[1:]
    path = Path(os.path.expanduser(raw))  # ~user
    return path if path.is_absolute() else base_dir / path


def _default_state_dir(env: Mapping[str, str]) -> Path:
    # systemd's StateDirectory= may list several, separated by ':'; ours is the first.
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg) / APP_NAME
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / APP_NAME


def _default_timezone(env: Mapping[str, str]) -> str:
    tz = env.get("TZ", "").lstrip(":")
    if tz:
        try:
            ZoneInfo(tz)
            return tz
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
        if name:
            ZoneInfo(name)  # a guess zoneinfo cannot load is no use to the scheduler
    except Exception:  # any failure to guess means "use UTC"
        name = None
    return name or "UTC"


def _read_secret(path: Path) -> tuple[str | None, str | None]:
    """(content, None) or (None, problem). The problem names the path, never the content."""
    try:
        content = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        return None, f"cannot read {path}: not UTF-8 text"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    if not content:
        return None, f"{path} is empty"
    return content, None


class _Preparer:
    def __init__(
        self, tree: _Tree, problems: _Problems, env: Mapping[str, str], base_dir: Path
    ) -> None:
        self.tree = tree
        self.problems = problems
        self.env = env
        self.base_dir = base_dir
        # Where errors about a value read from elsewhere (a secret file) should point.
        self.moved: dict[KeyPath, KeyPath] = {}

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        positions = self.tree.keys if at_key else self.tree.values
        self.problems.add(_nearest(positions, path), path, message)
        self.tree.broken.add(path)

    def prepare(self, data: dict[str, Any]) -> dict[str, Any]:
        # Top-level `x-...` keys are ignored, as in Docker Compose: a place for YAML anchors
        # (`x-defaults: &defaults {...}`) that jobs merge with `<<: *defaults`.
        data = {key: value for key, value in data.items() if not key.startswith("x-")}
        for hidden in _HIDDEN_KEYS[Config]:
            if hidden in data:
                del data[hidden]
                self.error((hidden,), _unknown_key_message(Config, hidden), at_key=True)
        spotify = data.get("spotify")
        if isinstance(spotify, dict):
            data["spotify"] = self.spotify(dict(spotify))
        state_dir = data.get("state_dir")
        if state_dir is None:
            data["state_dir"] = _default_state_dir(self.env)
        elif isinstance(state_dir, str) and state_dir.strip():
            data["state_dir"] = _expand(state_dir.strip(), self.base_dir, self.env)
        if data.get("timezone") is None:
            data["timezone"] = _default_timezone(self.env)
        jobs_dir = data.get("jobs_dir")
        if isinstance(jobs_dir, str) and jobs_dir.strip():
            data["jobs_dir"] = _expand(jobs_dir.strip(), self.base_dir, self.env)
        return data

    def spotify(self, section: dict[str, Any]) -> dict[str, Any]:
        credentials = self.env.get("CREDENTIALS_DIRECTORY", "")
        for key, credential in _CREDENTIAL_NAMES.items():
            file_key = f"{key}_file"
            path, file_path = ("spotify", key), ("spotify", file_key)
            if file_key in section:
                raw = section.pop(file_key)
                if key in section:
                    self.error(file_path, f"give {key} or {file_key}, not both", at_key=True)
                elif file_path in self.tree.broken:
                    self.tree.broken.add(path)
                elif not isinstance(raw, str) or not raw.strip():
                    self.error(file_path, f"expected a file name, got {_show(raw)}")
                else:
                    content, problem = _read_secret(self._find(raw.strip(), credentials))
                    if problem is not None:
                        self.error(file_path, problem)
                        self.tree.broken.add(path)
                    section[key] = content
                    self.moved[path] = file_path
            elif key not in section and credentials:
                candidate = Path(credentials) / credential
                if candidate.is_file():
                    content, problem = _read_secret(candidate)
                    if problem is not None:
                        self.error(("spotify",), f"{key} from $CREDENTIALS_DIRECTORY: {problem}")
                    section[key] = content
                    self.moved[path] = ("spotify",)
        return section

    def _find(self, raw: str, credentials: str) -> Path:
        path = _expand(raw, self.base_dir, self.env)
        if not Path(raw).is_absolute() and not raw.startswith("~") and credentials:
            in_credentials = Path(credentials) / raw
            if in_credentials.exists():
                return in_credentials
        return path


# --------------------------------------------------------------------------------------------
# pydantic errors -> problem lines
# --------------------------------------------------------------------------------------------


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    if path == ():
        return Config
    if path == ("spotify",):
        return SpotifyConfig
    if len(path) == 2 and path[0] == "jobs":
        return JobConfig
    if len(path) == 3 and path[0] == "jobs" and path[2] == "schedule":
        return ScheduleConfig
    return None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    hidden = _HIDDEN_KEYS.get(model, ())
    names = [name for name in model.model_fields if name not in hidden]
    return sorted([*names, *_EXTRA_KEYS.get(model, ())])


def _unknown_key_message(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return f"unknown key '{key}'"
    allowed = _allowed_keys(model)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"


def _missing_message(path: KeyPath) -> str:
    pattern = tuple("*" if i == 1 and path[0] == "jobs" else p for i, p in enumerate(path))
    return _MISSING_HINTS.get(pattern, "required key missing")


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "datetime_type": "a date and time like 2026-12-24T18:00:00",
    "datetime_parsing": "a date and time like 2026-12-24T18:00:00",
    "datetime_from_date_parsing": "a date and time like 2026-12-24T18:00:00",
    "path_type": "a path",
}


def _is_secret(path: KeyPath) -> bool:
    return len(path) == 2 and path[0] == "spotify" and path[1] in _SECRET_KEYS


def _pydantic_problems(
    exc: ValidationError, tree: _Tree, moved: Mapping[KeyPath, KeyPath], problems: _Problems
) -> None:
    errors = exc.errors(include_url=False, include_input=True)
    unknown: set[tuple[KeyPath, str]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            key = str(loc[-1])
            close = difflib.get_close_matches(key, _allowed_keys(_model_at(loc[:-1]) or Config))
            unknown.update((loc[:-1], name) for name in close[:1])
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        at_key = loc[-1:] == ("[key]",)
        path: KeyPath = loc[:-1] if at_key else loc
        if any(path[:end] in tree.broken for end in range(len(path) + 1)):
            continue  # already reported where it went wrong (an unset variable, say)
        path = moved.get(path, path)
        if kind == "missing":
            if (path[:-1], path[-1]) in unknown:
                continue  # the typo's "did you mean" already says it
            parent = path[:-1]
            position = tree.keys.get(parent) or _nearest(tree.values, parent)
            problems.add(position, path, _missing_message(path))
            continue
        if kind == "extra_forbidden":
            position = _nearest(tree.keys, path)
            problems.add(position, path, _unknown_key_message(_model_at(path[:-1]), str(path[-1])))
            continue
        position = _nearest(tree.keys if at_key else tree.values, path)
        if kind == "config":
            message = error["msg"]
        elif kind in _TYPE_WORDS:
            expected = _TYPE_WORDS[kind]
            if _is_secret(path):
                message = f"invalid value (not shown): expected {expected}"
            else:
                message = f"expected {expected}, got {_show(error.get('input'))}"
        else:
            message = error["msg"].removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        problems.add(position, path, message)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def load_config_text(
    text: str,
    filename: str = "config.yaml",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate config text into a `Config`.

    Args:
        text: the YAML.
        filename: how messages name the file (and `Config.source`).
        env: for `${VAR}`, `$CREDENTIALS_DIRECTORY`, `$STATE_DIRECTORY`, `$XDG_STATE_HOME`,
            `$HOME` and `$TZ`; defaults to `os.environ`.
        base_dir: what relative paths are relative to; defaults to the folder of `filename`.

    Returns:
        The validated, frozen configuration.

    Raises:
        ConfigError: with every problem found, each `FILE:LINE:COL: key.path: message`.
    """
    env = os.environ if env is None else env
    base = (base_dir if base_dir is not None else Path(filename).parent).absolute()
    problems = _Problems(filename)
    data, tree = _parse(text, env, problems)
    if data is None:  # a YAML syntax error: nothing below would be meaningful
        raise ConfigError(problems.lines())
    if not isinstance(data, dict):
        problems.add((1, 1), (), "the file must be a mapping with keys like spotify: and jobs:")
        raise ConfigError(problems.lines())
    preparer = _Preparer(tree, problems, env, base)
    prepared = preparer.prepare(data)
    prepared["source"] = filename
    config: Config | None = None
    try:
        config = Config.model_validate(prepared)
    except ValidationError as exc:
        _pydantic_problems(exc, tree, preparer.moved, problems)
    if problems.items or config is None:
        # `from None`: pydantic's own error text quotes inputs, secrets included.
        raise ConfigError(problems.lines() or [f"{filename}: invalid configuration"]) from None
    config._positions = dict(tree.values)
    config._key_positions = dict(tree.keys)
    return config


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file.

    Args:
        path: the file; messages name it as given.
        env: see `load_config_text`; defaults to `os.environ`.

    Raises:
        ConfigError: the file is missing or unreadable, or has problems (all of them).
    """
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"{name}: no such file; copy config.example.yaml to {name} and edit it"]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{name}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{name}:{line}:1: not UTF-8 text"]) from None
    return load_config_text(text, filename=name, env=env, base_dir=Path(name).parent)
