"""A job that takes a while between two Spotify calls (for shutdown, overlap and timeouts)."""

from __future__ import annotations

import time

from runner.context import JobContext, JobOptions


class Options(JobOptions):
    """How long to take."""

    seconds: float = 2.0


def run(ctx: JobContext) -> str:
    """Reads /me, sleeps, reads /me again."""
    ctx.spotify.current_user()
    time.sleep(ctx.options.seconds)
    me = ctx.spotify.current_user()
    return f"slept {ctx.options.seconds:g}s as {me['id']}"
