"""The token store and the token manager spotipy asks for access tokens.

The store keeps one JSON file per account, `state_dir/accounts/<account>/token.json`, created
0600 from its first byte and replaced atomically (temporary file, fsync, rename, fsync of the
directory), so a crash at any instant leaves the old token or the new one, never neither.

Precedence between the store and `spotify.refresh_token` in the config: the store wins, because
it holds the newest (possibly rotated) refresh token. The exception is a config value that changed
since the store was made from it, which means the user pasted a new token: then the config's token
is adopted (and recorded by its SHA-256 fingerprint, never in clear outside the store).

The manager is shared by every job of a daemon. It refreshes single-flight (one refresh however
many threads find the token stale), ahead of expiry in a background thread, persists a rotated
refresh token before using it, and never loops on `invalid_grant`: it marks itself as needing
authorization until `spotify-runner auth` stores a new token, which it notices without a restart.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from runner.config import SpotifyConfig
from runner.errors import AuthError, AuthorizationNeeded, TransientError
from runner.files import describe_os_error, private_dir
from runner.lock import pid_alive

# Spotify refresh tokens die 6 months after the original authorization; 182 days is the safe
# reading of "6 months" (the shortest span of six calendar months is 181 days, plus a margin
# that errs on warning early rather than late).
REFRESH_TOKEN_LIFETIME = 182 * 86400.0
WARN_BEFORE_DEATH = 14 * 86400.0
DEFAULT_ACCESS_LIFETIME = 3600.0
# Seconds between tries to write a token the store refused (disk full, read-only).
UNSAVED_RETRY = 10.0

_FORMAT_VERSION = 1
_TEMP_PREFIX = ".token.json."
_TEMP_SUFFIX = ".tmp"
# Room claimed before a refresh or a code exchange: a token file is under 2 KiB.
_RESERVED_BYTES = 8192


class ClientRejected(AuthError):
    """Spotify refused the client id or secret (`invalid_client`)."""

    def __init__(self) -> None:
        super().__init__(
            "Spotify rejected the client id or secret: check spotify.client_id / client_secret"
        )


class TokenStoreUnreadable(AuthorizationNeeded):
    """The token store is there but this process may not read it.

    Typically another user took the state directory over: a re-authorization run as a different
    (dynamic) user makes systemd re-own the whole directory. Saying "expired or revoked" then
    would send the user to re-authorize again, which cannot help.
    """

    def __init__(self, path: Path, exc: OSError) -> None:
        # AuthError's constructor: the "run 'spotify-runner auth'" suffix would be wrong advice.
        AuthError.__init__(self, unreadable_reason(path, exc))


def unreadable_reason(path: Path, exc: OSError) -> str:
    """`cannot read its own token store: Permission denied (PATH ...)`, with who owns it."""
    text = f"cannot read its own token store: {exc.strerror or type(exc).__name__} ({path}"
    if isinstance(exc, PermissionError):
        for place in (path, *path.parents):
            try:
                owner = place.stat().st_uid
            except OSError:
                continue
            if owner != os.geteuid():
                # Under PrivateUsers= another user's files show as the overflow uid (65534).
                text += (
                    f": {place} belongs to another user (uid {owner}), this process runs as "
                    f"uid {os.geteuid()}"
                )
            break
        text += (
            "): give it back to this user, and authorize as this user (under systemd: "
            "systemd-run -p User=spotify-runner ..., as the README shows)"
        )
        return text
    return text + ")"


class TokenStoreUnwritable(AuthError):
    """The token store cannot be written (disk full, read-only, a directory in the way).

    Args:
        path: the token file.
        exc: what the file system said.
    """

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = path
        self.errno = exc.errno
        super().__init__(f"cannot write the token store {path}: {describe_os_error(exc)}")


class TokenNotSaved(AuthError):
    """A rotated refresh token is held only in memory: the store refused it.

    Args:
        path: the token file.
        problem: why it could not be written.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the new refresh token could not be saved to {path} ({problem}); it is kept in "
            "memory only"
        )


def secret_value(value: Any) -> str | None:
    """The plain string behind a pydantic `SecretStr`, a plain `str`, or None."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    return str(text) if text else None


def fingerprint(token: str) -> str:
    """SHA-256 of a token: lets the store recognise a config value without keeping it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredToken:
    """One account's authorization as kept in the store.

    Attributes:
        refresh_token: the newest refresh token.
        access_token: the last access token, or None before the first refresh.
        expires_at: when `access_token` expires (Unix time), or None.
        scopes: the scopes Spotify reported for the authorization.
        authorized_at: when the user originally authorized; the refresh token dies
            `REFRESH_TOKEN_LIFETIME` after it, whatever the refreshes.
        client_id: the app the token belongs to.
        config_token_fingerprint: SHA-256 of `spotify.refresh_token` in the config when the store
            was made (None if the config had none), to notice a newly pasted token.
        pkce: issued through PKCE, so refreshed with the client id and no secret.
        access_lifetime: the lifetime Spotify gave the access token (`expires_in`), if known.
        user_id: the Spotify user who authorized (from `/me` at `auth`); None for a token
            made before users were recorded, or adopted from the config.
        user_name: that user's display name, if known.
    """

    refresh_token: str = field(repr=False)
    access_token: str | None = field(repr=False)
    expires_at: float | None
    scopes: frozenset[str]
    authorized_at: float
    client_id: str
    config_token_fingerprint: str | None = None
    pkce: bool = False
    access_lifetime: float | None = None
    user_id: str | None = None
    user_name: str | None = None

    def refresh_expires_at(self) -> float:
        """When the refresh token dies (Unix time)."""
        return self.authorized_at + REFRESH_TOKEN_LIFETIME

    def days_left(self, now: float) -> float:
        """Days until the refresh token dies (negative once dead)."""
        return (self.refresh_expires_at() - now) / 86400.0

    def to_json(self) -> dict[str, Any]:
        """The store's JSON form."""
        return {
            "version": _FORMAT_VERSION,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "access_lifetime": self.access_lifetime,
            "scopes": sorted(self.scopes),
            "authorized_at": self.authorized_at,
            "client_id": self.client_id,
            "config_token_fingerprint": self.config_token_fingerprint,
            "pkce": self.pkce,
            "user_id": self.user_id,
            "user_name": self.user_name,
        }

    @classmethod
    def from_json(cls, data: Any) -> StoredToken:
        """Parses the store's JSON form; raises ValueError on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        refresh_token = data.get("refresh_token")
        client_id = data.get("client_id")
        authorized_at = data.get("authorized_at")
        scopes = data.get("scopes", [])
        if not isinstance(refresh_token, str) or not refresh_token:
            raise ValueError("refresh_token missing")
        if not isinstance(client_id, str):
            raise ValueError("client_id missing")
        if not isinstance(authorized_at, int | float):
            raise ValueError("authorized_at missing")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError("scopes malformed")
        access_token = data.get("access_token")
        expires_at = data.get("expires_at")
        lifetime = data.get("access_lifetime")
        fp = data.get("config_token_fingerprint")
        if access_token is not None and not isinstance(access_token, str):
            raise ValueError("access_token malformed")
        if expires_at is not None and not isinstance(expires_at, int | float):
            raise ValueError("expires_at malformed")
        if lifetime is not None and not isinstance(lifetime, int | float):
            raise ValueError("access_lifetime malformed")
        if fp is not None and not isinstance(fp, str):
            raise ValueError("config_token_fingerprint malformed")
        user_id, user_name = data.get("user_id"), data.get("user_name")
        if not all(value is None or isinstance(value, str) for value in (user_id, user_name)):
            raise ValueError("user malformed")
        return cls(
            refresh_token=refresh_token,
            access_token=access_token,
            expires_at=None if expires_at is None else float(expires_at),
            scopes=frozenset(scopes),
            authorized_at=float(authorized_at),
            client_id=client_id,
            config_token_fingerprint=fp,
            pkce=bool(data.get("pkce", False)),
            access_lifetime=None if lifetime is None else float(lifetime),
            user_id=user_id,
            user_name=user_name,
        )


def parse_stored_token(raw: bytes | str, where: Path) -> StoredToken:
    """A stored token from its JSON text; damage is `AuthorizationNeeded`, quoting nothing of it.

    Raises:
        AuthorizationNeeded: not JSON, or not a token (the message names a field, never a value).
    """
    try:
        data = json.loads(raw)
    except ValueError:
        # Not even JSON (a truncated or overwritten file); nothing of it is quoted.
        raise AuthorizationNeeded(f"token store {where} is corrupt (not JSON)") from None
    try:
        return StoredToken.from_json(data)
    except ValueError as exc:
        # from_json's messages name a field, never a value.
        raise AuthorizationNeeded(f"token store {where} is corrupt ({exc})") from None


class TokenStore:
    """One account's token file, private and atomically replaced.

    Args:
        state_dir: the daemon's state directory.
        account: the account name (`"default"` for a config without `accounts:`).
    """

    def __init__(self, state_dir: Path, account: str = "default") -> None:
        self.account = account
        self.path = Path(state_dir) / "accounts" / account / "token.json"
        self._lock_path = self.path.with_name("token.lock")
        self._local = threading.local()
        self._reserved: set[str] = set()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self) -> StoredToken | None:
        """The stored token, or None when there is none yet.

        Raises:
            AuthorizationNeeded: the file exists but cannot be read or parsed.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreUnreadable(self.path, exc) from None
        return parse_stored_token(raw, self.path)

    def signature(self) -> tuple[int, int, int] | None:
        """(inode, mtime_ns, size) of the file: changes whenever anyone replaces it."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on this account's token, across threads and processes (re-entrant).

        Held while refreshing, so that a daemon and a `spotify-runner token` in another process
        never both spend the same rotating refresh token. On a read-only or full file system the
        lock file is opened read-only, or the directory itself is locked: `flock` needs no write.
        """
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        fd = self._lock_fd()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock_fd(self) -> int:
        try:
            private_dir(self.path.parent)
            return os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            pass
        try:
            return os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
        # No lock file and no way to make one: lock the directory, or its nearest existing parent.
        for directory in (self.path.parent, *self.path.parent.parents):
            try:
                return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue
        raise OSError(f"cannot lock the token store {self.path}")

    def reserve(self) -> TokenReservation:
        """Claims the disk space of the next save before anything is spent.

        A refresh that rotates the refresh token, and the code exchange of `auth`, cannot be
        undone; reserving first means the store is known to be writable (and has the room)
        before they happen, so the save that follows needs no new space.

        Raises:
            TokenStoreUnwritable: the store cannot be written, with the reason in words.
        """
        try:
            if self.path.exists() and not self.path.is_file():
                raise IsADirectoryError(errno.EISDIR, "not a regular file", str(self.path))
            private_dir(self.path.parent)
            tmp = self._temp_path()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TokenStoreUnwritable(self.path, exc) from None
        self._reserved.add(tmp.name)
        reservation = TokenReservation(self, tmp, fd)
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, b" " * _RESERVED_BYTES, 0)
            os.fsync(fd)
        except OSError as exc:
            reservation.release()
            raise TokenStoreUnwritable(self.path, exc) from None
        return reservation

    def _temp_path(self) -> Path:
        name = f"{_TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        return self.path.parent / name

    def _remove_stale_temps(self) -> None:
        """Removes temporary files that crashed saves left; never another one's reservation."""
        for stale in self.path.parent.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
            pid_text = stale.name[len(_TEMP_PREFIX) :].split(".", 1)[0]
            pid = int(pid_text) if pid_text.isdigit() else None
            if pid == os.getpid() and stale.name in self._reserved:
                continue
            if pid is not None and pid != os.getpid() and pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                stale.unlink()

    def save(self, token: StoredToken, reservation: TokenReservation | None = None) -> None:
        """Atomically replaces the stored token; the file is 0600 from its first byte.

        Args:
            token: what to store.
            reservation: space claimed by `reserve()`; it is used up (or released) either way.

        Raises:
            OSError: the file system refused the write (the old token is still in place).
        """
        data = (json.dumps(token.to_json(), indent=2) + "\n").encode()
        with self.lock():
            if reservation is not None and reservation.fd is None:
                reservation = None  # already used or released
            self._remove_stale_temps()
            if reservation is None:
                tmp = self._temp_path()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            else:
                tmp, fd = reservation.take()
            try:
                try:
                    # The umask can only remove bits; fchmod makes it exactly 0600 either way.
                    os.fchmod(fd, 0o600)
                    # Over the reserved bytes: the blocks exist, so a full disk cannot refuse it.
                    _write_all(fd, data, 0)
                    os.ftruncate(fd, len(data))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            finally:
                self._reserved.discard(tmp.name)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class TokenReservation:
    """Disk space claimed for the next save of a token store (see `TokenStore.reserve`).

    Use it once with `TokenStore.save(token, reservation)`, or `release()` it.
    """

    def __init__(self, store: TokenStore, path: Path, fd: int) -> None:
        self._store = store
        self.path = path
        self.fd: int | None = fd

    def __repr__(self) -> str:
        return f"TokenReservation({str(self.path)!r})"

    def take(self) -> tuple[Path, int]:
        """Hands the temporary file to a save; the reservation is then used up."""
        assert self.fd is not None
        fd, self.fd = self.fd, None
        return self.path, fd

    def release(self) -> None:
        """Gives the space back (a refresh or exchange that did not happen)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._store._reserved.discard(self.path.name)

    def __enter__(self) -> TokenReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


_FROM_CONFIG: Any = object()


def resolve_initial_token(
    config: SpotifyConfig, store: TokenStore, now: float, refresh_token: Any = _FROM_CONFIG
) -> StoredToken | None:
    """`choose_initial_token`, with an adopted token saved to the store at once.

    Raises:
        AuthorizationNeeded: the store file is unreadable and the config offers no new token.
        OSError: the adopted token could not be saved.
    """
    token, adopt = choose_initial_token(config, store, now, refresh_token)
    if adopt and token is not None:
        store.save(token)
    return token


def choose_initial_token(
    config: SpotifyConfig, store: TokenStore, now: float, refresh_token: Any = _FROM_CONFIG
) -> tuple[StoredToken | None, bool]:
    """The token to start from: the store's, unless the config holds a newly pasted one.

    A token adopted from the config must be saved to the store (with its fingerprint) by the
    caller, so the next start prefers the store and its rotations. Its original authorization
    time is unknown, so `now` stands in for it; its scopes stay empty until the first refresh
    reports them.

    Returns:
        The token (None when there is none) and whether it still has to be saved.

    Args:
        config: the `spotify` section.
        store: the account's token store.
        now: the time an adopted token counts as authorized at.
        refresh_token: the account's token from the config (`accounts.NAME.refresh_token`);
            `spotify.refresh_token` when not given.

    Raises:
        AuthorizationNeeded: the store file is unreadable and the config offers no new token.
    """
    if refresh_token is _FROM_CONFIG:
        refresh_token = config.refresh_token
    config_token = secret_value(refresh_token)
    config_fp = fingerprint(config_token) if config_token else None
    try:
        stored = store.load()
    except AuthorizationNeeded:
        if config_token is None:
            raise
        stored = None
    if stored is not None and stored.client_id != config.client_id:
        # A token of another app cannot be refreshed with this client id.
        stored = None
    if config_token is None:
        return stored, False
    if stored is not None and stored.config_token_fingerprint == config_fp:
        return stored, False
    adopted = StoredToken(
        refresh_token=config_token,
        access_token=None,
        expires_at=None,
        scopes=frozenset(),
        authorized_at=now,
        client_id=config.client_id,
        config_token_fingerprint=config_fp,
    )
    return adopted, True


@dataclass(frozen=True)
class AuthStatus:
    """What `jobs` and `check --online` show about the authorization.

    Attributes:
        needs_auth: no usable refresh token: runs fail fast until `auth` stores one.
        reason: why authorization is needed, when it is.
        scopes: the scopes granted.
        days_left: days until the refresh token dies, or None without a token.
        expires_at: when the refresh token dies (Unix time), or None.
        pkce: the token was issued through PKCE.
        unsaved: why the newest refresh token is held in memory only (the store refused it);
            None when the store is up to date. Needs attention: it is lost if the process ends.
        authorized_at: when the user gave the authorization held (Unix time), or None.
    """

    needs_auth: bool
    reason: str | None
    scopes: frozenset[str]
    days_left: float | None
    expires_at: float | None
    pkce: bool = False
    unsaved: str | None = None
    authorized_at: float | None = None


def refresh_lead(lifetime: float, margin: float) -> float:
    """How long before expiry to refresh: 10% of the lifetime or `margin`, whichever is more.

    For Spotify's 3600 s that is 6 minutes (90% of the lifetime is earlier than 5 minutes
    before). A margin of half the lifetime or more would refresh constantly, so short
    lifetimes (test fakes) refresh at 90%.
    """
    if margin >= lifetime / 2:
        return 0.1 * lifetime
    return max(0.1 * lifetime, margin)


class TokenManager:
    """spotipy's auth manager: hands out access tokens, refreshing them safely.

    Args:
        config: the `spotify` section of the config.
        store: the account's token store.
        refresh_token: the account's refresh token from the config, if any
            (`spotify.refresh_token` when not given).
        auth_command: the command messages name for (re-)authorizing this account.
        clock: wall-clock time (persisted expiries are Unix times).
        session_factory: makes the `requests.Session` for the token endpoint.
        refresh_margin: refresh this long before expiry (see `refresh_lead`).
        logger: where refreshes and warnings go; never receives a token.
        sleep: waits between retries on the token endpoint.
        max_attempts: tries per refresh on network errors and 5xx.
        timeout: seconds per token-endpoint request.
        spend_when_unwritable: refresh even when the store cannot be written, keeping the new
            token in memory and retrying the write (the daemon: its jobs keep running). False
            (a short command) refuses with `TokenStoreUnwritable` instead, so that nothing it
            could not save is spent.
        on_authorized: called with the account's name each time it goes from needing
            authorization to authorized (a new token in the store, or the store readable
            again). Called from whichever thread noticed (the refresher, a run, a status
            check), possibly holding this manager's lock: it must return at once and must not
            wait on another thread.
    """

    def __init__(
        self,
        config: SpotifyConfig,
        store: TokenStore,
        *,
        refresh_token: Any = _FROM_CONFIG,
        auth_command: str = "spotify-runner auth",
        clock: Callable[[], float] = time.time,
        session_factory: Callable[[], requests.Session] = requests.Session,
        refresh_margin: float = 300.0,
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 3,
        timeout: float = 15.0,
        spend_when_unwritable: bool = False,
        on_authorized: Callable[[str], None] | None = None,
    ) -> None:
        self._config = config
        self._on_authorized = on_authorized
        self._store = store
        self.auth_command = auth_command
        self._clock = clock
        self._session_factory = session_factory
        self._margin = refresh_margin
        self._log = logger or logging.getLogger("runner.tokens")
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._timeout = timeout
        self._lock = threading.RLock()
        self._token: StoredToken | None = None
        self._reason: str | None = None
        self._dead_refresh_token: str | None = None
        self._store_unreadable = False
        self._last_warning: float | None = None
        self._signature: tuple[int, int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._spend_when_unwritable = spend_when_unwritable
        # A token the store refused: used from memory, its write retried until it succeeds.
        self._unsaved: StoredToken | None = None
        self._unsaved_problem: str | None = None
        # The refresh token the store still holds under the unsaved one (a rotation spent it).
        self._unsaved_replaces: str | None = None
        self._last_complaint: float | None = None
        self._signature = store.signature()
        adopt = False
        try:
            self._token, adopt = choose_initial_token(config, store, clock(), refresh_token)
        except TokenStoreUnreadable as exc:
            self._reason = str(exc)
            self._store_unreadable = True
        except AuthorizationNeeded as exc:
            self._reason = str(exc)
        if adopt and self._token is not None:
            with contextlib.suppress(OSError), store.lock():
                self._persist(self._token, None, rotated=False)
        if self._token is None and self._reason is None:
            self._reason = "no Spotify authorization stored yet"

    def __repr__(self) -> str:
        return f"TokenManager({self._store!r}, needs_auth={self.needs_auth})"

    @property
    def account(self) -> str:
        """The account this manager hands out tokens for."""
        return self._store.account

    # -- state -------------------------------------------------------------------------------

    @property
    def needs_auth(self) -> bool:
        """True when no usable refresh token is known; runs fail fast until `auth` is run."""
        return self._reason is not None

    @property
    def store(self) -> TokenStore:
        """The token store this manager persists to."""
        return self._store

    def status(self) -> AuthStatus:
        """The authorization's state, without contacting Spotify."""
        self._check_store()
        with self._lock:
            token = self._token
            now = self._clock()
            return AuthStatus(
                needs_auth=self.needs_auth,
                reason=self._reason,
                scopes=token.scopes if token else frozenset(),
                days_left=token.days_left(now) if token else None,
                expires_at=token.refresh_expires_at() if token else None,
                pkce=token.pkce if token else False,
                unsaved=self._unsaved_problem if self._unsaved is not None else None,
                authorized_at=token.authorized_at if token else None,
            )

    def _lifetime(self, token: StoredToken) -> float:
        return token.access_lifetime or DEFAULT_ACCESS_LIFETIME

    def _refresh_at(self, token: StoredToken) -> float:
        """When to refresh ahead of expiry; -inf without an access token."""
        if token.access_token is None or token.expires_at is None:
            return float("-inf")
        return token.expires_at - refresh_lead(self._lifetime(token), self._margin)

    def _usable(self, token: StoredToken, now: float) -> bool:
        """The access token still has a safe moment left (to ride out a failed refresh)."""
        if token.access_token is None or token.expires_at is None:
            return False
        return now < token.expires_at - min(30.0, 0.05 * self._lifetime(token))

    # -- store changes -----------------------------------------------------------------------

    def _check_store(self) -> None:
        """Reloads when someone (e.g. `auth`) replaced the store file: one stat() call."""
        if self._store.signature() != self._signature:
            self.reload_from_store()

    def reload_from_store(self) -> bool:
        """Adopts the stored token if it differs from the one in memory.

        Returns:
            True when a different token was adopted (and `needs_auth` possibly cleared).
        """
        with self._lock:
            needed = self._reason is not None
            adopted = self._adopt_stored()
            authorized = needed and self._reason is None
        if authorized and self._on_authorized is not None:
            # Once per return: `needed` is read under the same lock as the change it compares
            # with. After this call's own hold of the lock (a caller, refresh(), may hold it).
            self._on_authorized(self.account)
        return adopted

    def _adopt_stored(self) -> bool:
        self._signature = self._store.signature()
        try:
            stored = self._store.load()
        except TokenStoreUnreadable as exc:
            # Even with a token in memory: it cannot be refreshed without the store.
            self._unreadable(exc)
            return False
        except AuthorizationNeeded as exc:
            if self._token is None:
                self._reason = str(exc)
            return False
        if self._store_unreadable:
            self._store_unreadable = False
            self._log.info("can read the token store %s again", self._store.path)
            if stored == self._token:
                self._reason = None
                self._wake.set()
        if stored is None or stored == self._token:
            return False
        if stored.client_id != self._config.client_id:
            return False
        if stored.refresh_token == self._dead_refresh_token:
            # Same dead token with a different access token: nothing to revive.
            return False
        self._token = stored
        if self._reason is not None:
            self._log.info("found a new Spotify authorization in %s", self._store.path)
        self._reason = None
        self._unsaved = None  # whoever replaced the store holds a newer authorization
        self._unsaved_replaces = None
        self._dead_refresh_token = None
        self._wake.set()
        return True

    def _unreadable(self, exc: TokenStoreUnreadable) -> None:
        """Runs need authorization until the store is readable again; said once, at ERROR."""
        reason = str(exc)
        if reason != self._reason:
            self._log.error("%s", reason)
        self._reason = reason
        self._store_unreadable = True
        self._wake.set()

    # -- spotipy's interface -----------------------------------------------------------------

    def get_access_token(self, as_dict: bool = False) -> str:
        """A valid access token, refreshing first if it is stale (what spotipy calls).

        Args:
            as_dict: accepted for spotipy's interface; a string is always returned.

        Raises:
            AuthorizationNeeded: no usable refresh token.
            TransientError: the token endpoint failed and the current token is unusable.
        """
        del as_dict
        self._check_store()
        if self._unsaved is not None:
            self.save_pending()
        token = self._token
        now = self._clock()
        if token is not None and self._reason is None and now < self._refresh_at(token):
            assert token.access_token is not None
            self._maybe_warn(token, now)
            return token.access_token
        return self.refresh()

    def refresh(self, *, force: bool = False, failed_token: str | None = None) -> str:
        """Refreshes the access token, once however many threads ask at the same time.

        Args:
            force: refresh even if the token looks fresh (after a 401).
            failed_token: the access token that met the 401; if the current one differs, another
                thread has refreshed already and its token is returned without a new refresh.

        Returns:
            A valid access token.

        Raises:
            AuthorizationNeeded: no usable refresh token (`invalid_grant`, nothing stored).
            ClientRejected: Spotify refused the client id or secret.
            TransientError: the token endpoint kept failing and the current token is unusable.
            TokenStoreUnwritable: the store cannot be written, so nothing was spent (unless
                `spend_when_unwritable`).
        """
        with self._lock, self._store.lock():
            # Another process (a CLI `token`, `auth`) may have refreshed while we waited.
            self._check_store()
            token = self._token
            now = self._clock()
            if self._reason is not None or token is None:
                raise AuthorizationNeeded(self._reason_text(), self.auth_command)
            if token.access_token is not None:
                superseded = failed_token is not None and token.access_token != failed_token
                fresh = now < self._refresh_at(token)
                if (superseded and self._usable(token, now)) or (not force and fresh):
                    self._maybe_warn(token, now)
                    return token.access_token
            reservation = self._reserve(token, now, force)
            if isinstance(reservation, str):
                return reservation  # the current access token, still good
            try:
                new = self._refresh_with_retries(token)
            except TransientError:
                if reservation is not None:
                    reservation.release()
                if not force and self._usable(token, now) and token.access_token is not None:
                    self._log.warning("could not refresh the Spotify token; using the current one")
                    return token.access_token
                raise
            except BaseException:
                if reservation is not None:
                    reservation.release()
                raise
            # In memory first: whatever the disk says, the newest token is the one used.
            self._token = new
            self._persist(
                new,
                reservation,
                rotated=new.refresh_token != token.refresh_token,
                replaces=token.refresh_token,
            )
            self._wake.set()
            self._maybe_warn(new, self._clock())
            assert new.access_token is not None
            return new.access_token

    def _reserve(
        self, token: StoredToken, now: float, force: bool
    ) -> TokenReservation | str | None:
        """Room for the refreshed token; the current access token when refreshing must wait.

        Returns None (refresh and keep the result in memory) when the store cannot be written
        and `spend_when_unwritable` is set.
        """
        try:
            return self._store.reserve()
        except TokenStoreUnwritable as exc:
            if self._spend_when_unwritable:
                return None
            if not force and token.access_token is not None and self._usable(token, now):
                self._log.warning("%s; not refreshing yet, the current token still works", exc)
                return token.access_token
            raise

    def _persist(
        self,
        token: StoredToken,
        reservation: TokenReservation | None,
        *,
        rotated: bool,
        replaces: str | None = None,
    ) -> bool:
        """Saves `token`; if the store refuses, keeps it as unsaved and says so once, loudly.

        `replaces` is the refresh token `token` was refreshed from: what the store still holds
        when this first write fails.

        Returns:
            True when the store now holds `token`.
        """
        try:
            self._store.save(token, reservation)
        except OSError as exc:
            problem = describe_os_error(exc)
            first = self._unsaved is None
            if first:
                self._unsaved_replaces = replaces
            self._unsaved = token
            self._unsaved_problem = problem
            now = self._clock()
            if first or self._last_complaint is None or now - self._last_complaint >= 600.0:
                self._last_complaint = now
                level = logging.ERROR if rotated or not first else logging.WARNING
                self._log.log(
                    level,
                    "%s; retrying the write every %gs",
                    TokenNotSaved(self._store.path, problem),
                    UNSAVED_RETRY,
                )
            return False
        self._signature = self._store.signature()
        if self._unsaved is not None:
            self._log.warning("saved the new refresh token to %s at last", self._store.path)
        self._unsaved = None
        self._unsaved_problem = None
        self._unsaved_replaces = None
        self._last_complaint = None
        return True

    def save_pending(self) -> bool:
        """Retries writing a token that only memory holds.

        Returns:
            True when nothing is pending any more.
        """
        with self._lock:
            if self._unsaved is None:
                return True
            try:
                with self._store.lock():
                    self._check_store()  # `auth` may have stored a newer one meanwhile
                    pending = self._unsaved
                    if pending is None:
                        return True
                    return self._persist(pending, None, rotated=True)
            except OSError as exc:  # not even the lock could be had
                self._unsaved_problem = describe_os_error(exc)
                return False

    def save_before_exit(self, tries: int = 3, pause: float = 0.5) -> TokenNotSaved | None:
        """At the end of a process: the last tries to write a token only memory holds.

        Returns:
            None when nothing is left unsaved; else the error that says it is not saved.
        """
        for attempt in range(tries):
            if self.save_pending():
                return None
            if attempt < tries - 1:
                self._sleep(pause)
        return self.unsaved_error()

    def unsaved_rotation(self) -> tuple[StoredToken, str] | None:
        """A rotated token only memory holds, and the spent refresh token the store still has.

        For a stop to keep elsewhere (`StateStore.keep_token`); None when nothing is unsaved, or
        the unsaved token did not replace its refresh token (the stored one still works).
        """
        with self._lock:
            token, replaces = self._unsaved, self._unsaved_replaces
            if token is None or replaces is None or token.refresh_token == replaces:
                return None
            return token, replaces

    def unsaved_error(self) -> TokenNotSaved | None:
        """The error to report when the process must end with a token held only in memory."""
        if self._unsaved is None:
            return None
        return TokenNotSaved(self._store.path, self._unsaved_problem or "unknown error")

    def _reason_text(self) -> str:
        reason = self._reason or "authorization expired or revoked"
        suffix = ": run 'spotify-runner auth'"
        return reason[: -len(suffix)] if reason.endswith(suffix) else reason

    # -- the token endpoint ------------------------------------------------------------------

    def _refresh_with_retries(self, token: StoredToken) -> StoredToken:
        delay = 0.5
        last = "no attempt"
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._refresh_once(token)
            except _Retryable as exc:
                last = str(exc)
                if attempt == self._max_attempts:
                    break
                self._log.info(
                    "token refresh failed (%s); retrying in %.1fs (attempt %d/%d)",
                    last,
                    delay,
                    attempt,
                    self._max_attempts,
                )
                self._sleep(delay)
                delay *= 2
        raise TransientError(f"could not refresh the Spotify access token: {last}")

    def _refresh_once(self, token: StoredToken) -> StoredToken:
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        auth: tuple[str, str] | None = None
        if token.pkce:
            form["client_id"] = token.client_id
        else:
            secret = secret_value(self._config.client_secret)
            if secret is None:
                raise AuthError(
                    "spotify.client_secret is not set: set it, or authorize with "
                    "'spotify-runner auth --pkce'"
                )
            auth = (token.client_id, secret)
        url = self._config.accounts_url.rstrip("/") + "/api/token"
        sent_at = self._clock()
        try:
            with self._session_factory() as session:
                response = session.post(url, data=form, auth=auth, timeout=self._timeout)
        except requests.RequestException as exc:
            # str(exc) of a connection error names the URL and OS error, never the form body.
            raise _Retryable(type(exc).__name__) from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Retryable(f"HTTP {status}")
        body = _json_or_empty(response)
        if status != 200:
            error = str(body.get("error", ""))
            description = str(body.get("error_description", ""))
            if error == "invalid_grant":
                self._reason = "authorization expired or revoked"
                self._dead_refresh_token = token.refresh_token
                # The refresher may be asleep until the old token's expiry: from now on it
                # looks for a new token in the store every few seconds instead.
                self._wake.set()
                self._log.error(
                    "Spotify refused the refresh token of account %s (%s): run '%s'",
                    self.account,
                    description or error,
                    self.auth_command,
                )
                raise AuthorizationNeeded("authorization expired or revoked", self.auth_command)
            if error == "invalid_client":
                raise ClientRejected()
            raise AuthError(
                f"Spotify refused to refresh the token: HTTP {status} {error} {description}".strip()
            )
        access = body.get("access_token")
        expires_in = body.get("expires_in", DEFAULT_ACCESS_LIFETIME)
        if not isinstance(access, str) or not isinstance(expires_in, int | float):
            raise _Retryable("malformed token response")
        rotated = body.get("refresh_token")
        scope = body.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else token.scopes
        if isinstance(rotated, str) and rotated and rotated != token.refresh_token:
            self._log.debug("Spotify rotated the refresh token; persisting the new one")
        return replace(
            token,
            refresh_token=rotated if isinstance(rotated, str) and rotated else token.refresh_token,
            access_token=access,
            # Counted from before the request, so our expiry is never later than Spotify's.
            expires_at=sent_at + float(expires_in),
            access_lifetime=float(expires_in),
            scopes=scopes,
        )

    # -- warnings ----------------------------------------------------------------------------

    def _maybe_warn(self, token: StoredToken, now: float) -> None:
        left = token.refresh_expires_at() - now
        if left > WARN_BEFORE_DEATH:
            return
        if self._last_warning is not None and now - self._last_warning < 86400.0:
            return
        self._last_warning = now
        when = time.strftime("%Y-%m-%d", time.localtime(token.refresh_expires_at()))
        self._log.warning(
            "the Spotify authorization of account %s expires in %.0f days (%s): run '%s' "
            "to renew it",
            self.account,
            max(0.0, left / 86400.0),
            when,
            self.auth_command,
        )

    # -- background refresh ------------------------------------------------------------------

    def start(self) -> None:
        """Starts the background thread that refreshes ahead of expiry."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"spotify-token-refresher-{self.account}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops the background thread and waits for it."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join()
        self._thread = None

    def _next_wait(self) -> float:
        token = self._token
        if self._reason is not None or token is None:
            return 5.0  # waiting for `auth` to store a token: a cheap stat() now and then
        due = self._refresh_at(token) - self._clock()
        if self._unsaved is not None:
            due = min(due, UNSAVED_RETRY)
        return max(0.0, min(due, 3600.0))

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self._wake.clear()
            if self.needs_auth:
                self._check_store()
            if self._unsaved is not None:
                self.save_pending()
            wait = self._next_wait()
            if wait > 0:
                self._wake.wait(wait)
                continue
            try:
                self.refresh()
                backoff = 1.0
                if self._next_wait() <= 0:
                    # A token that is stale as soon as it is issued (expires_in ~ 0): do not spin.
                    self._stop.wait(1.0)
            except AuthorizationNeeded:
                pass  # needs_auth is set; the loop now waits for a new token in the store
            except AuthError as exc:
                # A rejected client id will not fix itself; runs report it, we stay quiet.
                self._log.error("background token refresh failed: %s", exc)
                self._stop.wait(300.0)
            except TransientError as exc:
                self._log.warning("background token refresh failed: %s", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)
            except Exception:  # the refresher must outlive surprises; requests retry on demand
                self._log.exception("background token refresh crashed")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)


class _Retryable(Exception):
    """A token-endpoint failure worth another try (network, 5xx, 429)."""


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
