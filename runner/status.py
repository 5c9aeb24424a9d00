"""What `spotify-runner jobs` shows: each job's account, schedule, next and last run, and each
account's Spotify user and authorization.

Read from the config, the run history and the token store, so it works with or without a daemon.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.accounts import token_stores
from runner.config import DEFAULT_ACCOUNT, Config, SpotifyConfig
from runner.errors import AuthError, MissingScopes, RunnerError
from runner.holds import current_hold
from runner.lock import daemon_pid
from runner.pause import paused_since
from runner.schedule import next_fire_times, plan, slot_history
from runner.spotify import make_client
from runner.state import STATE_FILE, RunRecord, RunStatus, open_store
from runner.tokens import TokenManager, TokenStore

WARN_DAYS = 14
# Where the shipped system unit keeps its state (StateDirectory=spotify-runner).
SYSTEM_STATE_DIR = Path("/var/lib/spotify-runner")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _auth_status(
    store: TokenStore, now: float, refused: RunRecord | None, command: str
) -> dict[str, Any]:
    try:
        token = store.load()
    except RunnerError as exc:
        return {"authorized": False, "user": None, "problem": str(exc)}
    if token is None:
        return {"authorized": False, "user": None, "problem": f"not authorized: run '{command}'"}
    days = token.days_left(now)
    problem = None if days > 0 else f"authorization expired: run '{command}'"
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
        problem = refused.error or f"authorization needed: run '{command}'"
    user = None
    if token.user_id is not None:
        user = {"id": token.user_id, "display_name": token.user_name or token.user_id}
    return {
        "authorized": problem is None,
        "user": user,
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


def elsewhere_hint(
    config: Config, stores: Iterable[TokenStore], system_state_dir: Path
) -> str | None:
    """The fix, when this state_dir holds nothing but the system unit's does.

    Root's default state_dir is not the system unit's: without this, `jobs` as root would report
    "not running", "not authorized" and "never" about a daemon that is doing fine.
    """
    if config.state.url is not None:
        return None  # the state is in the database, not in any state_dir
    here = Path(config.state_dir)
    if any(store.path.exists() for store in stores) or here.resolve() == system_state_dir.resolve():
        return None
    if not (system_state_dir / STATE_FILE).exists():
        return None
    return (
        f"{here} holds no runs and no token, but {system_state_dir} (the system unit's "
        f"StateDirectory=) does: add 'state_dir: {system_state_dir}' to {config.source}, "
        f"or run with STATE_DIRECTORY={system_state_dir}"
    )


def collect_status(
    config: Config,
    *,
    now: datetime | None = None,
    system_state_dir: Path = SYSTEM_STATE_DIR,
) -> dict[str, Any]:
    """Gathers the status as plain data (the `--json` output).

    Every job names its account; every account says who it is on Spotify (as recorded at
    `auth`), whether it is authorized, and how many days the authorization has left.
    """
    now = now or datetime.now(UTC)
    tz = config.tzinfo()
    pid = daemon_pid(config.state_dir)
    state = open_store(config, readonly=True)
    stores = token_stores(config)
    try:
        hold = current_hold(state, now)
        jobs = []
        last_runs: dict[str, list[RunRecord]] = {name: [] for name in config.accounts}
        for name, job in config.jobs.items():
            last = state.last_run(name, account=job.account)
            paused = paused_since(state, name, job.account)
            if last is not None:
                last_runs[job.account].append(last)
            next_run = None
            if job.enabled:
                last_slot, caught_up_at = slot_history(state, name, job.account)
                exact = plan(
                    job.schedule, tz, now=now, last_scheduled=last_slot, caught_up_at=caught_up_at
                ).exact
                upcoming = next_fire_times(exact, now, 1) if exact is not None else []
                next_run = upcoming[0] if upcoming else None
            jobs.append(
                {
                    "name": name,
                    "account": job.account,
                    "job": job.job,
                    "schedule": job.schedule.describe(),
                    "enabled": job.enabled,
                    "paused": paused is not None,
                    "paused_since": _iso(paused.astimezone(tz)) if paused else None,
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
    accounts = [
        {
            "name": name,
            **_auth_status(
                stores[name],
                now.timestamp(),
                _latest_auth_refusal(last_runs[name]),
                config.auth_command(name),
            ),
            "auth_command": config.auth_command(name),
            "jobs": config.jobs_of(name),
        }
        for name in config.accounts
    ]
    ran = any(last_runs.values())
    hint = None if ran else elsewhere_hint(config, stores.values(), system_state_dir)
    return {
        "config": config.source,
        "state_dir": str(config.state_dir),
        **({"hint": hint} if hint else {}),
        "daemon": {"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        **({"active": active_daemon(config)} if config.state.url is not None else {}),
        "accounts": accounts,
        "rate_limit": None
        if hold is None
        else {"until": _iso(hold.until.astimezone(tz)), "reason": hold.reason},
        "jobs": jobs,
    }


def _account_line(acct: dict[str, Any]) -> str:
    label = "account" if acct["name"] == DEFAULT_ACCOUNT else f"account {acct['name']}"
    user = acct.get("user")
    who = f"{user['display_name']} ({user['id']}), " if user else ""
    if acct.get("problem"):
        return f"{label}: {who}{acct['problem']}"
    warn = f"  <- run '{acct['auth_command']}' soon" if acct["days_left"] <= WARN_DAYS else ""
    return (
        f"{label}: {who}authorized, {acct['days_left']:.0f} days until the authorization "
        f"expires ({acct['expires_at'][:10]}){warn}"
    )


def active_daemon(config: Config) -> dict[str, Any] | None:
    """Which daemon leads the pair sharing the state database, and since when.

    What `jobs`, `/healthz` and the status page show; None while no daemon leads.

    Raises:
        StateError: the state database cannot be reached.
    """
    from runner.state.leadership import read_leader

    assert config.state.url is not None
    password = config.state.password
    leader = read_leader(
        config.state.url, None if password is None else password.get_secret_value()
    )
    if leader is None:
        return None
    return {
        "node": leader.node,
        "since": _iso(leader.since.astimezone(config.tzinfo())),
        "epoch": leader.epoch,
    }


def format_status(status: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = [f"note: {status['hint']}", ""] if status.get("hint") else []
    daemon = status["daemon"]
    lines.append(
        f"daemon: running (PID {daemon['pid']})" if daemon["running"] else "daemon: not running"
    )
    if "active" in status:
        active = status["active"]
        lines.append(
            f"active daemon: node {active['node']} since {active['since'][:19].replace('T', ' ')}"
            if active
            else "active daemon: none (no daemon holds the lead in the state database)"
        )
    lines.extend(_account_line(acct) for acct in status["accounts"])
    held = status.get("rate_limit")
    if held:
        until = held["until"][:19].replace("T", " ")
        lines.append(f"spotify: rate-limited until {until} ({held['reason']}): every job waits")
    lines.append("")
    header = ("JOB", "ACCOUNT", "MODULE", "SCHEDULE", "NEXT RUN", "LAST RUN")
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
        elif job["paused"]:
            next_text = f"paused ({next_text})" if job["next_run"] else "paused"
        rows.append(
            (job["name"], job["account"], job["job"], job["schedule"], next_text, last_text)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        )
    return "\n".join(lines)


def verify_online(tokens: TokenManager, spotify: SpotifyConfig, needed: frozenset[str]) -> str:
    """`check --online`: the token works against Spotify and covers every job's scopes.

    Raises:
        AuthError: no usable token, scopes missing, or the token answers as another Spotify user
            than the one `auth` recorded for the account (exit 3, naming them and the fix).
    """
    client = make_client(tokens, spotify.api_url)
    me = client.current_user()
    try:
        recorded = tokens.store.load()
    except RunnerError:
        recorded = None
    if recorded is not None and recorded.user_id is not None and recorded.user_id != me["id"]:
        raise AuthError(
            f"the token answers as {me.get('display_name') or me['id']} ({me['id']}), but the "
            f"account was authorized as {recorded.user_name or recorded.user_id} "
            f"({recorded.user_id}): run '{tokens.auth_command}'"
        )
    status = tokens.status()
    missing = set(needed) - set(status.scopes)
    if missing:
        raise MissingScopes(missing, tokens.auth_command)
    days = f"{status.days_left:.0f}" if status.days_left is not None else "unknown"
    return (
        f"online: authorized as {me.get('display_name') or me['id']} ({me['id']}); "
        f"every job's scopes granted; {days} days until the authorization expires"
    )
