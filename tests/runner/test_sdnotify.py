"""The sd_notify protocol, against real AF_UNIX datagram sockets bound by the test."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its NOTIFY_SOCKET value."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield sock, str(path)
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert notifier.enabled is False
    assert notifier.ready("up") is False
    assert notifier.notify("READY=1") is False
    assert notifier.watchdog() is False


def test_ready_with_status_is_one_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, name = listener
    notifier = Notifier({"NOTIFY_SOCKET": name})
    assert notifier.enabled
    assert notifier.ready("next run: radio at 18:45") is True
    assert receive(sock) == ["READY=1", "STATUS=next run: radio at 18:45"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda n: n.ready(), ["READY=1"]),
        (lambda n: n.status("idle"), ["STATUS=idle"]),
        (lambda n: n.stopping(), ["STOPPING=1"]),
        (lambda n: n.watchdog(), ["WATCHDOG=1"]),
        (lambda n: n.notify("EXTEND_TIMEOUT_USEC=5000000"), ["EXTEND_TIMEOUT_USEC=5000000"]),
    ],
)
def test_each_message(
    listener: tuple[socket.socket, str], call: Callable[[Notifier], bool], expected: list[str]
) -> None:
    sock, name = listener
    assert call(Notifier({"NOTIFY_SOCKET": name})) is True
    assert receive(sock) == expected


def test_reloading_carries_the_monotonic_clock(listener: tuple[socket.socket, str]) -> None:
    sock, name = listener
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert Notifier({"NOTIFY_SOCKET": name}).reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = receive(sock)
    assert first == "RELOADING=1"
    key, _, value = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_a_status_with_a_newline_stays_one_field(listener: tuple[socket.socket, str]) -> None:
    sock, name = listener
    Notifier({"NOTIFY_SOCKET": name}).status("two\nlines")
    assert receive(sock) == ["STATUS=two lines"]


def test_a_malformed_field_is_a_caller_bug(listener: tuple[socket.socket, str]) -> None:
    _, name = listener
    notifier = Notifier({"NOTIFY_SOCKET": name})
    with pytest.raises(ValueError, match="KEY=value"):
        notifier.notify("READY=1\nSTATUS=x")
    with pytest.raises(ValueError, match="KEY=value"):
        notifier.notify("READY")


def test_abstract_socket() -> None:
    name = f"spotify-runner-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready() is True
        assert receive(sock) == ["READY=1"]


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert notifier.ready() is False


def test_a_relative_socket_name_is_ignored() -> None:
    assert Notifier({"NOTIFY_SOCKET": "relative.sock"}).enabled is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert Notifier({"WATCHDOG_USEC": "120000000"}).watchdog_interval() == 60.0
    own = {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(own).watchdog_interval() == 1.5


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "me"},
    ],
)
def test_no_watchdog_interval(env: dict[str, str]) -> None:
    if env.get("WATCHDOG_PID") == "1" and os.getpid() == 1:
        pytest.skip("the test runs as PID 1")
    assert Notifier(env).watchdog_interval() is None
