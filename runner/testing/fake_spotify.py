"""The embedded fake Spotify (the implementation lives in `runner.testing.fake`)."""

from runner.testing.fake import FakeSpotify, Fault, ManualClock, Recorded

__all__ = ["FakeSpotify", "Fault", "ManualClock", "Recorded"]
