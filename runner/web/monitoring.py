"""`GET /metrics` in the Prometheus text format, and `GET /healthz`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runner.web.app import services

monitoring = Blueprint("monitoring", __name__)


@monitoring.get("/metrics")
def metrics() -> Response:
    """Every metric in the daemon's own registry."""
    return Response(
        generate_latest(services().registry), mimetype=None, content_type=CONTENT_TYPE_LATEST
    )


@monitoring.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while the scheduler is alive and ticking, 503 when it has stalled.

    A standby that is alive answers 200 with `"status": "standby"`: it is healthy, it just
    does not lead (`"active"` says who does).
    """
    health = services().health()
    status = "stalled" if not health.alive else "standby" if health.standby else "ok"
    body = {"status": status, **health.detail}
    return jsonify(body), 200 if health.alive else 503
