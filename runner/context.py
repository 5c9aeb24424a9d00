"""What a job's `run(ctx)` receives."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import requests
import spotipy

from runner.deadline import Deadline


@dataclass
class JobContext:
    """Everything a job needs for one run.

    Attributes:
        job_name: the job's name in the config (not the module name).
        spotify: an authenticated client with its own HTTP session for this run.
        options: the validated `Options` instance, or the raw dict when the module has none.
        log: a logger named after the job.
        state: JSON-able mapping kept per job across runs; saved only when the run succeeds.
        dry_run: when true, the job must not change anything; write requests are refused anyway.
        new_client: makes another client for this run (same token, deadline and dry-run guard),
            for jobs that want concurrent requests: one `requests.Session` per thread.
        base_dir: the config file's folder; relative paths in options are read from here.
        save_state: stores a state durably at once (see `checkpoint`); None where nothing is kept.
        deadline: the run's time limit (`remaining()`, `expired`); when the run times out, the
            sockets of every session bound to it are cut. None outside a run.
    """

    job_name: str
    spotify: spotipy.Spotify
    options: Any
    log: logging.Logger
    state: MutableMapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    new_client: Callable[[], spotipy.Spotify] | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    save_state: Callable[[Mapping[str, Any]], None] | None = None
    deadline: Deadline | None = None

    def http(self) -> requests.Session:
        """A `requests.Session` for anything that is not Spotify (feeds, pages), for one thread.

        Its requests obey the run's deadline: each `timeout` is capped at the time left, a read
        in progress is cut when the run times out, and requests after that raise `RunTimedOut`.
        Close it when done (`with ctx.http() as session:`).
        """
        if self.deadline is None:
            return requests.Session()
        return self.deadline.session()

    def checkpoint(self) -> None:
        """Saves `state` as it is now, so the next run starts from it even if this one fails.

        For what must survive a crash or a timeout, such as a record of a write about to be sent:
        state is otherwise saved only when the run succeeds. Nothing is saved in a dry run.

        Raises:
            TypeError: a value JSON cannot hold.
            RunTimedOut: the run's time limit has passed (its outcome is already recorded).
        """
        if self.dry_run or self.save_state is None:
            return
        self.save_state(self.state)

    def client(self) -> spotipy.Spotify:
        """Another client for this run, for use from another thread."""
        if self.new_client is None:
            return self.spotify
        return self.new_client()


class JobOptions(pydantic.BaseModel):
    """Base for a job's `Options`: unknown keys are errors and options cannot change mid-run."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
