"""A job that saves its state mid-run (`ctx.checkpoint`), then may wait and fail."""

from __future__ import annotations

import time

from runner.context import JobContext, JobOptions


class Options(JobOptions):
    """When to checkpoint and how to end."""

    wait: float = 0.0
    fail: bool = False


def run(ctx: JobContext) -> str:
    """Marks the state, waits, checkpoints, then fails or succeeds."""
    ctx.state["step"] = int(ctx.state.get("step", 0)) + 1
    time.sleep(ctx.options.wait)
    ctx.checkpoint()
    if ctx.options.fail:
        raise RuntimeError("failed after the checkpoint")
    return f"step {ctx.state['step']}"
