"""/metrics and /healthz: the WSGI app on its real server, and the numbers against the history."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import yaml
from daemon_world import World, child_env, every, wait_for
from prometheus_client.parser import text_string_to_metric_families

from runner.endpoints import TEMPLATES, endpoint_template
from runner.liveness import Liveness
from runner.metrics import Metrics
from runner.state import RunStatus
from runner.testing import Fault
from runner.web.app import Health, Services, create_app

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO.parent / "shared" / "spotify-web-api" / "openapi.yml"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """The exposition, read by prometheus-client's own parser."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; KeyError when it is not there."""
    return samples[(name, tuple(sorted(labels.items())))]


def runs_total(samples: Samples) -> dict[tuple[str, str, str], int]:
    out = {}
    for (name, labels), value in samples.items():
        if name == "spotify_runner_runs_total":
            got = dict(labels)
            out[(got["job"], got["account"], got["status"])] = int(value)
    return out


def history_counts(world: World) -> dict[tuple[str, str, str], int]:
    done = [r for r in world.runs() if r.ended_at is not None]
    return dict(Counter((r.job, r.account, r.status.value) for r in done))


def scrape(world: World) -> Samples:
    response = requests.get(f"http://127.0.0.1:{world.http_port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.text)


# -- endpoints ----------------------------------------------------------------------------------


@pytest.mark.skipif(not OPENAPI.exists(), reason=f"{OPENAPI} is not there to compare with")
def test_the_endpoint_templates_are_the_openapi_paths() -> None:
    paths = yaml.safe_load(OPENAPI.read_text())["paths"]
    assert sorted(TEMPLATES) == sorted(paths)


@pytest.mark.parametrize(
    ("url", "template"),
    [
        (
            "https://api.spotify.com/v1/playlists/37i9dQZF1DXcBWIGoYBM5M/items?limit=50",
            "/playlists/{playlist_id}/items",
        ),
        ("https://api.spotify.com/v1/me/playlists", "/me/playlists"),
        ("https://api.spotify.com/v1/users/alice/playlists", "/users/{user_id}/playlists"),
        ("https://api.spotify.com/v1/me/tracks/contains?ids=a,b", "/me/tracks/contains"),
        ("https://api.spotify.com/v1/nothing/here", "other"),
    ],
)
def test_a_url_is_counted_by_its_template_never_its_id(url: str, template: str) -> None:
    assert endpoint_template(url) == template


# -- the app ------------------------------------------------------------------------------------


def test_healthz_is_the_watchdogs_liveness_signal() -> None:
    now = [100.0]
    liveness = Liveness(stale_after=30, clock=lambda: now[0])
    app = create_app(
        Services(
            registry=Metrics().registry,
            health=lambda: Health(liveness.alive(), liveness.detail()),
        )
    )
    client = app.test_client()
    first = client.get("/healthz")
    assert first.status_code == 200
    assert first.json == {
        "status": "ok",
        "seconds_since_tick": 0.0,
        "stale_after_seconds": 30,
        "ticks": 0,
    }
    now[0] += 31
    stalled = client.get("/healthz")
    assert stalled.status_code == 503
    assert stalled.json is not None
    assert stalled.json["status"] == "stalled"
    liveness.beat()
    assert client.get("/healthz").status_code == 200


def test_quota_exceeded_is_counted_apart_from_a_rate_limit() -> None:
    metrics = Metrics(api_url="https://api.spotify.com/v1")
    base = "https://api.spotify.com/v1"
    metrics.request("GET", f"{base}/me/playlists", "429_quota_exceeded")
    metrics.request("GET", f"{base}/me/playlists", "429")
    metrics.request("GET", f"{base}/playlists/abc/items", "200")
    metrics.request("GET", f"{base}/playlists/def/items", "200")
    app = create_app(Services(registry=metrics.registry, health=lambda: Health(True, {})))
    samples = parse(app.test_client().get("/metrics").get_data(as_text=True))
    name = "spotify_runner_spotify_requests_total"

    def count(endpoint: str, status: str) -> float:
        labels = (("endpoint", endpoint), ("method", "GET"), ("status", status))
        return samples[(name, labels)]

    assert count("/me/playlists", "429_quota_exceeded") == 1
    assert count("/me/playlists", "429") == 1
    assert count("/playlists/{playlist_id}/items", "200") == 2
    assert samples[("spotify_runner_build_info", (("version", "0.1.0"),))] == 1


# -- the daemon ---------------------------------------------------------------------------------


def test_metrics_equal_the_history_live_and_after_a_restart(world: World) -> None:
    jobs = {
        "tick": every(1),
        "bad": every(1, job="fail", retries=0),
        "quota": every(1, job="limited", retries=0),
    }
    world.write_config(jobs)
    daemon = world.daemon()
    daemon.wait_started()
    for job in ("tick", "quota"):
        world.wait_runs(job, lambda rs: sum(r.status is RunStatus.OK for r in rs) >= 2)
    world.wait_runs("bad", lambda rs: len(rs) >= 2)
    # Spotify's shared development-mode quota: a 429 without Retry-After holds every job.
    world.fake.inject(
        Fault(method="GET", path="/me/playlists$", status=429, reason="QUOTA_EXCEEDED", times=None)
    )
    world.wait_runs("quota", lambda rs: any(r.status is RunStatus.RATE_LIMITED for r in rs))

    def consistent() -> Samples | None:
        before = history_counts(world)
        samples = scrape(world)
        after = history_counts(world)
        return samples if before == after == runs_total(samples) else None

    samples = wait_for(consistent, 20, "a scrape equal to the history")
    statuses = {status for (_job, _account, status) in runs_total(samples)}
    assert {"ok", "failed", "rate_limited"} <= statuses
    requests_total = "spotify_runner_spotify_requests_total"
    quota = value(
        samples, requests_total, method="GET", endpoint="/me/playlists", status="429_quota_exceeded"
    )
    assert quota >= 1
    assert value(samples, requests_total, method="GET", endpoint="/me/playlists", status="200") >= 2
    assert value(samples, requests_total, method="GET", endpoint="/me", status="200") >= 2
    held = value(samples, "spotify_runner_rate_limited_until_timestamp_seconds")
    assert held > time.time()
    refreshes = "spotify_runner_token_refreshes_total"
    assert value(samples, refreshes, account="default", result="ok") >= 1
    assert value(samples, "spotify_runner_next_run_timestamp_seconds", job="tick") > time.time() - 5
    expiry = "spotify_runner_authorization_expiry_timestamp_seconds"
    assert value(samples, expiry, account="default") > time.time() + 86400 * 150
    assert value(samples, "spotify_runner_last_success_timestamp_seconds", job="tick") > 0
    assert value(samples, "spotify_runner_run_duration_seconds_count", job="tick") >= 2
    health = requests.get(f"http://127.0.0.1:{world.http_port}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0

    # A restart starts runs_total from the history instead of from zero.
    world.write_config({name: {**job, "enabled": False} for name, job in jobs.items()})
    again = world.daemon()
    again.wait_started()
    assert runs_total(scrape(world)) == history_counts(world)
    again.send(signal.SIGTERM)
    assert again.wait() == 0


def test_a_port_in_use_is_one_line_and_exit_2(world: World) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", world.http_port))
        taken.listen(1)
        world.write_config({"tick": every(1)})
        daemon = world.daemon()
        code = daemon.wait(30)
    assert code == 2
    assert daemon.stderr().strip().splitlines() == [
        f"error: http.listen 127.0.0.1:{world.http_port} is in use (another spotify-runner, or "
        "something else): stop it, set http.listen to a free host:port, or set http: false"
    ]
    assert world.runs() == []


def test_http_false_serves_nothing(world: World) -> None:
    world.write_config({"tick": every(1)}, http=False)
    daemon = world.daemon()
    daemon.wait_started()
    world.wait_runs("tick", lambda rs: len(rs) >= 1)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", world.http_port)) != 0
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_listening_beyond_loopback_needs_a_password_file(world: World) -> None:
    world.write_config({"tick": every(1)}, http={"listen": "0.0.0.0:8888"})
    done = world.cli("check")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert re.match(
        rf"^{re.escape(str(world.config_path))}:\d+:\d+: http: listen '0.0.0.0:8888'", line
    )
    assert "set http.password_file too, or listen on 127.0.0.1" in line
    secret = world.dir / "http_password"
    secret.write_text("correct horse\n")
    world.write_config(
        {"tick": every(1)}, http={"listen": "0.0.0.0:8888", "password_file": str(secret)}
    )
    assert world.cli("check").returncode == 0


def test_auth_falls_back_to_paste_while_the_daemon_holds_the_redirect_port(world: World) -> None:
    """By default the daemon listens on the redirect URI's port: `auth` pastes instead."""
    world.write_config({"tick": every("1h")}, http={})
    daemon = world.daemon()
    daemon.wait_started()
    wait_for(lambda: requests.get(f"http://127.0.0.1:{world.redirect_port}/healthz", timeout=5).ok)
    cmd = [sys.executable, "-m", "runner", "-c", str(world.config_path), "auth", "--timeout", "20"]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env({"BROWSER": "false"}),
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    lines = []
    url = None
    while url is None:
        line = proc.stdout.readline()
        assert line, "auth ended before printing the URL"
        lines.append(line)
        if "/authorize?" in line:
            url = line.strip()
    # The user approves in a browser elsewhere and pastes the address it was sent to.
    approved = requests.get(url, allow_redirects=False, timeout=10)
    proc.stdin.write(approved.headers["Location"] + "\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert lines[0] == (
        f"127.0.0.1:{world.redirect_port} is taken (by the running spotify-runner daemon, most "
        "likely), so the redirect cannot be caught here: authorize by pasting.\n"
    )
    assert "in use" not in "".join(lines) + out + err
    assert "authorized" in out
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
