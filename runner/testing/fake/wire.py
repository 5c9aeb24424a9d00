"""Requests and responses as the handlers see them, and Spotify's error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass
class Request:
    """A parsed HTTP request.

    Attributes:
        method: upper-case HTTP method.
        path: the path without the query string.
        query: query parameters, last value wins.
        headers: header names lower-cased.
        body: parsed JSON, a form dict, or None.
        raw_body: the bytes received.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""


@dataclass
class Response:
    """What the server writes back."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(obj).encode(), headers=dict(headers or {}))


def api_error(
    status: int, message: str, reason: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A Web API error body: `{"error": {"status", "message"[, "reason"]}}`."""
    error: dict[str, Any] = {"status": status, "message": message}
    if reason is not None:
        error["reason"] = reason
    return json_response(status, {"error": error}, headers)


def oauth_error(status: int, error: str, description: str) -> Response:
    """An accounts-service error body: `{"error", "error_description"}`."""
    return json_response(status, {"error": error, "error_description": description})


def html_page(status: int, text: str) -> Response:
    """A small HTML page, as the accounts service shows for errors it cannot redirect."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    page = (
        "<!DOCTYPE html><html><head><title>Error</title></head>"
        f"<body><p>{escaped}</p></body></html>"
    )
    return Response(status, page.encode(), content_type="text/html; charset=utf-8")


class ApiError(Exception):
    """Raised inside API handlers to answer with Spotify's error body."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason

    def response(self) -> Response:
        """The error as a response."""
        return api_error(self.status, self.message, self.reason)


FAULT_MESSAGES = {
    429: "API rate limit exceeded",
    500: "Server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def fault_message(status: int) -> str:
    """The message Spotify puts in an error body for a status the fault injects."""
    if status in FAULT_MESSAGES:
        return FAULT_MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
