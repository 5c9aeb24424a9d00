"""Run a job module exactly as the daemon does, against the embedded fake Spotify.

For testing your own jobs (and ours): the real config loader, job loader, token manager,
transport and run history, only the Spotify is fake.

Example:
    >>> def test_my_job(fake_spotify, tmp_path):  # doctest: +SKIP
    ...     harness = JobHarness(fake_spotify, tmp_path, jobs_dir=Path("my_jobs"))
    ...     outcome = harness.run("my_job", {"size": 3})
    ...     assert outcome.status == "ok"

Two accounts, each a user of the fake with their own library and playlists:
    >>> def test_two_accounts(fake_spotify, tmp_path):  # doctest: +SKIP
    ...     fake_spotify.add_user("bob", "Bob")
    ...     harness = JobHarness(fake_spotify, tmp_path, accounts={"alice": "alice", "bob": "bob"})
    ...     harness.run("my_job", {}, account="bob")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from runner.accounts import token_managers
from runner.config import DEFAULT_ACCOUNT, Config, load_config_text
from runner.execution import Executor, RunOutcome
from runner.loader import load_jobs
from runner.state import SqliteStateStore, open_state
from runner.testing.fake import FakeSpotify
from runner.testing.fake.model import KNOWN_SCOPES
from runner.tokens import TokenManager

# By default the account has granted everything Spotify knows, so a job's own SCOPES never get
# in the way of testing what it does; pass `scopes=` to test a narrower grant.
ALL_SCOPES = tuple(sorted(KNOWN_SCOPES))


class JobHarness:
    """Runs jobs as the daemon would, on one or more accounts of a `FakeSpotify`.

    Args:
        fake: a started fake.
        state_dir: where the token stores and run history go (a tmp_path).
        user: the fake user the job runs as (the single account "default").
        scopes: what each account granted; every scope Spotify knows by default.
        jobs_dir: your folder of job modules, if the job is not built in.
        accounts: account name -> fake user id, for a config with `accounts:`; every user
            must exist in the fake (`fake.add_user`). Replaces `user`.

    Attributes:
        token_managers: each account's token manager, by account name.
        tokens: the token manager of the first account.
    """

    def __init__(
        self,
        fake: FakeSpotify,
        state_dir: Path,
        *,
        user: str = "alice",
        scopes: Iterable[str] = ALL_SCOPES,
        jobs_dir: Path | None = None,
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.fake = fake
        self.state_dir = Path(state_dir)
        self.jobs_dir = Path(jobs_dir).resolve() if jobs_dir is not None else None
        self._named = accounts is not None
        users = dict(accounts) if accounts is not None else {DEFAULT_ACCOUNT: user}
        self._refresh_tokens = {
            name: fake.grant(user_id=user_id, scopes=tuple(scopes))
            for name, user_id in users.items()
        }
        self._state: SqliteStateStore = open_state(self.state_dir)
        base = self.config("hello", {}, name="probe", account=next(iter(users)))
        self.token_managers: dict[str, TokenManager] = token_managers(base)
        self.tokens = next(iter(self.token_managers.values()))

    def config(
        self,
        job: str,
        options: Mapping[str, Any] | None,
        *,
        name: str = "job",
        timeout: timedelta = timedelta(minutes=1),
        account: str | None = None,
    ) -> Config:
        """The config the daemon would load for one job with these options.

        Args:
            job: the job module.
            options: its options.
            name: the job's name in the config.
            timeout: its timeout.
            account: the account it runs as; needed when there are several.
        """
        spotify: dict[str, Any] = {
            "client_id": self.fake.CLIENT_ID,
            "client_secret": self.fake.CLIENT_SECRET,
            "accounts_url": self.fake.accounts_url,
            "api_url": self.fake.api_url,
        }
        entry: dict[str, Any] = {
            "job": job,
            "schedule": {"every": "1h"},
            "timeout": f"{int(timeout.total_seconds())}s",
            "options": dict(options or {}),
        }
        data: dict[str, Any] = {"spotify": spotify}
        if self._named:
            data["accounts"] = {
                account_name: {"refresh_token": token}
                for account_name, token in self._refresh_tokens.items()
            }
            if account is not None:
                entry["account"] = account
        else:
            spotify["refresh_token"] = self._refresh_tokens[DEFAULT_ACCOUNT]
        data.update(state_dir=str(self.state_dir), timezone="UTC", jobs={name: entry})
        if self.jobs_dir is not None:
            data["jobs_dir"] = str(self.jobs_dir)
        text = yaml.safe_dump(data, sort_keys=False)
        return load_config_text(text, filename=str(self.state_dir / "config.yaml"), env={})

    def run(
        self,
        job: str,
        options: Mapping[str, Any] | None = None,
        *,
        name: str = "job",
        dry_run: bool = False,
        timeout: timedelta = timedelta(minutes=1),
        account: str | None = None,
    ) -> RunOutcome:
        """Runs `job` once with `options`; the job state carries over between calls.

        Args:
            job: the job module.
            options: its options.
            name: the job's name in the config (history and state are kept under it).
            dry_run: as `run-job --dry-run`.
            timeout: the run's timeout.
            account: the account it runs as; needed when there are several.

        Raises:
            JobLoadError: the module or its options are invalid, as `check` would report.
            ConfigError: several accounts and no `account`, or an unknown one.
        """
        config = self.config(job, options, name=name, timeout=timeout, account=account)
        loaded = load_jobs(config)[name]
        tokens = self.token_managers[config.account_of(name)]
        executor = Executor(config, tokens, self._state)
        return executor.run(loaded, trigger="manual", dry_run=dry_run)

    def state(self, name: str = "job", account: str | None = None) -> dict[str, Any]:
        """The job's saved state (what `ctx.state` starts from next run)."""
        return self._state.load_job_state(name, account=account or self.tokens.account)

    def close(self) -> None:
        """Closes the history database."""
        self._state.close()

    def __enter__(self) -> JobHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
