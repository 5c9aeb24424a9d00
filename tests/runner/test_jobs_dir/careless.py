"""A job that writes without looking at ctx.dry_run: the transport must refuse it."""

from __future__ import annotations

from runner.context import JobContext

SCOPES = ["playlist-modify-private"]


def run(ctx: JobContext) -> str:
    """Creates a playlist, dry run or not."""
    ctx.spotify.current_user()
    ctx.state["touched"] = True
    ctx.spotify.current_user_playlist_create("careless", public=False)
    return "created"
