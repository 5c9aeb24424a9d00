"""The embedded fake Spotify, split by concern: accounts, Web API, catalog, server."""

from runner.testing.fake.clock import ManualClock
from runner.testing.fake.model import Fault, Recorded
from runner.testing.fake.server import FakeSpotify

__all__ = ["FakeSpotify", "Fault", "ManualClock", "Recorded"]
