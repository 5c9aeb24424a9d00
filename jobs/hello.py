"""The smallest job: greets the authorized account. A template for your own jobs.

A job is a plain module with `run(ctx)`; `SCOPES` and `Options` are optional.
"""

from __future__ import annotations

from runner.context import JobContext, JobOptions

SCOPES: list[str] = []  # GET /me needs no scope


class Options(JobOptions):
    """Options for `hello`."""

    greeting: str = "Hello"


def run(ctx: JobContext) -> str:
    """Reads the account's profile and returns a greeting as the run's summary."""
    me = ctx.spotify.current_user()
    name = me.get("display_name") or me["id"]
    ctx.state["runs"] = int(ctx.state.get("runs", 0)) + 1
    ctx.log.info("greeting %s", name)
    return f"{ctx.options.greeting}, {name}! (run {ctx.state['runs']})"
