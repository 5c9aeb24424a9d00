"""A job that counts its successful runs in ctx.state."""

from __future__ import annotations

from runner.context import JobContext


def run(ctx: JobContext) -> str:
    """Reads /me and counts."""
    ctx.spotify.current_user()
    ctx.state["count"] = int(ctx.state.get("count", 0)) + 1
    return f"count {ctx.state['count']}"
