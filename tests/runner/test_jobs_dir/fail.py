"""A job with a bug: it always raises."""

from __future__ import annotations

from runner.context import JobContext


def run(ctx: JobContext) -> str:
    """Raises, as a buggy job would."""
    raise RuntimeError(f"{ctx.job_name} is broken on purpose")
