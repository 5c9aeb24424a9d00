"""The systemd notify protocol, without libsystemd.

The protocol is one datagram of newline-separated `KEY=value` fields sent to the AF_UNIX socket
named by `$NOTIFY_SOCKET`: a path, or an abstract socket when it starts with `@`. Outside
systemd the variable is unset and every call is a no-op, so the daemon calls these
unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to the service manager.

    Args:
        env: where to read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.

    Attributes:
        enabled: True when there is a socket to notify.
    """

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        socket_name = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if socket_name.startswith("@"):
            # Abstract namespace: the name starts with a NUL byte instead of '@'.
            self._address = b"\0" + os.fsencode(socket_name[1:])
        elif socket_name.startswith("/"):
            self._address = socket_name
        elif socket_name:
            log.warning("ignoring NOTIFY_SOCKET=%r: not a path or an abstract socket", socket_name)
        self.enabled = self._address is not None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")

    def notify(self, *fields: str) -> bool:
        """Sends the fields as one message. Returns True when it was sent.

        Never raises for a socket problem (a notification is not worth crashing the daemon);
        a failure is logged at debug level.

        Raises:
            ValueError: a field holds a newline or lacks `=` (a bug in the caller).
        """
        if self._address is None or not fields:
            return False
        for field in fields:
            if "\n" in field or "=" not in field:
                raise ValueError(f"bad notify field {field!r}: one KEY=value line each")
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as exc:
            log.debug("sd_notify %s failed: %s", fields[0], exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up (or a reload) is complete; optionally with a status line."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", _status_field(status))

    def status(self, text: str) -> bool:
        """STATUS=: the one line `systemctl status` shows, e.g. the next run."""
        return self.notify(_status_field(text))

    def reloading(self) -> bool:
        """RELOADING=1, stamped with CLOCK_MONOTONIC: send `ready()` when the reload is done.

        systemd >= 253 requires MONOTONIC_USEC with RELOADING=1 for Type=notify-reload; older
        versions and Type=notify ignore it.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """STOPPING=1: shutdown has begun."""
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        """WATCHDOG=1: still alive. Send every `watchdog_interval()` seconds."""
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of `$WATCHDOG_USEC`), or None for no watchdog.

        None too when `$WATCHDOG_PID` names another process: the watchdog is not ours (a child
        that inherited the environment).
        """
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        if not self._watchdog_usec:
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 2 / 1_000_000


def _status_field(text: str) -> str:
    # A status is one line; a newline would start a bogus field.
    return "STATUS=" + " ".join(text.split("\n"))
