"""Run a job module exactly as the daemon does, against the embedded fake Spotify.

For testing your own jobs (and ours): the real config loader, job loader, token manager,
transport and run history, only the Spotify is fake.

Example:
    >>> def test_my_job(fake_spotify, tmp_path):  # doctest: +SKIP
    ...     harness = JobHarness(fake_spotify, tmp_path, jobs_dir=Path("my_jobs"))
    ...     outcome = harness.run("my_job", {"size": 3})
    ...     assert outcome.status == "ok"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from runner.config import Config, load_config_text
from runner.execution import Executor, RunOutcome
from runner.loader import load_jobs
from runner.state import SqliteStateStore, open_state
from runner.testing.fake import FakeSpotify
from runner.testing.fake.model import KNOWN_SCOPES
from runner.tokens import TokenManager, TokenStore

# By default the account has granted everything Spotify knows, so a job's own SCOPES never get
# in the way of testing what it does; pass `scopes=` to test a narrower grant.
ALL_SCOPES = tuple(sorted(KNOWN_SCOPES))


class JobHarness:
    """Runs jobs as the daemon would, on one account of a `FakeSpotify`.

    Args:
        fake: a started fake.
        state_dir: where the token store and run history go (a tmp_path).
        user: the fake account the job runs as.
        scopes: what the account granted; every scope Spotify knows by default.
        jobs_dir: your folder of job modules, if the job is not built in.
    """

    def __init__(
        self,
        fake: FakeSpotify,
        state_dir: Path,
        *,
        user: str = "alice",
        scopes: Iterable[str] = ALL_SCOPES,
        jobs_dir: Path | None = None,
    ) -> None:
        self.fake = fake
        self.state_dir = Path(state_dir)
        self.jobs_dir = Path(jobs_dir).resolve() if jobs_dir is not None else None
        self._refresh_token = fake.grant(user_id=user, scopes=tuple(scopes))
        self._state: SqliteStateStore = open_state(self.state_dir)
        base = self.config("hello", {}, name="probe")
        self.tokens = TokenManager(base.spotify, TokenStore(self.state_dir))

    def config(
        self,
        job: str,
        options: Mapping[str, Any] | None,
        *,
        name: str = "job",
        timeout: timedelta = timedelta(minutes=1),
    ) -> Config:
        """The config the daemon would load for one job with these options."""
        data: dict[str, Any] = {
            "spotify": {
                "client_id": self.fake.CLIENT_ID,
                "client_secret": self.fake.CLIENT_SECRET,
                "refresh_token": self._refresh_token,
                "accounts_url": self.fake.accounts_url,
                "api_url": self.fake.api_url,
            },
            "state_dir": str(self.state_dir),
            "timezone": "UTC",
            "jobs": {
                name: {
                    "job": job,
                    "schedule": {"every": "1h"},
                    "timeout": f"{int(timeout.total_seconds())}s",
                    "options": dict(options or {}),
                }
            },
        }
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
    ) -> RunOutcome:
        """Runs `job` once with `options`; the job state carries over between calls.

        Raises:
            JobLoadError: the module or its options are invalid, as `check` would report.
        """
        config = self.config(job, options, name=name, timeout=timeout)
        loaded = load_jobs(config)[name]
        executor = Executor(config, self.tokens, self._state)
        return executor.run(loaded, trigger="manual", dry_run=dry_run)

    def state(self, name: str = "job") -> dict[str, Any]:
        """The job's saved state (what `ctx.state` starts from next run)."""
        return self._state.load_job_state(name)

    def close(self) -> None:
        """Closes the history database."""
        self._state.close()

    def __enter__(self) -> JobHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
