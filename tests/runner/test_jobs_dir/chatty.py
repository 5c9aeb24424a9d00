"""A job that logs lines naming itself (for per-run log capture), then succeeds or fails."""

from __future__ import annotations

import time

from runner.context import JobContext, JobOptions


class Options(JobOptions):
    """How much to say, how slowly, and whether to fail at the end."""

    lines: int = 3
    pause: float = 0.0
    fail: bool = False
    fail_file: str = ""


def run(ctx: JobContext) -> str:
    """Logs `lines` lines; fails when `fail` is set or `fail_file` exists."""
    me = ctx.spotify.current_user()
    for number in range(ctx.options.lines):
        ctx.log.info("%s says line %d", ctx.job_name, number)
        time.sleep(ctx.options.pause)
    flag = ctx.options.fail_file
    if ctx.options.fail or (flag and (ctx.base_dir / flag).exists()):
        raise RuntimeError(f"{ctx.job_name} failed as asked, run for user 4711")
    return f"said {ctx.options.lines} lines as {me['id']}"
