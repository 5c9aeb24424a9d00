"""Delivery over real HTTP on 127.0.0.1: apprise json:// receivers, hanging ones, and pings."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from daemon_world import World, every
from receivers import Receiver

from runner.notify.incidents import Message
from runner.notify.ping import Pinger
from runner.notify.sender import Sender
from runner.notify.urls import describe, secret_parts
from runner.state import RunRecord, RunStatus

MESSAGE = Message(
    "failed", "spotify-runner: radio failed", "radio failed: boom", "default", "radio"
)


def record(status: RunStatus, *, summary: str | None = None, error: str | None = None) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        1, "default", "radio", now, now, now, status, summary, error, 1, False, "schedule"
    )


def test_a_message_reaches_an_apprise_json_receiver(receiver: Receiver) -> None:
    sender = Sender([receiver.url("json")], timeout=5)
    sender.send(MESSAGE)
    (got,) = receiver.wait_for(1)
    sender.close()
    assert got.method == "POST"
    assert got.path == "/hook"
    body = got.json()
    assert (body["title"], body["message"]) == (MESSAGE.title, MESSAGE.body)


def test_a_hanging_receiver_delays_nothing_beyond_the_timeout() -> None:
    hanging = Receiver(hang=60)
    try:
        sender = Sender([hanging.url("json")], timeout=1, attempts=3, backoff=0.1)
        started = time.monotonic()
        for _ in range(5):
            sender.send(MESSAGE)  # queued; never waits for the receiver
        queued = time.monotonic() - started
        hanging.wait_for(1)
        closing = time.monotonic()
        sender.close()
        closed = time.monotonic() - closing
    finally:
        hanging.close()
    assert sender.stopped(10)  # released, the thread left behind drops the rest and ends
    assert queued < 1.0
    # The delivery timeout is 1s; a stop waits for it once, not per queued message or retry.
    assert closed < 1.0 + 3.0


def test_a_failed_delivery_is_retried_then_dropped_with_a_redacted_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusing = Receiver(status=500)
    try:
        url = refusing.url("json", "/hook/s3cr3t-token-123")
        sender = Sender([url], timeout=2, attempts=3, backoff=0.05)
        sender.send(MESSAGE)
        assert sender.flush(20)
        sender.close()
        assert len(refusing.requests()) == 3
    finally:
        refusing.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "runner.notify"]
    assert lines == [
        "notify-sender: not delivered to notify.urls[0] (json) after 3 attempt(s); dropped"
    ]


def test_pings_follow_the_healthchecks_protocol(receiver: Receiver) -> None:
    pinger = Pinger(timeout=5)
    base = receiver.url(path="/ping/0f3c2b7e-uuid")
    pinger.started("radio", base)
    pinger.finished(record(RunStatus.OK, summary="+3 -1"), base)
    pinger.started("radio", base)
    pinger.finished(record(RunStatus.FAILED, error="not found: /v1/playlists/x"), base)
    got = receiver.wait_for(4)
    pinger.close()
    assert [(r.method, r.path, r.body.decode()) for r in got] == [
        ("POST", "/ping/0f3c2b7e-uuid/start", ""),
        ("POST", "/ping/0f3c2b7e-uuid", "+3 -1"),
        ("POST", "/ping/0f3c2b7e-uuid/start", ""),
        ("POST", "/ping/0f3c2b7e-uuid/fail", "not found: /v1/playlists/x"),
    ]


def test_urls_are_named_without_their_secrets() -> None:
    url = "tgram://123456789:AAHsecretBotToken/987654321"
    assert describe("notify.urls[2]", url) == "notify.urls[2] (tgram)"
    parts = set(secret_parts("mailtos://user:hunter22pw@example.com/?to=me@example.org"))
    assert "hunter22pw" in parts
    assert "example.com" not in parts
    assert "123456789:AAHsecretBotToken" in set(secret_parts(url))


def test_notify_test_reports_each_url_redacted(world: World, receiver: Receiver) -> None:
    dead = Receiver(status=500)
    try:
        good = receiver.url("json", "/topic-secret-abc")
        bad = dead.url("json", "/other-secret-xyz") + "?rto=1"
        world.write_config({"tick": every("1h")}, notify={"urls": [good, bad], "timeout": "2s"})
        done = world.cli("notify", "--test")
    finally:
        dead.close()
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "notify.urls[0] (json): delivered",
        "notify.urls[1] (json): NOT delivered",
    ]
    assert "secret" not in done.stdout + done.stderr
    (got,) = receiver.requests()
    assert got.json()["title"] == "spotify-runner: test notification"
    world.write_config({"tick": every("1h")}, notify={"urls": [good]})
    assert world.cli("notify", "--test").returncode == 0


def test_check_reports_a_bad_url_at_its_line_without_quoting_it(world: World) -> None:
    world.write_config(
        {"tick": every("1h", ping="ftp://hc.example/ping-secret-1")},
        notify={"urls": ["json://127.0.0.1:9/ok", "nosuchservice://token-secret-2"]},
    )
    done = world.cli("check")
    assert done.returncode == 2
    text = world.config_path.read_text().splitlines()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        path, row, _col, rest = line.split(":", 3)
        assert path == str(world.config_path)
        assert "secret" in text[int(row) - 1]  # points at the URL's own line
        assert "secret" not in rest
    assert "notify.urls[1]: apprise cannot use this nosuchservice:// URL" in lines[0]
    assert "jobs.tick.ping: expected an http(s) URL" in lines[1]
