"""The daemon's Prometheus metrics, in a registry it owns (never the process-global default).

Counters that history can answer start from it (`runs_total` is seeded from the recorded runs),
so a restart does not look like everything reset to zero; afterwards each recorded run adds to
them from its `RunRecord`, the same record history and notifications read. Values the daemon
knows at any moment (next runs, authorization end, rate-limit hold) are read at scrape time.

Metrics:
    spotify_runner_runs_total{job,account,status}
    spotify_runner_run_duration_seconds{job}                  histogram
    spotify_runner_last_success_timestamp_seconds{job}
    spotify_runner_next_run_timestamp_seconds{job}
    spotify_runner_token_refreshes_total{account,result}
    spotify_runner_authorization_expiry_timestamp_seconds{account}
    spotify_runner_spotify_requests_total{method,endpoint,status}
        status is the HTTP status, `429_quota_exceeded` for Spotify's shared development-mode
        quota (a 429 without Retry-After, told apart from an ordinary rate limit), or `error`
        when no answer came
    spotify_runner_rate_limited_until_timestamp_seconds       0 when not held
    spotify_runner_build_info{version}                        1
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runner import __version__
from runner.endpoints import endpoint_template
from runner.state import RunRecord, RunStatus, StateStore

# Seconds: from a quick playlist update to a long crawl of a library.
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Live:
    """Where scrape-time values come from (the daemon supplies these callables)."""

    def __init__(
        self,
        next_runs: Callable[[], Mapping[str, datetime | None]] = dict,
        authorization_ends: Callable[[], Mapping[str, float | None]] = dict,
        rate_limited_until: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.next_runs = next_runs
        self.authorization_ends = authorization_ends
        self.rate_limited_until = rate_limited_until


class _LiveCollector(Collector):
    def __init__(self, live: Live) -> None:
        self.live = live

    def collect(self) -> Iterator[GaugeMetricFamily]:
        next_run = GaugeMetricFamily(
            "spotify_runner_next_run_timestamp_seconds",
            "When each job runs next (Unix time).",
            labels=["job"],
        )
        for job, when in sorted(self.live.next_runs().items()):
            if when is not None:
                next_run.add_metric([job], when.timestamp())
        yield next_run
        expiry = GaugeMetricFamily(
            "spotify_runner_authorization_expiry_timestamp_seconds",
            "When Spotify ends each account's authorization (Unix time; 6 months after auth).",
            labels=["account"],
        )
        for account, ends in sorted(self.live.authorization_ends().items()):
            if ends is not None:
                expiry.add_metric([account], ends)
        yield expiry
        held = self.live.rate_limited_until()
        yield GaugeMetricFamily(
            "spotify_runner_rate_limited_until_timestamp_seconds",
            "Until when Spotify rate-limits this app and every job waits (Unix time; 0: not).",
            value=held.timestamp() if held is not None else 0.0,
        )


class Metrics:
    """Every metric, registered once in `registry`.

    Args:
        live: the scrape-time values.
        api_url: the Web API base, whose path is stripped before matching endpoint templates.
    """

    def __init__(self, live: Live | None = None, *, api_url: str = "") -> None:
        self.registry = CollectorRegistry()
        self._base_path = urlsplit(api_url).path.rstrip("/") if api_url else "/v1"
        self.runs = Counter(
            "spotify_runner_runs",
            "Recorded runs, by how they ended (skipped ones included).",
            ["job", "account", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "spotify_runner_run_duration_seconds",
            "How long runs took.",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.last_success = Gauge(
            "spotify_runner_last_success_timestamp_seconds",
            "When each job last ended ok (Unix time).",
            ["job"],
            registry=self.registry,
        )
        self.token_refreshes = Counter(
            "spotify_runner_token_refreshes",
            "Access-token refreshes, by result (ok, needs_auth, rejected, failed).",
            ["account", "result"],
            registry=self.registry,
        )
        self.requests = Counter(
            "spotify_runner_spotify_requests",
            "Requests to the Spotify Web API, by OpenAPI path template and status.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        build = Gauge(
            "spotify_runner_build_info",
            "The running version.",
            ["version"],
            registry=self.registry,
        )
        build.labels(__version__).set(1)
        self.registry.register(_LiveCollector(live or Live()))

    def seed(self, state: StateStore) -> None:
        """Starts the counters from the recorded history (call once, before any run)."""
        for account, job, status, count in state.run_counts():
            self.runs.labels(job, account, status.value).inc(count)
        for (_account, job), when in state.last_success().items():
            self.last_success.labels(job).set(when.timestamp())

    def run_finished(self, record: RunRecord) -> None:
        """Counts one recorded run."""
        self.runs.labels(record.job, record.account, record.status.value).inc()
        if record.ended_at is None or record.status is RunStatus.SKIPPED:
            return
        seconds = (record.ended_at - record.started_at).total_seconds()
        self.duration.labels(record.job).observe(max(0.0, seconds))
        if record.status is RunStatus.OK:
            self.last_success.labels(record.job).set(record.ended_at.timestamp())

    def request(self, method: str, url: str, status: str) -> None:
        """Counts one answer (or `error`) from the Web API."""
        endpoint = endpoint_template(url, self._base_path)
        self.requests.labels(method, endpoint, status).inc()

    def token_sessions(self, account: str) -> Callable[[], requests.Session]:
        """A session factory for the token manager whose sessions count each refresh's answer.

        Results: `ok`, Spotify's OAuth error (`invalid_grant`: authorization revoked or ended;
        `invalid_client`), or `http_STATUS`; a refresh that got no answer is not counted.
        """
        counter = self.token_refreshes

        def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            counter.labels(account, _refresh_result(response)).inc()

        def factory() -> requests.Session:
            session = requests.Session()
            session.hooks["response"].append(count)
            return session

        return factory


def _refresh_result(response: requests.Response) -> str:
    if response.status_code == 200:
        return "ok"
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str) and error.replace("_", "").isalpha() and len(error) <= 40:
        return error
    return f"http_{response.status_code}"
