"""Logging set-up and the redaction that keeps secrets out of every record."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.logs import (
    REDACTED,
    JsonFormatter,
    RedactingFilter,
    redact,
    setup_logging,
    syslog_priority,
)

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


def _journal_id(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


@pytest.mark.usefixtures("restore_logging")
def test_lines_carry_syslog_priorities_when_stderr_is_the_journal_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """journald files each `<N>`-prefixed line at priority N, so `journalctl -p err` works."""
    log_file = tmp_path / "journal-stream"
    with log_file.open("w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", _journal_id(log_file))
        setup_logging(stream=stream, secrets=[SECRET])
        log = logging.getLogger("runner.test")
        log.info("started")
        log.warning("careful")
        log.error("broken with %s", SECRET)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("crashed")
        logging.getLogger("runner.test").critical("gone")
    lines = log_file.read_text().splitlines()
    assert lines[:3] == [
        "<6>INFO runner.test: started",
        "<4>WARNING runner.test: careful",
        f"<3>ERROR runner.test: broken with {REDACTED}",
    ]
    # A traceback is several lines: each keeps the error priority instead of falling to info.
    traceback = lines[3:-1]
    assert traceback[0] == "<3>ERROR runner.test: crashed"
    assert len(traceback) > 3
    assert all(line.startswith("<3>") for line in traceback)
    assert traceback[-1] == "<3>ValueError: boom"
    assert lines[-1] == "<2>CRITICAL runner.test: gone"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("journal_stream", ["", "1:2", "not-a-pair"])
def test_no_priority_prefix_when_stderr_is_not_the_journal_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_stream: str
) -> None:
    """An inherited JOURNAL_STREAM naming another stream (or none) leaves the lines plain."""
    log_file = tmp_path / "redirected"
    with log_file.open("w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", journal_stream)
        setup_logging(stream=stream)
        logging.getLogger("runner.test").error("plain")
    assert log_file.read_text() == "ERROR runner.test: plain\n"


@pytest.mark.parametrize(
    ("level", "priority"),
    [(logging.DEBUG, 7), (logging.INFO, 6), (25, 6), (logging.WARNING, 4), (logging.ERROR, 3)],
)
def test_syslog_priority(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_get_the_prefix_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_file = tmp_path / "journal-stream"
    with log_file.open("w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", _journal_id(log_file))
        setup_logging(fmt="json", stream=stream)
        logging.getLogger("runner.test").warning("careful")
    line = log_file.read_text()
    assert line.startswith("<4>{")
    assert json.loads(line[3:])["level"] == "warning"
