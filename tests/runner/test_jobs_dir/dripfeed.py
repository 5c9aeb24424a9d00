"""A job that reads a feed through `ctx.http()`; against a dripping server it never ends alone."""

from __future__ import annotations

from runner.context import JobContext, JobOptions


class Options(JobOptions):
    """Where the feed is."""

    url: str


def run(ctx: JobContext) -> str:
    """Reads the whole feed; each socket read may wait 30 s, far longer than the run may take."""
    with ctx.http() as session:
        body = session.get(ctx.options.url, timeout=30).content
    return f"{len(body)} bytes"
