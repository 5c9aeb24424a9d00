"""What the environment adds before validation: secret files, defaults, absolute paths.

`*_file` secrets are read (a relative name is looked up in `$CREDENTIALS_DIRECTORY` first),
systemd credentials are picked up when the config names neither value nor file, `state_dir`
and `timezone` get their environment-dependent defaults, and relative paths are resolved
against the config's folder.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.config.fields import show
from runner.config.located import KeyPath, Problems, Tree, nearest
from runner.config.messages import unknown_key_message
from runner.config.models import APP_NAME, DEFAULT_ACCOUNT, HIDDEN_KEYS, Config
from runner.files import describe_os_error

# systemd LoadCredential= names looked up when the config names neither the value nor a file;
# a named account's refresh token is `spotify_refresh_token_NAME`.
_CREDENTIAL_NAMES = {
    "client_secret": "spotify_client_secret",
    "refresh_token": "spotify_refresh_token",
}

# The secret keys of each section that has some besides the accounts' refresh tokens.
_SECRET_KEYS: dict[KeyPath, tuple[str, ...]] = {
    ("spotify",): ("client_secret", "refresh_token"),
    ("state",): ("password",),
}


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
        return None, f"cannot read {path}: {describe_os_error(exc)}"
    if not content:
        return None, f"{path} is empty"
    return content, None


class Preparer:
    def __init__(
        self, tree: Tree, problems: Problems, env: Mapping[str, str], base_dir: Path
    ) -> None:
        self.tree = tree
        self.problems = problems
        self.env = env
        self.base_dir = base_dir
        # Where errors about a value read from elsewhere (a secret file) should point.
        self.moved: dict[KeyPath, KeyPath] = {}
        self.problems_said: set[str] = set()

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        positions = self.tree.keys if at_key else self.tree.values
        self.problems.add(nearest(positions, path), path, message)
        self.tree.broken.add(path)

    def prepare(self, data: dict[str, Any]) -> dict[str, Any]:
        # Top-level `x-...` keys are ignored, as in Docker Compose: a place for YAML anchors
        # (`x-defaults: &defaults {...}`) that jobs merge with `<<: *defaults`.
        data = {key: value for key, value in data.items() if not key.startswith("x-")}
        for hidden in HIDDEN_KEYS[Config]:
            if hidden in data:
                del data[hidden]
                self.error((hidden,), unknown_key_message(Config, hidden), at_key=True)
        spotify = data.get("spotify")
        if isinstance(spotify, dict):
            implicit = dict(_CREDENTIAL_NAMES)
            if "accounts" in data:  # each account has its own credential name
                del implicit["refresh_token"]
            data["spotify"] = self.secrets(dict(spotify), ("spotify",), implicit)
        self.accounts(data)
        state = data.get("state")
        if isinstance(state, dict):
            data["state"] = self.secrets(dict(state), ("state",), {})
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
        http = data.get("http")
        password_file = http.get("password_file") if isinstance(http, dict) else None
        if isinstance(password_file, str) and password_file.strip():
            assert isinstance(http, dict)
            data["http"] = {**http, "password_file": self._find(password_file.strip(), "")}
        return data

    def secrets(
        self, section: dict[str, Any], where: KeyPath, implicit: Mapping[str, str]
    ) -> dict[str, Any]:
        """Reads `KEY_file` secrets, and `$CREDENTIALS_DIRECTORY/NAME` for keys left out.

        Args:
            section: the mapping holding the secrets (a copy; returned changed).
            where: its key path.
            implicit: secret key -> credential file name, for the keys that have one.
        """
        credentials = self.env.get("CREDENTIALS_DIRECTORY", "")
        keys = _SECRET_KEYS.get(where, ("refresh_token",))
        for key in keys:
            file_key = f"{key}_file"
            path, file_path = (*where, key), (*where, file_key)
            if file_key in section:
                raw = section.pop(file_key)
                if key in section:
                    self.error(file_path, f"give {key} or {file_key}, not both", at_key=True)
                elif file_path in self.tree.broken:
                    self.tree.broken.add(path)
                elif not isinstance(raw, str) or not raw.strip():
                    self.error(file_path, f"expected a file name, got {show(raw)}")
                else:
                    content, problem = _read_secret(self._find(raw.strip(), credentials))
                    if problem is not None:
                        self.error(file_path, problem)
                        self.tree.broken.add(path)
                    section[key] = content
                    self.moved[path] = file_path
            elif key not in section and credentials and key in implicit:
                candidate = Path(credentials) / implicit[key]
                if self._is_file(candidate, credentials):
                    content, problem = _read_secret(candidate)
                    if problem is not None:
                        self.error(where, f"{key} from $CREDENTIALS_DIRECTORY: {problem}")
                    section[key] = content
                    self.moved[path] = where
        return section

    def accounts(self, data: dict[str, Any]) -> None:
        """Fills in `accounts` (one "default" account without it) and each job's account."""
        spotify = data.get("spotify")
        spotify = spotify if isinstance(spotify, dict) else {}
        token_path: KeyPath = ("spotify", "refresh_token")
        if "accounts" not in data:
            default: dict[str, Any] = {}
            if "refresh_token" in spotify:
                default["refresh_token"] = spotify["refresh_token"]
                copy: KeyPath = ("accounts", DEFAULT_ACCOUNT, "refresh_token")
                self.moved[copy] = self.moved.get(token_path, token_path)
                if token_path in self.tree.broken:
                    self.tree.broken.add(copy)
            data["accounts"] = {DEFAULT_ACCOUNT: default}
        else:
            accounts = data["accounts"]
            if accounts is None or accounts == {}:
                self.error(
                    ("accounts",),
                    "name at least one account, like alice: {}, or leave accounts: out "
                    "for a single account",
                )
                return
            if not isinstance(accounts, dict):
                return  # pydantic says what it expected
            for name, section in list(accounts.items()):
                if section is None:  # `alice:` with nothing after it
                    section = {}
                if isinstance(section, dict):
                    implicit = {"refresh_token": f"spotify_refresh_token_{name}"}
                    accounts[name] = self.secrets(dict(section), ("accounts", name), implicit)
            given = spotify.get("refresh_token")
            if given is not None and not (isinstance(given, str) and not given.strip()):
                self.error(
                    self.moved.get(token_path, token_path),
                    "a refresh token here is for a single account; with accounts: give it as "
                    "accounts.NAME.refresh_token (or remove accounts:): keep one of them",
                    at_key=True,
                )
        self.job_accounts(data)

    def job_accounts(self, data: dict[str, Any]) -> None:
        """Each job's `account`: the only account when not given; else one of those listed."""
        accounts = data.get("accounts")
        jobs = data.get("jobs")
        if not isinstance(accounts, dict) or not isinstance(jobs, dict):
            return
        names = [str(name) for name in accounts]
        listed = ", ".join(names)
        for job_name, job in jobs.items():
            if not isinstance(job, dict):
                continue
            path: KeyPath = ("jobs", job_name, "account")
            account = job.get("account")
            if account is None:
                if len(names) == 1:
                    jobs[job_name] = {**job, "account": names[0]}
                    # Any problem with the name is reported once, at the account itself.
                    self.tree.broken.add(path)
                else:
                    position = self.tree.keys.get(("jobs", job_name)) or (1, 1)
                    self.problems.add(
                        position,
                        path,
                        f"required key missing: several accounts are configured, so name the "
                        f"one this job runs as ({listed})",
                    )
                continue
            known = isinstance(account, str) and account.strip() in names
            if isinstance(account, str) and not known and path not in self.tree.broken:
                close = difflib.get_close_matches(account.strip(), names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.error(path, f"unknown account {show(account)}{hint}; configured: {listed}")

    def _find(self, raw: str, credentials: str) -> Path:
        path = _expand(raw, self.base_dir, self.env)
        if not Path(raw).is_absolute() and not raw.startswith("~") and credentials:
            in_credentials = Path(credentials) / raw
            if self._is_file(in_credentials, credentials, exists=True):
                return in_credentials
        return path

    def _is_file(self, path: Path, credentials: str, *, exists: bool = False) -> bool:
        """Whether a credential is there; a folder we may not look into is an error, once."""
        try:
            return path.exists() if exists else path.is_file()
        except OSError as exc:
            problem = (
                f"$CREDENTIALS_DIRECTORY ({credentials}) cannot be read: {describe_os_error(exc)}"
            )
            if problem not in self.problems_said:
                self.problems_said.add(problem)
                self.error(("spotify",), problem)
            return False
