from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pydantic
import pytest

from runner.config import Config, ScheduleConfig, load_config, load_config_text
from runner.errors import ConfigError
from runner.loader import load_jobs

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-0123"
ENV = {"HOME": "/home/u"}

# Line numbers below refer to this text; keep it stable.
BASE = f"""\
spotify:
  client_id: abc123
  client_secret: {SECRET}
timezone: UTC
state_dir: /var/lib/sr
jobs:
  hello:
    job: hello
    schedule: {{every: 1h}}
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def load(
    text: str,
    env: dict[str, str] | None = None,
    filename: str = "config.yaml",
    base_dir: Path | None = None,
) -> Config:
    return load_config_text(
        text, filename=filename, env=ENV if env is None else env, base_dir=base_dir
    )


def problems(
    text: str,
    env: dict[str, str] | None = None,
    filename: str = "config.yaml",
    base_dir: Path | None = None,
) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env, filename, base_dir)
    return info.value.problems


def test_base_config_is_valid() -> None:
    config = load(BASE)
    assert config.spotify.client_id == "abc123"
    assert config.jobs["hello"].schedule.every == timedelta(hours=1)


def test_example_config_validates() -> None:
    env = {**ENV, "SPOTIFY_CLIENT_ID": "the-id", "SPOTIFY_CLIENT_SECRET": SECRET}
    config = load_config(REPO / "config.example.yaml", env=env)
    assert config.spotify.client_id == "the-id"
    assert config.spotify.client_secret is not None
    assert config.spotify.client_secret.get_secret_value() == SECRET
    assert config.spotify.refresh_token is None
    assert config.spotify.redirect_uri == "http://127.0.0.1:8888/callback"
    assert config.state_dir == Path("/home/u/.local/state/spotify-runner")
    assert config.timezone == "Europe/Berlin"
    assert config.shutdown_timeout == timedelta(seconds=30)
    assert list(config.jobs) == ["hello", "radio", "liked-mirror", "weekly-top"]
    hello = config.jobs["hello"]
    assert (hello.job, hello.schedule.describe(), hello.retries) == ("hello", "every 1h", 3)


def test_example_config_needs_its_env_vars() -> None:
    lines = problems((REPO / "config.example.yaml").read_text(), env=ENV)
    assert len(lines) == 2
    assert ": spotify.client_id: environment variable SPOTIFY_CLIENT_ID is not set" in lines[0]
    assert ": spotify.client_secret: environment variable SPOTIFY_CLIENT_SECRET" in lines[1]


BROKEN = {
    "yaml-syntax": (
        edit("    job: hello\n", "    job: hello: world\n"),
        "config.yaml:8:15: YAML syntax error: mapping values are not allowed here",
    ),
    "unquoted-cron": (
        edit("schedule: {every: 1h}", "schedule:\n      cron: */15 * * * *"),
        "config.yaml:10:13: YAML syntax error: expected alphabetic or numeric character, but "
        "found '/' (while scanning an alias); quote values that start with '*', "
        'like cron: "*/15 * * * *"',
    ),
    "unknown-top-level-key": (
        edit("timezone: UTC", "timezon: UTC"),
        "config.yaml:4:1: timezon: unknown key 'timezon' (did you mean 'timezone'?)",
    ),
    "unknown-nested-key": (
        edit("    schedule:", "    scheudle:"),
        "config.yaml:9:5: jobs.hello.scheudle: unknown key 'scheudle' (did you mean 'schedule'?)",
    ),
    "unknown-key-lists-allowed": (
        edit("  client_id: abc123\n", "  client_id: abc123\n  flavour: x\n"),
        "config.yaml:3:3: spotify.flavour: unknown key 'flavour'; allowed keys: accounts_url, "
        "api_url, client_id, client_secret, client_secret_file, redirect_uri, refresh_token, "
        "refresh_token_file",
    ),
    "duplicate-key": (
        BASE + "    job: other\n",
        "config.yaml:10:5: jobs.hello.job: duplicate key 'job' (first at line 8)",
    ),
    "cron-four-fields": (
        edit("{every: 1h}", '{cron: "* * * *"}'),
        "config.yaml:9:22: jobs.hello.schedule.cron: wrong number of fields (got 4, expected 5)",
    ),
    "cron-bad-field": (
        edit("{every: 1h}", '{cron: "0 25 * * *"}'),
        "config.yaml:9:22: jobs.hello.schedule.cron: bad hour field '25': 25 is out of range 0-23",
    ),
    "cron-bad-weekday": (
        edit("{every: 1h}", '{cron: "0 6 * * mon-fry"}'),
        "config.yaml:9:22: jobs.hello.schedule.cron: bad day-of-week field 'mon-fry': "
        "unknown name 'fry' (use sun-sat or numbers)",
    ),
    "bad-duration": (
        edit("{every: 1h}", "{every: 15x}"),
        "config.yaml:9:23: jobs.hello.schedule.every: bad duration '15x': "
        "use a number with s, m, h or d, like 15m",
    ),
    "every-too-short": (
        edit("{every: 1h}", "{every: 500ms}"),
        "config.yaml:9:23: jobs.hello.schedule.every: must be at least 1s, got 500ms",
    ),
    "unset-env-var": (
        edit("client_id: abc123", "client_id: ${SPOTIFY_CLIENT_ID}"),
        "config.yaml:2:14: spotify.client_id: environment variable SPOTIFY_CLIENT_ID is not set "
        "(export it, or use ${SPOTIFY_CLIENT_ID:-default})",
    ),
    "missing-client-id": (
        edit("  client_id: abc123\n", ""),
        "config.yaml:1:1: spotify.client_id: required key missing: "
        "your app's Client ID from the Spotify developer dashboard",
    ),
    "empty-client-id": (
        edit("client_id: abc123", 'client_id: ""'),
        "config.yaml:2:14: spotify.client_id: must not be empty",
    ),
    "localhost-redirect": (
        BASE.replace("timezone:", "  redirect_uri: http://localhost:8888/callback\ntimezone:"),
        "config.yaml:4:17: spotify.redirect_uri: Spotify rejects 'localhost' in redirect URIs: "
        "use http://127.0.0.1:PORT/callback (or http://[::1]:PORT/callback)",
    ),
    "http-redirect-elsewhere": (
        BASE.replace("timezone:", "  redirect_uri: http://example.com/cb\ntimezone:"),
        "config.yaml:4:17: spotify.redirect_uri: must be https, or http on a loopback IP literal "
        "(http://127.0.0.1:PORT/... or http://[::1]:PORT/...), got 'http://example.com/cb'",
    ),
    "retries-three": (
        BASE + "    retries: three\n",
        "config.yaml:10:14: jobs.hello.retries: expected an integer, got 'three'",
    ),
    "retries-too-many": (
        BASE + "    retries: 25\n",
        "config.yaml:10:14: jobs.hello.retries: must be between 0 and 20, got 25",
    ),
    "enabled-maybe": (
        BASE + "    enabled: maybe\n",
        "config.yaml:10:14: jobs.hello.enabled: expected true or false, got 'maybe'",
    ),
    "timeout-zero": (
        BASE + "    timeout: 0\n",
        "config.yaml:10:14: jobs.hello.timeout: must be more than 0s, got 0s",
    ),
    "value-left-empty": (
        BASE + "    retries:\n",
        "config.yaml:10:5: jobs.hello.retries: expected an integer, got nothing",
    ),
    "cron-and-every": (
        edit("{every: 1h}", '{cron: "* * * * *", every: 5m}'),
        "config.yaml:9:15: jobs.hello.schedule: give only one of cron, every or at "
        "(got cron and every)",
    ),
    "empty-schedule": (
        edit("{every: 1h}", "{}"),
        "config.yaml:9:15: jobs.hello.schedule: give one of cron, every or at, like {every: 15m}",
    ),
    "missing-schedule": (
        edit("    schedule: {every: 1h}\n", ""),
        "config.yaml:7:3: jobs.hello.schedule: required key missing: "
        'like {every: 15m} or {cron: "*/15 * * * *"}',
    ),
    "schedule-not-a-mapping": (
        edit("{every: 1h}", '"*/5 * * * *"'),
        "config.yaml:9:15: jobs.hello.schedule: expected a mapping (key: value), got '*/5 * * * *'",
    ),
    "bad-at": (
        edit("{every: 1h}", "{at: christmas}"),
        "config.yaml:9:20: jobs.hello.schedule.at: expected a date and time like "
        "2026-12-24T18:00:00, got 'christmas'",
    ),
    "unknown-timezone": (
        edit("timezone: UTC", "timezone: Mars/Olympus_Mons"),
        "config.yaml:4:11: timezone: unknown time zone 'Mars/Olympus_Mons': "
        "use an IANA name like Europe/Berlin or UTC",
    ),
    "misspelled-timezone": (
        edit("timezone: UTC", "timezone: Europe/Berln"),
        "config.yaml:4:11: timezone: unknown time zone 'Europe/Berln' "
        "(did you mean 'Europe/Berlin'?)",
    ),
    "bad-job-name": (
        edit("  hello:", "  hello world:"),
        "config.yaml:7:3: jobs.hello world: bad job name 'hello world': "
        "use letters, digits, '_' and '-', starting with a letter or digit",
    ),
    "root-not-a-mapping": ("- a\n- b\n", "config.yaml:1:1: the file must be a mapping"),
    "unsupported-tag": (
        edit("abc123", "!!python/name:os.system x"),
        "config.yaml:2:14: spotify.client_id: cannot read value: could not determine a "
        "constructor for the tag 'tag:yaml.org,2002:python/name:os.system'",
    ),
}


@pytest.mark.parametrize(("text", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_config_points_at_the_problem(text: str, expected: str) -> None:
    lines = problems(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_missing_secret_file_names_the_path(tmp_path: Path) -> None:
    text = edit(f"client_secret: {SECRET}", "client_secret_file: missing.txt")
    lines = problems(text, base_dir=tmp_path)
    assert lines == [
        f"config.yaml:3:23: spotify.client_secret_file: cannot read {tmp_path / 'missing.txt'}: "
        "No such file or directory"
    ]


def test_secret_given_twice(tmp_path: Path) -> None:
    text = edit("  client_secret:", "  client_secret_file: x\n  client_secret:")
    assert problems(text, base_dir=tmp_path) == [
        "config.yaml:3:3: spotify.client_secret_file: "
        "give client_secret or client_secret_file, not both"
    ]


def test_all_problems_reported_at_once_in_file_order() -> None:
    text = textwrap.dedent(
        """\
        spotify:
          client_id: ${NOPE}
          redirect_uri: http://localhost/cb
        timezone: Nowhere/Land
        shutdown_timeout: soon
        jobs:
          a:
            job: hello
            schedule: {cron: "* * * *"}
            retries: three
          b:
            schedule: {every: 1h}
            enabled: maybe
        """
    )
    lines = problems(text, filename="my.yaml")
    assert [line.split(": ", 2)[:2] for line in lines] == [
        ["my.yaml:2:14", "spotify.client_id"],
        ["my.yaml:3:17", "spotify.redirect_uri"],
        ["my.yaml:4:11", "timezone"],
        ["my.yaml:5:19", "shutdown_timeout"],
        ["my.yaml:9:22", "jobs.a.schedule.cron"],
        ["my.yaml:10:14", "jobs.a.retries"],
        ["my.yaml:11:3", "jobs.b.job"],
        ["my.yaml:13:14", "jobs.b.enabled"],
    ]
    assert str(ConfigError(lines)).count("\n") == len(lines) - 1


def test_unset_variable_is_reported_once() -> None:
    # The empty placeholder must not also trip "must not be empty".
    assert len(problems(edit("abc123", "${X}"))) == 1


# --- interpolation ---------------------------------------------------------------------------


def options_of(options: str, env: dict[str, str]) -> dict[str, object]:
    text = BASE + "    options:\n" + textwrap.indent(textwrap.dedent(options), "      ")
    return load(text, env=env).jobs["hello"].options


def test_interpolation_defaults_partials_and_escapes() -> None:
    env = {"NAME": "radio", "EMPTY": ""}
    options = options_of(
        """\
        plain: ${NAME}
        partial: pre-${NAME}-post
        twice: ${NAME}/${NAME}
        default_unused: ${NAME:-other}
        default_used: ${UNSET:-fallback}
        default_for_empty: ${EMPTY:-fallback}
        empty_default: ${UNSET:-}
        set_but_empty: ${EMPTY}
        escaped: $${NAME}
        double: cost $$5
        lone: a $ b $c
        quoted: '${NAME}'
        list: ['x-${NAME}']
        """,
        env,
    )
    assert options == {
        "plain": "radio",
        "partial": "pre-radio-post",
        "twice": "radio/radio",
        "default_unused": "radio",
        "default_used": "fallback",
        "default_for_empty": "fallback",
        "empty_default": "",
        "set_but_empty": "",
        "escaped": "${NAME}",
        "double": "cost $5",
        "lone": "a $ b $c",
        "quoted": "radio",
        "list": ["x-radio"],
    }


def test_interpolated_values_are_converted_to_the_field_type() -> None:
    text = BASE + "    retries: ${RETRIES}\n    enabled: ${ON}\n    timeout: ${T}\n"
    job = load(text, env={"RETRIES": "7", "ON": "no", "T": "90"}).jobs["hello"]
    assert (job.retries, job.enabled, job.timeout) == (7, False, timedelta(seconds=90))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x${UNCLOSED", "unclosed '${' (write '$$' for a literal '$')"),
        ("${NOT-A-NAME}", "bad variable reference: use ${NAME} or ${NAME:-default}"),
        ("${}", "bad variable reference"),
    ],
)
def test_bad_interpolation(value: str, message: str) -> None:
    lines = problems(BASE + f"    options: {{x: '{value}'}}\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:10:18: jobs.hello.options.x: {message}")


# --- secrets from files and $CREDENTIALS_DIRECTORY ----------------------------------------


def spotify_only(extra: str = "") -> str:
    return f"spotify:\n  client_id: abc123\n{extra}timezone: UTC\nstate_dir: /s\n"


def test_secret_files_relative_to_credentials_directory_first(tmp_path: Path) -> None:
    creds, conf = tmp_path / "creds", tmp_path / "conf"
    creds.mkdir()
    conf.mkdir()
    (creds / "secret").write_text(f"  {SECRET}\n")
    (conf / "secret").write_text("the-wrong-one\n")
    (conf / "token").write_text("refresh-from-config-dir\n")
    text = spotify_only("  client_secret_file: secret\n  refresh_token_file: token\n")
    env = {**ENV, "CREDENTIALS_DIRECTORY": str(creds)}
    spotify = load(text, env=env, base_dir=conf).spotify
    assert spotify.client_secret is not None
    assert spotify.client_secret.get_secret_value() == SECRET
    assert spotify.refresh_token is not None
    assert spotify.refresh_token.get_secret_value() == "refresh-from-config-dir"


def test_absolute_secret_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text(SECRET)
    text = spotify_only(f"  client_secret_file: {tmp_path / 's'}\n")
    secret = load(text, base_dir=Path("/elsewhere")).spotify.client_secret
    assert secret is not None
    assert secret.get_secret_value() == SECRET


def test_credentials_directory_used_when_config_names_no_secret(tmp_path: Path) -> None:
    (tmp_path / "spotify_client_secret").write_text(SECRET + "\n")
    (tmp_path / "spotify_refresh_token").write_text("tok\n")
    env = {**ENV, "CREDENTIALS_DIRECTORY": str(tmp_path)}
    spotify = load(spotify_only(), env=env).spotify
    assert spotify.client_secret is not None
    assert spotify.client_secret.get_secret_value() == SECRET
    assert spotify.refresh_token is not None
    assert spotify.refresh_token.get_secret_value() == "tok"
    # What the config says wins over the credentials directory.
    inline = load(spotify_only("  client_secret: mine\n"), env=env).spotify
    assert inline.client_secret is not None
    assert inline.client_secret.get_secret_value() == "mine"
    # Without the directory there is no secret (PKCE).
    assert load(spotify_only()).spotify.client_secret is None


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    text = spotify_only("  refresh_token_file: empty\n")
    assert problems(text, base_dir=tmp_path) == [
        f"config.yaml:3:23: spotify.refresh_token_file: {tmp_path / 'empty'} is empty"
    ]


# --- secrets never shown -------------------------------------------------------------------


def test_secrets_absent_from_repr_and_str(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("refresh-" + SECRET)
    config = load(
        BASE.replace("timezone:", "  refresh_token_file: tok\ntimezone:"), base_dir=tmp_path
    )
    for text in (repr(config), str(config), repr(config.spotify), str(config.model_dump())):
        assert SECRET not in text


def test_a_secret_written_literally_in_a_jobs_options_is_absent_from_repr() -> None:
    """Options stay raw until the job validates them, so the config's repr names them only."""
    text = BASE + textwrap.indent(
        textwrap.dedent(f"""\
            radio:
              job: playlist_updater
              schedule: {{every: 1h}}
              options:
                playlist: spotify:playlist:0000000000000000000001
                sources:
                  - lastfm: {{user: rj, api_key: {SECRET}}}
            """),
        "  ",
    )
    config = load(text)
    job = config.jobs["radio"]
    for shown in (repr(config), str(config), repr(job), str(job), repr(config.jobs)):
        assert SECRET not in shown
    # Named, so a reader sees which options are set.
    assert "options={'playlist': ..., 'sources': ...}" in repr(job)
    # Masked in the repr only: the job still receives what was written.
    assert job.options["sources"][0]["lastfm"]["api_key"] == SECRET
    # And once the job has validated them (SecretStr), the loaded job's repr holds none either.
    loaded = load_jobs(config, only=["radio"])["radio"]
    assert SECRET not in repr(loaded)


@pytest.mark.parametrize(
    "value",
    [
        f"[{SECRET}]",
        f"{{k: {SECRET}}}",
        f"'{SECRET}${{'",
        f"'{SECRET}${{BAD-NAME}}'",
    ],
)
def test_secrets_absent_from_errors(value: str) -> None:
    text = edit(f"client_secret: {SECRET}", f"client_secret: {value}")
    with pytest.raises(ConfigError) as info:
        load(text)
    assert SECRET not in str(info.value)
    assert info.value.problems[0].startswith("config.yaml:3:18: spotify.client_secret: ")
    # Nothing chained either: pydantic's own error text quotes the input.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- locate --------------------------------------------------------------------------------


def test_locate() -> None:
    text = BASE + "    options:\n      playlist: abc\n      tags: [a, b]\n"
    config = load(text, filename="conf/my.yaml")
    assert config.locate("jobs", "hello", "options", "playlist") == "conf/my.yaml:11:17"
    assert config.locate("jobs", "hello", "options", "tags", 1) == "conf/my.yaml:12:17"
    assert config.locate("spotify", "client_id") == "conf/my.yaml:2:14"
    # Absent keys: the nearest ancestor that exists.
    assert config.locate("jobs", "hello", "options", "missing") == "conf/my.yaml:11:7"
    assert config.locate("jobs", "hello", "retries") == "conf/my.yaml:8:5"
    assert config.locate("jobs_dir") == "conf/my.yaml:1:1"
    assert config.problem(("jobs", "hello", "options", "playlist"), "no such playlist") == (
        "conf/my.yaml:11:17: jobs.hello.options.playlist: no such playlist"
    )


# --- defaults and paths --------------------------------------------------------------------


def minimal(extra: str = "") -> str:
    return "spotify: {client_id: abc}\n" + extra


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STATE_DIRECTORY": "/var/lib/sr:/var/lib/other"}, "/var/lib/sr"),
        ({"XDG_STATE_HOME": "/home/u/.state"}, "/home/u/.state/spotify-runner"),
        ({"XDG_STATE_HOME": "relative/ignored"}, "/home/u/.local/state/spotify-runner"),
        ({}, "/home/u/.local/state/spotify-runner"),
    ],
)
def test_default_state_dir(env: dict[str, str], expected: str) -> None:
    config = load(minimal("timezone: UTC\n"), env={"HOME": "/home/u", **env})
    assert config.state_dir == Path(expected)


def test_paths_relative_to_the_config_folder(tmp_path: Path) -> None:
    config_file = tmp_path / "etc" / "config.yaml"
    config_file.parent.mkdir()
    config_file.write_text(minimal("state_dir: state\njobs_dir: ./my_jobs\ntimezone: UTC\n"))
    config = load_config(config_file, env=ENV)
    assert config.state_dir == tmp_path / "etc" / "state"
    assert config.jobs_dir == tmp_path / "etc" / "my_jobs"
    assert config.source == str(config_file)
    home = load(minimal("state_dir: ~/st\ntimezone: UTC\n"), env={"HOME": "/h"})
    assert home.state_dir == Path("/h/st")
    assert home.jobs_dir is None


def test_timezone_default_comes_from_tz_or_the_machine() -> None:
    assert load(minimal(), env={**ENV, "TZ": "Asia/Tokyo"}).timezone == "Asia/Tokyo"
    machine = load(minimal(), env={**ENV, "TZ": "Not/AZone"})
    assert machine.tzinfo() == ZoneInfo(machine.timezone)


def test_defaults() -> None:
    config = load(minimal("timezone: UTC\njobs:\n  j: {job: hello, schedule: {every: 5m}}\n"))
    spotify = config.spotify
    assert spotify.client_secret is None
    assert spotify.refresh_token is None
    assert spotify.redirect_uri == "http://127.0.0.1:8888/callback"
    assert spotify.accounts_url == "https://accounts.spotify.com"
    assert spotify.api_url == "https://api.spotify.com/v1"
    assert config.shutdown_timeout == timedelta(seconds=30)
    job = config.jobs["j"]
    assert (job.catch_up, job.retries, job.timeout, job.enabled, job.options) == (
        False,
        3,
        timedelta(minutes=10),
        True,
        {},
    )
    assert load(minimal("timezone: UTC\njobs:\n")).jobs == {}


def test_spotify_settings_are_normalised() -> None:
    text = """\
spotify:
  client_id: 12345
  redirect_uri: http://[::1]:9000/cb
  refresh_token: ''
  accounts_url: http://127.0.0.1:5000/
  api_url: https://proxy.example/v1/
timezone: UTC
"""
    spotify = load(text).spotify
    assert spotify.client_id == "12345"
    assert spotify.redirect_uri == "http://[::1]:9000/cb"
    assert spotify.refresh_token is None
    assert spotify.accounts_url == "http://127.0.0.1:5000"
    assert spotify.api_url == "https://proxy.example/v1"


def test_only_true_and_false_are_booleans_and_ids_keep_leading_zeros() -> None:
    text = BASE + "    enabled: yes\n    catch_up: on\n    options: {market: NO, id: 0123, n: 7}\n"
    job = load(text).jobs["hello"]
    assert (job.enabled, job.catch_up) == (True, True)
    assert job.options == {"market": "NO", "id": "0123", "n": 7}


def test_merge_keys_and_x_keys() -> None:
    text = textwrap.dedent(
        """\
        spotify: {client_id: abc}
        timezone: UTC
        x-defaults: &defaults {job: hello, retries: 5, schedule: {every: 1h}}
        jobs:
          a:
            <<: *defaults
            retries: 1
          b: {<<: *defaults}
        """
    )
    jobs = load(text).jobs
    assert (jobs["a"].job, jobs["a"].retries, jobs["b"].retries) == ("hello", 1, 5)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("no/such/config.yaml", env=ENV)
    assert info.value.problems == [
        "no/such/config.yaml: no such file; copy config.example.yaml to no/such/config.yaml "
        "and edit it"
    ]


def test_empty_file_reports_the_missing_section(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml", env=ENV)
    assert info.value.problems[0].startswith(f"{tmp_path / 'c.yaml'}:1:1: spotify: required")


def test_config_is_frozen() -> None:
    config = load(BASE)
    with pytest.raises(pydantic.ValidationError):
        config.timezone = "Europe/Berlin"  # type: ignore[misc]


# --- schedules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "description"),
    [
        ('{cron: "*/15 * * * *"}', "cron */15 * * * *"),
        ('{cron: " 0  6 * * mon "}', "cron 0 6 * * mon"),
        ("{every: 15m}", "every 15m"),
        ("{every: 90m, jitter: 30s}", "every 1h30m (jitter 30s)"),
        ("{at: 2026-12-24T18:00:00}", "at 2026-12-24 18:00"),
        ("{at: '2026-12-24 18:00'}", "at 2026-12-24 18:00"),
        ("{at: 2026-12-24}", "at 2026-12-24 00:00"),
        ("{at: 2026-12-24T18:00:30+01:00}", "at 2026-12-24 18:00:30+0100"),
    ],
)
def test_schedule_describe(schedule: str, description: str) -> None:
    config = load(edit("{every: 1h}", schedule))
    assert config.jobs["hello"].schedule.describe() == description


def test_naive_at_is_stored_as_given() -> None:
    at = load(edit("{every: 1h}", "{at: 2026-12-24T18:00:00}")).jobs["hello"].schedule.at
    assert at == datetime(2026, 12, 24, 18, 0)
    assert at.tzinfo is None
    aware = ScheduleConfig(at=datetime(2026, 1, 1, tzinfo=UTC))
    assert aware.describe() == "at 2026-01-01 00:00+0000"
    assert ScheduleConfig.model_validate({"at": date(2026, 1, 2)}).at == datetime(2026, 1, 2)


@pytest.mark.parametrize("dow", ["0", "7", "sun", "1-5", "mon-fri"])
def test_cron_weekdays_follow_crontab_numbering(dow: str) -> None:
    # 7 is Sunday in crontab; APScheduler's own from_crontab rejects it.
    config = load(edit("{every: 1h}", f'{{cron: "0 6 * * {dow}"}}'))
    assert config.jobs["hello"].schedule.cron == f"0 6 * * {dow}"


# -- every value that parses is in range (finding 7) -------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{every: 1h}", "{every: 3000000d}", "schedule.every: bad duration '3000000d': too long"),
        ("{every: 1h}", "{every: 400d}", "schedule.every: must be at most 366d, got 400d"),
        ("    job: hello\n", "    job: hello\n    timeout: 9999999999d\n", "timeout: bad duration"),
        ("    job: hello\n", "    job: hello\n    timeout: 2d\n", "timeout: must be at most 1d"),
        ("{every: 1h}", "{every: 1m, jitter: 1m}", "jitter (1m) must be shorter than every (1m)"),
        ("{every: 1h}", "{cron: '@daily', jitter: 2d}", "schedule.jitter: must be at most 1d"),
        ("{every: 1h}", "{at: 20026-12-24T18:00:00}", "schedule.at"),
        ("{every: 1h}", "{at: 1970-01-01T00:00:00}", "the year must be between 2000 and 2999"),
        ("timezone: UTC\n", "timezone: UTC\nshutdown_timeout: 5d\n", "must be at most 1d"),
        (
            "  client_id: abc123\n",
            "  client_id: abc123\n  redirect_uri: http://127.0.0.1:0/callback\n",
            "the port must be 1 to 65535",
        ),
        (
            "  client_id: abc123\n",
            "  client_id: abc123\n  api_url: http://127.0.0.1:99999/v1\n",
            "the port must be 1 to 65535",
        ),
    ],
)
def test_values_that_parse_must_also_be_in_range(old: str, new: str, expected: str) -> None:
    lines = problems(edit(old, new))
    assert len(lines) == 1, lines
    assert expected in lines[0], lines[0]


# -- accounts --------------------------------------------------------------------------------

TWO_ACCOUNTS = edit(
    "timezone: UTC\n",
    'timezone: UTC\naccounts:\n  alice: {}\n  bob: {refresh_token: "${BOB_RT:-}"}\n',
)


def test_without_accounts_there_is_one_default_account_holding_the_config_token() -> None:
    config = load(
        edit(f"  client_secret: {SECRET}\n", f"  client_secret: {SECRET}\n  refresh_token: RT-1\n")
    )
    assert list(config.accounts) == ["default"]
    token = config.accounts["default"].refresh_token
    assert token is not None
    assert token.get_secret_value() == "RT-1"
    assert config.jobs["hello"].account == "default"
    assert config.auth_command("default") == "spotify-runner auth"


def test_a_single_named_account_is_used_by_jobs_that_name_none() -> None:
    config = load(edit("timezone: UTC\n", "timezone: UTC\naccounts:\n  alice:\n"))
    assert list(config.accounts) == ["alice"]
    assert config.account_of("hello") == "alice"
    assert config.auth_command("alice") == "spotify-runner auth --account alice"


def test_two_accounts_with_a_job_each() -> None:
    text = TWO_ACCOUNTS + "    account: bob\n  radio:\n    job: hello\n    account: alice\n"
    text += "    schedule: {every: 1h}\n"
    config = load(text, env={"BOB_RT": "RT-bob"})
    assert list(config.accounts) == ["alice", "bob"]
    assert config.accounts["alice"].refresh_token is None
    bob = config.accounts["bob"].refresh_token
    assert bob is not None
    assert bob.get_secret_value() == "RT-bob"
    assert (config.account_of("hello"), config.account_of("radio")) == ("bob", "alice")
    assert config.jobs_of("alice") == ["radio"]
    assert "RT-bob" in config.secrets()
    assert SECRET in config.secrets()
    # An empty ${BOB_RT:-} means "no token": bob is authorized with `auth --account bob`.
    assert load(text).accounts["bob"].refresh_token is None


def test_several_accounts_and_a_job_without_account_is_a_located_error() -> None:
    assert problems(TWO_ACCOUNTS) == [
        "config.yaml:10:3: jobs.hello.account: required key missing: several accounts are "
        "configured, so name the one this job runs as (alice, bob)"
    ]


def test_an_unknown_account_is_a_located_error_listing_the_accounts() -> None:
    assert problems(TWO_ACCOUNTS + "    account: bobby\n") == [
        "config.yaml:13:14: jobs.hello.account: unknown account 'bobby' (did you mean 'bob'?); "
        "configured: alice, bob"
    ]


def test_spotify_refresh_token_and_accounts_together_say_which_to_keep() -> None:
    text = edit("  client_secret", "  refresh_token: RT-1\n  client_secret", TWO_ACCOUNTS)
    assert problems(text + "    account: bob\n") == [
        "config.yaml:3:3: spotify.refresh_token: a refresh token here is for a single account; "
        "with accounts: give it as accounts.NAME.refresh_token (or remove accounts:): keep one "
        "of them"
    ]


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [
        (
            "accounts:\n",
            "config.yaml:5:1: accounts: name at least one account, like alice: {}, "
            "or leave accounts: out for a single account",
        ),
        (
            "accounts:\n  al.ice: {}\n",
            "config.yaml:6:3: accounts.al.ice: bad account name "
            "'al.ice': use letters, digits, '_' and '-', starting with a letter or digit",
        ),
        (
            "accounts:\n  alice: {token: x}\n",
            "config.yaml:6:11: accounts.alice.token: unknown "
            "key 'token'; allowed keys: refresh_token, refresh_token_file",
        ),
    ],
    ids=["empty", "bad-name", "unknown-key"],
)
def test_broken_accounts(accounts: str, expected: str) -> None:
    assert problems(edit("timezone: UTC\n", "timezone: UTC\n" + accounts)) == [expected]


def test_an_account_token_from_a_file_or_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "alice_rt").write_text("RT-alice\n")
    (tmp_path / "spotify_refresh_token_bob").write_text("RT-bob\n")
    text = edit(
        "timezone: UTC\n",
        "timezone: UTC\naccounts:\n  alice: {refresh_token_file: alice_rt}\n  bob: {}\n",
    )
    config = load(text + "    account: bob\n", env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    tokens = {name: acct.refresh_token for name, acct in config.accounts.items()}
    assert {n: t.get_secret_value() for n, t in tokens.items() if t} == {
        "alice": "RT-alice",
        "bob": "RT-bob",
    }


def test_an_account_token_is_never_quoted_in_errors() -> None:
    text = edit("timezone: UTC\n", "timezone: UTC\naccounts:\n  alice: {refresh_token: [RT-x9]}\n")
    (line,) = problems(text)
    assert (
        line == "config.yaml:6:26: accounts.alice.refresh_token: invalid value (not shown): "
        "expected a string"
    )
    assert "RT-x9" not in line
