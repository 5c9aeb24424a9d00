"""Ports for the embedded fakes, the demos and the tests: all on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is free when this returns; a process that binds it a moment later almost always
    gets it (the kernel hands ephemeral ports out in turn), which is all a test or demo needs.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
