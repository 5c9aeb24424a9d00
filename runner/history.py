"""What `spotify-runner history` shows: recent runs, and one run's own log lines.

Read from the run history in the state store (the one record of each run), so it works with or
without a daemon.
"""

from __future__ import annotations

import json
from typing import Any

from runner.config import Config
from runner.errors import UsageError
from runner.state import RunRecord, open_store

# The store says "schedule"; people say "scheduled".
_TRIGGER_WORDS = {"schedule": "scheduled"}


def trigger_word(trigger: str) -> str:
    """How a run's trigger is shown: scheduled, catch_up, retry or manual."""
    return _TRIGGER_WORDS.get(trigger, trigger)


def _row(record: RunRecord, config: Config) -> dict[str, Any]:
    tz = config.tzinfo()
    seconds = (
        None
        if record.ended_at is None
        else round((record.ended_at - record.started_at).total_seconds(), 3)
    )
    return {
        "id": record.id,
        "job": record.job,
        "account": record.account,
        "trigger": trigger_word(record.trigger),
        "attempt": record.attempt,
        "started_at": record.started_at.astimezone(tz).isoformat(timespec="seconds"),
        "duration_seconds": seconds,
        "status": record.status.value,
        "summary": record.summary,
        "error": record.error,
        "dry_run": record.dry_run,
    }


def history_rows(config: Config, job: str | None, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest `limit` runs (of one job, or all), as plain data (the `--json` output).

    Raises:
        UsageError: `job` is neither configured nor in the history.
    """
    state = open_store(config, readonly=True)
    try:
        records = state.all_runs(job, limit=limit)
    finally:
        state.close()
    if job is not None and not records and job not in config.jobs:
        known = ", ".join(config.jobs) or "none"
        raise UsageError(f"no job named '{job}' in {config.source} (configured: {known})")
    return [_row(record, config) for record in records]


def format_history(rows: list[dict[str, Any]]) -> str:
    """The human-readable table, newest first."""
    if not rows:
        return "no runs recorded yet"
    table = [("ID", "JOB", "ACCOUNT", "TRIGGER", "STARTED", "TOOK", "STATUS")]
    details = [""]
    for row in rows:
        took = "-" if row["duration_seconds"] is None else f"{row['duration_seconds']:.1f}s"
        table.append(
            (
                str(row["id"]),
                row["job"],
                row["account"],
                row["trigger"],
                row["started_at"][:19].replace("T", " "),
                took,
                row["status"],
            )
        )
        details.append(row["error"] or row["summary"] or "")
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line, detail in zip(table, details, strict=True):
        text = "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        lines.append(f"{text}  {detail}".rstrip())
    return "\n".join(lines)


def run_log_text(config: Config, run_id: int, *, as_json: bool = False) -> str:
    """One run's header line and its own captured log lines (`history --run ID`).

    Raises:
        UsageError: no run has this id (never recorded, or pruned).
    """
    state = open_store(config, readonly=True)
    try:
        record = state.get_run(run_id)
        text = state.run_log(run_id)
    finally:
        state.close()
    if record is None:
        raise UsageError(f"no run with id {run_id}: see 'spotify-runner history' for the ids")
    row = _row(record, config)
    if as_json:
        return json.dumps({**row, "log": text}, indent=2) + "\n"
    took = "" if row["duration_seconds"] is None else f" in {row['duration_seconds']:.1f}s"
    detail = row["error"] or row["summary"]
    head = (
        f"run {row['id']}: {row['job']} ({row['account']}, {row['trigger']}) "
        f"{row['status']}{took}, started {row['started_at']}" + (f": {detail}" if detail else "")
    )
    return head + "\n" + (text if text else "(no log lines were kept for this run)\n")
