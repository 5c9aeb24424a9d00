"""Testing support: an embedded fake Spotify (real HTTP on 127.0.0.1) and a pytest plugin.

Example:
    >>> from runner.testing import FakeSpotify
    >>> with FakeSpotify() as fake:  # doctest: +SKIP
    ...     refresh_token = fake.grant(scopes=("playlist-modify-private",))
"""

from runner.testing.fake import FakeSpotify, Fault, ManualClock, Recorded

__all__ = ["FakeSpotify", "Fault", "ManualClock", "Recorded"]
