"""Re-authorization through the daemon: the status page's **Re-authorize** and its `/callback`.

`start()` makes a fresh, random `state` for one account and remembers what the callback needs
(the PKCE verifier when the app has no client secret, the scopes, the redirect URI); `finish()`
takes that state back exactly once, within `STATE_LIFETIME` seconds, and completes the flow with
the same code exchange, different-user check and atomic token store as `spotify-runner auth`
(`runner.auth.complete`). A wrong, reused or expired state stores nothing.

The registry lives in the daemon's memory only: a restart forgets pending requests, which
merely means clicking Re-authorize again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from runner.auth import AuthResult, authorize_url, complete, pkce_pair
from runner.config import SpotifyConfig
from runner.errors import AuthError
from runner.tokens import TokenStore, secret_value

STATE_LIFETIME = 600.0  # ten minutes
_MAX_PENDING = 64


@dataclass(frozen=True)
class Pending:
    """One authorization request the daemon started and waits to hear back about."""

    account: str
    verifier: str | None = None
    scopes: frozenset[str] = frozenset()
    redirect_uri: str = ""
    started: float = 0.0

    def __repr__(self) -> str:  # the verifier is a secret of the flow
        return f"Pending(account={self.account!r}, scopes={sorted(self.scopes)!r})"


class PendingAuthorizations:
    """The states handed out, each good for one callback within `lifetime` seconds.

    Args:
        clock: monotonic seconds (a parameter, so tests compute expiry instead of waiting).
        lifetime: how long a state stays good.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, lifetime: float = STATE_LIFETIME
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}

    def start(self, spotify: SpotifyConfig, account: str, scopes: Iterable[str]) -> tuple[str, str]:
        """A new request for `account`: returns (state, Spotify's authorize URL).

        PKCE when the config has no client secret.
        """
        pkce = secret_value(spotify.client_secret) is None
        verifier, challenge = pkce_pair() if pkce else (None, None)
        state = secrets.token_urlsafe(24)
        wanted = frozenset(scopes)
        pending = Pending(account, verifier, wanted, spotify.redirect_uri, self.clock())
        with self._lock:
            self._expire()
            while len(self._pending) >= _MAX_PENDING:  # a page reloaded in a loop
                self._pending.pop(next(iter(self._pending)))
            self._pending[state] = pending
        return state, authorize_url(spotify, spotify.redirect_uri, wanted, state, challenge)

    def take(self, state: str | None) -> Pending:
        """The request `state` belongs to, removed so it cannot be used again.

        Raises:
            AuthError: the state is missing, unknown, already used, or older than the lifetime.
        """
        with self._lock:
            self._expire()
            pending = self._pending.pop(state, None) if state else None
        if pending is None:
            raise AuthError(
                "this answer from Spotify does not belong to a request the daemon is waiting "
                "for (unknown, already used, or older than 10 minutes): nothing was stored; "
                "click Re-authorize again"
            )
        return pending

    def waiting(self, account: str) -> bool:
        """True while a request for `account` is pending."""
        with self._lock:
            self._expire()
            return any(p.account == account for p in self._pending.values())

    def _expire(self) -> None:
        now = self.clock()
        for state, pending in list(self._pending.items()):
            if now - pending.started > self.lifetime:
                del self._pending[state]

    def finish(
        self,
        spotify: SpotifyConfig,
        params: Mapping[str, str],
        stores: Mapping[str, TokenStore],
        *,
        command: Callable[[str], str],
        refresh_token: Callable[[str], object] | None = None,
    ) -> AuthResult:
        """Completes the request the callback's `state` names; stores the account's token.

        Args:
            spotify: the app's settings.
            params: the callback's query (`state`, `code` or `error`).
            stores: every account's token store, by account name.
            command: the `auth` command of an account, for messages.
            refresh_token: an account's config refresh token, if any (see `runner.auth`).

        Raises:
            AuthError: wrong or reused state, denied consent, a refused code, or the wrong
                Spotify user (nothing stored).
        """
        pending = self.take(params.get("state"))
        account = pending.account
        if params.get("error") == "access_denied":
            raise AuthError(f"account {account}: you denied access at Spotify: nothing was stored")
        if params.get("error"):
            raise AuthError(f"account {account}: Spotify refused the authorization")
        code = params.get("code")
        if not code:
            raise AuthError(f"account {account}: Spotify's answer has no code: nothing was stored")
        store = stores[account]
        others = {name: other for name, other in stores.items() if name != account}
        with store.reserve() as reservation:
            return complete(
                spotify,
                store,
                reservation,
                code=code,
                redirect_uri=pending.redirect_uri,
                verifier=pending.verifier,
                scopes=pending.scopes,
                refresh_token=refresh_token(account) if refresh_token else None,
                others=others,
                command=command(account),
            )
