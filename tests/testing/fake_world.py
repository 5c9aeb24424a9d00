"""A fake with something of everything (`World`), shared by the breadth and schema tests."""

from __future__ import annotations

from dataclasses import dataclass

from runner.testing import FakeSpotify, ManualClock
from runner.testing.harness import ALL_SCOPES

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # a minimal JFIF


@dataclass
class World:
    """A fake with something of everything, for alice, with every scope."""

    fake: FakeSpotify
    token: str
    tracks: list[str]
    album: str
    album_tracks: list[str]
    artist: str
    show: str
    episodes: list[str]
    audiobook: str
    chapters: list[str]
    playlist: str
    device: str
    other_device: str

    @staticmethod
    def id(uri: str) -> str:
        return uri.rsplit(":", 1)[1]


def build_world(fake: FakeSpotify, clock: ManualClock) -> World:
    """Fill `fake` for alice: tracks, an album, an artist, a show, an audiobook, a playlist with
    a cover, a library, top items, a play, two devices and playback."""
    fake.add_user("bob", "Bob")
    tracks = fake.make_tracks(5)
    album = fake.add_album("Kind of Blue", ["Miles Davis"], ["So What", "Blue in Green"])
    album_tracks = fake.album_tracks(album)
    artist = fake.add_artist("Miles Davis")
    show = fake.add_show("Night Talk", episodes=3)
    episodes = fake.show_episodes(show)
    audiobook = fake.add_audiobook("The Long Book", authors=["A. Writer"], chapters=3)
    chapters = fake.audiobook_chapters(audiobook)
    playlist = fake.add_playlist(name="Mix", uris=[*tracks[:3], episodes[0]])
    fake.set_playlist_cover(playlist, JPEG)
    fake.save_to_library("alice", [tracks[0], album, show, episodes[1], audiobook, artist])
    fake.set_top_tracks("alice", "medium_term", tracks[:2])
    fake.set_top_artists("alice", "medium_term", [artist])
    fake.add_play("alice", tracks[1], played_at=clock.now - 60)
    device = fake.add_device("alice", "Laptop", "Computer", active=True)
    other = fake.add_device("alice", "Kitchen", "Speaker")
    fake.start_playback("alice", album_tracks, context_uri=album)
    token = fake.issue_access_token("alice", ALL_SCOPES)
    return World(
        fake, token, tracks, album, album_tracks, artist, show, episodes, audiobook, chapters,
        playlist, device, other,
    )  # fmt: skip
