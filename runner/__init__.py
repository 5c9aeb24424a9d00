"""spotify-runner: Spotify automation jobs on a schedule, authorized once."""

__version__ = "0.1.0"
