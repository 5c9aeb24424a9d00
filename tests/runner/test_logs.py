"""Logging set-up and the redaction that keeps secrets out of every record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from runner.logs import REDACTED, JsonFormatter, RedactingFilter, redact, setup_logging

SECRET = "AQsupersecretrefreshtoken123"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers and levels; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: logging.getLogger(name).level
        for name in ("spotipy", "urllib3", "requests", "apscheduler")
    }
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer BQabc.def-123", f"Authorization: Bearer {REDACTED}"),
        ("Authorization: Basic Zm9vOmJhcg==", f"Authorization: Basic {REDACTED}"),
        (
            "grant_type=refresh_token&refresh_token=AQxyz",
            f"grant_type=refresh_token&refresh_token={REDACTED}",
        ),
        (
            "{'access_token': 'BQ123', 'expires_in': 3600}",
            f"{{'access_token': '{REDACTED}', 'expires_in': 3600}}",
        ),
        ('{"client_secret": "s3cr3t"}', f'{{"client_secret": "{REDACTED}"}}'),
        ("/callback?code=AQcode&state=xyz", f"/callback?code={REDACTED}&state=xyz"),
        ("nothing to hide here", "nothing to hide here"),
        ("{'code': 'AQcode', 'state': 'x'}", f"{{'code': '{REDACTED}', 'state': 'x'}}"),
        ("code=AQcode&state=xyz", f"code={REDACTED}&state=xyz"),
        (f"got code: {'A' * 40}", f"got code: {REDACTED}"),
        # "code" as an ordinary word is left alone.
        ("search answered HTTP 414: Error code: 414", "search answered HTTP 414: Error code: 414"),
        ("the child ended with exit code=3", "the child ended with exit code=3"),
    ],
)
def test_secret_shapes_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_known_secret_values_are_redacted_anywhere() -> None:
    assert redact(f"token {SECRET} leaked", [SECRET]) == f"token {REDACTED} leaked"
    # Too short to be a secret: left alone, or every "a" would vanish.
    assert redact("a b c", ["a"]) == "a b c"


def make_logger(
    stream: io.StringIO, fmt: logging.Formatter, flt: RedactingFilter
) -> logging.Logger:
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(fmt)
    handler.addFilter(flt)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    flt = RedactingFilter()
    flt.add(SECRET)
    logger = make_logger(stream, logging.Formatter("%(message)s"), flt)
    logger.info("refreshing with %s", SECRET)
    try:
        raise ValueError(f"bad token {SECRET}")
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    assert SECRET not in out
    assert f"refreshing with {REDACTED}" in out
    assert f"ValueError: bad token {REDACTED}" in out


def test_json_lines_carry_job_fields_and_stay_redacted() -> None:
    stream = io.StringIO()
    flt = RedactingFilter([SECRET])
    logger = make_logger(stream, JsonFormatter(), flt)
    logger.error("tick: failed %s", SECRET, extra={"job": "tick", "status": "failed"})
    try:
        raise RuntimeError(SECRET)
    except RuntimeError:
        logger.exception("boom")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "error"
    assert first["message"] == f"tick: failed {REDACTED}"
    assert (first["job"], first["status"]) == ("tick", "failed")
    assert "exception" not in first
    assert second["exception"].endswith(f"RuntimeError: {REDACTED}")
    assert SECRET not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("verbosity", "ours", "urllib3", "spotipy"),
    [
        (0, logging.INFO, logging.WARNING, logging.CRITICAL),
        (1, logging.DEBUG, logging.WARNING, logging.CRITICAL),
        (2, logging.DEBUG, logging.DEBUG, logging.DEBUG),
    ],
)
def test_verbosity_levels(verbosity: int, ours: int, urllib3: int, spotipy: int) -> None:
    setup_logging(verbosity=verbosity, stream=io.StringIO())
    assert logging.getLogger().level == ours
    assert logging.getLogger("urllib3").level == urllib3
    assert logging.getLogger("spotipy").level == spotipy


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_installs_one_redacting_handler() -> None:
    stream = io.StringIO()
    redactor = setup_logging(fmt="json", secrets=[SECRET], stream=stream)
    setup_logging(fmt="json", secrets=[SECRET], stream=stream)  # again: still one handler
    redactor = setup_logging(fmt="json", secrets=[SECRET], stream=stream)
    assert len(logging.getLogger().handlers) == 1
    redactor.add("BQlatertoken999")
    logging.getLogger("runner.test").warning("%s and %s", SECRET, "BQlatertoken999")
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == f"{REDACTED} and {REDACTED}"
