"""What `spotify-runner jobs` shows: schedules, next and last runs, and the account's authorization.

Read from the config, the run history and the token store, so it works with or without a daemon.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.config import Config, SpotifyConfig
from runner.errors import MissingScopes, RunnerError
from runner.lock import daemon_pid
from runner.schedule import build_trigger, next_fire_times
from runner.spotify import make_client
from runner.state import RunRecord, RunStatus, open_state
from runner.tokens import TokenManager, TokenStore

WARN_DAYS = 14


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _auth_status(store: TokenStore, now: float, refused: RunRecord | None) -> dict[str, Any]:
    try:
        token = store.load()
    except RunnerError as exc:
        return {"authorized": False, "problem": str(exc)}
    if token is None:
        return {"authorized": False, "problem": "not authorized: run 'spotify-runner auth'"}
    days = token.days_left(now)
    problem = None if days > 0 else "authorization expired: run 'spotify-runner auth'"
    # A revoked token looks fine in the store; the history knows better. A run refused for
    # authorization after the store last changed means the stored token is of no use.
    stored_at = store.signature()
    if (
        problem is None
        and refused is not None
        and refused.ended_at is not None
        and stored_at is not None
        and refused.ended_at.timestamp() * 1e9 > stored_at[1]
    ):
        problem = refused.error or "authorization needed: run 'spotify-runner auth'"
    return {
        "authorized": problem is None,
        "days_left": round(days, 1),
        "expires_at": datetime.fromtimestamp(token.refresh_expires_at(), UTC).isoformat(
            timespec="seconds"
        ),
        "scopes": sorted(token.scopes),
        "problem": problem,
    }


def _latest_auth_refusal(runs: list[RunRecord]) -> RunRecord | None:
    """The newest run, if it ended for want of authorization (skipped runs do not count)."""
    done = [r for r in runs if r.ended_at is not None and r.status is not RunStatus.SKIPPED]
    if not done:
        return None
    latest = max(done, key=lambda r: r.id)
    return latest if latest.status is RunStatus.NEEDS_AUTH else None


def collect_status(
    config: Config, store: TokenStore, *, now: datetime | None = None
) -> dict[str, Any]:
    """Gathers the status as plain data (the `--json` output)."""
    now = now or datetime.now(UTC)
    tz = config.tzinfo()
    pid = daemon_pid(config.state_dir)
    state = open_state(config.state_dir, readonly=True)
    try:
        jobs = []
        last_runs: list[RunRecord] = []
        for name, job in config.jobs.items():
            last = state.last_run(name)
            if last is not None:
                last_runs.append(last)
            next_run = None
            if job.enabled:
                anchor = state.last_scheduled_at(name) or now
                trigger = build_trigger(job.schedule, tz, start=anchor)
                upcoming = next_fire_times(trigger, now, 1)
                next_run = upcoming[0] if upcoming else None
            jobs.append(
                {
                    "name": name,
                    "job": job.job,
                    "schedule": job.schedule.describe(),
                    "enabled": job.enabled,
                    "next_run": _iso(next_run.astimezone(tz)) if next_run else None,
                    "last_run": None
                    if last is None
                    else {
                        "status": last.status.value,
                        "started_at": _iso(last.started_at.astimezone(tz)),
                        "ended_at": _iso(last.ended_at.astimezone(tz) if last.ended_at else None),
                        "summary": last.summary,
                        "error": last.error,
                        "attempt": last.attempt,
                        "trigger": last.trigger,
                    },
                }
            )
    finally:
        state.close()
    return {
        "config": config.source,
        "daemon": {"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        "account": {
            "name": "default",
            **_auth_status(store, now.timestamp(), _latest_auth_refusal(last_runs)),
        },
        "jobs": jobs,
    }


def format_status(status: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = []
    daemon = status["daemon"]
    lines.append(
        f"daemon: running (PID {daemon['pid']})" if daemon["running"] else "daemon: not running"
    )
    acct = status["account"]
    if acct.get("problem"):
        lines.append(f"account: {acct['problem']}")
    else:
        warn = "  <- run 'spotify-runner auth' soon" if acct["days_left"] <= WARN_DAYS else ""
        lines.append(
            f"account: authorized, {acct['days_left']:.0f} days until the authorization expires "
            f"({acct['expires_at'][:10]}){warn}"
        )
    lines.append("")
    header = ("JOB", "MODULE", "SCHEDULE", "NEXT RUN", "LAST RUN")
    rows = [header]
    for job in status["jobs"]:
        last = job["last_run"]
        if last is None:
            last_text = "never"
        else:
            detail = last["error"] or last["summary"] or ""
            last_text = f"{last['status']} {last['started_at'][:19].replace('T', ' ')}"
            if detail:
                last_text += f": {detail}"
        next_text = job["next_run"][:19].replace("T", " ") if job["next_run"] else "-"
        if not job["enabled"]:
            next_text = "disabled"
        rows.append((job["name"], job["job"], job["schedule"], next_text, last_text))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    return "\n".join(lines)


def verify_online(tokens: TokenManager, spotify: SpotifyConfig, needed: frozenset[str]) -> str:
    """`check --online`: the token works against Spotify and covers every job's scopes.

    Raises:
        AuthError: no usable token, or scopes missing (exit 3, naming them and the fix).
    """
    client = make_client(tokens, spotify.api_url)
    me = client.current_user()
    status = tokens.status()
    missing = set(needed) - set(status.scopes)
    if missing:
        raise MissingScopes(missing)
    days = f"{status.days_left:.0f}" if status.days_left is not None else "unknown"
    return (
        f"online: authorized as {me.get('display_name') or me['id']} ({me['id']}); "
        f"every job's scopes granted; {days} days until the authorization expires"
    )
