"""The config's Spotify accounts: which one a command means, and each one's token store and manager.

Every account has its own token store (`state_dir/accounts/NAME/token.json`), its own token
manager (single-flight refresh, its own lock, its own authorization state) and its own
`auth --account NAME`. A config without `accounts:` has one account, "default", which is where
the single-account versions kept their token, so their state_dir keeps working as it is.
"""

from __future__ import annotations

from typing import Any

from runner.config import Config
from runner.errors import UsageError
from runner.tokens import TokenManager, TokenStore


def pick_account(config: Config, given: str | None) -> str:
    """The account a command means: the one given, else the only one.

    Raises:
        UsageError: the name is not configured, or there are several and none was given.
    """
    names = list(config.accounts)
    listed = ", ".join(names)
    if given is None:
        if len(names) == 1:
            return names[0]
        raise UsageError(
            f"{config.source} has several accounts ({listed}): say which with --account NAME"
        )
    if given not in config.accounts:
        raise UsageError(f"no account named '{given}' in {config.source} (configured: {listed})")
    return given


def token_store(config: Config, account: str) -> TokenStore:
    """The token store of `account`: a file in `state_dir`, or a row of the state database."""
    if config.state.url is not None:
        from runner.state import postgres_token_store

        password = config.state.password
        return postgres_token_store(
            config.state.url,
            account,
            password=None if password is None else password.get_secret_value(),
        )
    return TokenStore(config.state_dir, account)


def token_stores(config: Config) -> dict[str, TokenStore]:
    """Every account's token store, in config order."""
    return {name: token_store(config, name) for name in config.accounts}


def token_manager(config: Config, account: str, **options: Any) -> TokenManager:
    """A token manager for `account`, seeded from its refresh token in the config if any.

    Args:
        config: the loaded config.
        account: a configured account name.
        **options: passed on to `TokenManager` (clock, logger, ...).
    """
    return TokenManager(
        config.spotify,
        token_store(config, account),
        refresh_token=config.accounts[account].refresh_token,
        auth_command=config.auth_command(account),
        **options,
    )


def token_managers(config: Config, **options: Any) -> dict[str, TokenManager]:
    """A token manager for every account, in config order."""
    return {name: token_manager(config, name, **options) for name in config.accounts}
