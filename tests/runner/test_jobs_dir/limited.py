"""A job that makes exactly one GET, to /me/playlists (for rate-limit tests)."""

from __future__ import annotations

from runner.context import JobContext


def run(ctx: JobContext) -> str:
    """One GET /me/playlists."""
    page = ctx.spotify.current_user_playlists(limit=1)
    return f"{page['total']} playlists"
