"""A job that puts something JSON cannot hold into ctx.state."""

from __future__ import annotations

from datetime import UTC, datetime

from runner.context import JobContext


def run(ctx: JobContext) -> str:
    """Stores a datetime, which JSON cannot hold."""
    ctx.state["when"] = datetime.now(UTC)
    return "stored a datetime"
