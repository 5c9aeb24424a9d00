"""A job that makes exactly one GET (for rate-limit tests)."""

from __future__ import annotations

from runner.context import JobContext


def run(ctx: JobContext) -> str:
    """One GET /me."""
    me = ctx.spotify.current_user()
    return f"got {me['id']}"
