"""The pytest plugin with several users: a job author's two-account test, as they would write it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import spotipy

from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


def _playlist(fake: FakeSpotify, user: str, name: str) -> list[str]:
    found = [p for p in fake.user_playlist_ids(user) if fake.playlist_details(p)["name"] == name]
    assert len(found) == 1, found
    return fake.playlist_uris(found[0])


def test_two_accounts_each_write_their_own_users_playlist(
    fake_spotify: FakeSpotify, accounts_harness: Callable[[Mapping[str, str]], JobHarness]
) -> None:
    tracks = fake_spotify.make_tracks(6, seed=11)
    harness = accounts_harness({"home": "alice", "band": "bob"})
    options = {"playlist": {"name": "Mine"}, "mode": "replace"}
    home = harness.run(
        "playlist_updater", {**options, "sources": [{"tracks": tracks[:3]}]}, account="home"
    )
    band = harness.run(
        "playlist_updater", {**options, "sources": [{"tracks": tracks[3:]}]}, account="band"
    )
    assert (home.status, band.status) == (RunStatus.OK, RunStatus.OK)
    assert _playlist(fake_spotify, "alice", "Mine") == tracks[:3]
    assert _playlist(fake_spotify, "bob", "Mine") == tracks[3:]
    # Each run is recorded with its account, and the job state is kept per account.
    assert (home.record.account, band.record.account) == ("home", "band")
    assert harness.state(account="home") != harness.state(account="band")


def test_a_client_per_user_sees_only_that_users_library(
    fake_spotify: FakeSpotify, fake_spotify_client_for: Callable[[str], spotipy.Spotify]
) -> None:
    alice, carol = fake_spotify_client_for("alice"), fake_spotify_client_for("carol")
    assert (alice.me()["id"], carol.me()["id"]) == ("alice", "carol")
    alice.current_user_playlist_create("Alice's", public=False)
    assert carol.current_user_playlists()["total"] == 0
    assert alice.current_user_playlists()["items"][0]["owner"]["id"] == "alice"
