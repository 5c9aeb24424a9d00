"""The embedded fake Spotify as a service of its own, for the booted test machine.

Usage: python fake_spotify_service.py PORT
Run inside the machine as a transient unit (`systemd-run`): the machine's network namespace has
loopback only, so the daemon under test reaches this, and nothing else.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from runner.testing import FakeSpotify


def main() -> None:
    port = int(sys.argv[1])
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    with FakeSpotify(port=port) as fake:
        sys.stdout.write(f"fake Spotify on {fake.base_url}\n")
        sys.stdout.flush()
        stop.wait()


if __name__ == "__main__":
    main()
