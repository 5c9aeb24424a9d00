"""A job that needs a write scope and creates a playlist; says what it would do in a dry run."""

from __future__ import annotations

from runner.context import JobContext

SCOPES = ["playlist-modify-private"]


def run(ctx: JobContext) -> str:
    """Creates one private playlist (or, in a dry run, says it would)."""
    ctx.spotify.current_user()
    ctx.state["created"] = int(ctx.state.get("created", 0)) + 1
    if ctx.dry_run:
        return "would create playlist 'runner test'"
    ctx.spotify.current_user_playlist_create("runner test", public=False)
    return "created playlist 'runner test'"
