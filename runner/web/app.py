"""The application factory: one Flask app, one blueprint per area, services passed in.

Views reach the daemon only through `Services` (kept in `app.extensions`), never through module
globals, so a test builds an app around its own registry and liveness and drives it with
`app.test_client()`, and the daemon builds exactly the same one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from prometheus_client import CollectorRegistry

EXTENSION = "spotify_runner"


@dataclass(frozen=True)
class Health:
    """Whether the scheduler is alive and ticking, and what `/healthz` says about it."""

    alive: bool
    detail: dict[str, Any]
    standby: bool = False  # a healthy standby of an active/standby pair (state on PostgreSQL)


@dataclass(frozen=True)
class Services:
    """What the views may use.

    Attributes:
        registry: the metrics registry the daemon owns (`/metrics`).
        health: the liveness signal the systemd watchdog uses too (`/healthz`).
    """

    registry: CollectorRegistry
    health: Callable[[], Health]


def services() -> Services:
    """The running app's services (inside a request)."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def create_app(given: Services) -> Flask:
    """Builds the daemon's WSGI app around `given`."""
    from runner.web.monitoring import monitoring

    app = Flask("runner.web")
    app.extensions[EXTENSION] = given
    app.register_blueprint(monitoring)
    return app
